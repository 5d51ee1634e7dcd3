"""The whole-program rule: bad input to any command ends in one stderr line and exit code 2.

Every command line entry point is run as a user runs it (a subprocess) on a missing model, a
text file named ``.npz``, a missing configuration file, JSON text in place of a file name, a
non-UTF-8 file and a JSON array, then on the build files a crash can leave damaged, on
configurations too large to generate and on outputs that cannot be written.  Only the fast paths
run: every command refuses before it compiles anything large or builds with Verilator.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180  # seconds per command: each refuses in a few

#: command -> (takes --model, its config option, arguments it needs besides)
COMMANDS = {
    "compiler": (True, "--config", []),
    "sim": (True, "--config", []),
    "hw": (False, "--config", ["-q"]),
    "sim.studies.report": (True, "--config", ["--no-area"]),
    "sim.studies.cycles": (True, "--config", []),
    "sim.studies.sweep": (True, "--config", ["--param", "pes", "--values", "1,2"]),
    "sim.studies.compress": (True, "--config", []),
    "sim.estimates.energy": (True, "--config", []),
    "sim.estimates.area": (False, "--config", []),
    "sim.estimates.synth": (False, "--config", []),
    "sim.regress": (False, "--configs", ["--n", "1"]),
}


def run(args, build: Path, prefix=()) -> subprocess.CompletedProcess:
    env = {**os.environ, "EIEGEN_BUILD_DIR": str(build), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*prefix, sys.executable, "-m", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The one stderr line of a refused command (exit code 2, no traceback)."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert ": error: " in r.stderr, r.stderr
    return r.stderr.strip()


def nothing_written(build: Path) -> None:
    """Nothing under the build root but the (empty) lock files of the commands' directories."""
    if build.exists():
        stray = [p for p in build.rglob("*")
                 if p.is_file() and (not p.name.endswith(".lock") or p.stat().st_size)]
        assert stray == [], stray


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "text.npz").write_text("W0 = [[1, 2], [3, 4]]\n")
    (d / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (d / "list.json").write_text("[1, 2]")
    return {p.name: p for p in d.iterdir()}


CASES = {
    # case -> (is a --model case, value (a key of bad_files, or as is), what the line says)
    "missing model": (True, "/nonexistent.npz", "model file not found: /nonexistent.npz"),
    "text named .npz": (True, "text.npz", "is not a NumPy .npz archive"),
    "missing config": (False, "/nonexistent.json",
                       "cannot read config file /nonexistent.json: No such file or directory"),
    "JSON text": (False, "{bad", "takes a preset name"),
    "latin-1 config": (False, "latin1.json", "is not UTF-8 text (byte 0xe9 at offset 13); "
                                             "save it as UTF-8"),
    "JSON array": (False, "list.json", "config must be a JSON object, got list"),
}


def run_in_process(args, build: Path, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """``python -m <args>`` as :func:`run` gives it, but in this process: the entry point's
    ``main(argv)`` (what ``python -m`` calls), its exit code and its stderr.  A subprocess per
    case would cost an interpreter start and the imports, about a second each."""
    module, argv = args[0], args[1:]
    mod = importlib.import_module(module if module.count(".") == 2 else f"{module}.__main__")
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(build))
    capsys.readouterr()
    try:
        code = mod.main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def bad_input_args(command: str, case: str, bad_files: dict) -> tuple[list, str]:
    takes_model, config_opt, extra = COMMANDS[command]
    model_case, value, says = CASES[case]
    value = str(bad_files.get(value, value))
    args = ([command, "--model", value, config_opt, "tiny"] if model_case else
            [command, *(["--model", "mlp_digits"] if takes_model else []), config_opt, value])
    if command == "sim.estimates.energy" and case == "text named .npz":
        # energy reads the simulation's report, not the model: it asks for python -m sim
        says = "report.json not found; run python -m sim"
    return [*args, *extra], says


@pytest.mark.parametrize("command, case", [(c, k) for c in COMMANDS for k in CASES
                                           if COMMANDS[c][0] or not CASES[k][0]])
def test_bad_input_is_one_line(command, case, bad_files, tmp_path, monkeypatch, capsys):
    args, says = bad_input_args(command, case, bad_files)
    line = one_line_error(run_in_process(args, tmp_path / "build", monkeypatch, capsys))
    assert says in line
    nothing_written(tmp_path / "build")


@pytest.mark.parametrize("command, case", [("sim", "missing model"), ("hw", "JSON text"),
                                           ("sim.regress", "latin-1 config"),
                                           ("sim.studies.report", "text named .npz")])
def test_bad_input_is_one_line_as_a_user_runs_it(command, case, bad_files, tmp_path):
    """A few of the cases above as real ``python -m`` subprocesses."""
    args, says = bad_input_args(command, case, bad_files)
    assert says in one_line_error(run(args, tmp_path / "build"))
    nothing_written(tmp_path / "build")


# ---- configurations too large to generate: refused at once, before any slow work ----------

@pytest.mark.parametrize("command", ["hw", "sim.estimates.synth", "sim.estimates.area",
                                     "sim.regress"])
def test_too_deep_memories_are_refused_at_once(command, tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"name": "big", "n_pes": 4, "spmat_depth": 16777216}')
    _, config_opt, extra = COMMANDS[command]
    line = one_line_error(run([command, config_opt, str(big), *extra], tmp_path / "build"))
    assert "config 'big': spmat_depth = 16777216 gives a PE " in line
    assert "over the 8,388,608 (1 MiB) a generated design holds per PE; lower spmat_depth" in line
    nothing_written(tmp_path / "build")


# ---- build files damaged after the compiler wrote them -------------------------------------

def test_damaged_build_files(tmp_path):
    build = tmp_path / "build"
    compile_ = ["compiler", "--model", "mlp_digits", "--config", "pe8"]
    assert run(compile_, build).returncode == 0
    out = build / "mlp_digits" / "pe8"
    manifest = out / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:100])  # a crash of another tool
    r = run(compile_, build)
    assert r.returncode == 0 and "is not valid JSON" in r.stdout and \
        "compiling again" in r.stdout, r.stdout + r.stderr
    # the energy CLI reads report.json and the manifest, and compiles nothing
    energy = ["sim.estimates.energy", "--model", "mlp_digits", "--config", "pe8"]
    (out / "report.json").write_text('{"model": "mlp_di')
    line = one_line_error(run(energy, build))
    assert f"simulation report {out / 'report.json'} is not valid JSON" in line
    assert line.endswith("; run python -m sim --model mlp_digits --config pe8 again (make "
                         "sim), which rewrites it")
    (out / "report.json").write_text("{}")
    golden = out / "golden.npz"
    golden.write_bytes(golden.read_bytes()[: golden.stat().st_size // 2])  # a full disk
    line = one_line_error(run(energy, build))
    assert f"{golden} is truncated" in line
    assert line.endswith(f"; compile again (make compile with the same MODEL and CONFIG, or "
                         f"--recompile), or delete {out}")
    # a command that compiles when stale takes the damaged compile for stale
    r = run(["sim.studies.cycles", "--model", "mlp_digits", "--config", "pe8", "--samples",
             "1"], build)
    assert r.returncode == 0 and f"{golden} is truncated" in r.stdout and \
        "compiling again" in r.stdout, r.stdout + r.stderr


# ---- outputs that cannot be written ----------------------------------------------------------

#: the Verilog generator on the smallest preset (it writes before the output is tried)
HW_TINY = ["hw", "-q", "--config", "tiny"]


def test_an_output_below_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    for args in (["compiler", "--model", "mlp_digits", "--config", "pe8"], HW_TINY,
                 ["sim.regress", "--configs", "tiny", "--n", "1"]):
        line = one_line_error(run([*args, "--out", str(blocker / "out")], tmp_path / "build"))
        assert f"{blocker} is a file, not a directory; remove it, or write elsewhere" in line
    assert blocker.read_text() == "not a directory"
    for args in (["compiler", "--model", "mlp_digits", "--config", "pe8"], HW_TINY):
        line = one_line_error(run(args, blocker))  # the build root itself
        assert f"{blocker} is a file, not a directory" in line and "EIEGEN_BUILD_DIR" in line


def test_a_read_only_build_root_or_out_is_one_line(tmp_path, unprivileged):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    try:
        for args in (["compiler", "--model", "mlp_digits", "--config", "pe8"], HW_TINY,
                     ["sim.studies.cycles", "--model", "mlp_digits", "--config", "pe8"]):
            line = one_line_error(run(args, ro, prefix=unprivileged))
            assert f"{ro} is not writable (Permission denied); make it writable" in line
            assert "EIEGEN_BUILD_DIR=DIR moves the build root" in line
        for args in (["compiler", "--model", "mlp_digits", "--config", "pe8"], HW_TINY):
            line = one_line_error(run([*args, "--out", str(ro / "out")], tmp_path / "build",
                                      prefix=unprivileged))
            assert f"{ro} is not writable (Permission denied)" in line and "--out" in line
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)
