"""Deep Compression's retraining for sequence networks: LSTM (LSTMP) and FC layers, in NumPy.

A network is a chain of :class:`models.lstm.LSTMLayer` s (with or without projection and
peepholes, ``return_sequences`` either way) and fully-connected layers (ReLU or not), as a
:class:`models.network.Network` holds it; an FC layer whose input is a sequence runs on every
frame.  Its trainable form is

* ``params``: one dict of float64 arrays per layer, an LSTM's ``W_x``, ``W_r``, ``b`` and,
  where the layer has them, ``peep`` and ``W_ym`` (the fields of :class:`~models.lstm.LSTMLayer`),
  an FC layer's ``W`` and ``b``;
* ``specs``: one :class:`Spec` per layer (kind, ReLU, ``return_sequences``);
* ``masks``: keep-masks as :func:`models.network.float_forward` takes them, a bool array for an
  FC layer's ``W``, a dict by matrix name (``"W_x"``, ``"W_r"``, ``"W_ym"``) for an LSTM layer;
  None for a dense network.

The loss is softmax cross-entropy on the last layer's outputs (the logits: one vector per
sample, or per frame when the last layer outputs sequences, then the labels are ``(n, T)``)
plus L2 on the matrices; gradients by back-propagation through time (:func:`loss_and_grads`,
checked against finite differences in the tests).  The stages are those of
:mod:`compiler.train`, whose optimizers, loss, density schedule and weight sharing they use:

* :func:`fit` — mini-batch training, optionally with global gradient-norm clipping; with
  ``masks`` pruned weights are zeroed, get no gradient and stay zero;
* :func:`iterative_prune` — prune, retrain, prune again, the density falling geometrically to
  the target (:func:`compiler.train.density_schedule`); an LSTM layer's three matrices are
  pruned by :func:`compiler.lower.lstm_masks` (magnitude, or with ``balance`` ESE's
  load-balance-aware pruning in the hardware's row order), an FC layer's by magnitude or
  :func:`compiler.prune.prune_balanced`; a pruned weight never comes back (but where a
  load-balance-aware round's quota of a PE's column asks for more than the PE still holds,
  :func:`prune`);
* :func:`trained_quantization` — k-means weight sharing with linear initialisation
  (:func:`compiler.train.share_weights`), one codebook per sparse product: an LSTM layer's
  gates matrix ``[W_x | W_r]`` (one accumulation, one fixed-point scale in the hardware), its
  projection ``W_ym``, an FC layer's ``W``; then the centroids (and the biases and peepholes)
  are fine-tuned, a centroid's gradient being the sum of its members' gradients
  (:func:`compiler.train.centroid_gradients`).  :meth:`Quantized.options_shared` is what
  :class:`compiler.options.Options` ``(shared=...)`` takes.

Every function returns new arrays and leaves its arguments alone; everything is deterministic
for a seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.lower import lstm_masks
from compiler.prune import pad_aware, prune_balanced
from compiler.train import (SharedLayer, TrainOptions, centroid_gradients, density_schedule,
                            make_optimizer, minibatches, prune_step, share_weights,
                            softmax_cross_entropy)
from hw.arch.errors import EIEError
from models.lstm import MATRICES, LSTMLayer, sigmoid
from models.network import Network

#: the arrays of an LSTM layer's params, in the order every flat list uses
LSTM_FIELDS: tuple[str, ...] = ("W_x", "W_r", "b", "peep", "W_ym")
#: the arrays of an FC layer's params
FC_FIELDS: tuple[str, ...] = ("W", "b")
#: fields that are weight matrices (weight decay, pruning, sharing); the rest are vectors
MATRIX_FIELDS = frozenset((*MATRICES, "W"))
#: order of the arrays of one layer's trainables in flat lists (params, then codebooks)
_ORDER = (*LSTM_FIELDS, *FC_FIELDS[:1], "gates", "proj")


@dataclass(frozen=True)
class Spec:
    """What a layer is, beside its arrays."""

    name: str
    kind: str  # "lstm" or "fc"
    relu: bool = False  # FC layers only
    return_sequences: bool = False  # LSTM layers only

    def __post_init__(self):
        if self.kind not in ("lstm", "fc"):
            raise EIEError(f"layer {self.name}: kind must be 'lstm' or 'fc', got {self.kind!r}")


@dataclass(frozen=True)
class SeqTrainOptions(TrainOptions):
    """:class:`compiler.train.TrainOptions` plus global gradient-norm clipping."""

    clip: float | None = None  # rescale a batch's gradient to this norm when it is larger

    def __post_init__(self):
        super().__post_init__()
        if self.clip is not None and not (np.isfinite(self.clip) and self.clip > 0):
            raise EIEError(f"gradient clipping norm must be positive, got {self.clip}")


# ---- the network's trainable form -------------------------------------------------------

def specs_of(net: Network) -> tuple[Spec, ...]:
    """One :class:`Spec` per layer of a chained network."""
    if not net.chained:
        raise EIEError(f"{net.name}: training needs a chained network (layer k feeds layer k+1)")
    return tuple(Spec(layer.name, "lstm", return_sequences=bool(layer.return_sequences))
                 if isinstance(layer, LSTMLayer) else Spec(layer.name, "fc", bool(layer.relu))
                 for layer in net.layers)


def params_of(net: Network) -> list[dict[str, np.ndarray]]:
    """The network's arrays as float64 params (copies)."""
    out = []
    for layer in net.layers:
        fields = LSTM_FIELDS if isinstance(layer, LSTMLayer) else FC_FIELDS
        out.append({f: np.array(getattr(layer, f), dtype=np.float64) for f in fields
                    if getattr(layer, f) is not None})
    return out


