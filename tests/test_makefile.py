"""The make wrapper: variables reach the CLIs quoted and validated (make -n, no work done)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(*args, env=None):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def test_model_paths_with_spaces_stay_one_argument():
    r = make("-n", "sim", "MODEL=my models/net 1.onnx", "CONFIG=eie")
    assert r.returncode == 0, r.stderr
    assert '--model "my models/net 1.onnx" --config "eie"' in r.stdout


@pytest.mark.parametrize("value, flag", [("1", True), ("yes", True), ("ON", True),
                                         ("0", False), ("no", False), ("", False)])
def test_waves_spellings(value, flag):
    r = make("-n", "sim", f"WAVES={value}")
    assert r.returncode == 0, r.stderr
    assert ("--waves" in r.stdout) is flag


def test_waves_not_a_yes_no_value_is_one_line_and_exit_2():
    r = make("-s", "sim", "WAVES=maybe")
    assert r.returncode == 2
    assert "make sim: error: WAVES=maybe is not a yes/no value; use WAVES=1" in r.stderr
    assert "Traceback" not in r.stderr


def test_density_reaches_compile_and_sim():
    for target in ("compile", "sim", "cycles"):
        r = make("-n", target, "DENSITY=0.08,0.09,0.26")
        assert r.returncode == 0, r.stderr
        assert "--density 0.08,0.09,0.26" in r.stdout, target
