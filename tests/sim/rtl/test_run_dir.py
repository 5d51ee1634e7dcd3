"""run_rtl's run directory: removed when a run is interrupted, kept (and named) when it fails.

No Verilator: the build and the simulator process are replaced by stand-ins, so these tests
exercise only the runner's bookkeeping around them.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from sim.ref.result import RunJob
from sim.rtl import runner
from sim.rtl.runner import run_rtl
from tests.conftest import write_random_model


class FakeRunner:
    """Stands in for the cocotb runner: writes a log, then raises ``exc``."""

    def __init__(self, exc: BaseException):
        self.exc = exc
        self.jobs = []

    def test(self, *, test_dir, extra_env, log_file, **_):
        self.jobs.append(RunJob.read(extra_env["EIEGEN_TB_JOB"]))
        Path(log_file).write_text("simulator log\n")
        raise self.exc


@pytest.fixture
def setup(tmp_path, monkeypatch):
    cfg = PRESETS["pe1"]
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv("EIEGEN_KEEP_RUNS", raising=False)
    info = SimpleNamespace(build_dir=tmp_path / "sim", waves=False, to_json=lambda: {})
    monkeypatch.setattr(runner, "build_simulator", lambda cfg, **kw: info)
    d = write_random_model(tmp_path / "m", cfg, [(6, 5)], density=0.5, n_samples=1, seed=1)

    def run(exc):
        fake = FakeRunner(exc)
        monkeypatch.setattr(runner.tools, "verilator_runner", lambda **_: fake)
        return fake, lambda **kw: run_rtl(d, cfg, progress=None, **kw)

    return run, tmp_path / "build" / "runs"


def test_interrupted_run_removes_its_directory(setup):
    run, runs = setup
    fake, go = run(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        go()
    assert fake.jobs and fake.jobs[0].preload
    assert list(runs.iterdir()) == []


def test_interrupted_run_is_kept_on_request(setup):
    run, runs = setup
    _, go = run(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        go(keep=True)
    (kept,) = runs.iterdir()
    assert (kept / "sim.log").exists()


def test_failed_run_keeps_its_directory_and_names_its_log(setup):
    run, runs = setup
    fake, go = run(SystemExit(1))
    with pytest.raises(EIEError, match="run directory") as e:
        go(preload=False)
    assert not fake.jobs[0].preload
    (kept,) = runs.iterdir()
    assert str(kept) in str(e.value)
    assert (kept / "sim.log").read_text() == "simulator log\n"
