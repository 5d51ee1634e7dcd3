"""Run a compiled model on the RTL: Verilator build (cached) + the cocotb bench ``sim.rtl.tb_eie``.

>>> res = run_rtl("build/mlp_digits/pe8", PRESETS["pe8"], samples=[0, 1])   # doctest: +SKIP
>>> res.match, res.cycles[0]                                                # doctest: +SKIP

The job each simulator process runs and the result it gives are the typed
:class:`sim.ref.result.RunJob` and :class:`sim.ref.result.RunResult`; the cycle model
(:func:`sim.ref.cycle_model.run_model`) returns the same :class:`RunResult`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from hw.arch.memories import (PRELOAD_SUFFIX, SEGMENT_MEMORIES, preloaded_memories,
                              segment_images, segment_stem)
from compiler.manifest import compiled_manifest
from sim.flow.paths import build_root
from sim.ref.result import RunJob, RunResult
from sim.rtl import tools
from sim.rtl.build import TOPLEVEL, build_simulator

TB_MODULE = "sim.rtl.tb_eie"


def link_preload_images(model_dir: Path, cfg: EIEConfig, dest: Path, passes=()) -> list[str]:
    """Link the compiler's binary images (``<image>.bin``, beside the hex files) under the
    names the simulator's preload (``$fread``) looks for.

    The memories are preloaded with segment 0's images; for every segment ``s`` of the
    model's passes (``passes``: the manifest's pass table) the images it holds
    (:func:`hw.arch.memories.segment_images`) are linked as ``... .seg<s>.bin``, which the
    simulation's segment reload (:func:`sim.rtl.harness.reload_block`) reads.  Returns the
    plusargs that point the simulator at ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    img = Path(model_dir).resolve() / "images"
    segments = sorted({int(p["segment"]) for p in passes}) if len(passes) else [0]
    for k in range(cfg.n_pes):
        for mem in preloaded_memories(cfg):
            links = {mem.preload_file(k): mem.image}
            if mem.name in SEGMENT_MEMORIES and len(segments) > 1:
                for s in segments:
                    held = segment_images(passes, s)[mem.name]
                    links[mem.preload_file(k, s)] = segment_stem(mem.image, held)
            for name, stem in links.items():
                src = img / f"pe{k:03d}" / f"{stem}{PRELOAD_SUFFIX}"
                if not src.exists():
                    raise EIEError(f"missing image file {src}; recompile the model")
                (dest / name).symlink_to(src)
    return [f"+eiegen_images={dest}"]


def expected_outputs(model_dir: Path, manifest: dict, samples: list) -> list | None:
    """Golden outputs of the samples, shaped like the bench's ``outputs`` (None: unknown)."""
    p = Path(model_dir) / "golden.npz"
    if not p.exists():
        return None
    n_layers = len(manifest["layers"])
    last = manifest["layers"][-1]
    with np.load(p) as z:
        if last.get("role") == "gates":  # an LSTM without a projection: y_t is m_t, by cell
            m = z[f"lstm{int(last['lstm'])}_m"]
            return [m[s].astype(np.int64).tolist() for s in samples]
        outs = [z[f"out{i}"] for i in range(n_layers)]
    if manifest.get("chained", True):
        return [outs[-1][s].astype(np.int64).tolist() for s in samples]
    return [[outs[li][s].astype(np.int64).tolist() for li in range(n_layers)]
            for s in samples]


