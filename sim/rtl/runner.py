"""Run a compiled model on the RTL: Verilator build (cached) + the cocotb bench ``sim.rtl.tb_eie``.

>>> res = run_rtl("build/mlp_digits/pe8", PRESETS["pe8"], samples=[0, 1])   # doctest: +SKIP
>>> res["match"], res["cycles"][0]                                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from compiler.pipeline import compiled_manifest
from sim.rtl import tools
from sim.flow.paths import build_root
from sim.rtl.build import TOPLEVEL, build_simulator

TB_MODULE = "sim.rtl.tb_eie"


#: memories preloaded by $readmemh: image file name -> (unit, memory) inside eie_pe
READMEM_FILES = {"spmat": ("spmat", "spmat"), "ptr_even": ("ptr", "even"),
                 "ptr_odd": ("ptr", "odd"), "bias": ("act_rw", "bias")}


def link_readmem_images(model_dir: Path, cfg: EIEConfig, dest: Path,
                        segment: int = 0) -> list[str]:
    """Link the compiler's hex files under the names the simulator's ``$readmemh`` looks for.

    ``segment`` selects the Spmat image of that Spmat segment (compiler.layout).  Returns the
    plusargs that point the simulator at ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    img = Path(model_dir).resolve() / "images"
    for k in range(cfg.n_pes):
        for fname, (unit, mem) in READMEM_FILES.items():
            if fname == "spmat" and segment:
                fname = f"spmat.seg{segment}"
            src = img / f"pe{k:03d}" / f"{fname}.hex"
            if not src.exists():
                raise EIEError(f"missing image file {src}; recompile the model")
            (dest / f"{TOPLEVEL}.pe{k}.inst.{unit}.eiegen_mem_{mem}.hex").symlink_to(src)
    return [f"+eiegen_images={dest}"]


def write_job(path: Path, model_dir: Path, cfg: EIEConfig, *, samples=None, backdoor=True,
              counter_samples: int = 1, layer_outputs: bool = False, result: Path,
              preloaded: bool = False, layers=None, segment: int = 0,
              inputs_file: Path | None = None) -> Path:
    """The JSON job file ``sim.rtl.tb_eie`` reads (see its module docstring)."""
    job = {"model_dir": str(Path(model_dir).resolve()), "config": cfg.to_dict(),
           "samples": None if samples is None else [int(s) for s in samples],
           "backdoor": bool(backdoor), "preloaded": bool(preloaded),
           "counter_samples": int(counter_samples),
           "layer_outputs": bool(layer_outputs), "result": str(Path(result).resolve()),
           "layers": None if layers is None else [int(i) for i in layers],
           "segment": int(segment),
           "inputs_file": None if inputs_file is None else str(Path(inputs_file).resolve())}
    Path(path).write_text(json.dumps(job, indent=1))
    return Path(path)


def expected_outputs(model_dir: Path, manifest: dict, samples: list) -> list | None:
    """Golden outputs of the samples, shaped like the bench's ``outputs`` (None: unknown)."""
    p = Path(model_dir) / "golden.npz"
    if not p.exists():
        return None
    n_layers = len(manifest["layers"])
    with np.load(p) as z:
        outs = [z[f"out{i}"] for i in range(n_layers)]
    if manifest.get("chained", True):
        return [outs[-1][s].astype(np.int64).tolist() for s in samples]
    return [[outs[li][s].astype(np.int64).tolist() for li in range(n_layers)]
            for s in samples]


