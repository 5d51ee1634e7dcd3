"""Row permutation: which output row goes to which PE, chosen so that every PE gets the same work.

Row ``i`` of a layer lives on PE ``i % N`` (EIE's interleave), but which *user* row sits at
hardware row ``i`` is free: permuting the rows of layer ``k`` (and its bias) and the columns of
layer ``k + 1`` the same way leaves every output bit-identical (each row's sum runs over the same
columns; the accumulators wrap, so the order does not matter either).  The step chooses, per
layer, ``order`` with ``order[i]`` = the user row placed at hardware row ``i``:

1. **Assignment** (longest processing time first): rows by descending work (non-zeros) go to
   the least-loaded PE that still has a free slot; every PE keeps exactly the rows the plain
   interleave gives it (``len(range(k, rows, N))``: the activation memories' layout), and in a
   layer that runs in output batches (:func:`compiler.passes.row_batches`) each batch is
   balanced on its own (rows are first dealt to batches, heaviest first, to the lightest).  A
   broadcast-bound layer (about one entry per PE per column or fewer: NT-We) is assigned by
   :func:`_lpt_cover` instead, which also evens out the PEs' empty columns (each costs its
   pointer read unit a cycle).
2. **Local order**: each PE's rows by descending non-zeros.  A column slice's trailing zeros
   need no padding entries, and dense rows first leave short gaps between a column's entries,
   so this cuts padding (EIE pads every gap over ``2**rel_index_bits - 1`` rows).
3. **Refinement**: the exact time (entries, padding included, plus empty columns:
   :func:`pe_work`) of the busiest and the lightest PE is evened by row swaps between them
   while that lowers the busiest.

With ESE's load-balance-aware pruning (``--balance``: equal non-zeros per PE in every column)
only step 2 is taken (:func:`local_order`): moving rows across PEs would undo that balance.
The plain interleave is ``order = arange(rows)`` (``--no-permute``).  The last layer's outputs
are put back into the user's order when they are read back (:func:`to_user_order`), so every
comparison, accuracy and report sees the model as the user gave it.
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp

from compiler.passes import row_batches
from hw.arch.config import EIEConfig

#: refinement swaps tried per output batch at most (each costs two PEs' exact work)
MAX_SWAPS = 64
#: entries per PE per column below which a layer is broadcast-bound (:func:`_lpt_cover`)
SPARSE_ENTRIES_PER_COLUMN = 1.5


def pe_work(csr: sp.csr_matrix, n: int, span: int, empty: bool = False) -> np.ndarray:
    """Entries per PE (non-zeros plus padding) of a matrix whose row ``i`` is on PE ``i % n``,
    local row ``i // n``; ``span = max_rel_index + 1`` (:func:`compiler.encode.encode_layer`'s
    padding rule, without building the streams).  With ``empty`` every column in which the PE
    has no entry adds one: the cycle its pointer read unit spends on it (hw/pe.py), which is
    the time a PE needs when the broadcast is not the bottleneck."""
    csc = sp.csc_matrix(csr)
    csc.sort_indices()
    r = csc.indices.astype(np.int64)
    c = np.repeat(np.arange(csc.shape[1], dtype=np.int64), np.diff(csc.indptr))
    pe, lr = r % n, r // n
    order = np.argsort(pe, kind="stable")  # (PE, column, local row) order
    pe, c, lr = pe[order], c[order], lr[order]
    key = pe * csc.shape[1] + c
    prev = np.full(lr.size, -1, dtype=np.int64)
    if lr.size:
        same = key[1:] == key[:-1]
        prev[1:][same] = lr[:-1][same]
    pad = (lr - prev - 1) // span
    work = np.bincount(pe, weights=pad + 1, minlength=n).astype(np.int64)
    if empty:
        first = prev < 0  # one per non-empty (PE, column)
        work += csc.shape[1] - np.bincount(pe[first], minlength=n)
    return work


def _slice_work(csr: sp.csr_matrix, rows: list, span: int) -> int:
    """One PE's time on a layer when it holds user rows ``rows`` in this local order: its
    entries (padding included) plus its empty columns (:func:`pe_work` for one PE)."""
    if not rows:
        return csr.shape[1]
    sub = csr[rows].tocsc()
    sub.sort_indices()
    lr = sub.indices.astype(np.int64)
    prev = np.empty_like(lr)
    prev[1:] = lr[:-1]
    starts = sub.indptr[:-1][np.diff(sub.indptr) > 0]
    prev[starts] = -1
    pad = int(((lr - prev - 1) // span).sum())
    return int(sub.nnz + pad + csr.shape[1] - starts.size)


def _lpt(weights: np.ndarray, capacity: np.ndarray) -> list:
    """Rows (indices into ``weights``) per bin: heaviest first to the lightest bin with room."""
    bins = [[] for _ in capacity]
    heap = [(0, k) for k in range(len(capacity)) if capacity[k] > 0]
    heapq.heapify(heap)
    for i in np.argsort(-weights, kind="stable"):
        load, k = heapq.heappop(heap)
        bins[k].append(int(i))
        if len(bins[k]) < capacity[k]:
            heapq.heappush(heap, (load + int(weights[i]), k))
    return bins


def _lpt_cover(csr: sp.csr_matrix, capacity: np.ndarray) -> list:
    """As :func:`_lpt` for a layer with about one entry per PE per column or fewer, where a
    PE's time is its entries plus its empty columns (one pointer-read cycle each): each row,
    heaviest first, goes to the PE with room whose time grows least, i.e. whose rows already
    cover fewest of the row's columns."""
    n, cols = len(capacity), csr.shape[1]
    cover = np.zeros((n, cols), dtype=bool)
    time = np.full(n, float(cols))
    bins = [[] for _ in range(n)]
    nnz = np.diff(csr.indptr)
    for i in np.argsort(-nnz, kind="stable"):
        cs = csr.indices[csr.indptr[i]:csr.indptr[i + 1]]
        overlap = cover[:, cs].sum(axis=1)
        cand = time + overlap
        cand[[len(b) >= c for b, c in zip(bins, capacity)]] = np.inf
        k = int(np.argmin(cand))
        bins[k].append(int(i))
        time[k] = cand[k]
        cover[k, cs] = True
    return bins


