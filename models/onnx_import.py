"""ONNX models whose graph is a chain of fully-connected layers.

Accepted graph: one input tensor of shape ``(n, in)`` (batch first) and a chain of

* ``Gemm`` — ``Y = alpha * A' B' + beta * C`` with ``A`` the running activations and ``B``,
  ``C`` constants; ``transB`` gives the weight's orientation, ``alpha`` scales the weight and
  ``beta`` the bias; ``transA = 1`` is accepted only on the graph input (the model then takes its
  input feature-major, ``(in, n)``; eiegen's vectors are the same either way);
* ``MatMul`` with a constant right operand ``(in, out)`` (``Y = A B``), optionally followed by
  ``Add`` of a constant bias ``(out,)`` or ``(1, out)``;
* ``Relu`` after a layer;
* ``LSTM`` (forward direction, default activations Sigmoid / Tanh / Tanh, no ``clip``, no
  ``input_forget``; weights ``W``, ``R``, optional ``B`` and peepholes ``P`` constant) as an
  :class:`~models.lstm.LSTMLayer`: the gate blocks of ONNX's order i, o, f, c are reordered to
  i, f, g, o, the peepholes from i, o, f to ``w_ic, w_fc, w_oc``, and the two bias halves
  ``Wb + Rb`` added.  Its output ``Y`` (every frame) or ``Y_h`` (the last frame) feeds the next
  node, optionally through a ``Squeeze`` of the direction axis; which one sets the layer's
  ``return_sequences``.  ONNX's LSTM has no projection.  The graph input of a model with an
  LSTM is a sequence ``(T, n, in)`` (``layout = 0``) or ``(n, T, in)`` (``layout = 1``).

Weights come from the graph's initializers or ``Constant`` nodes.  Any other operator, a graph
that branches, or a constant of the wrong shape is one :class:`EIEError` naming the node and the
operator.  The model file carries no data: inputs are generated (:func:`models.npz.default_input`)
and there are no labels; every layer's target density is 1.0 (the compiler's ``--density`` or
``python -m sim.studies.compress`` prunes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError
from models.lstm import LSTMLayer
from models.network import Network
from models.npz import check_finite, imported_network

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Relu", "LSTM", "Squeeze")
#: ONNX's gate blocks are i, o, f, c; ours i, f, g (= c), o
ONNX_GATE_ORDER = (0, 2, 3, 1)


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # a dependency of eiegen, so only a broken install lands here
        raise EIEError("reading .onnx models needs the onnx package (pip install onnx)") from None
    return onnx, numpy_helper


def read_model(path):
    """``onnx.ModelProto`` of ``path``; a missing or unreadable file is an EIEError."""
    onnx, _ = _onnx()
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"model file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError, onnx's external-data errors, OSError
        why = " ".join(str(e).split()) or type(e).__name__
        raise EIEError(f"{path} is not a valid ONNX model: {why}") from None


def _attrs(node) -> dict:
    onnx, _ = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def chain_layers(model, where: str = "model") -> list[dict]:
    """The layers of an ONNX graph, in order.

    Returns
    -------
    list of dict
        A fully-connected layer: ``W`` float64 ``(out, in)``, ``b`` float64 ``(out,)``,
        ``relu`` bool.  An LSTM: ``lstm`` (the keyword arguments of
        :class:`~models.lstm.LSTMLayer` but ``name``).

    Raises
    ------
    EIEError
        An operator other than :data:`SUPPORTED_OPS`, a graph that is not a single chain, or a
        constant whose shape does not fit.
    """
    g = model.graph
    consts, nodes = _constants_and_nodes(g, where)
    inputs = [i.name for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise EIEError(f"{where}: the graph must have exactly one input, got {len(inputs)} "
                       f"({', '.join(inputs) or 'none'})")
    if len(g.output) != 1:
        raise EIEError(f"{where}: the graph must have exactly one output, got {len(g.output)}")
    running = {inputs[0]: None}  # names the next node may consume (an LSTM's: Y or Y_h)
    layers: list[dict] = []
    state = "start"  # start | layer (after Gemm/MatMul) | bias (after Add) | relu | lstm

    def const_of(node, name: str) -> np.ndarray:
        if name not in consts:
            raise EIEError(f"{where}: {node.op_type} node {node.name!r}: operand {name!r} must "
                           "be a constant (initializer); the graph is not a chain of layers")
        a = np.asarray(consts[name], dtype=np.float64)
        check_finite(f"{where}: {name!r}", a)
        return a

    for node in nodes:
        op, label = node.op_type, f"{node.op_type} node {node.name!r}"
        if op not in SUPPORTED_OPS:
            raise EIEError(f"{where}: unsupported ONNX operator {op} (node {node.name!r}); "
                           f"only chains of {', '.join(SUPPORTED_OPS)} can be imported")
        ins = [i for i in node.input if i]
        used = [i for i in ins if i in running]
        if not used:
            raise EIEError(f"{where}: {label} does not consume the previous layer's output "
                           f"{next(iter(running))!r}; the graph is not a single chain")
        if running[used[0]] is not None:  # the node after an LSTM picks Y or Y_h
            layers[-1]["lstm"]["return_sequences"] = running[used[0]]
        first = used[0] == inputs[0]
        others = [i for i in ins if i != used[0]]
        if op in ("Gemm", "MatMul"):
            if ins[0] != used[0]:
                raise EIEError(f"{where}: {label}: the activations must be operand A"
                               if op == "Gemm" else
                               f"{where}: {label}: the weight must be the right operand "
                               "(Y = X W)")
            layers.append(_fc_node(node, const_of, label, first, where))
            state = "layer"
        elif op == "Add":
            if state != "layer" or len(others) != 1:
                raise EIEError(f"{where}: {label}: Add must add a constant bias right after a "
                               "Gemm or MatMul")
            lay = layers[-1]
            lay["b"] = lay["b"] + _bias(const_of(node, others[0]), lay["W"].shape[0],
                                        f"{where}: {label}")
            state = "bias"
        elif op == "Relu":
            if state not in ("layer", "bias"):
                raise EIEError(f"{where}: {label}: Relu must follow a Gemm or MatMul layer")
            layers[-1]["relu"] = True
            state = "relu"
        elif op == "Squeeze":
            if state != "lstm" or running[used[0]] is None:
                raise EIEError(f"{where}: {label}: Squeeze is accepted only on an LSTM's "
                               "output")
            state = "squeezed"
        else:  # LSTM
            if ins[0] != used[0]:
                raise EIEError(f"{where}: {label}: the activations must be input X")
            layers.append({"lstm": _lstm_node(node, const_of, label, where)})
            running = {node.output[0]: True}
            if len(node.output) > 1 and node.output[1]:
                running[node.output[1]] = False
            state = "lstm"
            continue
        running = {node.output[0]: None}
    if not layers:
        raise EIEError(f"{where}: the graph has no Gemm, MatMul or LSTM layer")
    if g.output[0].name not in running:
        raise EIEError(f"{where}: the graph output {g.output[0].name!r} is not the end of the "
                       f"chain {next(iter(running))!r}")
    if running[g.output[0].name] is not None:
        layers[-1]["lstm"]["return_sequences"] = running[g.output[0].name]
    _check_shapes_chain(layers, where)
    return layers


def _fc_node(node, const_of, label: str, first: bool, where: str) -> dict:
    """A ``Gemm`` or ``MatMul`` node as ``{"W", "b", "relu"}``."""
    ins = [i for i in node.input if i]
    B = const_of(node, ins[1])
    if B.ndim != 2:
        raise EIEError(f"{where}: {label}: weight {ins[1]!r} must be 2-D, got {B.shape}")
    if node.op_type == "MatMul":
        return {"W": B.T.copy(), "b": np.zeros(B.shape[1]), "relu": False}
    a = _attrs(node)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if a.get("transA", 0) and not first:
        raise EIEError(f"{where}: {label}: transA=1 on an inner layer would mix samples")
    W = alpha * (B if a.get("transB", 0) else B.T)
    b = np.zeros(W.shape[0])
    if len(ins) > 2:
        b = beta * _bias(const_of(node, ins[2]), W.shape[0], f"{where}: {label}")
    return {"W": W, "b": b, "relu": False}


def _lstm_node(node, const_of, label: str, where: str) -> dict:
    """An ONNX ``LSTM`` node as :class:`~models.lstm.LSTMLayer` keyword arguments."""
    def text(v):
        return v.decode() if isinstance(v, bytes) else v

    a = {k: ([text(x) for x in v] if isinstance(v, list) else text(v))
         for k, v in _attrs(node).items()}
    acts = a.get("activations", [])
    for key, ok in (("direction", a.get("direction", "forward") == "forward"),
                    ("activations", acts in ([], ["Sigmoid", "Tanh", "Tanh"])),
                    ("clip", "clip" not in a), ("input_forget", not a.get("input_forget", 0))):
        if not ok:
            raise EIEError(f"{where}: {label}: {key}={a.get(key)!r} is not supported (forward "
                           "direction, default activations, no clip, no input_forget)")
    ins = list(node.input) + [""] * 8
    for k, what in ((4, "sequence_lens"), (5, "initial_h"), (6, "initial_c")):
        if ins[k]:
            raise EIEError(f"{where}: {label}: input {what} is not supported (zero initial "
                           "state, full sequences)")
    W, R = const_of(node, ins[1]), const_of(node, ins[2])
    if W.ndim != 3 or W.shape[0] != 1 or W.shape[1] % 4 or R.shape != (1, W.shape[1],
                                                                       W.shape[1] // 4):
        raise EIEError(f"{where}: {label}: W {W.shape} and R {R.shape} are not "
                       "(1, 4 * hidden, in) and (1, 4 * hidden, hidden)")
    H = W.shape[1] // 4

    def gates(a):  # ONNX i, o, f, c blocks -> i, f, g, o
        return np.concatenate([a[j * H:(j + 1) * H] for j in ONNX_GATE_ORDER])

    b = np.zeros(4 * H)
    if ins[3]:
        B = const_of(node, ins[3])
        if B.shape != (1, 8 * H):
            raise EIEError(f"{where}: {label}: B has shape {B.shape}, expected (1, {8 * H})")
        b = gates(B[0, :4 * H] + B[0, 4 * H:])
    peep = None
    if ins[7]:
        P = const_of(node, ins[7])
        if P.shape != (1, 3 * H):
            raise EIEError(f"{where}: {label}: P has shape {P.shape}, expected (1, {3 * H})")
        peep = np.stack([P[0, :H], P[0, 2 * H:], P[0, H:2 * H]])  # i, o, f -> i, f, o
    return {"W_x": gates(W[0]), "W_r": gates(R[0]), "b": b, "peep": peep, "W_ym": None,
            "return_sequences": False}


def _constants_and_nodes(g, where: str) -> tuple[dict, list]:
    """The graph's constants (initializers and ``Constant`` nodes) and its other nodes."""
    _, numpy_helper = _onnx()
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for node in g.node:
        if node.op_type == "Constant":
            a = _attrs(node)
            if "value" not in a:
                raise EIEError(f"{where}: Constant node {node.name!r} has no tensor 'value'")
            consts[node.output[0]] = numpy_helper.to_array(a["value"])
        else:
            nodes.append(node)
    return consts, nodes