def run_rtl(model_dir, cfg: EIEConfig, *, samples=None, waves: bool = False,
            backdoor: bool = True, counter_samples: int = 1, layer_outputs: bool = False,
            progress=print, keep: bool = False) -> dict:
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
    backdoor : bool
        Preload the sparse matrices, pointers and biases with ``$readmemh`` from the
        compiler's hex files at time 0 (fast) instead of writing every word through the host
        interface (one write per clock).  Inputs and codebooks always use the host interface.
    counter_samples : int
        Per-layer per-PE counters are recorded for this many of the first samples.
    layer_outputs : bool
        Also read every layer's output (chained models, counter samples only).
    progress : callable or None
    keep : bool
        Keep the run directory (job, log, result) instead of deleting it.

    A model compiled into several Spmat segments (compiler.layout) runs one simulator process
    per segment, each with its segment's Spmat image loaded (EIE's I/O mode between layers);
    a chained model's next segment starts from the output the RTL computed.  Cycles and
    counters are per layer, so the reload time is in no layer's figures.

    Returns
    -------
    dict
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
    segs = sorted({int(lay.get("segment", 0)) for lay in manifest["layers"]})
    chained = manifest.get("chained", True)
    parts = []
    inputs_file = None
    for s in segs:
        idx = [i for i, lay in enumerate(manifest["layers"]) if int(lay.get("segment", 0)) == s]
        if len(segs) > 1:
            names = ", ".join(manifest["layers"][i]["name"] for i in idx)
            say(f"[eiegen] Spmat segment {s} of {len(segs)}: layers {names} "
                "(Spmat SRAMs reloaded in I/O mode)")
        part = _run_segment(model_dir, cfg, info, run_dir / f"seg{s}", manifest,
                            samples=samples, waves=waves, backdoor=backdoor,
                            counter_samples=counter_samples, layer_outputs=layer_outputs,
                            layers=idx if len(segs) > 1 else None, segment=s,
                            inputs_file=inputs_file, say=say)
        parts.append(part)
        if chained and s != segs[-1]:
            # the next segment's input is this segment's output as the RTL computed it
            n_samples = int(manifest.get("n_samples", 1))
            x = np.zeros((n_samples, manifest["layers"][idx[-1]]["out_len"]), dtype=np.int64)
            for si, smp in enumerate(part["samples"]):
                x[smp] = part["outputs"][si]
            inputs_file = run_dir / f"inputs_seg{s + 1}.npy"
            np.save(inputs_file, x)
    res = _merge_segments(parts, chained)
    res["build"] = info.to_json()
    res["seconds"]["build"] = round(t_build, 3)
    res["segments"] = len(segs)
    exp = expected_outputs(model_dir, manifest, res["samples"])
    if exp is not None:
        res["expected"] = exp
        res["match"] = exp == res["outputs"]
    say(f"[eiegen] RTL: {len(res['samples'])} sample(s), cycles {res['cycles'][:1]}, "
        f"simulate {res['seconds']['simulate']:.1f} s"
        + (f", match={res['match']}" if exp is not None else ""))
    if keep or waves or os.environ.get("EIEGEN_KEEP_RUNS"):
        res["run_dir"] = str(run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return res


def _run_segment(model_dir: Path, cfg: EIEConfig, info, run_dir: Path, manifest: dict, *,
                 samples, waves, backdoor, counter_samples, layer_outputs, layers, segment,
                 inputs_file, say) -> dict:
    """One simulator process: the layers of one Spmat segment (all layers when ``layers`` is
    None), with that segment's Spmat image loaded."""
    run_dir.mkdir(parents=True)
    result_path = run_dir / "result.json"
    preload = bool(backdoor)
    plusargs = (link_readmem_images(model_dir, cfg, run_dir / "img", segment)
                if preload else [])
    job = write_job(run_dir / "job.json", model_dir, cfg, samples=samples, backdoor=backdoor,
                    counter_samples=counter_samples, layer_outputs=layer_outputs,
                    result=result_path, preloaded=preload, layers=layers, segment=segment,
                    inputs_file=inputs_file)
    log = run_dir / "sim.log"
    how = "$readmemh" if preload else "backdoor" if backdoor else "host-interface"
    say(f"[eiegen] simulating {manifest.get('model', model_dir.name)} on {cfg.name} "
        f"({how} loading), log {log}")
    runner = tools.verilator_runner()
    t1 = time.monotonic()
    failure = None
    try:
        runner.test(test_module=TB_MODULE, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                    build_dir=info.build_dir / "obj", test_dir=run_dir,
                    extra_env={"EIEGEN_TB_JOB": str(job)}, waves=waves, log_file=log,
                    plusargs=plusargs,
                    results_xml=str(run_dir / "results.xml"))
    except (SystemExit, RuntimeError) as e:
        failure = e
    t_sim = time.monotonic() - t1
    if failure is not None or not result_path.exists():
        tail = log.read_text()[-4000:] if log.exists() else ""
        raise EIEError(f"RTL simulation of {model_dir} failed ({failure!r}); run directory "
                       f"{run_dir}, log tail:\n{tail}")
    res = json.loads(result_path.read_text())
    res["seconds"]["simulate"] = round(t_sim, 3)
    return res


def _merge_segments(parts: list, chained: bool) -> dict:
    """One result from the per-segment results: per-layer lists are concatenated in layer
    order; a chained model's output is the last segment's."""
    if len(parts) == 1:
        return parts[0]
    res = dict(parts[-1])
    res["cycles"] = [sum((p["cycles"][si] for p in parts), [])
                     for si in range(len(res["samples"]))]
    res["counters"] = [sum((p["counters"][si] for p in parts), [])
                       for si in range(len(parts[-1]["counters"]))]
    if parts[-1].get("layer_outputs"):
        res["layer_outputs"] = [sum((p["layer_outputs"][si] for p in parts), [])
                                for si in range(len(parts[-1]["layer_outputs"]))]
    if not chained:
        res["outputs"] = [sum((p["outputs"][si] for p in parts), [])
                          for si in range(len(res["samples"]))]
    res["seconds"] = {k: round(sum(p["seconds"].get(k, 0) for p in parts), 3)
                      for k in parts[0]["seconds"]}
    res["host_writes"] = sum(p.get("host_writes", 0) for p in parts)
    return res


def write_model(out_dir, cfg: EIEConfig, qs, codebooks, shifts, biases, relus, x) -> Path:
    """A chained network given exactly (index matrices, codebooks, ...), in the compiler's format.

    Writes ``manifest.json``, ``images/`` and ``golden.npz`` (expected outputs from the golden
    model) into ``out_dir``; used by tests that need specific matrices and inputs.
    """
    from compiler.encode import encode_layer
    from compiler.layout import build_images, save_images
    from sim.ref.golden import GoldenModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [f"fc{li}" for li in range(len(qs))]
    enc = [encode_layer(np.asarray(q), cfg) for q in qs]
    images = build_images(enc, codebooks, shifts, biases, relus, names, cfg)
    images.inputs = [np.atleast_2d(np.asarray(x, dtype=np.int64))]
    shutil.rmtree(out_dir / "images", ignore_errors=True)
    save_images(images, out_dir)
    outs = GoldenModel(images).forward(images.inputs[0])
    np.savez(out_dir / "golden.npz", **{f"out{i}": o for i, o in enumerate(outs)},
             in0=images.inputs[0])
    manifest = {"model": out_dir.name, "synthetic": True, "chained": True,
                "n_samples": int(images.inputs[0].shape[0]), "config": cfg.to_dict(),
                "config_digest": cfg.digest(), "layers": images.layers}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out_dir


def write_random_model(out_dir, cfg: EIEConfig, shapes, *, density: float = 0.3,
                       act_density: float = 0.6, n_samples: int = 2, seed: int = 0,
                       relu=None, shift: int | None = None) -> Path:
    """A random chained network in the compiler's output format (tests, smoke runs).

    Parameters
    ----------
    out_dir : path
        Receives ``manifest.json``, ``images/`` and ``golden.npz`` (expected outputs from the
        golden model, i.e. ``hw.arch.fixedpoint.finalize`` of the integer products).
    shapes : list of (rows, cols)
        Layer shapes; ``cols`` of layer ``l + 1`` must be ``rows`` of layer ``l``.
    density, act_density : float
        Fraction of non-zero weights / input activations.
    relu : list of bool, optional
        Per layer (default: ReLU on all but the last).
    shift : int, optional
        Write-back shift of every layer (default: random in 4..10, capped at weight_frac_max).
    """
    rng = np.random.default_rng(seed)
    n_l = len(shapes)
    relu = [li < n_l - 1 for li in range(n_l)] if relu is None else list(relu)
    qs, cbs, shifts, biases = [], [], [], []
    for li, (rows, cols) in enumerate(shapes):
        if li and cols != shapes[li - 1][0]:
            raise EIEError(f"layer {li}: {cols} inputs do not match {shapes[li - 1][0]} outputs")
        qs.append(np.where(rng.random((rows, cols)) < density,
                           rng.integers(1, cfg.codebook_size, (rows, cols)), 0))
        lim = min(cfg.weight_max, 1 << 8)
        cb = rng.integers(-lim, lim + 1, cfg.codebook_size)
        cb[0] = 0
        cbs.append(cb)
        shifts.append(int(rng.integers(min(4, cfg.weight_frac_max),
                                       min(10, cfg.weight_frac_max) + 1))
                      if shift is None else int(shift))
        biases.append(rng.integers(-(1 << 10), 1 << 10, rows))
    cols0 = shapes[0][1]
    x = np.where(rng.random((n_samples, cols0)) < act_density,
                 rng.integers(-(1 << 11), 1 << 11, (n_samples, cols0)), 0)
    return write_model(out_dir, cfg, qs, cbs, shifts, biases, relu, x)
