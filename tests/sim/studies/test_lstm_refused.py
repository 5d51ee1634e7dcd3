"""The commands that cannot run an LSTM refuse it in one line that says what runs instead: make
sim and make report an LSTM on a configuration without LSTM hardware, make sweep any LSTM."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [
    ["sim", "--model", "ese_lstm", "--config", "eie64"],
    ["sim.studies.sweep", "--model", "ese_lstm", "--param", "pes", "--values", "4"],
    ["sim.studies.report", "--model", "lstm_digits", "--config", "eie64"],
])
def test_lstm_models_refused_in_one_line(args, tmp_path):
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                       env={"EIEGEN_BUILD_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert ("does not take LSTMs yet" in lines[-1] or
            "the RTL's LSTM program cannot run it" in lines[-1] or
            "has no LSTM hardware (lstm: false)" in lines[-1]), r.stderr
    assert all(not line.startswith(("error", "Error")) for line in lines[:-1]), r.stderr
    assert "Traceback" not in r.stderr
