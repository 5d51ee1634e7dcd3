"""``python -m sim.studies.report`` (``make report``): energy, area and comparison report.

``python -m sim.studies.report --model alexnet_fc [--config eie64] [--energy-table my.json]``

Writes, under ``build/<model>/<config>/``: ``report.md``, a self-contained ``report.html`` (plots
embedded as base64 PNG; the same PNGs under ``plots/``) and ``report_energy.json`` (energy, area,
CPU baselines and published comparisons, for machines).

Freshness: the model is compiled if stale (as ``python -m sim`` does); when ``report.json`` is
missing or older than ``manifest.json``, the RTL simulation runs first (``sim.studies.simulate``),
so the report always describes the compiled images it sits next to.  A simulation that does not
match the golden model stops the report (exit 2).

``--data FILE.npz`` (``x``, optional labels ``y``: :mod:`models.data_file`) compiles and
simulates the user's inputs, in their own directory (``<config>+data-<8 hex>``); the report then
has a section on the accuracy of the float model, the golden model and the RTL on them, the
shared weights every layer uses and the RMS error fixed point costs each layer's output
(report.json's ``accuracy`` and ``codebook``, :mod:`sim.studies.accuracy`).

CPU baselines are measured in the same run on this machine: NumPy dense GEMV and SciPy CSR SpMV
in float32, batch 1, on the layer's decoded weights and its golden input, median of repeats.
Their energy is time x an *assumed* CPU power (``--cpu-watts``), stated as such in the report.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.cli import add_model_args
from hw.arch.config import EIEConfig, load_config
from hw.arch.atomic import read_json, read_npz
from hw.arch.errors import ArgumentParser, EIEError, cli_errors
from compiler.layout import load_images
from compiler.manifest import load_manifest, recompile_hint
from models import load_model
from sim.estimates.area import AREA_ROWS, area_report
from sim.estimates.energy import (ESTIMATES, ROWS, eie_layer_validation, eie_module_validation,
                                  energy_report, load_published, load_table, table2_layer)
from sim.estimates.synth import synth_dir
from sim.ref.golden import GoldenModel
from sim.flow.compile import ensure_compiled
from sim.flow.lock import output_lock
from sim.flow.paths import output_dir
from sim.studies.accuracy import accuracy_section
from sim.studies.doc import Doc, _f, _png, _pyplot, _ratio, write_report
from sim.studies.lstm_report import build_lstm_report
from sim.studies.simulate import outputs_match, print_summary, simulate, user_data

#: default assumption for the local CPU's power while it runs a baseline
CPU_WATTS_PER_CORE = 10.0


# ---- freshness -----------------------------------------------------------------------------

def ensure_report(model: str, seed: int, cfg: EIEConfig, data=None, net=None) -> Path:
    """Compile if stale; simulate if ``report.json`` is missing or older than the manifest
    (``data``, ``net``: the user's data and the float model on it, as
    :func:`sim.studies.simulate.simulate` takes them)."""
    out = ensure_compiled(model, seed, cfg, tag="[report]", data=data)
    rp, mp = out / "report.json", out / "manifest.json"
    state = "missing"
    if rp.exists():
        state = "stale"
        if rp.stat().st_mtime >= mp.stat().st_mtime:
            try:  # a report.json cut short (a crash, a full disk) is simulated again
                _read_report(out)
                print(f"[report] {rp} is up to date", flush=True)
                return out
            except EIEError:
                state = "damaged"
    print(f"[report] {rp} is {state}: running the RTL simulation (python -m sim)", flush=True)
    t0 = time.perf_counter()
    report, _ = simulate(out, cfg, model=model, seed=seed, data=data, net=net)
    print_summary(report, cfg, time.perf_counter() - t0)
    if not outputs_match(report):
        raise EIEError(f"the RTL simulation of {model} on {cfg.name} does not match the golden "
                       f"model ({report['totals']['mismatches']} mismatches); no report written")
    return out


# ---- CPU baselines -------------------------------------------------------------------------

def _median_time(fn, min_repeats: int = 5, budget_s: float = 0.3, max_repeats: int = 200):
    fn()  # warm-up (page faults, BLAS thread start)
    times, t_start = [], time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats
                                        or time.perf_counter() - t_start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def cpu_baselines(golden, gold: dict, manifest: dict, cfg: EIEConfig, progress=print) -> list:
    """Per layer: NumPy dense GEMV and SciPy CSR SpMV times (us), float32, batch 1."""
    res = []
    for li, m in enumerate(manifest["layers"]):
        Wi = golden.weights[li].tocsr()
        scale = np.float32(2.0 ** -int(m["w_frac"]))
        Ws = (Wi.astype(np.float32) * scale).tocsr()
        Wd = np.ascontiguousarray(Ws.toarray())
        x = (np.asarray(gold[f"in{li}"][0], dtype=np.float32)
             * np.float32(2.0 ** -cfg.act_frac))
        t_dense, n_dense = _median_time(lambda W=Wd, v=x: W @ v)
        t_csr, n_csr = _median_time(lambda W=Ws, v=x: W @ v)
        res.append({"name": m["name"], "dense_gemv_us": t_dense * 1e6, "dense_repeats": n_dense,
                    "csr_spmv_us": t_csr * 1e6, "csr_repeats": n_csr, "nnz": int(Ws.nnz)})
        progress(f"[report] CPU baselines {m['name']}: dense {t_dense * 1e6:,.0f} us, "
                 f"CSR {t_csr * 1e6:,.0f} us")
    return res


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class ReportInputs:
    """Everything the sections read: the simulation's report.json, the compiler's manifest,
    the energy and area models, the CPU baselines and the published EIE figures."""

    cfg: EIEConfig
    table: object
    cpu_watts: float
    report: dict
    manifest: dict
    pub: dict
    er: dict
    base: list
    ar: dict | None

    @property
    def layers(self) -> list:
        return self.report["layers"]

    @property
    def lnames(self) -> list:
        return [r["name"] for r in self.layers]

    @property
    def energy(self) -> dict:
        """Per-layer energy model, by layer name."""
        return {r["name"]: L for r, L in zip(self.layers, self.er["layers"])}

    @property
    def cpu(self) -> dict:
        """CPU baselines, by layer name."""
        return {b["name"]: b for b in self.base}

    @property
    def t4(self) -> dict:
        return self.pub["table4"]

    @property
    def plats(self) -> list:
        return list(self.t4["platforms"])

    def published(self, platform: str, lname: str):
        """EIE Table IV time (us) of ``platform`` on the benchmark layer ``lname`` stands for."""
        b = self.pub["layer_names"].get(self.report["model"], {}).get(lname)
        t4 = self.t4
        return t4["platforms"][platform][t4["layers"].index(b)] if b in t4["layers"] else None

    def pub_power(self, platform: str, lname: str):
        pw = self.pub["power_w"].get(platform, {})
        names = self.pub["layer_names"].get(self.report["model"], {})
        return pw.get("*", pw.get(names.get(lname)))


def _read_report(out: Path) -> dict:
    """``out/report.json`` (written by ``python -m sim``), refused when it is not whole."""
    rep = read_json(out / "report.json", "report",
                    f"simulate again (make sim with the same MODEL and CONFIG), or delete "
                    f"{out / 'report.json'}")
    if not isinstance(rep, dict) or not isinstance(rep.get("layers"), list):
        raise EIEError(f"{out / 'report.json'} is not a report of python -m sim (no layers); "
                       f"simulate again (make sim with the same MODEL and CONFIG)")
    return rep


def report_inputs(cfg: EIEConfig, out: Path, table, cpu_watts: float, area: bool,
                  progress) -> ReportInputs:
    """Load and compute everything the report of ``out`` shows."""
    report = _read_report(out)
    manifest = load_manifest(out)
    images = load_images(out, cfg, manifest["layers"], manifest["passes"], manifest.get("lstm"))
    golden = GoldenModel(images, chained=manifest.get("chained", True))
    gold = read_npz(out / "golden.npz", recompile_hint(out))
    return ReportInputs(
        cfg=cfg, table=table, cpu_watts=cpu_watts, report=report, manifest=manifest,
        pub=load_published(), er=energy_report(cfg, report, manifest, table),
        base=cpu_baselines(golden, gold, manifest, cfg, progress),
        ar=area_report(cfg, table, progress=progress) if area else None)


def section_headline(doc: Doc, c: ReportInputs) -> None:
    cfg, report, E = c.cfg, c.report, c.energy
    doc.section("Headline")
    doc.p(f"{report['description']}. Configuration `{cfg.name}` ({cfg.n_pes} PEs, queue depth "
          f"{cfg.queue_depth}, {cfg.clock_mhz:g} MHz); cycles from the Verilator RTL simulation "
          f"({report['samples_simulated']} sample(s), outputs bit-exact with the golden model: "
          f"{report['totals']['outputs_match_golden']}). Energy: default estimate (low-high).")
    rows = []
    for r in c.layers:
        e = E[r["name"]]["estimates"]
        eie = c.published("EIE actual (64 PEs, 800 MHz)", r["name"])
        rows.append([r["name"], f"{r['rows']} x {r['cols']}", f"{r['cycles']:,}",
                     _f(r["time_us"], ".2f"), _f(eie), _f(r["gops"]),
                     f"{e['default']['energy_uj']:.1f} ({e['low']['energy_uj']:.1f}-"
                     f"{e['high']['energy_uj']:.1f})",
                     _f(e["default"]["power_mw"], ",.0f"),
                     _f(e["default"]["pj_per_useful_mac"]),
                     _f(100 * r["load_balance_efficiency"])])
    doc.table(["layer", "out x in", "cycles", "time (us)", "EIE actual (us)", "GOP/s",
               "energy (uJ)", "power (mW)", "pJ / useful MAC", "load balance (%)"], rows)
    if c.ar:
        d = c.ar["estimates"]["default"]
        doc.p(f"Area: **{d['pe_mm2']:.3f} mm^2 per PE**, **{d['array_mm2']:.3g} mm^2** for the "
              f"array (EIE: 0.638 and 40.8 mm^2).")


def section_accuracy(doc: Doc, c: ReportInputs) -> None:
    """The accuracy on the data and what the codebooks cost (:func:`accuracy_section`)."""
    accuracy_section(doc, c.report, c.cfg)


def _rng(d: dict, spec: str) -> str:
    """``default (low-high)`` of a ``{low, default, high}`` dict."""
    return f"{format(d['default'], spec)} ({format(d['low'], spec)}-{format(d['high'], spec)})"


def _verdict(ok) -> str:
    return "-" if ok is None else ("pass" if ok else "**FAIL**")


def section_eie(doc: Doc, c: ReportInputs) -> None:
    """EIE Table II and Table IV beside eiegen's figures, and the validation table."""
    cfg, pub = c.cfg, c.pub
    val = pub["validation"]
    model = c.report["model"]
    doc.section("Beside EIE: Table II (one PE) and Table IV (per layer)")
    li = table2_layer(model, c.report, pub)
    lname = c.lnames[li]
    mods = eie_module_validation(cfg, c.report, c.er, pub, li)
    area = c.ar["estimates"] if c.ar else None
    t2a = {x["module"]: x["area_um2"] for x in pub["table2"]["rows"]}
    rows = []
    for v in mods:
        m = v["module"]
        if area and m in t2a:
            a = {e: area[e]["pe"]["rows_um2"][m] for e in ESTIMATES}
        elif area:
            a = {e: area[e]["pe"]["total_um2"] for e in ESTIMATES}
        else:
            a = None
        eie_a = t2a.get(m, pub["table2"]["total_area_um2"])
        a_ok = abs(a["default"] / eie_a - 1) <= val["area_tolerance"] if a else None
        rows.append([m, _rng(v["power_mw"], ".3f"), f"{v['eie_power_mw']:.3f}",
                     f"{v['power_ratio']:.2f}", _verdict(v["ok"]), v["action"],
                     _rng(v["pj_per_action"], ".2f"), f"{v['eie_pj_per_action']:.2f}",
                     _rng(a, ",.0f") if a else "-", f"{eie_a:,}",
                     f"{a['default'] / eie_a:.2f}" if a else "-", _verdict(a_ok)])
    tol_m, tol_t = 100 * val["module_power_tolerance"], 100 * val["total_power_tolerance"]
    doc.table(["Table II row", f"power (mW), {lname}", "EIE (mW)", "ratio",
               f"within {tol_m:.0f} % ({tol_t:.0f} % total)", "action",
               "energy per action (pJ)", "EIE-implied (pJ)", "area (um^2)", "EIE (um^2)",
               "ratio", f"within {100 * val['area_tolerance']:.0f} %"], rows)
    doc.p(f"eiegen: default estimate (low-high) for `{cfg.name}`, per PE, clock share included; "
          f"power averaged over layer {lname}. Energy per action = the row's energy / its "
          f"actions on {lname} (the activation queue and the total per PE-cycle). EIE: "
          f"{pub['table2']['source']}; EIE-implied energies: {pub['calibration_pj']['source']} "
          f"(they assume one Spmat and one pointer read per 8 cycles; eiegen counts the real "
          f"reads). Area: SRAM bits plus Yosys logic, filler in the total only.")
    if area:
        d, lo, hi = area["default"], area["low"], area["high"]
        arr_ok = abs(d["array_mm2"] / pub["area_mm2"] - 1) <= val["area_tolerance"]
        doc.p(f"Array: **{d['array_mm2']:.2f} mm^2** ({lo['array_mm2']:.2f}-"
              f"{hi['array_mm2']:.2f}) for {cfg.n_pes} PEs and the central unit; EIE "
              f"{pub['area_mm2']} mm^2: ratio {d['array_mm2'] / pub['area_mm2']:.2f}, "
              f"{_verdict(arr_ok)}.")
    vrows = eie_layer_validation(model, c.report, c.er, pub)
    doc.table(["layer", "EIE benchmark", "time (us)", "EIE actual (us)", "ratio",
               "energy (uJ)", f"EIE energy (uJ, time x {val['power_w']:g} W)", "ratio"],
              [[v["name"], v["benchmark"] or "-", f"{v['time_us']:.2f}",
                _f(v["eie_time_us"]), _f(v["time_ratio"], ".2f"),
                f"{v['energy_uj']:.2f} ({v['energy_low_uj']:.2f}-{v['energy_high_uj']:.2f})",
                _f(v["eie_energy_uj"], ".2f"), _f(v["energy_ratio"], ".2f")] for v in vrows])
    doc.p("Time: eiegen's RTL cycles / clock; EIE: Table IV, actual (64 PEs, 800 MHz).")
    doc.p(f"**Validation** (energy within {100 * val['energy_tolerance']:.0f} % of EIE's "
          f"time x {val['power_w']:g} W). {val['calibration_note']}.")
    doc.table(["layer", "EIE benchmark", "eiegen energy (uJ)", "EIE energy (uJ)", "ratio",
               f"within {100 * val['energy_tolerance']:.0f} %",
               "EIE Table II at this activity (uJ)", "its ratio", "calibration layer"],
              [[v["name"], v["benchmark"] or "-", f"{v['energy_uj']:.2f}",
                _f(v["eie_energy_uj"], ".2f"), _f(v["energy_ratio"], ".2f"), _verdict(v["ok"]),
                _f(v["table2_uj"], ".2f"), _f(v["table2_ratio"], ".2f"),
                "yes (calibrated here)" if v["calibration"] else "no (validation)"]
               for v in vrows])
    doc.p("EIE Table II at this activity: the layer's actions as eiegen counts them (pointer "
          "pairs, Spmat words, MACs, accumulator updates, PE-cycles), each priced at EIE's own "
          "energy per action, i.e. Table II's module power over EIE's Alex-6 time divided by "
          "the actions counted on Alex-6 (sim/estimates/data/eie_alex6_actions.json). No "
          "eiegen energy figure enters it. Where its ratio is as far from 1 as eiegen's, the "
          "difference is not eiegen's energy per action but the layer's activity, which EIE's "
          f"energy (time x one constant {val['power_w']:g} W) does not follow.")
    cal = [k for k, e in c.table.entries.items() if "calibrated on EIE" in e["source"]]
    doc.p("Calibrated entries of the energy table: " + (", ".join(f"`{k}`" for k in cal)
                                                       or "none") + " (sources in the last "
          "section); layers without an EIE benchmark show '-'.")


