"""PyTorch models: ``torch.export`` programs (``.pt2``) and ``state_dict`` files (``.pt``/``.pth``).

Both import chains of ``nn.Linear`` layers with ReLU or nothing between them, ``nn.BatchNorm1d``
folded into a neighbouring Linear, and unidirectional ``nn.LSTM`` s (with or without
``proj_size``; PyTorch's gate order i, f, g, o is eiegen's, the two biases are added, PyTorch has
no peepholes).  Nothing is ever assumed silently: what a file does not record is either stated by
the user, or printed as one ``note:`` line on stderr, or refused.

**A ``.pt2`` program** (``torch.export.save(torch.export.export(model.eval(), (x,)), path)``)
records the graph, so its order, its activations and its BatchNorm's ``eps`` are read from it.
The archive's JSON graph and raw weights are read directly (no PyTorch needed, no pickle run;
``torch.export.load`` would unpickle the sample inputs).  Accepted nodes, ATen as
``torch.export`` writes it before or after ``run_decompositions``: ``linear``, ``addmm``, ``mm``,
``matmul`` with a constant weight (``t``/``permute``/``transpose`` of a parameter); ``add``,
``sub``, ``rsub`` of a constant right after a layer (its bias); ``relu`` (and
``clamp_min(x, 0)``); the BatchNorm ops of eval mode; ``dropout`` in eval mode;
``flatten``/``view``/``reshape`` that keep the batch dimension; ``lstm`` from a zero state whose
output sequence (every frame into the next layer, or ``out[:, -1]``) or ``h_n[-1]`` feeds the next
layer.  Any other activation (tanh, sigmoid,
gelu, ...) or operator is one error naming it; a graph that branches, a program exported in
training mode (call ``model.eval()`` first) or with several inputs or outputs is refused.

**A ``state_dict``** (``torch.save(model.state_dict(), path)``, or a checkpoint dict holding it
under ``"state_dict"``/``"model_state_dict"``) is read with ``torch.load(weights_only=True)``
(PyTorch is then needed: ``pip install -e '.[torch]'``; no pickled code is run).  Its modules:
``<name>.weight`` ``(out, in)`` + optional ``<name>.bias`` (nn.Linear); ``running_mean``,
``running_var``, optional ``weight``/``bias`` ``(k,)`` and ``num_batches_tracked`` (BatchNorm1d,
folded with PyTorch's default ``eps = 1e-5``, which a state dict does not record: a note says so);
``weight_ih_l<k>``, ``weight_hh_l<k>``, ``bias_ih_l<k>``, ``bias_hh_l<k>``, ``weight_hr_l<k>``
(nn.LSTM: every layer but the last of an nn.LSTM passes every frame on; the last passes on its
last frame ``y_T``, as the usual ``self.fc(out[:, -1])``, or every frame into a following LSTM).
Complex tensors, and integer or bool tensors other than ``num_batches_tracked``, are refused.

*Order.*  The children of an ``nn.Sequential`` or ``nn.ModuleList`` (names ``0``, ``1``, ...
under one parent) run in index order; other modules are chained by their shapes when the shapes
allow exactly one chain (a ``head`` registered before ``body`` is fine), and refused when
several orders fit (square layers) or none does, since a state dict does not record the order
``forward`` runs them in.

*Activations.*  A state dict records none.  ``activations`` (an argument of :func:`load_torch`
and :func:`models.registry.load_model`, or an ``"activations"`` entry saved beside
``"state_dict"`` in the checkpoint) states them:

* ``"relu"``: ReLU between every two Linear layers, nothing after the last (nor next to an LSTM);
* ``"none"``: no activation at all;
* one entry per module (Linear, BatchNorm1d, nn.LSTM), each ``relu`` or ``none``, saying what
  follows that module: positional in the chain's order (``"relu,none,relu,none"``), or keyed,
  which also gives the order (``"body=none,bn=relu,head=none"``).

Without it ReLU is assumed as ``"relu"`` says and one note on stderr says so.  (The commands
have no flag for it: a compile is cached by the model file's content, so the statement travels
in the checkpoint.)  In a top-level
``nn.Sequential`` (names ``0``, ``1``, ...) an index gap shows where a parameterless module (an
activation, a dropout) sits, and adjacent indices that nothing runs between: the assumption
follows that, and a statement contradicting it is refused.  A BatchNorm is folded into the
Linear just before it (nothing between) or, when an activation precedes it, into the Linear
just after it (both exact); where the ReLU sits beside a BatchNorm of named modules is unknown
without a statement, so it is then refused.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError
from models.lstm import LSTMLayer
from models.network import Network, print_note
from models.npz import imported_network

SUFFIXES = (".pt", ".pth", ".pt2")
#: the activations eiegen's layers apply (what an ``activations`` entry may say)
ACTIVATIONS = ("relu", "none")
#: nn.BatchNorm1d's default eps, assumed for a state dict (which does not record it)
BN_EPS = 1e-5
#: torch.export's serialization schema (major version) this reader was written against
PT2_SCHEMA_MAJOR = 8

_LSTM_PARAM = re.compile(r"^(?:(.*)\.)?(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_BN_LEAVES = ("running_mean", "running_var", "num_batches_tracked")
_ADVICE = "export it with torch.export (.pt2) or torch.onnx, which record it"


# ---- messages ----------------------------------------------------------------------------------

def first_sentence(text: str, limit: int = 300) -> str:
    """``text`` without terminal colour codes, on one line, up to the end of its first sentence
    (at most ``limit`` characters, then cut at a word and ended with ``...``)."""
    s = " ".join(_ANSI.sub("", str(text)).split())
    m = re.search(r"[.!?](?=\s)", s)
    if m:
        s = s[:m.start()]
    s = s.rstrip(".!?: ")
    if len(s) > limit:
        s = s[:limit].rsplit(" ", 1)[0] + " ..."
    return s


def _torch():
    try:
        import torch
    except ImportError:
        raise EIEError("reading .pt/.pth state_dict models needs PyTorch: pip install -e "
                       "'.[torch]' (CPU build); a torch.export program (.pt2) needs no PyTorch"
                       ) from None
    return torch


# ---- the activations statement -----------------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    """What the user says a model's activations are (:func:`parse_activations`).

    Attributes
    ----------
    every : str or None
        ``"relu"`` or ``"none"`` for the whole model (the one-word forms).
    acts : tuple of str
        Otherwise one entry per module, what follows it.
    names : tuple of str or None
        The modules the entries name, in the order they run (keyed form); None: positional.
    """

    every: str | None = None
    acts: tuple[str, ...] = ()
    names: tuple[str, ...] | None = None

    def __str__(self):
        if self.every:
            return self.every
        if self.names is None:
            return ",".join(self.acts)
        return ",".join(f"{n}={a}" for n, a in zip(self.names, self.acts))


def _activation(token: str) -> str:
    t = token.strip().lower()
    if t not in ACTIVATIONS:
        raise EIEError(f"activations: {token.strip()!r} is not an activation eiegen runs: its "
                       f"layers apply ReLU or nothing, so each entry is relu or none (a model "
                       f"with {token.strip()} between its layers cannot be imported)")
    return t


def parse_activations(spec) -> Statement | None:
    """Parse an ``activations`` statement (module docstring): ``"relu"``, ``"none"``, a comma
    list (or a sequence of strings) with one entry per module, positional or ``name=act``.

    Raises
    ------
    EIEError
        An entry that is not ``relu``/``none``, an empty entry, keyed and positional entries
        mixed, a module named twice.
    """
    if spec is None:
        return None
    if isinstance(spec, Statement):
        return spec
    items = spec.split(",") if isinstance(spec, str) else (
        list(spec) if isinstance(spec, (list, tuple)) else None)
    if not items or not all(isinstance(i, str) for i in items):
        raise EIEError(f"activations must be a string such as 'relu', 'none' or 'relu,none', "
                       f"got {spec!r}")
    items = [i.strip() for i in items]
    if any(not i for i in items):
        raise EIEError(f"activations {spec!r} has an empty entry")
    keyed = ["=" in i for i in items]
    if not any(keyed):
        acts = tuple(_activation(i) for i in items)
        return Statement(every=acts[0]) if len(acts) == 1 else Statement(acts=acts)
    if not all(keyed):
        raise EIEError(f"activations {spec!r} mixes name=act and positional entries: use one "
                       f"form")
    pairs = [i.split("=", 1) for i in items]
    names = tuple(n.strip() for n, _ in pairs)
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise EIEError(f"activations {spec!r} names {dup[0]!r} twice")
    return Statement(acts=tuple(_activation(a) for _, a in pairs), names=names)


# ---- the chain both formats become -------------------------------------------------------------

@dataclass
class Op:
    """One step of an imported chain: ``kind`` is ``"fc"`` (``W``, ``b``), ``"relu"``, ``"bn"``
    (``y = W * x + b`` per feature, ``W`` the scale) or ``"lstm"`` (``lstm``: one dict of
    ``W_x, W_r, b, W_ym`` per layer; ``seq``: the last layer passes every frame on)."""

    kind: str
    name: str
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    lstm: list | None = None
    seq: bool = False


def batchnorm_op(name, weight, bias, mean, var, eps) -> Op:
    """A BatchNorm in eval mode as an affine :class:`Op` (``weight``/``bias`` None: affine off)."""
    mean, var = np.asarray(mean, np.float64), np.asarray(var, np.float64)
    if np.any(var + eps <= 0):
        raise EIEError(f"BatchNorm {name!r}: running_var + eps must be positive")
    w = np.ones_like(mean) if weight is None else np.asarray(weight, np.float64)
    c = np.zeros_like(mean) if bias is None else np.asarray(bias, np.float64)
    scale = w / np.sqrt(var + eps)
    return Op("bn", name, W=scale, b=c - mean * scale)


class ChainSpecs(list):
    """:func:`chain_specs`' layers, with ``input_affine``: the ``(scale, shift)`` of a
    BatchNorm on the model's input (:attr:`models.network.Network.input_affine`), or None."""

    input_affine: tuple | None = None


