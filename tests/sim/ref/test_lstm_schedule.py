"""The cycle model of the ESE schedule (sim/ref/lstm_schedule.py): the order and overlap of the
parts of every frame, the passes' own cycle model, the element-wise counters, and ese_lstm on
the ese preset against ESE's time per frame."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hw.arch.config import PRESETS
from sim.flow.compile import compile_into
from sim.ref.lstm_schedule import ew_cycles, frame_summary, run_sequences
from sim.studies import cycles as cycles_cmd
from tests.compiler.test_lower import small_net

CFG = PRESETS["tiny"]


def compiled(tmp_path, **kw):
    net = small_net(np.random.default_rng(kw.pop("seed", 0)), **kw)
    compile_into(net, CFG, None, tmp_path / "m", progress=lambda m: None)
    return tmp_path / "m", net


@pytest.mark.parametrize("proj, T", [(3, 1), (3, 6), (None, 4)])
def test_parts_of_every_frame_in_order(tmp_path, proj, T):
    out, net = compiled(tmp_path, proj=proj, T=T, seq=True, fc=False)
    res = run_sequences(out, CFG)
    ew = ew_cycles(CFG, 8)
    assert ew == 4 * 2 + 8
    for r in res["lstm"][0]:
        assert r.steps[0]["x"][0] == 0 and r.steps[0]["y"][0] == r.steps[0]["x"][1]
        for t, s in enumerate(r.steps):
            assert s["ew"] == [s["y"][1], s["y"][1] + ew]
            nxt = r.steps[t + 1] if t + 1 < T else None
            x_end = nxt["x"][1] if nxt else s["y"][1]
            if nxt:
                assert nxt["x"][0] == s["y"][1]  # X(t+1) beside EW(t)
            end = max(s["ew"][1], x_end)
            if proj:
                assert s["p"][0] == end  # P(t) after EW(t) and X(t+1)
                end = s["p"][1]
            if nxt:
                assert nxt["y"][0] == end  # Y(t+1) once y_t is in the source
        assert r.cycles == (r.steps[-1]["p"] or r.steps[-1]["ew"])[1]
        assert r.counters["ew_cells"].tolist() == [2 * T] * 4
        assert r.counters["lut_reads"].tolist() == [10 * T] * 4


def test_windows_equal_sequential_and_fc_after(tmp_path):
    out, _ = compiled(tmp_path, proj=3, T=5, seq=False, fc=True, seed=2)
    a = run_sequences(out, CFG)
    b = run_sequences(out, CFG, method="sequential")
    assert a["total_cycles"] == b["total_cycles"]
    assert [r.steps for r in a["lstm"][0]] == [r.steps for r in b["lstm"][0]]
    assert set(a["fc_cycles"][0]) == {"fc1"} and a["fc_cycles"][0]["fc1"] > 0
    assert a["total_cycles"][0] == a["lstm"][0][0].cycles + a["fc_cycles"][0]["fc1"]


def test_entries_counted_once_per_frame(tmp_path):
    """Dense sources broadcast every column: each frame processes the x part's and the
    projection's entries, every frame but the first the y part's (y_{-1} = 0)."""
    out, _ = compiled(tmp_path, proj=3, T=4, seq=True, fc=False, seed=4)
    m = json.loads((out / "manifest.json").read_text())
    ent = {p["name"]: np.array(p["entries_per_pe"]) for p in m["passes"]}
    g = np.load(out / "golden.npz")
    # seed 4: no x_t, y_t (t < 3) or m_t element is exactly zero
    assert np.count_nonzero(g["in0"][0][:, :5]) == 20
    assert np.count_nonzero(g["in0"][0][1:, 8:]) == 9
    assert np.count_nonzero(g["in1"][0][:, :6]) == 24
    r = run_sequences(out, CFG, samples=[0])["lstm"][0][0]
    want = 4 * ent["lstm0.gates.r0c0"] + 3 * ent["lstm0.gates.r0c1"] + 4 * ent["lstm0.proj"]
    assert r.counters["entries"].tolist() == want.tolist()


def test_ese_lstm_on_ese_beats_ese_and_is_near_theoretical(tmp_path, monkeypatch):
    """ESE part 1's must-reach: a frame at most 1.15x the theoretical time (one frame's
    non-zeros over 32 PEs) and below ESE's 82.7 us at 200 MHz (steady state)."""
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    args = cycles_cmd.build_parser().parse_args(["--model", "ese_lstm", "--config", "ese",
                                                 "--samples", "1"])
    rep = cycles_cmd.run(args, progress=lambda m: None)
    row = rep["lstm"][0]
    assert row["ratio_to_theoretical"] <= 1.15
    assert row["us_per_frame"] < 82.7
    assert abs(row["theoretical_us_per_frame"] - 56.9) < 0.3
    assert (tmp_path / "ese_lstm" / "ese" / "cycles.md").exists()
    assert rep["config"]["channels"] == 32 and row["gops_all_channels"] == 32 * row["gops"]


def test_frame_summary_of_one_frame(tmp_path):
    out, _ = compiled(tmp_path, proj=3, T=1, seq=True, fc=False)
    r = run_sequences(out, CFG, samples=[0])["lstm"][0][0]
    f = frame_summary(CFG, r)
    assert f["cycles_per_frame"] == r.cycles and f["frames"] == 1


def test_cycles_command_bad_input_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sim.studies.cycles", "--model", "lstm_digits",
                        "--samples", "0"], capture_output=True, text=True,
                       env={"EIEGEN_BUILD_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["cycles: error: --samples must be at least 1, got 0"]
