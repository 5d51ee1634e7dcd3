"""ONNX import of graphs as mainstream exporters write them (models.onnx_import).

Every graph is built with onnx.helper in the structure the exporter writes (skl2onnx, torch's
legacy exporter, Keras 3, onnxconverter-common's float16 conversion), and the imported network
is checked against onnx's reference evaluator on the same graph (or NumPy where the graph has
an ai.onnx.ml operator the evaluator cannot run).  The importorskip tests at the end run the
real exporters where they are installed.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from hw.arch.errors import EIEError
from models import float_forward, load_model
from models.onnx_import import chain_layers, external_data_files, load_onnx

ROOT = Path(__file__).resolve().parents[2]
ML = "ai.onnx.ml"
TOL = {"rtol": 1e-5, "atol": 1e-5}


def node(op, ins, outs, name=None, domain=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or outs[0], domain=domain, **attrs)


def tensor(name, a, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(a, dtype), name)


def model_of(nodes, inits, inp, outputs, opset=17, ml=False):
    graph = helper.make_graph(nodes, "g", [inp], outputs, initializer=inits)
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(ML, 1)] if ml else [])
    m = helper.make_model(graph, opset_imports=ops)
    m.ir_version = 8
    return m


def float_input(name, n_in, elem=TensorProto.FLOAT, batch="n"):
    return helper.make_tensor_value_info(name, elem, [batch, n_in])


def out(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def save(tmp_path, model, name="m.onnx"):
    p = tmp_path / name
    onnx.save(model, str(p))
    return p


def imported(tmp_path, model, x, name="m.onnx"):
    """The imported network's output on ``x`` and the importer's notes."""
    notes = []
    net = load_onnx(save(tmp_path, model, name), note=notes.append)
    net.x = net.prepare_inputs(x)  # raw inputs, as the producer takes them
    return float_forward(net)[-1], notes, net


def reference(model, x):
    """Every output of the graph, run by onnx's reference evaluator."""
    return ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def relu(z):
    return np.maximum(z, 0)


# ---- skl2onnx ----

def skl2onnx_mlp(rng, sizes=(4, 8, 3), zipmap="dict", scaler=False, classes=None):
    """The graph skl2onnx 1.20 writes for an MLPClassifier (optionally in a Pipeline after a
    StandardScaler, an ai.onnx.ml Scaler), node and tensor names included.

    ``zipmap``: ``"dict"`` (the default: probabilities through ZipMap), ``"false"``
    (``options={"zipmap": False}``: an Identity) or ``"columns"`` (one Slice per class).
    ``sizes[-1] == 1`` is a binary classifier: Sigmoid and Concat(1 - p, p).
    Returns the model and the parameters, for the NumPy expectation.
    """
    n_in, n_out = sizes[0], sizes[-1]
    binary = n_out == 1
    n_classes = 2 if binary else n_out
    classes = np.arange(n_classes) * 2 + 3 if classes is None else np.asarray(classes)
    inits = [tensor("classes", classes, np.int64), tensor("shape_tensor", [-1], np.int64)]
    nodes, params = [], {"W": [], "b": [], "classes": classes}
    cur = "X"
    if scaler:
        params["offset"] = rng.normal(0, 1, n_in).astype(np.float32)
        params["scale"] = rng.uniform(0.5, 2, n_in).astype(np.float32)
        nodes.append(node("Scaler", ["X"], ["variable"], name="Scaler", domain=ML,
                          offset=params["offset"].tolist(), scale=params["scale"].tolist()))
        cur = "variable"
    nodes.append(node("Cast", [cur], ["cast_input"], name="Cast", to=TensorProto.FLOAT))
    cur = "cast_input"
    n_layers = len(sizes) - 1
    for k in range(n_layers):
        sfx = str(k) if k else ""
        W = rng.normal(0, 0.7, (sizes[k], sizes[k + 1])).astype(np.float32)
        b = rng.normal(0, 0.3, (1, sizes[k + 1])).astype(np.float32)
        params["W"].append(W)
        params["b"].append(b)
        inits += [tensor(f"coefficient{sfx}", W), tensor(f"intercepts{sfx}", b)]
        nodes += [node("MatMul", [cur, f"coefficient{sfx}"], [f"mul_result{sfx}"],
                       name=f"MatMul{sfx}"),
                  node("Add", [f"mul_result{sfx}", f"intercepts{sfx}"], [f"add_result{sfx}"],
                       name=f"Add{sfx}")]
        cur = f"add_result{sfx}"
        if k < n_layers - 1:
            nodes.append(node("Relu", [cur], [f"next_activations{sfx}"], name=f"Relu{sfx}"))
            cur = f"next_activations{sfx}"
    last = f"Relu{n_layers - 1}"  # skl2onnx names the output activation after Relu
    if binary:
        inits.append(tensor("unity", 1.0))
        nodes += [node("Sigmoid", [cur], ["out_activations_result"], name=last),
                  node("Sub", ["unity", "out_activations_result"], ["negative_class_proba"],
                       name="Sub"),
                  node("Concat", ["negative_class_proba", "out_activations_result"],
                       ["probabilities"], name="Concat", axis=1)]
        probs = "probabilities"
    else:
        nodes.append(node("Softmax", [cur], ["out_activations_result"], name=last, axis=1))
        probs = "out_activations_result"
    if zipmap == "false" and not binary:
        nodes.append(node("Identity", [probs], ["probabilities"], name="Identity"))
        probs = "probabilities"
    nodes += [node("ArgMax", [probs], ["argmax_output"], name="ArgMax", axis=1),
              node("ArrayFeatureExtractor", ["classes", "argmax_output"],
                   ["array_feature_extractor_result"], name="ArrayFeatureExtractor", domain=ML),
              node("Reshape", ["array_feature_extractor_result", "shape_tensor"],
                   ["reshaped_result"], name="Reshape"),
              node("Cast", ["reshaped_result"], ["label"], name="Cast1", to=TensorProto.INT64)]
    label_out = out("label" if zipmap == "false" else "output_label", TensorProto.INT64, [None])
    if zipmap == "false":
        outputs = [label_out, out("probabilities", shape=[None, n_classes])]
    else:
        nodes.append(node("Cast", ["label"], ["output_label"], name="Cast2",
                          to=TensorProto.INT64))
        outputs = [label_out]
    if zipmap == "dict":
        nodes.append(node("ZipMap", [probs], ["output_probability"], name="ZipMap", domain=ML,
                          classlabels_int64s=classes.tolist()))
        outputs.append(helper.make_value_info("output_probability", helper.make_sequence_type_proto(
            helper.make_map_type_proto(TensorProto.INT64,
                                       helper.make_tensor_type_proto(TensorProto.FLOAT, [])))))
    elif zipmap == "columns":
        for j in range(n_classes):
            inits += [tensor(f"start{j}", [j], np.int64), tensor(f"end{j}", [j + 1], np.int64)]
        inits.append(tensor("axis1", [1], np.int64))
        for j in range(n_classes):
            nodes += [node("Slice", [probs, f"start{j}", f"end{j}", "axis1"], [f"i{j}1"],
                           name=f"Slice{j}"),
                      node("Reshape", [f"i{j}1", "shape_tensor"], [f"i{j}"], name=f"reshape{j}")]
            outputs.append(out(f"i{j}", shape=[None]))
    inp = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_in])
    return model_of(nodes, inits, inp, outputs, ml=True), params