def to_network(net: Network, params, densities=None, name: str | None = None,
               x=None, labels=None, description: str | None = None) -> Network:
    """``net`` with its layers' arrays (float32) replaced by ``params`` and, given, its target
    densities, name, inputs, labels and description."""
    layers = []
    for k, (layer, p) in enumerate(zip(net.layers, params)):
        fields = {f: (None if p.get(f) is None else np.asarray(p[f], np.float32))
                  for f in (LSTM_FIELDS if isinstance(layer, LSTMLayer) else FC_FIELDS)}
        if densities is not None:
            fields["density"] = float(densities[k])
        layers.append(dataclasses.replace(layer, **fields))
    return Network(name=name or net.name, layers=layers,
                   x=net.x if x is None else np.asarray(x, np.float32),
                   labels=net.labels if labels is None else labels,
                   synthetic=net.synthetic, description=description or net.description,
                   balance=net.balance)


def _fields(p: dict) -> list[str]:
    return sorted(p, key=_ORDER.index)


def flatten(params) -> list[np.ndarray]:
    """Every array of ``params`` (or of any list of per-layer dicts), in one fixed order."""
    return [p[f] for p in params for f in _fields(p)]


def unflatten(like, arrays) -> list[dict]:
    """The inverse of :func:`flatten`: ``arrays`` in the structure of ``like``."""
    out, j = [], 0
    for p in like:
        keys = _fields(p)
        out.append(dict(zip(keys, arrays[j:j + len(keys)])))
        j += len(keys)
    return out


# ---- forward and back-propagation through time ----------------------------------------

def _lstm_forward(p: dict, x: np.ndarray):
    """Every ``y_t`` ``(n, T, n_rec)`` and the per-step cache of :func:`_lstm_backward`
    (equations: :mod:`models.lstm`)."""
    W_x, W_r, peep, W_ym = p["W_x"], p["W_r"], p.get("peep"), p.get("W_ym")
    n, T, _ = x.shape
    nc = W_x.shape[0] // 4
    zx = x @ W_x.T + p["b"]  # the input part of every frame at once
    y, c = np.zeros((n, W_r.shape[1])), np.zeros((n, nc))
    ys, steps = np.empty((n, T, W_r.shape[1])), []
    for t in range(T):
        z = zx[:, t] + y @ W_r.T
        zi, zf, zo = z[:, :nc], z[:, nc:2 * nc], z[:, 3 * nc:]
        if peep is not None:
            zi, zf = zi + peep[0] * c, zf + peep[1] * c
        i, f, g = sigmoid(zi), sigmoid(zf), np.tanh(z[:, 2 * nc:3 * nc])
        c_new = f * c + i * g
        if peep is not None:
            zo = zo + peep[2] * c_new  # the output peephole sees c_t
        o = sigmoid(zo)
        h = np.tanh(c_new)
        m = o * h
        steps.append((y, c, i, f, g, o, c_new, h, m))
        y, c = (m if W_ym is None else m @ W_ym.T), c_new
        ys[:, t] = y
    return ys, steps