def chain_specs(ops: list[Op], where: str) -> ChainSpecs:
    """The layers of a chain of :class:`Op` s as :func:`models.npz.imported_network` takes them.

    A BatchNorm folds into the Linear right before it (``W' = s W``, ``b' = s b + t``) or, when
    something else precedes it, into the Linear right after it (``W' = W diag(s)``,
    ``b' = b + W t``); both are exact.  A BatchNorm on the model's input (before the first
    Linear) is the normalization of the raw inputs: it is applied to them on the host
    (``input_affine``), not folded into the first layer, where it would spread that layer's
    weights over the features' scales, more than one shared-weight codebook holds.

    Raises
    ------
    EIEError
        A BatchNorm that neither touches a Linear (after a ReLU at the end, beside an LSTM), a
        ReLU on the input or after an LSTM, a chain without a layer.
    """
    out, pending, input_affine = [], None, None
    for op in ops:
        if op.kind == "bn":
            if pending is not None:  # two in a row: one affine map
                pending = Op("bn", pending.name, W=op.W * pending.W, b=op.W * pending.b + op.b)
            elif out and out[-1].kind == "fc":
                fc = out[-1]
                out[-1] = Op("fc", fc.name, W=op.W[:, None] * fc.W, b=op.W * fc.b + op.b)
            else:
                pending = op
            continue
        if pending is not None:
            if op.kind != "fc":
                after = f"after {out[-1].name!r} " if out else ""
                raise EIEError(f"{where}: BatchNorm {pending.name!r} {after}is followed by "
                               f"{'a ReLU' if op.kind == 'relu' else f'LSTM {op.name!r}'}, not "
                               f"by a Linear, and does not directly follow one: eiegen folds a "
                               f"BatchNorm into a Linear beside it and cannot run it alone")
            if out:
                op = Op("fc", op.name, W=op.W * pending.W[None, :], b=op.b + op.W @ pending.b)
            else:  # on the input: x' = s x + t on the host, the first layer unchanged
                input_affine = (pending.W, pending.b)
            pending = None
        out.append(op)
    if pending is not None:
        prev = ("" if not out else " after a ReLU" if out[-1].kind == "relu"
                else " after an LSTM")
        raise EIEError(f"{where}: BatchNorm {pending.name!r} ends the model{prev}: eiegen folds "
                       f"a BatchNorm into a Linear beside it and cannot run it alone")
    specs = ChainSpecs()
    specs.input_affine = input_affine
    for op in out:
        if op.kind == "fc":
            specs.append([op.W, op.b, False])
        elif op.kind == "relu":
            if not specs:
                raise EIEError(f"{where}: a ReLU on the model's input (before any layer) is not "
                               f"supported")
            if isinstance(specs[-1], LSTMLayer):
                raise EIEError(f"{where}: a ReLU after LSTM layer {specs[-1].name!r}: eiegen "
                               f"applies no activation after an LSTM layer")
            specs[-1][2] = True
        else:
            for k, lay in enumerate(op.lstm):
                last = k == len(op.lstm) - 1
                try:
                    specs.append(LSTMLayer(name=f"{op.name}.l{k}", W_x=lay["W_x"],
                                           W_r=lay["W_r"], b=lay["b"], W_ym=lay.get("W_ym"),
                                           return_sequences=op.seq if last else True))
                except EIEError as e:
                    raise EIEError(f"{where}: {e}") from None
    if not specs:
        raise EIEError(f"{where}: no Linear or LSTM layer found")
    done = ChainSpecs(s if isinstance(s, LSTMLayer) else tuple(s) for s in specs)
    done.input_affine = specs.input_affine
    return done


# ---- state dicts ---------------------------------------------------------------------------------

@dataclass
class Module:
    """One module of a state dict: ``kind`` ``"linear"``, ``"bn"`` or ``"lstm"``; ``params`` its
    arrays by leaf name (for an LSTM one dict per layer)."""

    kind: str
    name: str
    n_in: int
    n_out: int
    params: dict


def _float_param(key: str, a, where: str) -> np.ndarray:
    a = np.asarray(a)
    if np.iscomplexobj(a):
        raise EIEError(f"{where}: {key!r} is a complex tensor: eiegen's layers are real, and "
                       f"dropping the imaginary part would change the model")
    if not np.issubdtype(a.dtype, np.floating):
        raise EIEError(f"{where}: {key!r} is a {a.dtype} tensor, not floating point: no "
                       f"nn.Linear, BatchNorm1d or LSTM parameter is")
    return a.astype(np.float64)


def _lstm_module(sd: dict, prefix: str, where: str) -> Module:
    p = f"{prefix}." if prefix else ""
    layers, k = [], 0
    while f"{p}weight_ih_l{k}" in sd or f"{p}weight_hh_l{k}" in sd:
        def get(name, k=k):
            key = f"{p}{name}_l{k}"
            return _float_param(key, sd[key], where) if key in sd else None

        W_x, W_r = get("weight_ih"), get("weight_hh")
        if W_x is None or W_r is None:
            raise EIEError(f"{where}: LSTM {prefix or 'state_dict'!r} layer {k} needs "
                           f"weight_ih_l{k} and weight_hh_l{k}")
        b = np.zeros(W_x.shape[0])
        for name in ("bias_ih", "bias_hh"):
            if get(name) is not None:
                b = b + get(name)
        layers.append({"W_x": W_x, "W_r": W_r, "b": b, "W_ym": get("weight_hr")})
        k += 1
    for key in sd:  # a layer after a gap (l0, l2) or a part without its layer
        m = _LSTM_PARAM.match(key)
        if m and (m.group(1) or "") == prefix and int(m.group(4)) >= k:
            raise EIEError(f"{where}: LSTM {prefix or 'state_dict'!r}: {key!r} has no layer "
                           f"{m.group(4)} (weight_ih_l{m.group(4)} and weight_hh_l"
                           f"{m.group(4)}), or a layer before it is missing")
    if not layers:
        raise EIEError(f"{where}: LSTM {prefix or 'state_dict'!r} layer 0 needs weight_ih_l0 "
                       f"and weight_hh_l0")
    last = layers[-1]
    n_out = last["W_ym"].shape[0] if last["W_ym"] is not None else last["W_x"].shape[0] // 4
    return Module("lstm", prefix or "lstm", int(layers[0]["W_x"].shape[1]), int(n_out),
                  {"layers": layers})


