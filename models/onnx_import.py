"""ONNX models whose graph is a chain of fully-connected layers, as exporters write them.

The graph has one input tensor, batch first (``(n, in)``; for a model with an LSTM a sequence,
below), and is followed from that input to its output node by node.  Every node is either
imported, skipped, folded into a layer, dropped at the end, or refused; nothing is silently
left out.  What happens is told through ``note`` (:func:`load_onnx` prints the notes on stderr
by default; :func:`chain_layers` takes any callable, or None for silence).

**Imported** as layers:

* ``Gemm`` -- ``Y = alpha * A' B' + beta * C`` with ``A`` the running activations and ``B``,
  ``C`` constants; ``transB`` gives the weight's orientation, ``alpha`` scales the weight and
  ``beta`` the bias; ``transA = 1`` is accepted only on the graph input (the model then takes its
  input feature-major, ``(in, n)``; eiegen's vectors are the same either way);
* ``MatMul`` with a constant right operand ``(in, out)`` (``Y = A B``);
* ``Relu`` after a layer;
* ``LSTM`` (forward direction, default activations Sigmoid / Tanh / Tanh, no ``clip``, no
  ``input_forget``; weights ``W``, ``R``, optional ``B`` and peepholes ``P`` constant) as an
  :class:`~models.lstm.LSTMLayer`: the gate blocks of ONNX's order i, o, f, c are reordered to
  i, f, g, o, the peepholes from i, o, f to ``w_ic, w_fc, w_oc``, and the two bias halves
  ``Wb + Rb`` added.  Its output ``Y`` (every frame) or ``Y_h`` (the last frame) feeds the next
  node, optionally through a ``Squeeze`` of the direction axis; which one sets the layer's
  ``return_sequences``.  ONNX's LSTM has no projection.  The graph input of a model with an
  LSTM is a sequence ``(T, n, in)`` (``layout = 0``) or ``(n, T, in)`` (``layout = 1``).

**Folded** exactly into a layer's ``W`` and ``b`` (float64 arithmetic): an element-wise affine
map ``y = s * x + t`` with one ``s`` and one ``t`` per feature (or one for all), which is

* ``Add`` / ``Sub`` / ``Mul`` / ``Div`` of a constant of shape ``()``, ``(k,)`` or ``(1, k)``
  (``Add`` after a layer is its bias; ``c - x`` is ``s = -1``; ``c / x`` is refused);
* ``Scaler`` (domain ai.onnx.ml, skl2onnx's StandardScaler): ``y = (x - offset) * scale``, so
  ``s = scale``, ``t = -offset * scale``;
* ``BatchNormalization`` in inference form on ``(n, k)``:
  ``y = scale * (x - mean) / sqrt(var + epsilon) + B``, so ``s = scale / sqrt(var + epsilon)``,
  ``t = B - mean * s``.

After a layer ``z = W x + b`` (before its Relu) the map becomes part of that layer:
``s * (W x + b) + t = (diag(s) W) x + (s * b + t)``.  Anywhere else (on the graph input, after a
Relu or an LSTM) it is carried to the next layer and folded into its inputs:
``W (s * x + t) + b = (W diag(s)) x + (W t + b)`` (for an LSTM the same with ``W_x`` and its
gate biases).  Folding across a Relu is never done: ``relu(h) * s + t`` is not ``relu`` of any
affine map of ``h``, so a scale/shift after a Relu with no layer after it is refused.

**Skipped** (pass-through, counted in one note): ``Identity``; ``Dropout`` (inference; a constant
true ``training_mode`` is refused); ``Cast`` / ``CastLike`` to float16, bfloat16, float or double
from any of them (Keras 3 wraps every operator in such Casts, onnxconverter-common's
``keep_io_types`` puts float16 <-> float32 Casts around the graph; eiegen computes in float and
quantizes itself, so only the rounding of a float16 graph differs); ``Flatten`` (axis 1) and
``Reshape`` (constant shape such as ``(0, -1)``, ``(-1, k)``) that keep an ``(n, k)`` tensor
``(n, k)``.

**Constants**: initializers and ``Constant`` nodes; float16, bfloat16, float and double are read
as float64.  A node whose inputs are all constants (torch's legacy exporter shares equal
initializers through ``Identity``; a weight may be cast or transposed) is evaluated with onnx's
reference evaluator.  A weight of another element type (integer, bool, string, complex: the
imaginary part is never dropped) or with NaN / Inf is refused.

**Dropped** after the last layer, with a note: a trailing ``Softmax`` / ``LogSoftmax`` (along
the features: the argmax is unchanged), ``ArgMax``, ``ZipMap`` (ai.onnx.ml) and what follows
them toward the graph outputs (``Identity``, ``Cast``, ``Reshape``, ``Flatten``, ``Slice``,
``ArrayFeatureExtractor``: skl2onnx's label branch ``ArgMax -> ArrayFeatureExtractor ->
Reshape -> Cast``, and its ``zipmap="columns"`` Slices).  The imported network outputs the
scores before them.  skl2onnx's binary classifier ends in ``p = Sigmoid(z)``,
``Concat(1 - p, p)``: as ``[1 - sigmoid(z), sigmoid(z)]`` is the Softmax of ``[-z/2, z/2]``,
the last layer's one output ``z`` becomes those two and the rest is dropped like a Softmax.  Of
several graph outputs, the one computed from those scores by the least (the scores themselves,
then probabilities, then one column, then a label) is followed, and a note says which and what
the others are.  Any other trailing operator (a lone Sigmoid too) is refused.

**Refused**, as one :class:`EIEError` naming the node, its operator and what to do: any other
operator (a Sigmoid, a convolution, a runtime's own operator ...), a node that combines two
computed tensors (a skip connection, a shape computed at run time), a tensor that feeds two
nodes of the chain, a graph with more than one non-constant input.  Nodes that no graph output
depends on are left out with a note.

The model file carries no data: inputs are generated (:func:`models.npz.default_input`) and
there are no labels; every layer's target density is 1.0 (the compiler's ``--density`` or
``python -m sim.studies.compress`` prunes).  :func:`external_data_files` lists the files an
``.onnx`` keeps its weights in (torch's dynamo exporter: ``<name>.onnx.data``), for staleness.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError
from models.lstm import LSTMLayer
from models.network import Network, print_note
from models.npz import check_finite, imported_network

LAYER_OPS = ("Gemm", "MatMul", "LSTM")
#: element-wise affine maps folded into the layer before (or after) them
AFFINE_OPS = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Scaler")
#: skipped when they keep the activations' values (and an (n, k) tensor's shape)
PASS_OPS = ("Identity", "Dropout", "Cast", "CastLike", "Flatten", "Reshape")
#: dropped after the last layer: they keep the argmax or compute from it
TAIL_OPS = ("Softmax", "LogSoftmax", "ArgMax", "ZipMap")
#: dropped too when they follow a TAIL_OPS node on the way to the outputs
TAIL_FOLLOWERS = ("Identity", "Cast", "CastLike", "Reshape", "Flatten", "Slice",
                  "ArrayFeatureExtractor")
SUPPORTED_OPS = tuple(dict.fromkeys(LAYER_OPS + ("Relu", "Squeeze") + AFFINE_OPS + PASS_OPS
                                    + TAIL_OPS + TAIL_FOLLOWERS))
ML_DOMAIN = "ai.onnx.ml"
ML_OPS = ("Scaler", "ZipMap", "ArrayFeatureExtractor")
#: TensorProto element types read as real numbers: FLOAT, FLOAT16, DOUBLE, BFLOAT16
FLOAT_TYPES = (1, 10, 11, 16)
#: ONNX's gate blocks are i, o, f, c; ours i, f, g (= c), o
ONNX_GATE_ORDER = (0, 2, 3, 1)
#: never evaluated as constants: their value is drawn at run time
_RANDOM_OPS = ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
               "Bernoulli", "Multinomial", "Dropout")

_ACTIVATIONS = {"Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "Celu", "Gelu", "HardSigmoid",
                "HardSwish", "Softplus", "Softsign", "PRelu", "Clip", "Mish", "ThresholdedRelu",
                "Swish", "Relu6", "Erf", "Exp", "Log", "Abs", "Sqrt", "Pow", "Sin", "Cos"}
_CONVOLUTIONS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool",
                 "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "MaxUnpool"}
_QUANTIZED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
              "QLinearMatMul", "MatMulNBits", "DynamicQuantizeMatMul"}


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


def external_data_files(path) -> list[Path]:
    """The files beside ``path`` that its tensors keep their data in (ONNX external data).

    Read with ``load_external_data=False`` from the ``location`` of every initializer and
    every tensor attribute (``Constant`` nodes, subgraphs).  A location outside the model's
    directory is left out (onnx refuses to load it anyway), and so is everything of a file
    onnx cannot parse (loading the model reports that).

    Returns
    -------
    list of Path
        Sorted, each once; empty for a model that keeps its weights inside.
    """
    onnx, _ = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not a model: load_onnx says so when it is loaded
        return []
    base = path.resolve().parent
    found = set()
    for t in _all_tensors(model.graph):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        for entry in t.external_data:
            if entry.key == "location":
                p = (base / entry.value).resolve()
                if p.parent == base or base in p.parents:
                    found.add(p)
    return sorted(found)


def _all_tensors(graph):
    """Every TensorProto of a graph: initializers and tensor attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _all_tensors(a.g)
            for sub in a.graphs:
                yield from _all_tensors(sub)


