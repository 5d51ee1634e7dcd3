"""Arithmetic unit: running row, codebook, exact product, wrap, bypass on repeated rows."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.config import PRESETS
from hw.arch.fixedpoint import to_unsigned, wrap
from hw.arith import ArithUnit
from tests.conftest import amaranth_run, replay_host_writes


def random_entries(rng, cfg, n, rows, p_first=0.3):
    """(v, z, act, first, row) with rows < ``rows``; few rows -> frequent repeats."""
    out, prev = [], None
    for _ in range(n):
        first = prev is None or rng.random() < p_first or prev + 1 >= rows
        if first:
            row = int(rng.integers(0, min(rows, cfg.max_rel_index + 1)))
            z = row
        else:
            row = int(rng.integers(prev + 1, min(rows, prev + cfg.max_rel_index + 2)))
            z = row - prev - 1
        v = int(rng.integers(0, cfg.codebook_size))
        a = int(rng.integers(cfg.act_min, cfg.act_max + 1))
        out.append((v, z, a, int(first), row))
        prev = row
    return out


def run_entries(cfg, codebook, cb_slot, entries, bubbles):
    dut = ArithUnit(cfg)
    res = {}

    async def tb(ctx):
        await replay_host_writes(ctx, dut.host.we, (dut.host.addr, dut.host.wdata),
                                 enumerate(to_unsigned(codebook, cfg.weight_bits),
                                           cb_slot * cfg.codebook_size))
        ctx.set(dut.cb_slot, cb_slot)
        n_rd = 0
        for k, (v, z, a, first, _row) in enumerate(entries):
            for _ in range(bubbles[k]):
                await ctx.tick()
            ctx.set(dut.entry.valid, 1)
            ctx.set(dut.entry.payload.v, v)
            ctx.set(dut.entry.payload.z, z)
            ctx.set(dut.entry.payload.act, a)
            ctx.set(dut.entry.payload.first, first)
            n_rd += ctx.get(dut.acc_read)
            await ctx.tick()
            ctx.set(dut.entry.valid, 0)
        for _ in range(3):  # drain stages M and W
            await ctx.tick()
        assert not ctx.get(dut.busy)
        res["acc"] = [ctx.get(dut.acc.data[r]) for r in range(cfg.act_depth)]
        # write-back ports: read row 1, clear it
        ctx.set(dut.wb.rd_en, 1)
        ctx.set(dut.wb.rd_addr, 1)
        await ctx.tick()
        ctx.set(dut.wb.rd_en, 0)
        res["wb_rd"] = ctx.get(dut.wb.rd_data)
        ctx.set(dut.wb.clr_en, 1)
        ctx.set(dut.wb.clr_addr, 1)
        await ctx.tick()
        ctx.set(dut.wb.clr_en, 0)
        res["cleared"] = ctx.get(dut.acc.data[1])
        res["n_rd"] = n_rd

    amaranth_run(dut, tb)
    want = np.zeros(cfg.act_depth, dtype=np.int64)
    for v, _z, a, _f, row in entries:
        want[row] = wrap(want[row] + int(codebook[v]) * a, cfg.acc_bits)
    np.testing.assert_array_equal(res["acc"], want)
    assert res["wb_rd"] == want[1]
    assert res["cleared"] == 0
    assert res["n_rd"] == len(entries)
    return res


@pytest.mark.parametrize("rows,bubble_p", [(1, 0.0), (2, 0.0), (3, 0.3), (8, 0.1), (32, 0.5)])
def test_arith_random_rows_with_repeats(rows, bubble_p):
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(rows)
    cb = rng.integers(cfg.weight_min, cfg.weight_max + 1, cfg.codebook_size)
    cb[0] = 0
    entries = random_entries(rng, cfg, 200, rows)
    bubbles = [int(rng.random() < bubble_p) * int(rng.integers(1, 3)) for _ in entries]
    run_entries(cfg, cb, 2, entries, bubbles)


def test_arith_wraps_accumulator():
    """Small accumulators overflow: the hardware wraps like hw.arch.fixedpoint.wrap."""
    cfg = PRESETS["tiny"].replace(acc_bits=18, weight_frac_max=10)
    rng = np.random.default_rng(0)
    cb = np.full(cfg.codebook_size, cfg.weight_max)
    cb[0] = 0
    cb[1] = cfg.weight_min
    entries = random_entries(rng, cfg, 100, 3)
    run_entries(cfg, cb, 0, entries, [0] * len(entries))


def test_arith_padding_adds_zero():
    cfg = PRESETS["tiny"]
    cb = np.arange(cfg.codebook_size) * 3
    # row 0, padding (v=0, z=max) to row 16, real entry 2 rows on
    mz = cfg.max_rel_index
    entries = [(5, 0, 7, 1, 0), (0, mz, 9, 0, mz + 1), (3, 1, 9, 0, mz + 3)]
    res = run_entries(cfg, cb, 1, entries, [0, 0, 0])
    assert res["acc"][0] == 105 and res["acc"][mz + 1] == 0 and res["acc"][mz + 3] == 81


@pytest.mark.parametrize("mac_bank", [0, 1])
def test_lstm_banks_mac_and_wb_on_different_banks_at_once(mac_bank):
    """With the LSTM hardware the accumulators are two banks: entries accumulate into one
    (rows from ``acc_base``) in the same cycles as ``wb`` reads and clears the other (the
    element-wise stage beside the next frame's x part); neither disturbs the other."""
    cfg = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)
    half = cfg.acc_bank_words
    assert cfg.acc_banks == 2 and half == 16
    rng = np.random.default_rng(7 + mac_bank)
    codebook = rng.integers(-300, 300, cfg.codebook_size)
    codebook[0] = 0
    entries = random_entries(rng, cfg, 40, half, p_first=0.4)
    other = 1 - mac_bank
    old = rng.integers(-5000, 5000, half)  # the other bank's sums (the frame before)
    dut = ArithUnit(cfg)
    res = {"wb": []}

    async def tb(ctx):
        await replay_host_writes(ctx, dut.host.we, (dut.host.addr, dut.host.wdata),
                                 enumerate(to_unsigned(codebook, cfg.weight_bits), 0))
        for r in range(half):
            ctx.set(dut.banks[other].data[r], int(old[r]))
        ctx.set(dut.acc_base, mac_bank * half)
        for k, (v, z, a, first, _row) in enumerate(entries):
            # wb reads row k of the other bank and clears the row it read the cycle before
            if k < half:
                ctx.set(dut.wb.rd_en, 1)
                ctx.set(dut.wb.rd_addr, other * half + k)
            else:
                ctx.set(dut.wb.rd_en, 0)
            ctx.set(dut.wb.clr_en, int(0 < k <= half))
            ctx.set(dut.wb.clr_addr, other * half + k - 1)
            ctx.set(dut.entry.valid, 1)
            ctx.set(dut.entry.payload.v, v)
            ctx.set(dut.entry.payload.z, z)
            ctx.set(dut.entry.payload.act, a)
            ctx.set(dut.entry.payload.first, first)
            await ctx.tick()
            if k < half:  # the read issued in this cycle, the cycle after
                res["wb"].append(ctx.get(dut.wb.rd_data))
        ctx.set(dut.entry.valid, 0)
        ctx.set(dut.wb.rd_en, 0)
        ctx.set(dut.wb.clr_en, 0)
        for _ in range(3):
            await ctx.tick()
        res["mac"] = [ctx.get(dut.banks[mac_bank].data[r]) for r in range(half)]
        res["other"] = [ctx.get(dut.banks[other].data[r]) for r in range(half)]

    amaranth_run(dut, tb)
    want = np.zeros(half, dtype=np.int64)
    for v, _z, a, _f, row in entries:
        want[row] = wrap(want[row] + int(codebook[v]) * a, cfg.acc_bits)
    np.testing.assert_array_equal(res["mac"], want)
    assert res["wb"] == old.tolist()
    assert res["other"] == [0] * half  # every row read was cleared
