"""``make report`` for a network with an LSTM layer (ESE): time, energy and power per frame,
area and FPGA resources of one channel and of the configured channels, beside ESE's figures.

Everything comes from the RTL simulation ``make sim`` wrote (``report.json``, kind ``lstm``:
every output bit-exact with the golden model; the cycles, every frame's cycles and every per-PE
counter equal to the cycle model of the ESE schedule): the energy per frame is the counters of
the LSTM program's run (:func:`sim.estimates.energy.lstm_energy`, the same 45 nm table as the FC
layers plus the element-wise units' entries), the FC layers after an LSTM that returns only
``y_T`` :func:`sim.estimates.energy.layer_energy` on their run's counters.  The area is the FC
report's model (SRAM macros by bits, logic from Yosys, filler) with the element-wise units' row;
the FPGA resources are ``make synth``'s Yosys ``synth_xilinx`` results when they exist.

ESE's figures carry their tags from shared/reference/ESE.md: its 82.7 us per frame is a
secondary source's, its 57.0 us theoretical is unconfirmed, its 41 W covers the whole board and
its DRAM; ESE's own FPGA utilisation is not confirmed and is not shown.
"""

from __future__ import annotations

import json
from pathlib import Path

from compiler.manifest import load_manifest
from hw.arch.atomic import read_json
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from hw.arch.memories import EW_MODULE
from sim.estimates.area import area_report, area_rows
from sim.estimates.energy import ESTIMATES, layer_energy, lstm_energy
from sim.estimates.synth import channels_that_fit, synth_dir
from sim.studies.accuracy import accuracy_section
from sim.studies.cycles import ESE_FRAME
from sim.studies.doc import Doc, _png, _pyplot

#: per-frame energy ESE's 41 W allows (whole system, 32 channels of one frame per 82.7 us)
ESE_UJ_PER_FRAME = ESE_FRAME["system_watts"] * ESE_FRAME["actual_us"] / 32


def lstm_energies(cfg: EIEConfig, report: dict, table) -> dict:
    """Per estimate: the LSTM program's energy per frame and power (its counters in
    ``report.json``, sequence 0), and the FC layers' run on ``y_T`` when there is one."""
    cnt = report.get("counters_rtl_sample0")
    if not cnt or "program" not in cnt:
        raise EIEError(f"{report['model']}: report.json has no counters of the LSTM program; "
                       f"run make sim MODEL={report['model']} CONFIG={cfg.name} again")
    frames = int(report["frames"])
    prog_cycles = int(report["totals"]["cycles"][0])
    fc_cycles = int(sum(report["fc_cycles_rtl"][0])) if "after" in cnt else 0
    out = {}
    for est in ESTIMATES:
        e = lstm_energy(cfg, cnt["program"], prog_cycles, frames, table, est)
        row = {"energy_per_frame_uj": e["energy_per_frame_uj"], "power_mw": e["power_mw"],
               "program_cycles": prog_cycles,
               "modules_uj_per_frame": {k: v / frames for k, v in e["modules_uj"].items()}}
        if "after" in cnt:
            fc = layer_energy(cfg, {"name": "fc", "cycles": fc_cycles, "useful_macs": 0,
                                    "pe_counters": {**cnt["after"],
                                                    "busy": cnt["after"]["entries"]}},
                              table, est)
            row["fc_after_uj"] = fc["energy_uj"]
            row["fc_after_cycles"] = fc_cycles
        out[est] = row
    return out


def fpga_resources(cfg: EIEConfig) -> dict | None:
    """``make synth``'s Xilinx results for ``cfg`` (one PE, the central unit, one channel's
    array), the configured channels and how many channels the XCKU060 holds; None when
    ``make synth CONFIG=...`` has not run."""
    p = synth_dir(cfg) / "xilinx.json"
    if not p.exists():
        return None
    r = json.loads(p.read_text())["result"]
    arr, dev = r["array"], r["device"]
    chans = {k: arr[k] * cfg.channels for k in ("lut", "ff", "bram36", "dsp")}
    return {"pe": r["pe"], "top": r["top"], "array": arr, "channels": chans,
            "n_channels": cfg.channels, "device": dev, "channels_that_fit": channels_that_fit(r),
            "family": r["family"]}