def section_time(doc: Doc, c: ReportInputs) -> None:
    cfg, layers, cpu, plats = c.cfg, c.layers, c.cpu, c.plats
    doc.section("Time per layer beside EIE Table IV and CPU baselines measured here")
    rows = []
    for r in layers:
        b = cpu[r["name"]]
        rows.append([r["name"], _f(r["time_us"], ".2f")]
                    + [_f(c.published(p, r["name"])) for p in plats]
                    + [_f(b["dense_gemv_us"]), _f(b["csr_spmv_us"]),
                       _f(b["csr_spmv_us"] / r["time_us"], ",.0f")])
    doc.table(["layer", f"eiegen {cfg.name} (RTL cycles)"] + [f"{p} (published)" for p in plats]
              + ["NumPy dense GEMV (here)", "SciPy CSR SpMV (here)", "speed-up vs CSR here"],
              rows)
    doc.p(f"Microseconds, batch 1. Published columns: {c.t4['source']}; blank where the model's "
          f"layers are not EIE benchmarks. Measured here: {cpu_name()}, {os.cpu_count()} "
          f"logical cores, float32, median of repeats (NumPy {np.__version__}). "
          f"eiegen's time is cycles / {cfg.clock_mhz:g} MHz.")
    if all("cycles_plain" in r for r in layers):
        actual = next((p for p in plats if "actual" in p), None)
        doc.table(["layer", "plain interleave (cycle model)", "load balance, plain (%)",
                   "balanced (RTL)", "load balance, balanced (%)", "speed-up",
                   "plain (us)", "balanced (us)", f"{actual} (us)" if actual else "EIE (us)",
                   "balanced / EIE"],
                  [[r["name"], f"{r['cycles_plain']:,}",
                    _f(100 * r["load_balance_efficiency_plain"]), f"{r['cycles']:,}",
                    _f(100 * r["load_balance_efficiency"]),
                    _f(r["cycles_plain"] / r["cycles"], ".3f"),
                    _f(r["cycles_plain"] / cfg.clock_mhz, ".2f"), _f(r["time_us"], ".2f"),
                    _f(c.published(actual, r["name"]) if actual else None, ".1f"),
                    _f(r["time_us"] / c.published(actual, r["name"]), ".2f")
                    if actual and c.published(actual, r["name"]) else "-"] for r in layers])
        doc.p("The rows are permuted so that every PE gets the same work (compiler.permute; "
              "the outputs are bit-identical, read back in the user's order); the plain "
              "interleave (row i on PE i mod N, --no-permute) is the same model compiled "
              "without it and run on the cycle model, which equals the RTL. Load balance = "
              "(entries / PEs) / cycles, padding counted as entries.")
    if any("cycles_model" in r for r in layers):
        doc.table(["layer", "RTL cycles", "cycle model", "difference (%)"],
                  [[r["name"], f"{r['cycles']:,}", _f(r.get("cycles_model"), ",.0f"),
                    _f(100 * (r["cycles_model"] - r["cycles"]) / r["cycles"], ".2f")
                    if r.get("cycles_model") is not None else "-"] for r in layers])
    doc.img("time.png", _time_plot(c), "time per layer")


