"""ONNX import (models.onnx_import): the imported network computes what the ONNX graph computes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.options import Options
from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from models import float_forward, load_model
from models.onnx_example import OUT as EXAMPLE
from models.onnx_example import build_example
from models.onnx_import import load_onnx
from sim.flow.compile import compile_network
from sim.flow.paths import output_dir

ROOT = Path(__file__).resolve().parents[2]


def reference_outputs(model, x):
    """The ONNX graph run by onnx's own reference evaluator (independent of the importer)."""
    return ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})[0]


def imported_outputs(path, x):
    net = load_model(str(path))
    net.x = x
    return float_forward(net)[-1]


def test_shipped_example_is_what_the_script_builds():
    assert EXAMPLE.read_bytes() == build_example().SerializeToString()


def test_example_import_reproduces_the_onnx_outputs():
    net = load_model(str(EXAMPLE))
    assert [layer.W.shape for layer in net.layers] == [(32, 16), (24, 32), (10, 24)]
    assert [layer.relu for layer in net.layers] == [True, True, False]
    assert net.labels is None and net.x.shape == (1, 16)
    x = np.random.default_rng(0).standard_normal((20, 16)).astype(np.float32)
    ref = reference_outputs(onnx.load(str(EXAMPLE)), x)
    np.testing.assert_allclose(imported_outputs(EXAMPLE, x), ref, rtol=1e-5, atol=1e-5)


def _model(nodes, inits, n_in=4, n_out=3, extra_inputs=()):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n_in]),
                     *extra_inputs],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(a, np.float32), k)
                     for k, a in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _save(tmp_path, model, name="m.onnx"):
    p = tmp_path / name
    onnx.save(model, str(p))
    return p


@pytest.mark.parametrize("attrs,C", [
    ({"transA": 1, "alpha": 1.5}, (3,)),
    ({"transB": 1, "beta": -0.5}, (1, 3)),
    ({"alpha": 2.0, "beta": 3.0}, (1,)),
])
def test_gemm_attributes(tmp_path, attrs, C):
    rng = np.random.default_rng(1)
    B = rng.standard_normal((3, 4) if attrs.get("transB") else (4, 3))
    model = _model([helper.make_node("Gemm", ["x", "B", "C"], ["y"], **attrs)],
                   {"B": B, "C": rng.standard_normal(C)})
    x = rng.standard_normal((5, 4)).astype(np.float32)
    # transA: the graph's input is feature-major (in, n); eiegen's vectors are the rows of x
    ref = reference_outputs(model, x.T.copy() if attrs.get("transA") else x)
    np.testing.assert_allclose(imported_outputs(_save(tmp_path, model), x), ref, rtol=1e-5,
                               atol=1e-5)


def test_matmul_add_relu_chain(tmp_path):
    rng = np.random.default_rng(2)
    model = _model([helper.make_node("MatMul", ["x", "W"], ["h"]),
                    helper.make_node("Add", ["b", "h"], ["hb"]),  # bias as the first operand
                    helper.make_node("Relu", ["hb"], ["a"]),
                    helper.make_node("MatMul", ["a", "W2"], ["y"])],
                   {"W": rng.standard_normal((4, 6)), "b": rng.standard_normal(6),
                    "W2": rng.standard_normal((6, 3))})
    x = rng.standard_normal((7, 4)).astype(np.float32)
    net = load_model(str(_save(tmp_path, model)))
    assert [layer.relu for layer in net.layers] == [True, False]
    np.testing.assert_allclose(imported_outputs(_save(tmp_path, model), x),
                               reference_outputs(model, x), rtol=1e-5, atol=1e-5)


def test_unsupported_op_names_the_op(tmp_path):
    # a Softmax is dropped only at the end (tests/models/test_onnx_tolerant.py); not inside
    model = _model([helper.make_node("Gemm", ["x", "B"], ["h"], transB=1),
                    helper.make_node("Softmax", ["h"], ["p"], name="probs"),
                    helper.make_node("Gemm", ["p", "B2"], ["y"], transB=1)],
                   {"B": np.ones((3, 4)), "B2": np.ones((3, 3))})
    with pytest.raises(EIEError, match=r"unsupported ONNX operator Softmax \(node 'probs'\): "
                                       "a Softmax is dropped only after the last layer"):
        load_onnx(_save(tmp_path, model))