def run_rtl(model_dir, cfg: EIEConfig, *, samples=None, waves: bool = False,
            preload: bool = True, counter_samples: int = 1, layer_outputs: bool = False,
            progress=print, keep: bool = False, host_player: bool = True,
            progress_every: float | None = None) -> RunResult:
    """Simulate a compiled model on the Verilated ``eie_top``.

    Parameters
    ----------
    model_dir : path
        ``build/<model>/<config>/`` with ``manifest.json`` and ``images/images.npz``.
    cfg : EIEConfig
        Must be the configuration the model was compiled for.
    samples : list of int, optional
        Input samples to run (default: all).  Between samples only the inputs are reloaded.
    waves : bool
        Build and run with tracing: ``dump.fst`` (``dump.vcd`` without lz4 headers) in each
        segment's run directory; ``keep`` implied.
    preload : bool
        Preload the sparse matrices, pointers and biases with ``$fread`` from the
        compiler's hex files at time 0 (fast) instead of writing every word through the host
        interface (one write per clock).  Inputs and codebooks always use the host interface.
    counter_samples : int
        Per-layer per-PE counters are recorded for this many of the first samples.
    layer_outputs : bool
        Also read every layer's output (chained models, counter samples only).
    progress : callable or None
        Told what happens (the build, the log's path, the result).
    progress_every : float, optional
        Seconds between lines ``[eiegen] RTL: <done> of <n> samples in <s> s, about <s> s
        to go`` while the simulator runs (from the bench's progress file, ``RunJob.progress``);
        None: no such lines.  The run stays one simulator process.
    keep : bool
        Keep the run directory (job, log, result) instead of deleting it (also with
        ``EIEGEN_KEEP_RUNS`` set).  A failing simulation always keeps it (the error names
        its log); an interrupted one (Ctrl-C, any other exception) removes it.
    host_player : bool
        Play the bench's host transfers with the harness's host player (default; no Python per
        clock) instead of driving the host ports from Python one clock at a time.

    A model compiled into several segments (compiler.layout) runs in one simulator process:
    between segments the bench reloads the Spmat and pointer SRAMs (EIE's I/O mode, by
    ``$fread`` or, without ``preload``, through the host interface; the reload's words and
    host cycles are the manifest's ``memory.segments``), while the accumulators and activation
    memories keep their contents.  Cycles and counters are per pass and per layer, so the
    reload time is in no layer's figures.

    Returns
    -------
    RunResult
        The bench's result (``outputs``, ``cycles`` per sample and layer, ``counters`` per
        counter sample, layer and counter name: a list over PEs, ``seconds``) plus ``build``
        (BuildInfo as JSON), ``expected`` and ``match`` (when ``golden.npz`` exists),
        ``seconds['build']`` / ``seconds['simulate']`` and ``run_dir`` when kept.

    Raises
    ------
    EIEError
        Missing model files, a build failure or a failing simulation (with the log tail).
    """
    say = progress or (lambda msg: None)
    model_dir = Path(model_dir)
    manifest = compiled_manifest(model_dir, cfg)
    t0 = time.monotonic()
    info = build_simulator(cfg, waves=waves, progress=progress)
    t_build = time.monotonic() - t0
    runs = build_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{cfg.name}-", dir=runs))
    keep = bool(keep or waves or os.environ.get("EIEGEN_KEEP_RUNS"))
    job = RunJob(model_dir=model_dir, cfg=cfg, samples=samples,
                 counter_samples=counter_samples, layer_outputs=layer_outputs, preload=preload,
                 host_player=host_player,
                 progress=run_dir / "progress.json" if progress and progress_every else None,
                 progress_s=min(1.0, (progress_every or 2.0) / 2))
    try:
        with ProgressWatch(job.progress, progress, progress_every):
            res = _run(job, info, run_dir, manifest, say)
        if not keep:
            _keep_log(run_dir, model_dir, say)
    except EIEError:
        keep = True  # a failing simulation: its log is named in the error
        say(f"[eiegen] RTL simulation failed; run directory kept: {run_dir}")
        raise
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    res.build = info.to_json()
    res.seconds["build"] = round(t_build, 3)
    res.expected = expected_outputs(model_dir, manifest, res.samples)
    if res.expected is not None:
        res.match = res.expected == res.outputs
    say(f"[eiegen] RTL: {len(res.samples)} sample(s), cycles {res.cycles[:1]}, "
        f"simulate {res.seconds['simulate']:.1f} s"
        + (f", match={res.match}" if res.expected is not None else ""))
    if keep:
        res.run_dir = str(run_dir)
    return res