def _time_plot(c: ReportInputs) -> bytes:
    plt = _pyplot()
    lnames, cpu = c.lnames, c.cpu
    fig, ax = plt.subplots(figsize=(9, 4))
    series = [(f"eiegen {c.cfg.name}", [r["time_us"] for r in c.layers])]
    series += [(p, [c.published(p, n) for n in lnames]) for p in c.plats
               if any(c.published(p, n) for n in lnames)]
    series += [("NumPy dense (here)", [cpu[n]["dense_gemv_us"] for n in lnames]),
               ("SciPy CSR (here)", [cpu[n]["csr_spmv_us"] for n in lnames])]
    w = 0.8 / len(series)
    for i, (lab, vals) in enumerate(series):
        ax.bar(np.arange(len(lnames)) + i * w, [v or 0 for v in vals], w, label=lab)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(lnames)) + 0.4 - w / 2, lnames)
    ax.set_ylabel("time per layer (us), log")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def section_energy(doc: Doc, c: ReportInputs) -> None:
    doc.section("Energy per layer")
    rows = []
    for r in c.layers:
        L = c.energy[r["name"]]
        e = L["estimates"]
        d = L.get("dram_load", {})
        rows.append([r["name"]] + [f"{e[x]['energy_uj']:.2f}" for x in ESTIMATES]
                    + [_f(e["default"]["power_mw"], ",.0f"),
                       _f(e["default"]["pj_per_useful_mac"]),
                       _f(L["pj_per_useful_mac_eie_memory_sizes"]),
                       f"{r['useful_macs']:,}",
                       f"{d.get('default_uj', 0):,.0f} ({d.get('bits', 0) / 8e6:.2f} MB)"])
    doc.table(["layer", "low (uJ)", "default (uJ)", "high (uJ)", "avg power (mW)",
               "pJ / useful MAC", "pJ / useful MAC with EIE's memory sizes", "useful MACs",
               "DRAM: loading the weights once (uJ)"], rows)
    doc.p("Energy = RTL activity counters x per-action energies (`sim/estimates/energy.py`), "
          "clock and "
          "control overhead included, idle PE cycles charged, plus the LNZD tree. The DRAM "
          "column is separate: the energy of reading the layer's Spmat words, pointers, "
          "biases and codebook from DRAM once. 'EIE's memory sizes' costs the same counters "
          "with 16K pointers and 64-word activation/accumulator files, EIE's geometry.")


