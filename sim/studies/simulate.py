"""The RTL simulation of a compiled model, as ``python -m sim`` runs it, and its report.json.

:func:`simulate` runs the Verilated array (:func:`sim.rtl.runner.run_rtl`) and the cycle model
(:func:`sim.ref.cycle_model.run_model`) on a compiled model, compares the RTL's outputs bit for
bit with the golden model and its cycles and counters with the cycle model's, and writes
``report.json`` (per-layer rows, totals, the simulator, the cycle model, accuracy).  The
command (``sim/__main__.py``) and the report (``sim.studies.report``, when report.json is
stale) both call it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from hw.arch.atomic import read_npz, write_atomic
from hw.arch.errors import EIEError
from compiler.manifest import load_manifest, recompile_hint
from compiler.options import Options
from models import load_model
from models.data_file import UserData, load_data, with_data
from models.network import Network
from sim.flow.cluster import close, connect, prepare
from sim.flow.compile import ensure_compiled
from sim.ref.cycle_model import run_model
from sim.ref.lstm_schedule import frame_summary, run_sequences, with_counters
from sim.ref.result import RunResult, compare
from sim.rtl.runner import run_rtl
from sim.rtl.shard import run_rtl_sharded
from sim.studies.accuracy import (accuracy_lines, codebook_lines, codebook_rows, data_accuracy,
                                  float_outputs)

#: a run of more samples than this shows progress lines while it runs
FIRST_RUN = 8
#: seconds between two progress lines of a long RTL run (one simulator process throughout)
PROGRESS_S = 10.0


def plain_cycles(model: str, seed: int, cfg, opts: Options, samples: list,
                 data: UserData | None = None) -> RunResult | None:
    """The cycle model of EIE's plain interleave (``--no-permute``) of the same model (on the
    same ``data``), compiled into its own output directory (``+plain``) if stale; None when
    ``opts`` is already plain."""
    if not opts.permute:
        return None
    def say(msg: str) -> None:
        if "is SYNTHETIC" not in msg:  # said once already, by the balanced compile
            print(msg.replace("compile:", "plain interleave:"), flush=True)

    plain = ensure_compiled(model, seed, cfg, replace(opts, permute=False), tag="[sim]",
                            progress=say, data=data)
    return run_model(plain, cfg, samples=samples)


def simulate(out: Path, cfg, *, model: str, seed: int = 0, samples: int | None = None,
             waves: bool = False, preload: bool = True, opts: Options | None = None,
             scheduler: str | None = None, data: UserData | None = None,
             net: Network | None = None) -> tuple[dict, RunResult]:
    """Simulate the compiled model in ``out`` on the RTL and write ``out/report.json``.

    Parameters
    ----------
    out : Path
        ``build/<model>/<config>/`` of a compiled model.
    cfg : EIEConfig
        The configuration it was compiled for.
    model, seed : str, int
        The model as given on the command line (its labels give the accuracy).
    opts : Options, optional
        The compiler options ``out`` was compiled with; when they permute the rows (the
        default), the plain interleave is compiled too and its cycle-model cycles are reported
        beside the RTL's (``cycles_plain``).
    samples : int, optional
        Simulate the first ``samples`` input samples (default: all).
    waves, preload : bool
        As :func:`sim.rtl.runner.run_rtl`.
    scheduler : str, optional
        Shard the samples over a Dask cluster (:mod:`sim.rtl.shard`; ``local`` for a local
        cluster of every core on 127.0.0.1, else an address or a scheduler file).  Without
        one, a long simulation runs in parts with a progress line after each
        (:func:`run_rtl_progress`).
    data : UserData, optional
        The user's data ``out`` was compiled on (``--data``): report.json's ``accuracy`` (the
        float model, the golden model and the RTL against its labels, or their agreement
        with the float model) and ``codebook`` (:mod:`sim.studies.accuracy`).
    net : Network, optional
        The float model on those inputs (:func:`models.data_file.with_data`), when the caller
        has it (else it is loaded when needed).

    Returns
    -------
    (dict, RunResult)
        report.json's content and the RTL's result.
    """
    manifest = load_manifest(out)
    n_samples = manifest.get("n_samples", 1)
    if samples is not None and samples < 1:
        raise EIEError(f"--samples must be at least 1, got {samples}")
    run = list(range(min(n_samples, samples or n_samples)))
    if scheduler is not None and waves:
        raise EIEError("--waves and --scheduler do not go together: trace one run locally")
    model_net = partial(float_model, model, seed, manifest, data, net)
    if scheduler is None:
        return _simulate(out, cfg, manifest, run, model, seed, waves, preload, opts,
                         run_rtl_progress, data, model_net)
    client = connect(None if scheduler == "local" else scheduler)
    try:
        prepare(client)
        return _simulate(out, cfg, manifest, run, model, seed, waves, preload, opts,
                         partial(run_rtl_sharded, client=client, progress_every=PROGRESS_S), data,
                         model_net)
    finally:
        close(client)


def user_data(path, model: str, seed: int, tag: str = "[sim]", net: Network | None = None):
    """``--data``: the checked data file (:func:`models.data_file.load_data`) and the float
    model on its inputs, or ``(None, None)`` without one; a line says what the data are (and
    how a sequence array was read).  ``net``: the model, when the caller has loaded it."""
    if path is None:
        return None, None
    net = net if net is not None else load_model(model, seed=seed)
    data = load_data(path, net)
    what = "sequences" if data.x.ndim == 3 else "samples"
    print(f"{tag} data: {data.n:,} {what} from {path} "
          f"({'with' if data.y is not None else 'without'} labels y), digest {data.digest}",
          flush=True)
    if data.note:
        print(f"{tag} note: {data.note}", flush=True)
    return data, with_data(net, data)


def float_model(model: str, seed: int, manifest: dict, data: UserData | None,
                net: Network | None) -> Network | None:
    """The float network whose accuracy report.json gives: the model on the user's data, or a
    model with labels of its own (mlp_digits, lstm_digits, a .npz with ``y``); None for the
    others (a synthetic model is not loaded only to find it has no labels)."""
    if not manifest.get("chained", True):
        return None
    if data is None and not (manifest["model"] in ("mlp_digits", "lstm_digits")
                             or model.endswith(".npz")):
        return None
    net = net if net is not None else with_data(load_model(model, seed=seed), data)
    return net if data is not None or net.labels is not None else None


def run_rtl_progress(out, cfg, *, samples: list, waves: bool = False, preload: bool = True,
                     layer_outputs: bool = False, progress=print) -> RunResult:
    """:func:`sim.rtl.runner.run_rtl` of ``samples`` (the counters of the first), in one
    simulator process; a run of more than :data:`FIRST_RUN` samples prints a line every
    :data:`PROGRESS_S` seconds while it runs: how many samples are done and about how long
    the rest will take."""
    samples = list(samples)
    long = not waves and len(samples) > FIRST_RUN
    return run_rtl(out, cfg, samples=samples, waves=waves, preload=preload,
                   layer_outputs=layer_outputs, progress=progress,
                   progress_every=PROGRESS_S if long and progress else None)


def _simulate(out, cfg, manifest, run, model, seed, waves, preload, opts, rtl, data,
              model_net):
    """:func:`simulate` with the RTL runner ``rtl`` (:func:`run_rtl_progress` or a sharded
    one); ``model_net()`` gives the float model of the accuracy (:func:`float_model`)."""
    if manifest.get("lstm"):
        return simulate_lstm(out, cfg, manifest, run, waves=waves, preload=preload, rtl=rtl,
                             net=model_net(), data=data)
    res = rtl(out, cfg, samples=run, waves=waves, preload=preload, layer_outputs=True)
    gold = read_npz(out / "golden.npz", recompile_hint(out))
    rows = layer_rows(manifest, res, gold, cfg)
    # the fast cycle model beside the RTL (sim.ref.cycle_model; equal to it by construction)
    cm = run_model(out, cfg, samples=run[:1])
    plain = plain_cycles(model, seed, cfg, opts or Options(), run[:1], data)
    for li, r in enumerate(rows):
        r["cycles_model"] = cm.cycles[0][li]
        r["pe_counters_model"] = cm.counters[0][li]
        if plain is not None:
            # EIE's plain interleave of the same model (cycle model, equal to its RTL)
            ent = sum(plain.counters[0][li]["entries"])
            r["cycles_plain"] = int(plain.cycles[0][li])
            r["load_balance_efficiency_plain"] = ent / cfg.n_pes / r["cycles_plain"]
    report = make_report(manifest, cfg, rows, res, cm, None)
    add_accuracy(report, out, cfg, manifest, res, gold, model_net(), data)
    write_atomic(out / "report.json", json.dumps(report, indent=1))
    return report, res


def add_accuracy(report: dict, out: Path, cfg, manifest: dict, res: RunResult, gold: dict,
                 net: Network | None, data: UserData | None) -> None:
    """report.json's ``accuracy`` and ``codebook`` (:mod:`sim.studies.accuracy`) when ``net``,
    the float model, is given; ``data``: the data file it runs on."""
    if net is None:
        return
    outs = float_outputs(net, res.samples)
    report["accuracy"] = data_accuracy(net, manifest, res, gold, outs=outs,
                                       data=None if data is None else data.describe())
    report["codebook"] = codebook_rows(out, cfg, manifest, gold, outs, res.samples)
    if data is not None:
        report["data"] = data.describe()


def useful_macs(gold: dict, li: int, x) -> int:
    """Non-zero weight x non-zero activation products of layer ``li`` on input ``x`` (from
    ``golden.npz``'s non-zero weights per column, :meth:`GoldenModel.column_nnz`)."""
    if f"nnz_col{li}" not in gold:  # written by the compile since 2026-12-01
        raise EIEError("golden.npz has no per-column non-zero counts (an older compile); "
                       "recompile the model (make compile ... or --recompile)")
    return int(gold[f"nnz_col{li}"][np.asarray(x) != 0].sum())


def layer_mismatches(manifest: dict, res: RunResult, gold: dict, li: int) -> int:
    """Mismatching elements of layer ``li``'s outputs, over every sample the bench read back."""
    exp = gold[f"out{li}"]
    samples = res.samples
    if not manifest.get("chained", True):
        return sum(int(np.count_nonzero(np.asarray(res.outputs[si][li]) != exp[s]))
                   for si, s in enumerate(samples))
    if li == len(manifest["layers"]) - 1:
        return sum(int(np.count_nonzero(np.asarray(res.outputs[si]) != exp[s]))
                   for si, s in enumerate(samples))
    return sum(int(np.count_nonzero(np.asarray(outs[li]) != exp[samples[si]]))
               for si, outs in enumerate(res.layer_outputs))


def layer_rows(manifest: dict, res: RunResult, gold: dict, cfg) -> list[dict]:
    """Per-layer report rows from the RTL result, the manifest and the golden outputs."""
    rows = []
    for li, m in enumerate(manifest["layers"]):
        cycles = int(res.cycles[0][li])
        cnt = res.counters[0][li] if res.counters else {}
        entries = cnt.get("entries", [])
        ideal = sum(entries) / cfg.n_pes if entries else float("nan")
        macs = useful_macs(gold, li, gold[f"in{li}"][res.samples[0]])
        t_us = cycles / cfg.clock_mhz
        rows.append({
            "name": m["name"], "rows": m["rows"], "cols": m["cols"],
            "weight_density": m["weight_density"], "act_density": m["act_density"],
            "nnz": m["nnz"], "padding_entries": m["padding_entries"],
            "cycles": cycles, "ideal_cycles": ideal,
            "load_balance_efficiency": ideal / cycles if cycles else float("nan"),
            "time_us": t_us, "useful_macs": macs,
            "gops": 2 * macs / (t_us * 1e3) if t_us else float("nan"),
            "dense_equivalent_gops": 2 * m["rows"] * m["cols"] / (t_us * 1e3) if t_us else 0.0,
            "mismatches": layer_mismatches(manifest, res, gold, li),
            "pe_counters": cnt,
        })
    return rows


def print_table(rows: list[dict], cfg) -> None:
    plain = all("cycles_plain" in r for r in rows)
    print(f"\n| layer | shape (out x in) | weight dens. | act dens. | non-zeros | padding | "
          f"cycles | model cycles |{' plain interleave (model) |' if plain else ''} "
          f"time @ {cfg.clock_mhz:g} MHz | GOP/s | load balance |"
          f"{' plain load balance |' if plain else ''} mismatches |")
    print("|---" * (12 + 2 * plain) + "|")
    for r in rows:
        p_cyc = f" {r['cycles_plain']:,} |" if plain else ""
        p_lb = f" {100 * r['load_balance_efficiency_plain']:.1f} % |" if plain else ""
        print(f"| {r['name']} | {r['rows']} x {r['cols']} | {100 * r['weight_density']:.1f} % | "
              f"{100 * r['act_density']:.1f} % | {r['nnz']:,} | {r['padding_entries']:,} | "
              f"{r['cycles']:,} | {r.get('cycles_model', 0):,} |{p_cyc} {r['time_us']:.2f} us | "
              f"{r['gops']:.1f} | "
              f"{100 * r['load_balance_efficiency']:.1f} % |{p_lb} {r['mismatches']} |")


def sim_summary(res: RunResult, total_cycles: int, n_samples: int) -> dict:
    """The ``sim`` entry of report.json: the simulator and its timings."""
    sec = res.seconds
    out = {"simulator": "verilator", "verilator_version": (res.build or {}).get(
               "verilator_version"),
           "build_s": sec.get("build"), "run_s": sec.get("simulate"),
           "seconds": sec,
           "simulated_cycles_per_s": total_cycles * n_samples /
           max(sec.get("simulate", 0), 1e-9)}
    if sec.get("compute") and res.sim_cycles:
        # where the simulator process's time went: the array computing (start or resume to
        # the next pause), host I/O (loads, read-back, counters) and start-up (the process,
        # the model's construction, the $fread preload, cocotb and the bench loading the model)
        out.update({
            "compute_cycles": res.compute_cycles,
            "compute_s": sec["compute"],
            "compute_cycles_per_s": res.compute_cycles / max(sec["compute"], 1e-9),
            "io_cycles": res.sim_cycles - res.compute_cycles,
            "io_s": round(sec["run"] - sec["compute"], 3),
            "startup_s": round(sec["simulate"] - sec["run"], 3)})
    if res.run_dir:
        out["run_dir"] = res.run_dir
    return out


def cycle_model_summary(rtl: RunResult, model: RunResult) -> dict:
    """The ``cycle_model`` entry of report.json: the cycle model against the RTL."""
    c = compare(rtl, model)
    return {"seconds": round(sum(model.seconds.values()), 4),
            "cycles_equal_rtl": c.cycles_equal, "counters_equal_rtl": c.counters_equal,
            "max_rel_error": c.max_rel_error}


def pass_rows(manifest: dict, res: RunResult, cm: RunResult) -> list[dict]:
    """The ``passes`` entry of report.json: every pass (output batch x column batch of a
    layer, compiler.passes) with its block, segment and cycles on the RTL and the cycle model
    (first sample)."""
    out = []
    for p, m in enumerate(manifest["passes"]):
        out.append({k: m[k] for k in ("name", "layer", "row_batch", "col_batch", "row0", "col0",
                                      "out_len", "in_len", "keep", "segment")}
                   | {"cycles": int(res.pass_cycles[0][p]) if res.pass_cycles else None,
                      "cycles_model": int(cm.pass_cycles[0][p]) if cm.pass_cycles else None})
    return out


def segment_rows(manifest: dict, passes: list[dict]) -> list[dict]:
    """The ``segments`` entry of report.json: per segment its passes, the words loaded into each
    PE's Spmat SRAM and pointer banks before it runs, the cycles that load takes at the host
    interface (computed from the images, compiler manifest) and its passes' compute cycles."""
    cycles = {r["name"]: r["cycles"] or 0 for r in passes}
    return [{**seg, "compute_cycles": sum(cycles[name] for name in seg["layers"])}
            for seg in manifest.get("memory", {}).get("segments", [])]


def print_passes(passes: list[dict]) -> None:
    """The pass table, when some layer runs in more than one pass."""
    if len({p["layer"] for p in passes}) == len(passes):
        return
    print("\n| pass | rows | columns | write-back | segment | cycles | model cycles |")
    print("|---|---|---|---|---|---|---|")
    for p in passes:
        print(f"| {p['name']} | {p['row0']:,}..{p['row0'] + p['out_len'] - 1:,} | "
              f"{p['col0']:,}..{p['col0'] + p['in_len'] - 1:,} | "
              f"{'no (keeps the sums)' if p['keep'] else 'yes'} | {p['segment']} | "
              f"{p['cycles']:,} | {p['cycles_model']:,} |")


def make_report(manifest: dict, cfg, rows: list[dict], res: RunResult, cm: RunResult,
                acc: dict | None) -> dict:
    """report.json: per-layer rows, totals, the simulator, the cycle model and accuracy."""
    total_cycles = sum(r["cycles"] for r in rows)
    report = {
        "model": manifest["model"], "config": cfg.name, "synthetic": manifest["synthetic"],
        "description": manifest["description"], "samples_simulated": len(res.samples),
        "clock_mhz": cfg.clock_mhz, "layers": rows,
        "totals": {"cycles": total_cycles, "time_us": total_cycles / cfg.clock_mhz,
                   "mismatches": sum(r["mismatches"] for r in rows),
                   "outputs_match_golden": bool(res.match)},
        "sim": sim_summary(res, total_cycles, len(res.samples)),
        "cycle_model": cycle_model_summary(res, cm),
        "passes": pass_rows(manifest, res, cm),
    }
    report["segments"] = segment_rows(manifest, report["passes"])
    if acc is not None:
        report["accuracy"] = acc
    return report


def simulate_lstm(out: Path, cfg, manifest: dict, run: list, *, waves: bool,
                  preload: bool, rtl=run_rtl, net: Network | None = None,
                  data: UserData | None = None) -> tuple[dict, RunResult]:
    """A network of one LSTM layer on the RTL (the central unit's LSTM program, the bench's
    ``LSTMRunner``): every ``y_t`` of every sequence against the golden model, the cycles of
    every sequence against the ESE schedule's cycle model; ``report.json`` with the per-frame
    figures of :func:`sim.ref.lstm_schedule.frame_summary`, and with ``net`` (the float model
    on the compiled inputs, ``data``'s) its accuracy (:func:`add_accuracy`)."""
    plan = manifest["lstm"][0]
    if not cfg.lstm:
        raise EIEError(f"{manifest['model']} has an LSTM layer, and config {cfg.name!r} has no "
                       f"LSTM hardware (lstm: false); simulate it with CONFIG=ese or a config "
                       f"with \"lstm\": true")
    if plan.get("program") is None or int(plan["gates"]) != 0:
        why = plan.get("program_note") or "its first layer is not the LSTM"
        raise EIEError(f"{manifest['model']}: the RTL's LSTM program cannot run it on config "
                       f"{cfg.name!r}: {why}; make compile, make compress and make cycles "
                       f"MODEL={manifest['model']} (the cycle model of the ESE schedule) can")
    res = rtl(out, cfg, samples=run, waves=waves, preload=preload)
    model = lstm_model(out, cfg, res.shards or [run])
    agree = lstm_agreement(out, cfg, plan, res, model)
    rtl_total, n_l, frames = agree["rtl_total"], agree["n_l"], agree["frames"]
    mean = {k: float(np.mean([f[k] for f in frames]))
            for k in ("cycles_per_frame", "us_per_frame", "ratio_to_theoretical", "gops",
                      "ew_share")}
    f0 = frames[0]
    report = {
        "kind": "lstm", "model": manifest["model"], "config": cfg.name,
        "synthetic": manifest["synthetic"], "description": manifest["description"],
        "samples_simulated": len(res.samples), "clock_mhz": cfg.clock_mhz,
        "channels": cfg.channels, "frames": f0["frames"],
        "per_frame": {**mean, "theoretical_us_per_frame": f0["theoretical_us_per_frame"],
                      "nnz_per_frame": f0["nnz_per_frame"],
                      "padding_per_frame": f0["padding_per_frame"],
                      "gops_all_channels": mean["gops"] * cfg.channels},
        "totals": {"cycles": rtl_total, "mismatches": 0 if res.match else None,
                   "outputs_match_golden": bool(res.match)},
        "sim": sim_summary(res, int(np.mean(rtl_total)), len(res.samples)),
        "cycle_model": {"cycles": [r.cycles for r in model["lstm"][0]],
                        "fc_cycles": [list(f.values()) for f in model["fc_cycles"]],
                        "cycles_equal_rtl": agree["cycles"], "seconds": model["seconds"]},
        "pass_cycles_rtl": res.pass_cycles,
        "fc_cycles_rtl": [c[n_l:] for c in res.cycles],
    }
    report["cycle_model"]["counters_equal_rtl"] = agree["counters"]
    report["counter_differences"] = agree["counter_differences"]
    report["cycle_model"]["frame_cycles_equal_rtl"] = agree["frame_cycles"]
    report["steps_sample0"] = [{**s, "rtl": c} for s, c in zip(f0["steps"],
                                                               res.frame_cycles[0])]
    report["totals"]["final_c_match_golden"] = agree["final_c"]
    report["counters_rtl_sample0"] = res.counters[0] if res.counters else None
    if net is not None:
        gold = {"output": read_npz(out / "golden.npz", recompile_hint(out))["output"]}
        add_accuracy(report, out, cfg, manifest, res, gold, net, data)
    write_atomic(out / "report.json", json.dumps(report, indent=1))
    return report, res


def lstm_agreement(out: Path, cfg, plan: dict, res: RunResult, model: dict) -> dict:
    """An LSTM network's RTL run against the cycle model of the ESE schedule and the golden
    model: ``cycles`` (every sequence's LSTM program, with the layers on every frame, and the
    FC layers' after it), ``frame_cycles`` (every frame, measured at its pause), ``counters``
    (and ``counter_differences``), ``final_c`` (the cells' last state read back); plus
    ``rtl_total``, ``n_l`` (the LSTM's matrix layers) and ``frames`` (frame summaries)."""
    per_frame = bool(plan["return_sequences"])
    # the cycles of the LSTM's matrix layers (the gates and the projection) come first
    n_l = 1 if plan["proj"] is None else 2
    rtl_total = [int(sum(c) if per_frame else sum(c[:n_l])) for c in res.cycles]
    frames = [frame_summary(cfg, r) for r in model["lstm"][0]]
    counters, diffs = lstm_counters_equal(res, model, per_frame)
    c_gold = read_npz(out / "golden.npz", recompile_hint(out))["lstm0_c"][res.samples][:, -1]
    c_gold = c_gold.astype(np.int64).tolist()
    return {"cycles": rtl_total == [r.cycles for r in model["lstm"][0]]
            and [c[n_l:] for c in res.cycles] == [list(f.values()) for f in model["fc_cycles"]],
            "frame_cycles": res.frame_cycles == [[s["period"] for s in f["steps"]]
                                                 for f in frames],
            "counters": counters, "counter_differences": diffs,
            "final_c": res.cell_states == c_gold,
            "rtl_total": rtl_total, "n_l": n_l, "frames": frames}


def lstm_model(out: Path, cfg, parts: list) -> dict:
    """The ESE schedule's cycle model of the samples, run by run as the RTL ran them (one run,
    or the shards of a sharded one: each begins with empty Spmat output registers)."""
    runs = [run_sequences(out, cfg, samples=p) for p in parts]
    if len(runs) == 1:
        return runs[0]
    merged = {k: [x for r in runs for x in r[k]] for k in ("samples", "fc_cycles",
                                                         "fc_counters", "total_cycles")}
    merged["lstm"] = [[x for r in runs for x in r["lstm"][k]] for k in range(len(runs[0]["lstm"]))]
    merged["seconds"] = round(sum(r["seconds"] for r in runs), 3)
    return merged


def lstm_counters_equal(res: RunResult, model: dict, per_frame: bool) -> tuple[bool, list]:
    """Every per-PE counter the RTL read (the counter samples: the LSTM program's run, the FC
    layers' run on ``y_T``) equal to the cycle model's; the differences as ``(sample, run,
    counter)``."""
    diffs = []
    for i, cnt in enumerate(res.counters):
        lstm = {k: np.asarray(v, np.int64) for k, v in with_counters(model["lstm"][0][i]).items()}
        fc = {k: np.asarray(v, np.int64) for k, v in model["fc_counters"][i].items()}
        want = {"program": {k: v + fc.get(k, 0) for k, v in lstm.items()} if per_frame
                else lstm}
        if "after" in cnt:
            want["after"] = fc
        for run, exp in want.items():
            got = cnt.get(run, {})
            for name in sorted(set(exp) | set(got)):
                if name not in got or name not in exp or \
                        not np.array_equal(np.asarray(got[name]), exp[name]):
                    diffs.append([i, run, name])
    return bool(res.counters) and not diffs, diffs


def print_lstm_summary(report: dict, cfg, wall_s: float) -> None:
    f = report["per_frame"]
    print(f"\n{report['model']} on {cfg.name}: {report['samples_simulated']} sequence(s) of "
          f"{report['frames']} frames through the RTL's LSTM program")
    cyc = report["totals"]["cycles"]
    print(f"every output equal to the golden model: {report['totals']['outputs_match_golden']} "
          f"(the final c_t: {report['totals'].get('final_c_match_golden')}); "
          f"cycles equal to the cycle model: {report['cycle_model']['cycles_equal_rtl']}, "
          f"every frame's: {report['cycle_model']['frame_cycles_equal_rtl']}, counters: "
          f"{report['cycle_model']['counters_equal_rtl']} "
          f"(the LSTM program's: {', '.join(f'{c:,}' for c in cyc[:4])}"
          f"{f' ... ({len(cyc)} sequences)' if len(cyc) > 4 else ''})")
    print_steps(report["steps_sample0"])
    print(f"per frame (steady state): {f['cycles_per_frame']:,.0f} cycles = "
          f"{f['us_per_frame']:.1f} us at {cfg.clock_mhz:g} MHz, {f['ratio_to_theoretical']:.3f}x "
          f"the theoretical {f['theoretical_us_per_frame']:.1f} us; {f['gops']:.1f} GOP/s per "
          f"channel, {f['gops_all_channels']:.1f} for {report['channels']} channel(s); ESE: "
          f"82.7 us (secondary), 57.0 us theoretical (unconfirmed)")
    print_accuracy_and_sim(report, wall_s, "sequences")


def print_steps(steps: list, first: int = 3) -> None:
    """The frames of sequence 0: each part's cycles (the cycle model's; X(t) runs beside
    EW(t - 1)) and the frame's cycles on the RTL (from the previous frame's end)."""
    head = ("frame", "Y (y part)", "EW", "X (x part)", "P (proj)", "F (per-frame FC)",
            "frame (RTL)")
    show = list(enumerate(steps))
    show = show if len(show) <= first + 1 else show[:first] + show[-1:]
    rows = [[str(t), *(f"{s[k]:,}" for k in ("y", "ew", "x", "p", "f", "rtl"))]
            for t, s in show]
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(n) for h, n in zip(head, w)))
    for i, r in enumerate(rows):
        if i == first and len(steps) > first + 1:
            print("  ".join("...".rjust(n) for n in w))
        print("  ".join(v.rjust(n) for v, n in zip(r, w)))