def section_headline(doc: Doc, cfg: EIEConfig, rep: dict, en: dict) -> None:
    f, t = rep["per_frame"], rep["totals"]
    cm = rep["cycle_model"]
    doc.section("Headline")
    doc.p(f"{rep['description']}. Configuration `{cfg.name}` ({cfg.n_pes} PEs per channel, "
          f"{cfg.channels} channel(s), queue depth {cfg.queue_depth}, {cfg.clock_mhz:g} MHz). "
          f"Verilator RTL simulation of {rep['samples_simulated']} sequence(s) of "
          f"{rep['frames']} frames through the central unit's LSTM program: every output "
          f"bit-exact with the golden model: **{t['outputs_match_golden']}**; cycles, every "
          f"frame's cycles and every per-PE counter equal to the cycle model of the ESE "
          f"schedule: **{cm['cycles_equal_rtl']} / {cm.get('frame_cycles_equal_rtl')} / "
          f"{cm.get('counters_equal_rtl')}**."
          + (" The model is SYNTHETIC." if rep.get("synthetic") else ""))
    d, lo, hi = en["default"], en["low"], en["high"]
    doc.table(["per frame", "eiegen (RTL)", "ESE", "ESE's source"], [
        ["time (steady state)", f"{f['us_per_frame']:.1f} us ({f['cycles_per_frame']:,.0f} "
         f"cycles)", f"{ESE_FRAME['actual_us']} us", ESE_FRAME["actual_source"]],
        ["theoretical (non-zeros / PEs)", f"{f['theoretical_us_per_frame']:.1f} us",
         f"{ESE_FRAME['theoretical_us']} us", ESE_FRAME["theoretical_source"]],
        ["ratio to theoretical", f"{f['ratio_to_theoretical']:.3f}",
         f"{ESE_FRAME['actual_us'] / ESE_FRAME['theoretical_us']:.3f}", "derived"],
        ["GOP/s, one channel", f"{f['gops']:.1f}",
         f"{ESE_FRAME['gops_all_channels'] / 32:.1f}", "derived: 282 / 32"],
        [f"GOP/s, {cfg.channels} channel(s)", f"{f['gops_all_channels']:.1f}",
         f"{ESE_FRAME['gops_all_channels']:g}", ESE_FRAME["gops_source"]],
        ["element-wise stage, share of the time", f"{100 * f['ew_share']:.1f} %", "-", ""],
        ["energy (on chip, one channel, 45 nm)", f"{d['energy_per_frame_uj']:.3g} uJ "
         f"({lo['energy_per_frame_uj']:.3g}-{hi['energy_per_frame_uj']:.3g})",
         f"{ESE_UJ_PER_FRAME:.0f} uJ", "derived: 41 W (whole board and DRAM, paper) x 82.7 us "
         "/ 32 channels"],
        ["power, one channel", f"{d['power_mw']:.0f} mW ({lo['power_mw']:.0f}-"
         f"{hi['power_mw']:.0f})", f"{ESE_FRAME['system_watts']:g} W, 32 channels",
         ESE_FRAME["system_source"]],
    ])
    doc.p("ESE's energy is a whole system's (FPGA board and DRAM) and eiegen's an on-chip 45 nm "
          "ASIC estimate of the array's logic and SRAMs: the two are not comparable as such. "
          "Channels are independent copies: they multiply throughput, not latency.")


