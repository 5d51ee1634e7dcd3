"""Atomic file and directory output: a reader never sees half a file, an error leaves none.

Every command that writes results goes through these: the data goes to a temporary name in the
destination's own directory (so the final rename stays on one file system) and is renamed over
the destination only when complete.  Temporary names carry the writer's process id, so what a
killed process left behind is recognised and removed by the next writer; the renames that swap
a directory run with SIGINT / SIGTERM held back and under a lock on the parent directory, so
two processes replacing one directory, or a signal between the two renames, never lose it.
An output that cannot be written (a read-only directory, a file where a directory should be, a
full disk) is one :class:`~hw.arch.errors.EIEError` naming the path and what to do
(:func:`unwritable`), never a traceback.

The reading side: :func:`read_json` and :func:`read_npz` turn a file that is not what it should
be (not UTF-8, not JSON, not a NumPy archive, truncated, corrupt) into one such error, and
:func:`check_npz` tells a complete archive from a truncated one without reading its arrays.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
#: how to write elsewhere: the end of every message about an output that cannot be written
ELSEWHERE = ("or write elsewhere (another --out where the command takes one; "
             "EIEGEN_BUILD_DIR=DIR moves the build root)")
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _file_in_the_way(path: Path) -> Path | None:
    """The first part of ``path``, from the root down, that exists and is not a directory."""
    for p in [*reversed(path.parents), path]:
        if p.exists() and not p.is_dir():
            return p
    return None


def _existing_dir(path: Path) -> Path:
    """The deepest existing directory on the way to ``path`` (where it would be created)."""
    for p in [path, *path.parents]:
        if p.is_dir():
            return p
    return Path("/")


def unwritable(path, e: OSError) -> EIEError:
    """The one-line error for an output ``path`` that ``e`` kept from being written: what is
    in the way (a file, a read-only directory, a full disk) and what to do."""
    path = Path(path)
    blocker = _file_in_the_way(path.parent)
    if blocker is not None or e.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = blocker or path
        why, fix = f"{blocker} is a file, not a directory", "remove it"
    elif e.errno in (errno.EACCES, errno.EPERM):
        where = path if path.exists() and not os.access(path, os.W_OK) else \
            _existing_dir(path.parent)
        why, fix = f"{where} is not writable ({e.strerror})", "make it writable (chmod u+w)"
    elif e.errno == errno.EROFS:
        why, fix = f"{_existing_dir(path)} is on a read-only file system", "remount it"
    elif e.errno in _FULL:
        why, fix = f"no space left on the device of {_existing_dir(path)}", "free some space"
    else:
        why, fix = e.strerror or str(e), "check the path"
    return EIEError(f"cannot write {path}: {why}; {fix}, {ELSEWHERE}")


@contextlib.contextmanager
def writing(path):
    """Turn an ``OSError`` of the block into :func:`unwritable` of ``path`` (for the block's
    own creation of ``path``: its directories, a temporary, a rename)."""
    try:
        yield
    except OSError as e:
        raise unwritable(path, e) from None


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
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp",
                                   dir=path.parent)
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
def _disk_full_is(out_dir: Path):
    """A full disk while the caller writes the temporary beside ``out_dir`` is
    :func:`unwritable` of ``out_dir``; any other error of the caller's stays its own."""
    try:
        yield
    except OSError as e:
        if e.errno in _FULL:
            raise unwritable(out_dir, e) from None
        raise


@contextlib.contextmanager
def replace_dir(out_dir):
    """Yield a temporary sibling directory; on success it replaces ``out_dir`` as a whole
    (with the mode a plain ``mkdir`` would give it).

    On an exception (Ctrl-C included) the temporary directory is removed and ``out_dir`` (or
    its absence) is left as it was.
    """
    out_dir = Path(out_dir)
    with writing(out_dir):
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(out_dir.name), suffix=".tmp",
                                    dir=out_dir.parent))
    try:
        with writing(out_dir):
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; a plain mkdir's mode
        with _disk_full_is(out_dir):
            yield tmp
        with writing(out_dir):
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
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(out_dir.name) + "entries.",
                                    suffix=".tmp", dir=out_dir.parent))
    try:
        with writing(out_dir):
            os.chmod(tmp, 0o777 & ~_umask())
        with _disk_full_is(out_dir):
            yield tmp
        names = sorted(p.name for p in tmp.iterdir())
        for name in [n for n in names if n not in last] + [n for n in last if n in names]:
            with writing(out_dir / name):
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
        with writing(lock_file):
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


# ---- the reading side ------------------------------------------------------------------------

