"""python -m sim.studies.compress: Deep Compression with retraining, accuracy at every stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.studies import compress
from sim.studies.compress import RTL_LSTM, main, parse_densities
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


# ---- networks with LSTM layers ----

def _lstm_file(tmp_path, seq=False, n=120):
    """A small LSTMP + FC user model with a training split: which of 3 input channels has the
    largest sum over the sequence (per frame: the largest running sum, for ``seq``)."""
    from models import save_npz
    from models.lstm import LSTMLayer
    from models.network import Layer, Network

    rng = np.random.default_rng(0)
    lstm = LSTMLayer(name="lstm0", W_x=rng.normal(0, 0.5, (32, 3)),
                     W_r=rng.normal(0, 0.5, (32, 4)), b=np.zeros(32),
                     peep=rng.normal(0, 0.3, (3, 8)), W_ym=rng.normal(0, 0.5, (4, 8)),
                     density=0.5, return_sequences=seq)
    fc = Layer(name="fc1", W=rng.normal(0, 0.5, (3, 4)).astype(np.float32),
               b=np.zeros(3, np.float32), relu=False, density=0.75, act_density=None)
    x = rng.normal(0, 1, (n, 5, 3))
    y = np.argmax(np.cumsum(x, axis=1), axis=-1) if seq else np.argmax(x.sum(axis=1), axis=1)
    path = tmp_path / "seqnet.npz"
    save_npz(Network(name="seqnet", layers=[lstm, fc], x=x[:20], labels=y[:20],
                     synthetic=False, description="test"), path)
    arrays = dict(np.load(path))
    np.savez(path, **arrays, x_train=x[20:], y_train=y[20:])
    return path


@pytest.mark.parametrize("seq", [False, True])
def test_lstm_network_through_the_golden_model(tmp_path, capsys, seq):
    out = tmp_path / "rep"
    code = main(["--model", str(_lstm_file(tmp_path, seq)), "--config", "tiny", "--rounds", "2",
                 "--epochs", "2", "--quant-epochs", "2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "prune round 2/2: densities 50.0/75.0 %" in printed
    assert "RTL stage not run: " + RTL_LSTM in printed
    rep = json.loads((out / "compress.json").read_text())
    assert rep["retrained"] and rep["metric"] == "accuracy"
    assert rep["test_samples"] == (100 if seq else 20) and rep["training"]["clip"] is None
    assert set(rep["accuracy"]) == {"float_dense", "pruned_oneshot", "pruned_retrained",
                                    "kmeans_float", "quantized_float", "fixed_point_golden"}
    assert rep["rtl"] is None and rep["rtl_note"] == RTL_LSTM
    assert [m["name"] for m in rep["layers"]] == ["lstm0.gates", "lstm0.proj", "fc1"]
    assert f"| RTL (Verilator) | {RTL_LSTM} | |" in \
        (out / "compress.md").read_text()
    w = np.load(out / "compress_weights.npz")
    gates = np.hstack([w["lstm0_Wx"], w["lstm0_Wr"]])
    # the compressed matrices are exactly their codebook's entries, one codebook per product
    np.testing.assert_array_equal(gates, w["codebook0_gates"][w["index0_gates"]]
                                  .astype(np.float32))
    np.testing.assert_array_equal(w["lstm0_Wym"], w["codebook0_proj"][w["index0_proj"]]
                                  .astype(np.float32))
    assert w["codebook0_gates"].shape == (16,) and w["codebook0_gates"][0] == 0
    assert np.mean(w["index0_gates"] > 0) == 0.5 and np.mean(w["index1"] > 0) == 0.75


def test_lstm_data_of_the_wrong_shape(tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, x_train=np.zeros((4, 3)), y_train=np.zeros(4, int))
    r = _cli("--model", str(_lstm_file(tmp_path)), "--config", "tiny", "--data", str(data),
             "--no-rtl", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.strip().endswith(r"x_train has shape (4, 3), expected (n, T, 3)")


def test_balanced_lstm_run_goes_to_its_own_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path / "build"))
    model = str(_lstm_file(tmp_path))
    assert main(["--model", model, "--config", "tiny", "--balance", "--rounds", "1",
                 "--epochs", "1", "--quant-epochs", "1"]) == 0
    found = list((tmp_path / "build").rglob("compress.json"))
    assert len(found) == 1 and found[0].parent.name == "tiny+balance"
    rep = json.loads(found[0].read_text())
    assert rep["balance"] and "load-balance-aware pruning" in (found[0].parent /
                                                              "compress.md").read_text()


@pytest.mark.slow
def test_lstm_digits_within_one_point_of_dense(tmp_path):
    """make compress MODEL=lstm_digits: pruned + quantized within 1 point of dense float, the
    golden model's accuracy in the table."""
    out = tmp_path / "rep"
    assert main(["--model", "lstm_digits", "--out", str(out)]) == 0
    rep = json.loads((out / "compress.json").read_text())
    acc = rep["accuracy"]
    assert rep["retrained"] and rep["test_samples"] == 359 and rep["config"] == "eie64"
    assert acc["float_dense"] == pytest.approx(0.9777, abs=1e-4)
    assert acc["quantized_float"] >= acc["float_dense"] - 0.01
    assert acc["pruned_retrained"] > acc["pruned_oneshot"] + 0.3
    assert "fixed_point_golden" in acc and rep["rtl_note"]
    assert [round(m["density"], 3) for m in rep["layers"]][:2] == [0.112, 0.112]


@pytest.mark.slow
def test_ese_lstm_is_one_shot_and_bounded(tmp_path):
    """ese_lstm (3.25 M weights, no labels, no training data): one-shot + k-means, agreement."""
    import time

    out = tmp_path / "rep"
    t0 = time.perf_counter()
    assert main(["--model", "ese_lstm", "--out", str(out)]) == 0
    rep = json.loads((out / "compress.json").read_text())
    assert not rep["retrained"] and rep["balance"]  # ese_lstm is pruned load-balance-aware
    assert rep["metric"] == "top-1 agreement with dense float" and rep["test_samples"] == 64
    assert rep["accuracy"]["float_dense"] == 1.0 and "fixed_point_golden" in rep["accuracy"]
    assert time.perf_counter() - t0 < 300


def test_an_output_that_cannot_be_written_is_refused_before_the_study(tmp_path, monkeypatch):
    """--out below a file: one line before any pruning or training (not after the study)."""
    def not_reached(*a, **k):
        raise AssertionError("the study ran before the output was checked")

    monkeypatch.setattr(compress, "prune_stage", not_reached)
    (tmp_path / "f").write_text("a file")
    with pytest.raises(EIEError, match=r"f"):
        compress.run(compress.build_parser().parse_args(
            ["--model", str(ONNX_EXAMPLE), "--config", "tiny", "--no-rtl",
             "--out", str(tmp_path / "f" / "out")]), progress=lambda m: None)
