"""--data on make sim, make report and make compress: the user's inputs go into the compile (a
directory of their own), through the golden model and the RTL, and the accuracy of the float
model, the golden model and the RTL is printed and written (sim.studies.accuracy).

The RTL here is a stand-in made of the cycle model and the golden outputs (no Verilator), except
in the one test marked ``verilator``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler.manifest import load_manifest
from compiler.options import Options
from hw.arch.config import PRESETS
from models.data_file import file_digest, load_data, with_data
from models.lstm import LSTMLayer
from models.network import Layer, Network, float_forward
from sim.flow.compile import compile_network
from sim.flow.paths import output_dir
from sim.flow.stale import compile_key
from sim.ref.cycle_model import run_model
from sim.ref.result import RunResult
from sim.rtl.runner import expected_outputs
import sim.studies.simulate as simulate_mod
from compiler.output import emit
from sim.__main__ import main as sim_main
from sim.studies.report import Doc, ReportInputs, section_accuracy

ROOT = Path(__file__).resolve().parents[3]
TINY = PRESETS["tiny"]
VALUES = np.array([-1.0, -0.5, 0.5, 1.0])  # exact in any codebook that has them


def fake_rtl(out, cfg, *, samples=None, waves=False, preload=True, layer_outputs=False,
             counter_samples=1, progress=print, progress_every=None, calls=None):
    """The RTL's result as the cycle model and the golden model give it (they equal the RTL's:
    tests/sim/rtl), so that the flow around the RTL runs without Verilator."""
    if calls is not None:
        calls.append((list(samples), counter_samples))
        if progress_every:
            progress(f"(progress every {progress_every} s)")
    res = run_model(out, cfg, samples=samples, counter_samples=counter_samples)
    man = load_manifest(out)
    res.outputs = expected_outputs(out, man, res.samples)
    with np.load(Path(out) / "golden.npz") as z:
        outs = [z[f"out{li}"] for li in range(len(man["layers"]))]
    res.layer_outputs = [[o[s].tolist() for o in outs] for s in res.samples[:counter_samples]]
    res.expected, res.match = res.outputs, True
    res.seconds = {"build": 0.0, "simulate": 0.01, "run": 0.001 * len(res.samples)}
    res.build = {"verilator_version": "stand-in"}
    return res


@pytest.fixture
def rtl_calls(monkeypatch, tmp_path):
    """The stand-in RTL in place of Verilator's, a build root of the test's own."""
    calls = []
    monkeypatch.setattr(simulate_mod, "run_rtl",
                        lambda *a, **k: fake_rtl(*a, **k, calls=calls))
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path / "build"))
    return calls


def exact_model(tmp_path, n=40, wrong=10):
    """A 6-5-4 MLP whose weights (halves and ones) and inputs (quarters) fixed point holds
    exactly, its data file with labels (the float model's class; ``wrong`` of them changed),
    and the NumPy logits."""
    rng = np.random.default_rng(5)
    W0, W1 = rng.choice(VALUES, (5, 6)), rng.choice(VALUES, (4, 5))
    model = tmp_path / "mlp.npz"
    np.savez(model, W0=W0, b0=np.zeros(5), W1=W1, b1=np.zeros(4))
    x = rng.integers(0, 9, (50 * n, 6)) / 4
    logits = np.maximum(x @ W0.T, 0) @ W1.T
    top2 = np.sort(logits, axis=1)[:, -2:]
    keep = np.flatnonzero(top2[:, 1] > top2[:, 0])[:n]  # no ties: one top-1 class
    x, logits = x[keep], logits[keep]
    y = np.argmax(logits, axis=1)
    y[:wrong] = (y[:wrong] + 1) % 4
    data = tmp_path / "data.npz"
    np.savez(data, x=x, y=y)
    return model, data, x, y, logits


def _accuracy_line(text: str) -> dict:
    m = re.search(r"accuracy on (\d+) samples .*: float model ([\d.]+), golden model ([\d.]+), "
                  r"RTL ([\d.]+)", text)
    assert m, text
    return {"samples": int(m[1]), "float": float(m[2]), "golden": float(m[3]),
            "rtl": float(m[4])}


def test_the_data_has_a_key_and_a_directory_of_its_own(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, x=np.zeros((2, 6)))
    np.savez(b, x=np.ones((2, 6)))
    da, db = file_digest(a), file_digest(b)
    base = output_dir("mlp_digits", TINY, Options(balance=True), 3)
    with_a = output_dir("mlp_digits", TINY, Options(balance=True), 3, da)
    assert with_a.parent == base.parent and with_a.name == f"{base.name}+data-{da[:8]}"
    assert with_a != output_dir("mlp_digits", TINY, Options(balance=True), 3, db)
    key = compile_key("mlp_digits", 0, TINY.digest())
    assert "data_sha256" not in key
    assert compile_key("mlp_digits", 0, TINY.digest(), data_digest=da)["data_sha256"] == da
    assert compile_key("mlp_digits", 0, TINY.digest(), data_digest=da) != \
        compile_key("mlp_digits", 0, TINY.digest(), data_digest=db)


def test_make_sim_on_data_prints_the_accuracy_numpy_computes(tmp_path, rtl_calls, capsys):
    model, data, x, y, logits = exact_model(tmp_path)
    expected = float(np.mean(np.argmax(logits, 1) == y))
    assert expected == 0.75  # 10 of 40 labels changed
    # the model alone first: its directory must survive the run on the data
    assert sim_main(["--model", str(model), "--config", "tiny"]) == 0
    plain_dir = output_dir(str(model), TINY)
    before = (plain_dir / "manifest.json").read_bytes()
    capsys.readouterr()

    assert sim_main(["--model", str(model), "--config", "tiny", "--data", str(data)]) == 0
    text = capsys.readouterr().out
    got = _accuracy_line(text)
    # fixed point is exact on this model: golden = RTL = float = NumPy's argmax
    assert got == {"samples": 40, "float": expected, "golden": expected, "rtl": expected}
    assert "(fixed point: +0.00 points against float)" in text
    out = output_dir(str(model), TINY, Options(), 0, file_digest(data))
    assert out.name.startswith("tiny+data-") and out != plain_dir
    assert (plain_dir / "manifest.json").read_bytes() == before
    # the data's inputs are the compiled ones, in golden.npz and the manifest
    man = load_manifest(out)
    assert man["n_samples"] == 40 and man["data"]["sha256"] == file_digest(data)
    with np.load(out / "golden.npz") as z:
        np.testing.assert_array_equal(z["in0"], np.round(x * 2 ** TINY.act_frac))
        np.testing.assert_array_equal(z["out1"], logits * 2 ** TINY.act_frac)
    rep = json.loads((out / "report.json").read_text())
    acc = rep["accuracy"]
    assert acc["golden"] == acc["rtl"] == acc["float"] == expected and acc["labels"]
    assert acc["agreement_with_float"] == {"golden": 1.0, "rtl": 1.0}
    assert acc["compile"]["fixed_point_golden"] == expected
    cb = rep["codebook"]
    assert [r["used"] for r in cb["layers"]] == [4, 4]  # -1, -0.5, 0.5, 1
    assert all(r["entries"] == 15 and r["rms_error"] == 0.0 for r in cb["layers"])
    # every sample in one simulator run, which tells its progress while it runs
    assert rtl_calls[-1] == (list(range(40)), 1)
    assert f"(progress every {simulate_mod.PROGRESS_S} s)" in text


def test_a_lossy_model_golden_and_float_as_numpy_has_them(tmp_path, rtl_calls, capsys):
    rng = np.random.default_rng(7)
    W0, W1 = rng.normal(size=(12, 6)), rng.normal(size=(3, 12))
    model = tmp_path / "lossy.npz"
    np.savez(model, W0=W0, b0=np.zeros(12), W1=W1, b1=np.zeros(3))
    x = np.abs(rng.normal(size=(30, 6)))
    y = rng.integers(0, 3, 30)
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=y)
    assert sim_main(["--model", str(model), "--config", "pe1", "--data", str(data),
                     "--samples", "20"]) == 0
    got = _accuracy_line(capsys.readouterr().out)
    out = output_dir(str(model), PRESETS["pe1"], Options(), 0, file_digest(data))
    with np.load(out / "golden.npz") as z:
        golden = z["out1"][:20]
    f32 = np.float32
    h = np.maximum((W0.astype(f32) @ x[:20].T.astype(f32)).T, 0)
    float_logits = (W1.astype(f32) @ h.T.astype(f32)).T
    assert got["samples"] == 20
    assert got["float"] == round(float(np.mean(np.argmax(float_logits, 1) == y[:20])), 4)
    assert got["golden"] == round(float(np.mean(np.argmax(golden, 1) == y[:20])), 4)
    assert got["rtl"] == got["golden"]
    rep = json.loads((out / "report.json").read_text())
    assert rep["accuracy"]["of"] == 30 and rep["accuracy"]["samples"] == 20
    layer1 = rep["codebook"]["layers"][1]
    rms = np.sqrt(np.mean((golden / 2 ** 8 - float_logits) ** 2))
    assert layer1["rms_error"] == pytest.approx(rms, rel=1e-6) and layer1["rms_error"] > 0


def test_without_labels_the_agreement_with_the_float_model(tmp_path, rtl_calls, capsys):
    model, data, x, _, logits = exact_model(tmp_path, n=6)
    np.savez(data, x=x)  # no y
    assert sim_main(["--model", str(model), "--config", "tiny", "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert "no labels (y) in the data: top-1 agreement with the float model on 6 samples" \
        in text and "golden model 1.0000, RTL 1.0000" in text
    rep = json.loads((output_dir(str(model), TINY, Options(), 0, file_digest(data))
                      / "report.json").read_text())
    assert not rep["accuracy"]["labels"] and "golden" not in rep["accuracy"]
    assert rtl_calls == [(list(range(6)), 1)]  # few samples: one run
    # the report's section on the data, from that report.json
    c = ReportInputs(cfg=TINY, table=None, cpu_watts=1.0, report=rep, manifest={}, pub={},
                     er={}, base=[], ar=None)
    doc = Doc("t")
    section_accuracy(doc, c)
    md = doc.markdown()
    assert "## Accuracy on the data, and what the codebooks cost" in md
    assert "has no labels `y`" in md and "| RTL (Verilator) | 100.00 % |" in md
    assert "| fc0 | 4 of 15 (4-bit codebook) |" in md


def test_a_long_run_is_one_simulator_run_with_progress_lines(tmp_path, rtl_calls, capsys):
    model, data, *_ = exact_model(tmp_path, n=30)
    assert sim_main(["--model", str(model), "--config", "tiny", "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert rtl_calls == [(list(range(30)), 1)]  # one run, the counters of the first sample
    assert f"(progress every {simulate_mod.PROGRESS_S} s)" in text
    rep = json.loads((output_dir(str(model), TINY, Options(), 0, file_digest(data))
                      / "report.json").read_text())
    assert rep["samples_simulated"] == 30 and rep["totals"]["mismatches"] == 0
    assert rep["sim"]["run_s"] == 0.01  # the stand-in's simulator seconds


def test_a_model_with_labels_of_its_own_shows_the_float_model_too(tmp_path, rtl_calls, capsys):
    model, data, x, y, _ = exact_model(tmp_path, n=5, wrong=1)
    arrays = dict(np.load(model))
    np.savez(model, **arrays, x=x, y=y)  # the model's own labelled inputs, no --data
    assert sim_main(["--model", str(model), "--config", "tiny"]) == 0
    text = capsys.readouterr().out
    assert "accuracy on 5 test images, top-1 against the labels: float model 0.8000, golden " \
           "model 0.8000, RTL 0.8000" in text


def _cli(*args, build):
    env = dict(os.environ, EIEGEN_BUILD_DIR=str(build))
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def test_bad_data_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    model, data, *_ = exact_model(tmp_path, n=4)
    data.write_text("x,y\n1,2\n")
    build = tmp_path / "build"
    r = _cli("--model", str(model), "--config", "tiny", "--data", str(data), build=build)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("sim: error: ") and "not a NumPy .npz archive" in r.stderr
    np.savez(data, x=np.zeros((3, 5)))
    r = _cli("--model", str(model), "--config", "tiny", "--data", str(data), build=build)
    assert r.returncode == 2 and "the model's input width is 6" in r.stderr
    assert not build.exists()


def test_compress_on_data_without_labels_runs_them_into_their_own_directory(tmp_path,
                                                                            monkeypatch):
    from sim.studies.compress import main as compress_main

    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path / "build"))
    model, data, x, _, _ = exact_model(tmp_path, n=12)
    np.savez(data, x=x)
    assert compress_main(["--model", str(model), "--config", "tiny", "--data", str(data),
                          "--no-rtl"]) == 0
    found = list((tmp_path / "build").rglob("compress.json"))
    assert len(found) == 1 and found[0].parent.name == f"tiny+data-{file_digest(data)[:8]}"
    rep = json.loads(found[0].read_text())
    assert rep["metric"] == "top-1 agreement with dense float" and rep["test_samples"] == 12
    assert rep["data"] == {"path": str(data), "sha256": file_digest(data), "test": True}
    assert f"12 test samples of `{data}`" in (found[0].parent / "compress.md").read_text()
    with np.load(found[0].parent / "compress" / "golden.npz") as z:
        np.testing.assert_array_equal(z["in0"], np.round(x * 2 ** TINY.act_frac))


def test_compress_refuses_bad_test_labels_as_make_sim_does(tmp_path):
    from sim.studies.compress import main as compress_main

    model, data, x, _, _ = exact_model(tmp_path, n=4)
    np.savez(data, x=x, y=np.array([0, 1, 2, 9]))
    with pytest.raises(SystemExit) as e:
        compress_main(["--model", str(model), "--config", "tiny", "--data", str(data),
                       "--no-rtl", "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and not (tmp_path / "o").exists()


def test_an_lstm_networks_accuracy_on_its_golden_output(tmp_path):
    rng = np.random.default_rng(4)
    lstm = LSTMLayer(name="lstm0", W_x=rng.normal(0, 0.5, (16, 3)),
                     W_r=rng.normal(0, 0.5, (16, 4)), b=np.zeros(16), density=1.0)
    fc = Layer(name="fc1", W=rng.normal(0, 0.5, (3, 4)).astype(np.float32),
               b=np.zeros(3, np.float32), relu=False, density=1.0, act_density=None)
    net = Network(name="seq", layers=[lstm, fc], x=np.zeros((1, 2, 3), np.float32),
                  labels=None, synthetic=False, description="test")
    x = rng.normal(size=(5, 12, 3))  # (T, n, in): y's 12 labels say so
    y = rng.integers(0, 3, 12)
    p = tmp_path / "d.npz"
    np.savez(p, x=x, y=y)
    data = load_data(p, net)
    net = with_data(net, data)
    compiled = compile_network(net, TINY, progress=lambda m: None)
    out = tmp_path / "out"
    emit(compiled, out)
    samples = [0, 3, 7]
    res = RunResult(samples=samples, cycles=[],
                    outputs=compiled.extra["output"][samples].tolist())
    report = {}
    with np.load(out / "golden.npz") as z:
        gold = {"output": z["output"]}
    simulate_mod.add_accuracy(report, out, TINY, load_manifest(out), res, gold, net, data)
    acc = report["accuracy"]
    want_golden = np.mean(np.argmax(compiled.extra["output"][samples], 1) == y[samples])
    want_float = np.mean(np.argmax(float_forward(net)[-1][samples], 1) == y[samples])
    assert acc["golden"] == acc["rtl"] == want_golden and acc["float"] == want_float
    assert report["data"]["samples"] == 12
    assert len(report["codebook"]["layers"]) == len(load_manifest(out)["layers"])
    assert report["codebook"]["output"]["rms_error"] > 0


@pytest.mark.slow
@pytest.mark.verilator
def test_the_rtl_on_the_users_data(tmp_path, monkeypatch, capsys):
    """The one RTL run: pe1, the exact model, 10 labelled samples (two parts: 8 + 2)."""
    model, data, x, y, logits = exact_model(tmp_path, n=10, wrong=3)
    out = output_dir(str(model), PRESETS["pe1"], Options(), 0, file_digest(data))
    try:
        assert sim_main(["--model", str(model), "--config", "pe1", "--data", str(data)]) == 0
        got = _accuracy_line(capsys.readouterr().out)
        assert got == {"samples": 10, "float": 0.7, "golden": 0.7, "rtl": 0.7}
        rep = json.loads((out / "report.json").read_text())
        assert rep["totals"]["outputs_match_golden"] and rep["totals"]["mismatches"] == 0
        assert rep["sim"]["simulator"] == "verilator"
    finally:
        import shutil

        shutil.rmtree(out.parent, ignore_errors=True)


def test_make_report_on_data_has_the_accuracy_section(tmp_path, rtl_calls, capsys):
    from sim.studies.report import main as report_main

    model, data, *_ = exact_model(tmp_path, n=12, wrong=3)
    assert report_main(["--model", str(model), "--config", "tiny", "--data", str(data),
                        "--no-area"]) == 0
    out = output_dir(str(model), TINY, None, 0, file_digest(data))
    md = (out / "report.md").read_text()
    assert "## Accuracy on the data, and what the codebooks cost" in md
    assert "| golden model (fixed point, bit-exact with the RTL) | 75.00 % | +0.00 pp |" in md
    assert "| fc1 | 4 of 15 (4-bit codebook) | 20 |" in md
    assert json.loads((out / "report_energy.json").read_text())["accuracy"]["golden"] == 0.75
    assert not (output_dir(str(model), TINY) / "report.md").exists()
