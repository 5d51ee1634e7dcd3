# amaranth: UnusedElaboratable=no
"""The whole array (1-4 PEs, small presets) running chained layers from compiler images, bit exact.

Everything goes through the top-level ports of docs/architecture.md section 5: the bench loads
the images with host writes, starts the sequence, waits for ``done``, reads the outputs with
host reads and the counters through ``cnt_pe`` / ``cnt_id``.  The expected outputs come from
the dense integer matrices and :func:`hw.arch.fixedpoint.finalize` (and agree with
:class:`sim.ref.golden.GoldenModel` on the same images).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Shape

from hw.arch.config import PRESETS, EIEConfig
from compiler.passes import encode_passes
from hw.arch.fixedpoint import finalize, to_unsigned, wrap
from compiler.layout import build_images
from hw.arch.interleave import split_vector
from hw.arch.regmap import (CNT_LAYER_CYCLES, COUNTER_ID, COUNTER_READ_LATENCY,
                            HOST_READ_LATENCY, INPUT_STAGES, N_COUNTERS, Space,
                            descriptor_writes)
from hw.arch.memories import PE_MODULE
from hw.pe import pe_signature
from hw.top import EIETop, top_signature_members
from sim.ref.golden import GoldenModel
from tests.conftest import CycleBench, random_index_matrix, replay_host_writes


def random_network(rng, cfg: EIEConfig, sizes, density=0.4, relus=None):
    """Chained layers ``sizes[0] -> sizes[1] -> ...``: index matrices, codebooks, images."""
    qs, cbs, shifts, biases = [], [], [], []
    relus = relus or [True] * (len(sizes) - 2) + [False]
    for cols, rows in zip(sizes[:-1], sizes[1:]):
        qs.append(random_index_matrix(rng, rows, cols, density, cfg.codebook_size))
        # weights of about +-2**shift with shift fraction bits: outputs stay mostly unsaturated
        shift = int(rng.integers(6, 12))
        cb = rng.integers(-(1 << shift), (1 << shift) + 1, cfg.codebook_size)
        cb[0] = 0
        cbs.append(cb)
        shifts.append(shift)
        biases.append(rng.integers(-(1 << 10), 1 << 10, rows))
    enc = [encode_passes(q, cfg) for q in qs]
    images = build_images(enc, cbs, shifts, biases, relus,
                          [f"l{i}" for i in range(len(qs))], cfg)
    return qs, cbs, shifts, biases, relus, enc, images


def reference(x, qs, cbs, shifts, biases, relus, cfg):
    """Per layer outputs from the dense integer matrices."""
    outs = []
    a = np.asarray(x, dtype=np.int64)
    for q, cb, s, b, r in zip(qs, cbs, shifts, biases, relus):
        acc = wrap(np.asarray(cb, np.int64)[q] @ a, cfg.acc_bits)
        a = finalize(acc, s, b, r, cfg)
        outs.append(a)
    return outs


class TopBench(CycleBench):
    """Host-side driver of ``eie_top`` in the Amaranth simulator."""

    input_stages = INPUT_STAGES

    def __init__(self, cfg: EIEConfig):
        super().__init__(EIETop(cfg))
        self.cfg = cfg

    async def write(self, ctx, writes):
        """Host writes ``(space, pe, addr, wdata)``, one per clock."""
        d = self.dut
        await replay_host_writes(ctx, d.host_we,
                                 (d.host_space, d.host_pe, d.host_addr, d.host_wdata), writes,
                                 self.tick)

    async def read(self, ctx, pe, sel, addr):
        d = self.dut
        ctx.set(d.host_re, 1)
        ctx.set(d.host_pe, pe)
        ctx.set(d.host_raddr, sel * self.cfg.act_depth + addr)
        await self.tick(ctx)
        ctx.set(d.host_re, 0)
        await self.tick(ctx, HOST_READ_LATENCY - 1)
        return ctx.get(d.host_rdata)

    async def read_vector(self, ctx, sel, length):
        n = self.cfg.n_pes
        return np.array([await self.read(ctx, i % n, sel, i // n) for i in range(length)],
                        dtype=np.int64)

    async def load(self, ctx, images, x):
        await self.write(ctx, host_load_writes(self.cfg, images, x))

    async def counter(self, ctx, pe, cid):
        ctx.set(self.dut.cnt_pe, pe)
        ctx.set(self.dut.cnt_id, cid)
        await self.tick(ctx, COUNTER_READ_LATENCY)
        return ctx.get(self.dut.cnt_value)


def act_writes(cfg: EIEConfig, x):
    """Host writes ``(space, pe, addr, wdata)`` of input ``x`` into Act 0 of every PE."""
    return [(Space.ACT, k, a, to_unsigned(v, cfg.act_bits))
            for k, part in enumerate(split_vector(x, cfg.n_pes)) for a, v in enumerate(part)]


def host_load_writes(cfg: EIEConfig, images, x):
    """Every host write that loads compiler ``images`` and input ``x`` into ``eie_top``."""
    writes = []
    n_ptr = images.ptr_even.shape[1] * 2
    for k in range(cfg.n_pes):
        writes += [(Space.SPMAT, k, a, w) for a, w in enumerate(images.spmat[k]) if w]
        writes += [(Space.PTR, k, g, p)
                   for g, p in enumerate(images.pointer(k, np.arange(n_ptr)))]
        writes += [(Space.BIAS, k, a, to_unsigned(b, cfg.act_bits))
                   for a, b in enumerate(images.bias[k])]
    writes += act_writes(cfg, x)
    # host_pe is ignored for CODEBOOK: every PE takes the write
    writes += [(Space.CODEBOOK, 3, s * cfg.codebook_size + v, to_unsigned(w, cfg.weight_bits))
               for s, cb in enumerate(images.codebook[:len(images.layers)])
               for v, w in enumerate(cb)]
    addrs, vals = descriptor_writes(images.passes)
    return writes + [(Space.LAYER, 0, a, v) for a, v in zip(addrs, vals)]


# ------------------------------------------------------------------------------------------
SECTION5 = {
    # name: (direction, width) per docs/architecture.md section 5; None = config-dependent
    "clk": ("in", 1), "rst": ("in", 1),
    "host_we": ("in", 1), "host_space": ("in", 3), "host_pe": ("in", None),
    "host_addr": ("in", 32), "host_wdata": ("in", 64), "host_re": ("in", 1),
    "host_raddr": ("in", 32), "host_rdata": ("out", None), "n_layers": ("in", None),
    "start": ("in", 1), "single_step": ("in", 1), "resume": ("in", 1), "busy": ("out", 1),
    "layer_done": ("out", 1), "done": ("out", 1), "cnt_pe": ("in", None), "cnt_id": ("in", 4),
    "cnt_value": ("out", 32),
}


@pytest.mark.parametrize("preset", ["tiny", "eie64", "pe1"])
def test_top_ports_match_section_5(preset):
    cfg = PRESETS[preset]
    members = top_signature_members(cfg)
    if preset != "eie64":
        top = EIETop(cfg, pe_blackbox=True)
        assert dict(top.signature.members) == members
        assert "eie_pe" in rtlil.convert(top, name="eie_top")
    assert list(members.keys()) == list(SECTION5)
    derived = {"host_pe": cfg.pe_bits, "host_rdata": cfg.act_bits,
               "n_layers": cfg.layer_index_bits + 1, "cnt_pe": cfg.cnt_sel_bits}
    for name, (direction, width) in SECTION5.items():
        mem = members[name]
        assert mem.flow.value.lower() == direction, name
        assert Shape.cast(mem.shape).width == (width or derived[name]), name
    assert Shape.cast(members["host_rdata"].shape).signed


def test_top_blackbox_pes_have_the_pe_signature():
    """The black-box PEs of the Verilog export take :func:`hw.pe.pe_signature` (no PE built)."""
    cfg = PRESETS["pe2"]
    top = EIETop(cfg, pe_blackbox=True)
    assert [pe.signature for pe in top.pes] == [pe_signature(cfg)] * cfg.n_pes
    assert {pe.module_name for pe in top.pes} == {PE_MODULE}
    assert "eie_pe" in rtlil.convert(top, name="eie_top")


NETWORKS = [
    # (preset, config changes, layer sizes)
    ("tiny", {}, [27, 30, 17, 10]),
    ("pe2", {}, [19, 23, 8]),
    ("pe1", {}, [12, 9, 5]),  # one PE, queue depth 1
    ("tiny", {"n_pes": 3, "rounding": "half_even"}, [25, 16, 11]),  # N not a power of 2
]


@pytest.mark.parametrize("preset,changes,sizes", NETWORKS)
def test_top_chained_layers_bit_exact(preset, changes, sizes, capsys):
    cfg = PRESETS[preset].replace(**changes)
    n = cfg.n_pes
    n_layers = len(sizes) - 1
    rng = np.random.default_rng(2024 + len(sizes) + n)
    qs, cbs, shifts, biases, relus, enc, images = random_network(rng, cfg, sizes)
    x = np.where(rng.random(sizes[0]) < 0.6, rng.integers(-2000, 2000, sizes[0]), 0)
    want = reference(x, qs, cbs, shifts, biases, relus, cfg)
    # the lead's golden model agrees on the same images (so the images are what we think)
    for a, b in zip(GoldenModel(images).forward(x), want):
        np.testing.assert_array_equal(a, b)
    assert all(np.count_nonzero(w) for w in want)
    inputs = [x] + want[:-1]
    tb_out = {}
    b = TopBench(cfg)

    async def tb(ctx):
        await b.load(ctx, images, x)
        cycles = await b.run(ctx, n_layers)
        tb_out["cycles"] = cycles
        # cnt_pe is wide enough for every layer slot, even with a single PE
        slots = n_layers
        tb_out["layer_cycles"] = [await b.counter(ctx, s, CNT_LAYER_CYCLES)
                                  for s in range(slots)]
        tb_out["counters"] = [[await b.counter(ctx, k, i) for i in range(N_COUNTERS)]
                              for k in range(n)]
        if n_layers < cfg.max_layers:
            assert await b.counter(ctx, n_layers, CNT_LAYER_CYCLES) == 0
        assert await b.counter(ctx, 0, 12) == 0  # unused id
        # the output of n layers is in Act n % 2, the one before it in the other memory
        tb_out["y"] = await b.read_vector(ctx, n_layers % 2, sizes[-1])
        tb_out["y1"] = await b.read_vector(ctx, 1 - n_layers % 2, sizes[-2])

    b.simulate(tb)
    np.testing.assert_array_equal(tb_out["y"], want[-1])
    if n_layers >= 2:
        np.testing.assert_array_equal(tb_out["y1"], want[-2])
    # start cycle excluded: the layers run back to back
    assert sum(tb_out["layer_cycles"]) == tb_out["cycles"]
    nz = [int(np.count_nonzero(a)) for a in inputs]
    groups = [-(-c // n) for c in sizes[:-1]]
    for k, c in enumerate(tb_out["counters"]):
        entries = sum(int(np.sum(np.diff(p.enc.ptr[k])[np.flatnonzero(a)]))
                      for e, a in zip(enc, inputs) for p in e)
        assert c[COUNTER_ID["pushes"]] == sum(nz), k
        assert c[COUNTER_ID["ptr_reads"]] == sum(nz), k
        assert c[COUNTER_ID["entries"]] == entries, k
        assert c[COUNTER_ID["src_reads"]] == sum(groups), k
        rows_k = sum(-(-r // n) for r in sizes[1:])
        assert c[COUNTER_ID["act_writes"]] == rows_k, k
    with capsys.disabled():
        print(f"\n[top] {cfg.name} N={n} {'-'.join(map(str, sizes))}: {tb_out['cycles']} cycles "
              f"(layers {tb_out['layer_cycles']}), {sum(nz)} broadcasts")


def test_top_output_batches_bit_exact_and_counted(capsys):
    """A layer with over 3x the rows the accumulators hold runs in output batches: each batch
    re-reads the source, broadcasts its non-zeros again and writes its rows back at its own
    destination offset; the next layer reads the whole vector."""
    # 4 PEs x 4 accumulators = 16 rows per batch; 8 slots for the 5 passes
    cfg = PRESETS["tiny"].replace(acc_depth=4, max_layers=8)
    rng = np.random.default_rng(11)
    sizes = [22, 57, 13]  # 57 rows = 15 per PE: 4 batches of 4, 4, 4, 3 local rows
    qs, cbs, shifts, biases, relus, enc, images = random_network(rng, cfg, sizes, density=0.5)
    assert [(p["row0"], p["out_len"], p["dst_base"], p["bias_base"]) for p in images.passes] == \
        [(0, 16, 0, 0), (16, 16, 4, 4), (32, 16, 8, 8), (48, 9, 12, 12), (0, 13, 0, 15)]
    x = np.where(rng.random(sizes[0]) < 0.6, rng.integers(-2000, 2000, sizes[0]), 0)
    want = reference(x, qs, cbs, shifts, biases, relus, cfg)
    out = {}
    b = TopBench(cfg)
    n_pass = len(images.passes)

    async def tb(ctx):
        await b.load(ctx, images, x)
        out["cycles"] = await b.run(ctx, n_pass)
        out["pass_cycles"] = [await b.counter(ctx, s, CNT_LAYER_CYCLES)
                              for s in range(n_pass)]
        out["counters"] = [[await b.counter(ctx, k, i) for i in range(N_COUNTERS)]
                           for k in range(cfg.n_pes)]
        out["y0"] = await b.read_vector(ctx, 1, sizes[1])
        out["y"] = await b.read_vector(ctx, 0, sizes[2])

    b.simulate(tb)
    np.testing.assert_array_equal(out["y0"], want[0])
    np.testing.assert_array_equal(out["y"], want[1])
    assert sum(out["pass_cycles"]) == out["cycles"]
    nz = np.count_nonzero(x)
    for k, c in enumerate(out["counters"]):
        # four batches broadcast x's non-zeros four times, then layer 1 broadcasts its input's
        assert c[COUNTER_ID["pushes"]] == 4 * nz + np.count_nonzero(want[0]), k
        assert c[COUNTER_ID["src_reads"]] == 4 * 6 + 15, k  # ceil(22/4) groups per batch
        assert c[COUNTER_ID["act_writes"]] == 4 + 4 + 4 + 3 + 4, k
    with capsys.disabled():
        print(f"\n[top] output batches: passes {out['pass_cycles']}")


def test_top_single_step_reads_between_layers_and_host_gating():
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(7)
    sizes = [20, 13, 9]
    qs, cbs, shifts, biases, relus, enc, images = random_network(rng, cfg, sizes, density=0.5)
    x = np.where(rng.random(sizes[0]) < 0.7, rng.integers(-3000, 3000, sizes[0]), 0)
    want = reference(x, qs, cbs, shifts, biases, relus, cfg)
    b = TopBench(cfg)
    seen = []
    d = b.dut

    async def tb(ctx):
        await b.load(ctx, images, x)

        async def on_pause(ctx):
            # paused after layer 0: its output is readable in Act 1 while the array waits
            seen.append(await b.read_vector(ctx, 1, sizes[1]))

        ctx.set(d.n_layers, 2)
        ctx.set(d.single_step, 1)
        ctx.set(d.start, 1)
        await b.tick(ctx)
        ctx.set(d.start, 0)
        # the start goes through the input stage; the writes below reach the array while
        # the layer runs (busy, not paused)
        await b.tick(ctx, INPUT_STAGES - 1)
        # host writes and reads during a running layer are ignored: try to clobber the input
        # of PE 0 and a spare Act1 word, and read while the CCU owns the read port
        await b.write(ctx, [(Space.ACT, 0, 0, 1234),
                            (Space.ACT, 1, cfg.act_depth + cfg.act_depth - 1, 55)])
        assert ctx.get(d.busy) and not ctx.get(d.layer_done)
        while not ctx.get(d.done):
            if ctx.get(d.layer_done):
                await on_pause(ctx)
                ctx.set(d.resume, 1)
                await b.tick(ctx)
                ctx.set(d.resume, 0)
                await b.tick(ctx, INPUT_STAGES)  # the pause ends when resume arrives
            else:
                await b.tick(ctx)
        seen.append(await b.read_vector(ctx, 0, sizes[2]))
        assert await b.read(ctx, 1, 1, cfg.act_depth - 1) == 0
        # start clears done; a second run gives the same result (the input was Act 0, which
        # layer 1 overwrote, so reload it first)
        await b.write(ctx, act_writes(cfg, x))
        await b.run(ctx, 2)
        seen.append(await b.read_vector(ctx, 0, sizes[2]))

    b.simulate(tb)
    np.testing.assert_array_equal(seen[0], want[0])
    np.testing.assert_array_equal(seen[1], want[1])
    np.testing.assert_array_equal(seen[2], want[1])


def test_top_reset_state():
    cfg = PRESETS["tiny"]
    b = TopBench(cfg)

    async def tb(ctx):
        d = b.dut
        for _ in range(3):
            assert not ctx.get(d.busy) and not ctx.get(d.done) and not ctx.get(d.layer_done)
            for cid in list(range(N_COUNTERS)) + [CNT_LAYER_CYCLES]:
                assert await b.counter(ctx, 1, cid) == 0
            await b.tick(ctx)

    b.simulate(tb)
