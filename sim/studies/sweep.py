"""``python -m sim.studies.sweep`` (``make sweep``): design-space sweeps on the fast cycle model.

For each value of one parameter -- PE count (EIE Fig. 11), activation-queue depth (EIE Fig. 8),
codebook (weight-index) bits or relative-index bits -- the model is compiled for a derived
configuration and run on the cycle model (sim/ref/cycle_model.py, equal to the RTL), all points in
parallel on every core.  Output in ``build/<model>/<config>/sweep-<param>/`` (or ``--out``;
only the sweep's own files are written there): ``sweep.csv`` (one row per
point and layer), ``sweep.json``, ``sweep.md`` and two plots: ``load_balance.png`` (load-balance
efficiency = (entries / N) / cycles, EIE Fig. 8) and ``speedup.png`` (speedup over the first
value, EIE Fig. 11).  ``--check-rtl K`` re-runs K of the small points on the Verilator RTL and
records whether cycles and counters agree (their compiled models are kept in
``sweep-<param>/rtl-check/<config>/``).

Derived configurations: the swept field is set; memories are only ever enlarged so the model
fits in one Spmat segment (they change what fits, never a cycle): ``act_depth`` >=
ceil(longest vector / N), ``bias_depth`` >= the layers' ceil(rows / N), ``ptr_depth`` >= the
layers' columns + 1, ``max_layers`` >= the layers, ``spmat_depth`` >= the fullest PE's words
(rounded up to a power of two).  A derived configuration that differs from the base is named
``<base>-<param><value>``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from compiler.cli import add_model_args
from compiler.options import Options, check_options, refuse_lstm_rtl
from hw.arch.atomic import replace_entries
from hw.arch.config import EIEConfig, load_config
from hw.arch.errors import ArgumentParser, EIEError, cli_errors
from models import load_model
from distributed import as_completed as dask_completed

from sim.flow.cluster import close, connect, prepare
from sim.flow.compile import compile_network, ensure_compiled
from sim.flow.paths import build_root, output_dir
from sim.ref.cycle_model import run_model, run_passes
from sim.ref.result import compare
from sim.rtl.build import build_key
from sim.rtl.runner import run_rtl

#: sweepable parameters -> EIEConfig field
PARAMS = {
    "pes": "n_pes",
    "queue_depth": "queue_depth",
    "weight_bits": "weight_index_bits",  # codebook bits: 2**b shared weights
    "weight_index_bits": "weight_index_bits",
    "rel_index_bits": "rel_index_bits",
}
#: the compiler's Spmat depth while a point is compiled (the deepest a config allows): the
#: real need is read back from the layout and recorded
SPMAT_CAP = 1 << 24
#: RTL checks only for points whose Verilator build stays small
RTL_MAX_PES = 16
RTL_MAX_SPMAT = 16384


def parse_values(text: str) -> list[int]:
    """``"1,2,4,8"`` or a geometric shorthand ``"1,2,4,...,256"`` -> list of ints."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    out: list[int] = []
    try:
        for i, p in enumerate(parts):
            if p in ("...", ".."):
                if len(out) < 2 or i != len(parts) - 2:
                    raise EIEError("'...' needs two values before it and one after it")
                a, b, last = out[-2], out[-1], int(parts[-1])
                if a <= 0 or b <= a or b % a:
                    raise EIEError(f"'...' continues a doubling-like series; {a}, {b} is not")
                if last <= b:
                    raise EIEError(f"'...' must end above {b}, the value before it; got "
                                   f"{last} (write the values out if that is what you mean)")
                while out[-1] * (b // a) <= last:
                    out.append(out[-1] * (b // a))
                if out[-1] != last:  # "1,2,...,12": the doubling up to 12, then 12
                    out.append(last)
                return _check_values(out)
            out.append(int(p))
    except ValueError:
        raise EIEError(f"--values must be integers separated by commas, got {text!r}") from None
    return _check_values(out)


def _check_values(vals: list[int]) -> list[int]:
    if not vals:
        raise EIEError("--values is empty")
    if len(set(vals)) != len(vals):
        raise EIEError(f"--values has duplicates: {vals}")
    return vals


def derive_config(base: EIEConfig, param: str, value: int, layers=None,
                  spmat_words: int | None = None) -> EIEConfig:
    """``base`` with ``param = value`` and memories enlarged to fit ``layers`` (module doc).

    Parameters
    ----------
    base : EIEConfig
    param : str
        A key of :data:`PARAMS`.
    value : int
    layers : list of (rows, cols), optional
        The network's layer shapes.
    spmat_words : int, optional
        Spmat words the fullest PE needs (all layers); ``None``: the compile-time cap.
    """
    if param not in PARAMS:
        raise EIEError(f"unknown sweep parameter {param!r}; choose from {', '.join(PARAMS)}")
    field = PARAMS[param]
    cfg = base.replace(**{field: int(value)})
    ch = {}
    if layers:
        n = cfg.n_pes
        longest = max(max(r, c) for r, c in layers)
        ch["act_depth"] = max(cfg.act_depth, -(-longest // n), 2)
        ch["bias_depth"] = max(cfg.bias_depth, sum(-(-r // n) for r, _ in layers), 2)
        ptrs = sum(c + 1 for _, c in layers)
        ch["ptr_depth"] = max(cfg.ptr_depth, ptrs + (ptrs & 1))
        ch["max_layers"] = max(cfg.max_layers, len(layers))
    if spmat_words is None:
        ch["spmat_depth"] = SPMAT_CAP
    else:
        ch["spmat_depth"] = max(cfg.spmat_depth, 1 << max(1, int(spmat_words - 1).bit_length()))
    cfg = cfg.replace(**ch)
    if cfg.replace(name=base.name) != base or spmat_words is None:
        cfg = cfg.replace(name=f"{base.name}-{param}{value}")
    return cfg


def _layer_shapes(net) -> list:
    return [tuple(np.asarray(layer.W).shape) for layer in net.layers]


def run_point(model: str, seed: int, base: EIEConfig, param: str, values: list,
              samples: int) -> list[dict]:
    """Compile once and run the cycle model for ``values`` that share the compiled images.

    (Only the queue depth leaves the images unchanged, so a group holds several values only
    for ``queue_depth`` sweeps.)  Returns one result dict per value.
    """
    t0 = time.perf_counter()
    net = load_model(model, seed=seed)
    shapes = _layer_shapes(net)
    cfg_c = derive_config(base, param, values[0], shapes)
    compiled = compile_network(net, cfg_c, progress=lambda msg: None)
    t_compile = time.perf_counter() - t0
    man = compiled.manifest
    words = int(max(man["memory"]["spmat_words_used_per_pe"]))
    images = compiled.images
    chained = man.get("chained", True)
    xs = compiled.layer_inputs if chained else list(images.inputs)
    n_s = min(samples, int(xs[0].shape[0]))
    out = []
    for v in values:
        cfg = derive_config(base, param, v, shapes, spmat_words=words)
        run_cfg = cfg_c.replace(queue_depth=cfg.queue_depth)
        t1 = time.perf_counter()
        res = run_passes(run_cfg, images.ptr_even, images.ptr_odd, images.layers,
                         images.passes, xs, chained=chained, samples=list(range(n_s)),
                         counter_samples=n_s, ptr_segments=images.ptr_segments)
        t_model = time.perf_counter() - t1
        layers = []
        for li, lay in enumerate(man["layers"]):
            cyc = float(np.mean([res.cycles[s][li] for s in range(n_s)]))
            ent = float(np.mean([sum(res.counters[s][li]["entries"]) for s in range(n_s)]))
            busy_max = float(np.mean([max(res.counters[s][li]["entries"])
                                      for s in range(n_s)]))
            layers.append({
                "name": lay["name"], "rows": lay["rows"], "cols": lay["cols"],
                "cycles": cyc, "entries": ent,
                "ideal_cycles": ent / cfg.n_pes,
                "load_balance_efficiency": ent / cfg.n_pes / cyc if cyc else float("nan"),
                "max_pe_entries": busy_max,
                "broadcasts": float(np.mean([res.broadcasts[s][li] for s in range(n_s)])),
                "padding_entries": lay["padding_entries"], "nnz": lay["nnz"],
                "stored_entries": lay["entries"],
                "full_cycles": float(np.mean([sum(res.counters[s][li]["full"])
                                              for s in range(n_s)])),
                "starved_cycles": float(np.mean([sum(res.counters[s][li]["starved"])
                                                 for s in range(n_s)])),
            })
        acc = man.get("accuracy") or {}
        out.append({
            "value": int(v), "config": cfg.to_dict(), "samples": n_s,
            "cycles": sum(lay["cycles"] for lay in layers),
            "time_us": sum(lay["cycles"] for lay in layers) / cfg.clock_mhz,
            "layers": layers, "spmat_words_per_pe_max": words,
            "storage_bits": man.get("storage_bits", {}),
            "accuracy_fixed_point": acc.get("fixed_point_golden"),
            "seconds": {"compile": round(t_compile, 3), "model": round(t_model, 4)},
        })
    return out


def _groups(param: str, values: list) -> list[list]:
    """Values that can share one compilation (only the queue depth does not change it)."""
    return [list(values)] if param == "queue_depth" else [[v] for v in values]


def run_sweep(model: str, base: EIEConfig, param: str, values: list, *, seed: int = 0,
              samples: int = 1, jobs: int | None = None, scheduler: str | None = None,
              progress=print) -> list[dict]:
    """All points, in parallel over ``jobs`` processes (default: every core), or on the Dask
    cluster ``scheduler`` names (an address or a scheduler file, :mod:`sim.flow.cluster`).
    Ctrl-C stops at once: the queued points are cancelled and the worker processes ended."""
    say = progress or (lambda msg: None)
    groups = _groups(param, values)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(groups)))
    results: dict[int, dict] = {}
    t0 = time.perf_counter()
    where = f"Dask cluster {scheduler}" if scheduler else f"{jobs} process(es)"
    say(f"[sweep] {model} on {base.name}: {param} = {', '.join(map(str, values))} "
        f"({len(groups)} compilation(s), {where})")

    def take(points):
        for r in points:
            results[r["value"]] = r
            _say_point(say, param, r, len(results), len(values), t0)

    if scheduler:
        client = connect(scheduler)
        try:
            prepare(client)
            futs = [client.submit(run_point, model, seed, base, param, g, samples, pure=False,
                                  retries=1) for g in groups]
            try:
                for fut in dask_completed(futs):
                    take(fut.result())
            except KeyboardInterrupt:
                client.cancel(futs)
                raise
        finally:
            close(client)
    elif jobs == 1:
        for g in groups:
            take(run_point(model, seed, base, param, g, samples))
    else:
        ex = cf.ProcessPoolExecutor(max_workers=jobs)
        try:
            futs = [ex.submit(run_point, model, seed, base, param, g, samples) for g in groups]
            for fut in cf.as_completed(futs):
                take(fut.result())
        except KeyboardInterrupt:
            # stop now: end the running points (their processes, taken before the shutdown
            # forgets them) and drop the queued ones
            procs = list((getattr(ex, "_processes", None) or {}).values())
            for proc in procs:
                proc.kill()
            ex.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.join(timeout=5)
            raise
        ex.shutdown()
    return [results[v] for v in values]


def _say_point(say, param, r, done, total, t0):
    say(f"[sweep] {done}/{total} {param}={r['value']}: {r['cycles']:,.0f} cycles, "
        f"load balance {100 * _efficiency(r):.1f} % (compile {r['seconds']['compile']:.1f} s, "
        f"model {1e3 * r['seconds']['model']:.0f} ms; {time.perf_counter() - t0:.0f} s)")


def _efficiency(point: dict) -> float:
    """Load-balance efficiency of the whole network: ideal cycles / cycles."""
    ideal = sum(lay["ideal_cycles"] for lay in point["layers"])
    return ideal / point["cycles"] if point["cycles"] else float("nan")


def compile_point(model: str, seed: int, cfg: EIEConfig, out: Path) -> Path:
    """Compile ``model`` for ``cfg`` into ``out`` unless it is there and up to date."""
    return ensure_compiled(model, seed, cfg, out=out, progress=lambda msg: None)


def check_rtl(model: str, seed: int, base: EIEConfig, param: str, points: list, k: int,
              rtl_dir: Path, progress=print) -> list[dict]:
    """Re-run ``k`` small points on the RTL; cycles and every counter against the model.

    Candidates are the points whose Verilator build is already cached (any size; e.g. the
    base preset's), then the small ones -- at most :data:`RTL_MAX_PES` PEs and
    :data:`RTL_MAX_SPMAT` Spmat words per PE -- smallest first.  Each point's compiled model
    is kept in ``rtl_dir/<config>/``.
    """
    say = progress or (lambda msg: None)
    cands = []
    for p in points:
        cfg = EIEConfig.from_dict(p["config"])
        cached = (build_root() / "sim" / build_key(cfg) / "build.json").exists()
        if cached or (cfg.n_pes <= RTL_MAX_PES and cfg.spmat_depth <= RTL_MAX_SPMAT):
            cands.append((not cached, cfg.n_pes * cfg.spmat_depth, p["value"], cfg))
    cands.sort(key=lambda c: c[:3])
    if len(cands) < k:
        say(f"[sweep] --check-rtl {k}: only {len(cands)} point(s) have a cached Verilator "
            f"build or are small enough (<= {RTL_MAX_PES} PEs, <= {RTL_MAX_SPMAT} Spmat words "
            "per PE)")
    checks = []
    for _, _, value, cfg in cands[:k]:
        say(f"[sweep] RTL check {param}={value} on {cfg.name}")
        t0 = time.perf_counter()
        out = compile_point(model, seed, cfg, Path(rtl_dir) / cfg.name)
        rtl = run_rtl(out, cfg, samples=[0], progress=say)
        mod = run_model(out, cfg, samples=[0])
        cmp = compare(rtl, mod)
        checks.append({
            "value": value, "config": cfg.name, "model_dir": str(out),
            "rtl_cycles": rtl.cycles[0], "model_cycles": mod.cycles[0],
            "cycles_equal": cmp.cycles_equal, "counters_equal": cmp.counters_equal,
            "outputs_match_golden": bool(rtl.match),
            "rtl_seconds": round(rtl.seconds.get("simulate", 0)
                                 + rtl.seconds.get("build", 0), 2),
            "model_seconds": round(sum(mod.seconds.values()), 4),
            "seconds": round(time.perf_counter() - t0, 1),
        })
        c = checks[-1]
        say(f"[sweep] RTL {param}={value}: cycles {c['rtl_cycles']} vs model "
            f"{c['model_cycles']}: equal={c['cycles_equal']}, counters equal="
            f"{c['counters_equal']}")
    return checks


# ---- output ----

CSV_FIELDS = ("param", "value", "layer", "rows", "cols", "n_pes", "queue_depth",
              "weight_index_bits", "rel_index_bits", "cycles", "time_us", "ideal_cycles",
              "load_balance_efficiency", "speedup", "broadcasts", "entries", "padding_entries",
              "full_cycles", "starved_cycles")


def speedups(points: list) -> dict:
    """Per layer name (and ``total``): cycles of the first point / cycles of each point."""
    out = {"total": [points[0]["cycles"] / p["cycles"] for p in points]}
    for li, lay in enumerate(points[0]["layers"]):
        out[lay["name"]] = [lay["cycles"] / p["layers"][li]["cycles"] for p in points]
    return out


def csv_text(param: str, points: list) -> str:
    sp = speedups(points)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for i, p in enumerate(points):
        c = p["config"]
        rows = [(lay["name"], lay) for lay in p["layers"]]
        total = {"rows": "", "cols": "", "cycles": p["cycles"],
                 "ideal_cycles": sum(lay["ideal_cycles"] for lay in p["layers"]),
                 "load_balance_efficiency": _efficiency(p),
                 "broadcasts": sum(lay["broadcasts"] for lay in p["layers"]),
                 "entries": sum(lay["entries"] for lay in p["layers"]),
                 "padding_entries": sum(lay["padding_entries"] for lay in p["layers"]),
                 "full_cycles": sum(lay["full_cycles"] for lay in p["layers"]),
                 "starved_cycles": sum(lay["starved_cycles"] for lay in p["layers"])}
        for name, lay in rows + [("total", total)]:
            w.writerow([param, p["value"], name, lay["rows"], lay["cols"], c["n_pes"],
                        c["queue_depth"], c["weight_index_bits"], c["rel_index_bits"],
                        f"{lay['cycles']:.1f}", f"{lay['cycles'] / c['clock_mhz']:.3f}",
                        f"{lay['ideal_cycles']:.1f}", f"{lay['load_balance_efficiency']:.4f}",
                        f"{sp[name][i]:.4f}", f"{lay['broadcasts']:.1f}",
                        f"{lay['entries']:.1f}", lay["padding_entries"],
                        f"{lay['full_cycles']:.1f}", f"{lay['starved_cycles']:.1f}"])
    return buf.getvalue()


def plot(param: str, points: list, out_dir: Path, title: str) -> list[str]:
    """``load_balance.png`` and ``speedup.png``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["value"] for p in points]
    log2 = min(xs) > 0 and max(xs) / min(xs) >= 8
    names = [lay["name"] for lay in points[0]["layers"]]
    label = {"pes": "processing elements", "queue_depth": "activation-queue depth",
             "weight_bits": "codebook (weight-index) bits",
             "weight_index_bits": "codebook (weight-index) bits",
             "rel_index_bits": "relative-index bits"}[param]
    files = []

    def axes(ylabel):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        if log2:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel(label)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        return fig, ax

    def save(fig, ax, title, name):
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / name)
        plt.close(fig)
        files.append(name)

    fig, ax = axes("load-balance efficiency (%)")
    for li, name in enumerate(names):
        ax.plot(xs, [100 * p["layers"][li]["load_balance_efficiency"] for p in points],
                marker="o", label=name)
    ax.plot(xs, [100 * _efficiency(p) for p in points], "k--", marker="s", label="network")
    ax.set_ylim(0, 105)
    save(fig, ax, f"{title}: load balance (cf. EIE Fig. 8)", "load_balance.png")

    sp = speedups(points)
    fig, ax = axes(f"speedup over {param}={xs[0]}")
    for name in names:
        ax.plot(xs, sp[name], marker="o", label=name)
    ax.plot(xs, sp["total"], "k--", marker="s", label="network")
    if param == "pes":
        ax.plot(xs, [x / xs[0] for x in xs], ":", color="gray", label="linear")
        if log2:
            ax.set_yscale("log", base=2)
    save(fig, ax, f"{title}: speedup (cf. EIE Fig. 11)", "speedup.png")
    return files


def markdown(summary: dict) -> str:
    pts = summary["points"]
    param = summary["param"]
    sp = speedups(pts)
    names = [lay["name"] for lay in pts[0]["layers"]]
    lines = [f"# Sweep of `{param}`: {summary['model']} on {summary['config']}", "",
             f"Cycle model (`sim/ref/cycle_model.py`, equal to the RTL), sample(s) "
             f"{summary['samples']}, {summary['seconds']:.1f} s on {summary['jobs']} "
             f"process(es).  Load balance = (entries / PEs) / cycles; speedup over "
             f"`{param}={pts[0]['value']}`.", "",
             f"| {param} | cycles | time (us) | load balance | speedup | "
             + " | ".join(f"{n} cycles" for n in names) + " | padding entries |",
             "|---" * (6 + len(names)) + "|"]
    for i, p in enumerate(pts):
        lines.append(f"| {p['value']} | {p['cycles']:,.0f} | {p['time_us']:.2f} | "
                     f"{100 * _efficiency(p):.1f} % | {sp['total'][i]:.2f} | "
                     + " | ".join(f"{lay['cycles']:,.0f}" for lay in p["layers"])
                     + f" | {sum(lay['padding_entries'] for lay in p['layers']):,} |")
    if any(p.get("accuracy_fixed_point") is not None for p in pts):
        lines += ["", "Fixed-point accuracy of the compiled model (golden model, test set): "
                  + ", ".join(f"{param}={p['value']}: {p['accuracy_fixed_point']:.4f}"
                              for p in pts if p.get("accuracy_fixed_point") is not None)]
    lines += ["", "![load balance](load_balance.png)", "", "![speedup](speedup.png)", ""]
    checks = summary.get("rtl_checks")
    if checks is not None:
        lines += ["## Model against the RTL", ""]
        if not checks:
            lines.append("No point was small enough to check on the RTL.")
        else:
            lines += ["| " + param + " | config | RTL cycles | model cycles | cycles equal | "
                      "counters equal | RTL s | model s |", "|---" * 8 + "|"]
            for c in checks:
                lines.append(f"| {c['value']} | {c['config']} | {c['rtl_cycles']} | "
                             f"{c['model_cycles']} | {c['cycles_equal']} | "
                             f"{c['counters_equal']} | {c['rtl_seconds']} | "
                             f"{c['model_seconds']} |")
    lines += ["", "Derived configurations: the swept field is set; activation, bias, pointer "
              "and Spmat memories are enlarged when the model needs it (they change what fits, "
              "not the cycles).", ""]
    return "\n".join(lines)


def write_outputs(out_dir: Path, summary: dict) -> None:
    """The sweep's files into a temporary sibling directory, then each renamed into ``out_dir``
    (``sweep.json`` last); whatever else ``out_dir`` holds is left alone."""
    with replace_entries(out_dir, last=("sweep.json",)) as tmp:
        (tmp / "sweep.csv").write_text(csv_text(summary["param"], summary["points"]))
        summary["plots"] = plot(summary["param"], summary["points"], tmp,
                                f"{summary['model']} on {summary['config']}")
        (tmp / "sweep.json").write_text(json.dumps(summary, indent=1))
        (tmp / "sweep.md").write_text(markdown(summary))


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m sim.studies.sweep",
                       description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--param", required=True, choices=list(PARAMS),
                   help="pes; queue_depth; weight_bits (= weight_index_bits, codebook bits); "
                        "rel_index_bits")
    p.add_argument("--values", required=True,
                   help="comma-separated values; '1,2,4,...,256' continues the doubling")
    p.add_argument("--samples", type=int, default=1,
                   help="input samples per point (cycles averaged; default 1)")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: every core)")
    p.add_argument("--scheduler", default=None,
                   help="run the points on a Dask cluster: its scheduler address "
                        "(tcp://host:8786) or scheduler file (default: --jobs local processes)")
    p.add_argument("--check-rtl", type=int, default=0, metavar="K",
                   help="re-run K small points on the RTL and record the agreement")
    p.add_argument("--out", default=None,
                   help="output directory (default build/<model>/<config>/sweep-<param>)")
    return p


def sweep_dir(args, base: EIEConfig) -> Path:
    """``--out``, or ``sweep-<param>/`` in the model's output directory for ``base``.

    An ``--out`` that is an existing file is refused; in a directory the sweep writes only
    its own files and never deletes what the directory held.
    """
    if args.out is None:
        return output_dir(args.model, base, seed=args.seed) / f"sweep-{args.param}"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise EIEError(f"--out {out} is a file; give a directory for the sweep's files")
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("sweep"):
        t0 = time.perf_counter()
        base = load_config(args.config)
        values = parse_values(args.values)
        if args.samples < 1:
            raise EIEError(f"--samples must be at least 1, got {args.samples}")
        if args.check_rtl < 0:
            raise EIEError(f"--check-rtl must be >= 0, got {args.check_rtl}")
        if args.jobs is not None and args.jobs < 1:
            raise EIEError(f"--jobs must be at least 1, got {args.jobs}")
        field = PARAMS[args.param]
        for v in values:  # every value through the config's own validation, before any work
            base.replace(**{field: v})
        # an unknown model, or one the compiler cannot take: one clear line, nothing run
        net = load_model(args.model, seed=args.seed)
        check_options(Options(), base, net)
        refuse_lstm_rtl(net, "make sweep")
        name = Path(args.model).stem if Path(args.model).suffix else args.model
        out_dir = sweep_dir(args, base)
        jobs = max(1, min(args.jobs or os.cpu_count() or 1, len(_groups(args.param, values))))
        points = run_sweep(args.model, base, args.param, values, seed=args.seed,
                           samples=args.samples, jobs=jobs, scheduler=args.scheduler)
        summary = {"model": name, "config": base.name, "base_config": base.to_dict(),
                   "param": args.param, "field": PARAMS[args.param], "values": values,
                   "seed": args.seed, "samples": args.samples, "jobs": jobs, "points": points}
        if args.check_rtl:
            summary["rtl_checks"] = check_rtl(args.model, args.seed, base, args.param, points,
                                              args.check_rtl, out_dir / "rtl-check")
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        write_outputs(out_dir, summary)
        print(markdown(summary).split("\n![")[0])
        print(f"[sweep] wrote {out_dir}/sweep.csv, sweep.json, sweep.md, "
              f"{', '.join(summary['plots'])} in {summary['seconds']:.1f} s")
        checks = summary.get("rtl_checks") or []
        bad = [c for c in checks if not (c["cycles_equal"] and c["counters_equal"])]
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
