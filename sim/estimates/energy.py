"""Energy model: activity counters x per-action energies, in the rows of EIE Table II.

``python -m sim.estimates.energy --model alexnet_fc [--config eie64] [--energy-table my.json]``

The RTL's per-PE counters (``report.json``, written by ``python -m sim``) say how often each
action happened; a 45 nm table (``sim/estimates/data/energy_45nm.json``, every entry with value,
unit, low / high and source) says what each action costs.  Per PE and layer::

    dynamic = pushes x (queue write + queue read)                  Act queue
            + pointer-pair reads x (2 pointer-bank reads + registers) PtrRead
            + Spmat word reads x (Spmat read + word register)
              + entries x (entry register + address increment)     SpmatRead
            + entries x arith_calibration x (codebook read + multiply + add
                         + row add + pipeline registers)           ArithmUnit
            + accumulator reads / writes x accumulator access
              + write-backs x (activation write + bias read + round / saturate)
              + source reads x activation read                     ActRW
    energy  = dynamic x (1 + clock_overhead) + idle cycles x idle_pe_cycle

plus, for the array, the LNZD tree (nodes x node power x layer time).  Memory accesses cost the
square-root SRAM size law at each memory's size from the configuration (``hw.arch.memories``), or,
for a register file (the activation queue, any memory of at most ``regfile_max_bits`` bits or
``regfile_max_depth`` words), the register-file figure scaled by width and by a depth law.
``sram_read_ref`` and ``arith_calibration`` are calibrated on EIE Table II (Alex-6 only, as
their sources say); :func:`eie_layer_validation` and :func:`eie_module_validation` put any
report beside EIE Tables IV and II.  ``low`` and
``high`` evaluate every entry at its low / high value.  The DRAM energy of loading a layer's
weights (Spmat words, pointers, biases, codebook) once is reported separately.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from compiler.cli import add_model_args
from compiler.manifest import load_manifest
from hw.arch.atomic import read_json
from hw.arch.config import EIEConfig, load_config
from hw.arch.errors import ArgumentParser, EIEError, cli_errors
from hw.arch.memories import EW_MODULE, MODULES, PEMemory, memory_by_name
from hw.arch.regmap import EW_COUNTER_NAMES
from hw.lnzd import lnzd_nodes as lnzd_tree_nodes
from sim.flow.paths import model_key, output_dir

DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "energy_45nm.json"
ESTIMATES = ("low", "default", "high")
#: Table II rows plus the array-level LNZD and the clock of idle PEs
ROWS = MODULES + ("LNZD", "idle PE cycles")
_COUNTERS = ("entries", "busy", "ptr_reads", "spmat_reads", "acc_reads", "acc_writes",
             "act_writes", "src_reads", "pushes")


class EnergyTable:
    """Validated per-action energies and area densities.

    Parameters
    ----------
    entries : dict
        ``name -> {"value", "low", "high", "unit", "source"}``.
    origin : str
        Where the table came from (default file, plus the override file if any).
    """

    def __init__(self, entries: dict, origin: str):
        self.entries = entries
        self.origin = origin

    def get(self, key: str, estimate: str = "default") -> float:
        """Value of ``key`` for an estimate (``low``, ``default`` or ``high``)."""
        e = self.entries[key]
        return float(e["value"] if estimate == "default" else e[estimate])

    def unit(self, key: str) -> str:
        return self.entries[key]["unit"]

    def to_dict(self) -> dict:
        return {"origin": self.origin, "entries": self.entries}


def _number(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise EIEError(f"{what} must be a finite number, got {v!r}")
    if v < 0:
        raise EIEError(f"{what} must not be negative, got {v}")
    return float(v)


def _read_json(path: Path, what: str, fix: str = "") -> dict:
    """The JSON object in ``path`` (:func:`hw.arch.atomic.read_json`; ``fix``: what to do about
    a damaged one)."""
    d = read_json(path, what, fix)
    if not isinstance(d, dict):
        raise EIEError(f"{what} {path} must be a JSON object" + (f"; {fix}" if fix else ""))
    return d


def load_table(override=None) -> EnergyTable:
    """The default 45 nm table, with the entries of ``override`` (a JSON file) replacing it.

    The override file is ``{"entries": {"<key>": {"value": v, "unit": u, "low": l,
    "high": h, "source": s}}}``; ``value`` and ``unit`` are required (the unit must be the
    default's), ``low`` / ``high`` default to ``value``, ``source`` to the file name.

    Raises
    ------
    EIEError
        Unreadable file, unknown key, missing or different unit, negative or non-numeric
        value, or ``low <= value <= high`` violated.
    """
    base = _read_json(DEFAULT_TABLE, "energy table")
    entries = {k: dict(v) for k, v in base["entries"].items()}
    origin = str(DEFAULT_TABLE.name)
    if override is not None:
        path = Path(override)
        d = _read_json(path, "energy table")
        extra = sorted(set(d) - {"name", "description", "entries"})
        if extra:
            raise EIEError(f"energy table {path}: unknown top-level key(s) {', '.join(extra)}; "
                           f"expected 'entries'")
        user = d.get("entries")
        if not isinstance(user, dict) or not user:
            raise EIEError(f"energy table {path}: 'entries' must be a non-empty object")
        for key, e in user.items():
            if key not in entries:
                raise EIEError(f"energy table {path}: unknown entry {key!r}; known: "
                               f"{', '.join(sorted(entries))}")
            if not isinstance(e, dict):
                raise EIEError(f"energy table {path}: entry {key!r} must be an object")
            bad = sorted(set(e) - {"value", "low", "high", "unit", "source"})
            if bad:
                raise EIEError(f"energy table {path}: entry {key!r} has unknown field(s) "
                               f"{', '.join(bad)}")
            if "unit" not in e:
                raise EIEError(f"energy table {path}: entry {key!r} has no unit "
                               f"(expected {entries[key]['unit']!r})")
            if e["unit"] != entries[key]["unit"]:
                raise EIEError(f"energy table {path}: entry {key!r} is in {e['unit']!r}, "
                               f"expected {entries[key]['unit']!r}")
            if "value" not in e:
                raise EIEError(f"energy table {path}: entry {key!r} has no value")
            val = _number(e["value"], f"energy table {path}: {key}.value")
            lo = _number(e.get("low", val), f"energy table {path}: {key}.low")
            hi = _number(e.get("high", val), f"energy table {path}: {key}.high")
            if not lo <= val <= hi:
                raise EIEError(f"energy table {path}: {key} needs low <= value <= high, got "
                               f"{lo} / {val} / {hi}")
            entries[key] = {"value": val, "low": lo, "high": hi, "unit": e["unit"],
                            "source": str(e.get("source", f"user file {path.name}"))}
        origin += f" overridden by {path}"
    return EnergyTable(entries, origin)


# ---- per-action energies -----------------------------------------------------------------

def memory_access_pj(table: EnergyTable, depth: int, width: int, est: str = "default",
                     write: bool = False, regfile: bool | None = None) -> float:
    """Energy of one access of ``width`` bits to a ``depth x width`` memory, in pJ.

    A register file (``regfile``; by default: at most ``regfile_max_bits`` bits or at most
    ``regfile_max_depth`` words) costs ``regfile_access_16b`` x ``width / 16`` x
    ``(depth / regfile_ref_depth) ** regfile_depth_exponent``, read or write; a larger memory
    is an SRAM costed by the square-root size law (``sram_*`` entries), a write
    ``sram_write_factor`` times a read.
    """
    if regfile is None:
        regfile = (depth * width <= table.get("regfile_max_bits", est)
                   or depth <= table.get("regfile_max_depth", est))
    if regfile:
        return (table.get("regfile_access_16b", est) * width / 16
                * (depth / table.get("regfile_ref_depth", est))
                ** table.get("regfile_depth_exponent", est))
    kb = depth * width / 8 / 1024
    e = (table.get("sram_read_ref", est) * math.sqrt(kb / table.get("sram_ref_kbytes", est))
         * (0.5 + 0.5 * width / table.get("sram_ref_width", est)))
    return e * table.get("sram_write_factor", est) if write else e


def is_regfile_energy(mem: PEMemory, table: EnergyTable, est: str = "default") -> bool:
    """True when ``mem`` is costed as a register file for energy.

    The activation queue and every memory of at most ``regfile_max_bits`` bits are built
    from flip-flops (``PEMemory.is_regfile``, which the area model and synthesis use too);
    a memory of at most ``regfile_max_depth`` words (the codebook, the accumulators) is a
    small array whose access energy follows the register-file depth law, not the SRAM
    square-root law, whether it is built from flip-flops or as a register-file macro.
    """
    return (mem.is_regfile(table.get("regfile_max_bits", est))
            or mem.depth <= table.get("regfile_max_depth", est))


def action_energies(cfg: EIEConfig, table: EnergyTable, est: str = "default") -> dict:
    """Energy of every counted action of one PE of ``cfg`` for one estimate, in pJ.

    Returns
    -------
    dict
        ``queue_push_pop`` (one activation written into and read out of the queue),
        ``ptr_pair_read``, ``spmat_read``, ``spmat_entry``, ``mac``, ``acc_read``,
        ``acc_write``, ``write_back``, ``src_read``, ``idle_cycle``, ``lnzd_node_cycle``
        (pJ), ``clock_overhead`` (fraction) and ``arith_calibration`` (the factor already
        applied to ``mac``).
    """
    mem = memory_by_name(cfg)
    ff = table.get("ff_bit", est)

    def add(bits):
        return table.get("int_add_32", est) * bits / 32

    def access(name, write=False):
        m = mem[name]
        return memory_access_pj(table, m.depth, m.width, est, write=write,
                                regfile=is_regfile_energy(m, table, est))

    mult = table.get("int_mult_16x16", est) * cfg.weight_bits * cfg.act_bits / 256
    # pipeline registers of hw/arith.py: D->M activation and row; M->W product, old value and
    # row; the bypass register lw (row, value); the running row r_prev.  The weight register
    # is the codebook's read port (part of its access energy).
    arith_reg_bits = cfg.act_bits + cfg.product_bits + 2 * cfg.acc_bits + 4 * cfg.act_addr_bits
    arith_cal = table.get("arith_calibration", est)
    return {
        # every activation broadcast into the queue is written once and popped (read) once
        "queue_push_pop": access("act_queue", write=True) + access("act_queue"),
        "ptr_pair_read": access("ptr_even") + access("ptr_odd") + 2 * cfg.ptr_bits * ff,
        "spmat_read": access("spmat") + cfg.spmat_word_bits * ff,
        # the entry register and the entry-address increment of hw/spmat_read.py
        "spmat_entry": cfg.entry_bits * ff + add(cfg.ptr_bits),
        "mac": arith_cal * (access("codebook") + mult + add(cfg.acc_bits)
                            + add(cfg.act_addr_bits) + arith_reg_bits * ff),
        "acc_read": access("acc"),
        "acc_write": access("acc", write=True),
        # write-back of one row: round / bias add / saturate, bias read, activation write
        "write_back": (access("act0", write=True) + access("bias") + add(cfg.acc_bits)
                       + add(cfg.act_bits)),
        "src_read": access("act0"),
        "idle_cycle": table.get("idle_pe_cycle", est),
        # mW / MHz = nJ per cycle; x 1000 -> pJ
        "lnzd_node_cycle": table.get("lnzd_node_power", est) / 800.0 * 1000.0,
        "clock_overhead": table.get("clock_overhead", est),
        "arith_calibration": arith_cal,
    }


#: the element-wise unit's counters (hw/ew_unit.py, counted by hw/pe.py)
EW_COUNTERS = EW_COUNTER_NAMES
#: the row of an LSTM's element-wise units beside EIE Table II's
EW_ROW = EW_MODULE


def ew_action_energies(cfg: EIEConfig, table: EnergyTable, est: str = "default") -> dict:
    """Energy of every counted action of one PE's element-wise unit (:class:`hw.ew_unit.EWUnit`),
    in pJ, from the same table entries as the FC actions.

    Returns
    -------
    dict
        ``lut_read`` (a ``lut_points x act_bits`` table read, costed as a memory of that size),
        ``ew_mul`` (an ``act_bits x cell_width`` multiply and its rounding add), ``cell_read``
        / ``cell_write`` (the ``ew_cells_max x cell_width`` cell-state memory), ``peep_read``
        (the ``3 ew_cells_max x act_bits`` peephole memory; one per peephole multiply) and
        ``cell`` (per cell: the four gates' finalize -- rounding add, bias add, bias read --,
        the three peephole sums and the cell sum, and the 12-stage pipeline's registers, about
        four activation-wide values per stage).
    """
    ff = table.get("ff_bit", est)
    cells = max(1, cfg.ew_cells_max)

    def add(bits):
        return table.get("int_add_32", est) * bits / 32

    def access(depth, width, write=False):
        return memory_access_pj(table, depth, width, est, write=write)

    bias = memory_by_name(cfg)["bias"]
    bias_read = memory_access_pj(table, bias.depth, bias.width, est,
                                 regfile=is_regfile_energy(bias, table, est))
    return {
        "lut_read": access(cfg.lut_points, cfg.act_bits),
        "ew_mul": (table.get("int_mult_16x16", est) * cfg.act_bits * cfg.cell_width / 256
                   + add(cfg.act_bits)),
        "cell_read": access(cells, cfg.cell_width),
        "cell_write": access(cells, cfg.cell_width, write=True),
        "peep_read": access(3 * cells, cfg.act_bits),
        "cell": (4 * (add(cfg.acc_bits) + add(cfg.act_bits) + bias_read)
                 + 3 * add(cfg.act_bits) + add(cfg.cell_width + 1)
                 + 12 * 4 * cfg.act_bits * ff),
    }


def lstm_energy(cfg: EIEConfig, counters: dict, cycles: int, frames: int, table: EnergyTable,
                est: str = "default") -> dict:
    """Energy of one LSTM layer over a sequence (its passes' counters and its element-wise
    units', :mod:`sim.ref.lstm_schedule`) and per frame.

    The sparse products cost what FC layers cost (:func:`layer_energy` on the sequence's
    counters, accumulator reads and clears of the element-wise stage included in ActRW's row);
    the element-wise units are the row :data:`EW_ROW`, with the clock overhead.

    Returns
    -------
    dict
        :func:`layer_energy`'s fields for the whole sequence (``modules_uj`` with
        :data:`EW_ROW` added, ``energy_uj`` and ``power_mw`` including it) and
        ``energy_per_frame_uj``.
    """
    c = {k: np.asarray(v, dtype=np.float64) for k, v in counters.items()}
    layer = {"name": "lstm", "cycles": cycles, "useful_macs": 0,
             "pe_counters": {k: c[k].tolist() for k in _COUNTERS if k in c}}
    layer["pe_counters"].setdefault("busy", c["entries"].tolist())
    out = layer_energy(cfg, layer, table, est)
    a = ew_action_energies(cfg, table, est)
    peep = np.clip(c["ew_muls"] - 3 * c["ew_cells"], 0, None)  # the peephole multiplies
    ew_pj = float(np.sum(c["lut_reads"] * a["lut_read"] + c["ew_muls"] * a["ew_mul"]
                         + c["cell_reads"] * a["cell_read"] + c["cell_writes"] * a["cell_write"]
                         + peep * a["peep_read"] + c["ew_cells"] * a["cell"]))
    ew_uj = ew_pj * (1.0 + table.get("clock_overhead", est)) * 1e-6
    out["modules_uj"][EW_ROW] = ew_uj
    out["energy_uj"] += ew_uj
    t = out["time_us"]
    out["power_mw"] = out["energy_uj"] / t * 1e3 if t else float("nan")
    out["energy_per_frame_uj"] = out["energy_uj"] / frames
    for k in ("pj_per_useful_mac", "pj_per_pe_cycle", "module_power_mw_per_pe",
              "pe_energy_uj"):
        out.pop(k, None)
    return out


def _counters(layer: dict, n_pes: int) -> dict:
    cnt = layer.get("pe_counters") or {}
    missing = [c for c in _COUNTERS if c not in cnt]
    if missing:
        raise EIEError(f"layer {layer.get('name')!r}: report.json has no per-PE counter(s) "
                       f"{', '.join(missing)}; rerun python -m sim")
    out = {c: np.asarray(cnt[c], dtype=np.float64) for c in _COUNTERS}
    for c, v in out.items():
        if v.shape != (n_pes,):
            raise EIEError(f"layer {layer.get('name')!r}: counter {c} has {v.size} values, "
                           f"expected one per PE ({n_pes})")
    return out


def layer_energy(cfg: EIEConfig, layer: dict, table: EnergyTable, est: str = "default",
                 lnzd_nodes: int | None = None) -> dict:
    """Energy of one simulated layer for one estimate.

    Parameters
    ----------
    cfg : EIEConfig
    layer : dict
        One entry of ``report.json``'s ``layers``: ``cycles``, ``useful_macs`` and
        ``pe_counters`` (per-PE lists).
    table : EnergyTable
    est : str
        ``low``, ``default`` or ``high``.
    lnzd_nodes : int, optional
        4-input LNZD nodes of the array (default: :func:`hw.lnzd.lnzd_nodes`).

    Returns
    -------
    dict
        ``energy_uj``, ``power_mw``, ``pj_per_useful_mac``, ``pj_per_pe_cycle``,
        ``modules_uj`` (the rows of :data:`ROWS`, clock share included),
        ``module_power_mw_per_pe``, ``clock_uj`` (the clock share inside the rows) and
        ``pe_energy_uj`` (per PE, without the LNZD).
    """
    if lnzd_nodes is None:
        lnzd_nodes = lnzd_tree_nodes(cfg.n_pes)
    a = action_energies(cfg, table, est)
    c = _counters(layer, cfg.n_pes)
    cycles = float(layer["cycles"])
    dyn = {
        "Act queue": c["pushes"] * a["queue_push_pop"],
        "PtrRead": c["ptr_reads"] * a["ptr_pair_read"],
        "SpmatRead": c["spmat_reads"] * a["spmat_read"] + c["entries"] * a["spmat_entry"],
        "ArithmUnit": c["entries"] * a["mac"],
        "ActRW": (c["acc_reads"] * a["acc_read"] + c["acc_writes"] * a["acc_write"]
                  + c["act_writes"] * a["write_back"] + c["src_reads"] * a["src_read"]),
    }
    k = 1.0 + a["clock_overhead"]
    per_pe = {m: v * k for m, v in dyn.items()}
    idle = np.clip(cycles - c["busy"], 0, None) * a["idle_cycle"]
    per_pe["idle PE cycles"] = idle
    lnzd_pj = lnzd_nodes * a["lnzd_node_cycle"] * cycles
    modules_pj = {m: float(np.sum(v)) for m, v in per_pe.items()}
    modules_pj["LNZD"] = lnzd_pj
    total_pj = sum(modules_pj.values())
    time_us = cycles / cfg.clock_mhz
    macs = int(layer.get("useful_macs", 0))
    pe_uj = sum(per_pe.values()) * 1e-6
    return {
        "energy_uj": total_pj * 1e-6,
        "time_us": time_us,
        "power_mw": total_pj / time_us * 1e-3 if time_us else float("nan"),
        "pj_per_useful_mac": total_pj / macs if macs else float("nan"),
        "pj_per_pe_cycle": total_pj / (cycles * cfg.n_pes) if cycles else float("nan"),
        "modules_uj": {m: modules_pj[m] * 1e-6 for m in ROWS},
        "module_power_mw_per_pe": {m: modules_pj[m] / cfg.n_pes / time_us * 1e-3
                                   if time_us else float("nan") for m in ROWS},
        "clock_uj": float(sum(np.sum(v) for v in dyn.values())) * a["clock_overhead"] * 1e-6,
        "pe_energy_uj": [float(x) for x in pe_uj],
    }


def dram_load_bits(cfg: EIEConfig, mlayer: dict) -> int:
    """Bits a layer's weights take in DRAM: Spmat words, pointers, biases and codebook."""
    words = int(np.sum(mlayer["spmat_words_per_pe"]))
    rows_local = -(-int(mlayer["rows"]) // cfg.n_pes)
    pointers = int(mlayer.get("pointers_per_pe", int(mlayer["cols"]) + 1))  # all its passes
    return (words * cfg.spmat_word_bits + pointers * cfg.n_pes * cfg.ptr_bits
            + rows_local * cfg.n_pes * cfg.act_bits + cfg.codebook_size * cfg.weight_bits)


def calibration(cfg: EIEConfig, table: EnergyTable, est: str = "default") -> dict:
    """Per-action energies with their clock share, in the terms of EIE's calibration targets."""
    a = action_energies(cfg, table, est)
    k = 1.0 + a["clock_overhead"]
    return {
        "spmat_read": a["spmat_read"] * k,
        "ptr_pair_read": a["ptr_pair_read"] * k,
        "mac": a["mac"] * k,
        "acc_update": (a["acc_read"] + a["acc_write"]) * k,
    }


def energy_report(cfg: EIEConfig, report: dict, manifest: dict, table: EnergyTable) -> dict:
    """Energy of every layer of a ``report.json`` for the low / default / high estimates.

    Returns
    -------
    dict
        ``table`` (origin and entries), ``layers`` (per layer: name, ``estimates``
        ``{low, default, high}`` of :func:`layer_energy`, ``dram_load``), ``totals`` and
        ``calibration`` (per-action energies, plus the same counters costed with EIE's
        memory sizes).
    """
    mlayers = {m["name"]: m for m in manifest["layers"]}
    # EIE's memory geometry (16K pointers in two banks, 64-word activation register files):
    # same counters, EIE's sizes -- the part of the gap that the memory sizes explain
    eie_like = cfg.replace(ptr_depth=min(cfg.ptr_depth, 16384), act_depth=64)
    layers, tot = [], {e: 0.0 for e in ESTIMATES}
    for r in report["layers"]:
        ests = {e: layer_energy(cfg, r, table, e) for e in ESTIMATES}
        for e in ESTIMATES:
            tot[e] += ests[e]["energy_uj"]
        entry = {"name": r["name"], "estimates": ests}
        if r["name"] in mlayers:
            bits = dram_load_bits(cfg, mlayers[r["name"]])
            entry["dram_load"] = {"bits": bits, **{
                f"{e}_uj": bits * table.get("dram_per_bit", e) * 1e-6 for e in ESTIMATES}}
        act_cycles = float(r["cycles"]) * cfg.n_pes
        queue_uj = ests["default"]["modules_uj"]["Act queue"]
        entry["act_queue_pj_per_cycle"] = queue_uj * 1e6 / act_cycles if act_cycles else 0.0
        layers.append(entry)
    for entry, r in zip(layers, report["layers"]):
        entry["pj_per_useful_mac_eie_memory_sizes"] = (
            layer_energy(eie_like, r, table)["pj_per_useful_mac"])
    return {
        "table": table.to_dict(),
        "layers": layers,
        "totals": {f"{e}_uj": tot[e] for e in ESTIMATES},
        "calibration": {"this_config": calibration(cfg, table),
                        "eie_memory_sizes": calibration(eie_like, table),
                        "eie_memory_sizes_note": "ptr_depth 16384 (EIE: 32 KB of pointers), "
                        "act_depth 64 (EIE: 64 x 16-bit register files)"},
    }


# ---- EIE side by side -------------------------------------------------------------------

#: EIE Table IV's row that the energy of a layer is checked against
EIE_ACTUAL = "EIE actual (64 PEs, 800 MHz)"
#: per Table II row: the counter whose events are the row's "action", and its description
ACTIONS = {"Act queue": (None, "PE-cycle"),
           "PtrRead": ("ptr_reads", "pointer-pair read"),
           "SpmatRead": ("spmat_reads", "64-bit Spmat word read (its entries' registers in)"),
           "ArithmUnit": ("entries", "MAC (one entry)"),
           "ActRW": ("acc_reads", "accumulator update (read + write; write-backs in)")}
#: EIE-implied energy per action (``calibration_pj`` of the published data) by Table II row
ACTION_TARGETS = {"Act queue": "act_queue_cycle", "PtrRead": "ptr_pair_read",
                  "SpmatRead": "spmat_read", "ArithmUnit": "mac", "ActRW": "acc_update"}


def load_alex6_actions() -> dict:
    """eiegen's count of the actions of Alex-6 on ``eie`` (``data/eie_alex6_actions.json``)."""
    return _read_json(Path(__file__).resolve().parent / "data" / "eie_alex6_actions.json",
                      "Alex-6 action counts")


def table2_action_energies(published: dict, alex6: dict) -> dict:
    """EIE's energy per action, by Table II row: the row's power over EIE's Alex-6 time,
    divided by the actions eiegen counts on Alex-6 (``alex6``, :func:`load_alex6_actions`).

    The activation queue's action is a PE-cycle (at EIE's Alex-6 time).  No eiegen energy
    figure enters: this is EIE's own Table II made into per-action energies, so that any
    layer's counted actions can be priced the way Table II prices Alex-6.

    Returns
    -------
    dict
        Table II row -> pJ per action.
    """
    t2 = {x["module"]: x["power_mw"] for x in published["table2"]["rows"]}
    t4 = published["table4"]
    t_us = t4["platforms"][EIE_ACTUAL][t4["layers"].index(alex6["benchmark"])]
    n_pes = int(published["n_pes"])
    out = {}
    for m in MODULES:
        counter = ACTIONS[m][0]
        n = (t_us * float(published["clock_mhz"]) if counter is None
             else float(alex6["actions"][counter]) / n_pes)  # per PE
        out[m] = t2[m] * t_us / n * 1e3  # mW x us = nJ
    return out


def table2_activity_uj(layer: dict, per_action: dict) -> float:
    """A simulated layer's counted actions (``report.json`` ``pe_counters``, all PEs) priced
    at :func:`table2_action_energies`: the energy EIE's Table II implies for this activity."""
    c = layer["pe_counters"]
    n_pes = len(c["entries"])
    pj = 0.0
    for m in MODULES:
        counter = ACTIONS[m][0]
        n = float(layer["cycles"]) * n_pes if counter is None else float(np.sum(c[counter]))
        pj += per_action[m] * n
    return pj * 1e-6


def benchmark_names(model: str, published: dict) -> dict:
    """eiegen layer name -> EIE benchmark name (``Alex-6`` ...) for ``model``."""
    return dict(published.get("layer_names", {}).get(model, {}))


def eie_layer_validation(model: str, report: dict, er: dict, published: dict) -> list:
    """Per layer of a report: eiegen's time and energy beside EIE Table IV.

    Generic over whatever layers ``report`` has: a layer whose model maps it to an EIE
    benchmark gets EIE's actual time, EIE's energy (time x ``validation.power_w``), the
    ratios and a pass / fail against ``validation.energy_tolerance``; other layers get
    ``None`` there.  ``calibration`` marks the layer the table was calibrated on.
    ``table2_uj`` / ``table2_ratio``: the layer's counted actions priced at EIE's own Table II
    (:func:`table2_action_energies`), beside the same EIE energy.  It tells an error of
    eiegen's energy per action from a layer whose activity EIE's constant power does not
    follow: where eiegen's and Table II's ratios agree, the difference is the activity.
    """
    val = published["validation"]
    t4 = published["table4"]
    names = benchmark_names(model, published)
    per_action = table2_action_energies(published, load_alex6_actions())
    rows = []
    for r, L in zip(report["layers"], er["layers"]):
        bench = names.get(r["name"])
        e = L["estimates"]
        row = {"name": r["name"], "benchmark": bench, "time_us": float(r["time_us"]),
               "energy_uj": e["default"]["energy_uj"], "energy_low_uj": e["low"]["energy_uj"],
               "energy_high_uj": e["high"]["energy_uj"], "eie_time_us": None,
               "eie_energy_uj": None, "time_ratio": None, "energy_ratio": None, "ok": None,
               "table2_uj": None, "table2_ratio": None,
               "calibration": bench == val["calibration_layer"]}
        if bench in t4["layers"]:
            t = t4["platforms"][EIE_ACTUAL][t4["layers"].index(bench)]
            eie_uj = t * val["power_w"]
            ratio = row["energy_uj"] / eie_uj
            row.update(eie_time_us=t, eie_energy_uj=eie_uj, time_ratio=row["time_us"] / t,
                       energy_ratio=ratio, ok=abs(ratio - 1) <= val["energy_tolerance"])
            if "pe_counters" in r:
                t2_uj = table2_activity_uj(r, per_action)
                row.update(table2_uj=t2_uj, table2_ratio=t2_uj / eie_uj)
        rows.append(row)
    return rows


def table2_layer(model: str, report: dict, published: dict) -> int:
    """Index of the layer Table II is compared on: the calibration layer, else the first."""
    names = benchmark_names(model, published)
    cal = published["validation"]["calibration_layer"]
    for i, r in enumerate(report["layers"]):
        if names.get(r["name"]) == cal:
            return i
    return 0


def eie_module_validation(cfg: EIEConfig, report: dict, er: dict, published: dict,
                          layer: int) -> list:
    """Per Table II row on one layer: per-PE power and energy per action, low / default /
    high, beside EIE's power and EIE-implied energy per action."""
    val = published["validation"]
    t2 = {x["module"]: x for x in published["table2"]["rows"]}
    tgt = published["calibration_pj"]
    r, L = report["layers"][layer], er["layers"][layer]
    cycles = float(r["cycles"]) * cfg.n_pes
    rows = []
    for m in MODULES:
        counter, action = ACTIONS[m]
        n = cycles if counter is None else float(np.sum(r["pe_counters"][counter]))
        est = {x: L["estimates"][x] for x in ESTIMATES}
        pw = {x: est[x]["module_power_mw_per_pe"][m] for x in ESTIMATES}
        pj = {x: est[x]["modules_uj"][m] * 1e6 / n if n else float("nan") for x in ESTIMATES}
        eie_mw = t2[m]["power_mw"]
        rows.append({"module": m, "power_mw": pw, "eie_power_mw": eie_mw,
                     "power_ratio": pw["default"] / eie_mw,
                     "ok": abs(pw["default"] / eie_mw - 1) <= val["module_power_tolerance"],
                     "action": action, "pj_per_action": pj,
                     "eie_pj_per_action": tgt[ACTION_TARGETS[m]]})
    tot = {x: L["estimates"][x]["power_mw"] / cfg.n_pes for x in ESTIMATES}
    eie_tot = published["table2"]["total_power_mw"]
    rows.append({"module": "total per PE", "power_mw": tot, "eie_power_mw": eie_tot,
                 "power_ratio": tot["default"] / eie_tot,
                 "ok": abs(tot["default"] / eie_tot - 1) <= val["total_power_tolerance"],
                 "action": "PE-cycle",
                 "pj_per_action": {x: L["estimates"][x]["pj_per_pe_cycle"] for x in ESTIMATES},
                 "eie_pj_per_action": tgt["pe_cycle"]})
    return rows


# ---- command line ------------------------------------------------------------------------

def print_energy(cfg: EIEConfig, er: dict, published: dict | None = None) -> None:
    """Per-layer energy table and the Table II breakdown on stdout."""
    print("\n| layer | energy (uJ) low / default / high | avg power (mW) | pJ / useful MAC | "
          "DRAM weight load (uJ) |")
    print("|---|---|---|---|---|")
    for L in er["layers"]:
        e = L["estimates"]
        d = L.get("dram_load", {})
        print(f"| {L['name']} | {e['low']['energy_uj']:.2f} / {e['default']['energy_uj']:.2f} / "
              f"{e['high']['energy_uj']:.2f} | {e['default']['power_mw']:.1f} | "
              f"{e['default']['pj_per_useful_mac']:.1f} | {d.get('default_uj', 0):.1f} |")
    t2 = {r["module"]: r for r in (published or {}).get("table2", {}).get("rows", [])}
    print(f"\nper-PE average power (mW) by EIE Table II row ({cfg.name}, clock share included)")
    head = " | ".join(L["name"] for L in er["layers"])
    print(f"| row | {head} | EIE Table II |")
    print("|---|" + "---|" * (len(er["layers"]) + 1))
    for m in ROWS:
        vals = " | ".join(f"{L['estimates']['default']['module_power_mw_per_pe'][m]:.3f}"
                          for L in er["layers"])
        pub = t2.get(m, {}).get("power_mw")
        print(f"| {m} | {vals} | {pub if pub is not None else '-'} |")


def print_validation(model: str, report: dict, er: dict, published: dict) -> None:
    """The layers beside EIE Table IV: energy, EIE's energy, ratio, pass / fail."""
    val = published["validation"]
    print(f"\nenergy beside EIE Table IV (actual time x {val['power_w']:g} W), within "
          f"{100 * val['energy_tolerance']:.0f} %")
    print("| layer | benchmark | eiegen (uJ) | EIE (uJ) | ratio | within | "
          "Table II at this activity (uJ) | its ratio | calibration layer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v in eie_layer_validation(model, report, er, published):
        eie, ratio = v["eie_energy_uj"], v["energy_ratio"]
        verdict = "-" if v["ok"] is None else ("pass" if v["ok"] else "FAIL")
        print(f"| {v['name']} | {v['benchmark'] or '-'} | {v['energy_uj']:.2f} | "
              f"{_fmt(eie, '.2f')} | {_fmt(ratio, '.2f')} | {verdict} | "
              f"{_fmt(v['table2_uj'], '.2f')} | {_fmt(v['table2_ratio'], '.2f')} | "
              f"{'yes' if v['calibration'] else ''} |")


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(argv=None) -> int:
    """``python -m sim.estimates.energy``: a simulated model's energy (reads ``report.json``)."""
    ap = ArgumentParser(prog="python -m sim.estimates.energy",
                        description="Energy of a simulated model from its RTL counters "
                                    "(run python -m sim first).")
    add_model_args(ap)
    ap.add_argument("--energy-table", default=None,
                    help="JSON file overriding entries of sim/estimates/data/energy_45nm.json")
    args = ap.parse_args(argv)
    with cli_errors("energy"):
        cfg = load_config(args.config)
        table = load_table(args.energy_table)
        out = output_dir(args.model, cfg, seed=args.seed)
        rp = out / "report.json"
        if model_key(args.model) != args.model and not Path(args.model).is_file():
            raise EIEError(f"model file not found: {args.model}")
        again = f"python -m sim --model {args.model} --config {args.config}"
        if not rp.exists():
            raise EIEError(f"{rp} not found; run {again} first")
        report = _read_json(rp, "simulation report",
                            f"run {again} again (make sim), which rewrites it")
        er = energy_report(cfg, report, load_manifest(out), table)
        pub = load_published()
        print_energy(cfg, er, pub)
        print_validation(args.model, report, er, pub)
    return 0


def load_published() -> dict:
    """EIE's published figures (``sim/estimates/data/eie_published.json``)."""
    return _read_json(Path(__file__).resolve().parent / "data" / "eie_published.json",
                      "published data")


if __name__ == "__main__":
    sys.exit(main())
