"""Area model: SRAM macros from bit counts plus logic from Yosys synthesis, in EIE Table II rows.

``python -m sim.estimates.area --config eie64 [--energy-table my.json]``

* SRAM: every memory of a PE larger than ``regfile_max_bits`` (``hw.arch.memories``: depths and
  widths from the configuration) costs ``sram_area_per_bit`` um^2 per bit (EIE: 0.45).
* Logic: ``sim.estimates.synth``'s ``asic`` step synthesises ``eie_pe`` with the SRAMs kept as black
  memory cells and the register files mapped to flip-flops, then maps it to CMOS NAND / NOR /
  NOT; area = transistors x ``transistor_area`` + flip-flop bits x ``ff_area_per_bit``, per unit
  of the PE (activation queue, pointer read, sparse-matrix read, arithmetic, activation
  read/write, and the PE's own control and counters).
* Filler: ``filler_fraction`` of the rest (EIE: 3.8 %).

The array is ``n_pes`` PEs plus ``eie_top``'s own logic (central control unit with the LNZD
tree, host interface, counter multiplexer).  The constants come from the same table as the
energy model (``sim/estimates/data/energy_45nm.json``), so ``--energy-table`` overrides them too.
Synthesis results are cached per configuration digest under ``build/synth/<config>/``.
"""

from __future__ import annotations

import sys

from hw.arch.config import PRESETS, EIEConfig, load_config
from hw.arch.errors import ArgumentParser, cli_errors
from hw.arch.memories import EW_MODULE, MODULES, modules, pe_memories
from sim.estimates.energy import ESTIMATES, EnergyTable, load_published, load_table
from sim.estimates.synth import run_synth

#: PE units of the generated Verilog (hw/pe.py) and their EIE Table II rows
UNIT_MODULE = {"eie_pe.queue": "Act queue", "eie_pe.queue.fifo": "Act queue",
               "eie_pe.ptr": "PtrRead", "eie_pe.spmat": "SpmatRead",
               "eie_pe.arith": "ArithmUnit", "eie_pe.act_rw": "ActRW",
               "eie_pe.ew": EW_MODULE, "eie_pe": "PE control + counters"}
AREA_ROWS = MODULES + ("PE control + counters", "filler")


def area_rows(cfg: EIEConfig) -> tuple:
    """The area rows of ``cfg``'s PE: :data:`AREA_ROWS`, with the element-wise units' row
    (:data:`hw.arch.memories.EW_MODULE`) before the control row with the LSTM hardware."""
    return modules(cfg) + AREA_ROWS[len(MODULES):]


def pe_area(cfg: EIEConfig, asic: dict, table: EnergyTable, est: str = "default") -> dict:
    """Area of one PE in um^2, per Table II row, split into SRAM and logic.

    Parameters
    ----------
    cfg : EIEConfig
    asic : dict
        Result of ``sim.estimates.synth.run_synth(cfg, ("asic",))["asic"]``.
    table : EnergyTable
    est : str
        ``low``, ``default`` or ``high`` (SRAM and flip-flop densities).
    """
    rf_max = table.get("regfile_max_bits", est)
    rows_of = area_rows(cfg)
    sram = {m: 0.0 for m in rows_of}
    sram_bits = {m: 0 for m in rows_of}
    for mem in pe_memories(cfg):
        if not mem.is_regfile(rf_max):
            sram[mem.module] += mem.bits * table.get("sram_area_per_bit", est)
            sram_bits[mem.module] += mem.bits
    logic = {m: 0.0 for m in rows_of}
    for unit, u in asic["pe_units"].items():
        row = UNIT_MODULE.get(unit, "PE control + counters")
        logic[row] += (u["transistors"] * table.get("transistor_area", est)
                       + u["ff_bits"] * table.get("ff_area_per_bit", est))
    rows = {m: sram[m] + logic[m] for m in rows_of}
    rows["filler"] = table.get("filler_fraction", est) * sum(rows.values())
    total = sum(rows.values())
    return {"rows_um2": rows, "sram_um2": sram, "logic_um2": logic, "sram_bits": sram_bits,
            "total_um2": total, "sram_total_um2": sum(sram.values()),
            "logic_total_um2": sum(logic.values())}