def print_accuracy_and_sim(report: dict, wall_s: float, what: str) -> None:
    """The accuracy line (models with labels) and the simulator's line of ``make sim``."""
    if "accuracy" in report:
        for line in accuracy_lines(report["accuracy"], what):
            print(line)
    if "codebook" in report:
        print("\n".join(codebook_lines(report["codebook"])[1:]))
    s = report["sim"]
    print(f"sim: Verilator {s['verilator_version']}, build {s['build_s']:.1f} s, run "
          f"{s['run_s']:.1f} s ({s['simulated_cycles_per_s']:,.0f} simulated cycles/s); "
          f"wall {wall_s:.1f} s")
    if "compute_cycles_per_s" in s:
        print(f"sim time: compute {s['compute_cycles']:,} cycles in {s['compute_s']:.2f} s "
              f"({s['compute_cycles_per_s']:,.0f} cycles/s), host I/O {s['io_cycles']:,} cycles "
              f"in {s['io_s']:.2f} s, start-up {s['startup_s']:.2f} s")


def outputs_match(report: dict) -> bool:
    """Every output the RTL computed equals the golden model's (an LSTM's final ``c_t`` too)."""
    t = report["totals"]
    return not t["mismatches"] and t["outputs_match_golden"] and \
        t.get("final_c_match_golden", True)