def _lstm_backward(p: dict, x, steps, dout, seq: bool, need_dx: bool):
    """Gradients of one LSTM layer's params (and of its input) by BPTT.

    ``dout`` is the gradient of the layer's output: ``(n, T, n_rec)`` with ``seq``, else the
    last frame's ``(n, n_rec)``.
    """
    W_x, W_r, peep, W_ym = p["W_x"], p["W_r"], p.get("peep"), p.get("W_ym")
    grads = {f: np.zeros_like(a) for f, a in p.items()}
    dx = np.zeros_like(x) if need_dx else None
    T = len(steps)
    dc_next, dy_rec = np.zeros((x.shape[0], W_x.shape[0] // 4)), None
    for t in range(T - 1, -1, -1):
        y_prev, c_prev, i, f, g, o, c, h, m = steps[t]
        if seq:
            dy = dout[:, t] if dy_rec is None else dout[:, t] + dy_rec
        else:
            dy = dout if t == T - 1 else dy_rec
        if W_ym is None:
            dm = dy
        else:
            grads["W_ym"] += dy.T @ m
            dm = dy @ W_ym
        dzo = dm * h * o * (1 - o)
        dc = dc_next + dm * o * (1 - h * h)
        if peep is not None:
            dc = dc + dzo * peep[2]
        dzf = dc * c_prev * f * (1 - f)
        dzi = dc * g * i * (1 - i)
        dzg = dc * i * (1 - g * g)
        if peep is not None:
            gp = grads["peep"]
            gp[0] += np.sum(dzi * c_prev, axis=0)
            gp[1] += np.sum(dzf * c_prev, axis=0)
            gp[2] += np.sum(dzo * c, axis=0)
        dz = np.concatenate([dzi, dzf, dzg, dzo], axis=1)
        grads["W_x"] += dz.T @ x[:, t]
        grads["W_r"] += dz.T @ y_prev
        grads["b"] += dz.sum(axis=0)
        if need_dx:
            dx[:, t] = dz @ W_x
        dy_rec = dz @ W_r
        dc_next = dc * f
        if peep is not None:
            dc_next = dc_next + dzi * peep[0] + dzf * peep[1]
    return grads, dx


def forward(params, specs, x) -> tuple[np.ndarray, list]:
    """The network's output and the cache of :func:`backward`.

    Parameters
    ----------
    params : list of dict
    specs : sequence of Spec
    x : np.ndarray
        ``(n, T, n_in)`` sequences (``(n, n_in)`` vectors for a network of FC layers).

    Returns
    -------
    out : np.ndarray
        ``(n, n_out)``, or ``(n, T, n_out)`` when the last layer's output is a sequence.
    cache : list
        Per layer: its input and what its backward pass needs.
    """
    a = np.asarray(x, np.float64)
    cache = []
    for p, s in zip(params, specs):
        if s.kind == "lstm":
            ys, steps = _lstm_forward(p, a)
            cache.append((a, steps))
            a = ys if s.return_sequences else ys[:, -1]
        else:
            z = a @ p["W"].T + p["b"]
            out = np.maximum(z, 0) if s.relu else z
            cache.append((a, out))
            a = out
    return a, cache


def backward(params, specs, dout, cache) -> list[dict]:
    """Gradients of every param (the structure of ``params``) from the output's gradient."""
    grads = [None] * len(params)
    delta = dout
    for k in range(len(params) - 1, -1, -1):
        p, s, (a, saved) = params[k], specs[k], cache[k]
        if s.kind == "lstm":
            grads[k], delta = _lstm_backward(p, a, saved, delta, s.return_sequences, k > 0)
            continue
        if s.relu:
            delta = delta * (saved > 0)
        d2, a2 = delta.reshape(-1, delta.shape[-1]), a.reshape(-1, a.shape[-1])
        grads[k] = {"W": d2.T @ a2, "b": d2.sum(axis=0)}
        if k:
            delta = delta @ p["W"]
    return grads


def loss_and_grads(params, specs, x, y, weight_decay: float = 0.0):
    """Cross-entropy of the logits plus ``weight_decay / 2`` times the squared matrices, and its
    gradient (BPTT).

    Returns
    -------
    loss : float
    grads : list of dict, like ``params``
    """
    out, cache = forward(params, specs, x)
    loss, d = softmax_cross_entropy(out.reshape(-1, out.shape[-1]), np.asarray(y).ravel())
    grads = backward(params, specs, d.reshape(out.shape), cache)
    for p, g in zip(params, grads):
        for f in _fields(p):
            if f in MATRIX_FIELDS:
                loss += 0.5 * weight_decay * float(np.sum(p[f] ** 2))
                g[f] = g[f] + weight_decay * p[f]
    return loss, grads


def predict(params, specs, x) -> np.ndarray:
    """Class of every sample (or frame): argmax of the logits."""
    return np.argmax(forward(params, specs, x)[0], axis=-1)


def accuracy(params, specs, x, y) -> float:
    """Fraction of samples (frames) whose predicted class equals the label."""
    return float(np.mean(predict(params, specs, x) == np.asarray(y)))


# ---- training ------------------------------------------------------------------------

def check_data(x, y, params, specs) -> tuple[np.ndarray, np.ndarray]:
    """Training data as float64 inputs and int64 labels, checked against the network."""
    x, y = np.asarray(x), np.asarray(y)
    seq = specs[0].kind == "lstm" or x.ndim == 3
    n_in = params[0]["W_x" if specs[0].kind == "lstm" else "W"].shape[1]
    if x.ndim != (3 if seq else 2) or x.shape[0] == 0 or x.shape[-1] != n_in or \
            (seq and x.shape[1] == 0):
        want = f"(n, T, {n_in})" if seq else f"(n, {n_in})"
        raise EIEError(f"training inputs have shape {x.shape}, expected non-empty {want}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise EIEError("training inputs must be finite numbers")
    for s in specs:
        seq = seq and (s.kind == "fc" or s.return_sequences)
    want = (x.shape[0], x.shape[1]) if seq else (x.shape[0],)
    if y.shape != want:
        raise EIEError(f"training labels have shape {y.shape}, expected {want}")
    last = params[-1]
    n_cls = last["W_r"].shape[1] if specs[-1].kind == "lstm" else last["W"].shape[0]
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_cls:
        raise EIEError(f"training labels must be integers in 0..{n_cls - 1}")
    return x.astype(np.float64), y.astype(np.int64)


def clip_gradients(grads: list, clip: float | None) -> list:
    """``grads`` rescaled to the global norm ``clip`` when their norm is larger."""
    if clip is None:
        return grads
    norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
    return [g * (clip / norm) for g in grads] if norm > clip else grads


def _epochs(arrays, loss_grad, n: int, opts: TrainOptions, rng, fixup, progress, what: str):
    """The mini-batch loop of :func:`fit` and of the centroid fine-tuning: ``loss_grad(arrays,
    idx)`` gives a batch's loss and flat gradient; ``fixup`` re-imposes the constraints (pruned
    weights zero, the codebook's zero) after every step."""
    opt = make_optimizer(opts, arrays)
    clip = getattr(opts, "clip", None)
    for epoch in range(opts.epochs):
        total = 0.0
        for idx in minibatches(rng, n, opts.batch):
            loss, grads = loss_grad(arrays, idx)
            total += loss * idx.size
            arrays = fixup(opt.step(arrays, clip_gradients(grads, clip)))
        if progress is not None:
            progress(f"{what}epoch {epoch + 1}/{opts.epochs}: loss {total / n:.4f}")
    return arrays


def _mask_list(params, specs, masks) -> list:
    """A flat list parallel to :func:`flatten` (``params``): the keep-mask of every matrix,
    None for vectors and unmasked matrices."""
    out = []
    for k, (p, s) in enumerate(zip(params, specs)):
        m = None if masks is None else masks[k]
        by_field = (m or {}) if s.kind == "lstm" else {"W": m}
        for f in _fields(p):
            mf = by_field.get(f)
            if mf is not None and np.shape(mf) != p[f].shape:
                raise EIEError(f"layer {s.name}: mask of {f} has shape {np.shape(mf)}, "
                               f"expected {p[f].shape}")
            out.append(None if mf is None else np.asarray(mf, bool))
    return out


def fit(params, specs, x, y, opts: TrainOptions = SeqTrainOptions(), masks=None,
        progress: Callable[[str], None] | None = None,
        rng: np.random.Generator | None = None) -> list[dict]:
    """Train (with ``masks``: retrain a pruned network); returns new params.

    Parameters
    ----------
    params : list of dict
        Not modified.
    specs : sequence of Spec
    x, y : np.ndarray
        Training inputs and integer labels (:func:`check_data`).
    opts : TrainOptions or SeqTrainOptions
        ``clip`` (SeqTrainOptions) clips every batch's gradient to that global norm.
    masks : list, optional
        Keep-masks (module docstring); pruned weights are zeroed, get no gradient and stay 0.
    progress : callable(str), optional
        One line per epoch (the loss).
    rng : np.random.Generator, optional
        Source of the mini-batch order (default: seeded by ``opts.seed``).
    """
    x, y = check_data(x, y, params, specs)
    ms = _mask_list(params, specs, masks)

    def fixup(arrays):
        return [a if m is None else np.where(m, a, 0.0) for a, m in zip(arrays, ms)]

    def loss_grad(arrays, idx):
        loss, grads = loss_and_grads(unflatten(params, arrays), specs, x[idx], y[idx],
                                     opts.weight_decay)
        return loss, fixup(flatten(grads))

    arrays = fixup([np.array(a, dtype=np.float64) for a in flatten(params)])
    rng = np.random.default_rng(opts.seed) if rng is None else rng
    return unflatten(params, _epochs(arrays, loss_grad, y.shape[0], opts, rng, fixup,
                                     progress, ""))


# ---- pruning -------------------------------------------------------------------------

def _lstm_layer(spec: Spec, p: dict) -> LSTMLayer:
    return LSTMLayer(name=spec.name, W_x=p["W_x"], W_r=p["W_r"], b=p["b"], peep=p.get("peep"),
                     W_ym=p.get("W_ym"), return_sequences=spec.return_sequences)


#: the magnitude a weight an earlier round pruned ranks with in a load-balance-aware round:
#: below every kept weight, yet not an exact zero (which pruning never keeps)
REVIVED = 1e-30


def prune(params, specs, densities, n_pes: int = 1, balance: bool = False,
          masks=None, pad_span: int | None = None) -> list:
    """Keep-masks of every layer at its density, among the weights ``masks`` keeps.

    An LSTM layer's ``W_x``, ``W_r`` and ``W_ym`` are each pruned to the layer's density by
    :func:`compiler.lower.lstm_masks` (with ``balance`` in the hardware's row order of
    ``n_pes`` PEs); an FC layer's ``W`` by magnitude (:func:`compiler.train.prune_step`) or,
    with ``balance``, :func:`compiler.prune.prune_balanced` (row ``i`` on PE ``i % n_pes``).

    A weight ``masks`` prunes is never kept again by magnitude pruning.  Load-balance-aware
    pruning gives a (PE, column) slice a quota of its own, which at a lower density can still
    exceed what the slice kept in the previous round (the one-more slices of a column move
    between PEs); such a slice takes back weights pruned earlier (ranked below every kept one,
    :data:`REVIVED`; they restart from 0), so every round keeps its exact count, balanced.

    With ``pad_span`` (``2**rel_index_bits``) every mask is then made padding-aware in the
    plain interleave (:func:`compiler.prune.pad_aware`: swaps within every PE's share of every
    column; a weight an earlier round pruned is 0 and never swapped in).
    """
    if len(densities) != len(params):
        raise EIEError(f"{len(densities)} densities for {len(params)} layers")
    out = []
    for k, (p, s, d) in enumerate(zip(params, specs, densities)):
        prev = None if masks is None else masks[k]
        gone = REVIVED if balance else 0.0  # what an earlier round's pruned weight ranks as
        if s.kind == "fc":
            keep = np.ones(p["W"].shape, bool) if prev is None else np.asarray(prev, bool)
            if balance:
                m = prune_balanced(np.where(keep, np.abs(p["W"]), gone), float(d), n_pes)
            else:
                m = prune_step(p["W"], keep, float(d))
            if pad_span:
                m = pad_aware(m, np.where(keep, p["W"], 0.0), n_pes, pad_span)
            out.append(m)
            continue
        kept = {f: p[f] if prev is None else np.where(prev[f], p[f], gone)
                for f in p if f in MATRIX_FIELDS}
        new = lstm_masks(_lstm_layer(s, {**p, **kept}), float(d), n_pes, balance, pad_span)
        out.append(new if prev is None or balance or pad_span else
                   {f: m & prev[f] for f, m in new.items()})
    return out


def apply_masks(params, specs, masks) -> list[dict]:
    """``params`` with the weights ``masks`` prunes set to 0."""
    ms = _mask_list(params, specs, masks)
    return unflatten(params, [a if m is None else np.where(m, a, 0.0)
                              for a, m in zip(flatten(params), ms)])


def iterative_prune(params, specs, x, y, densities, rounds: int = 4,
                    opts: TrainOptions = SeqTrainOptions(), balance: bool = False,
                    n_pes: int = 1, progress=None,
                    pad_span: int | None = None) -> tuple[list, list]:
    """Iterative pruning with retraining (Deep Compression §2).

    Round ``r`` prunes every layer to ``d ** ((r + 1) / rounds)`` (:func:`prune`, among the
    weights the previous round kept) and retrains for ``opts.epochs`` epochs.

    Returns
    -------
    params : list of dict
        Retrained, pruned weights (pruned entries exactly 0).
    masks : list
        The final keep-masks (module docstring).
    """
    if len(densities) != len(params):
        raise EIEError(f"{len(densities)} densities for {len(params)} layers")
    schedules = [density_schedule(float(d), rounds) for d in densities]
    check_data(x, y, params, specs)
    masks = None
    for r in range(rounds):
        masks = prune(params, specs, [sch[r] for sch in schedules], n_pes, balance, masks,
                      pad_span)
        if progress is not None:
            progress(f"prune round {r + 1}/{rounds}: densities "
                     + "/".join(f"{100 * density(m):.1f}" for m in masks)
                     + f" %, retraining {opts.epochs} epochs")
        round_opts = dataclasses.replace(opts, seed=opts.seed + 1000 * (r + 1))
        params = fit(params, specs, x, y, round_opts, masks=masks)
    return params, masks


def density(mask) -> float:
    """Fraction of weights a layer's mask keeps (over all of an LSTM layer's matrices)."""
    if isinstance(mask, dict):
        return sum(int(np.count_nonzero(m)) for m in mask.values()) / \
            sum(m.size for m in mask.values())
    return float(np.mean(mask))


# ---- trained quantization ------------------------------------------------------------

@dataclass
class Quantized:
    """The weight-shared network of :func:`trained_quantization`."""

    #: per layer: an FC layer's SharedLayer, an LSTM layer's {"gates": ..., "proj": ...}
    shared: list
    #: the network whose matrices are exactly the codebook values (biases, peepholes tuned)
    params: list

    def options_shared(self) -> list:
        """Per layer what :class:`compiler.options.Options` ``(shared=...)`` takes."""
        return [(s.index, s.centroids) if isinstance(s, SharedLayer) else
                {k: (v.index, v.centroids) for k, v in s.items()} for s in self.shared]


def share(params, specs, masks, bits: int) -> list:
    """k-means weight sharing of every sparse product (module docstring)."""
    out = []
    for k, (p, s) in enumerate(zip(params, specs)):
        ms = _mask_list([p], [s], None if masks is None else [masks[k]])
        mk = {f: np.ones(p[f].shape, bool) if m is None else m for f, m in zip(_fields(p), ms)}
        if s.kind == "fc":
            out.append(share_weights(p["W"], mk["W"], bits))
            continue
        entry = {"gates": share_weights(np.hstack([p["W_x"], p["W_r"]]),
                                        np.hstack([mk["W_x"], mk["W_r"]]), bits)}
        if "W_ym" in p:
            entry["proj"] = share_weights(p["W_ym"], mk["W_ym"], bits)
        out.append(entry)
    return out


def _expand(tunable, shared, n_in) -> list[dict]:
    """The network's params from the tunable codebooks and vectors."""
    out = []
    for t, s, ni in zip(tunable, shared, n_in):
        if isinstance(s, SharedLayer):
            out.append({"W": t["W"][s.index], "b": t["b"]})
            continue
        G = t["gates"][s["gates"].index]
        p = {"W_x": G[:, :ni], "W_r": G[:, ni:], "b": t["b"]}
        if "peep" in t:
            p["peep"] = t["peep"]
        if "proj" in s:
            p["W_ym"] = t["proj"][s["proj"].index]
        out.append(p)
    return out


def _codebook_grads(grads, shared, tunable) -> list[dict]:
    """The gradient of every tunable: a centroid's is the sum of its members' gradients."""
    out = []
    for g, s, t in zip(grads, shared, tunable):
        if isinstance(s, SharedLayer):
            out.append({"W": centroid_gradients(g["W"], s.index, t["W"].size), "b": g["b"]})
            continue
        o = {f: g[f] for f in ("b", "peep") if f in g}
        o["gates"] = centroid_gradients(np.hstack([g["W_x"], g["W_r"]]), s["gates"].index,
                                        t["gates"].size)
        if "proj" in s:
            o["proj"] = centroid_gradients(g["W_ym"], s["proj"].index, t["proj"].size)
        out.append(o)
    return out


def trained_quantization(params, specs, masks, x, y, bits: int,
                         opts: TrainOptions = SeqTrainOptions(), progress=None) -> Quantized:
    """Weight sharing followed by centroid fine-tuning (Deep Compression §3).

    Parameters
    ----------
    params : list of dict
        The pruned network; only the weights ``masks`` keeps are shared.
    specs : sequence of Spec
    masks : list or None
    x, y : training data (``x is None`` or ``opts.epochs == 0``: k-means only)
    bits : int
        Codebook bits: ``2**bits - 1`` shared weights plus the zero (entry 0).
    opts : TrainOptions or SeqTrainOptions
        Fine-tuning of the centroids, biases and peepholes.
    """
    shared = share(params, specs, masks, bits)
    n_in = [p["W_x"].shape[1] if s.kind == "lstm" else None for p, s in zip(params, specs)]
    tunable = []
    for p, sh in zip(params, shared):
        t = {f: np.array(p[f], dtype=np.float64) for f in ("b", "peep") if f in p}
        if isinstance(sh, SharedLayer):
            t["W"] = sh.centroids.copy()
        else:
            t.update({k: v.centroids.copy() for k, v in sh.items()})
        tunable.append(t)
    if x is not None and opts.epochs:
        x, y = check_data(x, y, params, specs)
        zero = [f in ("W", "gates", "proj") for t in tunable for f in _fields(t)]

        def fixup(arrays):
            for a, z in zip(arrays, zero):
                if z:
                    a[0] = 0.0  # the pruned zero is not a trainable weight
            return arrays

        def loss_grad(arrays, idx):
            tu = unflatten(tunable, arrays)
            loss, grads = loss_and_grads(_expand(tu, shared, n_in), specs, x[idx], y[idx],
                                         opts.weight_decay)
            return loss, flatten(_codebook_grads(grads, shared, tu))

        arrays = _epochs(flatten(tunable), loss_grad, y.shape[0], opts,
                         np.random.default_rng(opts.seed), fixup, progress,
                         "centroid fine-tuning ")
        tunable = unflatten(tunable, arrays)
    shared = [SharedLayer(sh.index, t["W"]) if isinstance(sh, SharedLayer) else
              {k: SharedLayer(v.index, t[k]) for k, v in sh.items()}
              for sh, t in zip(shared, tunable)]
    return Quantized(shared, _expand(tunable, shared, n_in))
