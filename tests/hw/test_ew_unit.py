# amaranth: UnusedElaboratable=no
"""Element-wise unit of ESE: every cell bit for bit against hw.arch.fixedpoint's finalize and
lstm_cell, the timing contract (reads, clears, writes, ``done``), the counters, and Verilog."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, signed
from amaranth.lib import memory, wiring

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import finalize, lstm_cell, to_unsigned
from hw.arith import ArithUnit
from hw.ew_unit import EW_STAGES, READ_ORDER, EWUnit
from sim.ref.lstm_schedule import EW_COUNTERS, ew_counters
from tests.conftest import amaranth_run, replay_host_writes

TINY = PRESETS["tiny"]
#: tiny with room for 8 cells per PE (64 accumulators: 8 cells' gates twice)
TINY8 = TINY.replace(act_depth=64)
STROBES = ("ew_cells", "lut_reads", "ew_muls", "cell_reads", "cell_writes")


class Harness(Elaboratable):
    """The unit on the arithmetic unit's accumulator port (as the write-back uses it), with a
    bias memory and an activation memory standing in for the activation read/write unit's."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.ew = EWUnit(cfg)
        self.arith = ArithUnit(cfg)
        self.bias = memory.Memory(shape=signed(cfg.act_bits), depth=cfg.bias_depth, init=[])
        self.act = memory.Memory(shape=signed(cfg.act_bits), depth=cfg.act_depth, init=[])
        self._bias_r = self.bias.read_port()
        self._act_w = self.act.write_port()

    def elaborate(self, platform):
        m = Module()
        m.submodules.ew, m.submodules.arith = self.ew, self.arith
        m.submodules.bias, m.submodules.act = self.bias, self.act
        wiring.connect(m, self.ew.acc, self.arith.wb)
        ew = self.ew
        m.d.comb += [
            self._bias_r.addr.eq(ew.bias.addr), self._bias_r.en.eq(ew.bias.en),
            ew.bias.data.eq(self._bias_r.data),
            self._act_w.addr.eq(ew.act.addr), self._act_w.data.eq(ew.act.data),
            self._act_w.en.eq(ew.act.en),
        ]
        return m


@dataclass
class Frame:
    """One element-wise stage: its parameters and inputs (``acc``, ``bias`` ``(4, C)`` by gate
    i, f, g, o; ``peep`` ``(3, C)`` or None) and what the run recorded."""

    acc: np.ndarray
    bias: np.ndarray
    peep: np.ndarray | None
    shift: int
    bank_base: int = 0
    bias_base: int = 0
    dst_base: int = 0
    c_prev: np.ndarray | None = None  # set through the memory's back door before the run
    rec: dict = field(default_factory=dict)

    @property
    def cells(self) -> int:
        return self.acc.shape[1]

    def params(self) -> dict:
        return {"cells": self.cells, "bank_base": self.bank_base, "bias_base": self.bias_base,
                "shift": self.shift, "dst_base": self.dst_base,
                "peephole": int(self.peep is not None)}


def golden(cfg, fr: Frame, c_prev):
    """(c, m) of every cell of ``fr``: the FC finalize rule, then lstm_cell."""
    pre = finalize(fr.acc, fr.shift, fr.bias, False, cfg)
    return lstm_cell(pre, c_prev, fr.peep, cfg)


async def load_frame(ctx, h: Harness, fr: Frame, host_peep: bool):
    cfg, C = h.cfg, fr.cells
    for j in range(C):
        for q in range(4):
            bank, row = divmod(fr.bank_base + 4 * j + q, cfg.acc_bank_words)
            ctx.set(h.arith.banks[bank].data[row], int(fr.acc[q, j]))
            ctx.set(h.bias.data[fr.bias_base + 4 * j + q], int(fr.bias[q, j]))
    if fr.c_prev is not None:
        for j in range(C):
            ctx.set(h.ew.cells.data[j], int(fr.c_prev[j]))
    if fr.peep is not None:
        words = fr.peep.reshape(-1)  # w_ic, w_fc, w_oc of cell j at j, C + j, 2C + j
        if host_peep:
            host = h.ew.host
            await replay_host_writes(ctx, host.we, (host.addr, host.wdata),
                                     enumerate(to_unsigned(words, cfg.act_bits)))
        else:
            for a, w in enumerate(words):
                ctx.set(h.ew.peep.data[a], int(w))