def skl_expected(params, x):
    """The classifier's probabilities, in float64 from the file's float32 parameters."""
    h = x.astype(np.float64)
    if "offset" in params:
        h = (h - params["offset"]) * params["scale"]
    for k, (W, b) in enumerate(zip(params["W"], params["b"])):
        h = h @ W + b[0]
        if k < len(params["W"]) - 1:
            h = relu(h)
    if h.shape[1] == 1:  # binary: [1 - p, p]
        p = 1 / (1 + np.exp(-h))
        return np.concatenate([1 - p, p], axis=1)
    return softmax(h)


@pytest.mark.parametrize("zipmap", ["dict", "false", "columns"])
@pytest.mark.parametrize("scaler", [False, True])
def test_skl2onnx_mlp_classifier(tmp_path, zipmap, scaler):
    rng = np.random.default_rng([len(zipmap), scaler])
    model, params = skl2onnx_mlp(rng, (4, 8, 6, 3), zipmap=zipmap, scaler=scaler)
    x = rng.normal(0, 1, (9, 4)).astype(np.float32)
    z, notes, net = imported(tmp_path, model, x)
    assert [layer.W.shape for layer in net.layers] == [(8, 4), (6, 8), (3, 6)]
    assert [layer.relu for layer in net.layers] == [True, True, False]
    want = skl_expected(params, x)
    np.testing.assert_allclose(softmax(z), want, **TOL)
    if zipmap != "dict":  # no ZipMap: the reference evaluator runs the whole graph
        ref = reference(model, x)
        probs = ref[1] if zipmap == "false" else np.stack(ref[1:], axis=1)
        np.testing.assert_allclose(softmax(z), probs, **TOL)
        np.testing.assert_array_equal(ref[0], params["classes"][z.argmax(axis=1)])
    text = "\n".join(notes)
    if zipmap == "dict":
        assert "the graph has 2 outputs; eiegen follows 'output_probability' and ignores " \
               "'output_label' (Softmax -> ArgMax -> ArrayFeatureExtractor -> Reshape -> " \
               "Cast -> Cast: the class label)" in text
        assert "dropped trailing Softmax -> ZipMap (before output 'output_probability'): " \
               "the argmax is unchanged" in text
    elif zipmap == "false":
        assert "eiegen follows 'probabilities' and ignores 'label'" in text
        assert "dropped trailing Softmax -> Identity" in text
    else:
        assert "no graph output is the class scores; eiegen outputs the scores that " \
               "'output_label' (" in text and "'i2' (Softmax -> Slice -> Reshape: one " \
                                              "class's column)" in text
    host = "Scaler node 'Scaler' on the graph input: applied to the inputs on the host"
    assert (host in text) is scaler
    assert "skipped 1 pass-through node(s): Cast" in text