def state_dict_modules(sd: dict, where: str = "state_dict") -> list[Module]:
    """The nn.Linear, nn.BatchNorm1d and nn.LSTM modules of a state dict (name -> array), in
    registration order.

    Raises
    ------
    EIEError
        A tensor that fits none of them (the key and shape are named; a 1-D weight without
        running statistics is named as a norm eiegen cannot fold), a bidirectional LSTM, a bias
        without its weight, complex or integer parameters.
    """
    groups: dict[str, dict] = {}
    lstm_prefixes = []
    for key, a in sd.items():
        m = _LSTM_PARAM.match(key)
        if m:
            if m.group(5):
                raise EIEError(f"{where}: {key!r}: bidirectional LSTMs are not supported")
            prefix = m.group(1) or ""
            if prefix not in lstm_prefixes:
                lstm_prefixes.append(prefix)
                groups[("lstm", prefix)] = None
            continue
        prefix, _, leaf = key.rpartition(".")
        groups.setdefault(prefix, {})[leaf] = a
    mods = []
    for gkey, leaves in groups.items():
        if isinstance(gkey, tuple):
            mods.append(_lstm_module(sd, gkey[1], where))
            continue
        mods.append(_module(gkey, leaves, where))
    return mods


def _module(prefix: str, leaves: dict, where: str) -> Module:
    p = f"{prefix}." if prefix else ""
    shape = {leaf: tuple(np.shape(a)) for leaf, a in leaves.items()}
    if any(leaf in leaves for leaf in _BN_LEAVES):
        extra = [leaf for leaf in leaves if leaf not in _BN_LEAVES + ("weight", "bias")]
        if extra or "running_mean" not in leaves or "running_var" not in leaves:
            bad = extra[0] if extra else ("running_var" if "running_mean" in leaves
                                          else "running_mean")
            raise EIEError(f"{where}: BatchNorm {prefix!r}: "
                           + (f"unsupported parameter {p + bad!r}" if extra
                              else f"{p + bad!r} is missing"))
        k = shape["running_mean"]
        if len(k) != 1 or any(shape.get(leaf, k) != k for leaf in
                              ("running_var", "weight", "bias")):
            raise EIEError(f"{where}: BatchNorm {prefix!r}: running_mean, running_var, weight "
                           f"and bias must all be ({k[0] if k else 'k'},) vectors, got "
                           f"{ {leaf: s for leaf, s in shape.items()} }")
        params = {leaf: _float_param(p + leaf, leaves[leaf], where)
                  for leaf in ("weight", "bias", "running_mean", "running_var") if leaf in leaves}
        return Module("bn", prefix or "batchnorm", k[0], k[0], params)
    if "weight" not in leaves:
        leaf = next(iter(leaves))
        if leaf == "bias":
            raise EIEError(f"{where}: {p + 'bias'!r} has no weight {p + 'weight'!r}")
        raise EIEError(f"{where}: unsupported parameter {p + leaf!r} of shape {shape[leaf]}; "
                       f"only nn.Linear (2-D weight, 1-D bias), nn.BatchNorm1d and nn.LSTM can "
                       f"be imported")
    if len(shape["weight"]) == 1:
        raise EIEError(f"{where}: {p + 'weight'!r} of shape {shape['weight']} is a 1-D weight "
                       f"without running_mean/running_var: a norm eiegen cannot fold (a "
                       f"LayerNorm, or a BatchNorm with track_running_stats=False); only "
                       f"nn.Linear, nn.BatchNorm1d with running statistics and nn.LSTM can be "
                       f"imported")
    for leaf in leaves:
        if leaf not in ("weight", "bias") or len(shape[leaf]) != (2 if leaf == "weight" else 1):
            raise EIEError(f"{where}: unsupported parameter {p + leaf!r} of shape "
                           f"{shape[leaf]}; only nn.Linear (2-D weight, 1-D bias), "
                           f"nn.BatchNorm1d and nn.LSTM can be imported")
    W = _float_param(p + "weight", leaves["weight"], where)
    b = (_float_param(p + "bias", leaves["bias"], where) if "bias" in leaves
         else np.zeros(W.shape[0]))
    if b.shape != (W.shape[0],):
        raise EIEError(f"{where}: layer {prefix!r}: weight {W.shape} and bias {b.shape} are not "
                       f"an nn.Linear")
    return Module("linear", prefix or "linear", W.shape[1], W.shape[0], {"W": W, "b": b})


def _container(mods: list[Module]):
    """``(parent, indices)`` when every module is a numbered child of one ``nn.Sequential`` /
    ``nn.ModuleList`` (``0``, ``net.2``), else None."""
    parents, idx = set(), []
    for m in mods:
        parent, _, leaf = m.name.rpartition(".")
        if not leaf.isdigit():
            return None
        parents.add(parent)
        idx.append(int(leaf))
    return (parents.pop(), idx) if len(parents) == 1 else None


def _trail_possible(edges: list[Module], start: int) -> bool:
    """Whether ``edges`` (width ``n_in`` -> ``n_out``) form one chain that starts at ``start``."""
    if not edges:
        return True
    bal = Counter()
    for e in edges:
        bal[e.n_in] += 1
        bal[e.n_out] -= 1
    ends = [v for v, d in bal.items() if d]
    if ends and not (bal[start] == 1 and sorted(bal[v] for v in ends) == [-1, 1]):
        return False
    if not ends and not any(e.n_in == start for e in edges):
        return False
    seen, todo = {start}, [start]
    while todo:  # every edge reachable from the start
        v = todo.pop()
        for e in edges:
            if e.n_in == v and e.n_out not in seen:
                seen.add(e.n_out)
                todo.append(e.n_out)
    return all(e.n_in in seen for e in edges)


def shape_chain(mods: list[Module]):
    """The one order in which the modules' widths chain: ``("unique", order)``, ``("none",
    None)`` or ``("ambiguous", (prefix, a, b))`` where modules ``a`` and ``b`` could both follow
    ``prefix`` (a chain's beginning)."""
    chain, left = [], list(mods)
    while left:
        width = chain[-1].n_out if chain else None
        options = [e for e in left if (width is None or e.n_in == width)
                   and _trail_possible([x for x in left if x is not e], e.n_out)]
        if not options:
            return "none", None
        if len(options) > 1:
            return "ambiguous", (list(chain), options[0], options[1])
        chain.append(options[0])
        left.remove(options[0])
    return "unique", chain


def _mismatch(order: list[Module]) -> str | None:
    for a, b in zip(order, order[1:]):
        if b.n_in != a.n_out:
            return f"layer {b.name!r} takes {b.n_in} inputs but {a.name!r} has {a.n_out} outputs"
    return None


def chain_modules(mods: list[Module], stmt: Statement | None, where: str):
    """Order the modules (module docstring, *Order*); returns ``(order, gaps)``, where ``gaps[i]``
    is the number of parameterless modules between ``order[i]`` and ``order[i + 1]`` when the
    state dict is a top-level nn.Sequential, else None.

    Raises
    ------
    EIEError
        Layers that do not chain in any order, or in several, or not in the order the statement
        names them.
    """
    if stmt is not None and stmt.names is not None:
        by_name = {m.name: m for m in mods}
        unknown = [n for n in stmt.names if n not in by_name]
        missing = [m.name for m in mods if m.name not in stmt.names]
        if unknown or missing:
            raise EIEError(f"{where}: activations names {', '.join(map(repr, unknown))} which "
                           f"the state dict does not hold" if unknown else
                           f"{where}: activations does not name {', '.join(map(repr, missing))}: "
                           f"name every module ({', '.join(m.name for m in mods)})")
        order = [by_name[n] for n in stmt.names]
        bad = _mismatch(order)
        if bad:
            raise EIEError(f"{where}: in the order activations names them, {bad}")
        return order, None
    cont = _container(mods)
    if cont is not None:
        parent, idx = cont
        ranked = sorted(zip(idx, range(len(mods))))
        order = [mods[i] for _, i in ranked]
        bad = _mismatch(order)
        if bad:
            raise EIEError(f"{where}: the numbered modules run in index order, but {bad}")
        gaps = [b - a - 1 for (a, _), (b, _) in zip(ranked, ranked[1:])] if not parent else None
        return order, gaps
    status, found = shape_chain(mods)
    if status == "unique":
        return found, None
    names = ", ".join(m.name for m in mods)
    if status == "none":
        bad = _mismatch(mods)
        raise EIEError(f"{where}: the layers do not chain: "
                       + (f"{bad}, and no other order of them chains either" if bad else names))
    prefix, a, b = found
    where_ = f"after {prefix[-1].name!r}" if prefix else "first"
    example = ",".join(f"{m.name}=..." for m in mods)
    raise EIEError(f"{where}: the order of the layers cannot be told from their shapes "
                   f"({a.name!r} and {b.name!r} could both come {where_}), and a state dict "
                   f"does not record the order forward() runs them in: {_ADVICE}, or name every "
                   f"module in that order with activations='{example}'")


