"""sim.flow.stale: a compile's key covers what the model file's weights live in."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models import load_model
from sim.flow.stale import compile_key


def matmul_model(W):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", W.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(W.astype(np.float32), "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save_external(model, path):
    """As torch's dynamo exporter does: the weights in ``<name>.onnx.data`` beside it."""
    onnx.save(model, str(path), save_as_external_data=True, location=f"{path.name}.data",
              size_threshold=0)


def key(path) -> str:
    return compile_key(str(path), 0, "cfg")["model_file_sha256"]


def test_changing_only_the_external_data_changes_the_key(tmp_path):
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    W_old, W_new = rng.normal(0, 1, (4, 3)), rng.normal(0, 1, (4, 3))
    save_external(matmul_model(W_old), a / "m.onnx")
    save_external(matmul_model(W_new), b / "m.onnx")
    # the re-export: same graph, so the same .onnx bytes; only the .data file differs
    assert (a / "m.onnx").read_bytes() == (b / "m.onnx").read_bytes()
    before = key(a / "m.onnx")
    shutil.copy(b / "m.onnx.data", a / "m.onnx.data")
    assert key(a / "m.onnx") != before
    np.testing.assert_allclose(load_model(str(a / "m.onnx")).layers[0].W,
                               W_new.T.astype(np.float32))
    assert key(a / "m.onnx") == key(b / "m.onnx")  # the same bytes: the same key


def test_a_model_without_external_data_keeps_its_key(tmp_path):
    p = tmp_path / "m.onnx"
    onnx.save(matmul_model(np.ones((4, 3))), str(p))
    assert key(p) == hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def test_a_missing_external_file_still_gives_a_key(tmp_path):
    p = tmp_path / "m.onnx"
    save_external(matmul_model(np.ones((4, 3))), p)
    with_data = key(p)
    (tmp_path / "m.onnx.data").unlink()
    assert key(p) != with_data  # loading it then says what is missing