def top_logic_um2(asic: dict, table: EnergyTable, est: str = "default") -> float:
    """Area of ``eie_top``'s own logic (central unit, LNZD, host interface, counter mux)."""
    t = asic["top"]
    return (t["transistors"] * table.get("transistor_area", est)
            + t["ff_bits"] * table.get("ff_area_per_bit", est))


def area_report(cfg: EIEConfig, table: EnergyTable | None = None, progress=print,
                force: bool = False) -> dict:
    """Per-PE and array area for the low / default / high estimates (runs or reuses synthesis).

    Returns
    -------
    dict
        ``estimates``: ``{est: {"pe": pe_area(...), "top_um2", "array_mm2", "pe_mm2"}}``,
        ``asic`` (the synthesis result) and the published EIE figures used for comparison.
    """
    table = table or load_table()
    asic = run_synth(cfg, ("asic",), progress=progress, force=force)["asic"]
    pub = load_published()
    ests = {}
    for est in ESTIMATES:
        pe = pe_area(cfg, asic, table, est)
        top = top_logic_um2(asic, table, est) * (1 + table.get("filler_fraction", est))
        ests[est] = {"pe": pe, "top_um2": top, "pe_mm2": pe["total_um2"] * 1e-6,
                     "array_mm2": (cfg.n_pes * pe["total_um2"] + top) * 1e-6}
    return {"config": cfg.name, "n_pes": cfg.n_pes, "estimates": ests, "asic": asic,
            "eie": {"pe_mm2": pub["pe_area_um2"] * 1e-6, "array_mm2": pub["area_mm2"],
                    "table2": pub["table2"]}}


def area_markdown(cfg: EIEConfig, ar: dict) -> str:
    """Table of the per-PE area by Table II row beside EIE, plus the array totals."""
    d = ar["estimates"]["default"]
    t2 = {r["module"]: r["area_um2"] for r in ar["eie"]["table2"]["rows"]}
    lines = ["| row | SRAM (um^2) | logic (um^2) | total (um^2) | EIE Table II (um^2) |",
             "|---|---|---|---|---|"]
    for m in area_rows(cfg):
        pub = t2.get(m)
        lines.append(f"| {m} | {d['pe']['sram_um2'][m]:,.0f} | {d['pe']['logic_um2'][m]:,.0f} | "
                     f"{d['pe']['rows_um2'][m]:,.0f} | {f'{pub:,}' if pub else '-'} |")
    lo, hi = ar["estimates"]["low"], ar["estimates"]["high"]
    lines.append(f"| **one PE** | {d['pe']['sram_total_um2']:,.0f} | "
                 f"{d['pe']['logic_total_um2']:,.0f} | **{d['pe']['total_um2']:,.0f}** "
                 f"({lo['pe_mm2']:.3f}-{hi['pe_mm2']:.3f} mm^2) | "
                 f"{ar['eie']['pe_mm2'] * 1e6:,.0f} |")
    lines.append("")
    lines.append(f"Array of {cfg.n_pes} PEs plus the central unit ({d['top_um2']:,.0f} um^2): "
                 f"**{d['array_mm2']:.3g} mm^2** (low {lo['array_mm2']:.3g}, high "
                 f"{hi['array_mm2']:.3g}); EIE: {ar['eie']['array_mm2']} mm^2 for 64 PEs.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = ArgumentParser(prog="python -m sim.estimates.area",
                        description="Area of one PE and of the array (SRAM bits + "
                                    "Yosys logic synthesis) beside EIE Table II.")
    ap.add_argument("--config", default="eie64",
                    help=f"preset ({', '.join(PRESETS)}) or JSON config file")
    ap.add_argument("--energy-table", default=None,
                    help="JSON file overriding entries of sim/estimates/data/energy_45nm.json")
    ap.add_argument("--force", action="store_true", help="re-run synthesis")
    args = ap.parse_args(argv)
    with cli_errors("area"):
        cfg = load_config(args.config)
        table = load_table(args.energy_table)
        ar = area_report(cfg, table, progress=lambda m: print(m, flush=True), force=args.force)
        print(area_markdown(cfg, ar))
    return 0


if __name__ == "__main__":
    sys.exit(main())
