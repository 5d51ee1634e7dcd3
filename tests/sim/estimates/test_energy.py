"""Energy model: a hand-computed pe1 layer, the estimate ordering, override-file validation."""

from __future__ import annotations

import json
import math

import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.arch.memories import memory_by_name
from sim.estimates import energy
from sim.estimates.energy import ESTIMATES, ROWS, dram_load_bits, layer_energy, load_table

COUNTS = {"pushes": 10, "ptr_reads": 10, "spmat_reads": 5, "entries": 30, "busy": 30,
          "acc_reads": 34, "acc_writes": 34, "act_writes": 4, "src_reads": 1,
          "starved": 3, "full": 0}


def layer(n_pes=1, cycles=50, macs=20, **over):
    cnt = {k: [v] * n_pes for k, v in {**COUNTS, **over}.items()}
    return {"name": "L", "cycles": cycles, "useful_macs": macs, "pe_counters": cnt}


def test_hand_computed_pe1_layer():
    cfg = PRESETS["pe1"]
    # pe1 by hand: ptr bank 256 x 12 bits (0.375 KB, SRAM), Spmat 256 x 64 (2 KB, SRAM);
    # register files (at most 128 words): queue 1 x 22 bits (6-bit column + 16-bit value),
    # codebook 64 x 16, acc 64 x 32, act 64 x 16, bias 128 x 16; row address 6 bits, entry 8
    def rf(depth, width):  # register-file access: 0.25 pJ per 16 bits at 24 words, depth ** 0.4
        return 0.25 * width / 16 * (depth / 24) ** 0.4

    ptr_bank = 6.7 * math.sqrt(0.375 / 8) * (0.5 + 0.5 * 12 / 64)
    queue = 10 * 2 * rf(1, 22)  # 10 pushes, each written and popped
    ptr = 10 * (2 * ptr_bank + 2 * 12 * 0.009)
    spmat = 5 * (6.7 * math.sqrt(2 / 8) * 1.0 + 64 * 0.009) + 30 * (8 * 0.009 + 0.1 * 12 / 32)
    # codebook read, 16 x 16 multiply, 32-bit add, 6-bit row add, pipeline registers
    # (activation 16, product 32, old value and bypass value 2 x 32, four 6-bit rows) x 0.5
    mac = 0.5 * (rf(64, 16) + 0.6 + 0.1 + 0.1 * 6 / 32 + 0.009 * (16 + 32 + 64 + 4 * 6))
    arith = 30 * mac
    acc = rf(64, 32)
    act_rw = 34 * acc + 34 * acc + 4 * (rf(64, 16) + rf(128, 16) + 0.1 + 0.05) + 1 * rf(64, 16)
    dyn = queue + ptr + spmat + arith + act_rw
    idle = (50 - 30) * 2.3
    lnzd = 1 * 0.023 / 800 * 1000 * 50
    total = 1.25 * dyn + idle + lnzd
    e = layer_energy(cfg, layer(), load_table(), "default", lnzd_nodes=1)
    assert e["energy_uj"] * 1e6 == pytest.approx(total, rel=1e-12)
    m = e["modules_uj"]
    assert m["PtrRead"] * 1e6 == pytest.approx(1.25 * ptr, rel=1e-12)
    assert m["SpmatRead"] * 1e6 == pytest.approx(1.25 * spmat, rel=1e-12)
    assert m["ArithmUnit"] * 1e6 == pytest.approx(1.25 * arith, rel=1e-12)
    assert m["ActRW"] * 1e6 == pytest.approx(1.25 * act_rw, rel=1e-12)
    assert m["Act queue"] * 1e6 == pytest.approx(1.25 * queue, rel=1e-12)
    assert m["idle PE cycles"] * 1e6 == pytest.approx(idle, rel=1e-12)
    assert m["LNZD"] * 1e6 == pytest.approx(lnzd, rel=1e-12)
    assert e["pj_per_useful_mac"] == pytest.approx(total / 20, rel=1e-12)
    # 50 cycles at 800 MHz = 0.0625 us; pJ / us = uW
    assert e["power_mw"] == pytest.approx(total / 0.0625 / 1000, rel=1e-12)
    assert e["clock_uj"] * 1e6 == pytest.approx(0.25 * dyn, rel=1e-12)