def print_summary(report: dict, cfg, wall_s: float) -> None:
    """The per-layer table and the totals, accuracy, simulator and cycle-model lines."""
    if report.get("kind") == "lstm":
        print_lstm_summary(report, cfg, wall_s)
        return
    print_table(report["layers"], cfg)
    print_passes(report.get("passes", []))
    t = report["totals"]
    n = report["samples_simulated"]
    print(f"\ntotal: {t['cycles']:,} cycles = {t['time_us']:.2f} us at {cfg.clock_mhz:g} MHz;"
          f" {t['mismatches']} mismatches over {n} sample(s)")
    for i, seg in enumerate(report.get("segments", [])):
        print(f"segment {i} (passes {', '.join(seg['layers'])}): load "
              f"{seg['spmat_words']:,} Spmat + {seg['ptr_words']:,} pointer words per PE = "
              f"{seg['reload_cycles']:,} cycles at the host interface (array idle); compute "
              f"{seg['compute_cycles']:,} cycles")
    print_accuracy_and_sim(report, wall_s, "images")
    c = report["cycle_model"]
    print(f"cycle model: {c['seconds'] * 1e3:.0f} ms, cycles equal to the RTL: "
          f"{c['cycles_equal_rtl']}, counters equal: {c['counters_equal_rtl']} (largest "
          f"difference {100 * c['max_rel_error']:.2f} %)")
