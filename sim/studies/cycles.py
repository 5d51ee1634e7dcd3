"""``python -m sim.studies.cycles`` (``make cycles``): the cycle model of a compiled network,
without the RTL; for a network with LSTM layers, the ESE schedule (:mod:`sim.ref.lstm_schedule`)
beside ESE's published time per frame.

Compiles when stale, runs the cycle model on every sample (``--samples`` limits them) and writes
``cycles.json`` (for machines) and ``cycles.md`` (for people) into the model's output directory.
Per LSTM layer: cycles and microseconds per frame at the configuration's clock, the theoretical
time (one frame's non-zeros over the PEs: ESE's 57.0 us), the ratio, GOP/s per channel and for
``channels`` channels (independent copies: throughput, not latency), the element-wise stage's
share, the padding, and the parts of the first frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from compiler.cli import add_model_args, add_options, options_from_args
from compiler.manifest import load_manifest
from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig, load_config
from hw.arch.errors import ArgumentParser, EIEError, cli_errors
from sim.flow.compile import ensure_compiled
from sim.flow.lock import output_lock
from sim.flow.paths import output_dir
from sim.ref.cycle_model import run_model
from sim.estimates.energy import ESTIMATES, EW_ROW, load_table, lstm_energy
from sim.ref.lstm_schedule import frame_summary, run_sequences, with_counters

#: ESE's published time per frame (shared/reference/ESE.md), with how sure we are of each
ESE_FRAME = {"actual_us": 82.7, "actual_source": "secondary: Synced's best-paper write-up",
             "theoretical_us": 57.0, "theoretical_source": "unconfirmed (32 PEs x 200 MHz over "
             "one frame's non-zeros gives 56.9 us)", "clock_mhz": 200.0, "pes": 32,
             "gops_all_channels": 282.0, "gops_source": "paper (abstract)",
             "system_watts": 41.0, "system_source": "paper (abstract)"}


def frame_energy(cfg: EIEConfig, r, table) -> dict:
    """Energy of one sequence's LSTM layer per estimate (:func:`lstm_energy`), per frame and
    as power, with every module's share."""
    out = {}
    for est in ESTIMATES:
        # the layers on every frame (F) are not the LSTM's: their time is theirs
        e = lstm_energy(cfg, r.counters, r.cycles - sum(r.fc_cycles.values()), len(r.steps),
                        table, est)
        out[est] = {"energy_per_frame_uj": e["energy_per_frame_uj"],
                    "power_mw": e["power_mw"],
                    "modules_uj_per_frame": {k: v / len(r.steps)
                                             for k, v in e["modules_uj"].items()}}
    return out


def lstm_rows(cfg: EIEConfig, res: dict, table=None) -> list[dict]:
    """Per LSTM layer: the per-frame figures averaged over the samples, sample 0's steps and
    its energy (the default 45 nm table unless ``table``)."""
    table = table or load_table()
    rows = []
    for per_sample in res["lstm"]:
        sums = [frame_summary(cfg, r) for r in per_sample]
        row = dict(sums[0])
        for key in ("cycles_per_frame", "cycles_per_frame_mean", "us_per_frame",
                    "ratio_to_theoretical", "gops", "ew_share", "ew_exposed_share",
                    "processed_entries_per_frame", "mac_utilisation"):
            row[key] = float(np.mean([s[key] for s in sums]))
        row["gops_all_channels"] = row["gops"] * cfg.channels
        row["frames_per_s_all_channels"] = cfg.channels * 1e6 / row["us_per_frame"]
        row["vs_ese_actual"] = row["us_per_frame"] / ESE_FRAME["actual_us"]
        row["counters_sample0"] = with_counters(per_sample[0])
        row["energy_sample0"] = frame_energy(cfg, per_sample[0], table)
        rows.append(row)
    return rows