def test_unsupported_op_cli_is_one_line_exit_2(tmp_path):
    model = _model([helper.make_node("Sigmoid", ["x"], ["y"], name="act")], {})
    p = _save(tmp_path, model)
    r = subprocess.run([sys.executable, "-m", "compiler", "--model", str(p), "--config", "tiny",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "unsupported ONNX operator Sigmoid (node 'act')" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("nodes,inits,extra,match", [
    # the weight is a second graph input, not a constant
    ([helper.make_node("MatMul", ["x", "W"], ["y"])], {}, "W",
     r"exactly one input, got 2 \(x, W\)"),
    ([helper.make_node("MatMul", ["x", "x"], ["y"])], {}, None, "must be a constant"),
    # a branch: the input feeds two nodes (the graph output is computed from both)
    ([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("MatMul", ["x", "W"], ["g"]),
      helper.make_node("Add", ["h", "g"], ["y"])],
     {"W": np.ones((4, 4))}, None, r"tensor 'x' feeds 2 nodes .* not a single chain"),
    # a skip connection: Add of two computed tensors
    ([helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
      helper.make_node("Add", ["h", "x"], ["y"], name="skip")],
     {"W": np.ones((4, 4))}, None, r"'x' feeds 2 nodes \(MatMul 'fc', Add 'skip'\); .* skip "),
    ([helper.make_node("Relu", ["x"], ["y"])], {}, None, "Relu must follow"),
    ([helper.make_node("Gemm", ["x", "B", "C"], ["y"])],
     {"B": np.ones((4, 3)), "C": np.ones(5)}, None, r"bias has shape \(5,\)"),
])
def test_graphs_that_are_not_chains(tmp_path, nodes, inits, extra, match):
    extra_inputs = [helper.make_tensor_value_info(extra, TensorProto.FLOAT, [4, 3])] if extra \
        else []
    with pytest.raises(EIEError, match=match):
        load_onnx(_save(tmp_path, _model(nodes, inits, extra_inputs=extra_inputs)))


def test_bad_files(tmp_path):
    with pytest.raises(EIEError, match="not found"):
        load_model(str(tmp_path / "missing.onnx"))
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 8)
    with pytest.raises(EIEError, match="not a valid ONNX model"):
        load_model(str(p))


def test_example_compiles(tmp_path):
    """The imported model goes through the compiler like an .npz model."""
    net = load_model(str(EXAMPLE))
    compiled = compile_network(net, PRESETS["tiny"], Options(density=0.5),
                               progress=lambda msg: None)
    assert [m["rows"] for m in compiled.manifest["layers"]] == [32, 24, 10]
    out = output_dir(str(EXAMPLE), PRESETS["tiny"])
    assert out.name == "tiny" and out.parent.name.startswith("onnx_example-onnx-")


# ---- LSTM ----

def lstm_model(rng, n_in=4, H=5, n_out=3, peephole=True, last=True):
    """X (T, n, in) -> LSTM -> Y_h (last frame) or Y (every frame) -> Squeeze -> Gemm/MatMul."""
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, n_in)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, H)).astype(np.float32), "R"),
             numpy_helper.from_array(rng.normal(0, 0.5, (1, 8 * H)).astype(np.float32), "B"),
             numpy_helper.from_array(np.array([0 if last else 1], np.int64), "axes"),
             numpy_helper.from_array(rng.normal(0, 0.5, (H, n_out)).astype(np.float32), "Wfc")]
    lstm_in = ["X", "W", "R", "B", "", "", ""]
    if peephole:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (1, 3 * H)).astype(np.float32),
                                             "P"))
        lstm_in.append("P")
    nodes = [helper.make_node("LSTM", lstm_in, ["Y", "Y_h"], name="lstm", hidden_size=H),
             helper.make_node("Squeeze", ["Y_h" if last else "Y", "axes"], ["s"], name="sq"),
             helper.make_node("MatMul", ["s", "Wfc"], ["out"], name="fc")]
    g = helper.make_graph(nodes, "lstm", [helper.make_tensor_value_info(
        "X", TensorProto.FLOAT, ["T", "n", n_in])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("last", [False, True])
def test_lstm_matches_reference_evaluator(tmp_path, peephole, last):
    rng = np.random.default_rng([peephole, last])
    model = lstm_model(rng, peephole=peephole, last=last)
    path = tmp_path / "lstm.onnx"
    onnx.save(model, str(path))
    x = rng.normal(0, 1, (7, 2, 4)).astype(np.float32)  # (T, n, in)
    want = reference_outputs(model, x)
    net = load_model(str(path))
    lstm = net.layers[0]
    assert lstm.name == "lstm0" and lstm.return_sequences is not last
    assert lstm.has_peepholes is peephole and not lstm.has_projection
    assert net.x.shape == (1, 8, 4)  # generated: one sequence of 8 frames
    net.x = x.transpose(1, 0, 2)  # eiegen's sequences are (n, T, in)
    got = float_forward(net)[-1]
    got = got if last else got.transpose(1, 0, 2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("attrs, message", [
    ({"direction": "bidirectional"}, "direction='bidirectional' is not supported"),
    ({"clip": 3.0}, "clip=3.0 is not supported"),
    ({"input_forget": 1}, "input_forget=1 is not supported"),
    ({"activations": ["Relu", "Tanh", "Tanh"]}, "activations=.* is not supported"),
])
def test_lstm_refusals(tmp_path, attrs, message):
    model = lstm_model(np.random.default_rng(0))
    model.graph.node[0].attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(EIEError, match=message):
        load_model(str(path))
