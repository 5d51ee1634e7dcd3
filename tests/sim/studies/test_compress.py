"""python -m sim.studies.compress: Deep Compression with retraining, accuracy at every stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.studies.compress import main, parse_densities
from hw.arch.errors import EIEError
from models.onnx_example import OUT as ONNX_EXAMPLE

ROOT = Path(__file__).resolve().parents[3]


def test_parse_densities():
    assert parse_densities("0.1", 3, [1, 1, 1]) == [0.1, 0.1, 0.1]
    assert parse_densities("0.08,0.09,0.26", 3, None) == [0.08, 0.09, 0.26]
    assert parse_densities(None, 2, (0.5, 0.25)) == [0.5, 0.25]
    with pytest.raises(EIEError, match="2 densities given for 3 layers"):
        parse_densities("0.1,0.2", 3, None)
    with pytest.raises(EIEError, match=r"density must be in \(0, 1\], got 1.5"):
        parse_densities("1.5", 3, None)
    with pytest.raises(EIEError, match="numbers separated by commas"):
        parse_densities("a,b", 2, None)


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "sim.studies.compress", *args],
                          capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("args,msg", [
    (["--model", "mlp_digits", "--density", "0.1,0.2"], "2 densities given for 3 layers"),
    (["--model", "mlp_digits", "--config", "pe8", "--bits", "5"],
     "codebook bits 5 exceed the weight index of config 'pe8'"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "mlp_digits", "--data", "missing.npz"], "data file not found: missing.npz"),
    (["--model", "mlp_digits", "--rounds", "0"], "pruning rounds must be a positive integer"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, msg):
    out = tmp_path / "out"
    r = _cli(*args, "--no-rtl", "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("compress: error: ") and r.stderr.count("\n") == 1
    assert msg in r.stderr
    assert not out.exists()


def _onnx_run(tmp_path, *extra):
    out = tmp_path / "rep"
    code = main(["--model", str(ONNX_EXAMPLE), "--config", "tiny", "--density", "0.5",
                 "--no-rtl", "--out", str(out), *extra])
    return code, json.loads((out / "compress.json").read_text()), out


def test_onnx_model_without_training_data_is_one_shot(tmp_path, capsys):
    code, rep, out = _onnx_run(tmp_path)
    assert code == 0
    assert "no training data" in capsys.readouterr().out
    assert not rep["retrained"] and rep["metric"] == "top-1 agreement with dense float"
    assert rep["accuracy"]["float_dense"] == 1.0  # the model agrees with itself
    assert rep["test_samples"] == 256  # generated inputs: the file has none
    assert "pruned_retrained" not in rep["accuracy"] and "rtl" not in rep["accuracy"]
    assert [m["density"] for m in rep["layers"]] == [0.5, 0.5, 0.5]
    assert (out / "compress.md").read_text().startswith("# Deep Compression of onnx_example")
    assert (out / "compress" / "manifest.json").exists()
    w = np.load(out / "compress_weights.npz")
    for k in range(3):  # the compressed weights are exactly the codebook entries
        np.testing.assert_array_equal(w[f"W{k}"], w[f"codebook{k}"][w[f"index{k}"]]
                                      .astype(np.float32))
    bits = [s["bits"] for s in rep["storage"]]
    assert bits[0] > bits[2] >= bits[3]  # dense > pruned+quantized >= Huffman


def test_onnx_model_retrains_with_data_file(tmp_path):
    """--data gives an imported model training data; labels here: the dense model's classes."""
    from compiler.train import predict
    from models import load_model

    net = load_model(str(ONNX_EXAMPLE))
    params = [a for layer in net.layers for a in (layer.W.astype(np.float64), layer.b)]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16))
    y = predict(params, x, [layer.relu for layer in net.layers])
    data = tmp_path / "data.npz"
    np.savez(data, x_train=x[:200], y_train=y[:200], x=x[200:], y=y[200:])
    code, rep, _ = _onnx_run(tmp_path, "--data", str(data), "--rounds", "2", "--epochs", "2",
                             "--quant-epochs", "2")
    assert code == 0
    assert rep["retrained"] and rep["training"]["train_samples"] == 200
    assert rep["metric"] == "accuracy" and rep["test_samples"] == 100
    assert set(rep["accuracy"]) >= {"pruned_retrained", "quantized_float", "fixed_point_golden"}


def test_bad_data_file(tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, x_train=np.zeros((4, 16)), y_train=np.array([0, 1, 2, 99]))
    with pytest.raises(SystemExit) as e:
        main(["--model", str(ONNX_EXAMPLE), "--config", "tiny", "--data", str(data), "--no-rtl",
              "--out", str(tmp_path / "o")])
    assert e.value.code == 2


@pytest.mark.slow
@pytest.mark.verilator
def test_mlp_digits_deep_compression_through_the_rtl(tmp_path):
    """Retrained + trained-quantized mlp_digits keeps accuracy within 1 point of dense, and the
    RTL's accuracy on the whole test split equals the golden model's (outputs bit-exact)."""
    out = tmp_path / "rep"
    assert main(["--model", "mlp_digits", "--config", "pe8", "--out", str(out)]) == 0
    rep = json.loads((out / "compress.json").read_text())
    acc = rep["accuracy"]
    assert rep["retrained"] and rep["test_samples"] == 359
    assert [m["density"] for m in rep["layers"]] == pytest.approx([0.08, 0.09, 0.26], abs=1e-3)
    assert acc["quantized_float"] >= acc["float_dense"] - 0.01
    assert acc["pruned_retrained"] > acc["pruned_oneshot"]
    assert rep["rtl"]["match"] and rep["rtl"]["samples"] == 359
    assert rep["rtl"]["predictions_equal_golden"]
    assert acc["rtl"] == acc["fixed_point_golden"]