async def run_frame(ctx, h: Harness, fr: Frame, *, reset=False, scramble=None):
    """Pulse ``start`` (cycle 0) and record every cycle until ``done`` (plus 2): accumulator
    reads and clears, activation writes, strobes, ``busy``.  ``scramble`` (a
    generator) changes the parameter ports after cycle 0: the unit must have latched them."""
    ew, cfg = h.ew, h.cfg
    for k, val in fr.params().items():
        ctx.set(getattr(ew.params, k), val)
    ctx.set(ew.start, 1)
    ctx.set(ew.reset_cells, int(reset))
    rec = {"rd": [], "clr": [], "act": [], "busy": [], "done": [],
           **{s: [] for s in STROBES}}
    t, end = 0, None
    while end is None or t <= end + 2:
        if t == 1:
            ctx.set(ew.start, 0)
            ctx.set(ew.reset_cells, 0)
            if scramble is not None:
                for k in fr.params():
                    width = len(getattr(ew.params, k))
                    ctx.set(getattr(ew.params, k), int(scramble.integers(0, 1 << width)))
        if ctx.get(ew.acc.rd_en):
            rec["rd"].append((t, ctx.get(ew.acc.rd_addr)))
        if ctx.get(ew.acc.clr_en):
            rec["clr"].append((t, ctx.get(ew.acc.clr_addr)))
        if ctx.get(ew.act.en):
            rec["act"].append((t, ctx.get(ew.act.addr), ctx.get(ew.act.data)))
        rec["busy"].append(ctx.get(ew.busy))
        rec["done"].append(ctx.get(ew.done))
        for s in STROBES:
            rec[s].append(ctx.get(getattr(ew, s)))
        if rec["done"][-1] and end is None and t > 0:  # t = 0: a previous run's done
            end = t
        await ctx.tick()
        t += 1
        assert t < 4 * fr.cells + cfg.ew_latency + 50, "no done"
    rec["done_cycle"] = end
    rec["out"] = [ctx.get(h.act.data[fr.dst_base + j]) for j in range(fr.cells)]
    rec["c"] = [ctx.get(ew.cells.data[j]) for j in range(fr.cells)]
    rec["acc_after"] = [ctx.get(h.arith.banks[r // cfg.acc_bank_words].data[
        r % cfg.acc_bank_words]) for r in range(cfg.acc_words)]
    fr.rec = rec


def simulate(cfg, frames, *, host_peep=False, prime=False, reset_first=True, scramble=True):
    """Run ``frames`` one after another on one unit.  ``prime``: a run with 0 cells first, so
    that the back-door ``c_prev`` of the first frame is read (the state after reset is 0)."""
    h = Harness(cfg)
    rng = np.random.default_rng(99) if scramble else None

    async def tb(ctx):
        if prime:
            await run_frame(ctx, h, Frame(np.zeros((4, 0), np.int64), np.zeros((4, 0), np.int64),
                                          None, 0))
        for k, fr in enumerate(frames):
            await load_frame(ctx, h, fr, host_peep)
            await run_frame(ctx, h, fr, reset=reset_first and k == 0 and not prime,
                            scramble=rng)

    amaranth_run(h, tb, deadline=1.0)
    return h


