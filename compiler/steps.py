"""The compiler's steps: prune -> share -> permute -> encode -> layout -> account.

Each step is a pure function ``step(state, cfg) -> state`` over one :class:`CompileState`: it
reads the fields the steps before it filled and returns a new state with its own field set
(FINN's builder, hls4ml's passes).  :mod:`compiler.runner` runs and times them; nothing here
prints, reads files or runs the golden model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from compiler.account import storage_breakdown
from compiler.layout import Images, build_images
from compiler.lower import MatrixLayer, gate_rows, gates_matrix, lstm_masks, slot_columns
from compiler.passes import encode_passes, layer_totals
from compiler.permute import balanced_order, local_order
from compiler.options import Options
from compiler.prune import (kept_count, layer_target, pad_aware, prune_balanced,
                            prune_magnitude)
from compiler.quantize import quantize
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import LUT_FUNCTIONS, choose_w_frac, lut_table, to_fixed
from hw.arch.regmap import lstm_x_frames, reload_cycles


@dataclass(frozen=True)
class PrunedLayer:
    """The kept weights of one layer in CSC order (column-major non-zero positions)."""

    rows: np.ndarray  # int64 row of every kept weight
    cols: np.ndarray  # int64 column of every kept weight
    values: np.ndarray  # float64 weight values
    # the target density: the one asked for, or the layer's own non-zeros when it has fewer
    # (a pruned model keeps its mask); for trained codebooks the actual one
    density: float
    index: np.ndarray | None = None  # trained codebook indices, when given
    centroids: np.ndarray | None = None  # trained codebook, when given
    # the density asked for (--density, or the model's own target below 1) when it keeps more
    # weights than the layer has non-zeros, else None; the layer's own density then
    asked: float | None = None
    own: float | None = None


@dataclass(frozen=True)
class SharedLayer:
    """One layer after weight sharing: codebook indices and the fixed-point codebook."""

    index: np.ndarray  # codebook index of every kept weight (CSC order)
    centroids: np.ndarray  # float codebook, entry 0 = the zero
    w_frac: int  # fraction bits of the fixed-point codebook
    codebook_int: np.ndarray  # int64 fixed-point codebook
    Q: sp.csc_matrix  # (rows x cols) matrix of codebook indices


@dataclass(frozen=True)
class CompileState:
    """What the steps know about one network; each step fills one more field."""

    net: object  # models.Network
    opts: Options
    bits: int  # codebook bits (validated)
    # the matrix layers the array runs (compiler.lower: FC layers as they are, an LSTM as its
    # gates and projection) and one compiler.lower.LSTMPlan per LSTM layer
    mats: tuple = ()
    plans: tuple = ()
    trained: list | None = None  # opts.shared per matrix layer (compiler.lower.lower_shared)
    pruned: tuple = ()  # PrunedLayer per layer (prune)
    shared: tuple = ()  # SharedLayer per layer (share)
    orders: tuple = ()  # per layer, the user row at each hardware row (permute)
    encoded: tuple = ()  # per layer, its list of compiler.passes.EncodedPass (encode)
    images: Images | None = None  # memory images and fixed-point inputs (layout)
    accounting: dict | None = None  # layers, storage_bits, memory (account)
    # biases and inputs that the fixed point saturates, one warning line each (layout)
    range_warnings: tuple = ()

    def __post_init__(self):
        # a network of FC layers is its own matrix layers (compiler.runner lowers LSTMs)
        if not self.mats and not getattr(self.net, "has_lstm", False):
            object.__setattr__(self, "mats", tuple(self.net.layers))
            if self.trained is None and self.opts.shared is not None:
                object.__setattr__(self, "trained", list(self.opts.shared))

    @property
    def balance(self) -> bool:
        """Load-balance-aware pruning: ``--balance``, or a model that asks for it."""
        return bool(self.opts.balance or getattr(self.net, "balance", False))

    @property
    def chained(self) -> bool:
        return bool(getattr(self.net, "chained", True))


def matrix_owners(state: CompileState) -> list[int]:
    """The network layer every matrix layer comes from (an LSTM's gates and projection: the
    LSTM's), the index :attr:`Options.density`'s per-layer values go by."""
    out = []
    for m in state.mats:
        if isinstance(m, MatrixLayer):
            out.append(state.plans[m.lstm].layer)
        else:
            out.append(next(k for k, layer in enumerate(state.net.layers) if layer is m))
    return out


def _asked(state: CompileState, k: int, layer) -> tuple[float, bool]:
    """The density asked for network layer ``k`` and whether anyone asked: ``--density``, or
    the model's target below 1 (an imported model's 1.0 is no request: it keeps its mask)."""
    target = layer_target(state.opts.density, k, layer.density)
    return target, state.opts.density is not None or target < 1


def prune(state: CompileState, cfg: EIEConfig) -> CompileState:
    """Magnitude pruning (or ESE load-balance-aware pruning) to each layer's target density;
    trained codebooks (``opts.shared``) give their non-zeros as they are.

    An exact zero is never kept (:mod:`compiler.prune`): a layer with fewer non-zeros than its
    target keeps its own mask, and its target becomes its own density (the default of an
    imported model, whose layers ask for 1.0)."""
    opts, out = state.opts, []
    masks = _lstm_masks(state, cfg)
    dense = user_shapes(state)
    owners = matrix_owners(state)
    for li, layer in enumerate(state.mats):
        if state.trained is not None:
            index, centroids = (np.asarray(a) for a in state.trained[li])
            cs, rs = np.nonzero(index.T)
            idx = index[rs, cs]
            out.append(PrunedLayer(rs, cs, centroids[idx], idx.size / index.size, idx,
                                   centroids))
            continue
        W = np.asarray(layer.W)
        asked, explicit = _asked(state, owners[li], layer)
        # over the user's matrix: an LSTM's hardware matrices are padded with zeros
        size = int(np.prod(dense.get(li, W.shape)))
        nnz = int(np.count_nonzero(W))
        own = nnz / size
        density = min(asked, own)
        if isinstance(layer, MatrixLayer):
            mask = masks[li]
        else:
            # to the density asked: what it cannot keep (zeros) is never kept
            mask = (prune_balanced(W, asked, cfg.n_pes) if state.balance
                    else prune_magnitude(W, asked))
            if opts.pad_aware:
                mask = pad_aware(mask, W, cfg.n_pes, cfg.max_rel_index + 1)
        # column-major non-zero positions give the CSC order directly
        cs, rs = np.nonzero(mask.T)
        del mask
        over = explicit and kept_count(size, asked) > nnz
        out.append(PrunedLayer(rs, cs, W[rs, cs].astype(np.float64), float(density),
                               asked=asked if over else None, own=own if over else None))
    return replace(state, pruned=tuple(out))


def prune_notes(state: CompileState) -> list[str]:
    """One line, once for the network, naming the layers whose model is sparser than the
    density asked for: their own masks were kept (pruning cannot bring a zero back)."""
    over = [f"{layer.name} ({100 * p.own:.1f} % non-zero, asked {100 * p.asked:.1f} %)"
            for layer, p in zip(state.mats, state.pruned) if p.asked is not None]
    if not over:
        return []
    are, kept = ("is", "its own mask is") if len(over) == 1 else ("are", "their own masks are")
    return [f"[compile] note: {', '.join(over)} {are} already sparser than the density asked: "
            f"{kept} kept (a pruned weight cannot come back)"]


def _lstm_masks(state: CompileState, cfg: EIEConfig) -> dict:
    """The keep-masks of every LSTM matrix layer, in hardware order: ``W_x``, ``W_r`` and
    ``W_ym`` pruned separately in the user's order (:func:`compiler.lower.lstm_masks`, the
    function the compression study prunes with too), then laid out as the layer's ``W``."""
    out, n = {}, cfg.n_pes
    for plan in state.plans:
        layer = state.net.layers[plan.layer]
        density = layer_target(state.opts.density, plan.layer, layer.density)
        m = lstm_masks(layer, density, n, state.balance,
                       cfg.max_rel_index + 1 if state.opts.pad_aware else None)
        out[plan.gates] = gates_matrix(m["W_x"], m["W_r"], plan, n, fill=False)
        if plan.proj is not None:
            out[plan.proj] = slot_columns(m["W_ym"], plan)
    return out


