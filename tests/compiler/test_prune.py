import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.arch.errors import EIEError
import scipy.sparse as sp

from compiler.encode import encode_layer
from compiler.prune import pad_aware, padding_entries, prune_balanced, prune_magnitude
from hw.arch.config import PRESETS


def test_magnitude_keeps_exact_count_of_largest():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((37, 53))
    m = prune_magnitude(W, 0.1)
    assert m.sum() == round(0.1 * W.size)
    assert np.abs(W[m]).min() >= np.abs(W[~m]).max()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), rows=st.integers(1, 40), cols=st.integers(1, 12),
       n_pes=st.integers(1, 9), density=st.floats(0.01, 1.0))
def test_balanced_counts_differ_by_at_most_one(seed, rows, cols, n_pes, density):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((rows, cols))
    m = prune_balanced(W, density, n_pes)
    assert m.sum() == max(1, round(density * W.size))
    pe = np.arange(rows) % n_pes
    rows_of = np.bincount(pe, minlength=n_pes)
    for j in range(cols):
        counts = np.bincount(pe[m[:, j]], minlength=n_pes)
        # PEs with room all get within one of each other
        full = counts == rows_of
        if (~full).any():
            assert counts.max() - counts[~full].min() <= 1
        for k in range(n_pes):
            kept = np.abs(W[pe == k, j][m[pe == k, j]])
            dropped = np.abs(W[pe == k, j][~m[pe == k, j]])
            if kept.size and dropped.size:
                assert kept.min() >= dropped.max()


@pytest.mark.parametrize("rows,cols,n_pes,density", [(512, 1024, 32, 0.112),
                                                     (4096, 64, 32, 0.112), (60, 7, 4, 0.3)])
def test_balanced_totals_per_pe_differ_by_at_most_one(rows, cols, n_pes, density):
    """The one-more weights of the columns rotate over the PEs: without it PEs 0..24 of ESE's
    projection kept 2 of their 16 rows in every column and the others 1 (11.6 % imbalance)."""
    W = np.random.default_rng(1).standard_normal((rows, cols))
    m = prune_balanced(W, density, n_pes)
    per_pe = np.bincount(np.nonzero(m)[0] % n_pes, minlength=n_pes)
    assert per_pe.max() - per_pe.min() <= 1


@pytest.mark.parametrize("density", [0, -0.1, 1.01, float("nan")])
def test_density_out_of_range(density):
    with pytest.raises(EIEError, match="density must be in"):
        prune_magnitude(np.ones((2, 2)), density)


def test_rejects_nan_and_bad_shape():
    with pytest.raises(EIEError, match="NaN or Inf"):
        prune_magnitude(np.array([[1.0, np.inf]]), 0.5)
    with pytest.raises(EIEError, match="2-D"):
        prune_magnitude(np.ones(4), 0.5)


def test_pad_aware_by_hand():
    """One PE, one column of 40 rows, span 16: kept rows 0 and 39 leave 38 zeros between them
    (2 padding entries).  Row 20 (0.3) splits that gap but leaves 19 + 18 zeros (still 2), so
    it may not go in; a row in 22..38 splits it into 16 + ... no: the window of useful rows
    is 1 + 38 mod 16 = 7 .. 16 (one padding fewer), whose weights are 0.01.  The weakest kept
    weight whose removal adds no padding is row 0 (0.5): without it the gap before the new
    row is shorter than 16.  The count stays 2 and one padding entry goes."""
    W = np.full((40, 1), 0.01)
    W[0], W[39], W[20] = 0.5, 0.9, 0.3
    mask = np.zeros((40, 1), bool)
    mask[[0, 39]] = True
    assert padding_entries(mask, 1, 16) == 2
    out = pad_aware(mask, W, 1, 16)
    assert out.sum() == 2 and padding_entries(out, 1, 16) == 1
    assert out[39] and not out[0] and out[7:17].sum() == 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), rows=st.integers(1, 200), cols=st.integers(1, 6),
       n_pes=st.integers(1, 5), density=st.floats(0.02, 0.6), span=st.sampled_from([2, 4, 16]))
def test_pad_aware_keeps_every_slice_count_and_never_adds_padding(seed, rows, cols, n_pes,
                                                                   density, span):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((rows, cols))
    m = prune_balanced(W, density, n_pes)
    out = pad_aware(m, W, n_pes, span)
    pe = np.arange(rows) % n_pes
    for j in range(cols):
        assert (np.bincount(pe[m[:, j]], minlength=n_pes) ==
                np.bincount(pe[out[:, j]], minlength=n_pes)).all()
    assert padding_entries(out, n_pes, span) <= padding_entries(m, n_pes, span)


def test_padding_entries_is_the_encoders():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((300, 20))
    for m in (prune_magnitude(W, 0.05), pad_aware(prune_magnitude(W, 0.05), W, 4, 16)):
        enc = encode_layer(sp.csc_matrix(m.astype(np.int64)), PRESETS["tiny"])
        assert int(enc.padding.sum()) == padding_entries(m, 4, 16)


def _pruned(rng, shape, density):
    """A matrix with ``round(density * size)`` non-zeros, the rest exact zeros."""
    W = rng.standard_normal(shape)
    W[(rng.permutation(W.size) >= round(density * W.size)).reshape(shape)] = 0.0
    return W


@pytest.mark.parametrize("prune", [prune_magnitude, lambda W, d: prune_balanced(W, d, 4)])
def test_exact_zeros_are_never_kept(prune):
    rng = np.random.default_rng(4)
    W = _pruned(rng, (40, 30), 0.2)
    for density in (0.2, 0.5, 1.0):  # as many as the non-zeros or more: the model's own mask
        np.testing.assert_array_equal(prune(W, density), W != 0)
    m = prune(W, 0.1)  # fewer: among the non-zeros only
    assert not (m & (W == 0)).any() and 0 < m.sum() <= round(0.1 * W.size)
    assert not prune(np.zeros((6, 5)), 0.5).any()  # an all-zero matrix keeps nothing
    assert not prune(-0.0 * np.ones((6, 5)), 1.0).any()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), rows=st.integers(1, 40), cols=st.integers(1, 12),
       n_pes=st.integers(1, 9), own=st.floats(0.05, 1.0), density=st.floats(0.01, 1.0))
def test_balanced_on_a_pruned_matrix_keeps_only_non_zeros_balanced(seed, rows, cols, n_pes,
                                                                   own, density):
    """A slice's room is its non-zeros: the PEs that still have some stay within one of each
    other in every column, and each slice keeps its largest."""
    rng = np.random.default_rng(seed)
    W = _pruned(rng, (rows, cols), own)
    m = prune_balanced(W, density, n_pes)
    assert not (m & (W == 0)).any()
    assert m.sum() <= max(1, round(density * W.size))
    if max(1, round(density * W.size)) >= np.count_nonzero(W):
        np.testing.assert_array_equal(m, W != 0)
        return
    pe = np.arange(rows) % n_pes
    for j in range(cols):
        counts = np.bincount(pe[m[:, j]], minlength=n_pes)
        room = np.bincount(pe[W[:, j] != 0], minlength=n_pes)
        if (counts < room).any():
            assert counts.max() - counts[counts < room].min() <= 1
        for k in range(n_pes):
            col = np.abs(W[pe == k, j])
            kept, dropped = col[m[pe == k, j]], col[~m[pe == k, j] & (col > 0)]
            if kept.size and dropped.size:
                assert kept.min() >= dropped.max()