def section_energy_breakdown(doc: Doc, c: ReportInputs) -> None:
    cfg, E, lnames, pub = c.cfg, c.energy, c.lnames, c.pub
    doc.section("Energy breakdown in the rows of EIE Table II")
    t2 = {x["module"]: x for x in pub["table2"]["rows"]}
    rows = []
    for m in ROWS:
        rows.append([m] + [f"{E[n]['estimates']['default']['module_power_mw_per_pe'][m]:.3f}"
                           for n in lnames]
                    + [_f(t2.get(m, {}).get("power_mw"), ".3f"),
                       _f(t2.get(m, {}).get("power_pct"), ".1f")])
    rows.append(["**total per PE**"]
                + [f"{E[n]['estimates']['default']['power_mw'] / cfg.n_pes:.3f}" for n in lnames]
                + [f"{pub['table2']['total_power_mw']:.3f}", "100"])
    doc.table(["row (mW per PE)"] + lnames + ["EIE Table II (mW)", "EIE (%)"], rows)
    doc.p("Average power per PE over each layer, clock share included in each row; LNZD is "
          "the array's tree divided by the PE count. EIE: " + pub["table2"]["source"] + ".")
    doc.table(["per action (pJ)", f"this model, {cfg.name}", "this model, EIE's memory sizes",
               "EIE-implied target"], _calibration_rows(c))
    doc.p("Targets: " + pub["calibration_pj"]["source"] + ".")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = np.zeros(len(lnames) + 1)
    for m in ROWS:
        vals = [E[n]["estimates"]["default"]["module_power_mw_per_pe"][m] for n in lnames]
        vals.append(t2.get(m, {}).get("power_mw") or 0.0)
        ax.bar(lnames + ["EIE Table II"], vals, bottom=bottom, label=m)
        bottom += np.array(vals)
    ax.set_ylabel("mW per PE")
    ax.legend(fontsize=7)
    doc.img("energy_breakdown.png", _png(fig), "power per PE by Table II row")