def random_frame(rng, cfg, cells, *, peep=True, scale=None, shift=None, **kw):
    """Gates, biases and peepholes around the interesting part of the tables (``scale``:
    pre-activations up to about +-scale in real units), with rails now and then."""
    shift = int(rng.integers(0, 13)) if shift is None else shift
    one = 1 << cfg.act_frac
    lim = int(min(cfg.act_max, (scale or 6) * one))
    target = rng.integers(-lim, lim + 1, (4, cells))
    bias = rng.integers(-lim // 4, lim // 4 + 1, (4, cells))
    acc = ((target - bias) << shift) + rng.integers(0, 1 << shift, (4, cells))
    acc = np.clip(acc, -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1)
    w = rng.integers(-one, one + 1, (3, cells)) if peep else None
    return Frame(acc, bias, w, shift, **kw)


def check(cfg, fr: Frame, c_prev):
    c, m_ = golden(cfg, fr, c_prev)
    np.testing.assert_array_equal(fr.rec["out"], m_)
    np.testing.assert_array_equal(fr.rec["c"], c)
    return c


# ---- the arithmetic, bit for bit --------------------------------------------------------
@pytest.mark.parametrize("peep", [True, False])
@pytest.mark.parametrize("cells", [1, 3, 8])
def test_random_cells(cells, peep):
    cfg = TINY8
    rng = np.random.default_rng(cells + 10 * peep)
    frames = [random_frame(rng, cfg, cells, peep=peep, bank_base=2 * (cells < 8),
                           bias_base=5, dst_base=7, c_prev=rng.integers(-2048, 2048, cells))]
    simulate(cfg, frames, prime=True, host_peep=peep)
    fr = frames[0]
    check(cfg, fr, fr.c_prev)
    assert fr.rec["out"] != [0] * cells  # the test would see a unit that writes nothing


def test_rails_zero_and_negative_inputs():
    """Pre-activations saturated at both ends of the tables (and far outside them), all-zero
    inputs, all-negative inputs, peepholes at their rails."""
    cfg = TINY
    big = (1 << (cfg.acc_bits - 1)) - 1
    acc = np.array([[big, -big - 1, 0, -1],      # i: +rail, -rail, zero, -1 LSB
                    [-big - 1, big, 0, -300],    # f
                    [big, -big - 1, 0, -(9 << 8)],  # g
                    [-big - 1, big, 0, -(2 << 8)]])  # o
    bias = np.array([[cfg.act_max, cfg.act_min, 0, -5]] * 4)
    peep = np.array([[cfg.act_max, cfg.act_min, 0, -256]] * 3)
    c_prev = np.array([cfg.act_max, cfg.act_min, 0, -1000])
    frames = [Frame(acc, bias, peep, 0, c_prev=c_prev),
              Frame(np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64), None, 3,
                    c_prev=np.zeros(4, np.int64)),
              Frame(np.maximum(-np.abs(acc) - 1, -big - 1), -np.abs(bias), -np.abs(peep), 2,
                    c_prev=-np.abs(c_prev))]
    simulate(cfg, frames, prime=True)
    for fr in frames:
        check(cfg, fr, fr.c_prev)
    pre = finalize(acc, 0, bias, False, cfg)
    assert pre.max() == cfg.act_max and pre.min() == cfg.act_min  # both table ends reached


