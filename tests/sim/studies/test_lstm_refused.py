"""Until LSTM layers compile (ESE, issue 12), every command refuses an LSTM model in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [
    ["compiler", "--model", "ese_lstm", "--config", "tiny"],
    ["sim", "--model", "lstm_digits", "--config", "tiny"],
    ["sim.studies.compress", "--model", "lstm_digits", "--config", "tiny"],
    ["sim.studies.sweep", "--model", "ese_lstm", "--param", "pes", "--values", "4"],
    ["sim.studies.report", "--model", "ese_lstm", "--config", "tiny"],
])
def test_lstm_models_refused_in_one_line(args, tmp_path):
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                       env={"EIEGEN_BUILD_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is an LSTM; the compiler does not encode LSTM layers yet" \
        in lines[0], r.stderr
    assert "Traceback" not in r.stderr
