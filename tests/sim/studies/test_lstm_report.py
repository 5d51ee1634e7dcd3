"""``make report`` of an LSTM network (sim/studies/lstm_report.py) on the Verilated tiny array
with LSTM hardware: an LSTM that returns its sequence and an FC layer on every frame, from a
user ``.npz``; the report's figures come from the RTL run's counters and frame cycles, and with
``--data`` it has the accuracy on the user's sequences."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw.arch.config import PRESETS
from models import save_npz
from sim.studies.report import main
from tests.compiler.test_lower import small_net

CFG = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)


@pytest.mark.verilator
def test_lstm_report_from_the_rtl(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path / "build"))
    model = save_npz(small_net(np.random.default_rng(11), cells=6, proj=3, T=5, n=2, fc=True,
                               seq=True), tmp_path / "seqfc.npz")
    cfg_file = tmp_path / "tiny-lstm.json"
    cfg_file.write_text(CFG.to_json())
    assert main(["--model", str(model), "--config", str(cfg_file), "--no-area"]) == 0
    printed = capsys.readouterr().out
    assert "## Headline" in printed and "82.7 us" in printed
    outs = list((tmp_path / "build").glob("seqfc-npz-*/tiny-lstm-*/report_energy.json"))
    assert len(outs) == 1
    data = json.loads(outs[0].read_text())
    assert data["kind"] == "lstm" and data["bit_exact"]
    assert all(data["cycle_model"].values()), data["cycle_model"]
    steps = data["steps_sample0"]
    assert len(steps) == 5 and all(s["rtl"] == s["period"] for s in steps)
    assert all(s["f"] > 0 for s in steps)  # the FC layer runs in every frame
    d, lo, hi = (data["energy"][e] for e in ("default", "low", "high"))
    assert 0 < lo["energy_per_frame_uj"] < d["energy_per_frame_uj"] < hi["energy_per_frame_uj"]
    mods = d["modules_uj_per_frame"]
    assert mods["ElemMul"] > 0 and mods["ArithmUnit"] > 0
    assert sum(mods.values()) == pytest.approx(d["energy_per_frame_uj"])
    md = outs[0].with_name("report.md").read_text()
    assert "## Frames of sequence 0" in md and "## FPGA resources" in md
    assert outs[0].with_name("report.html").exists()
    assert "## Accuracy on the data" not in md  # a synthetic model has no labels of its own
    # the user's sequences with a label per frame: the section on the data, from the RTL run
    x = np.random.default_rng(5).normal(0, 1, (3, 5, 5))
    y = np.random.default_rng(6).integers(0, 4, (3, 5))
    np.savez(tmp_path / "seqs.npz", x=x, y=y)
    assert main(["--model", str(model), "--config", str(cfg_file), "--no-area",
                 "--data", str(tmp_path / "seqs.npz")]) == 0
    outs = list((tmp_path / "build").glob("seqfc-npz-*/tiny-lstm-*+data-*/report_energy.json"))
    assert len(outs) == 1
    data = json.loads(outs[0].read_text())
    acc = data["accuracy"]
    assert data["bit_exact"] and acc["labels"] and acc["samples"] == 3
    assert acc["rtl"] == acc["golden"] and 0 <= acc["float"] <= 1
    md = outs[0].with_name("report.md").read_text()
    assert "## Accuracy on the data, and what the codebooks cost" in md
    assert f"(sha256 {acc['data']['sha256']}, 3 sequences)" in md
    assert "| RTL (Verilator) |" in md and "| network output |" in md
