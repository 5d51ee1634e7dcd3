"""An LSTM on the Verilated array: the cocotb bench runs the central unit's LSTM program
(sim/rtl/tb_eie.py ``LSTMRunner``); every y_t of every sequence equals the golden model's, and
the cycles of every sequence equal the ESE schedule's cycle model."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.config import PRESETS
from sim.flow.compile import compile_into
from sim.ref.lstm_schedule import run_sequences
from sim.rtl.runner import run_rtl
from sim.studies.simulate import lstm_counters_equal
from tests.compiler.test_lower import small_net

CFG = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)


@pytest.mark.verilator
@pytest.mark.parametrize("T, seed, peephole, proj, cells", [
    (4, 0, True, 3, 6), (3, 1, False, 3, 6),
    (8, 2, True, None, 5),  # no projection (m_t is y_t), 5 cells on 4 PEs
    (1, 3, False, None, 6),
])
def test_lstm_on_the_verilated_array(tmp_path, T, seed, peephole, proj, cells):
    net = small_net(np.random.default_rng(seed), cells=cells, proj=proj, peephole=peephole,
                    T=T, n=3, fc=False, seq=True)
    out = tmp_path / "m"
    compile_into(net, CFG, None, out, progress=lambda m: None)
    res = run_rtl(out, CFG, progress=None, counter_samples=3)
    assert res.match, (res.outputs, res.expected)
    model = run_sequences(out, CFG)
    assert [sum(c) for c in res.cycles] == model["total_cycles"]
    # every per-PE counter, the element-wise unit's included, equals the cycle model's
    ok, diffs = lstm_counters_equal(res, model, per_frame=False)
    assert ok, diffs
    # the final c_t, read back from the element-wise units' cell-state memories
    with np.load(out / "golden.npz") as z:
        assert res.cell_states == z["lstm0_c"][:, -1].tolist()
    assert res.counters[0]["program"]["ew_cells"] == [T * 2] * 4  # 5-6 cells padded to 8
    assert sum(res.counters[0]["program"]["ew_muls"]) == T * 8 * (6 if peephole else 3)


@pytest.mark.verilator
@pytest.mark.parametrize("proj", [3, None])
def test_lstm_then_fc_on_the_verilated_array(tmp_path, proj):
    """An FC classifier on the last y_t reads it where the projection (or, without one, the
    element-wise stage) left it (its ``col_group`` and ``src_sel``) and runs after the LSTM
    program: the logits equal the golden model's."""
    net = small_net(np.random.default_rng(5), proj=proj, T=3, n=3, fc=True, seq=False)
    out = tmp_path / "m"
    comp = compile_into(net, CFG, None, out, progress=lambda m: None)
    n_l = 2 if proj else 1  # the LSTM's matrix layers
    fc = comp.manifest["passes"][n_l + 1]
    assert fc["col_group"] == comp.manifest["lstm"][0]["in_pad"] // 4
    assert fc["src_sel"] == comp.manifest["passes"][0]["src_sel"]  # y_t is in the gates' source
    res = run_rtl(out, CFG, progress=None)
    assert res.match, (res.outputs, res.expected)
    model = run_sequences(out, CFG)
    assert [sum(c[:n_l]) for c in res.cycles] == [r.cycles for r in model["lstm"][0]]
    assert [c[n_l] for c in res.cycles] == [f["fc1"] for f in model["fc_cycles"]]
    ok, diffs = lstm_counters_equal(res, model, per_frame=False)
    assert ok and "after" in res.counters[0], diffs


@pytest.mark.verilator
@pytest.mark.parametrize("proj", [3, None])
def test_lstm_with_fc_on_every_frame_on_the_verilated_array(tmp_path, proj):
    """An LSTM that returns its sequence, then an FC layer on every frame (in the program,
    after each P(t), or after EW(t) without a projection): every frame's logits of every
    sequence equal the golden model's, and the LSTM's and the FC layer's cycles the cycle
    model's."""
    net = small_net(np.random.default_rng(9), proj=proj, T=4, n=3, fc=True, seq=True)
    out = tmp_path / "m"
    compile_into(net, CFG, None, out, progress=lambda m: None)
    res = run_rtl(out, CFG, progress=None)
    assert res.match, (res.outputs, res.expected)
    assert np.asarray(res.outputs).shape == (3, 4, 4)
    model = run_sequences(out, CFG)
    assert [sum(c) for c in res.cycles] == model["total_cycles"]
    assert [c[-1] for c in res.cycles] == [f["fc1"] for f in model["fc_cycles"]]
    ok, diffs = lstm_counters_equal(res, model, per_frame=True)
    assert ok, diffs
