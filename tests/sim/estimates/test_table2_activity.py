"""EIE Table II priced at a layer's counted actions (sim.estimates.energy.table2_*)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw.arch.config import PRESETS
from sim.estimates import energy
from sim.flow.compile import ensure_compiled
from sim.ref.cycle_model import run_model


def test_table2_action_energies_by_hand():
    pub = energy.load_published()
    alex6 = {"benchmark": "Alex-6",
             "actions": {"ptr_reads": 64 * 3000, "spmat_reads": 64 * 4000,
                         "entries": 64 * 20000, "acc_reads": 64 * 21000}}
    e = energy.table2_action_energies(pub, alex6)
    # PtrRead: 1.807 mW x 30.3 us = 54.75 nJ per PE over 3,000 pointer pairs = 18.25 pJ
    assert e["PtrRead"] == pytest.approx(1.807 * 30.3 / 3000 * 1e3)
    assert e["SpmatRead"] == pytest.approx(4.955 * 30.3 / 4000 * 1e3)
    assert e["ArithmUnit"] == pytest.approx(1.162 * 30.3 / 20000 * 1e3)
    assert e["ActRW"] == pytest.approx(1.122 * 30.3 / 21000 * 1e3)
    # the queue per PE-cycle: 0.112 mW / 800 MHz = 0.14 pJ
    assert e["Act queue"] == pytest.approx(0.14)
    # priced back at Alex-6's own actions and EIE's Alex-6 cycles, Table II's 9.157 mW x 30.3 us
    layer = {"cycles": 30.3 * 800,
             "pe_counters": {k: [v / 64] * 64 for k, v in alex6["actions"].items()}}
    assert energy.table2_activity_uj(layer, e) == pytest.approx(64 * 9.158 * 30.3e-3, rel=1e-4)
    # twice the pointer pairs: PtrRead's share twice
    layer["pe_counters"]["ptr_reads"] = [6000] * 64
    assert energy.table2_activity_uj(layer, e) == pytest.approx(
        64 * (9.158 + 1.807) * 30.3e-3, rel=1e-4)


def test_validation_rows_carry_table2_at_activity():
    pub = energy.load_published()
    per = {"entries": [100] * 64, "ptr_reads": [10] * 64, "spmat_reads": [20] * 64,
           "acc_reads": [101] * 64}
    report = {"layers": [{"name": "fc7", "time_us": 12.0, "cycles": 9600, "pe_counters": per},
                         {"name": "fc8", "time_us": 9.0}]}
    er = {"layers": [{"estimates": {e: {"energy_uj": 7.0} for e in energy.ESTIMATES}}] * 2}
    rows = energy.eie_layer_validation("alexnet_fc", report, er, pub)
    want = energy.table2_activity_uj(report["layers"][0], energy.table2_action_energies(
        pub, energy.load_alex6_actions()))
    assert rows[0]["table2_uj"] == pytest.approx(want)
    assert rows[0]["table2_ratio"] == pytest.approx(want / (12.2 * 0.59))
    assert rows[1]["table2_uj"] is None  # no counters in the report row


@pytest.mark.slow
def test_stored_alex6_actions_are_what_eie_counts(tmp_path):
    """The stored counts are the cycle model's (equal to the RTL's) on a fresh compile."""
    stored = energy.load_alex6_actions()
    cfg = PRESETS[stored["config"]]
    out = ensure_compiled(stored["model"], stored["seed"], cfg, out=tmp_path / "m",
                          progress=lambda m: None)
    res = run_model(out, cfg, samples=[0])
    names = [L["name"] for L in json.loads((out / "manifest.json").read_text())["layers"]]
    got = res.counters[0][names.index(stored["layer"])]
    assert {k: int(np.sum(got[k])) for k in stored["actions"]} == stored["actions"]