def _calibration_rows(c: ReportInputs) -> list:
    """Per-action energies of this model beside the targets EIE's figures imply."""
    cal, tgt, E = c.er["calibration"], c.pub["calibration_pj"], c.energy
    here, eie = cal["this_config"], cal["eie_memory_sizes"]
    first = c.lnames[0]
    actions = [("one Spmat read (64-bit word + registers + clock)", "spmat_read", ",.1f"),
               ("one pointer-pair read", "ptr_pair_read", ",.1f"),
               ("one MAC in the arithmetic unit", "mac", ".2f"),
               ("one accumulator update (read + write)", "acc_update", ".2f")]
    rows = [[lab, _f(here[k], spec), _f(eie[k], spec), _f(tgt[k], spec)]
            for lab, k, spec in actions]
    default = E[first]["estimates"]["default"]
    return rows + [
        [f"activation queue, per PE-cycle ({first})",
         _f(E[first]["act_queue_pj_per_cycle"], ".3f"), "-", _f(tgt["act_queue_cycle"], ".2f")],
        [f"whole PE, per PE-cycle ({first})", _f(default["pj_per_pe_cycle"], ".2f"), "-",
         _f(tgt["pe_cycle"], ".2f")],
        [f"per useful MAC, all in ({first})", _f(default["pj_per_useful_mac"]),
         _f(E[first]["pj_per_useful_mac_eie_memory_sizes"]), _f(tgt["useful_mac_alex6"])]]