def _widths(layer: dict) -> tuple[int, int]:
    """(inputs, outputs) of a layer of :func:`chain_layers`."""
    if "lstm" in layer:
        return layer["lstm"]["W_x"].shape[1], layer["lstm"]["W_r"].shape[1]
    return layer["W"].shape[1], layer["W"].shape[0]


def _check_shapes_chain(layers: list, where: str) -> None:
    """Every layer takes as many inputs as the layer before it has outputs."""
    for k in range(1, len(layers)):
        n_in, n_prev = _widths(layers[k])[0], _widths(layers[k - 1])[1]
        if n_in != n_prev:
            raise EIEError(f"{where}: layer {k} takes {n_in} inputs but "
                           f"layer {k - 1} has {n_prev} outputs")


def _bias(c: np.ndarray, out: int, where: str) -> np.ndarray:
    """A bias constant broadcast to ``(out,)``: a scalar, ``(out,)`` or ``(1, out)``."""
    if c.size == 1:
        return np.full(out, float(c.ravel()[0]))
    if c.shape in ((out,), (1, out)):
        return c.reshape(out)
    raise EIEError(f"{where}: bias has shape {c.shape}, expected ({out},) or (1, {out})")


def load_onnx(path, seed: int = 0, name: str | None = None) -> Network:
    """Import an ONNX chain of fully-connected layers as a float :class:`Network`.

    Parameters
    ----------
    path : str or Path
    seed : int
        Seeds the generated input (the file has no data).
    name : str, optional
        Default: the file stem.

    Raises
    ------
    EIEError
        Missing or invalid file, unsupported operator, a graph that is not a chain.
    """
    path = Path(path)
    model = read_model(path)
    layers = chain_layers(model, where=str(path))
    specs = [LSTMLayer(name=f"lstm{k}", **lay["lstm"]) if "lstm" in lay
             else (lay["W"], lay["b"], lay["relu"]) for k, lay in enumerate(layers)]
    return imported_network(path, specs, name=name, seed=seed,
                            description=f"ONNX model {path.name} ({len(layers)} layers, "
                                        "chained)")