@pytest.mark.parametrize("zipmap", ["dict", "false"])
def test_skl2onnx_binary_classifier(tmp_path, zipmap):
    """Sigmoid -> Concat(1 - p, p) is the Softmax of [-z/2, z/2]: two outputs, exactly."""
    rng = np.random.default_rng(3)
    model, params = skl2onnx_mlp(rng, (5, 7, 1), zipmap=zipmap, classes=[0, 1])
    x = rng.normal(0, 1, (11, 5)).astype(np.float32)
    z, notes, net = imported(tmp_path, model, x)
    assert net.layers[-1].W.shape == (2, 7)
    np.testing.assert_allclose(softmax(z), skl_expected(params, x), **TOL)
    if zipmap == "false":
        ref = reference(model, x)
        np.testing.assert_allclose(softmax(z), ref[1], **TOL)
        np.testing.assert_array_equal(ref[0], z.argmax(axis=1))
    assert any("one output z became the two outputs [-z/2, z/2]" in n for n in notes)


def test_standard_scaler_after_a_layer_folds_into_it(tmp_path):
    rng = np.random.default_rng(4)
    inits = [tensor("W0", rng.normal(0, 1, (6, 4))), tensor("W1", rng.normal(0, 1, (3, 6)))]
    nodes = [node("Gemm", ["x", "W0"], ["h"], transB=1),
             node("Scaler", ["h"], ["s"], name="sc", domain=ML,
                  offset=rng.normal(0, 1, 6).tolist(), scale=rng.uniform(-2, 2, 6).tolist()),
             node("Relu", ["s"], ["a"]),
             node("Gemm", ["a", "W1"], ["y"], transB=1)]
    model = model_of(nodes, inits, float_input("x", 4), [out("y")], ml=True)
    x = rng.normal(0, 1, (7, 4)).astype(np.float32)
    z, notes, _ = imported(tmp_path, model, x)
    np.testing.assert_allclose(z, reference(model, x)[0], **TOL)
    assert any("folded Scaler node 'sc' into layer 0 (W' = diag(s) W, b' = s b + t)" in n
               for n in notes)


# ---- Keras 3, torch's legacy exporter, onnxconverter-common ----

def keras_mlp(rng, n_in=6, hidden=8, n_out=3):
    """Keras 3's export (torch backend) of Normalization -> Dense -> BatchNormalization ->
    ReLU -> Dense(softmax): a float-to-float Cast around every operator, the Normalization as
    Sub / Div of Constant nodes, the inference BatchNormalization as Sub / Mul / Add."""
    k = iter(range(100))

    def cast(src):
        dst = f"/Cast_{next(k)}_output_0"
        nodes.append(node("Cast", [src], [dst], name=dst[:-9], to=TensorProto.FLOAT))
        return dst

    nodes = []
    cur = "keras_tensor"
    for _ in range(5):
        cur = cast(cur)
    mean = helper.make_tensor("mean", TensorProto.FLOAT, [1, n_in],
                              rng.normal(0, 1, n_in).astype(np.float32))
    std = helper.make_tensor("std", TensorProto.FLOAT, [1, n_in],
                             rng.uniform(0.5, 3, n_in).astype(np.float32))
    nodes += [node("Constant", [], ["/Constant_output_0"], name="/Constant", value=mean),
              node("Sub", [cur, "/Constant_output_0"], ["/Sub_output_0"], name="/Sub")]
    cur = cast("/Sub_output_0")
    nodes += [node("Constant", [], ["/Constant_1_output_0"], name="/Constant_1", value=std),
              node("Div", [cur, "/Constant_1_output_0"], ["/Div_output_0"], name="/Div")]
    cur = cast("/Div_output_0")
    inits = [tensor("onnx::MatMul_77", rng.normal(0, 0.5, (n_in, hidden))),
             tensor("onnx::Add_78", rng.normal(0, 0.5, hidden)),
             tensor("onnx::Sub_93", rng.normal(0, 0.5, (1, hidden))),
             tensor("onnx::Mul_102", rng.uniform(0.2, 2, (1, hidden))),
             tensor("onnx::Add_96", rng.normal(0, 0.5, (1, hidden))),
             tensor("onnx::MatMul_103", rng.normal(0, 0.5, (hidden, n_out))),
             tensor("onnx::Add_104", rng.normal(0, 0.5, n_out))]
    for op, const, name in (("MatMul", "onnx::MatMul_77", "/MatMul"),
                            ("Add", "onnx::Add_78", "/Add"), ("Sub", "onnx::Sub_93", "/Sub_1"),
                            ("Mul", "onnx::Mul_102", "/Mul"), ("Add", "onnx::Add_96", "/Add_1")):
        nodes.append(node(op, [cur, const], [f"{name}_output_0"], name=name))
        cur = f"{name}_output_0"
        if op in ("MatMul", "Add"):
            cur = cast(cur)
    cur = cast(cur)
    nodes.append(node("Relu", [cur], ["/Relu_output_0"], name="/Relu"))
    cur = cast("/Relu_output_0")
    nodes.append(node("MatMul", [cur, "onnx::MatMul_103"], ["/MatMul_1_output_0"],
                      name="/MatMul_1"))
    cur = cast("/MatMul_1_output_0")
    nodes.append(node("Add", [cur, "onnx::Add_104"], ["/Add_2_output_0"], name="/Add_2"))
    cur = cast("/Add_2_output_0")
    nodes.append(node("Softmax", [cur], ["76"], name="/Softmax", axis=-1))
    inp = helper.make_tensor_value_info("keras_tensor", TensorProto.FLOAT, ["batch", n_in])
    return model_of(nodes, inits, inp, [out("76", shape=["batch", n_out])], opset=20)


