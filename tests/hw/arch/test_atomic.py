"""hw.arch.atomic: complete files and directories or nothing, with ordinary permissions."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hw.arch.atomic import file_lock, replace_dir, replace_entries, write_atomic

ROOT = Path(__file__).resolve().parents[3]


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_write_atomic_text_and_bytes(tmp_path):
    p = write_atomic(tmp_path / "sub" / "a.txt", "hello")
    assert p.read_text() == "hello"
    write_atomic(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert _mode(p) == 0o666 & ~_umask()
    assert [q.name for q in p.parent.iterdir()] == ["a.txt"]  # no temporary left


def test_replace_dir_replaces_whole_and_keeps_old_on_error(tmp_path):
    out = tmp_path / "out"
    with replace_dir(out) as d:
        (d / "x").write_text("1")
    assert (out / "x").read_text() == "1" and _mode(out) == 0o777 & ~_umask()
    with pytest.raises(RuntimeError):
        with replace_dir(out) as d:
            (d / "y").write_text("2")
            raise RuntimeError("boom")
    assert sorted(q.name for q in out.iterdir()) == ["x"]
    with replace_dir(out) as d:
        (d / "z").write_text("3")
    assert sorted(q.name for q in out.iterdir()) == ["z"]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out"]


def _umask():
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_replace_entries_keeps_what_it_does_not_write(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("theirs")
    (out / "images").mkdir()
    (out / "images" / "old.hex").write_text("old")
    with replace_entries(out, last=("manifest.json",)) as d:
        (d / "images").mkdir()
        (d / "images" / "new.hex").write_text("new")
        (d / "manifest.json").write_text("{}")
    assert (out / "report.json").read_text() == "theirs"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["new.hex"]
    assert (out / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporaries
    with pytest.raises(RuntimeError):
        with replace_entries(out) as d:
            (d / "report.json").write_text("ours")
            raise RuntimeError("boom")
    assert (out / "report.json").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_a_killed_writer_are_removed(tmp_path):
    out = tmp_path / "out"
    # a temporary directory and a file of a process that no longer exists
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f".out.{dead}.abc.tmp").mkdir()
    (tmp_path / f".out.{dead}.old").mkdir()
    (tmp_path / f".out.{os.getpid()}.mine.tmp").mkdir()  # a live process's: kept
    with replace_dir(out) as d:
        (d / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".out.{os.getpid()}.mine.tmp", "out"]


_RACE = """
import sys, time
from hw.arch.atomic import replace_dir
out, tag = sys.argv[1], sys.argv[2]
for i in range(40):
    with replace_dir(out) as d:
        (d / "who").write_text(f"{tag}{i}")
"""


def test_two_processes_replacing_one_directory(tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(out), tag], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for tag in "ab"]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert (out / "who").read_text() in ("a39", "b39")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


_SIGTERM = """
import os, signal, sys, time
from hw.arch.atomic import replace_dir
from hw.arch.errors import cli_errors
with cli_errors("t"):
    with replace_dir(sys.argv[1]) as d:
        (d / "x").write_text("new")
        print("ready", flush=True)
        time.sleep(60)
"""


def test_sigterm_while_writing_leaves_the_old_directory_and_no_temporary(tmp_path):
    out = tmp_path / "out"
    with replace_dir(out) as d:
        (d / "x").write_text("old")
    p = subprocess.Popen([sys.executable, "-c", _SIGTERM, str(out)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and err.strip() == "t: terminated"
    assert (out / "x").read_text() == "old"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out"]


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler, whatever the process inherited (a shell starts background
    jobs with SIGINT ignored, and then no KeyboardInterrupt is raised)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_swap_holds_back_signals(tmp_path, monkeypatch, python_sigint):
    """A signal that arrives between the two renames of a swap is delivered after them."""
    out = tmp_path / "out"
    with replace_dir(out) as d:
        (d / "x").write_text("old")
    real_rename = Path.rename
    hits = []

    def rename(self, target):
        if not hits:
            hits.append(1)
            os.kill(os.getpid(), signal.SIGINT)  # held back until both renames are done
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        with replace_dir(out) as d:
            (d / "x").write_text("new")
    monkeypatch.undo()
    assert (out / "x").read_text() == "new"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out"]


def test_file_lock_is_reentrant_and_excludes_other_processes(tmp_path):
    lock = tmp_path / "l.lock"
    code = ("import sys, fcntl; f = open(sys.argv[1], 'a+'); "
            "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)")
    with file_lock(lock):
        with file_lock(lock):  # nested in one process: no deadlock
            r = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True)
            assert r.returncode != 0  # another process cannot take it
        r = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True)
        assert r.returncode != 0  # still held by the outer block
    r = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True)
    assert r.returncode == 0