def _default_acts(order: list[Module], gaps, where: str, what: str) -> list[str]:
    """``"relu"`` as a statement of what follows each module (module docstring)."""
    acts = []
    for i, m in enumerate(order):
        if i == len(order) - 1:
            acts.append("none")
        elif gaps is not None:
            acts.append("relu" if gaps[i] and m.kind != "lstm" else "none")
        elif "lstm" in (m.kind, order[i + 1].kind):
            acts.append("none")
        elif "bn" in (m.kind, order[i + 1].kind):
            bn = m if m.kind == "bn" else order[i + 1]
            k = order.index(bn)
            example = ",".join(f"{x.name}={'relu' if j == k else 'none'}"
                               for j, x in enumerate(order))
            raise EIEError(f"{where}: BatchNorm {bn.name!r} sits between two layers, and a "
                           f"state dict does not record whether the activation runs before or "
                           f"after it, {what}: {_ADVICE}, or say where it is, e.g. "
                           f"activations='{example}' (ReLU after the BatchNorm)")
        else:
            acts.append("relu")
    return acts


def module_activations(order: list[Module], gaps, stmt: Statement | None,
                       where: str) -> list[str]:
    """What follows each module of the chain: the statement, or the ``"relu"`` assumption.

    Raises
    ------
    EIEError
        A positional list of the wrong length, a ReLU after an LSTM, a ReLU between two
        adjacent children of an nn.Sequential, a BatchNorm whose neighbour ReLU is unplaced.
    """
    if stmt is None or stmt.every == "relu":
        why = "and the one-word 'relu' does not say" if stmt else "and no activations were given"
        return _default_acts(order, gaps, where, why)
    if stmt.every == "none":
        return ["none"] * len(order)
    acts = list(stmt.acts)
    if len(acts) != len(order):
        raise EIEError(f"{where}: activations has {len(acts)} entries for {len(order)} modules "
                       f"({', '.join(m.name for m in order)}): give one per module, in that "
                       f"order, saying what follows it")
    for i, (m, a) in enumerate(zip(order, acts)):
        if a == "relu" and m.kind == "lstm":
            raise EIEError(f"{where}: activations puts a ReLU after LSTM {m.name!r}: eiegen "
                           f"applies no activation after an LSTM layer")
        if a == "relu" and gaps is not None and i < len(order) - 1 and gaps[i] == 0:
            raise EIEError(f"{where}: activations puts a ReLU after {m.name!r}, but "
                           f"{order[i + 1].name!r} is the next module of the nn.Sequential: "
                           f"nothing runs between them")
    return acts


def state_dict_specs(sd: dict, activations=None, where: str = "state_dict"):
    """A state dict (name -> array) as the layers :func:`models.npz.imported_network` takes.

    Returns
    -------
    specs : list
        ``(W, b, relu)`` per fully-connected layer, :class:`~models.lstm.LSTMLayer` s.
    summary : str
        The chain and its activations, for the network's description.
    note : str or None
        What was assumed (activations, BatchNorm eps), to be shown to the user; None when
        nothing was.

    Raises
    ------
    EIEError
        Everything :func:`state_dict_modules`, :func:`chain_modules`,
        :func:`module_activations` and :func:`chain_specs` refuse.
    """
    stmt = parse_activations(activations)
    mods = state_dict_modules(sd, where)
    if not mods:
        raise EIEError(f"{where}: no nn.Linear or nn.LSTM layer found")
    order, gaps = chain_modules(mods, stmt, where)
    acts = module_activations(order, gaps, stmt, where)
    ops = []
    for i, (m, a) in enumerate(zip(order, acts)):
        p = m.params
        if m.kind == "linear":
            ops.append(Op("fc", m.name, W=p["W"], b=p["b"]))
        elif m.kind == "bn":
            ops.append(batchnorm_op(m.name, p.get("weight"), p.get("bias"), p["running_mean"],
                                    p["running_var"], BN_EPS))
        else:  # the last layer passes every frame into a following LSTM, else its last frame
            nxt = order[i + 1] if i + 1 < len(order) else None
            ops.append(Op("lstm", m.name, lstm=p["layers"], seq=bool(nxt and nxt.kind == "lstm")))
        if a == "relu":
            ops.append(Op("relu", m.name))
    summary = " -> ".join(m.name + (" -> relu" if a == "relu" else "")
                          for m, a in zip(order, acts))
    relu = ", ".join(repr(m.name) for m, a in zip(order, acts) if a == "relu") or "no module"
    said = ",".join(acts) if len(acts) > 1 else acts[0]
    how = (f"if the model does otherwise, export it with torch.export (.pt2) or torch.onnx, or "
           f"state them with activations='{said}' (an argument of models.load_model, or an "
           f"'activations' entry saved beside 'state_dict' in the checkpoint)")
    try:
        specs = chain_specs(ops, where)
    except EIEError as e:
        if stmt is not None:
            raise
        raise EIEError(f"{e} (a state_dict records no activations, and ReLU was assumed after "
                       f"{relu}; {how})") from None
    notes = []
    if stmt is None:
        notes.append(f"a state_dict records no activations: ReLU assumed after {relu}, none "
                     f"after the last layer; {how}")
    bns = [m.name for m in order if m.kind == "bn"]
    if bns:
        notes.append(f"BatchNorm {', '.join(map(repr, bns))} folded with PyTorch's default eps "
                     f"= {BN_EPS:g} (a state_dict does not record eps; a .pt2 does)")
    return specs, summary, ("; ".join(notes) or None)


