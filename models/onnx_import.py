"""ONNX models whose graph is a chain of fully-connected layers.

Accepted graph: one input tensor of shape ``(n, in)`` (batch first) and a chain of

* ``Gemm`` — ``Y = alpha * A' B' + beta * C`` with ``A`` the running activations and ``B``,
  ``C`` constants; ``transB`` gives the weight's orientation, ``alpha`` scales the weight and
  ``beta`` the bias; ``transA = 1`` is accepted only on the graph input (the model then takes its
  input feature-major, ``(in, n)``; eiegen's vectors are the same either way);
* ``MatMul`` with a constant right operand ``(in, out)`` (``Y = A B``), optionally followed by
  ``Add`` of a constant bias ``(out,)`` or ``(1, out)``;
* ``Relu`` after a layer.

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
from models.network import Network
from models.npz import check_finite, imported_network

SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Relu")


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
    """The fully-connected layers of an ONNX graph, in order.

    Returns
    -------
    list of dict
        ``W`` float64 ``(out, in)``, ``b`` float64 ``(out,)``, ``relu`` bool per layer.

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
    running = inputs[0]
    layers: list[dict] = []
    state = "start"  # start | layer (after Gemm/MatMul) | bias (after Add) | relu

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
        if running not in ins:
            raise EIEError(f"{where}: {label} does not consume the previous layer's output "
                           f"{running!r}; the graph is not a single chain")
        others = [i for i in ins if i != running]
        if op == "Gemm":
            a = _attrs(node)
            alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
            if ins[0] != running:
                raise EIEError(f"{where}: {label}: the activations must be operand A")
            if a.get("transA", 0) and running != inputs[0]:
                raise EIEError(f"{where}: {label}: transA=1 on an inner layer would mix samples")
            B = const_of(node, ins[1])
            if B.ndim != 2:
                raise EIEError(f"{where}: {label}: weight {ins[1]!r} must be 2-D, got {B.shape}")
            W = alpha * (B if a.get("transB", 0) else B.T)
            b = np.zeros(W.shape[0])
            if len(ins) > 2:
                b = beta * _bias(const_of(node, ins[2]), W.shape[0], f"{where}: {label}")
            layers.append({"W": W, "b": b, "relu": False})
            state = "layer"
        elif op == "MatMul":
            if ins[0] != running:
                raise EIEError(f"{where}: {label}: the weight must be the right operand "
                               "(Y = X W)")
            B = const_of(node, ins[1])
            if B.ndim != 2:
                raise EIEError(f"{where}: {label}: weight {ins[1]!r} must be 2-D, got {B.shape}")
            layers.append({"W": B.T.copy(), "b": np.zeros(B.shape[1]), "relu": False})
            state = "layer"
        elif op == "Add":
            if state != "layer" or len(others) != 1:
                raise EIEError(f"{where}: {label}: Add must add a constant bias right after a "
                               "Gemm or MatMul")
            lay = layers[-1]
            lay["b"] = lay["b"] + _bias(const_of(node, others[0]), lay["W"].shape[0],
                                        f"{where}: {label}")
            state = "bias"
        else:  # Relu
            if state not in ("layer", "bias"):
                raise EIEError(f"{where}: {label}: Relu must follow a Gemm or MatMul layer")
            layers[-1]["relu"] = True
            state = "relu"
        running = node.output[0]
    if not layers:
        raise EIEError(f"{where}: the graph has no Gemm or MatMul layer")
    if running != g.output[0].name:
        raise EIEError(f"{where}: the graph output {g.output[0].name!r} is not the end of the "
                       f"chain {running!r}")
    _check_shapes_chain(layers, where)
    return layers


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


def _check_shapes_chain(layers: list, where: str) -> None:
    """Every layer takes as many inputs as the layer before it has outputs."""
    for k in range(1, len(layers)):
        if layers[k]["W"].shape[1] != layers[k - 1]["W"].shape[0]:
            raise EIEError(f"{where}: layer {k} takes {layers[k]['W'].shape[1]} inputs but "
                           f"layer {k - 1} has {layers[k - 1]['W'].shape[0]} outputs")


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
    return imported_network(path, [(lay["W"], lay["b"], lay["relu"]) for lay in layers],
                            name=name, seed=seed,
                            description=f"ONNX model {path.name} ({len(layers)} layers, "
                                        "chained)")
