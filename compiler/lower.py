"""Lowering: a network's layers as the matrix layers the array runs, and the LSTM plans.

An FC layer is one matrix layer, as it is.  An LSTM layer (:class:`models.lstm.LSTMLayer`,
ESE's LSTMP cell) becomes two sparse products and an element-wise stage between them:

* ``<name>.gates``: ``G = [W_x | 0 | W_r]`` over the source vector ``s_t = [x_t ; 0 ; y_{t-1}]``.
  ``x_t`` is padded with zeros to ``in_pad``, a multiple of ``N`` columns, so that ``y_{t-1}[i]``
  sits at source position ``in_pad + i``: on PE ``i % N``, local word ``in_pad / N + i // N``,
  which is exactly where the projection computes ``y_t[i]`` (its row ``i``).  The projection's
  write-back (``dst_base = in_pad / N``) therefore puts ``y_t`` into the next step's source
  vector, and no data crosses PEs to "redistribute" it.  ``W_x`` and ``W_r`` are one matrix and
  one codebook: every gate's sum over both parts is one accumulation with one fixed-point scale.
  The x part and the y part are separate column batches (:func:`compiler.passes.encode_passes`
  with ``col_starts``), so the next step's x part can run before ``y_t`` exists (ESE's
  overlap; :mod:`sim.ref.lstm_schedule`).
* **Gate rows.** Cell slot ``s`` (cell ``cell_order[s]`` of the user's model; the identity
  unless the cells are permuted as units) lives on PE ``s % N`` as its local cell ``s // N``;
  its four gates i, f, g, o are that PE's local rows ``4 * (s // N) + q``, i.e. hardware row
  ``4N * (s // N) + q * N + s % N`` (:func:`gate_rows`).  All four pre-activations of a cell
  are in one PE's accumulators, so the element-wise stage never crosses PEs.  Cells are padded
  to ``cells_pad``, a multiple of ``N``; padded slots have no weights and no bias.
* ``<name>.proj``: ``W_ym`` with its columns in slot order (``m_t`` of slot ``s`` is on PE
  ``s % N``, local word ``s // N``: the plain interleave), no bias.  Without a projection there
  is no second product: the element-wise stage writes ``m_t`` itself at ``dst_base``.

Pruning applies to ``W_x``, ``W_r`` and ``W_ym`` separately, each to the layer's density
(:func:`lstm_masks`); with ``--balance`` in the hardware's row order, so every PE's slice of
every column keeps the same count (ESE's load-balance-aware pruning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from compiler.permute import balanced_order
from compiler.prune import layer_target, pad_aware, prune_balanced, prune_magnitude
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from models.lstm import LSTMLayer


@dataclass(frozen=True, eq=False)
class MatrixLayer:
    """One sparse product of an LSTM layer, shaped like an FC layer for the compiler's steps.

    ``W`` and ``b`` are in hardware row order (gates: :func:`gate_rows`); ``blocks`` are the
    column ranges pruned separately and ``col_starts`` the forced column-batch starts.
    """

    name: str
    W: np.ndarray
    b: np.ndarray
    density: float
    kind: str  # "gates" or "proj"
    lstm: int  # index into the plans
    blocks: tuple
    col_starts: tuple = (0,)
    relu: bool = False
    act_density: float | None = None
    x: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class LSTMPlan:
    """Where one LSTM layer's products, cells and vectors are (module docstring)."""

    layer: int  # index of the LSTM in the network's layers
    name: str
    gates: int  # matrix-layer index of <name>.gates
    proj: int | None  # matrix-layer index of <name>.proj, None without a projection
    n_in: int
    in_pad: int
    n_rec: int
    cells: int
    cells_pad: int
    return_sequences: bool
    cell_order: np.ndarray  # user cell at every slot (cells_pad entries, -1 = padding)
    peep: np.ndarray | None  # float (3, cells) or None
    # the user's y index at every hardware position of y_t (the projection's row order)
    y_order: np.ndarray | None = None

    @property
    def y_perm(self) -> np.ndarray:
        """:attr:`y_order`, the identity when it is not set."""
        return np.arange(self.n_rec) if self.y_order is None else self.y_order

    @property
    def src_len(self) -> int:
        """Length of the gates' source vector ``[x_t ; 0 ; y_{t-1}]``."""
        return self.in_pad + self.n_rec

    def y_base(self, n_pes: int) -> int:
        """The local word of ``y[0]`` in the source vector (the write-back ``dst_base``)."""
        return self.in_pad // n_pes

    def to_dict(self, n_pes: int | None = None) -> dict:
        return {"layer": self.layer, "name": self.name, "gates": self.gates, "proj": self.proj,
                "n_in": self.n_in, "in_pad": self.in_pad, "n_rec": self.n_rec,
                "cells": self.cells, "cells_pad": self.cells_pad,
                "return_sequences": self.return_sequences, "peepholes": self.peep is not None,
                # the projection's rows follow the gates' in accumulator bank 0
                "proj_acc_base": 4 * (self.cells_pad // n_pes) if n_pes else None,
                "cell_order": None if np.array_equal(self.cell_order[:self.cells],
                                                     np.arange(self.cells))
                else self.cell_order.tolist(),
                "y_order": None if np.array_equal(self.y_perm, np.arange(self.n_rec))
                else self.y_perm.tolist()}


def round_up(x: int, n: int) -> int:
    return -(-x // n) * n


def slot_order(cell_order, cells: int, cells_pad: int) -> np.ndarray:
    """The user cell at every slot: ``cell_order`` as given (a plan's, or the manifest's list),
    or, when it is None, the plain interleave (cell ``s`` at slot ``s``, -1 at padded slots)."""
    if cell_order is not None:
        return np.asarray(cell_order, dtype=np.int64)
    out = np.full(cells_pad, -1, dtype=np.int64)
    out[:cells] = np.arange(cells)
    return out


def gate_rows(cell_order: np.ndarray, cells: int, n: int) -> np.ndarray:
    """The user row (``q * cells + c`` for gate ``q`` of user cell ``c``) at every hardware row
    of the gates' matrix; -1 for the rows of padded cell slots."""
    cell_order = np.asarray(cell_order, dtype=np.int64)
    r = np.arange(4 * cell_order.size, dtype=np.int64)
    local = r // n
    slot = (local // 4) * n + r % n
    c = cell_order[slot]
    return np.where(c >= 0, (local % 4) * cells + c, -1)


def gates_matrix(W_x, W_r, plan: LSTMPlan, n: int, fill=0) -> np.ndarray:
    """``[W_x | 0 | W_r]`` in hardware row order, ``W_r``'s columns in ``y_t``'s hardware
    order (weights, masks or index matrices alike)."""
    W_x, W_r = np.asarray(W_x), np.asarray(W_r)
    rows = gate_rows(plan.cell_order, plan.cells, n)
    ok = rows >= 0
    out = np.full((rows.size, plan.src_len), fill, dtype=W_x.dtype)
    out[ok, :plan.n_in] = W_x[rows[ok]]
    out[ok, plan.in_pad:] = W_r[rows[ok]][:, plan.y_perm]
    return out


def gates_vector(v, plan: LSTMPlan, n: int) -> np.ndarray:
    """A ``(4 * cells,)`` vector (the biases) in hardware row order, 0 at padded rows."""
    rows = gate_rows(plan.cell_order, plan.cells, n)
    v = np.asarray(v)
    return np.where(rows >= 0, v[np.maximum(rows, 0)], 0).astype(v.dtype)


def slot_columns(W, plan: LSTMPlan) -> np.ndarray:
    """A matrix over the cells (``W_ym``) with its columns in slot order (padded slots: 0)."""
    W = np.asarray(W)
    order = plan.cell_order
    out = np.zeros((W.shape[0], order.size), dtype=W.dtype)
    ok = order >= 0
    out[:, ok] = W[:, order[ok]]
    return out


def balanced_cells(work: np.ndarray, cells_pad: int, n: int) -> np.ndarray:
    """A cell order (the user cell at every slot, -1 = padding) that balances the PEs' work:
    cells by decreasing work, each to the PE with the least work so far that has a free slot
    (LPT); PE ``k``'s ``j``-th cell goes to slot ``j * N + k``.  Ties keep the plain interleave,
    so equal work gives the identity."""
    work = np.asarray(work, dtype=np.float64)
    cpp = cells_pad // n
    out = np.full(cells_pad, -1, dtype=np.int64)
    load = np.zeros(n)
    filled = np.zeros(n, dtype=np.int64)
    for c in np.argsort(-work, kind="stable"):
        open_ = filled < cpp
        k = int(np.flatnonzero(open_)[np.argmin(load[open_])])
        out[filled[k] * n + k] = c
        filled[k] += 1
        load[k] += work[c]
    return out


def cell_work(layer: LSTMLayer, density: float, n: int, trained=None) -> np.ndarray:
    """Every cell's non-zeros over its four gate rows of ``W_x`` and ``W_r`` (magnitude
    pruning's, or the trained codebooks')."""
    if trained is not None:
        kept = np.asarray(trained["gates"][0]) != 0
    else:
        m = lstm_masks(layer, density, n, False)
        kept = np.hstack([m["W_x"], m["W_r"]])
    return kept.sum(axis=1).reshape(4, layer.n_cells).sum(axis=0)


def _plan(k: int, layer: LSTMLayer, n_mats: int, cfg: EIEConfig,
          order: np.ndarray | None = None, y_order: np.ndarray | None = None) -> LSTMPlan:
    n = cfg.n_pes
    cells_pad = round_up(layer.n_cells, n)
    order = slot_order(order, layer.n_cells, cells_pad)
    return LSTMPlan(layer=k, name=layer.name, gates=n_mats,
                    proj=n_mats + 1 if layer.has_projection else None, n_in=layer.n_in,
                    in_pad=round_up(layer.n_in, n), n_rec=layer.n_rec, cells=layer.n_cells,
                    cells_pad=cells_pad, return_sequences=bool(layer.return_sequences),
                    cell_order=order, peep=layer.peep, y_order=y_order)


def accumulators_needed(plan: LSTMPlan, layer: LSTMLayer, n: int) -> int:
    """Accumulators per PE an LSTM needs: two banks (``cfg.acc_banks`` of the LSTM hardware,
    ``acc_depth / 2`` each; the next frame's x part accumulates into one while the
    element-wise stage reads the other, :mod:`sim.ref.lstm_schedule`), each holding its cells'
    four gates and, after them in bank 0, the projection's rows (``acc_base = 4 cells / N``)."""
    proj = 0 if layer.W_ym is None else -(-layer.W_ym.shape[0] // n)
    return 2 * (4 * (plan.cells_pad // n) + proj)


def check_accumulators(layer: LSTMLayer, cfg: EIEConfig) -> None:
    """Refuse an LSTM layer whose cells need more accumulators per PE than ``cfg`` has
    (:func:`accumulators_needed`); its shape alone decides."""
    n = cfg.n_pes
    plan = _plan(0, layer, 0, cfg)
    need = accumulators_needed(plan, layer, n)
    if need > cfg.acc_words:
        raise EIEError(
            f"LSTM layer {layer.name}: its {plan.cells_pad // n} cells per PE need {need} "
            f"accumulators (two banks of their 4 gates and the projection's rows), config "
            f"{cfg.name!r} has {cfg.acc_words} (acc_depth): use more PEs or a deeper "
            f"acc_depth")


def _orders(k: int, layer: LSTMLayer, net, cfg: EIEConfig, opts) -> tuple:
    """``(cell_order, y_order)``: the cells permuted as units (:func:`balanced_cells`) and the
    projection's rows permuted as an FC layer's (:func:`compiler.permute.balanced_order`),
    when the compiler permutes rows, the pruning is not ESE's load-balance-aware one (which
    balances every column already) and the layer has a projection (without one, ``m_t`` is
    ``y_t``: both stay in the plain interleave); else ``(None, None)``."""
    if opts is None or not opts.permute or not layer.has_projection or opts.pad_aware or \
            opts.balance or getattr(net, "balance", False):
        return None, None
    density = layer_target(opts.density, k, layer.density)
    trained = None if opts.shared is None else opts.shared[k]
    work = cell_work(layer, density, cfg.n_pes, trained)
    cells = balanced_cells(work, round_up(layer.n_cells, cfg.n_pes), cfg.n_pes)
    kept = (np.asarray(trained["proj"][0]) != 0 if trained is not None else
            lstm_masks(layer, density, cfg.n_pes, False)["W_ym"])
    ok = cells >= 0
    pattern = np.zeros((kept.shape[0], cells.size), dtype=np.int64)
    pattern[:, ok] = kept[:, cells[ok]]
    return cells, balanced_order(sp.csc_matrix(pattern), cfg)


def lower(net, cfg: EIEConfig, opts=None) -> tuple[tuple, tuple]:
    """The matrix layers of ``net`` (FC layers as they are, two per LSTM with a projection,
    one without) and one :class:`LSTMPlan` per LSTM layer; with ``opts``
    (:class:`compiler.options.Options`) the cells may be permuted as units
    (:func:`_orders`)."""
    mats, plans = [], []
    n = cfg.n_pes
    for k, layer in enumerate(net.layers):
        if not isinstance(layer, LSTMLayer):
            mats.append(layer)
            continue
        check_accumulators(layer, cfg)  # before _orders, which prunes
        plan = _plan(k, layer, len(mats), cfg, *_orders(k, layer, net, cfg, opts))
        plans.append(plan)
        mats.append(MatrixLayer(
            name=f"{layer.name}.gates", W=gates_matrix(layer.W_x, layer.W_r, plan, n),
            b=gates_vector(layer.b, plan, n), density=layer.density, kind="gates",
            lstm=len(plans) - 1, blocks=((0, plan.n_in), (plan.in_pad, plan.src_len)),
            col_starts=(0, plan.in_pad), act_density=layer.act_density))
        if plan.proj is not None:
            W = slot_columns(layer.W_ym, plan)
            mats.append(MatrixLayer(
                name=f"{layer.name}.proj", W=W, b=np.zeros(W.shape[0], np.float32),
                density=layer.density, kind="proj", lstm=len(plans) - 1,
                blocks=((0, W.shape[1]),)))
    return tuple(mats), tuple(plans)


def lstm_masks(layer: LSTMLayer, density: float, n_pes: int, balance: bool,
               pad_span: int | None = None) -> dict:
    """Keep-masks of ``W_x``, ``W_r`` and ``W_ym`` (user order), each pruned to ``density``.

    With ``balance`` (ESE's load-balance-aware pruning) each matrix is pruned in the hardware's
    row order (:func:`gate_rows` with the identity cell order; ``W_ym``'s rows are interleaved
    as an FC layer's), so every PE's slice of every column keeps the same count.  With
    ``pad_span`` (``2**rel_index_bits``) the selection is then made padding-aware in that
    order (:func:`compiler.prune.pad_aware`).  Exact zeros are never kept.
    """
    out = {}
    order = slot_order(None, layer.n_cells, round_up(layer.n_cells, n_pes))
    rows = gate_rows(order, layer.n_cells, n_pes)
    ok = rows >= 0
    for field, W in layer.matrices().items():
        W = np.asarray(W)
        if field == "W_ym":
            m = prune_balanced(W, density, n_pes) if balance else prune_magnitude(W, density)
            if pad_span:
                m = pad_aware(m & (W != 0), W, n_pes, pad_span)
        elif not balance and not pad_span:
            m = prune_magnitude(W, density)
        else:  # in the hardware's row order
            hw = np.zeros((rows.size, W.shape[1]), dtype=W.dtype)
            hw[ok] = W[rows[ok]]
            mh = prune_balanced(hw, density, n_pes, valid=ok) if balance else \
                np.zeros(hw.shape, dtype=bool)
            if not balance:
                mh[ok] = prune_magnitude(W, density)[rows[ok]]
            if pad_span:
                mh = pad_aware(mh & (hw != 0), hw, n_pes, pad_span)
            m = np.zeros(W.shape, dtype=bool)
            m[rows[ok]] = mh[ok]
        out[field] = m & (W != 0)
    return out


def lower_shared(shared, net, plans: tuple, cfg: EIEConfig) -> list | None:
    """Trained codebooks (``Options.shared``) per matrix layer: an FC layer's ``(index,
    centroids)`` as it is; an LSTM layer's ``{"gates": (index over [W_x | W_r], centroids),
    "proj": (index, centroids)}`` in hardware order."""
    if shared is None:
        return None
    out, by_layer = [], {p.layer: p for p in plans}
    for k, entry in enumerate(shared):
        plan = by_layer.get(k)
        if plan is None:
            out.append(entry)
            continue
        index, cb = entry["gates"]
        index = np.asarray(index)
        out.append((gates_matrix(index[:, :plan.n_in], index[:, plan.n_in:], plan,
                                 cfg.n_pes), cb))
        if plan.proj is not None:
            pidx, pcb = entry["proj"]
            out.append((slot_columns(pidx, plan), pcb))
    return out


def check_lstm_shared(entry, layer: LSTMLayer) -> list[tuple[str, tuple, object, object]]:
    """The (name, expected shape, index, centroids) of an LSTM layer's trained codebooks."""
    if not isinstance(entry, dict) or "gates" not in entry or \
            (layer.has_projection and "proj" not in entry):
        need = "'gates' and 'proj'" if layer.has_projection else "'gates'"
        raise EIEError(f"{layer.name}: the trained codebooks of an LSTM layer are a dict with "
                       f"{need}: (index, centroids)")
    out = [("gates", (4 * layer.n_cells, layer.n_in + layer.n_rec), *entry["gates"])]
    if layer.has_projection:
        out.append(("proj", tuple(layer.W_ym.shape), *entry["proj"]))
    return out