def read_state_dict(path) -> tuple[dict, object]:
    """The tensors of a state-dict file as float64 NumPy arrays in file order (an integer
    ``num_batches_tracked`` as it is), and the checkpoint's ``"activations"`` entry (or None).

    Raises
    ------
    EIEError
        A missing file (checked before PyTorch is imported), a pickled ``nn.Module`` or any file
        ``torch.load(weights_only=True)`` refuses (one sentence, no colour codes), a
        TorchScript archive, complex, quantized, meta or integer tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"model file not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise EIEError(f"{path} is a TorchScript archive (torch.jit.save), which eiegen "
                           f"does not read: save model.state_dict() with torch.save, or export "
                           f"the model with torch.export.save (.pt2)")
    torch = _torch()
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, a pickled nn.Module (weights_only)
        glob = re.search(r"GLOBAL ([\w.]+)", _ANSI.sub("", str(e)))
        if glob:
            raise EIEError(f"{path} holds a pickled {glob.group(1)} (torch.save(model) saves "
                           f"the whole module, which eiegen does not unpickle as that could run "
                           f"code): save model.state_dict() instead, or export the model with "
                           f"torch.export.save (.pt2)") from None
        why = first_sentence(e)
        if " " not in why:  # a bare KeyError('101') says little without its type
            why = f"{type(e).__name__} {why}".strip()
        raise EIEError(f"{path} is not a PyTorch state_dict file ({why}): save one with "
                       f"torch.save(model.state_dict(), path)") from None
    stated = None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                stated = obj.get("activations")
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise EIEError(f"{path}: expected a state_dict (name -> tensor), got "
                       f"{type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        k = str(k)
        if not isinstance(v, torch.Tensor):
            raise EIEError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        if v.is_quantized:
            raise EIEError(f"{path}: {k!r} is a quantized tensor ({v.dtype}): save the float "
                           f"model's state_dict")
        if v.is_complex():
            raise EIEError(f"{path}: {k!r} is a complex tensor ({v.dtype}): eiegen's layers are "
                           f"real, and dropping the imaginary part would change the model")
        if v.device.type == "meta":
            raise EIEError(f"{path}: {k!r} is a meta tensor: it holds no values")
        if v.layout != torch.strided:  # sparse storage: the same values, densified exactly
            v = v.to_dense()
        if not v.is_floating_point():
            if k.rpartition(".")[2] == "num_batches_tracked":
                out[k] = v.detach().numpy()
                continue
            raise EIEError(f"{path}: {k!r} is a {v.dtype} tensor, not floating point: no "
                           f"nn.Linear, BatchNorm1d or LSTM parameter is")
        out[k] = v.detach().to(torch.float64).numpy()
    return out, stated


# ---- torch.export programs (.pt2) ----------------------------------------------------------------

#: torch.export's ScalarType codes -> NumPy dtype (bfloat16 is widened by hand)
_PT2_DTYPES = {1: "u1", 2: "i1", 3: "i2", 4: "i4", 5: "i8", 6: "f2", 7: "f4", 8: "f8",
               12: "?", 13: "bf16", 28: "u2", 34: "u4", 35: "u8"}
_PT2_COMPLEX = {9: "complex32", 10: "complex64", 11: "complex128"}
_FLOAT_CODES = (6, 7, 8, 13)
#: element-wise activations that are not ReLU, as aten names them
_OTHER_ACTIVATIONS = {
    "tanh": "tanh", "sigmoid": "sigmoid", "gelu": "gelu", "silu": "silu (swish)", "elu": "elu",
    "selu": "selu", "celu": "celu", "leaky_relu": "leaky_relu", "hardtanh": "hardtanh",
    "relu6": "relu6", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid",
    "softplus": "softplus", "mish": "mish", "softmax": "softmax", "_softmax": "softmax",
    "log_softmax": "log_softmax", "_log_softmax": "log_softmax", "prelu": "prelu",
    "_prelu_kernel": "prelu", "rrelu": "rrelu", "rrelu_with_noise": "rrelu", "glu": "glu",
    "log_sigmoid": "logsigmoid", "log_sigmoid_forward": "logsigmoid",
    "softshrink": "softshrink", "hardshrink": "hardshrink", "threshold": "threshold",
}
_IDENTITY = {"alias", "clone", "contiguous", "detach", "lift_fresh_copy", "_to_copy", "to"}
_RESHAPE = {"view", "reshape", "_unsafe_view", "flatten", "unsqueeze", "squeeze"}
_DROPOUT = {"dropout", "native_dropout", "feature_dropout", "alpha_dropout",
            "feature_alpha_dropout"}
_BATCHNORM = {"batch_norm", "native_batch_norm", "_native_batch_norm_legit",
              "_native_batch_norm_legit_no_training", "_native_batch_norm_legit_functional",
              "cudnn_batch_norm", "_batch_norm_impl_index"}
_NO_DATA = {"sym_size", "sym_numel", "sym_stride", "sym_storage_offset", "_assert_scalar",
            "_assert_async", "sym_constrain_range", "sym_constrain_range_for_size",
            "_assert_tensor_metadata"}
_SUPPORTED = ("aten.linear, addmm, mm and matmul with a constant weight, add of a constant bias, "
              "relu, BatchNorm1d in eval mode, dropout, flatten/view/reshape and lstm")


def is_pt2(path) -> bool:
    """Whether ``path`` is a ``torch.export.save`` archive (a zip with ``archive_format`` pt2)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.rpartition("/")[2] == "archive_format" and z.read(n).strip() == b"pt2"
                   for n in z.namelist())


class Pt2Archive:
    """The exported program (JSON) and the tensors of a ``.pt2`` file, read without PyTorch.

    Raises
    ------
    EIEError
        Not a torch.export archive, no or several programs, another schema version, the legacy
        pickled-weights layout.
    """

    def __init__(self, path):
        self.path = Path(path)
        where = str(self.path)
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as e:
            raise EIEError(f"{where} is not a torch.export archive "
                           f"({first_sentence(e)})") from None
        with self.zip:
            try:
                self._read(where)
            except (KeyError, TypeError, ValueError) as e:  # JSON not as torch writes it
                raise EIEError(f"{where}: malformed torch.export archive ({type(e).__name__}: "
                               f"{first_sentence(e)})") from None

    def _read(self, where):
        names = self.zip.namelist()
        fmt = [n for n in names if n.rpartition("/")[2] == "archive_format"]
        if not fmt or self.zip.read(fmt[0]).strip() != b"pt2":
            raise EIEError(f"{where} is not a torch.export archive (no archive_format pt2): "
                           f"save one with torch.export.save(torch.export.export(model.eval(), "
                           f"(x,)), path)")
        root = fmt[0][:-len("archive_format")]
        models = [n for n in names if n.startswith(root + "models/") and n.endswith(".json")]
        if len(models) != 1:
            raise EIEError(f"{where}: the archive holds {len(models)} exported programs (an "
                           f"AOTInductor package holds none); eiegen reads one, as "
                           f"torch.export.save writes it")
        model = models[0][len(root + "models/"):-len(".json")]
        try:
            self.program = json.loads(self.zip.read(models[0]))
            ver = self.program["schema_version"]
            major = int(ver["major"])
        except (ValueError, KeyError, TypeError) as e:
            raise EIEError(f"{where}: unreadable exported program ({first_sentence(e)})") from None
        if major != PT2_SCHEMA_MAJOR:
            raise EIEError(f"{where}: exported with torch {self.program.get('torch_version')}, "
                           f"schema {major}.{ver.get('minor')}; eiegen reads schema "
                           f"{PT2_SCHEMA_MAJOR}.x (torch 2.13): export with that torch")
        self.order = "<"
        if root + "byteorder" in names and self.zip.read(root + "byteorder").strip() == b"big":
            self.order = ">"
        self.payloads = {}
        for part in ("weights", "constants"):
            cfg = f"{root}data/{part}/{model}_{part}_config.json"
            if cfg not in names:
                if part == "weights":
                    raise EIEError(f"{where}: the archive has no {cfg} (an old torch.export "
                                   f"layout with pickled weights): re-export with torch 2.13")
                continue
            for fqn, meta in json.loads(self.zip.read(cfg)).get("config", {}).items():
                self.payloads.setdefault(fqn, (f"{root}data/{part}/{meta['path_name']}", meta))
        self.blobs = {path: self.zip.read(path) for path, _ in self.payloads.values()
                      if path in names}

    def tensor(self, fqn: str) -> np.ndarray:
        """The parameter, buffer or constant ``fqn`` as it is stored (float64 for floats)."""
        where = str(self.path)
        if fqn not in self.payloads:
            raise EIEError(f"{where}: the archive holds no tensor {fqn!r}")
        path, meta = self.payloads[fqn]
        if meta.get("use_pickle") or not path.rpartition("/")[2].startswith(("weight_",
                                                                             "tensor_")):
            raise EIEError(f"{where}: {fqn!r} is stored as a pickled object (a tensor subclass "
                           f"or a custom object), which eiegen does not unpickle")
        tm = meta["tensor_meta"]
        code = tm["dtype"]
        if code in _PT2_COMPLEX:
            raise EIEError(f"{where}: {fqn!r} is a complex tensor ({_PT2_COMPLEX[code]}): "
                           f"eiegen's layers are real, and dropping the imaginary part would "
                           f"change the model")
        if code not in _PT2_DTYPES:
            raise EIEError(f"{where}: {fqn!r} has dtype code {code} (a float8 or other exotic "
                           f"type), which eiegen does not read")
        if tm.get("layout", 7) != 7:
            raise EIEError(f"{where}: {fqn!r} is not a dense (strided) tensor")
        sizes = [_int(s, where) for s in tm["sizes"]]
        strides = [_int(s, where) for s in tm["strides"]]
        offset = _int(tm["storage_offset"], where)
        dt = "u2" if _PT2_DTYPES[code] == "bf16" else _PT2_DTYPES[code]
        flat = np.frombuffer(self.blobs.get(path, b""), dtype=np.dtype(dt).newbyteorder(
            self.order) if dt not in ("u1", "i1", "?") else dt)
        if any(s == 0 for s in sizes):
            a = np.zeros(sizes, dtype=flat.dtype)
        else:
            last = offset + sum((n - 1) * st for n, st in zip(sizes, strides))
            if offset < 0 or min(strides, default=0) < 0 or last >= flat.size:
                raise EIEError(f"{where}: {fqn!r}: sizes {sizes}, strides {strides} and offset "
                               f"{offset} do not fit its {flat.size} stored elements")
            a = np.lib.stride_tricks.as_strided(
                flat[offset:], shape=sizes, strides=[st * flat.itemsize for st in strides],
                writeable=False).copy()
        if _PT2_DTYPES[code] == "bf16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a.astype(np.float64) if code in _FLOAT_CODES else a