def test_estimates_ordered_and_per_pe_sums():
    cfg = PRESETS["tiny"]
    t = load_table()
    es = [layer_energy(cfg, layer(n_pes=4, entries=40, busy=40), t, est)["energy_uj"]
          for est in ESTIMATES]
    assert es[0] < es[1] < es[2]
    e = layer_energy(cfg, layer(n_pes=4), t)
    assert sum(e["pe_energy_uj"]) + e["modules_uj"]["LNZD"] == pytest.approx(e["energy_uj"])
    assert set(e["modules_uj"]) == set(ROWS)


def test_more_activity_costs_more_and_idle_is_charged():
    cfg = PRESETS["pe1"]
    t = load_table()
    base = layer_energy(cfg, layer(), t)["energy_uj"]
    assert layer_energy(cfg, layer(spmat_reads=6), t)["energy_uj"] > base
    assert layer_energy(cfg, layer(cycles=60), t)["energy_uj"] == pytest.approx(
        base + 10 * (2.3 + 0.023 / 800 * 1000) * 1e-6)


def test_memory_sizes_come_from_the_config():
    t = load_table()
    small = energy.action_energies(PRESETS["pe1"], t)
    big = energy.action_energies(PRESETS["eie64"], t)
    # eie64: 128 KB Spmat -> 6.7 * sqrt(16) = 26.8 pJ per 64-bit read (plus the word register)
    assert big["spmat_read"] == pytest.approx(26.8 + 64 * 0.009)
    assert small["spmat_read"] < big["spmat_read"]
    assert small["ptr_pair_read"] < big["ptr_pair_read"]


def test_one_register_file_and_one_sram_access_by_hand():
    t = load_table()
    # eie's accumulators, 64 x 32 bits, a register file: 0.25 pJ x 32 / 16 x (64 / 24) ** 0.4;
    # (64 / 24) ** 0.4 = exp(0.4 x ln 2.6667) = exp(0.39233) = 1.48043 -> 0.74021 pJ
    assert energy.memory_access_pj(t, 64, 32) == pytest.approx(0.74021, abs=1e-5)
    assert energy.memory_access_pj(t, 64, 32, write=True) == pytest.approx(0.74021, abs=1e-5)
    # eie's activation queue, 8 x 31 bits: 0.25 x 1.9375 x (1/3) ** 0.4 = 0.484375 x 0.64439
    assert energy.memory_access_pj(t, 8, 31) == pytest.approx(0.31213, abs=1e-5)
    # eie's pointer bank, 8192 x 18 bits = 18 KB, an SRAM: 6.7 pJ x sqrt(18 / 8) = 10.05 pJ,
    # x (0.5 + 0.5 x 18 / 64) = 0.640625 -> 6.43828 pJ; a write costs the same (factor 1)
    assert energy.memory_access_pj(t, 8192, 18) == pytest.approx(6.43828, abs=1e-5)
    assert energy.memory_access_pj(t, 8192, 18, write=True) == pytest.approx(6.43828, abs=1e-5)
    # the high estimate: 12.5 x 1.5 x 0.640625 = 12.01172 pJ read, x 2 for a write
    assert energy.memory_access_pj(t, 8192, 18, "high") == pytest.approx(12.01172, abs=1e-5)
    assert energy.memory_access_pj(t, 8192, 18, "high", write=True) == pytest.approx(24.02344,
                                                                                  abs=1e-5)
    # 128 KB Spmat, 64-bit word: 6.7 x sqrt(16) x 1.0 = 26.8 pJ
    assert energy.memory_access_pj(t, 16384, 64) == pytest.approx(26.8, abs=1e-9)


def test_regfile_classification_of_eie():
    t = load_table()
    mem = memory_by_name(PRESETS["eie"])
    rf = {n for n, m in mem.items() if energy.is_regfile_energy(m, t)}
    assert rf == {"act_queue", "codebook", "acc"}


def test_dram_load_bits():
    cfg = PRESETS["tiny"]
    m = {"rows": 10, "cols": 7, "spmat_words_per_pe": [2, 3, 1, 0]}
    # 6 words x 64 + 8 pointers x 4 PEs x 12 bits + 3 rows x 4 PEs x 16 + 16 x 16
    assert dram_load_bits(cfg, m) == 6 * 64 + 8 * 4 * 12 + 3 * 4 * 16 + 16 * 16


