"""Pointer read unit: even / odd g, empty columns dropped, hold under back-pressure."""

from __future__ import annotations

import numpy as np

from hw.arch.config import PRESETS
from hw.ptr_read import PtrRead
from tests.conftest import amaranth_run, load_words


def drive(dut, pointers, ptr_base, cols, ready_pattern, use_host=True):
    """Push ``cols`` through the unit; return [(start, count, act)] and the pop cycles."""
    out, pops = [], []

    async def tb(ctx):
        # pointer g is in bank g & 1 at address g >> 1
        await load_words(ctx, dut.host, pointers,
                         None if use_host else lambda g: (dut.even, dut.odd)[g & 1].data[g >> 1])
        ctx.set(dut.ptr_base, ptr_base)
        i, t = 0, 0
        while len(pops) < len(cols) or ctx.get(dut.busy):
            ctx.set(dut.col.valid, i < len(cols))
            if i < len(cols):
                ctx.set(dut.col.payload.col, int(cols[i]))
                ctx.set(dut.col.payload.act, i + 1)
            rdy = ready_pattern(t)
            ctx.set(dut.out.ready, rdy)
            if ctx.get(dut.out.valid) and rdy:
                out.append((ctx.get(dut.out.payload.start), ctx.get(dut.out.payload.count),
                            ctx.get(dut.out.payload.act)))
            if i < len(cols) and ctx.get(dut.col.ready):
                assert ctx.get(dut.ptr_read)
                pops.append(t)
                i += 1
            await ctx.tick()
            t += 1
            assert t < 1000

    amaranth_run(dut, tb)
    return out, pops


def expected(pointers, ptr_base, cols):
    res = []
    for i, j in enumerate(cols):
        s, e = pointers[ptr_base + j], pointers[ptr_base + j + 1]
        if e != s:
            res.append((s, e - s, i + 1))
    return res


def test_ptr_read_even_and_odd_g():
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(1)
    pointers = np.concatenate([[0], np.cumsum(rng.integers(0, 4, 40))]) + 100
    for ptr_base in (0, 1, 6, 7):  # even and odd bases: g takes both parities
        cols = list(range(0, 30, 1)) + [3, 3, 5]
        dut = PtrRead(cfg)
        out, pops = drive(dut, pointers, ptr_base, cols, lambda t: 1)
        assert out == expected(pointers, ptr_base, cols)
        # always ready downstream: one pop per cycle
        assert pops == list(range(pops[0], pops[0] + len(cols)))


def test_ptr_read_backpressure_holds_column():
    cfg = PRESETS["pe2"]
    rng = np.random.default_rng(2)
    pointers = np.concatenate([[0], np.cumsum(rng.integers(0, 3, 30))])
    cols = list(rng.integers(0, 29, 25))
    dut = PtrRead(cfg)
    out, _ = drive(dut, pointers, 1, cols, lambda t: (t * 7) % 3 == 0)
    assert out == expected(pointers, 1, cols)


def test_ptr_read_empty_columns_one_cycle_each():
    cfg = PRESETS["tiny"]
    pointers = np.array([5] * 20 + [9])  # columns 0..18 empty, column 19 has 4 entries
    dut = PtrRead(cfg)
    out, pops = drive(dut, pointers, 0, list(range(20)), lambda t: t >= 60, use_host=False)
    # downstream not ready for a long time, yet every empty column passes at one per cycle;
    # the non-empty last column waits in the hold stage
    assert out == [(5, 4, 20)]
    assert pops == list(range(pops[0], pops[0] + 20))