def section_frames(doc: Doc, rep: dict) -> None:
    doc.section("Frames of sequence 0")
    steps = rep["steps_sample0"]
    doc.table(["frame", "Y (y part)", "EW", "X (x part)", "P (projection)",
               "F (layers on every frame)", "frame (cycle model)", "frame (RTL)"],
              [[t, f"{s['y']:,}", f"{s['ew']:,}", f"{s['x']:,}", f"{s['p']:,}", f"{s['f']:,}",
                f"{s['period']:,}", f"{s['rtl']:,}"] for t, s in enumerate(steps)])
    doc.p("Cycles of each part of a frame (the cycle model's parts; X(t) runs beside EW(t-1), "
          "in the other accumulator bank) and of the whole frame, from the end of the previous "
          "one, measured on the RTL at the frame's single-step pause (the layer-cycle "
          "counters). Frame 0 includes X(0) and has no y part to speak of (y_-1 = 0).")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(range(len(steps)), [s["rtl"] for s in steps], marker="o")
    ax.set_xlabel("frame")
    ax.set_ylabel("cycles")
    ax.set_title("cycles per frame (RTL)")
    doc.img("frames.png", _png(fig), "cycles per frame")


def section_energy(doc: Doc, cfg: EIEConfig, en: dict) -> None:
    doc.section("Energy per frame by module")
    d = en["default"]["modules_uj_per_frame"]
    total = sum(d.values())
    rows = [[k, f"{v:.4g}", f"{en['low']['modules_uj_per_frame'][k]:.4g}-"
             f"{en['high']['modules_uj_per_frame'][k]:.4g}", f"{100 * v / total:.1f} %"]
            for k, v in d.items()]
    doc.table(["module", "uJ per frame (default)", "low-high", "share"], rows)
    doc.p(f"From the RTL's per-PE counters of sequence 0 (the LSTM program's run) and the 45 nm "
          f"table (`sim/estimates/data/energy_45nm.json`): the sparse products cost what FC "
          f"layers cost; `{EW_MODULE}` is the element-wise units' table reads, multiplies, "
          f"cell-state and peephole accesses (`sim.estimates.energy.ew_action_energies`).")
    if "fc_after_uj" in en["default"]:
        doc.p(f"The FC layers on y_T (one run per sequence, after the LSTM program): "
              f"{en['default']['fc_after_uj']:.2f} uJ per sequence "
              f"({en['low']['fc_after_uj']:.2f}-{en['high']['fc_after_uj']:.2f}), "
              f"{en['default']['fc_after_cycles']:,} cycles.")


def section_area(doc: Doc, cfg: EIEConfig, ar: dict | None) -> None:
    doc.section("Area (45 nm ASIC estimate)")
    if ar is None:
        doc.p("Skipped (--no-area).")
        return
    d, lo, hi = (ar["estimates"][e] for e in ("default", "low", "high"))
    doc.table(["row", "SRAM (um^2)", "logic (um^2)", "total (um^2)"],
              [[m, f"{d['pe']['sram_um2'][m]:,.0f}", f"{d['pe']['logic_um2'][m]:,.0f}",
                f"{d['pe']['rows_um2'][m]:,.0f}"] for m in area_rows(cfg)]
              + [["one PE", f"{d['pe']['sram_total_um2']:,.0f}",
                  f"{d['pe']['logic_total_um2']:,.0f}", f"{d['pe']['total_um2']:,.0f}"]])
    doc.p(f"One channel ({cfg.n_pes} PEs and the central unit): **{d['array_mm2']:.2f} mm^2** "
          f"(low {lo['array_mm2']:.2f}, high {hi['array_mm2']:.2f}); {cfg.channels} channel(s): "
          f"{d['array_mm2'] * cfg.channels:.1f} mm^2. SRAM macros by bits, register files, "
          f"logic and the element-wise units from the Yosys netlist of the generated Verilog, "
          f"plus filler (`sim/estimates/area.py`).")