def _refine(csr: sp.csr_matrix, nnz: np.ndarray, bins: list, span: int) -> list:
    """Swap rows between the busiest and the lightest PE while that lowers the busiest."""
    order = [sorted(b, key=lambda i: (-nnz[i], i)) for b in bins]
    work = [_slice_work(csr, b, span) for b in order]
    for _ in range(MAX_SWAPS):
        h, lo = int(np.argmax(work)), int(np.argmin(work))
        gap = work[h] - work[lo]
        if gap <= 1 or not order[h] or not order[lo]:
            break
        # the pair whose non-zero difference is closest to half the gap
        a = np.asarray(order[h])
        b = np.asarray(order[lo])
        diff = nnz[a][:, None] - nnz[b][None, :]
        ia, ib = np.unravel_index(int(np.argmin(np.abs(diff - gap / 2))), diff.shape)
        if diff[ia, ib] <= 0:
            break
        na = [i for i in order[h] if i != a[ia]] + [int(b[ib])]
        nb = [i for i in order[lo] if i != b[ib]] + [int(a[ia])]
        na.sort(key=lambda i: (-nnz[i], i))
        nb.sort(key=lambda i: (-nnz[i], i))
        wa, wb = _slice_work(csr, na, span), _slice_work(csr, nb, span)
        if max(wa, wb) >= work[h]:
            break
        order[h], order[lo], work[h], work[lo] = na, nb, wa, wb
    return order


def local_order(Q, cfg: EIEConfig) -> np.ndarray:
    """Only step 2: every PE keeps the rows of the plain interleave (and every output batch
    its rows), in descending order of non-zeros.  For ESE's load-balance-aware pruning
    (``--balance``), whose equal non-zeros per PE per column a move across PEs would undo."""
    csr = sp.csr_matrix(Q)
    rows, n = csr.shape[0], cfg.n_pes
    nnz = np.diff(csr.indptr).astype(np.int64)
    order = np.arange(rows, dtype=np.int64)
    for r0, nr in row_batches(rows, cfg):
        for k in range(min(n, nr)):
            pos = r0 + np.arange(k, nr, n)
            order[pos] = pos[np.argsort(-nnz[pos], kind="stable")]
    return order


def balanced_order(Q, cfg: EIEConfig) -> np.ndarray:
    """``order[i]`` = the user row at hardware row ``i`` of a layer (module docstring).

    Parameters
    ----------
    Q : scipy.sparse matrix or array, shape (rows, cols)
        The layer's codebook indices (0: pruned).
    cfg : EIEConfig
    """
    csr = sp.csr_matrix(Q)
    rows = csr.shape[0]
    n, span = cfg.n_pes, cfg.max_rel_index + 1
    nnz = np.diff(csr.indptr).astype(np.int64)
    batches = row_batches(rows, cfg)
    # deal the rows to the output batches: heaviest first to the lightest with room
    members = _lpt(nnz, np.array([nr for _, nr in batches]))
    order = np.empty(rows, dtype=np.int64)
    for (r0, nr), mem in zip(batches, members):
        mem = np.asarray(mem, dtype=np.int64)
        capacity = np.array([len(range(k, nr, n)) for k in range(n)])
        sub = csr[mem]
        # broadcast-bound (about one entry per PE per column or fewer): balance the PEs'
        # empty columns too
        sparse = nnz[mem].sum() <= n * csr.shape[1] * SPARSE_ENTRIES_PER_COLUMN
        bins = _lpt_cover(sub, capacity) if sparse else _lpt(nnz[mem], capacity)
        local = _refine(sub, nnz[mem], bins, span)
        for k, rs in enumerate(local):
            order[r0 + k + n * np.arange(len(rs))] = mem[np.asarray(rs, dtype=np.int64)]
    return order


def to_user_order(y, order) -> np.ndarray:
    """A layer's output(s) in the user's row order from the hardware order (last axis)."""
    y = np.asarray(y)
    if order is None:
        return y
    out = np.empty_like(y)
    out[..., np.asarray(order)] = y
    return out
