"""Locks that make concurrent commands on one output directory safe.

Every command that reads or writes ``build/<model>/<config>/`` holds :func:`output_lock` on it
for as long as it works there, so a compile never replaces the images a simulation is reading
and two reports never interleave.  The lock is an ``fcntl`` lock on a sibling file (the
directory's entries are replaced while it is held); it is re-entrant within a process
(``python -m sim`` compiles, then simulates, under one lock) and released when the process
dies.
"""

from __future__ import annotations

from pathlib import Path

from hw.arch.atomic import file_lock


def lock_path(out_dir) -> Path:
    """The lock file of ``out_dir``: ``.<name>.lock`` beside it."""
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.lock"


def output_lock(out_dir, *, say=print):
    """Hold the lock of the output directory ``out_dir`` (see the module docstring)."""
    return file_lock(lock_path(out_dir), say=say)
