"""Share-weights pass: map the kept weights of a layer onto a small codebook.

Every method returns ``(indices, centroids)``: ``centroids`` has ``2**bits`` float entries with
``centroids[0] == 0.0`` reserved for the exact zero (pruned weights and padding entries), and
each kept weight gets an index in ``1 .. 2**bits - 1``, so the same hardware runs every method.

* ``kmeans`` — Deep Compression: 1-D k-means (Lloyd) over the kept weights with linear
  initialisation (centroids evenly spaced between the smallest and the largest weight), which
  Deep Compression found best because it keeps the rare large weights represented.
* ``linear`` — the linear initialisation itself, untrained (uniform quantisation).
* ``pow2`` — INQ-style: centroids ``±2**e`` for the exponents just below the largest magnitude;
  a multiplier could be a shifter.
* ``ternary`` — ``{-t, +t}`` by sign with ``t`` = mean magnitude of the kept weights (TWN-style
  scale); index 0 stays the pruned zero.
* ``binary`` — as ternary but with separate scales for the two signs (mean of each sign's
  magnitudes), i.e. two learned levels.
"""

from __future__ import annotations

import numpy as np

from hw.arch.errors import EIEError

METHODS = ("kmeans", "linear", "pow2", "ternary", "binary")


def _check(values, bits, method) -> np.ndarray:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise EIEError(f"codebook bits must be in 1..8, got {bits!r}")
    if method not in METHODS:
        raise EIEError(f"unknown quantizer {method!r}; choose from {', '.join(METHODS)}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise EIEError("no weights to quantize")
    if not np.all(np.isfinite(v)):
        raise EIEError("weights contain NaN or Inf")
    if method in ("ternary", "binary") and bits < 2:
        raise EIEError(f"{method} quantization needs at least 2 codebook bits "
                       f"(index 0 is the reserved zero), got {bits}")
    return v


def _assign_sorted(centers: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Index (into sorted ``centers``) of the nearest center for every value."""
    mids = (centers[1:] + centers[:-1]) / 2
    return np.searchsorted(mids, v)


def kmeans_1d(values, k: int, iters: int = 100, tol: float = 1e-9) -> np.ndarray:
    """1-D k-means with linear initialisation; returns ``k`` sorted centroids.

    Sorting once makes every Lloyd iteration O(k log n): cluster boundaries are midpoints of
    the centroids, found by binary search, and cluster sums come from a prefix sum.
    """
    s = np.sort(np.asarray(values, dtype=np.float64))
    lo, hi = s[0], s[-1]
    c = np.linspace(lo, hi, k) if k > 1 else np.array([s.mean()])
    if k == 1 or lo == hi:
        return np.full(k, s.mean()) if lo == hi else c
    csum = np.concatenate([[0.0], np.cumsum(s)])
    for _ in range(iters):
        mids = (c[1:] + c[:-1]) / 2
        edges = np.concatenate([[0], np.searchsorted(s, mids, side="right"), [s.size]])
        cnt = np.diff(edges)
        sums = csum[edges[1:]] - csum[edges[:-1]]
        new = np.where(cnt > 0, sums / np.maximum(cnt, 1), c)  # empty clusters stay put
        new.sort()
        if np.max(np.abs(new - c)) <= tol * max(abs(lo), abs(hi), 1e-30):
            c = new
            break
        c = new
    return c


def quantize(values, bits: int, method: str = "kmeans", iters: int = 100):
    """Quantize a layer's kept weights to a ``2**bits``-entry codebook with a reserved zero.

    Parameters
    ----------
    values : array_like of float
        The kept (non-pruned) weights, in any order.
    bits : int
        Codebook bits, 1..8 (``2**bits - 1`` non-zero centroids).
    method : str
        One of :data:`METHODS`.
    iters : int
        Maximum k-means iterations.

    Returns
    -------
    indices : np.ndarray of uint8 (uint16 for 8 bits), values in ``1 .. 2**bits - 1``
    centroids : np.ndarray of float64, length ``2**bits``, ``centroids[0] == 0``
    """
    v = _check(values, bits, method)
    K = 1 << bits
    k = K - 1
    if method == "kmeans":
        centers = kmeans_1d(v, k, iters)
    elif method == "linear":
        centers = np.linspace(v.min(), v.max(), k) if k > 1 else np.array([v.mean()])
    elif method == "pow2":
        top = np.floor(np.log2(max(np.max(np.abs(v)), 1e-30)))
        n_pos = k // 2
        n_neg = k - n_pos
        pos = 2.0 ** (top - np.arange(n_pos))
        neg = -(2.0 ** (top - np.arange(n_neg)))
        centers = np.sort(np.concatenate([neg, pos]))
    elif method == "ternary":
        t = float(np.mean(np.abs(v)))
        centers = np.array([-t, t])
    else:  # binary: one level per sign, each the mean magnitude of that sign
        neg, pos = v[v < 0], v[v >= 0]
        tn = float(np.mean(-neg)) if neg.size else float(np.mean(np.abs(v)))
        tp = float(np.mean(pos)) if pos.size else float(np.mean(np.abs(v)))
        centers = np.array([-tn, tp])
    if method in ("ternary", "binary"):
        near = (v >= 0).astype(np.int64)  # by sign
    else:
        near = _assign_sorted(centers, v)
    centroids = np.zeros(K, dtype=np.float64)
    centroids[1: 1 + centers.size] = centers
    dtype = np.uint8 if bits < 8 else np.uint16
    return (near + 1).astype(dtype), centroids