def _with_fix(msg: str, fix: str) -> EIEError:
    return EIEError(f"{msg}; {fix}" if fix else msg)


def read_json(path, what: str, fix: str = "", max_bytes: int | None = None):
    """The JSON value in the file ``path`` (UTF-8, a byte-order mark allowed).

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for the message (``"config file"``, ``"manifest"``).
    fix : str
        What to do about a file that is not valid UTF-8 JSON (a damaged output: "compile
        again ..."); default: fix the file itself.
    max_bytes : int, optional
        Refuse a longer file (a configuration is a few hundred bytes, not a data file).

    Raises
    ------
    EIEError
        The file cannot be read, is too long, is not UTF-8 or is not JSON.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as e:
        raise EIEError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise _with_fix(f"{what} {path} is over {max_bytes} bytes, too long for one", fix)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _with_fix(f"{what} {path} is not UTF-8 text (byte 0x{data[e.start]:02x} at "
                        f"offset {e.start})", fix or "save it as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _with_fix(f"{what} {path} is not valid JSON ({e.msg} at line {e.lineno} "
                        f"column {e.colno})", fix or "correct it") from None
    except RecursionError:
        raise _with_fix(f"{what} {path} is not valid JSON (nested too deeply)",
                        fix or "correct it") from None


#: the first bytes of a zip archive (a .npz is one) and of a single ``.npy`` array
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def _not_an_archive(path: Path) -> str | None:
    """Why ``path`` is not a NumPy .npz archive at all (None: it starts like one)."""
    with open(path, "rb") as f:
        head = f.read(6)
    if not head:
        return f"{path} is empty, not a NumPy .npz archive"
    if head.startswith(_NPY_MAGIC):
        return (f"{path} holds a single .npy array, not a NumPy .npz archive of named arrays "
                f"(numpy.savez writes one)")
    if not head.startswith(_ZIP_MAGIC):
        return (f"{path} is not a NumPy .npz archive (a zip of .npy arrays, as numpy.savez "
                f"writes; this file does not start like one)")
    return None


def _zip_damage(path: Path, checksums: bool = False) -> str | None:
    """Why the zip archive ``path`` is incomplete (None: its directory is whole and every member
    it lists lies inside the file), read from its directory alone; with ``checksums``, also
    why a member's bytes are not those written (its CRC-32, read through once)."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.header_offset + info.compress_size > size:
                    return f"{path} is truncated ({info.filename} runs past its end)"
            bad = zf.testzip() if checksums else None
            if bad is not None:
                return f"{path} is corrupt ({bad} does not match its checksum)"
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError) as e:
        return f"{path} is truncated or corrupt ({' '.join(str(e).split()) or 'bad zip'})"
    return None


def check_npz(path, fix: str = "", *, checksums: bool = False) -> None:
    """Refuse a NumPy .npz archive that is not one or is incomplete (truncated by a crash or a
    full disk), from its first bytes and its zip directory, without reading its arrays; with
    ``checksums``, also one whose bytes were changed inside (every member's CRC-32 is checked,
    which reads the archive once: about 1 GB/s).

    Raises
    ------
    EIEError
        With ``fix`` (what to do) after the reason.
    """
    path = Path(path)
    try:
        why = _not_an_archive(path) or _zip_damage(path, checksums)
    except OSError as e:
        raise EIEError(f"cannot read {path}: {e.strerror or e}") from None
    if why:
        raise _with_fix(why, fix)


def read_npz(path, fix: str = "") -> dict[str, np.ndarray]:
    """Every array of the NumPy .npz archive ``path``, read without unpickling anything.

    Raises
    ------
    EIEError
        The file cannot be read, is not a .npz archive (a text file, a single .npy array), is
        truncated or corrupt (a bad checksum), or holds an array of Python objects (loading
        one means unpickling, which may run code: refused, whatever the file says).
    """
    path = Path(path)
    check_npz(path, fix)
    key = None
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {}
            for key in z.files:
                a = z[key]
                if not isinstance(a, np.ndarray):  # a member that is no .npy file
                    raise _with_fix(f"{path}: member {key} is not a .npy array", fix)
                out[key] = a
            return out
    except ValueError as e:
        if "pickle" in str(e):
            raise EIEError(f"{path}: {key} is an array of Python objects (dtype object), "
                           f"which loads only by unpickling, refused; save numeric arrays"
                           ) from None
        raise _with_fix(f"{path} is corrupt ({key}: {' '.join(str(e).split())})", fix) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        why = " ".join(str(e).split()) or type(e).__name__
        raise _with_fix(f"{path} is corrupt ({key}: {why})", fix) from None
