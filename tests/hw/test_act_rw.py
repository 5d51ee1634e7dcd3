"""Activation read/write unit: finalize bit for bit (3 rounding modes, saturate / wrap, ReLU),
write-back sequencing, activation read port and host writes."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import PRESETS
from hw.arch.fixedpoint import finalize, to_unsigned
from hw.act_rw import ActRW, finalize_value, round_shift
from tests.conftest import amaranth_run, replay_host_writes


class Finalize(wiring.Component):
    """Combinational round_shift + finalize_value, for exhaustive-ish vector tests."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "acc": In(signed(cfg.acc_bits)), "shift": In(cfg.shift_bits),
            "bias": In(signed(cfg.act_bits)), "relu": In(1), "y": Out(signed(cfg.act_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        rs = round_shift(m, self.acc, self.shift, self.cfg)
        m.d.comb += self.y.eq(finalize_value(m, rs, self.bias, self.relu, self.cfg))
        return m


def vectors(rng, cfg, n):
    lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    out = []
    for _ in range(n):
        s = int(rng.integers(0, cfg.weight_frac_max + 1))
        kind = rng.integers(0, 4)
        if kind == 0:  # exact ties and their neighbours, where the rounding modes differ
            q = int(rng.integers(-1000, 1000))
            x = (q << s) + ((1 << s) >> 1) + int(rng.integers(-1, 2)) if s else q
        elif kind == 1:
            x = int(rng.choice([lo, hi, 0, -1, 1, lo + 1, hi - 1]))
        elif kind == 2:  # around the activation rails after the shift
            x = (int(rng.choice([cfg.act_min, cfg.act_max])) << s) + int(rng.integers(-9, 9))
        else:
            x = int(rng.integers(lo, hi + 1))
        x = max(lo, min(hi, x))
        b = int(rng.integers(cfg.act_min, cfg.act_max + 1))
        out.append((x, s, b, int(rng.integers(0, 2))))
    return out


FINALIZE_CONFIGS = [
    PRESETS["tiny"],
    PRESETS["tiny"].replace(rounding="truncate"),
    PRESETS["tiny"].replace(rounding="half_even"),
    PRESETS["tiny"].replace(saturate=False),
    PRESETS["tiny"].replace(rounding="half_even", saturate=False),
    PRESETS["tiny"].replace(act_bits=8, act_frac=4, acc_bits=20, weight_frac_max=12),
    PRESETS["tiny"].replace(act_bits=8, act_frac=4, acc_bits=20, weight_frac_max=12,
                            rounding="half_even"),
]


@pytest.mark.parametrize("cfg", FINALIZE_CONFIGS,
                         ids=lambda c: f"{c.rounding}-sat{int(c.saturate)}-a{c.acc_bits}")
def test_finalize_matches_fixedpoint(cfg):
    dut = Finalize(cfg)
    vecs = vectors(np.random.default_rng(len(cfg.rounding) + cfg.acc_bits), cfg, 1500)
    got = []

    async def tb(ctx):
        for x, s, b, r in vecs:
            ctx.set(dut.acc, x)
            ctx.set(dut.shift, s)
            ctx.set(dut.bias, b)
            ctx.set(dut.relu, r)
            got.append(ctx.get(dut.y))

    amaranth_run(dut, tb, clock=False)
    want = [int(finalize(x, s, b, bool(r), cfg)) for x, s, b, r in vecs]
    bad = [(v, g, w) for v, g, w in zip(vecs, got, want) if g != w]
    assert not bad, bad[:5]


def run_writeback(cfg, accs, bias, bias_base, shift, relu, src_sel, rows_local, acc_base=0):
    """Host-load bias, run a write-back against a model accumulator memory, read back."""
    dut = ActRW(cfg)
    res = {"clr": [], "rd": []}
    acc_mem = [int(x) for x in accs]

    async def tb(ctx):
        await replay_host_writes(ctx, dut.host.we.bias, (dut.host.addr, dut.host.wdata),
                                 [(bias_base + i, to_unsigned(b, cfg.act_bits))
                                  for i, b in enumerate(bias)])
        for k, v in (("src_sel", src_sel), ("shift", shift), ("relu", relu),
                     ("rows_local", rows_local), ("bias_base", bias_base),
                     *((("acc_base", acc_base),) if cfg.lstm else ())):
            ctx.set(getattr(dut, k), v)
        ctx.set(dut.wb_go, 1)
        pending = None
        t = 0
        while True:
            rd = ctx.get(dut.acc.rd_en), ctx.get(dut.acc.rd_addr)
            if ctx.get(dut.acc.clr_en):
                res["clr"].append(ctx.get(dut.acc.clr_addr))
                acc_mem[ctx.get(dut.acc.clr_addr)] = 0
            await ctx.tick()
            ctx.set(dut.wb_go, 0)
            t += 1
            if rd[0]:
                res["rd"].append(rd[1])
                pending = acc_mem[rd[1]]
            if pending is not None:
                ctx.set(dut.acc.rd_data, pending)
            if t == 1:
                assert ctx.get(dut.wb_busy)
            if not ctx.get(dut.wb_busy):
                break
            assert t < 1000
        res["cycles"] = t
        for sel in (0, 1):
            vals = []
            for r in range(rows_local):
                ctx.set(dut.act_rd.en, 1)
                ctx.set(dut.act_rd.sel, sel)
                ctx.set(dut.act_rd.addr, r)
                await ctx.tick()
                vals.append(ctx.get(dut.act_rd.data))
            res[f"act{sel}"] = vals

    amaranth_run(dut, tb)
    return res


@pytest.mark.parametrize("rounding", ["half_up", "truncate", "half_even"])
@pytest.mark.parametrize("relu", [0, 1])
def test_write_back(rounding, relu):
    cfg = PRESETS["tiny"].replace(rounding=rounding)
    rng = np.random.default_rng(len(rounding) + relu)
    n = 20
    accs = rng.integers(-(1 << 24), 1 << 24, cfg.act_depth)
    accs[:4] = [(1 << 30), -(1 << 30), (3 << 3) + 4, -(5 << 3) - 4]  # rails and ties
    bias = rng.integers(cfg.act_min, cfg.act_max + 1, n)
    src = relu  # use both destinations
    res = run_writeback(cfg, accs, bias, 7, 3, relu, src, n)
    want = finalize(accs[:n], 3, bias, bool(relu), cfg)
    np.testing.assert_array_equal(res[f"act{1 - src}"], want)
    assert res[f"act{src}"] == [0] * n  # source untouched
    assert res["rd"] == list(range(n)) and res["clr"] == list(range(n))
    assert res["cycles"] == n + 3  # wb_go cycle + n rows + 2 pipeline stages
    if not relu:
        assert want[0] == cfg.act_max and want[1] == cfg.act_min


def test_write_back_from_acc_base():
    """With the LSTM hardware a pass's rows start at accumulator ``acc_base`` (the
    projection's rows beside the gates' banks): the write-back reads and clears those."""
    cfg = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)
    rng = np.random.default_rng(5)
    accs = rng.integers(-(1 << 20), 1 << 20, cfg.acc_words)
    bias = rng.integers(cfg.act_min, cfg.act_max + 1, 5)
    res = run_writeback(cfg, accs, bias, 3, 4, 0, 0, 5, acc_base=21)
    np.testing.assert_array_equal(res["act1"], finalize(accs[21:26], 4, bias, False, cfg))
    assert res["rd"] == list(range(21, 26)) and res["clr"] == list(range(21, 26))


def test_write_back_zero_rows():
    cfg = PRESETS["tiny"]
    res = run_writeback(cfg, [5] * cfg.act_depth, [], 0, 0, 0, 0, 0)
    assert res["rd"] == [] and res["clr"] == []


def test_host_act_writes_and_read_port():
    cfg = PRESETS["tiny"].replace(act_depth=24)  # sel * act_depth + a with act_depth not 2**n
    dut = ActRW(cfg)
    rng = np.random.default_rng(0)
    vals = rng.integers(cfg.act_min, cfg.act_max + 1, (2, cfg.act_depth))
    got = np.zeros_like(vals)

    async def tb(ctx):
        await replay_host_writes(ctx, dut.host.we.act, (dut.host.addr, dut.host.wdata),
                                 [(sel * cfg.act_depth + a, to_unsigned(vals[sel, a], cfg.act_bits))
                                  for sel in (0, 1) for a in range(cfg.act_depth)])
        for a in range(cfg.act_depth):
            for sel in (1, 0):
                ctx.set(dut.act_rd.en, 1)
                ctx.set(dut.act_rd.sel, sel)
                ctx.set(dut.act_rd.addr, a)
                await ctx.tick()
                got[sel, a] = ctx.get(dut.act_rd.data)
        # the data holds while act_rd_en is low
        ctx.set(dut.act_rd.en, 0)
        ctx.set(dut.act_rd.sel, 1)
        await ctx.tick()
        assert ctx.get(dut.act_rd.data) == got[0, -1]

    amaranth_run(dut, tb)
    np.testing.assert_array_equal(got, vals)

