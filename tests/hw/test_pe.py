"""PE as a whole against a NumPy reference (compiler.encode + hw.arch.fixedpoint).

The bench plays host and central unit: it loads the memories through the host-write ports,
broadcasts the non-zero activations (respecting ``bc.ready``), waits for ``idle``, pulses
``wb_go`` and reads the result back through ``act_rd_*``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from amaranth.back import verilog
from amaranth.hdl import Fragment, Shape
from amaranth.lib.wiring import Out

from hw.arch.config import PRESETS, EIEConfig, bits_for
from compiler.encode import encode_layer, pack_words
from hw.arch.fixedpoint import finalize, to_unsigned, wrap
from hw.arch.memories import pe_memories
from hw.arch.regmap import COUNTER_BITS, COUNTER_ID, COUNTER_NAMES, N_COUNTERS
from hw.pe import PE, pe_signature
from tests.conftest import CycleBench, random_index_matrix, replay_host_writes

#: a memory declaration in Amaranth's Verilog: ``reg [W-1:0] name [D-1:0];``
MEM_DECL = re.compile(r"reg \[(\d+):(\d+)\] (\w+) \[(\d+):(\d+)\];")


@dataclass
class Layer:
    """One layer as seen by one PE: its local rows only."""

    q: np.ndarray  # codebook indices, (rows_local, cols)
    codebook: np.ndarray  # cfg.codebook_size ints, entry 0 = 0
    bias: np.ndarray  # rows_local ints
    shift: int
    relu: bool
    cb_slot: int = 0
    ptr_base: int = 0
    bias_base: int = 0
    spmat_base: int = 0  # words
    v: np.ndarray = field(default=None)
    z: np.ndarray = field(default=None)
    ptr: np.ndarray = field(default=None)  # absolute entry addresses, cols + 1

    def encode(self, cfg: EIEConfig):
        enc = encode_layer(self.q, cfg.replace(n_pes=1))
        self.v, self.z = enc.v[0], enc.z[0]
        self.ptr = enc.ptr[0] + self.spmat_base * cfg.entries_per_word
        return self

    @property
    def rows(self):
        return self.q.shape[0]

    @property
    def cols(self):
        return self.q.shape[1]

    def reference(self, a, cfg):
        acc = wrap(self.codebook[self.q].astype(np.int64) @ np.asarray(a, np.int64),
                   cfg.acc_bits)
        return finalize(acc, self.shift, self.bias, self.relu, cfg)

    def entries_for(self, a):
        """Entries the PE streams for input ``a`` (only non-zero activations are broadcast)."""
        nz = np.flatnonzero(a)
        return int(np.sum(self.ptr[nz + 1] - self.ptr[nz]))


def random_layer(rng, cfg, rows, cols, density, **kw) -> Layer:
    q = random_index_matrix(rng, rows, cols, density, cfg.codebook_size)
    cb = rng.integers(cfg.weight_min, cfg.weight_max + 1, cfg.codebook_size)
    cb[0] = 0
    bias = rng.integers(cfg.act_min, cfg.act_max + 1, rows)
    shift = kw.pop("shift", int(rng.integers(0, cfg.weight_frac_max + 1)))
    relu = kw.pop("relu", bool(rng.integers(0, 2)))
    return Layer(q, cb, bias, shift, relu, **kw).encode(cfg)


def random_act(rng, cfg, n, density=0.6):
    a = rng.integers(cfg.act_min, cfg.act_max + 1, n)
    return np.where(rng.random(n) < density, a, 0)


class Bench(CycleBench):
    """Drives one PE from an async testbench; ``ctx`` is the Amaranth testbench context."""

    def __init__(self, cfg: EIEConfig):
        super().__init__(PE(cfg))
        self.cfg = cfg

    async def write(self, ctx, memory, base, values):
        """Host writes of ``values`` to words ``base..`` of PE memory ``memory``."""
        host = self.dut.host
        await replay_host_writes(ctx, getattr(host.we, memory), (host.addr, host.wdata),
                                 enumerate(values, base), self.tick)

    async def load(self, ctx, layer: Layer):
        cfg = self.cfg
        await self.write(ctx, "spmat", layer.spmat_base, pack_words(layer.v, layer.z, cfg))
        await self.write(ctx, "ptr", layer.ptr_base, layer.ptr)
        await self.write(ctx, "bias", layer.bias_base, to_unsigned(layer.bias, cfg.act_bits))
        await self.write(ctx, "codebook", layer.cb_slot * cfg.codebook_size,
                         to_unsigned(layer.codebook, cfg.weight_bits))

    async def load_act(self, ctx, sel, values):
        await self.write(ctx, "act", sel * self.cfg.act_depth,
                         to_unsigned(values, self.cfg.act_bits))

    def set_layer(self, ctx, layer: Layer, src_sel):
        p = self.dut.params
        ctx.set(p.ptr_base, layer.ptr_base)
        ctx.set(p.bias_base, layer.bias_base)
        ctx.set(p.shift, layer.shift)
        ctx.set(p.relu, int(layer.relu))
        ctx.set(p.rows_local, layer.rows)
        ctx.set(p.cb_slot, layer.cb_slot)
        ctx.set(p.src_sel, src_sel)

    async def broadcast(self, ctx, pairs, limit=100000):
        """Push ``(j, a_j)`` pairs as the central unit does; returns the cycles until idle."""
        d = self.dut
        t0 = self.cycle
        ctx.set(d.computing, 1)
        for j, a in pairs:
            ctx.set(d.bc_pending, 1)
            while not ctx.get(d.bc.ready):
                await self.tick(ctx)
                assert self.cycle - t0 < limit, "queue never ready"
            ctx.set(d.bc.valid, 1)
            ctx.set(d.bc.payload.col, int(j))
            ctx.set(d.bc.payload.act, int(a))
            await self.tick(ctx)
            ctx.set(d.bc.valid, 0)
            ctx.set(d.bc_pending, 0)
        while not ctx.get(d.idle):
            await self.tick(ctx)
            assert self.cycle - t0 < limit, "PE never idle"
        ctx.set(d.computing, 0)
        return self.cycle - t0

    async def write_back(self, ctx, limit=100000):
        d = self.dut
        ctx.set(d.wb_go, 1)
        await self.tick(ctx)
        ctx.set(d.wb_go, 0)
        t0 = self.cycle
        assert ctx.get(d.wb_busy), "wb_busy must rise the cycle after wb_go"
        while ctx.get(d.wb_busy):
            await self.tick(ctx)
            assert self.cycle - t0 < limit
        return self.cycle - t0 + 1

    async def read_act(self, ctx, sel, n):
        d = self.dut
        out = []
        for i in range(n):
            ctx.set(d.act_rd.en, 1)
            ctx.set(d.act_rd.sel, sel)
            ctx.set(d.act_rd.addr, i)
            await self.tick(ctx)
            ctx.set(d.act_rd.en, 0)
            out.append(ctx.get(d.act_rd.data))
        return np.array(out, dtype=np.int64)

    def counters(self, ctx):
        return [ctx.get(self.dut.counters[i]) for i in range(N_COUNTERS)]


def nonzero_pairs(a):
    return [(j, int(a[j])) for j in np.flatnonzero(a)]


def run_layer_case(cfg, layer, a, src_sel=0, check_counters=True):
    """Load, compute, write back, read back; return (result, compute cycles, counters)."""
    b = Bench(cfg)
    res = {}

    async def tb(ctx):
        await b.load(ctx, layer)
        b.set_layer(ctx, layer, src_sel)
        ctx.set(b.dut.cnt_clear, 1)
        await b.tick(ctx)
        ctx.set(b.dut.cnt_clear, 0)
        res["cycles"] = await b.broadcast(ctx, nonzero_pairs(a))
        res["wb_cycles"] = await b.write_back(ctx)
        res["counters"] = b.counters(ctx)
        res["y"] = await b.read_act(ctx, 1 - src_sel, layer.rows)
        # accumulators are cleared for the next layer
        res["acc"] = [ctx.get(b.dut.arith.acc.data[r]) for r in range(layer.rows)]

    b.simulate(tb)
    want = layer.reference(a, cfg)
    np.testing.assert_array_equal(res["y"], want)
    assert res["acc"] == [0] * layer.rows
    if check_counters:
        c = res["counters"]
        n_entries = layer.entries_for(a)
        npush = int(np.count_nonzero(a))
        assert c[COUNTER_ID["entries"]] == n_entries
        assert c[COUNTER_ID["busy"]] == n_entries
        assert c[COUNTER_ID["pushes"]] == npush
        assert c[COUNTER_ID["ptr_reads"]] == npush
        assert c[COUNTER_ID["acc_reads"]] == n_entries + layer.rows
        assert c[COUNTER_ID["acc_writes"]] == n_entries + layer.rows
        assert c[COUNTER_ID["act_writes"]] == layer.rows
        assert c[COUNTER_ID["src_reads"]] == 0
        assert c[COUNTER_ID["spmat_reads"]] <= n_entries
    return res


# ------------------------------------------------------------------------------------------
CASES = [
    # (preset, config changes, rows, cols, density)
    ("tiny", {}, 12, 20, 0.3),
    ("pe1", {}, 40, 24, 0.08),  # long gaps -> padding entries
    ("pe2", {}, 30, 30, 0.5),
    ("tiny", {"rounding": "truncate"}, 16, 16, 0.4),
    ("tiny", {"rounding": "half_even"}, 16, 16, 0.4),
    ("tiny", {"saturate": False}, 16, 16, 0.4),
    ("pe1", {"queue_depth": 1}, 10, 20, 0.3),
    ("pe2", {"rel_index_bits": 5}, 30, 20, 0.2),  # 9-bit entries: 7 per word (not 2**n)
    ("tiny", {"spmat_word_bits": 16, "rel_index_bits": 2, "weight_index_bits": 2}, 20, 12, 0.4),
    ("tiny", {"acc_bits": 20, "weight_frac_max": 12}, 16, 16, 0.6),  # accumulators wrap
    ("tiny", {"act_depth": 24, "queue_depth": 3}, 20, 16, 0.3),  # act_depth not a power of 2
]


@pytest.mark.parametrize("preset,changes,rows,cols,density", CASES)
def test_pe_random_layer(preset, changes, rows, cols, density):
    cfg = PRESETS[preset].replace(**changes)
    rng = np.random.default_rng(hash((preset, tuple(changes.items()))) & 0xFFFF)
    for trial in range(2):
        layer = random_layer(rng, cfg, rows, cols, density, cb_slot=trial % cfg.max_layers,
                             ptr_base=3 * trial, bias_base=5 * trial, spmat_base=2 * trial)
        a = random_act(rng, cfg, cols)
        run_layer_case(cfg, layer, a, src_sel=trial % 2)


def test_pe_saturation_and_relu():
    """Large weights and activations push results past both rails; ReLU on and off."""
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(7)
    for relu in (False, True):
        layer = random_layer(rng, cfg, 8, 8, 0.9, shift=2, relu=relu)
        layer.codebook[1:] = np.where(rng.random(cfg.codebook_size - 1) < 0.5,
                                      cfg.weight_max, cfg.weight_min)
        a = np.where(rng.random(8) < 0.5, cfg.act_max, cfg.act_min)
        y = run_layer_case(cfg, layer, a)["y"]
        if relu:
            assert (y >= 0).all()
        else:
            assert (y == cfg.act_max).any() and (y == cfg.act_min).any()


def test_pe_single_row_bypass():
    """One local row: every entry hits the same accumulator back to back."""
    cfg = PRESETS["pe1"]
    rng = np.random.default_rng(3)
    layer = random_layer(rng, cfg, 1, 30, 1.0, shift=0, relu=False)
    layer.bias[:] = 0
    # keep the sum inside act range so saturation does not hide a lost update
    layer.codebook = np.arange(cfg.codebook_size) - cfg.codebook_size // 2
    layer.codebook[0] = 0
    a = rng.integers(-50, 50, 30)
    a[a == 0] = 1
    res = run_layer_case(cfg, layer, a)
    assert res["counters"][COUNTER_ID["entries"]] == 30
    assert cfg.act_min < res["y"][0] < cfg.act_max


def test_pe_consecutive_columns_same_rows():
    """Columns with one entry each, all on the same few rows, pushed back to back."""
    cfg = PRESETS["pe2"]
    rng = np.random.default_rng(11)
    q = np.zeros((3, 40), dtype=np.int64)
    q[rng.integers(0, 3, 40), np.arange(40)] = rng.integers(1, cfg.codebook_size, 40)
    cb = np.arange(cfg.codebook_size) * 7 - 50
    cb[0] = 0
    layer = Layer(q, cb, np.zeros(3, np.int64), 0, False).encode(cfg)
    a = rng.integers(-100, 100, 40)
    a[a == 0] = 3
    run_layer_case(cfg, layer, a)


def test_pe_two_chained_layers_pe1():
    """Two layers on a one-PE array: the bench reads layer 0's output from Act1 through
    ``act_rd_*`` (as the central unit would) and broadcasts it into layer 1."""
    cfg = PRESETS["pe1"]
    rng = np.random.default_rng(5)
    l0 = random_layer(rng, cfg, 20, 16, 0.4, shift=4, relu=True)
    words0 = -(-int(l0.ptr[-1]) // cfg.entries_per_word)
    l1 = random_layer(rng, cfg, 12, 20, 0.4, shift=3, relu=False, cb_slot=1, ptr_base=17,
                      bias_base=20, spmat_base=words0)
    x = random_act(rng, cfg, 16, density=0.8)
    b = Bench(cfg)
    out = {}

    async def tb(ctx):
        await b.load(ctx, l0)
        await b.load(ctx, l1)
        await b.load_act(ctx, 0, x)
        for sel, layer in ((0, l0), (1, l1)):
            b.set_layer(ctx, layer, sel)
            src = await b.read_act(ctx, sel, layer.cols)
            await b.broadcast(ctx, nonzero_pairs(src))
            await b.write_back(ctx)
        out["y"] = await b.read_act(ctx, 0, l1.rows)
        out["reads"] = ctx.get(b.dut.counters[COUNTER_ID["src_reads"]])

    b.simulate(tb)
    y0 = l0.reference(x, cfg)
    np.testing.assert_array_equal(out["y"], l1.reference(y0, cfg))
    # the bench reads like the host (computing low): source-read counter 9 counts only the
    # central unit's reads during a layer (tests/hw/test_top.py checks those)
    assert out["reads"] == 0


def test_pe_throughput_and_latency(capsys):
    """Dense columns stream at one entry per cycle; report latencies."""
    cfg = PRESETS["pe1"].replace(queue_depth=4)
    rng = np.random.default_rng(9)
    rows, cols = 40, 24
    q = rng.integers(1, cfg.codebook_size, (rows, cols))  # dense: 40 entries per column
    cb = rng.integers(-100, 100, cfg.codebook_size)
    cb[0] = 0
    layer = Layer(q, cb, np.zeros(rows, np.int64), 6, False).encode(cfg)
    a = rng.integers(1, 100, cols)
    res = run_layer_case(cfg, layer, a)
    n = rows * cols
    cyc = res["cycles"]
    # fill (6 cycles from push to first accumulate) + one entry per cycle
    assert cyc <= n + 8, (cyc, n)
    assert res["counters"][COUNTER_ID["spmat_reads"]] == -(-n // cfg.entries_per_word)
    with capsys.disabled():
        print(f"\n[pe] {n} entries in {cyc} cycles: {n / cyc:.3f} entries/cycle, "
              f"write-back {res['wb_cycles']} cycles for {rows} rows")


def test_pe_one_entry_columns_no_bubble():
    """Columns of one entry each: the pointer unit must deliver one column per cycle."""
    cfg = PRESETS["pe1"].replace(queue_depth=4)
    cols = 32
    q = np.zeros((4, cols), dtype=np.int64)
    q[np.arange(cols) % 4, np.arange(cols)] = 1
    cb = np.arange(cfg.codebook_size)
    layer = Layer(q, cb, np.zeros(4, np.int64), 0, False).encode(cfg)
    a = np.arange(1, cols + 1)
    res = run_layer_case(cfg, layer, a)
    assert res["cycles"] <= cols + 7, res["cycles"]


def test_pe_empty_columns():
    """Empty columns cost at most one cycle each (and nothing downstream)."""
    cfg = PRESETS["pe1"].replace(queue_depth=4)
    cols = 30
    q = np.zeros((4, cols), dtype=np.int64)
    q[2, 10] = 1  # one non-empty column among empties
    cb = np.arange(cfg.codebook_size)
    layer = Layer(q, cb, np.zeros(4, np.int64), 0, False).encode(cfg)
    a = np.full(cols, 5)
    res = run_layer_case(cfg, layer, a)
    assert res["cycles"] <= cols + 7, res["cycles"]
    assert res["counters"][COUNTER_ID["entries"]] == 1
    # all columns empty: nothing reaches the arithmetic unit
    layer = Layer(np.zeros((4, cols), np.int64), cb, np.arange(4), 0, False).encode(cfg)
    res = run_layer_case(cfg, layer, a)
    assert res["cycles"] <= cols + 3


def test_pe_queue_depth_one_halves_rate():
    """SyncFIFO depth 1 accepts a push only when empty: one column every two cycles."""
    cfg = PRESETS["pe1"]
    assert cfg.queue_depth == 1
    cols = 20
    q = np.zeros((2, cols), dtype=np.int64)
    q[0, :] = 1
    layer = Layer(q, np.arange(cfg.codebook_size), np.zeros(2, np.int64), 0,
                  False).encode(cfg)
    a = np.full(cols, 2)
    res = run_layer_case(cfg, layer, a)
    assert 2 * cols - 2 <= res["cycles"] <= 2 * cols + 7
    assert res["counters"][COUNTER_ID["full"]] >= cols - 1


def test_pe_counters_clear_and_starved():
    cfg = PRESETS["tiny"]
    b = Bench(cfg)
    out = {}

    async def tb(ctx):
        ctx.set(b.dut.computing, 1)
        await b.tick(ctx, 5)
        out["starved"] = ctx.get(b.dut.counters[COUNTER_ID["starved"]])
        ctx.set(b.dut.cnt_clear, 1)
        await b.tick(ctx)
        out["cleared"] = b.counters(ctx)

    b.simulate(tb)
    assert out["starved"] == 5
    assert out["cleared"] == [0] * N_COUNTERS


# ------------------------------------------------------------------------------------------
def test_pe_ports_match_architecture_section_7_and_verilog_tiny():
    """The port list of section 7 (names, widths, signedness); the PE converts to Verilog."""
    cfg = PRESETS["tiny"]
    dut = PE(cfg)
    ports = {"__".join(map(str, path)): member
             for path, member in dut.signature.members.flatten() if member.is_port}
    want = {
        "params__ptr_base": cfg.ptr_index_bits, "params__bias_base": cfg.bias_addr_bits,
        "params__shift": cfg.shift_bits, "params__relu": 1,
        "params__rows_local": cfg.act_addr_bits + 1, "params__cb_slot": cfg.layer_index_bits,
        "params__src_sel": 1, "params__dst_base": cfg.act_addr_bits,
        "bc__valid": 1, "bc__ready": 1,
        "bc__payload": bits_for(cfg.max_vector) + cfg.act_bits,
        "idle": 1, "wb_go": 1, "wb_busy": 1, "act_rd__en": 1, "act_rd__sel": 1,
        "act_rd__addr": cfg.act_addr_bits, "act_rd__data": cfg.act_bits, "host__we": 5,
        "host__addr": 32, "host__wdata": 64, "computing": 1, "bc_pending": 1, "cnt_clear": 1,
        "counters": 32 * 11,
    }
    assert set(ports) == set(want)
    for name, width in want.items():
        assert Shape.cast(ports[name].shape).width == width, name
    outputs = {name for name, member in ports.items() if member.flow == Out}
    assert outputs == {"bc__ready", "idle", "wb_busy", "act_rd__data", "counters"}
    assert Shape.cast(ports["act_rd__data"].shape).signed
    assert tuple(ports["host__we"].shape.members) == ("spmat", "ptr", "bias", "act", "codebook")
    assert tuple(ports["bc__payload"].shape.members) == ("col", "act")
    assert dut.signature.members["counters"].shape.length == len(COUNTER_NAMES)
    assert dut.signature.members["counters"].shape.elem_shape == COUNTER_BITS
    v = verilog.convert(dut, emit_src=False, name="eie_pe")
    assert "module eie_pe" in v


@pytest.mark.parametrize("name", ["tiny", "pe1", "pe8"])
def test_pe_signature_without_a_pe_equals_the_pe_signature(name):
    cfg = PRESETS[name]
    pe = PE(cfg)
    Fragment.get(pe, None)  # elaborated, so that its units count as used
    assert pe_signature(cfg) == pe.signature
    assert pe_signature(cfg) != pe_signature(PRESETS["pe2" if name != "pe2" else "tiny"])
    with pytest.raises(TypeError, match="cfg must be an EIEConfig"):
        pe_signature("tiny")


@pytest.mark.parametrize("name", ["tiny", "pe2"])
def test_pe_memory_inventory_matches_the_elaborated_pe(name):
    """Every ``pe_memories(cfg)`` entry is at ``pe.<unit>.<memory>`` with its depth and width:
    as the unit's attribute (tests patch it there) and as memory ``<memory>`` of Verilog module
    ``eie_pe.<unit>`` (the simulator's ``$readmemh`` preload and synthesis select it there)."""
    cfg = PRESETS[name]
    pe = PE(cfg)
    text = verilog.convert(pe, emit_src=False, name="eie_pe")
    modules = {}
    for body in text.split("\nmodule ")[1:]:
        mod = body.split("(", 1)[0].strip().lstrip("\\")
        modules[mod] = {mem: (int(hi) + 1 - int(lo), int(d_hi) + 1 - int(d_lo)) for hi, lo, mem,
                        d_hi, d_lo in MEM_DECL.findall(body)}
    for mem in pe_memories(cfg):
        unit = pe
        for part in mem.unit.split("."):
            unit = getattr(unit, part, None)
        if mem.unit != "queue.fifo":  # the queue's FIFO is built in ActQueue.elaborate
            m = getattr(unit, mem.memory)
            assert (m.depth, Shape.cast(m.shape).width) == (mem.depth, mem.width), mem
        got = modules.get(f"eie_pe.{mem.unit}", {}).get(mem.memory)
        assert got == (mem.width, mem.depth), (mem, got)


@pytest.mark.slow
def test_pe_verilog_eie64(capsys):
    t = time.perf_counter()
    v = verilog.convert(PE(PRESETS["eie64"]), emit_src=False, name="eie_pe")
    dt = time.perf_counter() - t
    assert "module eie_pe" in v
    # memory initialisation is one line per word (about 80K words on eie64); the logic itself
    # must stay small, whatever the memory depths
    init = re.compile(r"^\s+\w+\[\d+\] = \d+'h[0-9a-f]+;$", re.M)
    n_init = len(init.findall(v))
    cfg = PRESETS["eie64"]
    words = (cfg.spmat_depth + cfg.ptr_depth + 2 * cfg.act_depth + cfg.bias_depth
             + cfg.act_depth + cfg.max_layers * cfg.codebook_size)
    assert n_init <= words
    logic = init.sub("", v)
    assert len(logic) < 400_000
    with capsys.disabled():
        print(f"\n[pe] eie64 Verilog: {len(v) / 1e3:.0f} kB ({n_init} memory-init lines, "
              f"{len(logic) / 1e3:.0f} kB of logic) in {dt:.1f} s")


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(preset=st.sampled_from(["tiny", "pe1", "pe2"]),
       rounding=st.sampled_from(["half_up", "truncate", "half_even"]),
       rows=st.integers(1, 32), cols=st.integers(1, 24),
       density=st.floats(0.0, 1.0), act_density=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16))
def test_pe_hypothesis(preset, rounding, rows, cols, density, act_density, seed):
    cfg = PRESETS[preset].replace(rounding=rounding)
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, cfg, min(rows, cfg.act_depth), cols, density,
                         cb_slot=seed % cfg.max_layers, ptr_base=seed % 7,
                         bias_base=seed % 5, spmat_base=seed % 3)
    run_layer_case(cfg, layer, random_act(rng, cfg, cols, act_density), src_sel=seed & 1)