def section_efficiency(doc: Doc, c: ReportInputs) -> None:
    cfg, cpu, plats, cpu_watts = c.cfg, c.cpu, c.plats, c.cpu_watts
    doc.section("Energy and energy efficiency beside the baselines")
    rows = []
    for r in c.layers:
        n = r["name"]
        ours = c.energy[n]["estimates"]["default"]["energy_uj"]
        row = [n, f"{ours:.2f}"]
        for p in plats:
            t, pw = c.published(p, n), c.pub_power(p, n)
            row.append(f"{t * pw:,.1f} ({_ratio(t * pw / ours)})" if t and pw else "-")
        for key in ("dense_gemv_us", "csr_spmv_us"):
            e = cpu[n][key] * cpu_watts
            row.append(f"{e:,.0f} ({_ratio(e / ours)})")
        rows.append(row)
    doc.table(["layer", f"eiegen {cfg.name} (model, uJ)"] + [f"{p} (uJ)" for p in plats]
              + [f"NumPy dense here (uJ at {cpu_watts:g} W)",
                 f"SciPy CSR here (uJ at {cpu_watts:g} W)"], rows)
    doc.p(f"EIE's method: energy = time x power; in brackets, how many times eiegen's modelled "
          f"energy. Published platforms use their published power "
          f"({c.pub['power_w']['source']}; "
          f"'-' where none is published). **The local CPU's power is an assumption, not a "
          f"measurement: {cpu_watts:g} W** ({CPU_WATTS_PER_CORE:g} W per logical core unless "
          f"--cpu-watts says otherwise).")


def section_area(doc: Doc, c: ReportInputs) -> None:
    cfg, ar, pub = c.cfg, c.ar, c.pub
    doc.section("Area")
    if not ar:
        doc.p("Area not computed (--no-area).")
        return
    d = ar["estimates"]["default"]
    t2a = {x["module"]: x["area_um2"] for x in pub["table2"]["rows"]}
    rows = [[m, f"{d['pe']['sram_um2'][m]:,.0f}", f"{d['pe']['logic_um2'][m]:,.0f}",
             f"{d['pe']['rows_um2'][m]:,.0f}", _f(t2a.get(m), ",")] for m in AREA_ROWS]
    lo, hi = ar["estimates"]["low"], ar["estimates"]["high"]
    rows.append(["**one PE**", f"{d['pe']['sram_total_um2']:,.0f}",
                 f"{d['pe']['logic_total_um2']:,.0f}",
                 f"{d['pe']['total_um2']:,.0f} ({lo['pe_mm2']:.3f}-{hi['pe_mm2']:.3f} mm^2)",
                 f"{pub['pe_area_um2']:,}"])
    rows.append([f"**array** ({cfg.n_pes} PEs + central unit {d['top_um2']:,.0f} um^2)",
                 "", "", f"{d['array_mm2']:.3g} mm^2 ({lo['array_mm2']:.3g}-"
                 f"{hi['array_mm2']:.3g})", f"{pub['area_mm2']} mm^2"])
    doc.table(["row (um^2)", "SRAM", "logic (Yosys)", "total", "EIE Table II"], rows)
    doc.p("SRAM: bits of every memory above the register-file size from the configuration "
          "x um^2 per bit; logic: Yosys synthesis of the generated Verilog (SRAM macros "
          "kept as memory cells, the rest mapped to CMOS gates), transistors x um^2 plus "
          "flip-flop bits x um^2, plus filler (`sim/estimates/area.py`, "
          "`sim/estimates/synth.py`).")


