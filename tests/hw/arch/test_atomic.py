"""hw.arch.atomic: complete files and directories or nothing, with ordinary permissions."""

import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hw.arch.atomic import (check_npz, file_lock, read_json, read_npz, replace_dir,
                            replace_entries, write_atomic)
from hw.arch.errors import EIEError

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


# ---- outputs that cannot be written: one EIEError naming the path, nothing left behind ----

def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("write", [
    lambda p: write_atomic(p / "f.txt", "x"),
    lambda p: replace_dir(p / "d").__enter__(),
    lambda p: replace_entries(p / "d").__enter__(),
    lambda p: file_lock(p / ".d.lock").__enter__(),
])
def test_a_file_in_the_way_is_one_line(tmp_path, write):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    with pytest.raises(EIEError) as e:
        write(blocker / "out")
    msg = _one_line(e)
    assert msg.startswith(f"cannot write {blocker / 'out'}")
    assert f"{blocker} is a file, not a directory; remove it" in msg
    assert "EIEGEN_BUILD_DIR" in msg and "--out" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


_READ_ONLY = """
import sys
from pathlib import Path
from hw.arch.atomic import file_lock, replace_dir, write_atomic
from hw.arch.errors import EIEError
ro = Path(sys.argv[1])
for write in (lambda: write_atomic(ro / "f.txt", "x"),
              lambda: replace_dir(ro / "d").__enter__(),
              lambda: file_lock(ro / "m" / ".d.lock").__enter__()):
    try:
        write()
        print("no error")
    except EIEError as e:
        print(" ".join(str(e).split()))
"""


def test_a_read_only_directory_is_one_line(tmp_path, unprivileged):
    """In a process for which the directory is read-only (root: without the capabilities that
    override permissions, tests/conftest.py ``unprivileged``)."""
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    try:
        r = subprocess.run([*unprivileged, sys.executable, "-c", _READ_ONLY, str(ro)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        lines = r.stdout.splitlines()
        assert len(lines) == 3, r.stdout + r.stderr
        for line in lines:
            assert f"{ro} is not writable (Permission denied); make it writable" in line, line
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_a_full_disk_while_writing_is_one_line_and_leaves_the_old(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("old")
    for replace in (replace_dir, replace_entries):
        with pytest.raises(EIEError) as e:
            with replace(out) as d:
                (d / "keep").write_text("new")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        assert f"cannot write {out}: no space left on the device of {out}" in _one_line(e)
        assert (out / "keep").read_text() == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(FileNotFoundError):  # any other error of the caller stays its own
        with replace_dir(out):
            open(tmp_path / "missing" / "x")


# ---- the reading side ----

@pytest.mark.parametrize("data, msg", [
    (b'{"name": "caf\xe9"}', "is not UTF-8 text (byte 0xe9 at offset 13); FIX"),
    (b'{"a": 1,', "is not valid JSON (Expecting property name enclosed in double quotes at "
                  "line 1 column 9); FIX"),
    (b"", "is not valid JSON (Expecting value at line 1 column 1); FIX"),
    (b"[" * 100000, "is not valid JSON (nested too deeply); FIX"),
])
def test_read_json_refuses_what_is_not_utf8_json(tmp_path, data, msg):
    p = tmp_path / "f.json"
    p.write_bytes(data)
    with pytest.raises(EIEError) as e:
        read_json(p, "thing", "FIX")
    assert _one_line(e) == f"thing {p} {msg}"
    with pytest.raises(EIEError, match="save it as UTF-8|correct it"):
        read_json(p, "thing")  # the default remedy: fix the file


def test_read_json_reads_utf8_with_a_bom_and_limits_the_size(tmp_path):
    p = tmp_path / "f.json"
    p.write_bytes(b'\xef\xbb\xbf{"name": "caf\xc3\xa9"}')
    assert read_json(p, "thing") == {"name": "café"}
    with pytest.raises(EIEError, match=f"thing {p} is over 8 bytes, too long for one"):
        read_json(p, "thing", max_bytes=8)
    with pytest.raises(EIEError, match=f"cannot read thing {tmp_path}: Is a directory"):
        read_json(tmp_path, "thing")


def _npz(path, **arrays):
    np.savez(path, **(arrays or {"a": np.arange(1000), "b": np.ones((3, 3))}))
    return path


@pytest.mark.parametrize("make, msg", [
    (lambda p: p.write_text("hello\n"), "{p} is not a NumPy .npz archive"),
    (lambda p: p.write_bytes(b""), "{p} is empty, not a NumPy .npz archive"),
    (lambda p: np.save(p.with_suffix(".npy"), np.ones(3)) or p.with_suffix(".npy").rename(p),
     "{p} holds a single .npy array"),
    (lambda p: p.write_bytes(_npz(p).read_bytes()[:700]),
     "{p} is truncated or corrupt (File is not a zip file); FIX"),
    (lambda p: p.write_bytes(_npz(p).read_bytes()[:-10]), "{p} is truncated or corrupt"),
])
def test_check_npz_refuses_what_is_not_a_whole_archive(tmp_path, make, msg):
    p = tmp_path / "g.npz"
    make(p)
    for check in (check_npz, read_npz):
        with pytest.raises(EIEError) as e:
            check(p, "FIX")
        assert _one_line(e).startswith(msg.format(p=p))


def test_read_npz_reads_every_array_and_refuses_corrupt_or_pickled_ones(tmp_path):
    p = _npz(tmp_path / "g.npz")
    check_npz(p)
    got = read_npz(p)
    assert sorted(got) == ["a", "b"] and got["a"].sum() == 499500
    data = bytearray(p.read_bytes())
    data[200] ^= 0xFF  # inside a's data: the directory is whole, the checksum is not
    p.write_bytes(bytes(data))
    check_npz(p)  # the directory alone
    with pytest.raises(EIEError) as e:
        check_npz(p, "FIX", checksums=True)
    assert _one_line(e) == f"{p} is corrupt (a.npy does not match its checksum); FIX"
    with pytest.raises(EIEError) as e:
        read_npz(p, "FIX")
    assert _one_line(e) == f"{p} is corrupt (a: Bad CRC-32 for file 'a.npy'); FIX"
    obj = _npz(tmp_path / "o.npz", o=np.array([{"x": 1}], dtype=object))
    with pytest.raises(EIEError) as e:
        read_npz(obj)
    msg = _one_line(e)
    assert msg.startswith(f"{obj}: o is an array of Python objects") and "refused" in msg
    assert "allow_pickle" not in msg
