"""The regression farm end to end on a real local Dask cluster of two workers (127.0.0.1):
20 cases over small configurations pass every check; a deliberately broken bench
(``EIEGEN_TB_FAULT=flip`` flips one output bit) is caught, shrunk and saved as a reproducer
whose command fails the same way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hw.arch.config import PRESETS
from sim.regress.__main__ import main

TINY_LSTM = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)


def _configs(tmp_path) -> str:
    p = tmp_path / "tiny-lstm.json"
    p.write_text(TINY_LSTM.to_json())
    return f"tiny,pe2,{p}"


@pytest.mark.verilator
@pytest.mark.slow
def test_farm_of_20_cases_on_two_local_workers(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["--n", "20", "--seed", "4", "--configs", _configs(tmp_path), "--workers", "2",
               "--host-share", "0.2", "--out", str(out)])
    printed = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert rc == 0, (printed, s["failures"], s["rejected"])
    assert "2 Dask worker(s) (local cluster on 127.0.0.1)" in printed
    c = s["counts"]
    assert c["fail"] == c["error"] == 0 and c["pass"] >= 15, c
    assert s["per_check"]["host_load"]["pass"] >= 1  # some cases loaded through the host
    assert set(s["per_config"]) == {"tiny", "pe2", "tiny-lstm"}
    assert s["per_pattern"].get("lstm", {}).get("pass", 0) >= 1
    xml = (out / "junit.xml").read_text()
    assert xml.count("<testcase") == 20 and 'failures="0"' in xml
    assert (out / "summary.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.verilator
def test_a_broken_bench_is_caught_shrunk_and_saved(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EIEGEN_TB_FAULT", "flip")
    out = tmp_path / "run"
    rc = main(["--n", "2", "--seed", "5", "--configs", "tiny", "--workers", "2",
               "--shrink-budget", "4", "--host-share", "0", "--out", str(out)])
    assert rc == 1
    s = json.loads((out / "summary.json").read_text())
    failed = [f for f in s["failures"] if f["status"] == "fail"]
    assert failed and all("outputs" in f["message"] for f in failed), s
    f = failed[0]
    assert f["shrunk"]["samples"] == 1  # shrunk: one input sample is enough to fail
    files = out / "failures"
    npz, cfg, cmd = (files / f"{f['id']}{ext}" for ext in (".npz", ".json", ".txt"))
    assert npz.exists() and cfg.exists() and cmd.exists()
    with np.load(npz) as z:
        assert z["x"].shape[0] == 1
    assert cmd.read_text().startswith("EIEGEN_TB_FAULT=flip python -m sim --model ")
    # the reproducer: the saved case through python -m sim fails with the fault, passes without
    args = [sys.executable, "-m", "sim", "--model", str(npz), "--config", str(cfg)]
    env = {**os.environ, "EIEGEN_BUILD_DIR": str(tmp_path / "b")}
    env.pop("EIEGEN_TB_FAULT")
    assert subprocess.run(args, env=env, capture_output=True).returncode == 0
    env["EIEGEN_TB_FAULT"] = "flip"
    assert subprocess.run(args, env=env, capture_output=True).returncode == 1


@pytest.mark.verilator
@pytest.mark.slow
def test_ctrl_c_returns_the_partial_summary(tmp_path):
    """Ctrl-C cancels the queued cases, writes the partial summary and exits 130 promptly."""
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "sim.regress", "--n", "60", "--seed", "6",
                          "--configs", "tiny", "--workers", "1", "--batch", "1",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True,
                         preexec_fn=_default_sigint)
    for line in p.stdout:  # the first progress line: cases are completing
        if "/60 cases" in line:
            break
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert time.monotonic() - t0 < 30
    s = json.loads((out / "summary.json").read_text())
    assert s["interrupted"] and 1 <= s["cases"] < 60 and not s["ok"]


def _default_sigint():
    """In the child: SIGINT to its default, so that Python installs its KeyboardInterrupt
    handler (a test run started in the background inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