def _attrs(node) -> dict:
    onnx, _ = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _type_name(elem_type: int) -> str:
    onnx, _ = _onnx()
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


def _kind(node) -> str:
    """The operator as the importer knows it; an operator of another domain keeps its domain,
    so that, say, com.microsoft's Gelu is never taken for an ONNX operator."""
    if node.domain in ("", "ai.onnx"):
        return node.op_type if node.op_type not in ML_OPS else f"ai.onnx::{node.op_type}"
    if node.domain == ML_DOMAIN and node.op_type in ML_OPS:
        return node.op_type
    return f"{node.domain}::{node.op_type}"


class _Constants:
    """The graph's constants: initializers, ``Constant`` nodes, and the outputs of nodes whose
    inputs are all constants (evaluated on first use with onnx's reference evaluator)."""

    def __init__(self, model, where: str):
        _, numpy_helper = _onnx()
        self.where = where
        self.opsets = {o.domain or "": o.version for o in model.opset_import}
        self.values: dict[str, tuple[np.ndarray, int]] = {}
        for t in model.graph.initializer:
            self.values[t.name] = (self._array(t, f"initializer {t.name!r}"), t.data_type)
        self.nodes = []  # the graph's nodes but Constant
        self.producer = {}
        self.computed = set()  # names a node computes from constants alone
        for node in model.graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self._constant(node)
                continue
            self.nodes.append(node)
            ins = [i for i in node.input if i]
            # graph order is topological (the ONNX spec), so one pass sees every input first
            if (ins and _kind(node) not in _RANDOM_OPS and node.domain in ("", "ai.onnx")
                    and all(self.is_const(i) for i in ins)):
                self.computed.update(o for o in node.output if o)
            for o in node.output:
                if o:
                    self.producer[o] = node

    def _array(self, t, what: str) -> np.ndarray:
        _, numpy_helper = _onnx()
        try:
            return numpy_helper.to_array(t)
        except Exception as e:  # a truncated raw_data, an element type numpy cannot hold
            why = " ".join(str(e).split()) or type(e).__name__
            raise EIEError(f"{self.where}: {what} cannot be read: {why}") from None

    def _constant(self, node) -> None:
        a = _attrs(node)
        name = node.output[0]
        if "value" in a:
            self.values[name] = (self._array(a["value"], f"Constant node {node.name!r}"),
                                 a["value"].data_type)
        elif "value_float" in a or "value_floats" in a:
            v = a.get("value_float", a.get("value_floats"))
            self.values[name] = (np.asarray(v, np.float32), 1)
        elif "value_int" in a or "value_ints" in a:
            self.values[name] = (np.asarray(a.get("value_int", a.get("value_ints")), np.int64), 7)
        elif "value_string" in a or "value_strings" in a:
            self.values[name] = (np.asarray(a.get("value_string", a.get("value_strings")),
                                            object), 8)
        else:
            raise EIEError(f"{self.where}: Constant node {node.name!r} has no tensor 'value' "
                           f"(got {', '.join(a) or 'no attribute'}; a sparse constant is not "
                           "supported)")

    def is_const(self, name: str) -> bool:
        return name in self.values or name in self.computed

    def get(self, name: str) -> tuple[np.ndarray, int]:
        """``(array, TensorProto element type)`` of a constant."""
        if name not in self.values:
            self._evaluate(self.producer[name])
        return self.values[name]

    def _evaluate(self, node) -> None:
        onnx, _ = _onnx()
        from onnx.reference import ReferenceEvaluator

        feeds = {i: self.get(i)[0] for i in node.input if i}
        try:
            outs = ReferenceEvaluator(node, opsets=self.opsets).run(None, feeds)
        except Exception as e:
            why = " ".join(str(e).split()[:30]) or type(e).__name__
            raise EIEError(f"{self.where}: {node.op_type} node {node.name!r} computes from "
                           f"constants only, but evaluating it failed: {why}") from None
        for name, value in zip(node.output, outs):
            if name:
                value = np.asarray(value)
                typ = 8 if value.dtype == object else \
                    onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
                self.values[name] = (value, typ)


