"""Prune pass: magnitude pruning to a target density, plain or load-balance-aware (ESE).

Both return a boolean keep-mask with ``round(density * W.size)`` kept weights (at least one),
but never an exact zero: a weight that is 0.0 is already pruned and no density brings it back.
A matrix with no more non-zeros than the density keeps (a model pruned before it came here)
keeps exactly its own non-zeros, and an all-zero matrix keeps none.  Ties in magnitude are
broken deterministically by position (NumPy's stable sorts).
"""

from __future__ import annotations

import numpy as np

from hw.arch.errors import EIEError


def _check(W, density: float) -> np.ndarray:
    W = np.asarray(W)
    if W.ndim != 2:
        raise EIEError(f"weights must be a 2-D matrix, got shape {W.shape}")
    if W.size == 0:
        raise EIEError(f"weights are empty (shape {W.shape})")
    if not np.issubdtype(W.dtype, np.floating) and not np.issubdtype(W.dtype, np.integer):
        raise EIEError(f"weights must be numbers, got dtype {W.dtype}")
    if not np.all(np.isfinite(W)):
        raise EIEError("weights contain NaN or Inf")
    if isinstance(density, bool) or not isinstance(density, (int, float, np.floating)) or \
            not np.isfinite(density) or not 0 < density <= 1:
        raise EIEError(f"density must be in (0, 1], got {density}")
    return W


def kept_count(size: int, density: float) -> int:
    """Weights kept at ``density``: ``round(density * size)``, at least 1."""
    return max(1, min(size, int(round(density * size))))


def layer_target(density, k: int, default: float) -> float:
    """The target density of network layer ``k``.

    Parameters
    ----------
    density : float, sequence of float or None
        :attr:`compiler.options.Options.density`: one value for every layer, one per layer
        (validated by :func:`compiler.options.check_options`), or None.
    k : int
        The layer's index in the network.
    default : float
        The layer's own target (``Layer.density``), taken when ``density`` is None.
    """
    if density is None:
        return float(default)
    if isinstance(density, (list, tuple, np.ndarray)):
        return float(density[k] if len(density) > 1 else density[0])
    return float(density)


def prune_magnitude(W, density: float) -> np.ndarray:
    """Keep the ``round(density * W.size)`` largest-magnitude weights.

    Parameters
    ----------
    W : np.ndarray, shape (rows, cols)
    density : float in (0, 1]

    Returns
    -------
    np.ndarray of bool, same shape as ``W``
        Never keeps an exact zero: when the density keeps at least ``W``'s non-zeros, exactly
        those (the model's own mask).
    """
    W = _check(W, density)
    keep = kept_count(W.size, density)
    nonzero = W != 0
    if keep >= np.count_nonzero(nonzero):
        return nonzero
    # the `keep` largest magnitudes are all non-zeros here: there are more non-zeros than that
    a = np.abs(W).ravel()
    mask = _top_k_band(a, keep) if a.size > 1 << 20 else None
    if mask is None:
        mask = np.zeros(W.size, dtype=bool)
        # argpartition is O(n); the kept set is the top `keep` magnitudes
        mask[np.argpartition(a, W.size - keep)[W.size - keep:]] = True
    return mask.reshape(W.shape)


