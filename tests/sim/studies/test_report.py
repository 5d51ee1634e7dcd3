"""make report: every section present and non-empty, on a small model simulated on pe2."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from hw.arch.config import PRESETS
from sim.flow.paths import output_dir
from sim.estimates.energy import ESTIMATES, layer_energy, load_published, load_table
from sim.studies.report import Doc, ReportInputs, main, section_eie

SECTIONS = ("Headline", "Beside EIE", "Time per layer", "Energy per layer", "Energy breakdown",
            "Energy and energy efficiency", "Area", "FPGA synthesis", "Storage breakdown",
            "Per-PE load", "Padding overhead", "Where every constant comes from")


def test_doc_renders_markdown_and_self_contained_html():
    d = Doc("t")
    d.section("S")
    d.p("a **b** `c`")
    d.table(["x", "y"], [[1, 2]])
    d.img("p.png", b"\x89PNG", "alt")
    md, h = d.markdown(), d.html()
    assert "## S" in md and "| 1 | 2 |" in md and "](plots/p.png)" in md
    assert "<b>b</b>" in h and "<code>c</code>" in h and "data:image/png;base64," in h


def test_eie_section_renders_table2_table4_and_validation():
    cfg, table = PRESETS["pe1"], load_table()
    cnt = {"pushes": 10, "ptr_reads": 10, "spmat_reads": 5, "entries": 30, "busy": 30,
           "acc_reads": 34, "acc_writes": 34, "act_writes": 4, "src_reads": 1}
    lay = {"name": "fc6", "cycles": 50, "time_us": 50 / 800, "useful_macs": 20,
           "pe_counters": {k: [v] for k, v in cnt.items()}}
    report = {"model": "alexnet_fc", "layers": [lay, dict(lay, name="other")]}
    er = {"layers": [{"estimates": {e: layer_energy(cfg, lay, table, e) for e in ESTIMATES}}] * 2}
    c = ReportInputs(cfg=cfg, table=table, cpu_watts=10.0, report=report, manifest={},
                     pub=load_published(), er=er, base=[], ar=None)
    d = Doc("t")
    section_eie(d, c)
    md = d.markdown()
    assert "Beside EIE" in md
    for row in ("| Act queue |", "| SpmatRead |", "| total per PE |"):
        assert row in md
    # the validation table: fc6 is Alex-6, the calibration layer; 'other' has no benchmark
    assert "| fc6 | Alex-6 |" in md and "yes (calibrated here)" in md
    assert "| other | - |" in md
    assert "`sram_read_ref`" in md and "`arith_calibration`" in md


def sections(md: str) -> dict:
    parts = re.split(r"^## ", md, flags=re.M)[1:]
    return {p.split("\n", 1)[0]: p.split("\n", 1)[1].strip() for p in parts}


@pytest.mark.slow
@pytest.mark.verilator  # the report simulates the model on the RTL first
@pytest.mark.yosys  # and synthesises pe2 for the area section
def test_report_sections_present_and_non_empty(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    W0 = rng.laplace(size=(20, 24)) * (rng.random((20, 24)) < 0.5)
    W1 = rng.laplace(size=(8, 20)) * (rng.random((8, 20)) < 0.6)
    np.savez(tmp_path / "small.npz", W0=W0, b0=np.zeros(20), W1=W1, b1=np.zeros(8),
             x=np.abs(rng.normal(size=(1, 24))))
    monkeypatch.chdir(tmp_path)
    model = str(tmp_path / "small.npz")
    # no report.json yet (a fresh file: a fresh output directory): the report simulates first
    out = output_dir(model, PRESETS["pe2"])
    assert not (out / "report.json").exists()
    try:
        check_report(model, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def check_report(model: str, out):
    assert main(["--model", model, "--config", "pe2"]) == 0
    md = (out / "report.md").read_text()
    secs = sections(md)
    for s in SECTIONS:
        body = next((b for t, b in secs.items() if t.startswith(s)), None)
        assert body, f"section {s!r} missing or empty"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    data = json.loads((out / "report_energy.json").read_text())
    e = data["energy"]["layers"][0]["estimates"]
    assert 0 < e["low"]["energy_uj"] < e["default"]["energy_uj"] < e["high"]["energy_uj"]
    assert data["area"]["estimates"]["default"]["pe_mm2"] > 0
    assert all(b["dense_gemv_us"] > 0 and b["csr_spmv_us"] > 0
               for b in data["cpu_baselines"]["layers"])