def test_missing_counters_are_an_error():
    with pytest.raises(EIEError, match="no per-PE counter"):
        layer_energy(PRESETS["pe1"], {"name": "x", "cycles": 5, "pe_counters": {}},
                     load_table())


def write(tmp_path, obj):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(obj))
    return p


def test_override_replaces_entries(tmp_path):
    p = write(tmp_path, {"entries": {"dram_per_bit": {"value": 10, "unit": "pJ/bit"}}})
    t = load_table(p)
    assert t.get("dram_per_bit") == t.get("dram_per_bit", "low") == 10
    assert "t.json" in t.entries["dram_per_bit"]["source"]
    assert t.get("ff_bit") == load_table().get("ff_bit")


@pytest.mark.parametrize("entries, msg", [
    ({"nope": {"value": 1, "unit": "pJ"}}, "unknown entry 'nope'"),
    ({"ff_bit": {"value": 1}}, "has no unit"),
    ({"ff_bit": {"value": 1, "unit": "nJ"}}, "expected 'pJ'"),
    ({"ff_bit": {"value": -1, "unit": "pJ"}}, "must not be negative"),
    ({"ff_bit": {"value": "x", "unit": "pJ"}}, "finite number"),
    ({"ff_bit": {"value": 1, "low": 2, "unit": "pJ"}}, "low <= value <= high"),
    ({"ff_bit": {"unit": "pJ"}}, "has no value"),
])
def test_override_validation(tmp_path, entries, msg):
    with pytest.raises(EIEError, match=msg):
        load_table(write(tmp_path, {"entries": entries}))