def share(state: CompileState, cfg: EIEConfig) -> CompileState:
    """Weight sharing (``opts.quantizer``) and the fixed-point codebook of every layer."""
    out = []
    for layer, p in zip(state.mats, state.pruned):
        if p.index is not None:
            idx, centroids = p.index, p.centroids
        elif p.values.size == 0:  # an all-zero layer: nothing to share, only the zero entry
            idx, centroids = np.zeros(0, np.uint8), np.zeros(1 << state.bits, np.float64)
        else:
            idx, centroids = quantize(p.values, state.bits, state.opts.quantizer)
        w_frac = choose_w_frac(centroids, cfg)
        cb_int = to_fixed(centroids, w_frac, cfg.weight_bits)
        cb_int[0] = 0
        rows, cols = np.asarray(layer.W).shape
        indptr = np.zeros(cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(p.cols, minlength=cols), out=indptr[1:])
        Q = sp.csc_matrix((np.asarray(idx, dtype=np.int64), p.rows, indptr), shape=(rows, cols))
        out.append(SharedLayer(idx, centroids, w_frac, cb_int, Q))
    return replace(state, shared=tuple(out))


def weight_warnings(state: CompileState) -> list[str]:
    """A warning for every layer that multiplies by zero only: no non-zero weight at all (it
    compiles to empty columns), or every kept weight quantized to 0 in the fixed-point
    codebook (its entries are stored, and the hardware adds nothing)."""
    lines = []
    for layer, s in zip(state.mats, state.shared):
        index = np.asarray(s.index)
        if index.size == 0:
            lines.append(f"[compile] warning: layer {layer.name} has no non-zero weight: it "
                         f"is stored as empty columns and outputs its bias only")
        elif not np.asarray(s.codebook_int)[index].any():
            big = float(np.max(np.abs(s.centroids)))
            lines.append(f"[compile] warning: layer {layer.name}: all {index.size} of its "
                         f"non-zero weights quantize to 0 in the fixed-point codebook "
                         f"(largest centroid {big:.3g}, w_frac {s.w_frac}): it outputs its "
                         f"bias only")
    return lines


