"""Until the RTL of LSTMs exists (ESE part 2, issue 13), the commands that need it refuse an LSTM
model in one line that says what runs instead."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [
    ["sim", "--model", "lstm_digits", "--config", "eie64"],
    ["sim.studies.sweep", "--model", "ese_lstm", "--param", "pes", "--values", "4"],
    ["sim.studies.report", "--model", "lstm_digits", "--config", "eie64"],
])
def test_lstm_models_refused_in_one_line(args, tmp_path):
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                       env={"EIEGEN_BUILD_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert ("is an LSTM, and the RTL of LSTM layers is not generated yet" in lines[-1] or
            "the RTL runs a network of one LSTM layer with a projection so far" in lines[-1]), \
        r.stderr
    assert all(not line.startswith(("error", "Error")) for line in lines[:-1]), r.stderr
    assert "Traceback" not in r.stderr
