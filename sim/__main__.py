"""``python -m sim`` (``make sim``): compile -> Verilog -> Verilator build -> RTL simulation.

Each step runs only when stale (compiled images are keyed by model, seed, configuration and the
compiler's sources; the Verilator build by the configuration and the generator's sources).  The
RTL's outputs are compared bit for bit with the golden model; the per-layer table and
``build/<model>/<config>/report.json`` give cycles, time, GOP/s, load balance and mismatches.
Exit code 1 when any output mismatches, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hw.arch.atomic import write_atomic
from hw.arch.config import load_config
from hw.arch.errors import EIEError, cli_errors
from compiler.layout import load_images
from compiler.pipeline import Options, compile_network, emit, load_manifest, output_dir
from compiler.cli import add_model_args, add_options, options_from_args
from sim.flow.stale import compile_key


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--waves", action="store_true",
                   help="write an FST waveform (a tracing build, cached separately)")
    p.add_argument("--samples", type=int, default=None,
                   help="simulate only the first N input samples (default: all)")
    p.add_argument("--host-load", action="store_true",
                   help="load the memories through the host interface instead of the backdoor")
    p.add_argument("--recompile", action="store_true", help="compile even if up to date")
    add_options(p)
    return p


def ensure_compiled(model: str, seed: int, cfg, force: bool = False,
                    opts: Options | None = None) -> Path:
    """Compile the model unless ``build/<model>/<config>/`` is up to date (same model, seed,
    configuration, compiler options and compiler/model sources)."""
    opts = opts or Options()
    out = output_dir(model, cfg)
    key = compile_key(model, seed, cfg.digest(), opts)
    try:
        fresh = not force and load_manifest(out).get("build_key") == key
    except EIEError:
        fresh = False
    if fresh:
        print(f"[sim] compile: {out} is up to date", flush=True)
        return out
    from models import load_model

    t0 = time.perf_counter()
    net = load_model(model, seed=seed)
    compiled = compile_network(net, cfg, opts)
    compiled.manifest["seed"] = seed
    compiled.manifest["build_key"] = key
    compiled.manifest["pass_seconds"]["model"] = round(time.perf_counter() - t0, 4)
    emit(compiled, out)
    print(f"[sim] compile: wrote {out} in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def useful_macs(golden, li: int, x) -> int:
    """Non-zero weight x non-zero activation products of layer ``li`` on input ``x``."""
    W = golden.weights[li]
    per_col = np.bincount(W.indices, minlength=W.shape[1])
    return int(per_col[np.asarray(x) != 0].sum())


def layer_rows(manifest: dict, res: dict, golden, gold: dict, cfg) -> list[dict]:
    """Per-layer report rows from the RTL result, the manifest and the golden outputs."""
    rows = []
    chained = manifest.get("chained", True)
    n_layers = len(manifest["layers"])
    samples = res["samples"]
    for li, m in enumerate(manifest["layers"]):
        cycles = int(res["cycles"][0][li])
        cnt = res["counters"][0][li] if res.get("counters") else {}
        entries = cnt.get("entries", [])
        ideal = sum(entries) / cfg.n_pes if entries else float("nan")
        x0 = gold[f"in{li}"][samples[0]]
        macs = useful_macs(golden, li, x0)
        t_us = cycles / cfg.clock_mhz
        # mismatches: every sample's output of this layer that the bench read back
        exp = gold[f"out{li}"]
        mism = 0
        if chained:
            if li == n_layers - 1:
                for si, s in enumerate(samples):
                    mism += int(np.count_nonzero(np.asarray(res["outputs"][si]) != exp[s]))
            elif res.get("layer_outputs"):
                for si, outs in enumerate(res["layer_outputs"]):
                    mism += int(np.count_nonzero(np.asarray(outs[li]) != exp[samples[si]]))
        else:
            for si, s in enumerate(samples):
                mism += int(np.count_nonzero(np.asarray(res["outputs"][si][li]) != exp[s]))
        rows.append({
            "name": m["name"], "rows": m["rows"], "cols": m["cols"],
            "weight_density": m["weight_density"], "act_density": m["act_density"],
            "nnz": m["nnz"], "padding_entries": m["padding_entries"],
            "cycles": cycles, "ideal_cycles": ideal,
            "load_balance_efficiency": ideal / cycles if cycles else float("nan"),
            "time_us": t_us, "useful_macs": macs,
            "gops": 2 * macs / (t_us * 1e3) if t_us else float("nan"),
            "dense_equivalent_gops": 2 * m["rows"] * m["cols"] / (t_us * 1e3) if t_us else 0.0,
            "mismatches": mism,
            "pe_counters": cnt,
        })
    return rows


def print_table(rows: list[dict], cfg) -> None:
    print(f"\n| layer | shape (out x in) | weight dens. | act dens. | non-zeros | padding | "
          f"cycles | model cycles | time @ {cfg.clock_mhz:g} MHz | GOP/s | load balance | "
          f"mismatches |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['rows']} x {r['cols']} | {100 * r['weight_density']:.1f} % | "
              f"{100 * r['act_density']:.1f} % | {r['nnz']:,} | {r['padding_entries']:,} | "
              f"{r['cycles']:,} | {r.get('cycles_model', 0):,} | {r['time_us']:.2f} us | "
              f"{r['gops']:.1f} | "
              f"{100 * r['load_balance_efficiency']:.1f} % | {r['mismatches']} |")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("sim"):
        from sim.ref.golden import GoldenModel
        from sim.rtl.runner import run_rtl

        t0 = time.perf_counter()
        cfg = load_config(args.config)
        opts = options_from_args(args)
        out = ensure_compiled(args.model, args.seed, cfg, force=args.recompile, opts=opts)
        manifest = load_manifest(out)
        n_samples = manifest.get("n_samples", 1)
        if args.samples is not None and args.samples < 1:
            raise EIEError(f"--samples must be at least 1, got {args.samples}")
        samples = list(range(min(n_samples, args.samples or n_samples)))
        res = run_rtl(out, cfg, samples=samples, waves=args.waves,
                      backdoor=not args.host_load, layer_outputs=True)
        images = load_images(out, cfg, manifest["layers"])
        golden = GoldenModel(images, chained=manifest.get("chained", True))
        with np.load(out / "golden.npz") as z:
            gold = {k: z[k] for k in z.files}
        rows = layer_rows(manifest, res, golden, gold, cfg)
        # the fast cycle model beside the RTL (sim.ref.cycle_model; equal to it by construction)
        from sim.ref.cycle_model import run_model

        cm = run_model(out, cfg, samples=samples[:1])
        for li, r in enumerate(rows):
            r["cycles_model"] = cm["cycles"][0][li]
            r["pe_counters_model"] = cm["counters"][0][li]
        total_cycles = sum(r["cycles"] for r in rows)
        report = {
            "model": manifest["model"], "config": cfg.name, "synthetic": manifest["synthetic"],
            "description": manifest["description"], "samples_simulated": len(samples),
            "clock_mhz": cfg.clock_mhz, "layers": rows,
            "totals": {"cycles": total_cycles, "time_us": total_cycles / cfg.clock_mhz,
                       "mismatches": sum(r["mismatches"] for r in rows),
                       "outputs_match_golden": bool(res.get("match", False))},
            "sim": {"simulator": "verilator", "verilator_version":
                    res["build"].get("verilator_version"),
                    "build_s": res["seconds"].get("build"),
                    "run_s": res["seconds"].get("simulate"),
                    "seconds": res["seconds"],
                    "simulated_cycles_per_s": total_cycles * len(samples) /
                    max(res["seconds"].get("simulate", 0), 1e-9)},
        }
        report["cycle_model"] = {
            "seconds": round(sum(cm["seconds"].values()), 4),
            "cycles_equal_rtl": all(r["cycles_model"] == r["cycles"] for r in rows),
            "counters_equal_rtl": all(r["pe_counters_model"] == r["pe_counters"]
                                      for r in rows if r["pe_counters"]),
            "max_rel_error": max((abs(r["cycles_model"] / r["cycles"] - 1) for r in rows
                                  if r["cycles"]), default=0.0)}
        if res.get("run_dir"):
            report["sim"]["run_dir"] = res["run_dir"]
        labels = None
        if manifest["model"] == "mlp_digits" or args.model.endswith(".npz"):
            from models import load_model

            labels = load_model(args.model, seed=args.seed).labels
        if labels is not None and manifest.get("chained", True):
            pred = np.argmax(np.asarray(res["outputs"]), axis=1)
            report["accuracy"] = {"samples": len(samples),
                                  "rtl": float(np.mean(pred == labels[samples])),
                                  "golden": float(np.mean(np.argmax(
                                      gold[f"out{len(rows) - 1}"][samples], 1)
                                      == labels[samples]))}
        write_atomic(out / "report.json", json.dumps(report, indent=1))
        print_table(rows, cfg)
        t = report["totals"]
        print(f"\ntotal: {t['cycles']:,} cycles = {t['time_us']:.2f} us at {cfg.clock_mhz:g} MHz;"
              f" {t['mismatches']} mismatches over {len(samples)} sample(s)")
        if "accuracy" in report:
            a = report["accuracy"]
            print(f"accuracy on {a['samples']} test images: RTL {a['rtl']:.4f}, golden "
                  f"{a['golden']:.4f}")
        s = report["sim"]
        print(f"sim: Verilator {s['verilator_version']}, build {s['build_s']:.1f} s, run "
              f"{s['run_s']:.1f} s ({s['simulated_cycles_per_s']:,.0f} simulated cycles/s); "
              f"wall {time.perf_counter() - t0:.1f} s")
        c = report["cycle_model"]
        print(f"cycle model: {c['seconds'] * 1e3:.0f} ms, cycles equal to the RTL: "
              f"{c['cycles_equal_rtl']}, counters equal: {c['counters_equal_rtl']} (largest "
              f"difference {100 * c['max_rel_error']:.2f} %)")
        if args.waves and res.get("run_dir"):
            for w in sorted(Path(res["run_dir"]).rglob("dump.*")):
                print(f"waveform: {w}")
        print(f"report: {out / 'report.json'}")
        return 1 if t["mismatches"] or not t["outputs_match_golden"] else 0


if __name__ == "__main__":
    sys.exit(main())