def saturation_warning(what: str, x: np.ndarray, cfg: EIEConfig) -> str | None:
    """A warning when values of ``x`` (``what``: "biases of layer fc6") lie beyond the
    activations' fixed-point range (they are saturated to it, as the hardware's registers hold
    them).  None when every value fits."""
    top = ((1 << (cfg.act_bits - 1)) - 1) / 2.0 ** cfg.act_frac
    bottom = -(1 << (cfg.act_bits - 1)) / 2.0 ** cfg.act_frac
    r = np.rint(x * 2.0 ** cfg.act_frac) / 2.0 ** cfg.act_frac  # as to_fixed rounds them
    over = (r > top) | (r < bottom)
    n = int(np.count_nonzero(over))
    if not n:
        return None
    return (f"[compile] warning: {n:,} of the {x.size:,} {what} lie beyond the "
            f"fixed-point range [{bottom:g}, {top:g}] (act_bits {cfg.act_bits}, act_frac "
            f"{cfg.act_frac}; largest magnitude {float(np.max(np.abs(x[over]))):.4g}) and are "
            f"saturated: scale the model or its inputs, or choose a configuration with fewer "
            f"fraction bits")


def layout_warnings(state: CompileState) -> list[str]:
    """The saturated biases and inputs :func:`layout` found."""
    return list(state.range_warnings)