def _int(sym, where) -> int:
    if "as_int" not in sym:
        raise EIEError(f"{where}: a stored tensor has a symbolic size {sym}")
    return int(sym["as_int"])


@dataclass
class _Const:
    """A tensor computed from parameters only (``fqn`` names its source)."""

    fqn: str
    array: np.ndarray


@dataclass
class _Act:
    """A value on the chain from the model input: ``token`` identifies the chain position (one
    consumer each), ``src`` the op that made it (through identity and reshape nodes), ``time``
    the time axis of a sequence (None: one vector per sample)."""

    token: int
    shape: tuple
    src: Op | None = None
    time: int | None = None
    lstm: Op | None = None  # the LSTM whose output sequence this is, directly
    lstm_state: str | None = None  # "h" / "c": the LSTM's final state (shares the token)


class _Zeros:
    """An all-zero tensor the graph builds (an LSTM's initial state)."""


def _sizes(meta) -> tuple:
    out = []
    for s in meta.get("sizes", []):
        out.append(int(s["as_int"]) if "as_int" in s else str(s.get("as_expr", s)))
    return tuple(out)


class _Interpreter:
    """Walk a ``.pt2`` graph and build the chain of :class:`Op` s (module docstring)."""

    def __init__(self, archive: Pt2Archive):
        self.ar = archive
        self.where = str(archive.path)
        gm = archive.program["graph_module"]
        self.graph, self.sig = gm["graph"], gm["signature"]
        self.shapes = {n: _sizes(m) for n, m in self.graph.get("tensor_values", {}).items()}
        self.values, self.ops, self.used, self.tokens = {}, [], set(), 0

    def fail(self, node, msg):
        raise EIEError(f"{self.where}: node {node['name']!r} ({self.short(node)}): {msg}")

    @staticmethod
    def short(node) -> str:
        t = str(node["target"])
        return t[len("torch.ops."):] if t.startswith("torch.ops.") else t

    # -- arguments
    def value(self, arg):
        if "as_tensor" in arg:
            name = arg["as_tensor"]["name"]
            if name not in self.values:
                raise EIEError(f"{self.where}: the graph uses {name!r} before defining it")
            v = self.values[name]
            if isinstance(v, str):  # a parameter, decoded when used
                v = self.values[name] = _Const(v, self.ar.tensor(v))
            return v
        if "as_tensors" in arg:
            return [self.value({"as_tensor": t}) for t in arg["as_tensors"]]
        if "as_optional_tensors" in arg:
            return [self.value(t) for t in arg["as_optional_tensors"]]
        if "as_optional_tensor" in arg:
            return self.value(arg["as_optional_tensor"])
        if "as_none" in arg:
            return None
        if "as_sym_int" in arg:
            s = arg["as_sym_int"]
            return int(s["as_int"]) if "as_int" in s else "sym"
        if "as_sym_ints" in arg:
            return [int(s["as_int"]) if "as_int" in s else "sym" for s in arg["as_sym_ints"]]
        (kind, v), = arg.items()
        return v

    def act(self, shape, **kw) -> _Act:
        self.tokens += 1
        return _Act(self.tokens, shape, **kw)

    def consume(self, node, a: _Act):
        if a.token in self.used:
            self.fail(node, "uses a value another node already used: the graph branches (a "
                            "skip connection?), and eiegen imports chains only")
        self.used.add(a.token)

    # -- the walk
    def run(self) -> list[Op]:
        user = []
        for spec in self.sig["input_specs"]:
            (kind, body), = spec.items()
            if kind == "user_input":
                if "as_tensor" not in body["arg"]:
                    raise EIEError(f"{self.where}: the program takes a non-tensor input "
                                   f"{body['arg']}: eiegen imports a chain from one tensor")
                user.append(body["arg"]["as_tensor"]["name"])
            elif kind in ("parameter", "buffer", "tensor_constant"):
                self.values[body["arg"]["name"]] = body[f"{kind}_name"]
            elif kind == "constant_input":
                self.values[body["name"]] = body.get("value")
            else:
                raise EIEError(f"{self.where}: the program takes a {kind} input, which eiegen "
                               f"cannot import")
        if len(user) != 1:
            raise EIEError(f"{self.where}: the program takes {len(user)} tensor inputs; eiegen "
                           f"imports a chain from one input")
        outs = []
        for spec in self.sig["output_specs"]:
            (kind, body), = spec.items()
            if kind == "buffer_mutation":
                raise EIEError(f"{self.where}: the program updates buffer "
                               f"{body.get('buffer_name')!r}: it was exported in training mode; "
                               f"call model.eval() before torch.export.export")
            if kind != "user_output" or "as_tensor" not in body["arg"]:
                raise EIEError(f"{self.where}: the program has a {kind} output "
                               f"{body.get('arg')}; eiegen imports one tensor output")
            outs.append(body["arg"]["as_tensor"]["name"])
        if len(outs) != 1:
            raise EIEError(f"{self.where}: the program returns {len(outs)} tensors; eiegen "
                           f"imports a chain with one output")
        self.values[user[0]] = self.act(self.shapes.get(user[0], ()))
        for node in self.graph["nodes"]:
            self.node(node)
        final = self.values.get(outs[0])
        if not isinstance(final, _Act) or final.lstm_state:
            raise EIEError(f"{self.where}: the program's output {outs[0]!r} is not computed from "
                           f"its input by the chain")
        if final.token in self.used:
            raise EIEError(f"{self.where}: the program's output {outs[0]!r} is also used "
                           f"inside the graph: the graph branches")
        return self.ops

    def node(self, node):
        target = str(node["target"])
        parts = self.short(node).split(".")
        op = parts[1] if parts[0] == "aten" and len(parts) > 1 else target
        args = {i["name"]: i["arg"] for i in node["inputs"]}
        outs = [o.get("as_tensor", {}).get("name") for o in node.get("outputs", [])]
        if op in _NO_DATA:
            return
        vals = {k: self.value(a) for k, a in args.items()}
        if op in ("zeros_like", "new_zeros") or (
                op in ("full_like", "new_full") and _num(vals.get("fill_value")) == 0):
            self.values[outs[0]] = _Zeros()  # reads only the shape of its input
            return
        acts = [v for v in _flat(vals.values()) if isinstance(v, _Act)]
        if not acts:
            return self.const_node(node, op, vals, outs)
        if len(acts) > 1:
            self.fail(node, "combines two values computed from the input (a skip connection "
                            "or a gate?): eiegen imports chains only")
        a = acts[0]
        self.consume(node, a)
        if a.lstm_state and op not in ("select", "squeeze"):
            self.fail(node, "uses an LSTM's final state other than as h_n[-1]")
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            handler = next((getattr(self, f"op_{k}") for k, ops in _GROUPS.items() if op in ops),
                           None)
        if handler is None:
            base = op.rstrip("_")
            if base in _OTHER_ACTIVATIONS:
                name = _OTHER_ACTIVATIONS[base]
                if base == "hardtanh" and _num(vals.get("min_val", -1.0)) == 0:
                    name = "hardtanh (nn.ReLU6)"
                end = ("; a final softmax does not change the predicted class: export the model "
                       "without it" if "softmax" in base else "")
                self.fail(node, f"{name} is an activation eiegen does not support: its layers "
                                f"apply ReLU or nothing between them{end}")
            self.fail(node, f"an operator eiegen cannot import; it imports {_SUPPORTED}")
        result = handler(node, a, vals)
        for name, v in zip(outs, result if isinstance(result, list) else [result]):
            if name is not None and v is not None:
                self.values[name] = v

    def const_node(self, node, op, vals, outs):
        """A node on parameters only: transposes and copies of weights, zeros for a state."""
        name = outs[0] if outs else None
        if op == "zeros" or op == "full" and _num(vals.get("fill_value")) == 0:
            self.values[name] = _Zeros()
            return
        src = next((v for v in _flat(vals.values()) if isinstance(v, _Const)), None)
        if src is None:
            if name is not None:
                self.values[name] = None
            return
        x = src.array
        if op.endswith("_"):  # num_batches_tracked += 1 and the like
            self.fail(node, f"updates {src.fqn!r} in place: the model was exported in training "
                            f"mode; call model.eval() before torch.export.export")
        if op in ("t", "numpy_T") and x.ndim <= 2:
            y = x.T
        elif op == "permute":
            y = np.transpose(x, vals["dims"])
        elif op == "transpose":
            y = np.swapaxes(x, vals["dim0"], vals["dim1"])
        elif op in _IDENTITY:
            y = x
        elif op in ("view", "reshape", "_unsafe_view") and "sym" not in vals.get("size", []):
            y = x.reshape(vals.get("size", vals.get("shape")))
        elif op == "unsqueeze":
            y = np.expand_dims(x, vals["dim"])
        elif op == "squeeze":
            y = np.squeeze(x, vals["dim"]) if "dim" in vals else np.squeeze(x)
        else:
            self.fail(node, f"an operator on parameters only that eiegen cannot import; it "
                            f"imports {_SUPPORTED}")
        self.values[name] = _Const(src.fqn, np.asarray(y))

    # -- layers
    def weight(self, node, v, what) -> np.ndarray:
        if not isinstance(v, _Const):
            self.fail(node, f"the {what} must be a parameter (a constant), got {v!r}")
        if not np.issubdtype(v.array.dtype, np.floating):
            self.fail(node, f"{v.fqn!r} is a {v.array.dtype} tensor, not floating point")
        return v.array

    def fc(self, node, a: _Act, W, b, fqn) -> _Act:
        if W.ndim != 2:
            self.fail(node, f"the weight {fqn!r} has shape {W.shape}, not (out, in)")
        if a.time is None and len(a.shape) > 2:
            self.fail(node, f"a Linear layer on a {len(a.shape)}-D tensor {a.shape}: eiegen's "
                            f"layers take one feature vector per sample (flatten it first)")
        if a.shape and isinstance(a.shape[-1], int) and a.shape[-1] != W.shape[1]:
            self.fail(node, f"takes {a.shape[-1]} features into a weight {W.shape}")
        b = np.zeros(W.shape[0]) if b is None else np.broadcast_to(
            self.bias(node, b, W.shape[0]), (W.shape[0],)).astype(np.float64)
        op = Op("fc", fqn.rpartition(".")[0] or fqn, W=np.asarray(W, np.float64), b=b)
        self.ops.append(op)
        return self.act(self.shapes.get(_out(node), ()), src=op, time=a.time)

    def bias(self, node, c, n) -> np.ndarray:
        c = np.asarray(c, np.float64)
        if c.size == 1:
            return np.full(n, float(c.reshape(-1)[0]))
        if c.reshape(-1).shape != (n,) or c.ndim > 2 or c.ndim == 2 and c.shape[0] != 1:
            self.fail(node, f"a bias of shape {c.shape} for {n} outputs")
        return c.reshape(-1)

    def op_linear(self, node, a, v):
        if v.get("input") is not a:
            self.fail(node, "the activations must be its input")
        W = self.weight(node, v["weight"], "weight")
        b = v.get("bias")
        return self.fc(node, a, W, None if b is None else self.weight(node, b, "bias"),
                       v["weight"].fqn)

    def op_addmm(self, node, a, v):
        if v.get("mat1") is not a:
            self.fail(node, "the activations must be mat1 (x @ W.T + b)")
        W = self.weight(node, v["mat2"], "weight").T * _num(v.get("alpha", 1))
        b = self.weight(node, v["self"], "bias") * _num(v.get("beta", 1))
        return self.fc(node, a, W, b, v["mat2"].fqn)

    def op_mm(self, node, a, v):
        other = v.get("mat2", v.get("other"))
        if v.get("self") is not a or not isinstance(other, _Const) or other.array.ndim != 2:
            self.fail(node, "only activations @ a constant 2-D weight is a layer")
        return self.fc(node, a, self.weight(node, other, "weight").T, None, other.fqn)

    op_matmul = op_mm

    def op_add(self, node, a, v, sign=1.0):
        alpha = _num(v.get("alpha", 1))
        other_key = "other" if v.get("self") is a else "self"
        c = v.get(other_key)
        c = self.weight(node, c, "bias") if isinstance(c, _Const) else np.asarray(_num(c))
        src = a.src
        if src is None or src.kind != "fc" or not self.ops or self.ops[-1] is not src:
            self.fail(node, "adds a constant that does not directly follow a Linear layer, "
                            "where it would be its bias")
        n = src.W.shape[0]
        if other_key == "other":  # x + alpha * c
            src.b = src.b + sign * alpha * self.bias(node, c, n)
        else:  # c + alpha * x  (sub: c - alpha * x)
            src.W, src.b = sign * alpha * src.W, sign * alpha * src.b + self.bias(node, c, n)
        return self.act(self.shapes.get(_out(node), a.shape), src=src, time=a.time)

    def op_sub(self, node, a, v):
        return self.op_add(node, a, v, sign=-1.0)

    def op_rsub(self, node, a, v):  # other - alpha * self
        return self.op_add(node, a, {"other": a, "self": v.get("other"),
                                     "alpha": v.get("alpha", 1)}, sign=-1.0)

    def op_relu(self, node, a, v):
        op = Op("relu", node["name"])
        self.ops.append(op)
        return self.act(self.shapes.get(_out(node), a.shape), src=op, time=a.time)

    op_relu_ = op_relu

    def op_clamp_min(self, node, a, v):
        if _num(v.get("min")) != 0:
            self.fail(node, "a clamp other than at 0 (which is ReLU)")
        return self.op_relu(node, a, v)

    def op_clamp(self, node, a, v):
        if _num(v.get("min")) != 0 or v.get("max") is not None:
            self.fail(node, "a clamp other than min=0 (which is ReLU)")
        return self.op_relu(node, a, v)

    def op_identity(self, node, a, v):
        op = self.short(node).split(".")[1]
        if op in ("_to_copy", "to") and v.get("dtype") not in (None, *_FLOAT_CODES):
            self.fail(node, "casts the activations to a non-float type")
        if op in _DROPOUT and v.get("train") and _num(v.get("p", 0)) > 0:
            self.fail(node, "an active dropout: the model was exported in training mode; call "
                            "model.eval() before torch.export.export")
        shape = self.shapes.get(_out(node), a.shape)
        b = _Act(a.token, shape, src=a.src, time=a.time, lstm=a.lstm, lstm_state=a.lstm_state)
        self.used.discard(a.token)  # the same chain position, passed on
        return [b, None] if op == "native_dropout" else b

    def op_slice(self, node, a, v):  # x[:, -1] of a dynamic batch slices the batch whole
        dim, start, end = v.get("dim", 0), v.get("start"), v.get("end")
        size = a.shape[dim] if -len(a.shape) <= dim < len(a.shape) else None
        whole = (start in (None, 0) and v.get("step", 1) == 1
                 and (end is None or isinstance(end, int) and (end >= 2 ** 62 or end == size)))
        if not whole:
            self.fail(node, "a slice of the activations (only a whole dimension, x[:], is "
                            "supported)")
        return self.op_identity(node, a, v)

    def op_reshape(self, node, a, v):
        shape = self.shapes.get(_out(node))
        if a.time is not None or not shape or not a.shape or shape[0] != a.shape[0]:
            self.fail(node, f"reshapes {a.shape} to {shape}: only reshapes that keep the batch "
                            f"dimension first and flatten the rest are supported")
        return self.act(shape, src=a.src)

    def op_squeeze(self, node, a, v):
        if not a.lstm_state:
            return self.op_reshape(node, a, v)
        if a.lstm_state != "h" or v.get("dim", 0) not in (0, [0]):
            self.fail(node, "uses an LSTM's final state other than as h_n[-1]")
        return self.op_select(node, a, {**v, "dim": 0, "index": 0})  # h_n of one layer

    def op_batch_norm(self, node, a, v):
        if v.get("training", False):
            self.fail(node, "a BatchNorm in training mode (batch statistics): call model.eval() "
                            "before torch.export.export")
        if len(a.shape) != 2 or a.time is not None:
            self.fail(node, f"a BatchNorm on a tensor of shape {a.shape}: eiegen folds a "
                            f"BatchNorm1d on (batch, features) only")
        if v.get("running_mean") is None:
            self.fail(node, "a BatchNorm without running statistics")
        w, b = v.get("weight"), v.get("bias")
        mean = self.weight(node, v["running_mean"], "running_mean")
        var = self.weight(node, v["running_var"], "running_var")
        name = v["running_mean"].fqn.rpartition(".")[0]
        try:
            op = batchnorm_op(name, None if w is None else self.weight(node, w, "weight"),
                              None if b is None else self.weight(node, b, "bias"), mean, var,
                              float(_num(v.get("eps", BN_EPS))))
        except EIEError as e:
            self.fail(node, str(e))
        self.ops.append(op)
        out = self.act(self.shapes.get(_out(node), a.shape), src=op)
        return [out, None, None, None, None][:max(1, len(node.get("outputs", [])))]

    # -- LSTMs
    def op_lstm(self, node, a, v):
        if self.short(node) != "aten.lstm.input":
            self.fail(node, "an LSTM on a packed sequence (pack_padded_sequence) is not "
                            "supported")
        if v.get("bidirectional"):
            self.fail(node, "bidirectional LSTMs are not supported")
        if v.get("train") and _num(v.get("dropout", 0)) > 0 and v.get("num_layers", 1) > 1:
            self.fail(node, "an LSTM with active dropout: call model.eval() before "
                            "torch.export.export")
        if any(not isinstance(h, (_Zeros,)) and not (isinstance(h, _Const)
                                                      and not np.any(h.array))
               for h in v.get("hx", [])):
            self.fail(node, "an LSTM started from a given state (hx): eiegen's LSTM starts "
                            "from zero")
        time = 1 if v.get("batch_first") else 0
        if len(a.shape) != 3 or (a.time is not None and a.time != time):
            self.fail(node, f"an LSTM on a tensor of shape {a.shape} "
                            f"({'batch_first' if time else 'time first'}): it needs a "
                            f"sequence laid out as the LSTM expects")
        params, L = v["params"], int(v["num_layers"])
        if any(not isinstance(p, _Const) for p in params) or len(params) % L:
            self.fail(node, "LSTM weights that are not the module's parameters")
        per, bias = len(params) // L, bool(v.get("has_biases", True))
        if per - 2 - 2 * bias not in (0, 1):
            self.fail(node, f"{len(params)} LSTM weights for {L} layers")
        layers = []
        for k in range(L):
            p = [self.weight(node, x, "LSTM weight") for x in params[k * per:(k + 1) * per]]
            W_x, W_r = p[0], p[1]
            b = (p[2] + p[3]) if bias else np.zeros(W_x.shape[0])
            layers.append({"W_x": W_x, "W_r": W_r, "b": b,
                           "W_ym": p[-1] if per - 2 - 2 * bias else None})
        name = params[0].fqn.rpartition(".")[0] or "lstm"
        op = Op("lstm", name, lstm=layers, seq=True)
        self.ops.append(op)
        out = self.act(self.shapes.get(_out(node), ()), src=op, time=time, lstm=op)
        states = [_Act(out.token, (), src=op, lstm=op, lstm_state=s) for s in ("h", "c")]
        return [out] + states

    def op_select(self, node, a, v):
        dim, index = int(v.get("dim", 0)), int(v.get("index", 0))
        lstm = a.lstm
        if a.lstm_state == "h":
            L = len(lstm.lstm)
            if dim != 0 or index not in (-1, L - 1) or self.ops[-1] is not lstm:
                self.fail(node, "uses h_n other than as h_n[-1] (the last layer's state)")
        elif a.lstm_state == "c":
            self.fail(node, "uses the LSTM's cell state c_n, which eiegen's LSTM does not "
                            "output")
        elif lstm is None or self.ops[-1] is not lstm or dim != a.time or index != -1 and (
                not isinstance(a.shape[dim], int) or index != a.shape[dim] - 1):
            self.fail(node, "a select other than of an LSTM's last frame (out[:, -1])")
        lstm.seq = False
        return self.act(self.shapes.get(_out(node), ()), src=lstm)