def test_keras_cast_wrappers_normalization_and_batchnorm(tmp_path):
    rng = np.random.default_rng(5)
    model = keras_mlp(rng)
    x = rng.normal(0, 2, (10, 6)).astype(np.float32)
    z, notes, net = imported(tmp_path, model, x)
    assert [layer.W.shape for layer in net.layers] == [(8, 6), (3, 8)]
    np.testing.assert_allclose(softmax(z), reference(model, x)[0], **TOL)
    text = "\n".join(notes)
    n_casts = sum(n.op_type == "Cast" for n in model.graph.node) - 1  # one Cast is in the tail
    assert f"skipped {n_casts} pass-through node(s): Cast x{n_casts}" in text
    assert "dropped trailing Cast -> Softmax" in text
    assert "Sub node '/Sub' then Div node '/Div' on the graph input: applied to the inputs" in text
    assert "folded Mul node '/Mul' into layer 0" in text


def torch_legacy_mlp(rng, n_in=6, hidden=8, n_out=3, float16=False, dropout=False):
    """torch.onnx.export(dynamo=False) of nn.Sequential(Flatten, Linear, BatchNorm1d, ReLU,
    [Dropout], Linear, Softmax(dim=1)) in eval mode: Flatten on the (n, k) input, Gemm with
    transB, the equal running_var / weight and running_mean / bias shared through Identity.

    ``float16``: then onnxconverter-common's convert_float_to_float16(keep_io_types=True): a
    Cast to float16 after the input, float16 initializers, a Cast to float before the output.
    ``dropout``: an inference Dropout (opset 12+: ratio and training_mode inputs).
    """
    dt = np.float16 if float16 else np.float32
    gamma = rng.uniform(0.5, 2, hidden)
    beta = rng.normal(0, 0.5, hidden)
    inits = [tensor("1.weight", rng.normal(0, 0.5, (hidden, n_in)), dt),
             tensor("1.bias", rng.normal(0, 0.5, hidden), dt),
             tensor("2.weight", gamma, dt), tensor("2.bias", beta, dt),
             tensor("5.weight", rng.normal(0, 0.5, (n_out, hidden)), dt),
             tensor("5.bias", rng.normal(0, 0.5, n_out), dt)]
    nodes = [node("Identity", ["2.weight"], ["2.running_var"], name="Identity_0"),
             node("Identity", ["2.bias"], ["2.running_mean"], name="Identity_1")]
    cur = "x"
    if float16:
        nodes.append(node("Cast", ["x"], ["x_cast_to_/0/Flatten"], name="x_cast_to_/0/Flatten",
                          to=TensorProto.FLOAT16))
        cur = "x_cast_to_/0/Flatten"
    nodes += [node("Flatten", [cur], ["/0/Flatten_output_0"], name="/0/Flatten", axis=1),
              node("Gemm", ["/0/Flatten_output_0", "1.weight", "1.bias"], ["/1/Gemm_output_0"],
                   name="/1/Gemm", alpha=1.0, beta=1.0, transB=1),
              node("BatchNormalization", ["/1/Gemm_output_0", "2.weight", "2.bias",
                                          "2.running_mean", "2.running_var"],
                   ["/2/BatchNormalization_output_0"], name="/2/BatchNormalization",
                   epsilon=1e-5, momentum=0.9, training_mode=0),
              node("Relu", ["/2/BatchNormalization_output_0"], ["/3/Relu_output_0"],
                   name="/3/Relu")]
    cur = "/3/Relu_output_0"
    if dropout:
        inits += [tensor("ratio", 0.2, dt), tensor("training_mode", False, np.bool_)]
        nodes += [node("Dropout", [cur, "ratio", "training_mode"], ["/4/Dropout_output_0"],
                       name="/4/Dropout"),
                  node("Identity", ["/4/Dropout_output_0"], ["/4/Identity_output_0"],
                       name="/4/Identity")]
        cur = "/4/Identity_output_0"
    nodes.append(node("Gemm", [cur, "5.weight", "5.bias"], ["/5/Gemm_output_0"], name="/5/Gemm",
                      alpha=1.0, beta=1.0, transB=1))
    if float16:
        nodes += [node("Softmax", ["/5/Gemm_output_0"], ["/6/Softmax_cast_to_y"],
                       name="/6/Softmax", axis=1),
                  node("Cast", ["/6/Softmax_cast_to_y"], ["y"], name="/6/Softmax_cast_to_y",
                       to=TensorProto.FLOAT)]
    else:
        nodes.append(node("Softmax", ["/5/Gemm_output_0"], ["y"], name="/6/Softmax", axis=1))
    return model_of(nodes, inits, float_input("x", n_in), [out("y", shape=["n", n_out])],
                    opset=20)


def torch_expected(model, x):
    """softmax(W1 relu(BN(W0 x + b0)) + b1) in float64 from the file's (float16) weights."""
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    h = x.astype(np.float64) @ w["1.weight"].T + w["1.bias"]
    h = (h - w["2.bias"]) / np.sqrt(w["2.weight"] + 1e-5) * w["2.weight"] + w["2.bias"]
    return softmax(relu(h) @ w["5.weight"].T + w["5.bias"])


