# amaranth: UnusedElaboratable=no
"""LNZD tree against NumPy: exhaustive on 4 and 16 bits, random on 64 and odd widths."""

from __future__ import annotations

import numpy as np
import pytest

from hw.lnzd import LNZD, index_bits, lnzd_levels, lnzd_nodes
from tests.conftest import amaranth_run


def lowest_set(masks):
    """NumPy reference: (valid, index of the lowest set bit, 0 when none)."""
    masks = np.asarray(masks, dtype=np.uint64)
    valid = masks != 0
    low = masks & (~masks + np.uint64(1))  # isolate the lowest set bit
    idx = np.where(valid, np.log2(np.where(valid, low, 1).astype(np.float64)), 0)
    return valid, idx.astype(np.int64)


def run_masks(width, masks):
    """Drive every mask through the combinational tree; return (valid, index) arrays."""
    dut = LNZD(width)
    got_v, got_i = [], []

    async def tb(ctx):
        for mk in masks:
            ctx.set(dut.mask, int(mk))
            got_v.append(ctx.get(dut.valid))
            got_i.append(ctx.get(dut.index))

    amaranth_run(dut, tb, clock=False)
    return np.array(got_v, dtype=bool), np.array(got_i, dtype=np.int64)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 16])
def test_lnzd_exhaustive(width):
    masks = np.arange(1 << width, dtype=np.uint64)
    v, i = run_masks(width, masks)
    want_v, want_i = lowest_set(masks)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(i, want_i)


@pytest.mark.parametrize("width", [64, 17, 256])
def test_lnzd_random(width):
    rng = np.random.default_rng(width)
    n = 3000
    # mixed densities: sparse masks exercise the deep lowest-bit paths, single bits every leaf
    bits = rng.random((n, width)) < rng.choice([0.01, 0.05, 0.3, 0.9], n)[:, None]
    bits[:width] = np.eye(width, dtype=bool)[:n]
    bits[-1] = False
    masks = [int("".join("1" if b else "0" for b in row[::-1]), 2) for row in bits]
    v, i = run_masks(width, masks)
    want_v = bits.any(axis=1)
    want_i = np.where(want_v, bits.argmax(axis=1), 0)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(i, want_i)


def test_lnzd_node_count_matches_eie():
    # EIE: 16 + 4 + 1 = 21 nodes for 64 PEs
    assert lnzd_levels(64) == [16, 4, 1]
    assert LNZD(64).n_nodes == lnzd_nodes(64) == 21
    assert lnzd_levels(256) == [64, 16, 4, 1]
    assert lnzd_levels(4) == [1] and lnzd_levels(1) == [1]
    assert lnzd_levels(5) == [2, 1]
    assert index_bits(64) == 6 and index_bits(1) == 1 and index_bits(5) == 3
    assert len(LNZD(64).index) == 6


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_lnzd_rejects_bad_width(bad):
    with pytest.raises(ValueError, match="positive integer"):
        LNZD(bad)