def section_fpga(doc: Doc, c: ReportInputs) -> None:
    cfg = c.cfg
    doc.section("FPGA synthesis")
    sd = synth_dir(cfg)
    found = False
    for step in ("xilinx", "ice40"):
        p = sd / f"{step}.json"
        if not p.exists():
            continue
        found = True
        r = json.loads(p.read_text())["result"]
        if step == "xilinx":
            doc.table(["Xilinx " + r["family"], "LUT", "FF", "BRAM36", "DSP"],
                      [[k, f"{r[k]['lut']:,}", f"{r[k]['ff']:,}", f"{r[k]['bram36']:,g}",
                        f"{r[k]['dsp']:,}"] for k in ("pe", "top", "array")]
                      + [[r["device"]["part"], f"{r['device']['luts']:,}",
                          f"{r['device']['ffs']:,}", f"{r['device']['bram36']:,}",
                          f"{r['device']['dsp']:,}"]])
        else:
            doc.p("iCE40 HX8K: " + (f"Fmax {r['fmax_mhz']:.1f} MHz after nextpnr place and "
                                     f"route" if r.get("fmax_mhz") else
                                     f"not placed ({r.get('skipped', 'no result')})"))
    if not found:
        doc.p(f"No synthesis results for {cfg.name} yet: run `make synth CONFIG={cfg.name}`.")


def section_storage(doc: Doc, c: ReportInputs) -> None:
    doc.section("Storage breakdown")
    sb = c.manifest["storage_bits"]
    stages = [("dense, 32-bit float", "dense_32bit"), ("pruned (CSC, 32-bit values)", "pruned"),
              ("pruned + quantized (4-bit index, 4-bit relative row)", "pruned_quantized"),
              ("+ Huffman coding", "huffman")]
    doc.table(["stage", "bits", "MB", "of dense"],
              [[lab, f"{sb[k]:,}", f"{sb[k] / 8e6:.2f}", f"{100 * sb[k] / sb['dense_32bit']:.2f} %"]
               for lab, k in stages])
    doc.p("From the compiler's accounting (`manifest.json` storage_bits, all layers).")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh([s[0] for s in stages][::-1], [sb[s[1]] / 8e6 for s in stages][::-1])
    ax.set_xscale("log")
    ax.set_xlabel("MB, log")
    doc.img("storage.png", _png(fig), "storage breakdown")