@pytest.mark.parametrize("dropout", [False, True])
def test_torch_legacy_flatten_batchnorm_dropout_identity(tmp_path, dropout):
    rng = np.random.default_rng([6, dropout])
    model = torch_legacy_mlp(rng, dropout=dropout)
    x = rng.normal(0, 1, (8, 6)).astype(np.float32)
    z, notes, net = imported(tmp_path, model, x)
    assert [layer.relu for layer in net.layers] == [True, False]
    np.testing.assert_allclose(softmax(z), reference(model, x)[0], **TOL)
    np.testing.assert_allclose(softmax(z), torch_expected(model, x), **TOL)
    text = "\n".join(notes)
    assert "folded BatchNormalization node '/2/BatchNormalization' into layer 0" in text
    assert "dropped trailing Softmax (before output 'y'): the argmax is unchanged" in text
    assert ("skipped 3 pass-through node(s): Flatten, Dropout, Identity" if dropout else
            "skipped 1 pass-through node(s): Flatten") in text


def test_float16_keep_io_types(tmp_path):
    """float16 weights are read exactly; eiegen computes in float, the graph in float16."""
    rng = np.random.default_rng(7)
    model = torch_legacy_mlp(rng, float16=True)
    x = rng.normal(0, 1, (8, 6)).astype(np.float32)
    z, notes, net = imported(tmp_path, model, x)
    np.testing.assert_allclose(softmax(z), torch_expected(model, x), **TOL)
    # the graph itself rounds to float16 between the layers
    np.testing.assert_allclose(softmax(z), reference(model, x)[0], rtol=0, atol=1e-2)
    assert any("dropped trailing Softmax -> Cast" in n for n in notes)
    assert any("skipped 2 pass-through node(s): Cast, Flatten" in n for n in notes)


@pytest.mark.parametrize("elem", [TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE])
def test_weight_element_types_read_exactly(tmp_path, elem):
    rng = np.random.default_rng(elem)
    W, b = rng.normal(0, 1, (4, 3)), rng.normal(0, 1, 3)
    inits = [helper.make_tensor("W", elem, W.shape, W.ravel().tolist()),
             helper.make_tensor("b", elem, b.shape, b.tolist())]
    nodes = [node("Cast", ["x"], ["xc"], to=elem), node("MatMul", ["xc", "W"], ["h"]),
             node("Add", ["h", "b"], ["hb"]), node("Cast", ["hb"], ["y"], to=TensorProto.FLOAT)]
    model = model_of(nodes, inits, float_input("x", 4), [out("y")])
    stored = [numpy_helper.to_array(t).astype(np.float64) for t in inits]
    x = rng.normal(0, 1, (5, 4)).astype(np.float32)
    z, _, net = imported(tmp_path, model, x)
    np.testing.assert_array_equal(net.layers[0].W, stored[0].T.astype(np.float32))
    np.testing.assert_allclose(z, x.astype(np.float64) @ stored[0] + stored[1], **TOL)
    if elem == TensorProto.DOUBLE:
        np.testing.assert_allclose(z, reference(model, x)[0], **TOL)


# ---- BatchNormalization and other scale/shifts where they stand ----

def bn_node(rng, name, x, y, k, inits):
    for part, v in (("scale", rng.uniform(-2, 2, k)), ("B", rng.normal(0, 1, k)),
                    ("mean", rng.normal(0, 1, k)), ("var", rng.uniform(0.1, 3, k))):
        inits.append(tensor(f"{name}.{part}", v))
    return node("BatchNormalization", [x] + [f"{name}.{p}" for p in ("scale", "B", "mean", "var")],
                [y], name=name, epsilon=1e-3)


def test_batchnorm_before_the_first_layer_after_gemm_and_after_relu(tmp_path):
    """BN on the input folds into layer 0's inputs, BN after a Gemm into that Gemm, BN after a
    Relu into the next layer's inputs; all exactly."""
    rng = np.random.default_rng(8)
    inits = [tensor("W0", rng.normal(0, 1, (6, 4))), tensor("b0", rng.normal(0, 1, 6)),
             tensor("W1", rng.normal(0, 1, (3, 6))), tensor("b1", rng.normal(0, 1, 3))]
    nodes = [bn_node(rng, "bn_in", "x", "xn", 4, inits),
             node("Gemm", ["xn", "W0", "b0"], ["h"], transB=1),
             bn_node(rng, "bn_h", "h", "hn", 6, inits),
             node("Relu", ["hn"], ["a"]),
             bn_node(rng, "bn_a", "a", "an", 6, inits),
             node("Gemm", ["an", "W1", "b1"], ["y"], transB=1)]
    model = model_of(nodes, inits, float_input("x", 4), [out("y")])
    x = rng.normal(0, 1, (9, 4)).astype(np.float32)
    z, notes, net = imported(tmp_path, model, x)
    assert [layer.relu for layer in net.layers] == [True, False]
    np.testing.assert_allclose(z, reference(model, x)[0], **TOL)
    text = "\n".join(notes)
    assert "BatchNormalization node 'bn_in' on the graph input: applied to the inputs" in text
    assert "folded BatchNormalization node 'bn_h' into layer 0" in text
    assert "folded BatchNormalization node 'bn_a' into the inputs of layer 1" in text