_GROUPS = {"identity": _IDENTITY | _DROPOUT, "reshape": _RESHAPE - {"squeeze"},
           "batch_norm": _BATCHNORM}


def _flat(values):
    for v in values:
        if isinstance(v, list):
            yield from v
        else:
            yield v


def _num(v):
    if isinstance(v, _Const):
        return float(v.array.reshape(-1)[0]) if v.array.size == 1 else v
    if isinstance(v, dict):  # an unparsed scalar argument
        return next(iter(v.values()))
    return v


def _out(node):
    outs = node.get("outputs", [])
    return outs[0].get("as_tensor", {}).get("name") if outs else None


def pt2_ops(path) -> list[Op]:
    """The chain of a ``torch.export`` archive as :class:`Op` s (module docstring).

    Raises
    ------
    EIEError
        Anything outside the supported chains, named by node and operator; a malformed archive.
    """
    archive = Pt2Archive(path)
    try:
        return _Interpreter(archive).run()
    except (KeyError, TypeError, ValueError, IndexError) as e:  # JSON not as torch writes it
        raise EIEError(f"{path}: malformed exported program ({type(e).__name__}: "
                       f"{first_sentence(e)})") from None


# ---- the entry point ---------------------------------------------------------------------------

def load_torch(path, seed: int = 0, name: str | None = None, activations=None) -> Network:
    """Import a PyTorch model as a float :class:`Network`.

    Parameters
    ----------
    path : str or Path
        A ``torch.export.save`` program (recognised by its content, usually ``.pt2``), or a
        ``torch.save`` state dict / checkpoint (``.pt``, ``.pth``).
    seed : int
        Seeds the generated input (the file carries no data).
    name : str, optional
        The network's name; default the file stem.
    activations : str or sequence of str, optional
        For a state dict, what follows each module (module docstring); without it (and without
        an ``"activations"`` entry in the checkpoint) ReLU is assumed and a note on stderr says
        so.  A ``.pt2`` records its activations and takes none.

    Raises
    ------
    EIEError
        A missing or unreadable file, anything outside the supported chains (module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"model file not found: {path}")
    where = str(path)
    if is_pt2(path) or path.suffix == ".pt2" and not zipfile.is_zipfile(path):
        if activations is not None:
            raise EIEError(f"{where}: a torch.export program records its activations: drop "
                           f"activations={activations!r}")
        ops = pt2_ops(path)
        summary = " -> ".join(op.name if op.kind != "relu" else "relu" for op in ops)
        specs = chain_specs(ops, where)
        _note_input_affine(where, specs)
        return imported_network(path, specs, name=name, seed=seed,
                                description=f"PyTorch torch.export program {path.name} "
                                            f"({summary})", input_affine=specs.input_affine)
    sd, stated = read_state_dict(path)
    if stated is not None and activations is not None and (
            str(parse_activations(stated)) != str(parse_activations(activations))):
        raise EIEError(f"{where}: the checkpoint's 'activations' entry says {stated!r}, the "
                       f"argument {activations!r}: give one")
    said = stated if activations is None else activations
    specs, summary, note = state_dict_specs(sd, said, where)
    how = "activations stated" if said is not None else "ReLU assumed"
    net = imported_network(path, specs, name=name, seed=seed,
                           description=f"PyTorch state_dict {path.name} ({summary}; {how})",
                           input_affine=getattr(specs, "input_affine", None))
    if note:
        print_note(f"{where}: {note}")
    _note_input_affine(where, specs)
    return net


def _note_input_affine(where: str, specs) -> None:
    affine = getattr(specs, "input_affine", None)
    if affine is not None:
        s = np.abs(np.asarray(affine[0], np.float64))
        print_note(f"{where}: the BatchNorm on the model's input is applied to the inputs on "
                   f"the host (x' = s x + t) before the first layer, not folded into its "
                   f"weights (where it would multiply input j's weights by s_j, s from "
                   f"{s.min():.3g} to {s.max():.3g})")
