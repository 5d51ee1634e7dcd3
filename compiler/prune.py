"""Prune pass: magnitude pruning to a target density, plain or load-balance-aware (ESE).

Both return a boolean keep-mask with exactly ``round(density * W.size)`` kept weights (at least
one).  Ties in magnitude are broken deterministically by position (NumPy's stable sorts).
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


def prune_magnitude(W, density: float) -> np.ndarray:
    """Keep the ``round(density * W.size)`` largest-magnitude weights.

    Parameters
    ----------
    W : np.ndarray, shape (rows, cols)
    density : float in (0, 1]

    Returns
    -------
    np.ndarray of bool, same shape as ``W``
    """
    W = _check(W, density)
    keep = kept_count(W.size, density)
    if keep == W.size:
        return np.ones(W.shape, dtype=bool)
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


def prune_balanced(W, density: float, n_pes: int) -> np.ndarray:
    """ESE load-balance-aware pruning: every PE's slice of every column keeps the same count.

    Row ``i`` belongs to PE ``i % n_pes``.  The total kept is ``round(density * W.size)``; it is
    spread over the ``n_pes x cols`` slices so that, within each column, the PEs' counts differ
    by at most one (a slice never keeps more weights than it has rows), the one-more slices of
    successive columns go to successive PEs (so that the PEs' totals over all columns differ by
    at most one too, when no slice is full), and each slice keeps its largest-magnitude
    weights.

    Parameters
    ----------
    W : np.ndarray, shape (rows, cols)
    density : float in (0, 1]
    n_pes : int

    Returns
    -------
    np.ndarray of bool, same shape as ``W``
    """
    W = _check(W, density)
    if isinstance(n_pes, bool) or not isinstance(n_pes, (int, np.integer)) or n_pes < 1:
        raise EIEError(f"n_pes must be a positive integer, got {n_pes!r}")
    rows, cols = W.shape
    keep = kept_count(W.size, density)
    n = int(n_pes)
    rl = -(-rows // n)  # local rows of PE 0 (the longest slices)
    # rows of every PE: PE k has ceil((rows - k) / n)
    rows_of = np.array([(rows - k + n - 1) // n if k < rows else 0 for k in range(n)])
    # per-column budget: keep/cols each, remainder to the first columns
    col_budget = np.full(cols, keep // cols, dtype=np.int64)
    col_budget[: keep % cols] += 1
    # within a column, spread the budget over PEs: base + 1 for the first `rem` PEs, capped by
    # rows_of; capacity lost to short PEs is re-spread (at most a few passes)
    counts = np.zeros((n, cols), dtype=np.int64)
    left = col_budget.copy()
    for _ in range(n + 1):
        if not left.any():
            break
        room = rows_of[:, None] - counts  # (n, cols)
        open_pes = (room > 0).sum(axis=0)
        give = np.where(open_pes > 0, left // np.maximum(open_pes, 1), 0)
        rem = np.where(open_pes > 0, left % np.maximum(open_pes, 1), 0)
        # order of open PEs in each column, rotated so that the columns' extra weights go
        # to PE after PE (not always to the first ones): the PEs' totals stay within one too
        rank = np.cumsum(room > 0, axis=0) - 1
        start = np.concatenate(([0], np.cumsum(rem)[:-1]))
        rank = (rank - start[None, :]) % np.maximum(open_pes, 1)[None, :]
        add = np.where(room > 0, give[None, :] + (rank < rem[None, :]), 0)
        add = np.minimum(add, room)
        counts += add
        left = col_budget - counts.sum(axis=0)
    # pad rows to a multiple of n: (rl, n, cols); padded rows get -1 so they are never kept
    pad = np.full((rl * n, cols), -1.0, dtype=np.float64)
    pad[:rows] = np.abs(W)
    mags = pad.reshape(rl, n, cols)
    # rank rows inside each (PE, column) slice by magnitude, largest first (stable on ties)
    order = np.argsort(-mags, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(rl)[:, None, None], axis=0)
    keep_mask = ranks < counts[None, :, :]
    return keep_mask.reshape(rl * n, cols)[:rows].copy()