def test_cli_bad_table_exits_2(tmp_path, capsys):
    p = write(tmp_path, {"entries": {"ff_bit": {"value": -1, "unit": "pJ"}}})
    with pytest.raises(SystemExit) as e:
        energy.main(["--model", "alexnet_fc", "--config", "pe1", "--energy-table", str(p)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("energy: error:") and "negative" in err and "\n" not in err


@pytest.mark.parametrize("data, msg", [
    (b'{"entries": {"ff_bit": {"value": 1, "unit": "p\xb5J"}}}',
     "is not UTF-8 text (byte 0xb5 at offset 46); save it as UTF-8"),
    (b'{"entries": ', "is not valid JSON (Expecting value at line 1 column 13); correct it"),
    (b"[]", "must be a JSON object"),
])
def test_a_table_that_is_not_a_json_object_is_one_line(tmp_path, data, msg):
    p = tmp_path / "t.json"
    p.write_bytes(data)
    with pytest.raises(EIEError) as e:
        load_table(p)
    assert str(e.value) == f"energy table {p} {msg}"


def test_cli_damaged_report_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    rp = tmp_path / "alexnet_fc" / "pe1" / "report.json"
    rp.parent.mkdir(parents=True)
    rp.write_bytes(b'{"model": "alex')  # cut short by a crash
    with pytest.raises(SystemExit) as e:
        energy.main(["--model", "alexnet_fc", "--config", "pe1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"energy: error: simulation report {rp} is not valid JSON") and \
        err.endswith("; run python -m sim --model alexnet_fc --config pe1 again (make sim), "
                     "which rewrites it") and "\n" not in err
    with pytest.raises(SystemExit) as e:
        energy.main(["--model", str(tmp_path / "mine.npz"), "--config", "pe1"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == (f"energy: error: model file not found: "
                                               f"{tmp_path / 'mine.npz'}")


def test_default_table_is_complete():
    t = load_table()
    for k, e in t.entries.items():
        assert set(e) == {"value", "low", "high", "unit", "source"}, k
        assert e["low"] <= e["value"] <= e["high"] and e["source"], k


def _er(*uj):
    return {"layers": [{"estimates": {"low": {"energy_uj": u / 2}, "default": {"energy_uj": u},
                                      "high": {"energy_uj": 2 * u}}} for u in uj]}


def test_eie_layer_validation_is_generic_over_layers():
    pub = energy.load_published()
    report = {"layers": [{"name": "fc6", "time_us": 30.0}, {"name": "fc7", "time_us": 12.0},
                         {"name": "extra", "time_us": 1.0}]}
    # Alex-6: 30.3 us x 0.59 W = 17.877 uJ; Alex-7: 12.2 x 0.59 = 7.198 uJ
    rows = energy.eie_layer_validation("alexnet_fc", report, _er(17.877, 9.0, 1.0), pub)
    assert [r["benchmark"] for r in rows] == ["Alex-6", "Alex-7", None]
    assert rows[0]["eie_energy_uj"] == pytest.approx(17.877)
    assert rows[0]["energy_ratio"] == pytest.approx(1.0) and rows[0]["ok"]
    assert rows[0]["calibration"] and not rows[1]["calibration"]
    assert rows[1]["energy_ratio"] == pytest.approx(9.0 / 7.198) and rows[1]["ok"] is False
    assert rows[2]["eie_energy_uj"] is None and rows[2]["ok"] is None
    assert rows[1]["time_ratio"] == pytest.approx(12.0 / 12.2)
    # a model without EIE benchmarks: every layer without a comparison
    assert all(r["ok"] is None for r in
               energy.eie_layer_validation("mlp_digits", report, _er(1, 1, 1), pub))


def test_eie_module_validation_rows():
    cfg = PRESETS["pe1"]
    t = load_table()
    lay = layer()
    rep = {"model": "x", "layers": [dict(lay, time_us=50 / 800)]}
    er = {"layers": [{"estimates": {e: layer_energy(cfg, lay, t, e) for e in ESTIMATES}}]}
    pub = energy.load_published()
    rows = energy.eie_module_validation(cfg, rep, er, pub, 0)
    assert [r["module"] for r in rows] == list(energy.MODULES) + ["total per PE"]
    arith = rows[3]
    # energy per MAC = the ArithmUnit row's energy / the 30 entries
    d = er["layers"][0]["estimates"]["default"]
    assert arith["pj_per_action"]["default"] == pytest.approx(
        d["modules_uj"]["ArithmUnit"] * 1e6 / 30)
    assert arith["eie_power_mw"] == 1.162
    for r in rows:
        p = r["power_mw"]
        assert p["low"] <= p["default"] <= p["high"]


def test_element_wise_energy_by_hand():
    """ese's element-wise unit: a 2,048 x 16 table read is an SRAM (64 Kbit > the register-file
    limits), the 64 x 16 cell-state memory and the 192 x 16 peephole memory are costed by the
    same law as every other memory; lstm_energy adds the row ElemMul to the FC rows."""
    cfg = PRESETS["ese"]
    t = load_table()
    a = energy.ew_action_energies(cfg, t)
    assert a["lut_read"] == pytest.approx(energy.memory_access_pj(t, 2048, 16))
    assert a["cell_read"] == pytest.approx(energy.memory_access_pj(t, 64, 16))
    assert a["cell_write"] == pytest.approx(energy.memory_access_pj(t, 64, 16, write=True))
    assert a["peep_read"] == pytest.approx(energy.memory_access_pj(t, 192, 16))
    assert a["ew_mul"] == pytest.approx(t.get("int_mult_16x16") + t.get("int_add_32") / 2)
    n = cfg.n_pes
    fc = {k: [v] * n for k, v in COUNTS.items()}
    ew = {"ew_cells": 32, "lut_reads": 160, "ew_muls": 192, "cell_reads": 32, "cell_writes": 32}
    both = {**fc, **{k: [v] * n for k, v in ew.items()}}
    e = energy.lstm_energy(cfg, both, 1000, 2, t)
    base = layer_energy(cfg, {"name": "x", "cycles": 1000, "useful_macs": 0,
                              "pe_counters": fc}, t)
    per_pe = (160 * a["lut_read"] + 192 * a["ew_mul"] + 32 * a["cell_read"]
              + 32 * a["cell_write"] + 96 * a["peep_read"] + 32 * a["cell"])
    want = n * per_pe * (1 + t.get("clock_overhead")) * 1e-6
    assert e["modules_uj"][energy.EW_ROW] == pytest.approx(want)
    assert e["energy_uj"] == pytest.approx(base["energy_uj"] + want)
    assert e["energy_per_frame_uj"] == pytest.approx(e["energy_uj"] / 2)