def section_pe_load(doc: Doc, c: ReportInputs) -> None:
    layers = c.layers
    doc.section("Per-PE load")
    rows = []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3), squeeze=False)
    for ax, r in zip(axes[0], layers):
        ent = np.asarray(r["pe_counters"]["entries"])
        rows.append([r["name"], f"{ent.min():,}", f"{ent.mean():,.0f}", f"{ent.max():,}",
                     _f(100 * r["load_balance_efficiency"]),
                     f"{sum(r['pe_counters']['starved']):,}", f"{sum(r['pe_counters']['full']):,}"])
        ax.hist(ent, bins=min(20, max(3, len(ent) // 3)))
        ax.set_title(r["name"])
        ax.set_xlabel("entries processed per PE")
    axes[0][0].set_ylabel("PEs")
    doc.table(["layer", "min entries", "mean", "max", "load balance (%)", "starved PE-cycles",
               "queue-full PE-cycles"], rows)
    doc.p("Entries each PE processed (padding included) in the simulated sample; load balance "
          "= mean / slowest-equivalent cycles (ideal cycles / RTL cycles).")
    doc.img("pe_load.png", _png(fig), "per-PE load histogram")


def section_padding(doc: Doc, c: ReportInputs) -> None:
    cfg = c.cfg
    doc.section("Padding overhead")
    rows = []
    for m in c.manifest["layers"]:
        pad = np.asarray(m["padding_per_pe"])
        rows.append([m["name"], f"{m['nnz']:,}", f"{m['padding_entries']:,}",
                     f"{100 * m['padding_entries'] / max(m['nnz'], 1):.1f} %",
                     f"{pad.min():,} / {pad.max():,}"])
    doc.table(["layer", "non-zeros", "padding entries", "padding / non-zeros",
               "per-PE min / max"], rows)
    doc.p(f"A gap of more than {cfg.max_rel_index} zero rows (on one PE) costs a padding entry "
          f"with the zero weight ({cfg.rel_index_bits}-bit relative row index).")


def section_constants(doc: Doc, c: ReportInputs) -> None:
    cfg, table, pub = c.cfg, c.table, c.pub
    doc.section("Where every constant comes from")
    rows = [[k, f"{e['value']:g}", f"{e['low']:g}", f"{e['high']:g}", e["unit"], e["source"]]
            for k, e in table.entries.items()]
    doc.table(["entry", "default", "low", "high", "unit", "source"], rows)
    doc.p(f"Table: {table.origin} (override with --energy-table FILE.json). Published EIE "
          f"figures: `sim/estimates/data/eie_published.json` ({pub['source']}). Memory depths "
          f"and widths: "
          f"the `{cfg.name}` configuration (`hw/arch/config.py`, digest {cfg.digest()}) "
          f"through `hw/arch/memories.py`. Clock {cfg.clock_mhz:g} MHz: the configuration, for "
          f"parity with EIE (an FPGA Fmax is in the synthesis section). Cycles and counters: "
          f"the Verilator RTL simulation ({c.report['sim'].get('verilator_version')}). "
          f"CPU power: **assumed {c.cpu_watts:g} W**. Measured here: NumPy {np.__version__}, "
          f"{cpu_name()}, Python {platform.python_version()}.")


#: the report's sections, in order
SECTIONS = (section_headline, section_accuracy, section_eie, section_time, section_energy,
            section_energy_breakdown, section_efficiency, section_area, section_fpga,
            section_storage, section_pe_load, section_padding, section_constants)


def report_data(c: ReportInputs) -> dict:
    """``report_energy.json``: energy, area, CPU baselines and published comparisons."""
    ar = c.ar
    return {"model": c.report["model"], "config": c.cfg.name, "config_digest": c.cfg.digest(),
            "energy": c.er, "area": ({k: v for k, v in ar.items() if k != "asic"}
                                     if ar else None),
            "cpu_baselines": {"cpu": cpu_name(), "logical_cores": os.cpu_count(),
                              "assumed_watts": c.cpu_watts, "layers": c.base},
            "published": {"table4": c.t4, "power_w": c.pub["power_w"]},
            # on the data (the user's, --data): the accuracy, the codebooks' cost
            "accuracy": c.report.get("accuracy"), "codebook": c.report.get("codebook"),
            "eie_validation": {
                "layers": eie_layer_validation(c.report["model"], c.report, c.er, c.pub),
                "table2": eie_module_validation(
                    c.cfg, c.report, c.er, c.pub, table2_layer(c.report["model"], c.report,
                                                               c.pub)),
                "criteria": c.pub["validation"]}}


def build_report(cfg: EIEConfig, out: Path, table, cpu_watts: float, area: bool = True,
                 progress=print) -> tuple[Doc, dict]:
    """Assemble the report of ``out`` (a compiled and simulated model directory)."""
    c = report_inputs(cfg, out, table, cpu_watts, area, progress)
    doc = Doc(f"eiegen report: {c.report['model']} on {cfg.name}")
    for section in SECTIONS:
        section(doc, c)
    return doc, report_data(c)


def main(argv=None) -> int:
    ap = ArgumentParser(prog="python -m sim.studies.report",
                        description="Energy, area and comparison report (report.md, "
                                    "self-contained report.html, report_energy.json) "
                                    "of a simulated model.")
    add_model_args(ap)
    ap.add_argument("--energy-table", default=None,
                    help="JSON file overriding entries of sim/estimates/data/energy_45nm.json")
    ap.add_argument("--cpu-watts", type=float, default=None,
                    help=f"assumed power of this machine's CPU for the baselines' energy "
                         f"(default {CPU_WATTS_PER_CORE:g} W per logical core)")
    ap.add_argument("--no-area", action="store_true",
                    help="skip the area model (it runs Yosys the first time per config)")
    ap.add_argument("--data", default=None,
                    help="a .npz of your inputs x (and optional labels y) to compile and "
                         "simulate instead of the model's own; the report gives the float, "
                         "golden and RTL accuracy and what the codebooks cost")
    args = ap.parse_args(argv)
    with cli_errors("report"):
        t0 = time.perf_counter()
        cfg = load_config(args.config).check_generatable()
        table = load_table(args.energy_table)
        watts = args.cpu_watts if args.cpu_watts is not None else \
            CPU_WATTS_PER_CORE * (os.cpu_count() or 1)
        if not (np.isfinite(watts) and watts > 0):
            raise EIEError(f"--cpu-watts must be a positive number, got {args.cpu_watts}")
        net = load_model(args.model, seed=args.seed)
        data, data_net = user_data(args.data, args.model, args.seed, "[report]", net=net)
        lstm = net.has_lstm
        if lstm and not cfg.lstm:
            raise EIEError(f"{net.name} has an LSTM layer, and config {cfg.name!r} has no LSTM "
                           f"hardware (lstm: false); report it with CONFIG=ese or a config "
                           f"with \"lstm\": true")
        def progress(msg):
            print(msg, flush=True)

        digest = None if data is None else data.digest
        with output_lock(output_dir(args.model, cfg, seed=args.seed, data_digest=digest)):
            out = ensure_report(args.model, args.seed, cfg, data, data_net)
            doc, data = (build_lstm_report(cfg, out, table, area=not args.no_area,
                                           progress=progress) if lstm else
                         build_report(cfg, out, table, watts, area=not args.no_area,
                                      progress=progress))
            paths = write_report(doc, data, out)
        print(doc.markdown().split("## Frames of sequence 0" if lstm else
                                   "## Time per layer")[0])
        print(f"report: wrote {', '.join(str(p) for p in paths)} in "
              f"{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