def _top_k_band(a: np.ndarray, keep: int):
    """Top-``keep`` mask of a large array without partitioning all of it.

    A strided sample brackets the threshold in a narrow band of values; everything above the
    band is kept and only the band is partitioned.  Returns None when the sample's bracket
    misses (then the caller partitions everything), so the result is always exact.
    """
    n = a.size
    q = 1.0 - keep / n
    sample = a[:: max(1, n // 200_000)]
    lo, hi = np.quantile(sample, [max(0.0, q - 0.01), min(1.0, q + 0.01)])
    above = a > hi
    n_above = int(np.count_nonzero(above))
    band = np.flatnonzero((a > lo) & ~above)
    need = keep - n_above
    if need < 0 or need > band.size:
        return None
    if need:
        vals = a[band]
        # ties at the threshold go to the lower index (stable)
        pick = band[np.argsort(-vals, kind="stable")[:need]]
        above[pick] = True
    return above


def prune_balanced(W, density: float, n_pes: int, valid=None) -> np.ndarray:
    """ESE load-balance-aware pruning: every PE's slice of every column keeps the same count.

    Row ``i`` belongs to PE ``i % n_pes``.  The total kept is ``round(density * W.size)``; it is
    spread over the ``n_pes x cols`` slices so that, within each column, the PEs' counts differ
    by at most one (a slice never keeps more weights than it has rows), the one-more slices of
    successive columns go to successive PEs (so that the PEs' totals over all columns differ by
    at most one too, when no slice is full), and each slice keeps its largest-magnitude
    weights.  Exact zeros are never kept: a slice's room is its non-zero weights, and a column
    with fewer non-zeros than its share keeps them all (the total then falls short; a pruned
    weight does not come back).  When the density keeps at least every non-zero, the result is
    the non-zeros themselves (the model's own mask: nothing to drop, nothing to balance).

    Parameters
    ----------
    W : np.ndarray, shape (rows, cols)
    density : float in (0, 1]
        Of the valid rows' weights.
    n_pes : int
    valid : bool array (rows,), optional
        The rows that hold weights (default all): an LSTM's padded cell slots are not, and
        neither count towards a PE's room nor are ever kept.

    Returns
    -------
    np.ndarray of bool, same shape as ``W``
    """
    W = _check(W, density)
    if isinstance(n_pes, bool) or not isinstance(n_pes, (int, np.integer)) or n_pes < 1:
        raise EIEError(f"n_pes must be a positive integer, got {n_pes!r}")
    rows, cols = W.shape
    valid = np.ones(rows, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    keep = kept_count(int(valid.sum()) * cols, density)
    avail = valid[:, None] & (W != 0)  # the weights a slice may keep
    if keep >= np.count_nonzero(avail):
        return avail
    n = int(n_pes)
    rl = -(-rows // n)  # local rows of PE 0 (the longest slices)
    # the room of every (PE, column) slice: its non-zeros (PE k holds rows k, k + n, ...)
    padded = np.zeros((rl * n, cols), dtype=bool)
    padded[:rows] = avail
    room = padded.reshape(rl, n, cols).sum(axis=0, dtype=np.int64)
    del padded
    # per-column budget: keep/cols each, remainder to the first columns
    col_budget = np.full(cols, keep // cols, dtype=np.int64)
    col_budget[: keep % cols] += 1
    counts = _spread(room, col_budget)
    # pad rows to a multiple of n: (rl, n, cols); padded rows and zeros get -1, ranked last
    pad = np.full((rl * n, cols), -1.0, dtype=np.float64)
    pad[:rows] = np.where(avail, np.abs(W), -1.0)
    mags = pad.reshape(rl, n, cols)
    # rank rows inside each (PE, column) slice by magnitude, largest first (stable on ties)
    order = np.argsort(-mags, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(rl)[:, None, None], axis=0)
    keep_mask = ranks < counts[None, :, :]
    return keep_mask.reshape(rl * n, cols)[:rows].copy()


def _spread(room: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Every column's ``budget`` spread over the PEs, water-filling their ``room`` ``(n, cols)``:
    each PE gets ``min(room, L)`` for the column's highest level ``L`` that fits the budget, and
    what is left one more each to PEs with more room, in an order rotated from column to
    column (so that the one-more weights go to PE after PE and the PEs' totals stay within one
    too, when no slice is full).  A column whose room is below its budget keeps all it has."""
    n, cols = room.shape
    lo, hi = np.zeros(cols, dtype=np.int64), room.max(axis=0).astype(np.int64)
    while (lo < hi).any():  # the highest level whose sum fits, by bisection
        mid = (lo + hi + 1) // 2
        fits = np.minimum(room, mid[None, :]).sum(axis=0) <= budget
        lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid - 1)
    counts = np.minimum(room, lo[None, :])
    more = room > lo[None, :]  # the PEs that can take one more
    n_more = more.sum(axis=0)
    rem = np.minimum(budget - counts.sum(axis=0), n_more)
    rank = np.cumsum(more, axis=0) - 1
    start = np.concatenate(([0], np.cumsum(rem)[:-1]))
    rank = (rank - start[None, :]) % np.maximum(n_more, 1)[None, :]
    return counts + (more & (rank < rem[None, :]))


def _slices(a: np.ndarray, n: int, fill) -> np.ndarray:
    """``(rows, cols)`` as ``(n * cols, rl)``: every (PE, column) slice's local rows in order
    (row ``i`` is PE ``i % n``'s local row ``i // n``; rows past ``rows`` get ``fill``)."""
    rows, cols = a.shape
    rl = -(-rows // n)
    pad = np.full((rl * n, cols), fill, dtype=a.dtype)
    pad[:rows] = a
    return pad.reshape(rl, n, cols).transpose(1, 2, 0).reshape(n * cols, rl)


def _unslices(s: np.ndarray, rows: int, n: int, cols: int) -> np.ndarray:
    rl = s.shape[1]
    return s.reshape(n, cols, rl).transpose(2, 0, 1).reshape(rl * n, cols)[:rows]


def _gaps(keep: np.ndarray) -> np.ndarray:
    """Per slice and kept row, the zeros since the slice's previous kept row (0 elsewhere)."""
    rl = keep.shape[1]
    dt = np.int16 if rl < 1 << 15 else np.int32 if rl < 1 << 31 else np.int64
    idx = np.arange(rl, dtype=dt)
    prev = np.maximum.accumulate(np.where(keep, idx, dt(-1)), axis=1)
    before = np.empty_like(prev)
    before[:, 0] = -1
    before[:, 1:] = prev[:, :-1]
    gap = idx - before
    gap -= 1
    gap *= keep
    return gap


def padding_entries(mask, n_pes: int, span: int) -> int:
    """The padding entries EIE's encoding needs for ``mask`` (row ``i`` on PE ``i % n_pes``):
    a gap of ``g`` zero rows before a kept row within a PE's column takes ``g // span``."""
    m = np.asarray(mask, dtype=bool)
    return int((_gaps(_slices(m, n_pes, False)) // span).sum())


def _swap_round(k: np.ndarray, m: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """One swap in each slice of ``k`` that needs padding (see :func:`pad_aware`); returns the
    new slices and which of them changed."""
    s, rl = k.shape
    idx, rows_i = np.arange(rl), np.arange(s)
    gap = _gaps(k)
    pads = (gap // span).sum(axis=1)
    after = np.argmax(gap, axis=1)  # the kept row after the slice's longest gap
    g = gap[rows_i, after]
    first = after - g  # its first zero row
    # a weight at first + x splits it into x and g - 1 - x zeros: one padding entry fewer
    # for x in [g mod span, span - 1]; the largest such pruned weight goes in
    win = (idx >= (first + g % span)[:, None]) & (idx <= (first + span - 1)[:, None]) & \
        (idx < after[:, None]) & ~k & (m > 0)
    cand = np.where(win, m, -1.0)
    ins = np.argmax(cand, axis=1)
    ok = (pads > 0) & (cand[rows_i, ins] > 0)
    k2 = k.copy()
    k2[rows_i[ok], ins[ok]] = True
    # out goes the weakest kept weight whose removal adds no padding (merging its two gaps)
    gap2 = _gaps(k2)
    nxt = np.minimum.accumulate(np.where(k2, idx, rl)[:, ::-1], axis=1)[:, ::-1]
    nxt = np.concatenate([nxt[:, 1:], np.full((s, 1), rl)], axis=1)
    has_next = nxt < rl
    g_next = np.where(has_next, np.take_along_axis(gap2, np.minimum(nxt, rl - 1), axis=1), 0)
    more = np.where(has_next, (gap2 + g_next + 1) // span - gap2 // span - g_next // span,
                    -(gap2 // span))
    removable = k2 & (more <= 0)
    removable[rows_i, ins] = False
    # only among the slice's weaker half: a swap never drops one of its larger weights
    count = k.sum(axis=1)
    ranked = np.sort(np.where(k, m, np.inf), axis=1)
    median = ranked[rows_i, np.maximum(count - 1, 0) // 2]  # the lower median
    removable &= m <= np.where(count > 0, median, -1.0)[:, None]
    rcand = np.where(removable, m, np.inf)
    rm = np.argmin(rcand, axis=1)
    ok &= np.isfinite(rcand[rows_i, rm])
    k3 = k2.copy()
    k3[rows_i[ok], rm[ok]] = False
    ok &= (_gaps(k3) // span).sum(axis=1) < pads
    return np.where(ok[:, None], k3, k), ok


def pad_aware(mask, W, n_pes: int, span: int, rounds: int = 64) -> np.ndarray:
    """Padding-aware selection: keep ``mask``'s count in every (PE, column) slice, but swap
    weights so that fewer gaps need EIE's padding entries.

    In every slice that needs padding (a gap of ``span`` or more zero rows before a kept row,
    ``span = 2**rel_index_bits``), the largest pruned weight that splits the slice's longest
    gap into two shorter than ``span`` is kept instead of the slice's smallest kept weight
    whose removal adds no padding, among the weaker half of the slice's kept weights (so a
    swap never drops one of its larger weights); a swap is made only when the slice's padding
    shrinks.
    Rounds repeat while some slice improves.  The counts per slice (ESE's load balance, or any
    other) are unchanged; the kept weights' magnitudes drop a little (on a 4096 x 512 Laplace
    matrix at 11.2 % on 32 PEs: every padding entry gone for 3 % of the kept magnitude).

    Parameters
    ----------
    mask : bool array (rows, cols)
        The kept weights; row ``i`` is on PE ``i % n_pes``.
    W : array (rows, cols)
    n_pes, span : int

    Returns
    -------
    np.ndarray of bool, the new mask
    """
    m_in = np.asarray(mask, dtype=bool)
    rows, cols = m_in.shape
    n = int(n_pes)
    k = _slices(m_in, n, False)
    mags = _slices(np.abs(np.asarray(W, dtype=np.float64)), n, -1.0)
    todo = np.flatnonzero((_gaps(k) // span).any(axis=1))
    for _ in range(rounds):
        if todo.size == 0:
            break
        new, ok = _swap_round(k[todo], mags[todo], span)
        k[todo] = new
        todo = todo[ok]
    return _unslices(k, rows, n, cols).copy()