def permute(state: CompileState, cfg: EIEConfig) -> CompileState:
    """The row order of every layer (:func:`compiler.permute.balanced_order`; with ``--balance``
    only :func:`compiler.permute.local_order`; the identity with ``--no-permute``).

    The matrix layers of an LSTM keep their rows (the gates of a cell must stay on the PE of its
    cell, :mod:`compiler.lower`), and so does a layer whose output an LSTM reads (``x_t`` in the
    order the LSTM's columns expect)."""
    orders = []
    fixed = {p.gates - 1 for p in state.plans} | {li for li, m in enumerate(state.mats)
                                                  if isinstance(m, MatrixLayer)}
    # an LSTM's projection rows: the order the lowering chose (compiler.lower._orders), so
    # that y_t's hardware order matches the gates' recurrent columns
    proj = {p.proj: p.y_perm for p in state.plans if p.proj is not None}
    for li, s in enumerate(state.shared):
        rows = s.Q.shape[0]
        if li in proj:
            orders.append(np.asarray(proj[li], dtype=np.int64))
        elif not state.opts.permute or state.opts.pad_aware or li in fixed:
            orders.append(np.arange(rows, dtype=np.int64))
        elif state.balance:  # ESE's pruning balanced every column: reorder within PEs
            orders.append(local_order(s.Q, cfg))
        else:
            orders.append(balanced_order(s.Q, cfg))
    return replace(state, orders=tuple(orders))


def hardware_matrices(state: CompileState) -> list:
    """Every layer's index matrix in hardware order: rows by its own order, columns by the
    previous layer's (a chained network's layer ``k + 1`` reads layer ``k``'s permuted output)."""
    out = []
    for li, s in enumerate(state.shared):
        Q = s.Q.tocsc()
        if not state.orders:
            out.append(Q)
            continue
        prev = state.orders[li - 1] if state.chained and li else None
        if prev is not None and not np.array_equal(prev, np.arange(prev.size)):
            Q = Q[:, prev]  # column slices reordered, no conversion
        else:
            Q = Q.copy()
        # hardware row i holds user row order[i]: relabel every entry's row
        inv = np.empty_like(state.orders[li])
        inv[state.orders[li]] = np.arange(inv.size)
        Q.indices = inv[Q.indices].astype(Q.indices.dtype)
        Q.has_sorted_indices = False
        out.append(Q)
    return out


def encode(state: CompileState, cfg: EIEConfig) -> CompileState:
    """Interleaved CSC streams of every layer, one per PE, for each of its passes (output and
    column batches, :func:`compiler.passes.encode_passes`)."""
    return replace(state, encoded=tuple(
        encode_passes(Q, cfg, layer.name, getattr(layer, "col_starts", (0,)))
        for Q, layer in zip(hardware_matrices(state), state.mats)))


def network_inputs(net) -> list:
    """The float inputs: the first layer's for a chained network, else one per layer."""
    if bool(getattr(net, "chained", True)):
        return [net.x]
    return [layer.x for layer in net.layers]