def test_several_outputs_follow_the_scores(tmp_path):
    rng = np.random.default_rng(9)
    inits = [tensor("W0", rng.normal(0, 1, (4, 5))), tensor("W1", rng.normal(0, 1, (5, 3)))]
    nodes = [node("MatMul", ["x", "W0"], ["h"]), node("Relu", ["h"], ["a"]),
             node("MatMul", ["a", "W1"], ["logits"]),
             node("Softmax", ["logits"], ["probs"], axis=-1)]
    model = model_of(nodes, inits, float_input("x", 4), [out("probs"), out("a"), out("logits")])
    x = rng.normal(0, 1, (6, 4)).astype(np.float32)
    z, notes, _ = imported(tmp_path, model, x)
    ref = reference(model, x)
    np.testing.assert_allclose(z, ref[2], **TOL)
    assert notes[0].endswith("the graph has 3 outputs; eiegen follows 'logits' and ignores "
                             "'probs' (Softmax: from the same scores), 'a' (an intermediate "
                             "result of the chain)")
    assert not any("dropped" in n for n in notes)  # the followed output has nothing after it


def test_nodes_no_output_depends_on_are_ignored_with_a_note(tmp_path):
    rng = np.random.default_rng(18)
    inits = [tensor("W", rng.normal(0, 1, (4, 3)))]
    nodes = [node("MatMul", ["x", "W"], ["y"]), node("Sigmoid", ["x"], ["unused"], name="dead")]
    model = model_of(nodes, inits, float_input("x", 4), [out("y")])
    x = rng.normal(0, 1, (3, 4)).astype(np.float32)
    z, notes, _ = imported(tmp_path, model, x)
    np.testing.assert_allclose(z, reference(model, x)[0], **TOL)
    assert notes == [f"{tmp_path / 'm.onnx'}: ignored 1 node(s) that no graph output depends "
                     "on: Sigmoid 'dead'"]


# ---- refusals ----

def refused(tmp_path, nodes, inits, n_in=4, match="", outputs=None, opset=17, inp=None):
    model = model_of(nodes, inits, inp or float_input("x", n_in),
                     outputs or [out(nodes[-1].output[0])], opset=opset)
    with pytest.raises(EIEError, match=match):
        load_onnx(save(tmp_path, model), note=None)


def inits_of(d, dtype=np.float32):
    return [tensor(k, v, dtype) for k, v in d.items()]


@pytest.mark.parametrize("nodes, match", [
    ([node("MatMul", ["x", "W"], ["h"]), node("Sigmoid", ["h"], ["s"], name="act"),
      node("MatMul", ["s", "W2"], ["y"])],
     r"unsupported ONNX operator Sigmoid \(node 'act'\): eiegen's FC layers apply ReLU or "
     r"nothing; re-export without it or replace it with Relu"),
    ([node("MatMul", ["x", "W"], ["h"]), node("Sigmoid", ["h"], ["y"], name="act")],
     r"Sigmoid \(node 'act'\): a trailing Sigmoid is not dropped .* keeping the logits"),
    ([node("MatMul", ["x", "W"], ["h"]), node("Softmax", ["h"], ["y"], name="sm", axis=0)],
     r"Softmax node 'sm' works along axis 0 of the rank-2 scores, not along the classes"),
    ([node("MatMul", ["x", "W"], ["h"]), node("ArgMax", ["h"], ["y"], name="am")],
     r"ArgMax node 'am' works along axis 0"),  # ArgMax's default axis is 0: the batch
    ([node("MatMul", ["x", "W"], ["h"]), node("Cast", ["h"], ["y"], name="c", to=7)],
     r"Cast node 'c' casts the activations to INT64; .*re-export without it"),
    ([node("MatMul", ["x", "W"], ["h"]),
      node("Dropout", ["h", "r", "t"], ["y"], name="d")],
     r"Dropout node 'd' has training_mode = true; export the model for inference"),
    ([node("MatMul", ["x", "W"], ["h"]), node("Dropout", ["h"], ["y", "mask"], name="d"),
      node("Cast", ["mask"], ["m"], to=1)],
     r"Dropout node 'd': its mask \('mask'\) is used"),
    ([node("MatMul", ["x", "W"], ["h"]),
      node("Reshape", ["h", "shape3"], ["y"], name="r")],
     r"Reshape node 'r' reshapes the \(n, 3\) activations to \[1, -1, 3\]"),
    ([node("Flatten", ["x"], ["f"], name="fl", axis=0), node("MatMul", ["f", "W"], ["y"])],
     r"Flatten node 'fl': Flatten\(axis=0\) of rank-2 activations"),
    ([node("MatMul", ["x", "W"], ["h"]), node("Div", ["three", "h"], ["y"], name="dv")],
     r"Div node 'dv' divides a constant by the activations"),
    ([node("MatMul", ["x", "W"], ["h"]), node("Mul", ["h", "per_sample"], ["y"], name="m")],
     r"Mul node 'm': constant 'per_sample' has shape \(2, 3\); only one value per feature"),
    ([node("Gemm", ["x", "W"], ["h"]), node("Relu", ["h"], ["a"]),
      node("Mul", ["a", "three"], ["y"], name="m")],
     r"Mul node 'm' follows a Relu and no layer follows it: it cannot be folded"),
    ([node("Conv", ["x", "W"], ["y"], name="cv")], r"Conv \(node 'cv'\): .*no convolution"),
    ([node("FusedMatMul", ["x", "W"], ["y"], name="fm", domain="com.microsoft")],
     r"FusedMatMul \(node 'fm'\): it is of domain 'com.microsoft', a runtime's own operator"),
    ([node("MatMul", ["x", "W"], ["h"]), node("MatMul", ["h", "W2"], ["a"], name="head_a"),
      node("MatMul", ["h", "W2"], ["b"], name="head_b"), node("Add", ["a", "b"], ["y"])],
     r"tensor 'h' feeds 2 nodes \(MatMul 'head_a', MatMul 'head_b'\); the graph is not a "
     r"single chain"),
    ([node("Shape", ["x"], ["s"]), node("Reshape", ["x", "s"], ["r"]),
      node("MatMul", ["r", "W"], ["y"])],
     r"tensor 'x' feeds 2 nodes .*\(a shape computed at run time"),
])
def test_refusals_name_the_node_and_what_to_do(tmp_path, nodes, match):
    inits = inits_of({"W": np.ones((4, 3)), "W2": np.ones((3, 3)), "three": 3.0,
                      "per_sample": np.ones((2, 3)), "r": 0.5})
    inits += [tensor("t", True, np.bool_), tensor("shape3", [1, -1, 3], np.int64)]
    refused(tmp_path, nodes, inits, match=match)