class _Chain:
    """The walk from the graph input to the chain's last layer (module docstring)."""

    def __init__(self, model, where: str):
        self.where = where
        self.consts = _Constants(model, where)
        g = model.graph
        inputs = [i for i in g.input if not self.consts.is_const(i.name)]
        if len(inputs) != 1:
            raise EIEError(f"{where}: the graph must have exactly one input, got {len(inputs)} "
                           f"({', '.join(i.name for i in inputs) or 'none'})")
        self.input = inputs[0].name
        self.outputs = [o.name for o in g.output]
        if not self.outputs:
            raise EIEError(f"{where}: the graph has no output")
        self.rank, self.width, self.batch = self._declared(inputs[0])
        self.opset = self.consts.opsets.get("", 1)
        self._live_graph()
        self.layers: list[dict] = []
        self.state = "start"  # start | layer (FC, before its Relu) | relu | lstm | squeezed
        self.pending = None  # (s, t, [labels]): a scale/shift waiting for the next layer
        self.touched = False  # a scale/shift came before the first layer
        self.folds: list[str] = []
        self.skipped: Counter = Counter()
        self.taps: list[str] = []

    def _declared(self, vi) -> tuple:
        """Rank, feature count and batch size of the graph input, where it declares them."""
        if not vi.type.HasField("tensor_type"):
            raise EIEError(f"{self.where}: the graph input {vi.name!r} is not a tensor "
                           f"({vi.type.WhichOneof('value')})")
        tt = vi.type.tensor_type
        if tt.elem_type == 8:
            raise EIEError(f"{self.where}: the graph input {vi.name!r} is a string tensor; "
                           "eiegen's inputs are numbers")
        if not tt.HasField("shape"):
            return None, None, None
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        return len(dims), (dims[-1] if dims else None), (dims[0] if dims else None)

    def _live_graph(self) -> None:
        """The nodes some graph output depends on, who consumes what, and which nodes lie in
        a tail that may be dropped (only TAIL_OPS / TAIL_FOLLOWERS up to the outputs)."""
        c = self.consts
        live, stack = set(), list(self.outputs)
        while stack:
            node = c.producer.get(stack.pop())
            if node is not None and id(node) not in live:
                live.add(id(node))
                stack.extend(i for i in node.input if i)
        self.live = [n for n in c.nodes if id(n) in live]
        self.consumers: dict[str, list] = {}
        for node in self.live:
            for i in dict.fromkeys(i for i in node.input if i and not c.is_const(i)):
                self.consumers.setdefault(i, []).append(node)
        self.binary = self._binary_heads()
        members = {id(n) for group in self.binary.values() for n in group}
        self.tailish, self.has_head = {}, {}
        for node in reversed(self.live):  # consumers first: the graph is topologically sorted
            after = [d for o in node.output if o for d in self.consumers.get(o, [])]
            self.tailish[id(node)] = ((_kind(node) in TAIL_OPS + TAIL_FOLLOWERS
                                       or id(node) in members)
                                      and all(self.tailish.get(id(d), False) for d in after))
            self.has_head[id(node)] = (_kind(node) in TAIL_OPS or id(node) in self.binary
                                       or any(self.has_head.get(id(d), False) for d in after))

    def _binary_heads(self) -> dict:
        """skl2onnx's binary classifier output: ``p = Sigmoid(z)``, ``Concat(1 - p, p)``
        (the probabilities of classes 0 and 1), by the Sigmoid's id."""
        found = {}
        for sig in self.live:
            p = sig.output[0] if _kind(sig) == "Sigmoid" else None
            after = self.consumers.get(p, []) if p else []
            subs = [n for n in after if _kind(n) == "Sub"]
            cats = [n for n in after if _kind(n) == "Concat"]
            if len(after) != 2 or len(subs) != 1 or len(cats) != 1 or p in self.outputs:
                continue
            sub, cat = subs[0], cats[0]
            one = sub.input[0]
            if (list(sub.input) != [one, p] or list(cat.input) != [sub.output[0], p]
                    or _attrs(cat).get("axis") not in (1, -1) or sub.output[0] in self.outputs
                    or [id(n) for n in self.consumers.get(sub.output[0], [])] != [id(cat)]
                    or not self.consts.is_const(one)):
                continue
            value, typ = self.consts.get(one)
            if typ in FLOAT_TYPES and value.size == 1 and float(np.ravel(value)[0]) == 1.0:
                found[id(sig)] = (sig, sub, cat)
        return found

    # ---- the walk ----

    def walk(self) -> str:
        """Follow the chain from the input; returns the tensor its last node writes."""
        cur = self.input
        first = next((n for n in self.live if _kind(n) in LAYER_OPS), None)
        if first is not None and _kind(first) == "LSTM":
            self.batch = None  # the input is a sequence: its first axis is not the batch
        if self.rank is None:  # no declared shape: the usual (n, in), or (T, n, in) for LSTMs
            self.rank = 3 if first is not None and _kind(first) == "LSTM" else 2
        while True:
            nxt = self.consumers.get(cur, [])
            if (self.layers and nxt and all(self.tailish[id(n)] for n in nxt)
                    and any(self.has_head[id(n)] for n in nxt)):
                return cur
            if not nxt:
                return cur
            if cur in self.outputs:
                self.taps.append(cur)
            if len(nxt) > 1:
                names = ", ".join(f"{n.op_type} {n.name!r}" for n in nxt)
                hint = (" (a shape computed at run time: re-export with constant shapes, e.g. "
                        "torch's x.flatten(1))" if any(n.op_type == "Shape" for n in nxt) else
                        " (a branch or a skip connection)")
                raise EIEError(f"{self.where}: tensor {cur!r} feeds {len(nxt)} nodes ({names})"
                               f"; the graph is not a single chain{hint}")
            cur = self._step(nxt[0], cur)

    def _step(self, node, cur: str) -> str:
        op, label = _kind(node), f"{node.op_type} node {node.name!r}"
        where = self.where
        for i in node.input:
            if i and i != cur and not self.consts.is_const(i):
                raise EIEError(f"{where}: {label} combines {cur!r} with the computed tensor "
                               f"{i!r}; the graph is not a single chain of layers (a skip "
                               "connection, or a weight or shape computed at run time)")
        used = [k for k, o in enumerate(node.output)
                if o and (o in self.consumers or o in self.outputs)]
        if op == "LSTM":
            return self._lstm(node, cur, label, used)
        if used != [0]:
            what = "its mask" if op == "Dropout" else f"output #{used[-1]}"
            raise EIEError(f"{where}: {label}: {what} ({node.output[used[-1]]!r}) is used; "
                           "eiegen follows only a node's first output")
        if op in ("Gemm", "MatMul"):
            self._fc(node, cur, label)
        elif op in AFFINE_OPS:
            self._affine(node, cur, label)
        elif op == "Relu":
            if self.state != "layer":
                after = {"start": "the graph input", "relu": "a Relu", "lstm": "an LSTM",
                         "squeezed": "an LSTM"}[self.state]
                if self.pending is not None:
                    after = ", ".join(self.pending[2]) + f" (a scale/shift after {after})"
                raise EIEError(f"{where}: {label}: Relu must follow a Gemm or MatMul layer "
                               f"(with its bias, BatchNormalization or Scaler); here it follows "
                               f"{after}")
            self.layers[-1]["relu"] = True
            self.state = "relu"
        elif op == "Squeeze":
            if self.state != "lstm":
                raise EIEError(f"{where}: {label}: Squeeze is accepted only on an LSTM's "
                               "output")
            self.rank -= max(1, len(self._squeeze_axes(node)))
            self.state = "squeezed"
        elif op in PASS_OPS:
            self._pass(node, op, label)
            self.skipped[op] += 1
        else:
            at_end = self.layers and all(self.tailish[id(d)] for d in
                                         self.consumers.get(node.output[0], []))
            raise EIEError(f"{where}: unsupported ONNX operator {node.op_type} (node "
                           f"{node.name!r}): {self._hint(node, op, at_end)}")
        return node.output[0]

    def _hint(self, node, op: str, at_end: bool) -> str:
        """What the user can do about an operator eiegen does not import."""
        if op == "Sigmoid" and at_end:
            return ("a trailing Sigmoid is not dropped (eiegen would output z where the model "
                    "outputs sigmoid(z)); re-export without it, keeping the logits (class 1 "
                    "where z > 0)")
        if "::" in op and node.domain not in ("", "ai.onnx", ML_DOMAIN):
            return (f"it is of domain {node.domain!r}, a runtime's own operator (e.g. written "
                    "by an onnxruntime graph optimization); export with standard ONNX "
                    "operators only")
        if node.domain == ML_DOMAIN or "::" in op:
            return ("eiegen imports neural networks: of the ai.onnx.ml operators it folds "
                    "Scaler and drops a trailing ZipMap / ArrayFeatureExtractor")
        if op in _ACTIVATIONS:
            return ("eiegen's FC layers apply ReLU or nothing; re-export without it or replace "
                    "it with Relu")
        if op in _CONVOLUTIONS:
            return "eiegen runs fully-connected layers (EIE's FC layers), no convolution or pooling"
        if op in ("GRU", "RNN"):
            return "eiegen's recurrent layer is the LSTM; re-export the model with nn.LSTM"
        if op in _QUANTIZED:
            return "eiegen quantizes float weights itself: export the float model"
        if op in TAIL_OPS + TAIL_FOLLOWERS:
            return (f"a {op} is dropped only after the last layer, on the way to the outputs; "
                    "here the chain goes on after it")
        return ("eiegen imports chains of Gemm / MatMul layers (bias Add, BatchNormalization "
                "and Scaler folded in) with Relu, and LSTMs; re-export the model without it")

    def _squeeze_axes(self, node) -> list:
        a = _attrs(node)
        if "axes" in a:
            return list(a["axes"])
        if len(node.input) > 1 and node.input[1]:
            return list(np.ravel(self.consts.get(node.input[1])[0]))
        return []

    # ---- constants ----

    def weight(self, node, name: str) -> np.ndarray:
        """A constant operand as float64; refuses anything but finite real numbers."""
        label = f"{node.op_type} node {node.name!r}"
        if not self.consts.is_const(name):
            raise EIEError(f"{self.where}: {label}: operand {name!r} must be a constant "
                           "(initializer); the graph is not a chain of layers")
        a, typ = self.consts.get(name)
        if typ not in FLOAT_TYPES:
            kind = {8: "a string tensor", 14: "complex (COMPLEX64)",
                    15: "complex (COMPLEX128)"}.get(typ, f"of type {_type_name(typ)}")
            why = ("eiegen's weights are real numbers, and the imaginary part is never dropped"
                   if typ in (14, 15) else
                   "eiegen reads float16, bfloat16, float or double weights and quantizes them "
                   "itself: export the float model")
            raise EIEError(f"{self.where}: {label}: weight {name!r} is {kind}; {why}")
        a = np.asarray(a).astype(np.float64)
        check_finite(f"{self.where}: {label}: {name!r}", a)
        return a

    def _ints(self, node, name: str) -> list[int]:
        a, typ = self.consts.get(name)
        if typ not in (6, 7):  # INT32, INT64
            raise EIEError(f"{self.where}: {node.op_type} node {node.name!r}: {name!r} must "
                           f"be an integer tensor, got {_type_name(typ)}")
        return [int(v) for v in np.ravel(a)]

    # ---- layers ----

    def _fc(self, node, cur: str, label: str) -> None:
        where = self.where
        ins = [i for i in node.input if i]
        if ins[0] != cur:
            raise EIEError(f"{where}: {label}: the activations must be operand A"
                           if node.op_type == "Gemm" else
                           f"{where}: {label}: the weight must be the right operand (Y = X W)")
        if node.op_type == "Gemm" and self.rank != 2:
            raise EIEError(f"{where}: {label}: Gemm takes (n, in) matrices, here the "
                           f"activations have rank {self.rank}")
        trans_a = node.op_type == "Gemm" and _attrs(node).get("transA", 0)
        if trans_a and not self.layers and self.touched:
            raise EIEError(f"{where}: {label}: transA=1 after {', '.join(self.pending[2])}: "
                           "on a feature-major input that scale/shift would act on the "
                           "samples, not the features")
        lay = _fc_node(node, self.weight, label, not self.layers, where)
        self._add_layer(lay, lay["W"].shape[1], label, check_width=not trans_a)
        self.state = "layer"
        self.width = lay["W"].shape[0]

    def _add_layer(self, lay: dict, n_in: int, label: str, check_width: bool = True) -> None:
        """Append a layer, folding the pending scale/shift into its inputs."""
        if not self.layers and check_width and self.width is not None and n_in != self.width:
            raise EIEError(f"{self.where}: {label} takes {n_in} inputs, but its input "
                           f"{self.input!r} has {self.width} features")
        if self.pending is not None:
            s, t, labels = self.pending
            s, t = _per_feature(s, n_in, labels, self.where), _per_feature(t, n_in, labels,
                                                                            self.where)
            if not self.layers and "lstm" not in lay:
                # on the graph input: the normalization of the raw inputs, applied to them on
                # the host (Network.input_affine), not folded into W: W diag(s) would spread
                # the weights over the features' scales (a StandardScaler's 1 / std reaches
                # 10-100 on near-constant features), which one shared-weight codebook per
                # layer cannot hold (skl2onnx's digits pipeline: 97 % -> 11 % at 4 bits)
                lay["input_affine"] = (s, t)
                self.folds.append(f"{' then '.join(labels)} on the graph input: applied to the "
                                  f"inputs on the host (x' = s x + t) before layer 0, not "
                                  f"folded into its weights (where it would multiply input "
                                  f"j's weights by s_j, s from {np.min(np.abs(s)):.3g} to "
                                  f"{np.max(np.abs(s)):.3g}, too wide a range for one "
                                  f"codebook)")
                self.pending = None
                self.layers.append(lay)
                return
            if "lstm" in lay:  # the gates see W_x x: the same algebra on W_x and b
                lay["lstm"]["b"] = lay["lstm"]["b"] + lay["lstm"]["W_x"] @ t
                lay["lstm"]["W_x"] = lay["lstm"]["W_x"] * s[None, :]
            else:
                lay["b"] = lay["b"] + lay["W"] @ t
                lay["W"] = lay["W"] * s[None, :]
            self.folds.append(f"folded {' then '.join(labels)} into the inputs of layer "
                              f"{len(self.layers)} (W' = W diag(s), b' = b + W t)")
            self.pending = None
        self.layers.append(lay)

    def _lstm(self, node, cur: str, label: str, used: list) -> str:
        where = self.where
        if node.input[0] != cur:
            raise EIEError(f"{where}: {label}: the activations must be input X")
        if self.rank != 3:
            raise EIEError(f"{where}: {label}: an LSTM takes a sequence (T, n, in), here the "
                           f"activations have rank {self.rank}")
        if len(used) != 1 or used[0] > 1:
            names = ", ".join(("Y", "Y_h", "Y_c")[k] for k in used)
            raise EIEError(f"{where}: {label}: outputs {names} are used; eiegen follows one "
                           "of Y (every frame) or Y_h (the last frame)")
        lstm = _lstm_node(node, self.weight, label, where)
        lstm["return_sequences"] = used[0] == 0
        self._add_layer({"lstm": lstm}, lstm["W_x"].shape[1], label)
        self.state, self.rank = "lstm", 4 if used[0] == 0 else 3
        self.width = lstm["W_r"].shape[1]
        return node.output[used[0]]

    # ---- folded and skipped nodes ----

    def _affine(self, node, cur: str, label: str) -> None:
        """An element-wise ``s * x + t``: into the layer before, or pending for the next."""
        s, t = self._affine_of(node, cur, label)
        op = node.op_type
        if self.state == "layer":  # z = W x + b, no Relu yet: s * z + t is a layer again
            lay = self.layers[-1]
            n = lay["W"].shape[0]
            s, t = _per_feature(s, n, [label], self.where), _per_feature(t, n, [label],
                                                                         self.where)
            lay["W"], lay["b"] = s[:, None] * lay["W"], s * lay["b"] + t
            if op != "Add":  # Add is the layer's bias: no news
                self.folds.append(f"folded {label} into layer {len(self.layers) - 1} "
                                  "(W' = diag(s) W, b' = s b + t)")
            return
        self.touched = True
        if self.pending is None:
            self.pending = (s, t, [label])
        else:  # s2 * (s1 * x + t1) + t2
            s1, t1, labels = self.pending
            self.pending = (s * s1, s * t1 + t, labels + [label])

    def _affine_of(self, node, cur: str, label: str) -> tuple[np.ndarray, np.ndarray]:
        where, op = self.where, node.op_type
        one, zero = np.ones(1), np.zeros(1)
        if op in ("Add", "Sub", "Mul", "Div"):
            ins = list(node.input)
            if len(ins) != 2:
                raise EIEError(f"{where}: {label}: expected two operands")
            k = 1 - ins.index(cur)  # the constant's position
            v = self._vector(node, ins[k], label)
            if op == "Add":
                return one, v
            if op == "Mul":
                return v, zero
            if op == "Sub":
                return (one, -v) if k == 1 else (-one, v)
            if k == 0:
                raise EIEError(f"{where}: {label} divides a constant by the activations, "
                               "which is not a scale/shift; re-export without it")
            if np.any(v == 0):
                raise EIEError(f"{where}: {label} divides by zero")
            return 1.0 / v, zero
        if self.rank != 2:
            raise EIEError(f"{where}: {label}: {op} is folded only on (n, features) "
                           f"activations, here they have rank {self.rank} (its axis 1 would "
                           "not be the features)")
        a = _attrs(node)
        if op == "Scaler":
            if "offset" not in a or "scale" not in a:
                raise EIEError(f"{where}: {label}: a Scaler needs both offset and scale")
            offset, scale = np.asarray(a["offset"], np.float64), np.asarray(a["scale"],
                                                                            np.float64)
            check_finite(f"{where}: {label}: offset and scale", np.concatenate([offset, scale]))
            return _broadcast(label, where, scale, -offset * scale)
        # BatchNormalization, inference form
        if a.get("training_mode", 0):
            raise EIEError(f"{where}: {label} is in training mode; export the model for "
                           "inference (torch: model.eval())")
        ins = list(node.input) + [""] * 5
        scale, bias, mean, var = (self._vector(node, ins[k], label) for k in range(1, 5))
        eps = float(a.get("epsilon", 1e-5))
        denom = var + eps
        if np.any(denom <= 0):
            raise EIEError(f"{where}: {label}: input_var + epsilon must be positive")
        scale, bias, mean, denom = _broadcast(label, where, scale, bias, mean, denom)
        s = scale / np.sqrt(denom)
        return s, bias - mean * s

    def _vector(self, node, name: str, label: str) -> np.ndarray:
        """A constant that is one value per feature, or one for all: ``()``, ``(k,)``,
        ``(1, k)``."""
        if not name:
            raise EIEError(f"{self.where}: {label}: an operand is missing")
        a = self.weight(node, name)
        if a.ndim > max(self.rank, 1) or any(d != 1 for d in a.shape[:-1]):
            raise EIEError(f"{self.where}: {label}: constant {name!r} has shape {a.shape}; "
                           "only one value per feature ((), (k,) or (1, k)) can be folded "
                           "into a layer")
        v = a.reshape(-1)
        if self.width is not None and v.size not in (1, self.width):
            raise EIEError(f"{self.where}: {label}: constant {name!r} has {v.size} values "
                           f"for {self.width} features")
        return v

    def _pass(self, node, op: str, label: str) -> None:
        """Check that a skipped node keeps the values (and an (n, k) tensor's shape)."""
        where, a = self.where, _attrs(node)
        if op == "Dropout":
            ins = list(node.input) + ["", ""]
            if ins[2] and bool(np.any(self.consts.get(ins[2])[0])):
                raise EIEError(f"{where}: {label} has training_mode = true; export the model "
                               "for inference (torch: model.eval())")
        elif op in ("Cast", "CastLike"):
            to = a.get("to") if op == "Cast" else self.consts.get(node.input[1])[1]
            if to not in FLOAT_TYPES:
                raise EIEError(f"{where}: {label} casts the activations to {_type_name(to)}; "
                               "eiegen's layers compute on real numbers (Casts to float16, "
                               "bfloat16, float or double are skipped): re-export without it")
        elif op == "Flatten":
            axis = a.get("axis", 1)
            if self.rank != 2 or axis not in (1, -1):
                raise EIEError(f"{where}: {label}: Flatten(axis={axis}) of rank-{self.rank} "
                               "activations does not keep eiegen's (n, features) vectors; "
                               "export the model on (n, features) input")
        elif op == "Reshape":
            shape = self._ints(node, node.input[1])
            if not self._keeps_matrix(shape, bool(a.get("allowzero", 0))):
                w = "k" if self.width is None else self.width
                raise EIEError(f"{where}: {label} reshapes the (n, {w}) activations to "
                               f"{shape}; eiegen's layers pass (n, features) vectors, so only "
                               "a Reshape that keeps them (such as (0, -1)) is skipped")

    def _keeps_matrix(self, shape: list, allowzero: bool) -> bool:
        """Reshape to ``shape`` leaves an ``(n, width)`` tensor as it is."""
        if self.rank != 2 or len(shape) != 2:
            return False
        n, k = shape
        copy = 0 if not allowzero else None  # 0 copies the input's dimension
        keeps_n = n in (copy, -1) or (self.batch is not None and n == self.batch)
        if self.width is None:  # only what keeps any width can be told to keep it
            return n != -1 and keeps_n and k in (copy, -1)
        keeps_k = k in (copy, self.width) or (k == -1 and n != -1)
        return keeps_n and keeps_k

    # ---- the end ----

    def finish(self, end: str, note) -> list[dict]:
        """Check what follows ``end`` (the tail), tell the notes, return the layers."""
        where = self.where
        if self.pending is not None:
            raise EIEError(f"{where}: {', '.join(self.pending[2])} follows "
                           f"{'a Relu' if self.state == 'relu' else 'an LSTM or the input'} "
                           "and no layer follows it: it cannot be folded (relu(h) * s + t is "
                           "not the ReLU of a layer; folding it across the Relu would change "
                           "the result); move it before the Relu or drop it")
        if not self.layers:
            raise EIEError(f"{where}: the graph has no Gemm, MatMul or LSTM layer")
        tail = self._tail(end)
        self._binary_output(end, tail)
        upstream = {o: self._upstream(o, tail) for o in self.outputs}
        order = {o: _output_rank(end, o, upstream[o], self.taps) for o in self.outputs}
        used = min(self.outputs, key=lambda o: order[o])
        if order[used] > 1:  # every output is a part or a label: none is the scores
            parts = [f"{o!r} ({_describe(end, o, upstream[o], self.taps)})"
                     for o in self.outputs]
            note(f"{where}: no graph output is the class scores; eiegen outputs the scores "
                 f"that {', '.join(parts)} {'are' if len(parts) > 1 else 'is'} computed from")
        elif len(self.outputs) > 1:
            others = [f"{o!r} ({_describe(end, o, upstream[o], self.taps)})"
                      for o in self.outputs if o != used]
            note(f"{where}: the graph has {len(self.outputs)} outputs; eiegen follows "
                 f"{used!r} and ignores {', '.join(others)}")
        if upstream[used] and order[used] <= 1:
            ops = [n.op_type for n in upstream[used]]
            note(f"{where}: dropped trailing {' -> '.join(ops)} (before output {used!r}): "
                 f"{_tail_reason(ops)}")
        for msg in self.folds:
            note(f"{where}: {msg}")
        if self.skipped:
            parts = ", ".join(f"{op} x{k}" if k > 1 else op for op, k in self.skipped.items())
            note(f"{where}: skipped {sum(self.skipped.values())} pass-through node(s): {parts}")
        live = {id(n) for n in self.live}
        dead = [f"{n.op_type} {n.name!r}" for n in self.consts.nodes if id(n) not in live
                and not all(o in self.consts.computed for o in n.output if o)]
        if dead:
            note(f"{where}: ignored {len(dead)} node(s) that no graph output depends on: "
                 f"{', '.join(dead)}")
        return self.layers

    def _tail(self, end: str) -> list:
        """The nodes after ``end``, in graph order; the Softmax / ArgMax among them must work
        along the features, or dropping them would not keep the argmax."""
        after, stack = set(), [end]
        while stack:
            for node in self.consumers.get(stack.pop(), []):
                if id(node) not in after:
                    after.add(id(node))
                    stack.extend(o for o in node.output if o)
        tail = [n for n in self.live if id(n) in after]
        rank = {end: self.rank}
        for node in tail:
            op = _kind(node)
            r = next((rank[i] for i in node.input if i in rank), None)
            if op in ("Softmax", "LogSoftmax", "ArgMax") and r is not None:
                default = 0 if op == "ArgMax" else (-1 if self.opset >= 13 else 1)
                axis = int(_attrs(node).get("axis", default))
                if (axis + r if axis < 0 else axis) != r - 1:
                    raise EIEError(f"{self.where}: {node.op_type} node {node.name!r} works "
                                   f"along axis {axis} of the rank-{r} scores, not along the "
                                   "classes: dropping it would not keep the argmax")
            if op in ("Identity", "Cast", "CastLike", "Softmax", "LogSoftmax"):
                rank[node.output[0]] = r
        return tail

    def _binary_output(self, end: str, tail: list) -> None:
        """A binary classifier's ``[1 - sigmoid(z), sigmoid(z)]`` is the Softmax of
        ``[-z/2, z/2]``: the last layer's one output becomes those two."""
        sigs = [n for n in tail if id(n) in self.binary]
        if not sigs:
            return
        lay, sig = self.layers[-1], sigs[0]
        if (len(sigs) > 1 or sig.input[0] != end or self.state != "layer"
                or lay["W"].shape[0] != 1):
            raise EIEError(f"{self.where}: Sigmoid node {sig.name!r}: a binary classifier's "
                           "Sigmoid -> Concat(1 - p, p) is dropped only right after a last "
                           "layer with one output and no Relu")
        lay["W"] = np.concatenate([-lay["W"] / 2, lay["W"] / 2])
        lay["b"] = np.concatenate([-lay["b"] / 2, lay["b"] / 2])
        self.folds.append(f"layer {len(self.layers) - 1}'s one output z became the two "
                          "outputs [-z/2, z/2], whose Softmax is the model's [1 - sigmoid(z), "
                          "sigmoid(z)]")

    def _upstream(self, output: str, tail: list) -> list:
        """The tail nodes ``output`` is computed by, in graph order."""
        ids, byname = {id(n) for n in tail}, {}
        for n in tail:
            for o in n.output:
                byname[o] = n
        seen, stack = set(), [output]
        while stack:
            node = byname.get(stack.pop())
            if node is not None and id(node) in ids and id(node) not in seen:
                seen.add(id(node))
                stack.extend(node.input)
        return [n for n in tail if id(n) in seen]