def section_fpga(doc: Doc, cfg: EIEConfig, fp: dict | None) -> None:
    doc.section("FPGA resources (Yosys synth_xilinx)")
    if fp is None:
        doc.p(f"No synthesis results for {cfg.name} yet: run `make synth CONFIG={cfg.name}`.")
        return
    dev = fp["device"]
    rows = [[label, f"{r['lut']:,}", f"{r['ff']:,}", f"{r['bram36']:,g}", f"{r['dsp']:,}"]
            for label, r in (("one PE", fp["pe"]), ("central unit + host", fp["top"]),
                             (f"one channel ({cfg.n_pes} PEs)", fp["array"]),
                             (f"{fp['n_channels']} channels", fp["channels"]))]
    rows.append([f"{dev['part']} capacity", f"{dev['luts']:,}", f"{dev['ffs']:,}",
                 f"{dev['bram36']:,}", f"{dev['dsp']:,}"])
    doc.table(["Xilinx " + fp["family"], "LUT", "FF", "BRAM36", "DSP"], rows)
    doc.p(f"Channels of this configuration that fit the {dev['part']} (by the scarcest "
          f"resource): **{fp['channels_that_fit']}**. Yosys's generic `synth_xilinx` mapping, "
          f"not Vivado's; ESE's own utilisation figures are not confirmed and not shown.")


def section_constants(doc: Doc, cfg: EIEConfig, table) -> None:
    doc.section("Where every constant comes from")
    doc.table(["entry", "default", "low", "high", "unit", "source"],
              [[k, f"{e['value']:g}", f"{e['low']:g}", f"{e['high']:g}", e["unit"], e["source"]]
               for k, e in table.entries.items()])
    doc.p(f"Table: {table.origin}. ESE's figures: shared/reference/ESE.md with their tags. "
          f"Configuration `{cfg.name}`, digest {cfg.digest()}.")


def build_lstm_report(cfg: EIEConfig, out: Path, table, area: bool = True,
                      progress=print) -> tuple[Doc, dict]:
    """The report of ``out`` (a compiled LSTM network, simulated by ``make sim``)."""
    rep = read_json(out / "report.json", "simulation report",
                    "run make sim again, which rewrites it")
    if not isinstance(rep, dict) or rep.get("kind") != "lstm":
        raise EIEError(f"{out / 'report.json'} is not an LSTM network's simulation")
    manifest = load_manifest(out)
    en = lstm_energies(cfg, rep, table)
    ar = area_report(cfg, table, progress=progress) if area else None
    fp = fpga_resources(cfg)
    doc = Doc(f"eiegen report: {rep['model']} on {cfg.name}")
    section_headline(doc, cfg, rep, en)
    section_frames(doc, rep)
    accuracy_section(doc, rep, cfg)
    section_energy(doc, cfg, en)
    section_area(doc, cfg, ar)
    section_fpga(doc, cfg, fp)
    section_constants(doc, cfg, table)
    data = {"model": rep["model"], "config": cfg.name, "config_digest": cfg.digest(),
            "kind": "lstm", "synthetic": rep.get("synthetic"), "per_frame": rep["per_frame"],
            "steps_sample0": rep["steps_sample0"], "energy": en,
            "area": None if ar is None else {k: v for k, v in ar.items() if k != "asic"},
            "fpga": fp, "storage_bits": manifest.get("storage_bits"),
            "ese": {**ESE_FRAME, "uj_per_frame_derived": ESE_UJ_PER_FRAME},
            "bit_exact": rep["totals"]["outputs_match_golden"],
            # on the data (the user's, --data, or lstm_digits' own): accuracy, codebooks' cost
            "accuracy": rep.get("accuracy"), "codebook": rep.get("codebook"),
            "cycle_model": {k: rep["cycle_model"].get(k) for k in
                            ("cycles_equal_rtl", "frame_cycles_equal_rtl", "counters_equal_rtl")}}
    return doc, data


__all__ = ["build_lstm_report", "fpga_resources", "lstm_energies"]