def test_relu_after_a_scale_after_a_relu_is_refused(tmp_path):
    rng = np.random.default_rng(10)
    inits = [tensor("W", rng.normal(0, 1, (4, 3))), tensor("W2", rng.normal(0, 1, (3, 3)))]
    nodes = [node("MatMul", ["x", "W"], ["h"]), node("Relu", ["h"], ["a"]),
             bn_node(rng, "bn", "a", "an", 3, inits), node("Relu", ["an"], ["a2"], name="r2"),
             node("MatMul", ["a2", "W2"], ["y"])]
    refused(tmp_path, nodes, inits,
            match=r"Relu node 'r2': Relu must follow a Gemm or MatMul layer .*; here it follows "
                  r"BatchNormalization node 'bn' \(a scale/shift after a Relu\)")


def test_batchnorm_in_training_mode_is_refused(tmp_path):
    rng = np.random.default_rng(11)
    inits = [tensor("W", rng.normal(0, 1, (4, 3)))]
    bn = bn_node(rng, "bn", "h", "y", 3, inits)
    bn.attribute.append(helper.make_attribute("training_mode", 1))
    refused(tmp_path, [node("MatMul", ["x", "W"], ["h"]), bn], inits, opset=15,
            match=r"BatchNormalization node 'bn' is in training mode; export the model for "
                  r"inference \(torch: model.eval\(\)\)")


@pytest.mark.parametrize("make, match", [
    (lambda: helper.make_tensor("W", TensorProto.STRING, [2], [b"a", b"b"]),
     r"MatMul node 'h': weight 'W' is a string tensor"),
    (lambda: tensor("W", np.ones((4, 3)), np.int64),
     r"weight 'W' is of type INT64; eiegen reads float16, bfloat16, float or double weights"),
    (lambda: tensor("W", np.ones((4, 3)), np.int8), r"weight 'W' is of type INT8"),
    (lambda: tensor("W", np.ones((4, 3)) * (1 + 2j), np.complex64),
     r"weight 'W' is complex \(COMPLEX64\); eiegen's weights are real numbers, and the "
     r"imaginary part is never dropped"),
    (lambda: tensor("W", np.full((4, 3), np.nan)), r"MatMul node 'h': 'W' contains NaN or Inf"),
    (lambda: tensor("W", np.full((4, 3), np.inf), np.float16), "contains NaN or Inf"),
])
def test_weights_that_are_not_finite_reals(tmp_path, make, match):
    refused(tmp_path, [node("MatMul", ["x", "W"], ["h"])], [make()], match=match)


def test_a_float_weight_too_large_for_float32_is_refused(tmp_path):
    refused(tmp_path, [node("MatMul", ["x", "W"], ["h"])],
            [tensor("W", np.full((4, 3), 1e300), np.float64)],
            match=r"layer 0 weights contains NaN or Inf")


def test_bias_and_batchnorm_widths_must_fit(tmp_path):
    inits = inits_of({"W": np.ones((4, 3)), "b5": np.ones(5)})
    refused(tmp_path, [node("MatMul", ["x", "W"], ["h"]), node("Add", ["h", "b5"], ["y"],
                                                                name="bias")],
            inits, match=r"Add node 'bias': constant 'b5' has 5 values for 3 features")


# ---- notes, the command line, external data ----

def test_notes_go_where_the_caller_says(tmp_path, capsys):
    model, _ = skl2onnx_mlp(np.random.default_rng(12), (4, 5, 3))
    p = save(tmp_path, model)
    load_onnx(p, note=None)
    chain_layers(model)
    assert capsys.readouterr().err == ""
    load_model(str(p))  # the default: printed on stderr
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith(f"note: {p}: ") for line in err)