def _output_rank(end: str, output: str, upstream: list, taps: list) -> int:
    """How directly ``output`` is the network's output: the scores, then something computed
    from all of them, then one column, then a label; an intermediate or a constant last."""
    if output == end:
        return 0
    if upstream:
        ops = {n.op_type for n in upstream}
        return 3 if ops & {"ArgMax", "ArrayFeatureExtractor"} else 2 if "Slice" in ops else 1
    return 4 if output in taps else 5


def _describe(end: str, output: str, upstream: list, taps: list) -> str:
    if upstream:
        ops = [n.op_type for n in upstream]
        what = ("the class label" if "ArgMax" in ops else
                "one class's column" if "Slice" in ops else "from the same scores")
        return f"{' -> '.join(ops)}: {what}"
    if output in taps:
        return "an intermediate result of the chain"
    return "a constant" if output != end else "the scores"


def _tail_reason(ops: list) -> str:
    why = []
    if "Sigmoid" in ops:
        why.append("the class probabilities [1 - p, p] are the Softmax of the last layer's "
                   "two outputs, so the argmax is unchanged")
    elif {"Softmax", "LogSoftmax"} & set(ops):
        why.append("the argmax is unchanged")
    if "ZipMap" in ops:
        why.append("ZipMap only puts the probabilities in a dictionary")
    if "Slice" in ops:
        why.append("eiegen outputs every class's score, not one column")
    if "ArgMax" in ops:
        why.append("ArgMax gives the index of eiegen's largest output"
                   + (", which ArrayFeatureExtractor maps to a class label"
                      if "ArrayFeatureExtractor" in ops else ""))
    return "; ".join(why) or "it does not change the scores"