@pytest.mark.parametrize("cell_bits", [None, 24])
def test_cell_state_saturates(cell_bits):
    """c' near the cell rails, f = i = g = 1: c = c' +- 1.0 saturates cell_width."""
    cfg = TINY.replace(cell_bits=cell_bits)
    cmax, cmin = (1 << (cfg.cell_width - 1)) - 1, -(1 << (cfg.cell_width - 1))
    big = 1 << 28  # every pre-activation at the top rail: sigma = tanh = 1.0 (256)
    acc = np.array([[big, big, big], [big, big, big], [big, -big, big], [big, big, -big]])
    c_prev = np.array([cmax - 10, cmin + 10, cmax // 3])
    fr = Frame(acc, np.zeros((4, 3), np.int64), None, 4, c_prev=c_prev)
    simulate(cfg, [fr], prime=True)
    c = check(cfg, fr, c_prev)
    assert c[0] == cmax and c[1] == cmin  # both rails of cell_width
    assert fr.rec["c"][2] == c[2] and abs(c[2]) > cfg.act_max * (cell_bits is not None)


@pytest.mark.parametrize("cfg", [
    TINY.replace(cell_bits=24, act_depth=64),
    TINY.replace(rounding="half_even", act_depth=64),
    TINY.replace(rounding="truncate", act_depth=64),
    TINY.replace(rounding="half_even", cell_bits=24, saturate=False, act_depth=64),
    # Q4.4: one table point per activation (lut_shift 0); Q6.2: a left shift (-2)
    TINY.replace(act_bits=8, act_frac=4, acc_bits=20, weight_frac_max=12, act_depth=64),
    TINY.replace(act_bits=8, act_frac=2, acc_bits=20, weight_frac_max=12, act_depth=64,
                 cell_bits=12, rounding="half_even"),
], ids=lambda c: f"{c.rounding}-cell{c.cell_width}-a{c.act_bits}-sh{c.lut_shift}-"
                 f"sat{int(c.saturate)}")
def test_configurations(cfg):
    rng = np.random.default_rng(cfg.cell_width + cfg.act_bits + len(cfg.rounding))
    cw = cfg.cell_width
    frames = []
    for k in range(3):
        fr = random_frame(rng, cfg, 8, peep=k != 1, scale=[6, 40, 300][k],
                          shift=min(cfg.weight_frac_max, int(rng.integers(0, 13))))
        fr.c_prev = rng.integers(-(1 << (cw - 1)), 1 << (cw - 1), 8) >> int(rng.integers(0, cw))
        frames.append(fr)
    simulate(cfg, frames, prime=True)
    for fr in frames:
        check(cfg, fr, fr.c_prev)


def test_two_frames_carry_the_cell_state():
    """Frame 2 reads the c that frame 1 wrote (frame 1 starts from 0 after reset);
    reset_cells, pulsed on its own while idle or with start, makes the next run start from 0
    again, and the run after it reads what that run wrote."""
    cfg = TINY8
    rng = np.random.default_rng(7)
    frames = [random_frame(rng, cfg, 5, bank_base=b, dst_base=d)
              for b, d in ((0, 0), (20, 5), (0, 10), (20, 15), (0, 20))]
    h = Harness(cfg)

    async def tb(ctx):
        for k, fr in enumerate(frames):
            await load_frame(ctx, h, fr, host_peep=k == 0)
            if k == 2:  # on its own, two idle cycles before the start
                ctx.set(h.ew.reset_cells, 1)
                await ctx.tick()
                ctx.set(h.ew.reset_cells, 0)
                await ctx.tick()
            await run_frame(ctx, h, fr, reset=k == 3)

    amaranth_run(h, tb, deadline=1.0)
    zero = np.zeros(5, np.int64)
    c1 = check(cfg, frames[0], zero)
    c2 = check(cfg, frames[1], c1)
    assert np.any(c2 != golden(cfg, frames[1], zero)[0])  # c' mattered
    c3 = check(cfg, frames[2], zero)
    check(cfg, frames[3], zero)
    check(cfg, frames[4], golden(cfg, frames[3], zero)[0])
    assert np.any(c3 != golden(cfg, frames[2], c2)[0])


# ---- timing contract, clears, counters --------------------------------------------------
@pytest.mark.parametrize("cells, latency", [(1, 8), (3, 8), (8, 8), (0, 8), (3, 11)])
def test_timing_contract(cells, latency):
    cfg = TINY8.replace(ew_latency=latency)
    rng = np.random.default_rng(cells)
    fr = random_frame(rng, cfg, cells, bank_base=3, dst_base=4)
    simulate(cfg, [fr])
    r = fr.rec
    C, end = cells, 4 * cells + latency
    assert r["done_cycle"] == end and sum(r["done"]) == 1
    assert r["busy"] == [0] + [1] * (end - 1) + [0] * 3
    # one read per cycle from the start cycle on, gates f, i, g, o; each cleared the next cycle
    reads = [(4 * j + p, 3 + 4 * j + q) for j in range(C) for p, q in enumerate(READ_ORDER)]
    assert r["rd"] == reads
    assert r["clr"] == [(t + 1, a) for t, a in reads]
    assert [(t, a) for t, a, _ in r["act"]] == [(4 * j + EW_STAGES - 1, 4 + j) for j in range(C)]
    assert [t for t, v in enumerate(r["cell_writes"]) if v] == [4 * j + 7 for j in range(C)]
    assert max([t for t, _, _ in r["act"]], default=-1) < end  # written before done
    acc = np.array(r["acc_after"])
    assert np.all(acc[3:3 + 4 * C] == 0)
    untouched = np.r_[0:3, 3 + 4 * C:cfg.acc_words]
    assert np.all(acc[untouched] == 0)  # nothing else written (they were 0)
    if C:
        check(cfg, fr, np.zeros(C, np.int64))


def test_back_to_back_and_start_while_busy():
    """A start while busy is ignored; a start in the done cycle runs at once."""
    cfg = TINY8
    rng = np.random.default_rng(3)
    a, b = random_frame(rng, cfg, 2), random_frame(rng, cfg, 3, bank_base=8, dst_base=2)
    h = Harness(cfg)
    seen = {}

    async def tb(ctx):
        await load_frame(ctx, h, a, host_peep=True)
        ew = h.ew
        for k, val in a.params().items():
            ctx.set(getattr(ew.params, k), val)
        ctx.set(ew.start, 1)
        ctx.set(ew.reset_cells, 1)
        await ctx.tick()
        ctx.set(ew.reset_cells, 0)
        t = 1
        while not ctx.get(ew.done):  # start held high all along: ignored while busy
            assert ctx.get(ew.busy)
            await ctx.tick()
            t += 1
        seen["first"] = t
        await load_frame(ctx, h, b, host_peep=False)  # no clock: back door only
        await run_frame(ctx, h, b)

    amaranth_run(h, tb, deadline=1.0)
    assert seen["first"] == 4 * 2 + cfg.ew_latency
    c1 = golden(cfg, a, np.zeros(2, np.int64))[0]
    check(cfg, b, np.r_[c1, 0])  # cell 2 was never written: 0 after reset (fresh memory)
    assert b.rec["done_cycle"] == 4 * 3 + cfg.ew_latency


@pytest.mark.parametrize("peep", [True, False])
def test_counters_match_the_cycle_model(peep):
    cfg = TINY8
    fr = random_frame(np.random.default_rng(1), cfg, 6, peep=peep)
    simulate(cfg, [fr])
    r = fr.rec
    want = ew_counters(cfg, {"cells_pad": 6 * cfg.n_pes, "peepholes": peep})
    assert set(STROBES) == set(EW_COUNTERS)
    for name in EW_COUNTERS:
        assert sum(r[name]) == want[name][0], name
    assert len(r["rd"]) == want["acc_reads"][0] and len(r["act"]) == want["act_writes"][0]
    # per cycle: one strobe per cell, in its stage
    assert [t for t, v in enumerate(r["ew_cells"]) if v] == [4 * j + 11 for j in range(6)]
    assert [t for t, v in enumerate(r["cell_reads"]) if v] == [4 * j for j in range(6)]
    assert [t for t, v in enumerate(r["cell_writes"]) if v] == [4 * j + 7 for j in range(6)]
    # sigmoid and tanh in one cycle; A and B in one cycle only with the peephole products
    assert max(r["lut_reads"]) == 2 and max(r["ew_muls"]) == 1 + peep


# ---- construction and Verilog -----------------------------------------------------------
@pytest.mark.parametrize("changes, msg", [
    ({"lut_interp": True}, "lut_interp is not supported"),
    ({"ew_latency": 7}, "ew_latency must be at least 8"),
    ({"ew_cycles_per_cell": 5}, "ew_cycles_per_cell must be 4"),
    ({"acc_depth": 7}, "no room for one LSTM cell"),
])
def test_refused_configurations(changes, msg):
    with pytest.raises(EIEError, match=re.escape(msg)):
        EWUnit(TINY.replace(**changes))
    with pytest.raises(TypeError):
        EWUnit("tiny")


def test_ese_frame_of_32_cells():
    """ESE's geometry: 32 cells per PE, 16-bit activations, 2,048-point tables."""
    cfg = PRESETS["ese"]
    rng = np.random.default_rng(32)
    frames = [random_frame(rng, cfg, 32, bank_base=256, bias_base=128, dst_base=16)
              for _ in range(2)]
    simulate(cfg, frames)
    c1 = check(cfg, frames[0], np.zeros(32, np.int64))
    check(cfg, frames[1], c1)
    assert frames[1].rec["done_cycle"] == 4 * 32 + cfg.ew_latency


def test_ese_converts_to_verilog():
    cfg = PRESETS["ese"]
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    text = verilog.convert(EWUnit(cfg), name="eie_ew", emit_src=False)
    assert re.search(r"^module eie_ew\(", text, re.M)
    # the four memories and the two multipliers of the module docstring
    mems = dict((name, (int(w) + 1, int(d) + 1)) for w, name, d in
                re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text))
    assert mems == {"sigmoid": (16, 2048), "tanh": (16, 2048), "cells": (16, 64),
                    "peep": (16, 192)}
    assert len(re.findall(r"\$signed\([^)]*\) \* \$signed", text)) == 2