def test_compiler_cli_prints_the_notes_and_compiles(tmp_path):
    model, _ = skl2onnx_mlp(np.random.default_rng(13), (4, 5, 3))
    p = save(tmp_path, model)
    r = subprocess.run([sys.executable, "-m", "compiler", "--model", str(p), "--config", "tiny",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "dropped trailing Softmax -> ZipMap" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_external_data_is_read_and_listed(tmp_path):
    rng = np.random.default_rng(14)
    W = rng.normal(0, 1, (4, 3)).astype(np.float32)
    model = model_of([node("MatMul", ["x", "W"], ["y"])], [tensor("W", W)], float_input("x", 4),
                     [out("y")])
    assert external_data_files(save(tmp_path, model, "inside.onnx")) == []
    p = tmp_path / "m.onnx"
    onnx.save(model, str(p), save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    assert external_data_files(p) == [(tmp_path / "m.onnx.data").resolve()]
    np.testing.assert_array_equal(load_onnx(p, note=None).layers[0].W, W.T)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert external_data_files(tmp_path / "junk.onnx") == []
    # a location outside the model's directory is not listed (onnx refuses to load it)
    outside = onnx.load(str(p), load_external_data=False)
    for entry in outside.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../elsewhere.data"
    assert external_data_files(save(tmp_path, outside, "outside.onnx")) == []
    with pytest.raises(EIEError, match="is not a valid ONNX model"):
        load_onnx(tmp_path / "outside.onnx")


# ---- the real exporters, where installed ----

def test_real_skl2onnx_mlp_and_pipeline(tmp_path):
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(15)
    X = rng.normal(0, 2, (120, 4)).astype(np.float32)
    for y in ((X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1), (X[:, 3] > 0).astype(int)):
        for est in (MLPClassifier((8,), max_iter=400, random_state=0),
                    make_pipeline(StandardScaler(), MLPClassifier((8, 6), max_iter=400,
                                                                  random_state=0))):
            est.fit(X, y)
            for zipmap in (True, False, "columns"):
                clf = est if isinstance(est, MLPClassifier) else est.steps[-1][1]
                model = to_onnx(est, X[:1], target_opset=17, options={id(clf): {"zipmap": zipmap}})
                z, _, _ = imported(tmp_path, model, X)
                np.testing.assert_allclose(softmax(z), est.predict_proba(X), rtol=1e-4,
                                           atol=1e-5)


def test_real_torch_exports(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(),
                        nn.Dropout(0.2), nn.Linear(16, 3), nn.Softmax(dim=1))
    with torch.no_grad():
        net[2].running_mean.uniform_(-1, 1)
        net[2].running_var.uniform_(0.5, 2)
    net.eval()
    x = torch.randn(7, 6)
    want = net(x).detach().numpy()
    p = tmp_path / "legacy.onnx"
    with warnings.catch_warnings():  # torch 2.9+ calls the TorchScript exporter deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (x,), str(p), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}})
    got = load_onnx(p, note=None)
    got.x = x.numpy()
    np.testing.assert_allclose(softmax(float_forward(got)[-1]), want, rtol=1e-4, atol=1e-6)
    pytest.importorskip("onnxscript")
    p = tmp_path / "dynamo.onnx"
    with warnings.catch_warnings():  # onnxscript's and torch.export's own deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (x,), str(p), dynamo=True, external_data=True,
                          input_names=["x"], output_names=["y"])
    got = load_onnx(p, note=None)
    got.x = x.numpy()
    np.testing.assert_allclose(softmax(float_forward(got)[-1]), want, rtol=1e-4, atol=1e-6)


def test_real_float16_conversion(tmp_path):
    float16 = pytest.importorskip("onnxconverter_common.float16")
    rng = np.random.default_rng(16)
    model, params = skl2onnx_mlp(rng, (4, 8, 3), zipmap="false", scaler=True)
    half = float16.convert_float_to_float16(model, keep_io_types=True)
    x = rng.normal(0, 1, (9, 4)).astype(np.float32)
    z, _, _ = imported(tmp_path, half, x)
    np.testing.assert_allclose(softmax(z), skl_expected(params, x), rtol=0, atol=3e-3)


def test_real_keras_export(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # read when keras is first imported
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(17)
    norm = keras.layers.Normalization(mean=rng.normal(0, 1, 6).tolist(),
                                      variance=rng.uniform(0.5, 3, 6).tolist())
    model = keras.Sequential([keras.Input((6,)), norm, keras.layers.Dense(8),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.Dropout(0.3), keras.layers.Dense(3, "softmax")])
    bn = model.layers[2]
    bn.moving_mean.assign(rng.normal(0, 1, 8))
    bn.moving_variance.assign(rng.uniform(0.5, 2, 8))
    x = rng.normal(0, 1, (5, 6)).astype(np.float32)
    with warnings.catch_warnings():  # the backend's own deprecations (numpy 2's __array__)
        warnings.simplefilter("ignore", DeprecationWarning)
        want = keras.ops.convert_to_numpy(model(x, training=False))
        model.export(str(tmp_path / "k.onnx"), format="onnx", verbose=False)
    z, _, _ = imported(tmp_path, onnx.load(str(tmp_path / "k.onnx")), x, "k2.onnx")
    np.testing.assert_allclose(softmax(z), want, rtol=1e-4, atol=1e-6)
