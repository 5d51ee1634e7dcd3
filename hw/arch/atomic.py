"""Atomic file and directory output: a reader never sees half a file, an error leaves none.

Every command that writes results goes through these: the data goes to a temporary name in the
destination's own directory (so the final rename stays on one file system) and is renamed over
the destination only when complete.  Temporary names carry the writer's process id, so what a
killed process left behind is recognised and removed by the next writer; the renames that swap
a directory run with SIGINT / SIGTERM held back and under a lock on the parent directory, so
two processes replacing one directory, or a signal between the two renames, never lose it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def remove_stale_temporaries(dest) -> list[Path]:
    """Remove the temporaries of ``dest`` that dead processes left beside it; return them."""
    dest = Path(dest)
    pat = re.compile(rf"\.{re.escape(dest.name)}\.(\d+)\.(?:.+\.tmp|old)")
    removed = []
    if not dest.parent.is_dir():
        return removed
    for p in dest.parent.iterdir():
        m = pat.fullmatch(p.name)
        if m and not pid_alive(int(m.group(1))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def signals_deferred():
    """Hold back SIGINT and SIGTERM until the block ends, then deliver them.

    Python runs signal handlers in the main thread only, so the handlers are swapped for one
    that records the signal (a signal mask would not do: another thread may take the signal).
    Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for s in pending:
            signal.raise_signal(s)


@contextlib.contextmanager
def _dir_locked(directory: Path):
    """Exclusive ``flock`` on a directory itself (no lock file is left behind)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path, data) -> Path:
    """Write ``data`` (str or bytes) to ``path`` via a temporary file and a rename.

    The file gets the mode a plain ``open()`` would give it (``mkstemp`` creates 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _swap_in(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest`` (a directory or file), replacing what was there."""
    old = dest.parent / f"{_temp_prefix(dest.name)}old"
    try:
        with signals_deferred(), _dir_locked(dest.parent):
            if dest.is_dir() and not dest.is_symlink():
                dest.rename(old)
                tmp.rename(dest)
            else:
                os.replace(tmp, dest)
    finally:  # a held-back signal is raised as the block ends: clean up first
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def replace_dir(out_dir):
    """Yield a temporary sibling directory; on success it replaces ``out_dir`` as a whole
    (with the mode a plain ``mkdir`` would give it).

    On an exception (Ctrl-C included) the temporary directory is removed and ``out_dir`` (or
    its absence) is left as it was.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(out_dir.name), suffix=".tmp",
                                dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; give a plain mkdir's mode
        yield tmp
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def replace_entries(out_dir, last=()):
    """Yield a temporary sibling directory; on success each of its top-level entries replaces
    the entry of the same name in ``out_dir``, and nothing else in ``out_dir`` is touched.

    Entries named in ``last`` are swapped in after the others (a manifest that says the rest
    is complete).  On an exception the temporary directory is removed and ``out_dir`` is left
    as it was.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(out_dir.name) + "entries.", suffix=".tmp",
                                dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        names = sorted(p.name for p in tmp.iterdir())
        for name in [n for n in names if n not in last] + [n for n in last if n in names]:
            _swap_in(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _ReentrantLocks:
    """Held ``fcntl`` locks by (path, thread), so one thread can nest :func:`file_lock` while
    other threads (each with its own open file) wait for it like other processes do."""

    def __init__(self):
        self.held: dict[tuple, list] = {}
        self.mutex = threading.Lock()


_LOCKS = _ReentrantLocks()


@contextlib.contextmanager
def file_lock(path, *, say=None):
    """Exclusive ``fcntl`` lock on the file ``path`` (created), re-entrant in this process.

    ``say``, when given, is told once that another process holds the lock and this one waits.
    The lock is released when the block ends or the process dies.  Re-entrant per thread.
    """
    lock_file = str(Path(path).resolve())
    key = (lock_file, threading.get_ident())
    with _LOCKS.mutex:
        entry = _LOCKS.held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        Path(lock_file).parent.mkdir(parents=True, exist_ok=True)
        f = open(lock_file, "a+")
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if say:
                    say(f"[eiegen] waiting for another eiegen process ({lock_file})")
                fcntl.flock(f, fcntl.LOCK_EX)
        except BaseException:
            f.close()
            raise
        with _LOCKS.mutex:
            _LOCKS.held[key] = entry = [f, 1]
    try:
        yield
    finally:
        with _LOCKS.mutex:
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _LOCKS.held[key]
        if last:
            fcntl.flock(entry[0], fcntl.LOCK_UN)
            entry[0].close()