def markdown(rep: dict) -> str:
    cfg = rep["config"]
    lines = [f"# Cycle model: {rep['model']} on {cfg['name']}", "",
             f"{rep['description']}", "",
             f"{cfg['n_pes']} PEs at {cfg['clock_mhz']:g} MHz, queue depth "
             f"{cfg['queue_depth']}, {cfg['channels']} channel(s) (independent copies: they "
             f"multiply throughput, not latency); {len(rep['samples'])} sequence(s).", ""]
    for r in rep["lstm"]:
        lines += [f"## LSTM layer {r['layer']}: {r['frames']} frames", "",
                  "| | per frame | ESE |", "|---|---|---|",
                  f"| cycles (steady state: between the ends of frames 1..T-2) | "
                  f"{r['cycles_per_frame']:,.0f} | |",
                  f"| cycles, mean over all frames (frame 0 has no y part) | "
                  f"{r['cycles_per_frame_mean']:,.0f} | |",
                  f"| time | {r['us_per_frame']:.1f} us | {ESE_FRAME['actual_us']} us "
                  f"({ESE_FRAME['actual_source']}) |",
                  f"| theoretical (non-zeros / PEs) | "
                  f"{r['theoretical_us_per_frame']:.1f} us | {ESE_FRAME['theoretical_us']} us "
                  f"({ESE_FRAME['theoretical_source']}) |",
                  f"| ratio to theoretical | {r['ratio_to_theoretical']:.3f} | "
                  f"{ESE_FRAME['actual_us'] / ESE_FRAME['theoretical_us']:.3f} |",
                  f"| GOP/s, one channel | {r['gops']:.1f} | "
                  f"{ESE_FRAME['gops_all_channels'] / 32:.1f} (282 / 32, derived) |",
                  f"| GOP/s, {cfg['channels']} channel(s) | {r['gops_all_channels']:.1f} | "
                  f"{ESE_FRAME['gops_all_channels']} ({ESE_FRAME['gops_source']}) |",
                  f"| non-zeros / padding entries | {r['nnz_per_frame']:,} / "
                  f"{r['padding_per_frame']:,} | |",
                  f"| entries processed (zero elements of x_t, y_t, m_t are not broadcast) | "
                  f"{r['processed_entries_per_frame']:,.0f} | |",
                  f"| MAC utilisation (entries processed / PEs / cycles, all frames) | "
                  f"{100 * r['mac_utilisation']:.1f} % | "
                  f"{100 * ESE_FRAME['theoretical_us'] / ESE_FRAME['actual_us']:.1f} % "
                  f"(57.0 / 82.7, derived) |",
                  f"| element-wise stage | {r['ew_cycles_per_step']} cycles per step, "
                  f"{100 * r['ew_share']:.1f} % of the time, {100 * r['ew_exposed_share']:.2f} "
                  f"% not hidden | |", "",
                  "First frames of sequence 0 (cycles of each part; X is the frame's own x "
                  "part, run beside the previous frame's EW):", "",
                  "| frame | Y (y part) | EW | X (x part) | P (projection) | F (layers "
                  "on every frame) | frame |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {t} | {s['y']:,} | {s['ew']:,} | {s['x']:,} | {s['p']:,} | "
                  f"{s['f']:,} | {s['frame']:,} |" for t, s in enumerate(r["steps"][:4])]
        lines += energy_lines(r)
    if rep.get("fc"):
        lines += ["## FC layers (cycles, sample 0)", "", "| layer | cycles |", "|---|---|"]
        lines += [f"| {k} | {v:,} |" for k, v in rep["fc"].items()]
        lines.append("")
    lines.append(f"Total cycles, sample 0: {rep['total_cycles'][0]:,}.")
    return "\n".join(lines) + "\n"


def energy_lines(r: dict) -> list[str]:
    """The energy table of one LSTM layer (sequence 0), beside what ESE's figures allow."""
    e = r["energy_sample0"]
    d, lo, hi = e["default"], e["low"], e["high"]
    ese_uj = ESE_FRAME["system_watts"] * ESE_FRAME["actual_us"] / 32
    mods = d["modules_uj_per_frame"]
    total = sum(mods.values())
    lines = ["", f"Energy per frame (sequence 0; the 45 nm table of the FC layers, "
                 f"`sim/estimates/data/energy_45nm.json`, plus the element-wise units "
                 f"`{EW_ROW}`; one channel, on-chip only):", "",
             "| estimate | energy per frame | power |", "|---|---|---|"]
    for name, x in (("default", d), ("low", lo), ("high", hi)):
        lines.append(f"| {name} | {x['energy_per_frame_uj']:.2f} uJ | {x['power_mw']:.0f} mW |")
    lines += ["", "| module | uJ per frame | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | {100 * v / total:.1f} % |" for k, v in mods.items()]
    lines += ["", f"ESE: {ESE_FRAME['system_watts']:g} W for the whole system (FPGA board and "
                  f"DRAM, {ESE_FRAME['system_source']}) running 32 channels gives "
                  f"{ese_uj:.0f} uJ per frame (derived); it is not an on-chip 45 nm figure and "
                  f"the two are not comparable as such.", ""]
    return lines


def run(args, progress=print) -> dict:
    cfg = load_config(args.config)
    opts = options_from_args(args)
    out = output_dir(args.model, cfg, opts, args.seed)
    with output_lock(out):
        ensure_compiled(args.model, args.seed, cfg, opts, out=out, tag="[cycles]",
                        progress=progress)
        manifest = load_manifest(out)
        n = int(manifest.get("n_samples", 1))
        if args.samples is not None and args.samples < 1:
            raise EIEError(f"--samples must be at least 1, got {args.samples}")
        samples = list(range(min(n, args.samples or n)))
        t0 = time.perf_counter()
        rep = {"model": manifest["model"], "description": manifest["description"],
               "synthetic": manifest["synthetic"], "config": cfg.to_dict(),
               "samples": samples, "ese": ESE_FRAME}
        if manifest.get("lstm"):
            res = run_sequences(out, cfg, samples=samples)
            rep.update(lstm=lstm_rows(cfg, res), fc=res["fc_cycles"][0],
                       total_cycles=res["total_cycles"])
        else:
            res = run_model(out, cfg, samples=samples)
            rep.update(lstm=[], fc={lay["name"]: int(c) for lay, c in
                                    zip(manifest["layers"], res.cycles[0])},
                       total_cycles=[int(sum(c)) for c in res.cycles])
        rep["seconds"] = round(time.perf_counter() - t0, 3)
        write_atomic(out / "cycles.json", json.dumps(rep, indent=1))
        write_atomic(out / "cycles.md", markdown(rep))
    progress(markdown(rep))
    progress(f"[cycles] wrote {out / 'cycles.json'} and {out / 'cycles.md'}")
    return rep


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m sim.studies.cycles",
                       description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--samples", type=int, default=None,
                   help="run only the first N input samples (sequences; default: all)")
    add_options(p)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("cycles"):
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
