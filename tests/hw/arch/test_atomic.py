"""hw.arch.atomic: complete files and directories or nothing, with ordinary permissions."""

import os
import stat

import pytest

from hw.arch.atomic import replace_dir, write_atomic


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