def _keep_log(run_dir: Path, model_dir: Path, say) -> None:
    """The log the user was pointed at outlives the run directory: it is kept as the model
    directory's ``sim.log`` (the latest simulation of this compile)."""
    kept = model_dir / "sim.log"
    try:
        os.replace(run_dir / "sim.log", kept)
        say(f"[eiegen] log kept as {kept}")
    except OSError:  # another file system, or nothing to keep: the run's own is gone
        pass


class ProgressWatch:
    """A thread that reads the bench's progress file (:attr:`RunJob.progress`) while the
    simulator runs and tells ``say`` how far it is every ``every`` seconds, with the time left
    at the rate so far (a context manager; nothing when ``path`` is None)."""

    def __init__(self, path: Path | None, say, every: float | None):
        self.path, self.say, self.every = path, say, every
        self._stop = threading.Event()
        self._thread = None
        self.t0 = time.monotonic()
        self.shown = None  # the last ``done`` told

    def __enter__(self):
        if self.path is not None:
            self._thread = threading.Thread(target=self._watch, name="rtl-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return False

    def line(self) -> str | None:
        """The progress line of the file as it is now (None: nothing new to tell)."""
        try:
            p = json.loads(self.path.read_text())
            done, of, run_s = int(p["done"]), int(p["of"]), float(p["run_s"])
        except (OSError, ValueError, KeyError, TypeError):  # not written yet
            return None
        if done == self.shown or done >= of:
            return None
        self.shown = done
        left = run_s / max(done, 1) * (of - done)
        return (f"[eiegen] RTL: {done:,} of {of:,} samples in "
                f"{time.monotonic() - self.t0:.0f} s, about {left:.0f} s to go")

    def _watch(self):
        while not self._stop.wait(self.every):
            text = self.line()
            if text is not None:
                self.say(text)


def _run(job: RunJob, info, run_dir: Path, manifest: dict, say) -> RunResult:
    """One simulator process: every sample through every pass."""
    job = replace(job, result=run_dir / "result.json")
    plusargs = (link_preload_images(job.model_dir, job.cfg, run_dir / "img",
                                    manifest["passes"]) if job.preload else [])
    # the host player's program and result files (sim.rtl.harness)
    plusargs.append(f"+eiegen_play={run_dir.resolve()}")
    job_file = job.write(run_dir / "job.json")
    log = run_dir / "sim.log"
    how = "$fread" if job.preload else "host-interface"
    n_seg = len({int(p["segment"]) for p in manifest["passes"]})
    if n_seg > 1:
        say(f"[eiegen] {n_seg} segments: the Spmat and pointer SRAMs are reloaded between them "
            "(EIE's I/O mode)")
    say(f"[eiegen] simulating {manifest.get('model', job.model_dir.name)} on {job.cfg.name} "
        f"({how} loading), log {log}")
    runner = tools.verilator_runner()
    t1 = time.monotonic()
    failure = None
    try:
        runner.test(test_module=TB_MODULE, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                    build_dir=info.build_dir / "obj", test_dir=run_dir,
                    # no pytest assertion rewriting of every module the bench imports (cocotb's
                    # default): the bench checks nothing itself, and it costs start-up time
                    extra_env={"EIEGEN_TB_JOB": str(job_file),
                               "COCOTB_REWRITE_ASSERTION_FILES": ""},
                    waves=info.waves, log_file=log,
                    plusargs=plusargs,
                    results_xml=str(run_dir / "results.xml"))
    except (SystemExit, RuntimeError) as e:
        failure = e
    t_sim = time.monotonic() - t1
    if failure is not None or not job.result.exists():
        tail = log.read_text()[-4000:] if log.exists() else ""
        raise EIEError(f"RTL simulation of {job.model_dir} failed ({failure!r}); run directory "
                       f"{run_dir}, log tail:\n{tail}")
    res = RunResult.from_json(job.result.read_text())
    res.seconds["simulate"] = round(t_sim, 3)
    res.segments = n_seg
    return res
