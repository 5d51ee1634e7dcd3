"""Locks that make concurrent commands on one output directory safe.

Every command that reads or writes ``build/<model>/<config>/`` holds :func:`output_lock` on it
for as long as it works there, so a compile never replaces the images a simulation is reading
and two reports never interleave.  The lock is an ``fcntl`` lock on a sibling file (the
directory itself may be replaced while locked); it is re-entrant within a process (``python -m
sim`` compiles, then simulates, under one lock) and released when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

_held: dict[str, list] = {}  # lock path -> [open file, depth]
_mutex = threading.Lock()


def lock_path(out_dir) -> Path:
    """The lock file of ``out_dir``: ``.<name>.lock`` beside it."""
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.lock"


@contextlib.contextmanager
def file_lock(path, *, say=None):
    """Exclusive ``fcntl`` lock on ``path`` (created), re-entrant in this process.

    ``say``, when given, is told once that the lock is held by another process and this one
    waits for it.
    """
    key = str(Path(path).resolve())
    with _mutex:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        Path(key).parent.mkdir(parents=True, exist_ok=True)
        f = open(key, "a+")
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if say:
                    say(f"[eiegen] waiting for another eiegen process ({key})")
                fcntl.flock(f, fcntl.LOCK_EX)
        except BaseException:
            f.close()
            raise
        with _mutex:
            _held[key] = entry = [f, 1]
    try:
        yield
    finally:
        with _mutex:
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _held[key]
        if last:
            fcntl.flock(entry[0], fcntl.LOCK_UN)
            entry[0].close()


def output_lock(out_dir, *, say=print):
    """Hold the lock of the output directory ``out_dir`` (see the module docstring)."""
    return file_lock(lock_path(out_dir), say=say)


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (leftovers of dead processes may be removed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
