"""Fast cycle model of the EIE array: per-layer cycles and per-PE counters, no RTL.

It models exactly the micro-architecture of ``hw/`` (docs/architecture.md sections 5-7) at the
granularity of broadcasts instead of clock cycles, so that a layer costs a handful of NumPy
operations per broadcast (vectorised over the PEs) instead of one simulated cycle per clock.
Its results are *equal* to the RTL's, cycle for cycle and counter for counter
(tests/sim/ref/test_cycle_model.py checks that on randomized small presets; the full-size models
agree too, see the README).

Timing of one layer (cycle 0 is the central unit's SETUP; all rules from hw/ccu.py, hw/pe.py)
-----------------------------------------------------------------------------------------
Broadcast ``b`` (the ``b``-th non-zero input ``j_b``, ascending) fires in cycle ``T_b``.  On PE
``k`` its column has ``c[b, k]`` entries (padding included; ``0`` = empty column).

* Central unit.  Group ``m`` (elements ``m*N .. m*N+N-1``) is read in the cycle the previous
  group leaves the prefetch slot.  An all-zero group is dropped one cycle after it is read; a
  group with non-zeros leaves the prefetch slot (``C_m``, its *load* cycle) once the current
  group has broadcast its last non-zero.  With ``z`` all-zero groups between two non-zero groups
  ``m' < m``: ``C_m = max(C_m' + z + 1, T_last(m'))`` (``C_-1 = 0``), and the first broadcast of
  group ``m`` can fire at ``C_m + 1``.
* Activation queue of depth ``D``: an element pushed in ``T_b`` can be popped from ``T_b + 1``;
  the queue is full in cycle ``t`` when element ``b - D`` is still in it, i.e. its pop cycle
  ``P[b-D, k] >= t``.  The central unit broadcasts only when no queue is full::

      T_b = max(T_{b-1} + 1,  C_m + 1 if b is the first of its group,  max_k P[b-D, k] + 1)

* PE ``k`` (pointer read -> sparse-matrix read).  ``P[b] = max(T_b + 1, F[b-1])``: the pop waits
  for the pointer read unit's hold stage to be free.  An empty column is dropped one cycle after
  its pop (``F[b] = P[b] + 1``).  A non-empty column is loaded into the sparse-matrix read unit in
  cycle ``L[b] = max(P[b] + 1, L[b'] + c[b'])`` (``b'``: the PE's previous non-empty column,
  which streams one entry per cycle) and frees the hold stage then (``F[b] = L[b]``).

  In terms of ``H[b] = F[b] - b`` and ``x_b = T_b + 2 - b`` (non-decreasing in ``b``) this is
  ``H[b] = max(H[b-1], x_b, H[b'] + c[b'] + b' - b)`` on a non-empty column and
  ``max(H[b-1], x_b)`` on an empty one, a Lindley recursion over each PE's non-empty columns:
  ``H[b] = max(x_b, E[b] + max_{b'' <= b non-empty} (x_b'' - E[b'']))`` with
  ``E`` = the running sum of ``max(0, c[b'] - (b - b'))`` over the PE's non-empty columns, which
  does not depend on the timing at all.  Given the broadcast times every ``P`` is therefore a few
  whole-layer array operations; :func:`layer_timeline` solves the coupling with ``T`` by a
  monotone fixed-point iteration on windows of broadcasts (:func:`_solve_sequential` is the
  plain per-broadcast recursion it is tested against).
* The last non-zero group broadcast (or the last group dropped), the central unit drains: PE
  ``k`` is idle from ``max(L + c + 4`` of its last non-empty column (select, multiply, add
  stages), ``F[B-1] + 1)``; ``wb_go`` is pulsed in the first cycle all PEs are idle (and after
  the scan), write-back takes ``rows_local + 3`` more cycles::

      cycles = wb_go + rows_local + 4,   rows_local = ceil(out_len / N)

Counters (names of :data:`COUNTER_NAMES`, per PE, as hw/pe.py counts them): ``entries`` and
``busy`` are the entries of the broadcast columns; ``pushes`` and ``ptr_reads`` the broadcasts;
``spmat_reads`` the Spmat words touched (a column starting in the word the previous one ended in
reuses it); ``acc_reads`` / ``acc_writes`` entries plus the write-back's ``rows_local`` reads and
clears; ``act_writes`` ``rows_local``; ``src_reads`` the ``ceil(in_len / N)`` group reads;
``starved`` the cycles from SETUP to ``wb_go`` in which the PE is idle; ``full`` the cycles in
which the central unit has a non-zero waiting and this PE's queue is full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple
from pathlib import Path

import numpy as np

from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from hw.arch.memories import ptr_reload_segments, segment_key
from hw.arch.regmap import COUNTER_NAMES
from compiler.manifest import compiled_manifest
from sim.ref.result import RunResult
from sim.ref.schedule import fold_counters, fold_cycles, sample_runs

#: pipeline stages behind the sparse-matrix read unit's address generator: select (stage D),
#: multiply (M), add/write (W); a PE is idle in the cycle after its last entry's W stage
PIPE_TAIL = 4
#: write-back: wb_busy is high rows_local + 2 cycles, then one cycle sees every PE done
WB_EXTRA = 3
METHODS = ("windows", "sequential")


@dataclass
class LayerCycles:
    """Cycle-model result of one layer.

    Attributes
    ----------
    cycles : int
        Layer cycles, SETUP to the end of write-back (the RTL's counter 15).
    counters : dict
        Counter name -> int64 array over PEs (the RTL's counters 0..10 for this layer).
    broadcasts : int
        Non-zero activations broadcast.
    scan_end : int
        Last cycle of the central unit's scan (from SETUP = 0).
    wb_go : int
        Cycle of the write-back pulse; ``wb_go - scan_end`` is the drain.
    held_word : numpy.ndarray
        Per PE, the Spmat word left in the SRAM's output register (-1: none).
    """

    cycles: int
    counters: dict
    broadcasts: int
    scan_end: int
    wb_go: int
    held_word: np.ndarray = field(repr=False)

    def counters_json(self) -> dict:
        """Counters as plain lists (the shape of the RTL result's per-layer counters)."""
        return {name: [int(v) for v in self.counters[name]] for name in COUNTER_NAMES}


class PointerBanks:
    """The even and odd pointer banks of every PE, stored pointer-major.

    ``even[a, k]`` is word ``a`` of PE ``k``'s even bank (pointer ``g = 2a``), ``odd[a, k]``
    pointer ``2a + 1``: a layer's pointers are then row gathers of N contiguous values and its
    per-broadcast arrays come out ``(B, N)`` in row order, as the model uses them.

    Parameters
    ----------
    ptr_even, ptr_odd : int arrays (N, depth / 2)
        The banks as the compiled images hold them (``images.npz``).
    """

    def __init__(self, ptr_even, ptr_odd):
        ptr_even, ptr_odd = np.asarray(ptr_even), np.asarray(ptr_odd)
        if ptr_even.ndim != 2 or ptr_odd.ndim != 2 or ptr_even.shape[0] != ptr_odd.shape[0]:
            raise EIEError(f"pointer banks must be (PEs, words) arrays, got {ptr_even.shape} "
                           f"and {ptr_odd.shape}")
        top = max(int(ptr_even.max(initial=0)), int(ptr_odd.max(initial=0)))
        dt = np.int32 if top < 1 << 30 else np.int64
        self.n_pes = ptr_even.shape[0]
        self.even = np.ascontiguousarray(ptr_even.T, dtype=dt)
        self.odd = np.ascontiguousarray(ptr_odd.T, dtype=dt)


def broadcast_columns(cfg: EIEConfig, banks: PointerBanks, layer: dict, x) -> tuple:
    """The broadcasts of one layer and their columns on every PE.

    Parameters
    ----------
    cfg : EIEConfig
    banks : PointerBanks
        The pointer banks of the compiled images.
    layer : dict
        Pass descriptor (``in_len``, ``ptr_base``; ``col0``, the pass's first column, default 0).
    x : int array
        The layer's integer input vector (at least ``col0 + in_len`` long).

    Returns
    -------
    js : int64 array (B,)
        Broadcast columns ``j`` (the non-zero inputs, ascending).
    start, count : int arrays (B, N)
        Absolute entry address of each column's first entry and its entries on each PE.
    """
    in_len = int(layer["in_len"])
    col0 = int(layer.get("col0", 0))
    name = layer.get("name", "?")
    if banks.n_pes != cfg.n_pes:
        raise EIEError(f"pointer banks of {banks.n_pes} PEs for a {cfg.n_pes}-PE config")
    x = np.asarray(x).reshape(-1)
    if x.size < col0 + in_len:
        raise EIEError(f"layer {name}: input has {x.size} elements, expected "
                       f"{col0 + in_len}")
    # the pass's columns col0 .. col0 + in_len - 1, broadcast as j = 0 .. in_len - 1
    js = np.flatnonzero(x[col0:col0 + in_len]).astype(np.int64)
    g = int(layer["ptr_base"]) + js
    top = int(layer["ptr_base"]) + in_len  # the layer's last pointer
    if (top >> 1) >= (banks.odd if top & 1 else banks.even).shape[0]:
        raise EIEError(f"layer {name}: pointer {top} is beyond the pointer images")
    # P[g] and P[g+1] from the banks: g even -> even[g/2], odd[g/2]; g odd -> odd[(g-1)/2],
    # even[(g+1)/2]
    a = g >> 1
    odd = (g & 1).astype(bool)[:, None]
    lo_o = banks.odd.take(a, axis=0)
    start = np.where(odd, lo_o, banks.even.take(a, axis=0))
    hi = banks.even.take(np.minimum(a + 1, banks.even.shape[0] - 1), axis=0)
    count = np.where(odd, hi, lo_o)
    count -= start
    if np.any(count < 0):
        raise EIEError(f"layer {name}: column pointers are not monotonic")
    return js, start, count


def group_structure(js: np.ndarray, n: int, in_len: int) -> tuple:
    """Per broadcast: is it the first of its group, and how many all-zero groups precede it.

    Returns ``first`` (bool, B), ``zeros_before`` (int64, B; counted since the previous
    non-zero group, or since group 0; only meaningful where ``first``) and the number of
    all-zero groups after the last non-zero one.
    """
    groups = js // n
    first = np.ones(js.size, dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    zeros_before = np.zeros(js.size, dtype=np.int64)
    gf = groups[first]
    if gf.size:
        zeros_before[first] = np.diff(gf, prepend=-1) - 1
    n_groups = -(-in_len // n)
    trailing = n_groups - 1 - (int(groups[-1]) if js.size else -1)
    return first, zeros_before, trailing


def _int_type(bound: int) -> tuple:
    """Working integer type and its "minus infinity" for cycle values up to ``bound``.

    int32 halves the memory traffic of the whole-layer arrays (NumPy's running maximum is not
    vectorised, so it is memory- and loop-bound); int64 when a layer could be that long.
    """
    if bound < 1 << 28:
        return np.int32, -(1 << 30)
    return np.int64, -(1 << 60)


def _solve_sequential(count: np.ndarray, first: np.ndarray, zeros_before: np.ndarray,
                      depth: int, dt=np.int64, neg: int = -(1 << 60)) -> tuple:
    """Broadcast times and PE states by the plain recursion, one broadcast at a time.

    Returns ``T`` (B,), ``F`` (B, N) and the load cycles of the non-zero groups.  The
    reference that :func:`_solve_windows` is tested against.
    """
    nb, n = count.shape
    ne = count > 0
    T = np.empty(nb, dtype=np.int64)
    H = np.empty((nb, n), dtype=dt)
    fmax = np.empty(nb, dtype=np.int64)  # max over PEs of F[b]
    h = np.full(n, neg, dtype=dt)
    ready = np.full(n, neg, dtype=dt)  # L + c of each PE's last non-empty column
    load = 0  # C_-1
    loads = []
    for b in range(nb):
        t = int(T[b - 1]) + 1 if b else neg
        if first[b]:
            load = max(load + int(zeros_before[b]) + 1, int(T[b - 1]) if b else neg)
            loads.append(load)
            t = max(t, load + 1)
        if b >= depth:
            # element b - depth leaves the slowest queue at max(T + 1, F[b - depth - 1])
            pop = int(T[b - depth]) + 1
            if b > depth:
                pop = max(pop, int(fmax[b - depth - 1]))
            t = max(t, pop + 1)
        T[b] = t
        np.maximum(h, np.where(ne[b], ready - b, neg), out=h)
        np.maximum(h, t + 2 - b, out=h)
        H[b] = h
        fmax[b] = int(h.max()) + b
        ready = np.where(ne[b], h + b + count[b], ready)
    H += np.arange(nb, dtype=dt)[:, None]
    return T, H, np.asarray(loads, dtype=np.int64)


def previous_nonempty(count: np.ndarray) -> np.ndarray:
    """``prev[b, k]``: PE k's last non-empty column before broadcast ``b`` (-1: none)."""
    nb = count.shape[0]
    dt = np.int32 if nb < 1 << 30 else np.int64
    # (index + 1) on non-empty columns, 0 elsewhere; its running max is the last one so far
    mark = (count > 0) * np.arange(1, nb + 1, dtype=dt)[:, None]
    np.maximum.accumulate(mark, axis=0, out=mark)
    prev = np.empty_like(mark)
    if nb:
        prev[0] = -1
        np.subtract(mark[:-1], 1, out=prev[1:])
    return prev


def previous_gather(prev: np.ndarray) -> np.ndarray:
    """Flat indices of ``prev`` into a C-ordered ``(B, N)`` array (0 where there is none)."""
    n = prev.shape[1]
    flat = prev * n
    flat += np.arange(n, dtype=prev.dtype)
    np.maximum(flat, 0, out=flat)
    return flat


def excess(count: np.ndarray, prev: np.ndarray, dt, flat: np.ndarray | None = None) -> np.ndarray:
    """``E[b, k]``: running sum over PE k's non-empty columns ``b' <= b`` of
    ``max(0, c[b''] - (b' - b''))`` (``b''``: PE k's non-empty column before ``b'``).

    How far PE k's hold stage has been pushed back by its own columns still streaming; it does
    not depend on the broadcast times.  ``flat``: :func:`previous_gather` of ``prev``.
    """
    nb, n = count.shape
    flat = previous_gather(prev) if flat is None else flat
    over = count.ravel().take(flat).reshape(nb, n).astype(dt, copy=False)
    # columns still streaming when b's column arrives: c[b''] - (b - b''), if positive
    over += (prev - np.arange(nb, dtype=prev.dtype)[:, None]).astype(dt, copy=False)
    np.maximum(over, 0, out=over)
    over *= (count > 0) & (prev >= 0)
    return np.cumsum(over, axis=0, dtype=dt)


class _WindowGroups(NamedTuple):
    """The non-zero groups that begin in a window of broadcasts (window-relative indices)."""

    acum: np.ndarray        # running sum of each group's minimum load distance a_m
    has_g: np.ndarray       # per broadcast: its group begins in this window
    gidx: np.ndarray        # per broadcast: that group's index in the window
    gofs: np.ndarray        # per broadcast: 1 + its place in the group (T_b >= C_m + gofs)
    bidx: np.ndarray        # per group: the broadcast before its first one
    first_here: np.ndarray  # per group: it begins at the window's first broadcast


def _window_groups(grp_idx: np.ndarray, zeros_before: np.ndarray, gi0: int, b0: int,
                   b1: int) -> tuple:
    """The non-zero groups beginning in broadcasts ``b0..b1-1``: ``(gi1, _WindowGroups)``
    (None when there are none).

    Their load cycles are ``C_m = max(C_m' + a_m, T[b_m - 1])``, ``a_m`` the all-zero groups
    before group ``m`` plus one, at least the broadcasts of group ``m'``.
    """
    gi1 = int(np.searchsorted(grp_idx, b1))
    gstart = grp_idx[gi0:gi1] - b0
    ng = gstart.size
    if not ng:
        return gi1, None
    a = zeros_before[grp_idx[gi0:gi1]] + 1
    if ng > 1:
        # T[b_m - 1] >= C_m' + (broadcasts of group m')
        a[1:] = np.maximum(a[1:], np.diff(gstart))
    mark = np.zeros(b1 - b0, dtype=np.int64)
    mark[gstart] = 1
    gid = np.cumsum(mark) - 1  # window group of each broadcast; -1: begun earlier
    gidx = np.maximum(gid, 0)
    # T_b >= C_m + 1 + (b - b_m) within group m
    gofs = 1 + np.arange(b1 - b0, dtype=np.int64) - np.where(gid >= 0, gstart[gidx], 0)
    return gi1, _WindowGroups(acum=np.cumsum(a), has_g=gid >= 0, gidx=gidx, gofs=gofs,
                              bidx=np.maximum(gstart - 1, 0), first_here=gstart == 0)


def _known_bounds(T: np.ndarray, fmax: np.ndarray, bs: np.ndarray, b0: int, depth: int,
                  prevT: int, neg: int) -> np.ndarray:
    """Lower bounds of ``T_b - b`` in a window that the broadcasts before it fix.

    Queue full: ``T_b`` > the pop of element ``b - depth``, ``max(T + 1, F[b - depth - 1])``;
    and ``T_b0 > T_{b0 - 1}``.
    """
    src = bs - depth
    known = np.full(bs.size, neg, dtype=np.int64)
    s_old = (src >= 0) & (src < b0)
    known[s_old] = T[src[s_old]] + 2
    s_prev = (src >= 1) & (src - 1 < b0)
    known[s_prev] = np.maximum(known[s_prev], fmax[src[s_prev] - 1] + 1)
    known[0] = max(known[0], prevT + 1)
    known -= bs
    return known


def _solve_windows(count: np.ndarray, first: np.ndarray, zeros_before: np.ndarray,
                   depth: int, dt=np.int64, neg: int = -(1 << 60), window: int = 256,
                   stats: dict | None = None, prev: np.ndarray | None = None,
                   flat: np.ndarray | None = None) -> tuple:
    """Broadcast times and PE states, vectorised over PEs *and* broadcasts.

    Given the broadcast times the PE states are closed-form (module docstring); given the
    queue-full bounds (which look ``depth`` broadcasts back) the broadcast times and the group
    load cycles are running maxima.  Within a window of broadcasts the coupling is solved by
    iterating ``T <- f(T)`` from below.  ``f`` is strictly causal with lag ``depth``, so once two
    iterates agree on a prefix that prefix is final, and each iteration settles at least
    ``depth`` more broadcasts; in practice a window takes a few iterations (a PE's state depends
    on the times only through its last starved cycle), and each recomputes only the unsettled
    rows.  Same results as :func:`_solve_sequential`.
    """
    nb, n = count.shape
    ne = count > 0
    E = excess(count, previous_nonempty(count) if prev is None else prev, dt, flat)
    # z = x - E on non-empty columns, "minus infinity" on empty ones: one add per iteration
    negE = np.where(ne, -E, dt(neg))
    T = np.empty(nb, dtype=np.int64)
    EC = np.empty((nb, n), dtype=dt)  # E + running max of z: H = max(EC, x)
    fmax = np.empty(nb, dtype=np.int64)  # max over PEs of F[b] = H[b] + b
    carry = np.full(n, neg, dtype=dt)
    grp_idx = np.flatnonzero(first)
    loads = np.empty(grp_idx.size, dtype=np.int64)
    load_carry = 0  # load cycle of the last non-zero group so far (C_-1 = 0)
    gi0 = b0 = iters_total = rows_total = 0
    while b0 < nb:
        b1 = min(nb, b0 + window)
        w = b1 - b0
        bs = np.arange(b0, b1, dtype=np.int64)
        prevT = int(T[b0 - 1]) if b0 else neg
        gi1, g = _window_groups(grp_idx, zeros_before, gi0, b0, b1)
        # (element b - depth lies in this window for b >= b0 + depth: slices t_in / f_in)
        known = _known_bounds(T, fmax, bs, b0, depth, prevT, neg)
        t_in = min(w, depth)
        f_in = min(w, depth + 1)
        Tw = np.full(w, neg, dtype=np.int64)
        # F >= E + (running max of z before the window) + b: the PEs' backlog from earlier
        # windows and their own columns, before any new starvation -- a lower bound that is
        # already exact while no PE starves, so the first iteration is usually nearly right
        fw = (E[b0:b1] + carry).max(axis=1).astype(np.int64) + bs
        ECw = np.empty((w, n), dtype=dt)
        cmw = np.empty((w, n), dtype=dt)
        low = np.empty(w, dtype=np.int64)
        iters = 0
        while True:
            iters += 1
            # low - b, so that the running maximum gives T_b >= T_b' + (b - b')
            np.copyto(low, known)
            np.maximum(low[t_in:], Tw[:w - t_in] + 2 - bs[t_in:], out=low[t_in:])
            np.maximum(low[f_in:], fw[:w - f_in] + 1 - bs[f_in:], out=low[f_in:])
            U = np.maximum.accumulate(low)
            U += bs
            if g is not None:
                before = np.where(g.first_here, prevT, U[g.bidx])
                cw = g.acum + np.maximum.accumulate(np.maximum(before - g.acum, load_carry))
                Tn = np.where(g.has_g, np.maximum(U, cw[g.gidx] + g.gofs), U)
            else:
                Tn = U
            if iters == 1:
                f = 0
            else:
                changed = np.flatnonzero(Tn != Tw)
                if changed.size == 0:
                    break
                f = int(changed[0])
            Tw = Tn
            rows_total += w - f
            # PE states of rows f.. given the times (Lindley over each PE's non-empty columns)
            x = (Tn[f:] + 2 - bs[f:]).astype(dt)
            z = negE[b0 + f:b1] + x[:, None]
            np.maximum.accumulate(z, axis=0, out=z)
            np.maximum(z, carry if f == 0 else cmw[f - 1], out=cmw[f:])
            np.add(E[b0 + f:b1], cmw[f:], out=ECw[f:])
            fw[f:] = np.maximum(ECw[f:].max(axis=1), x) + bs[f:]
        iters_total += iters
        T[b0:b1] = Tw
        EC[b0:b1] = ECw
        fmax[b0:b1] = fw
        carry = cmw[-1].copy()
        if g is not None:
            loads[gi0:gi1] = cw
            load_carry = int(cw[-1])
        gi0, b0 = gi1, b1
    if stats is not None:
        stats["iterations"] = iters_total
        stats["rows"] = rows_total
    # F = H + b = max(EC + b, T + 2), in place
    EC += np.arange(nb, dtype=dt)[:, None]
    np.maximum(EC, (T + 2).astype(dt)[:, None], out=EC)
    return T, EC, loads


def layer_timeline(count: np.ndarray, first: np.ndarray, zeros_before: np.ndarray, depth: int,
                   method: str = "windows", dt=np.int64, neg: int = -(1 << 60),
                   prev: np.ndarray | None = None, flat: np.ndarray | None = None) -> tuple:
    """Broadcast times ``T`` (B,), hold-stage free cycles ``F`` (B, N), group load cycles."""
    if method == "windows":
        return _solve_windows(count, first, zeros_before, depth, dt, neg, prev=prev, flat=flat)
    if method == "sequential":
        return _solve_sequential(count, first, zeros_before, depth, dt, neg)
    raise EIEError(f"unknown cycle-model method {method!r}; choose from {', '.join(METHODS)}")


def _busy_cycles(starts: np.ndarray, ends: np.ndarray, neg: int) -> np.ndarray:
    """Cycles covered by the intervals ``[starts[b], ends[b, k]]`` (starts ascending), per k."""
    if ends.shape[0] == 0:
        return np.zeros(ends.shape[1], dtype=np.int64)
    before = np.empty_like(ends)
    before[0] = neg
    np.maximum.accumulate(ends[:-1], axis=0, out=before[1:])
    lo = np.maximum(before, (starts - 1)[:, None].astype(ends.dtype))
    return np.maximum(ends - lo, 0).sum(axis=0, dtype=np.int64)


def _full_cycles(T: np.ndarray, F: np.ndarray, loads: np.ndarray, first: np.ndarray, d: int,
                 n: int, dt) -> np.ndarray:
    """Per PE, the cycles in which the central unit has a non-zero waiting and the PE's
    depth-``d`` queue is full."""
    nb = T.size
    if nb <= d:
        return np.zeros(n, dtype=np.int64)
    # pop cycle of element b - d: max(T + 1, F[b - d - 1]); broadcast b waits from the
    # cycle after b - 1 fired, or from its group's load
    wait = T[d:-1] + 1
    wait[first[d + 1:]] = loads[np.cumsum(first)[d + 1:][first[d + 1:]] - 1] + 1
    pop = np.maximum(F[:nb - d - 1], (T[1:nb - d] + 1)[:, None].astype(dt))
    pop -= (wait - 1)[:, None].astype(dt)
    np.maximum(pop, 0, out=pop)
    full = pop.sum(axis=0, dtype=np.int64)
    # element 0 pops at T_0 + 1 exactly
    w0 = loads[np.cumsum(first)[d] - 1] + 1 if first[d] else T[d - 1] + 1
    full += max(0, int(T[0]) + 2 - int(w0))
    return full


def _spmat_reads(start: np.ndarray, count: np.ndarray, prev: np.ndarray, flat: np.ndarray,
                 held, epw: int) -> tuple:
    """Per PE, the Spmat words read, and the word then left in the SRAM's output register.

    A column whose first word is the one the output register holds (the previous non-empty
    column's last word, or earlier work's) reuses it.
    """
    nb, n = count.shape
    ne = count > 0
    if epw & (epw - 1) == 0:
        sh = epw.bit_length() - 1
        w_first, w_last = start >> sh, (start + count - 1) >> sh
    else:
        w_first, w_last = start // epw, (start + count - 1) // epw
    span = w_last - w_first
    span += 1
    span *= ne
    touched = span.sum(axis=0, dtype=np.int64)
    held0 = np.full(n, -1, dtype=np.int64) if held is None else np.asarray(held, np.int64)
    if not nb:
        return touched, held0
    same = w_first == w_last.ravel().take(flat).reshape(nb, n)
    same &= ne
    same &= prev >= 0
    reuse = same.sum(axis=0, dtype=np.int64)
    # the PE's first non-empty column meets the word held from earlier work
    has = ne.any(axis=0)
    fb = np.argmax(ne, axis=0)
    cols = np.arange(n)
    reuse += has & (w_first[fb, cols] == held0)
    last = np.where(ne[-1], nb - 1, prev[-1])
    held_after = np.where(last >= 0, w_last[np.maximum(last, 0), cols], held0)
    return touched - reuse, held_after


def simulate_layer(cfg: EIEConfig, banks: PointerBanks, layer: dict, x, *, held=None,
                   method: str = "windows") -> LayerCycles:
    """Cycles and per-PE counters of one layer on input ``x``.

    Parameters
    ----------
    cfg, banks, x :
        As :func:`broadcast_columns`.
    layer : dict
        Pass descriptor (``in_len``, ``out_len``, ``ptr_base``; ``col0`` and ``keep``, default
        0).
    held : int array (N,), optional
        Spmat word each PE's SRAM output register holds from earlier work (-1 or None: none,
        as after reset or a Spmat reload).
    method : str
        ``windows`` (fast) or ``sequential`` (the reference recursion).

    Returns
    -------
    LayerCycles
    """
    n = cfg.n_pes
    d = cfg.queue_depth
    epw = cfg.entries_per_word
    js, start, count = broadcast_columns(cfg, banks, layer, x)
    nb = js.size
    in_len, out_len = int(layer["in_len"]), int(layer["out_len"])
    rows_local = -(-out_len // n)
    n_groups = -(-in_len // n)
    first, zeros_before, trailing = group_structure(js, n, in_len)
    cmax = int(count.max(axis=1).sum()) if nb else 0
    dt, neg = _int_type(16 * (n_groups + nb + cmax + rows_local + 16)
                        + int(start.max(initial=0)))
    count = count.astype(dt, copy=False)
    start = start.astype(dt, copy=False)
    ne = count > 0
    prev = previous_nonempty(count)
    flat = previous_gather(prev)
    # F: the cycle the hold stage is free again (empty column: pop + 1; else its load cycle)
    T, F, loads = layer_timeline(count, first, zeros_before, d, method, dt, neg, prev, flat)

    # ---- end of the scan, drain, write-back ----
    scan_end = max(int(loads[-1]) + trailing if loads.size else n_groups,
                   int(T[-1]) if nb else neg, 1)
    # last non-idle cycle of each column: F for an empty one, F + c + 3 (pipeline) otherwise
    ends = count + dt(PIPE_TAIL - 1)
    ends *= ne
    ends += F
    last_busy = int(ends.max()) if nb else neg
    wb_go = max(scan_end + 1, last_busy + 1)
    # a keep pass (a column batch before the last) ends in the cycle wb_go would be pulsed
    keep = bool(int(layer.get("keep", 0)))
    wb_rows = 0 if keep else rows_local
    cycles = wb_go + 1 if keep else wb_go + rows_local + WB_EXTRA + 1

    # ---- counters ----
    entries = count.sum(axis=0, dtype=np.int64)
    starved = (wb_go + 1) - _busy_cycles(T + 1, ends, neg)
    full = _full_cycles(T, F, loads, first, d, n, dt)
    spmat_reads, held_after = _spmat_reads(start, count, prev, flat, held, epw)
    counters = {
        "entries": entries,
        "busy": entries.copy(),
        "starved": starved.astype(np.int64),
        "full": full,
        "ptr_reads": np.full(n, nb, dtype=np.int64),
        "spmat_reads": spmat_reads,
        "acc_reads": entries + wb_rows,
        "acc_writes": entries + wb_rows,
        "act_writes": np.full(n, wb_rows, dtype=np.int64),
        "src_reads": np.full(n, n_groups, dtype=np.int64),
        "pushes": np.full(n, nb, dtype=np.int64),
    }
    return LayerCycles(cycles=int(cycles), counters=counters, broadcasts=int(nb),
                       scan_end=int(scan_end), wb_go=int(wb_go),
                       held_word=held_after.astype(np.int64))


def layer_inputs(model_dir: Path, manifest: dict) -> list:
    """Each layer's integer inputs ``(n_samples, in_len)`` from ``golden.npz``.

    Compiled models store every layer's input (``in<l>``); models written by the tests'
    ``write_model`` (tests/conftest.py) store the first input and every output (a chained
    layer's input is the previous layer's output).
    """
    p = Path(model_dir) / "golden.npz"
    if not p.exists():
        raise EIEError(f"no golden.npz in {model_dir}; run make compile first")
    n_layers = len(manifest["layers"])
    with np.load(p) as z:
        names = set(z.files)
        out = []
        for li in range(n_layers):
            if f"in{li}" in names:
                out.append(z[f"in{li}"])
            elif li and manifest.get("chained", True) and f"out{li - 1}" in names:
                out.append(z[f"out{li - 1}"])
            else:
                raise EIEError(f"{p} has no input for layer {li} (in{li})")
    return out


def run_model(model_dir, cfg: EIEConfig, *, samples=None, counter_samples: int = 1,
              method: str = "windows") -> RunResult:
    """The cycle model of a compiled model: a :class:`sim.ref.result.RunResult`, as the RTL's.

    Passes run in the order the RTL bench runs them (:func:`sim.ref.schedule.sample_runs`):
    every sample, every run of passes, with the Spmat output registers emptied by each segment
    reload.  The inputs are the golden model's (equal to the RTL's when it is bit-exact).

    Parameters
    ----------
    model_dir : path
        ``build/<model>/<config>/`` (``manifest.json``, ``images/images.npz``, ``golden.npz``).
    cfg : EIEConfig
        The configuration the model was compiled for.
    samples : list of int, optional
        Input samples (default: all).
    counter_samples : int
        Per-PE counters are returned for this many of the first samples.
    method : str
        ``windows`` or ``sequential`` (see :func:`simulate_layer`).

    Returns
    -------
    RunResult
        ``samples``; ``cycles[s][l]`` (and ``pass_cycles[s][p]``); ``counters[s][l][name]``
        (list over PEs) for the counter samples; ``broadcasts[s][l]``; ``seconds`` (``load``,
        ``model``); no outputs.
    """
    t0 = time.perf_counter()
    model_dir = Path(model_dir)
    manifest = compiled_manifest(model_dir, cfg)
    passes = manifest["passes"]
    with np.load(model_dir / "images" / "images.npz") as z:
        ptr_even, ptr_odd = z["ptr_even"], z["ptr_odd"]
        ptr_segments = {s: (z[segment_key("ptr_even", s)], z[segment_key("ptr_odd", s)])
                        for s in ptr_reload_segments(passes)}
    xs = layer_inputs(model_dir, manifest)
    t1 = time.perf_counter()
    chained = bool(manifest.get("chained", True))
    res = run_passes(cfg, ptr_even, ptr_odd, manifest["layers"], passes, xs, chained=chained,
                     samples=samples, counter_samples=counter_samples, method=method,
                     ptr_segments=ptr_segments)
    res.seconds = {"load": round(t1 - t0, 4), "model": round(time.perf_counter() - t1, 4)}
    res.chained = chained
    res.segments = len({int(p["segment"]) for p in passes})
    return res


def run_passes(cfg: EIEConfig, ptr_even: np.ndarray, ptr_odd: np.ndarray, layers: list,
               passes: list, xs: list, *, chained: bool = True, samples=None,
               counter_samples: int = 1, method: str = "windows",
               ptr_segments: dict | None = None) -> RunResult:
    """The cycle model of every pass and sample (see :func:`run_model`), from arrays.

    ``layers`` and ``passes`` are the manifest's (or :class:`compiler.layout.Images`') and
    ``xs[l]`` the integer inputs ``(n_samples, in_len)`` of layer ``l``.  ``ptr_even`` and
    ``ptr_odd`` are segment 0's pointer banks; ``ptr_segments`` those of the segments that
    reload the pointer SRAM (``Images.ptr_segments``), by segment: a pass reads the banks of
    its ``ptr_segment``.
    """
    n_samples = int(xs[0].shape[0])
    samples = list(range(n_samples)) if samples is None else [int(s) for s in samples]
    for s in samples:
        if not 0 <= s < n_samples:
            raise EIEError(f"sample {s} out of range: the model has {n_samples} sample(s)")
    images = {0: (ptr_even, ptr_odd), **(ptr_segments or {})}
    banks = {s: PointerBanks(even, odd) for s, (even, odd) in images.items()}
    runs = sample_runs(layers, passes, chained, cfg.max_layers)
    pass_cycles, pass_bcs, pass_counters = [], [], []
    held, loaded = None, 0  # the SRAMs hold segment 0 at the start
    for si, s in enumerate(samples):
        cyc, bcs, cnt = [0] * len(passes), [0] * len(passes), [None] * len(passes)
        for run in runs:
            if run.segment != loaded:
                held, loaded = None, run.segment  # a reload rewrites the Spmat words
            for p in run.passes:
                pas = passes[p]
                r = simulate_layer(cfg, banks[int(pas["ptr_segment"])], pas,
                                   xs[int(pas["layer"])][s], held=held, method=method)
                held = r.held_word
                cyc[p], bcs[p], cnt[p] = r.cycles, r.broadcasts, r.counters_json()
        pass_cycles.append(cyc)
        pass_bcs.append(bcs)
        if si < counter_samples:
            pass_counters.append(cnt)
    return RunResult(samples=samples,
                     cycles=[fold_cycles(c, layers) for c in pass_cycles],
                     counters=[fold_counters(c, layers) for c in pass_counters],
                     # a layer broadcasts its non-zeros once per output batch
                     broadcasts=[[int(sum(b[p] for p in lay["passes"]
                                          if int(passes[p]["row_batch"]) == 0))
                                  for lay in layers] for b in pass_bcs],
                     pass_cycles=pass_cycles, pass_counters=pass_counters)