def _per_feature(v: np.ndarray, n: int, labels: list, where: str) -> np.ndarray:
    """A scale or shift of one value (for all) or ``n`` values, as ``n`` values."""
    if v.size == 1:
        return np.full(n, float(v[0]))
    if v.size != n:
        raise EIEError(f"{where}: {', '.join(labels)} has {v.size} values, but the layer it "
                       f"folds into has {n} features there")
    return v


def _broadcast(label: str, where: str, *vs: np.ndarray) -> list[np.ndarray]:
    n = max(v.size for v in vs)
    if any(v.size not in (1, n) for v in vs):
        raise EIEError(f"{where}: {label}: its parameters have {[v.size for v in vs]} values; "
                       "they must be one per feature")
    return [np.broadcast_to(v, (n,)).astype(np.float64) for v in vs]


def chain_layers(model, where: str = "model", note=None) -> list[dict]:
    """The layers of an ONNX graph, in order (module docstring: what is imported, skipped,
    folded, dropped and refused).

    Parameters
    ----------
    model : onnx.ModelProto
    where : str
        Starts every message (the file's path).
    note : callable, optional
        Called with each note (one line: a dropped Softmax, the output followed, a folded
        BatchNormalization, the skipped nodes); None: no notes.

    Returns
    -------
    list of dict
        A fully-connected layer: ``W`` float64 ``(out, in)``, ``b`` float64 ``(out,)``,
        ``relu`` bool.  An LSTM: ``lstm`` (the keyword arguments of
        :class:`~models.lstm.LSTMLayer` but ``name``).  A normalization of the graph input
        before a fully-connected layer 0 is its ``input_affine`` ``(s, t)``: layer 0 takes
        ``s x + t`` (:attr:`models.network.Network.input_affine`).

    Raises
    ------
    EIEError
        An operator that is not imported, skipped, folded or dropped; a graph that is not a
        single chain; a constant whose shape or type does not fit.
    """
    chain = _Chain(model, where)
    end = chain.walk()
    layers = chain.finish(end, note or (lambda msg: None))
    _check_shapes_chain(layers, where)
    return layers