def _lstm_images(state: CompileState, cfg: EIEConfig) -> list[dict]:
    """Per LSTM layer: its plan (:meth:`compiler.lower.LSTMPlan.to_dict`) and its peepholes in
    the activation format, placed per PE (``peep`` ``(N, 3, cells_pad / N)``: PE ``k``'s local
    cell ``j`` is slot ``j * N + k``), or None."""
    out, n = [], cfg.n_pes
    for plan in state.plans:
        d = plan.to_dict(cfg.n_pes)
        d["program"], d["program_note"] = lstm_program(plan, state, cfg)
        d["peep"] = None
        if plan.peep is not None:
            slots = np.zeros((3, plan.cells_pad))
            ok = plan.cell_order >= 0
            slots[:, ok] = np.asarray(plan.peep, np.float64)[:, plan.cell_order[ok]]
            q = to_fixed(slots, cfg.act_frac, cfg.act_bits)
            d["peep"] = q.reshape(3, plan.cells_pad // n, n).transpose(2, 0, 1).copy()
        out.append(d)
    return out


def lstm_program(plan, state: CompileState,
                 cfg: EIEConfig) -> tuple[dict | None, str | None]:
    """The central unit's LSTM program of ``plan`` (:data:`hw.arch.regmap.LSTM_FIELDS` but
    ``frames``), with the LSTM's passes in descriptor slots 0 (the gates' x part), 1 (their y
    part) and 2 (the projection, when there is one: without it, ``no_proj`` and the
    element-wise stage writes ``m_t = y_t`` into the y region of the gates' source); the x
    frames after the y region of the gates' source (the writes of frame ``t`` at group
    ``x_group0 + t * x_stride``).

    An LSTM that returns its sequence runs the layers after it in every frame (``F(t)`` after
    ``P(t)``): their passes in the slots after the LSTM's (``f_slot``, ``f_count``), their
    accumulators after the gates of bank 1 (``f_acc_base``, free in every frame: bank 1's gates
    are the next frame's in every other frame, bank 0 holds the gates and the projection).

    Returns the program and None, or None and the reason the hardware's program cannot run it
    (a second LSTM, a product cut into more passes, per-frame layers that do not fit).
    """
    gates, proj = state.encoded[plan.gates], None if plan.proj is None else \
        state.encoded[plan.proj]
    if len(gates) != 2 or (proj is not None and len(proj) != 1):
        return None, ("its gates or its projection are cut into more passes than the x part, "
                      "the y part and one projection pass (output or column batches)")
    n_lstm = 2 if proj is None else 3  # descriptor slots: X, Y (and P)
    last = plan.gates if proj is None else plan.proj
    if n_lstm > cfg.max_layers:
        return None, (f"its {n_lstm} passes need {n_lstm} descriptor slots, and config "
                      f"{cfg.name!r} has {cfg.max_layers} (max_layers)")
    if state.images is not None and any(int(p["segment"]) or int(p["ptr_segment"])
                                        for p in state.images.passes):
        return None, (f"its layers do not fit config {cfg.name!r} at once (Spmat or pointer "
                      f"segments), and the LSTM program needs every pass resident")
    n = cfg.n_pes
    cpp = plan.cells_pad // n
    y_base = plan.in_pad // n
    lay = state.images.layers[plan.gates] if state.images is not None else None
    if len(state.plans) > 1:
        return None, (f"{len(state.plans)} LSTM layers: the program runs one, with FC layers "
                      f"after it")
    f_slot, f_count, f_acc_base = 0, 0, 0
    if lay is not None and plan.return_sequences and last + 1 < len(state.images.layers):
        passes = state.images.passes
        rest = [passes[p] for li in range(last + 1, len(state.images.layers))
                for p in state.images.layers[li]["passes"]]
        f_slot, f_count, f_acc_base = n_lstm, len(rest), cfg.acc_bank_words + 4 * cpp
        src = int(passes[lay["passes"][0]]["src_sel"])
        if n_lstm + f_count > cfg.max_layers:
            return None, (f"the layers after it run on every frame in {f_count} pass(es) after "
                          f"the LSTM's {n_lstm}, and config {cfg.name!r} has {cfg.max_layers} "
                          f"descriptor slots (max_layers)")
        for p in rest:
            rows = -(-int(p["out_len"]) // n)
            if rows > cfg.acc_words - f_acc_base:
                return None, (f"layer {p['name']} runs on every frame with {rows} rows per PE, "
                              f"and {cfg.acc_words - f_acc_base} accumulators per PE are free "
                              f"beside the LSTM's (config {cfg.name!r}, acc_depth "
                              f"{cfg.acc_words})")
            if 1 - int(p["src_sel"]) == src and int(p["dst_base"]) + rows > y_base:
                return None, (f"layer {p['name']} runs on every frame and would write its "
                              f"output over the LSTM's y_t and x frames (only {y_base} word(s) "
                              f"per PE are free before them)")
    # every frame of x is written before the sequence runs, after the y region of the gates'
    # source bank: the longest sequence must fit that bank (act_depth words per PE)
    frames = int(np.shape(state.net.x)[1])  # an LSTM network's inputs: (n, T, n_in)
    x_group0, x_stride, fit = lstm_x_frames(plan.n_in, plan.n_rec, cfg)
    if frames > fit:
        return None, (f"its sequences of {frames} frames are stored whole in the source "
                      f"activations, {x_group0} + {frames} x {x_stride} = "
                      f"{x_group0 + frames * x_stride} words per PE, and config {cfg.name!r} "
                      f"has act_depth {cfg.act_depth} (room for {fit} frame(s)); use shorter "
                      f"sequences or a config with a larger act_depth")
    return {"x_slot": 0, "y_slot": 1, "p_slot": 0 if proj is None else 2,
            "x_group0": x_group0, "x_stride": x_stride,
            "proj_acc_base": 0 if proj is None else 4 * cpp, "ew_cells": cpp,
            "ew_bias_base": None if lay is None else lay["bias_base"],
            "ew_shift": None if lay is None else lay["shift"],
            # m_t into the projection's source, or, without one, into y_t's place
            "ew_dst": y_base if proj is None else 0,
            "ew_peephole": int(plan.peep is not None),
            "f_slot": f_slot, "f_count": f_count, "f_acc_base": f_acc_base,
            "no_proj": int(proj is None)}, None


def _input_width(state: CompileState, lay: dict) -> int:
    """The width of the network input the first matrix layer reads (an LSTM's ``n_in``)."""
    for plan in state.plans:
        if plan.gates == 0:
            return plan.n_in
    return lay["in_len"]


def layout(state: CompileState, cfg: EIEConfig) -> CompileState:
    """Place the layers in the per-PE memories; fixed-point biases, inputs, and the LSTMs'
    peepholes and activation tables."""
    layers = state.mats
    orders = state.orders or [np.arange(len(layer.b)) for layer in layers]
    dst, src = [0] * len(layers), [0] * len(layers)
    sels = [li % 2 if state.chained else 0 for li in range(len(layers))]
    for plan in state.plans:  # y_t goes straight into the next step's source vector
        last = plan.proj if plan.proj is not None else plan.gates
        dst[last] = plan.y_base(cfg.n_pes)
        if last + 1 < len(layers):  # the next layer reads y_T (or every y_t) in place
            src[last + 1] = plan.y_base(cfg.n_pes)
        if plan.proj is None and state.chained:
            # without a projection the element-wise stage leaves y_t in the gates' source:
            # the layers after it alternate from there
            for li in range(plan.gates + 1, len(layers)):
                sels[li] = (sels[plan.gates] + li - plan.gates - 1) % 2
    floats = [np.asarray(layer.b, dtype=np.float64)[o] for layer, o in zip(layers, orders)]
    warn = [saturation_warning(f"biases of layer {layer.name}", b, cfg)
            for layer, b in zip(layers, floats)]
    images = build_images(list(state.encoded), [s.codebook_int for s in state.shared],
                          [s.w_frac for s in state.shared],
                          [to_fixed(b, cfg.act_frac, cfg.act_bits) for b in floats],
                          [bool(layer.relu) for layer in layers], [layer.name for layer in layers],
                          cfg, chained=state.chained, dst_offsets=dst, src_offsets=src,
                          src_sels=sels)
    xs = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in network_inputs(state.net)]
    warn += [saturation_warning("input values" + (f" of layer {lay['name']}" if len(xs) > 1
                                                  else ""), x, cfg)
             for x, lay in zip(xs, images.layers)]
    images.inputs = [to_fixed(x, cfg.act_frac, cfg.act_bits) for x in xs]
    for x, lay in zip(images.inputs, images.layers[:1] if state.chained else images.layers):
        if x.shape[-1] != _input_width(state, lay):
            raise EIEError(f"layer {lay['name']}: input has {x.shape[-1]} elements, "
                           f"expected {_input_width(state, lay)}")
    for lay, o in zip(images.layers, orders):
        lay["row_order"] = None if np.array_equal(o, np.arange(o.size)) else o.tolist()
    for li, m in enumerate(layers):
        if isinstance(m, MatrixLayer):
            images.layers[li].update(lstm=m.lstm, role=m.kind)
    if state.plans:
        images.lstm = _lstm_images(replace(state, images=images), cfg)
        images.tables = {fn: lut_table(fn, cfg) for fn in LUT_FUNCTIONS}
    return replace(state, images=images, range_warnings=tuple(w for w in warn if w))


def _layer_storage(passes: list, cfg: EIEConfig, dense_shape: tuple | None = None) -> dict:
    """Storage at each compression stage; ``dense_shape`` is the dense matrix the user's model
    has (an LSTM's ``[W_x | W_r]`` without the padding of ``x_t`` and of the cells)."""
    tot = layer_totals(passes)
    enc0 = passes[0].enc
    rows = max(p.row0 + p.enc.rows for p in passes)
    cols = max(p.col0 + p.enc.cols for p in passes)
    rows, cols = dense_shape or (rows, cols)
    return storage_breakdown(
        rows=rows, cols=cols, nnz=tot["nnz"], n_entries=int(tot["entries"].sum()),
        weight_index_bits=cfg.weight_index_bits, rel_index_bits=cfg.rel_index_bits,
        ptr_bits=cfg.ptr_bits, n_pointers=cfg.n_pes * tot["pointers"],
        codebook_size=cfg.codebook_size, codebook_bits=cfg.weight_bits,
        v_symbols=np.concatenate([v for p in passes for v in p.enc.v] or [enc0.v[0]]),
        z_symbols=np.concatenate([z for p in passes for z in p.enc.z] or [enc0.z[0]]))


def _pass_entry(pas: dict, ep, cfg: EIEConfig) -> dict:
    """The manifest's row of one pass: its descriptor, placement and per-PE entries."""
    words = ep.enc.spmat_words(cfg)
    return {**pas, "entries_per_pe": ep.enc.entries.tolist(),
            "padding_per_pe": ep.enc.padding.tolist(), "spmat_words_per_pe": words.tolist()}


def _layer_entry(li: int, state: CompileState, store: dict, cfg: EIEConfig,
                 dense_shape: tuple | None = None) -> dict:
    passes, lay = state.encoded[li], state.images.layers[li]
    tot = layer_totals(passes)
    rows, cols = lay["out_len"], lay["in_len"]
    d_rows, d_cols = dense_shape or (rows, cols)
    return {
        **{k: lay[k] for k in ("name", "in_len", "out_len", "bias_base", "shift", "relu",
                               "passes", "row_batches", "col_batches", "row_order")},
        "rows": rows, "cols": cols,
        "weight_density_target": state.pruned[li].density,
        # of the user's matrix (an LSTM's [W_x | W_r] without the padding)
        "weight_density": tot["nnz"] / (d_rows * d_cols),
        **({"user_shape": [d_rows, d_cols]} if dense_shape else {}),
        "nnz": tot["nnz"],
        "padding_entries": int(tot["padding"].sum()),
        "entries": int(tot["entries"].sum()),
        "entries_per_pe": tot["entries"].tolist(),
        "padding_per_pe": tot["padding"].tolist(),
        "pointers_per_pe": tot["pointers"],
        "spmat_words_per_pe": np.sum([ep.enc.spmat_words(cfg) for ep in passes],
                                      axis=0).tolist(),
        "act_density_target": getattr(state.mats[li], "act_density", None),
        **({"lstm": lay["lstm"], "role": lay["role"]} if "role" in lay else {}),
        "act_density": None,  # measured on the golden model's inputs (sim.flow.compile)
        "codebook_int": state.images.codebook[li].tolist(),
        "codebook": [float(c) for c in state.shared[li].centroids],
        "w_frac": lay["shift"],
        "storage_bits": store,
    }


def _memory(layers_m: list, passes_m: list, images: Images, cfg: EIEConfig) -> dict:
    n = cfg.n_pes
    # words used per PE: the fullest Spmat segment (segments replace each other in the SRAM)
    spmat_used = np.max([np.asarray(m["spmat_base"]) + np.asarray(m["spmat_words_per_pe"])
                         for m in passes_m], axis=0)
    n_segments = images.n_segments
    return {
        "spmat_words_used_per_pe": spmat_used.tolist(),
        "spmat_words_available": cfg.spmat_depth,
        "spmat_max_utilisation": float(spmat_used.max() / cfg.spmat_depth),
        "spmat_segments": n_segments,
        "spmat_segment_layers": [[m["name"] for m in passes_m if m["segment"] == s]
                                 for s in range(n_segments)],
        "pointers_used": int(sum(m["in_len"] + 1 for m in passes_m)),
        "pointers_available": cfg.ptr_depth,
        "bias_words_used": int(sum(-(-m["rows"] // n) for m in layers_m)),
        "bias_words_available": cfg.bias_depth,
        "passes": len(passes_m),
        "segments": segment_loads(passes_m, images, cfg),
    }


def segment_loads(passes_m: list, images: Images, cfg: EIEConfig) -> list[dict]:
    """Per segment: its passes, the words the host writes into each PE's Spmat SRAM and pointer
    banks before it runs (segment 0: the first load; a segment whose pointers stay resident
    moves no pointer word) and the cycles that takes (:func:`hw.arch.regmap.reload_cycles`)."""
    out = []
    for s in range(images.n_segments):
        spmat_words = int(images.spmat_of(s).shape[1])
        loads_ptr = s == 0 or s in images.ptr_segments
        ptr_words = sum(int(b.shape[1]) for b in images.ptr_of(s)) if loads_ptr else 0
        out.append({"layers": [m["name"] for m in passes_m if m["segment"] == s],
                    "spmat_words": spmat_words, "ptr_words": ptr_words,
                    "reload_cycles": reload_cycles(cfg.n_pes, spmat_words + ptr_words)})
    return out


def user_shapes(state: CompileState) -> dict:
    """The user's dense matrix of every matrix layer an LSTM was lowered into, by matrix-layer
    index (``[W_x | W_r]`` of the gates, ``W_ym``): the hardware's are padded."""
    dense = {}
    for p in state.plans:
        dense[p.gates] = (4 * p.cells, p.n_in + p.n_rec)
        if p.proj is not None:
            dense[p.proj] = (state.mats[p.proj].W.shape[0], p.cells)
    return dense


def account(state: CompileState, cfg: EIEConfig) -> CompileState:
    """Per-layer and per-pass manifest entries, storage at each compression stage, memory use."""
    layers_m, totals = [], {}
    dense = user_shapes(state)
    for li, passes in enumerate(state.encoded):
        store = _layer_storage(passes, cfg, dense.get(li))
        for key, val in store.items():
            if not key.endswith("_ratio"):
                totals[key] = totals.get(key, 0) + val
        layers_m.append(_layer_entry(li, state, store, cfg, dense.get(li)))
    flat = [ep for passes in state.encoded for ep in passes]
    passes_m = [_pass_entry(pas, ep, cfg) for pas, ep in zip(state.images.passes, flat)]
    dense = totals.get("dense_32bit", 0)
    for key in list(totals):
        if key != "dense_32bit" and dense:
            totals[f"{key}_ratio"] = totals[key] / dense
    return replace(state, accounting={"layers": layers_m, "passes": passes_m,
                                      "storage_bits": totals,
                                      "memory": _memory(layers_m, passes_m, state.images, cfg)})


def compressed_weights(state: CompileState) -> list:
    """The float view of every compressed layer (``scipy.sparse`` CSR), for accuracy reports."""
    return [sp.csr_matrix((s.centroids[np.asarray(s.index)], (p.rows, p.cols)),
                          shape=np.asarray(layer.W).shape)
            for layer, p, s in zip(state.mats, state.pruned, state.shared)]


def compressed_network(state: CompileState):
    """The float network with every matrix compressed (codebook centroids at the kept
    weights), in the user's order: what the float reference runs for the compressed
    accuracy of a network with LSTM layers."""
    W = [m.toarray().astype(np.float32) for m in compressed_weights(state)]
    plans = {p.layer: p for p in state.plans}
    layers, mi = [], 0
    for k, layer in enumerate(state.net.layers):
        plan = plans.get(k)
        if plan is None:
            layers.append(dataclasses.replace(layer, W=W[mi]))
            mi += 1
            continue
        rows = gate_rows(plan.cell_order, plan.cells, state.images.cfg.n_pes)
        ok = rows >= 0
        W_x = np.zeros((4 * plan.cells, plan.n_in), np.float32)
        W_r = np.zeros((4 * plan.cells, plan.n_rec), np.float32)
        W_x[rows[ok]] = W[plan.gates][ok, :plan.n_in]
        W_r[np.ix_(rows[ok], plan.y_perm)] = W[plan.gates][ok, plan.in_pad:]
        kw = {"W_x": W_x, "W_r": W_r}
        mi += 1
        if plan.proj is not None:
            slots = np.flatnonzero(plan.cell_order >= 0)
            W_ym = np.zeros((W[plan.proj].shape[0], plan.cells), np.float32)
            W_ym[:, plan.cell_order[slots]] = W[plan.proj][:, slots]
            kw["W_ym"] = W_ym
            mi += 1
        layers.append(dataclasses.replace(layer, **kw))
    return dataclasses.replace(state.net, name=f"{state.net.name}-compressed", layers=layers)