def _fc_node(node, weight, label: str, first: bool, where: str) -> dict:
    """A ``Gemm`` or ``MatMul`` node as ``{"W", "b", "relu"}``."""
    ins = [i for i in node.input if i]
    B = weight(node, ins[1])
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
        b = beta * _bias(weight(node, ins[2]), W.shape[0], f"{where}: {label}")
    return {"W": W, "b": b, "relu": False}


def _lstm_node(node, weight, label: str, where: str) -> dict:
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
    W, R = weight(node, ins[1]), weight(node, ins[2])
    if W.ndim != 3 or W.shape[0] != 1 or W.shape[1] % 4 or R.shape != (1, W.shape[1],
                                                                       W.shape[1] // 4):
        raise EIEError(f"{where}: {label}: W {W.shape} and R {R.shape} are not "
                       "(1, 4 * hidden, in) and (1, 4 * hidden, hidden)")
    H = W.shape[1] // 4

    def gates(a):  # ONNX i, o, f, c blocks -> i, f, g, o
        return np.concatenate([a[j * H:(j + 1) * H] for j in ONNX_GATE_ORDER])

    b = np.zeros(4 * H)
    if ins[3]:
        B = weight(node, ins[3])
        if B.shape != (1, 8 * H):
            raise EIEError(f"{where}: {label}: B has shape {B.shape}, expected (1, {8 * H})")
        b = gates(B[0, :4 * H] + B[0, 4 * H:])
    peep = None
    if ins[7]:
        P = weight(node, ins[7])
        if P.shape != (1, 3 * H):
            raise EIEError(f"{where}: {label}: P has shape {P.shape}, expected (1, {3 * H})")
        peep = np.stack([P[0, :H], P[0, 2 * H:], P[0, H:2 * H]])  # i, o, f -> i, f, o
    return {"W_x": gates(W[0]), "W_r": gates(R[0]), "b": b, "peep": peep, "W_ym": None,
            "return_sequences": False}


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


def load_onnx(path, seed: int = 0, name: str | None = None, note=print_note) -> Network:
    """Import an ONNX chain of fully-connected layers as a float :class:`Network`.

    Parameters
    ----------
    path : str or Path
    seed : int
        Seeds the generated input (the file has no data).
    name : str, optional
        Default: the file stem.
    note : callable or None
        Told each note of :func:`chain_layers` (default: printed on stderr); None silences
        them, ``list.append`` collects them.

    Raises
    ------
    EIEError
        Missing or invalid file, unsupported operator, a graph that is not a chain.
    """
    path = Path(path)
    model = read_model(path)
    layers = chain_layers(model, where=str(path), note=note)
    affine = layers[0].pop("input_affine", None)
    specs = [LSTMLayer(name=f"lstm{k}", **lay["lstm"]) if "lstm" in lay
             else (lay["W"], lay["b"], lay["relu"]) for k, lay in enumerate(layers)]
    return imported_network(path, specs, name=name, seed=seed,
                            description=f"ONNX model {path.name} ({len(layers)} layers, "
                                        "chained)", input_affine=affine)
