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
from tests.compiler.test_lower import small_net

CFG = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)


@pytest.mark.verilator
@pytest.mark.parametrize("T, seed, peephole", [(4, 0, True), (3, 1, False)])
def test_lstm_on_the_verilated_array(tmp_path, T, seed, peephole):
    net = small_net(np.random.default_rng(seed), proj=3, peephole=peephole, T=T, n=3,
                    fc=False, seq=True)
    out = tmp_path / "m"
    compile_into(net, CFG, None, out, progress=lambda m: None)
    res = run_rtl(out, CFG, progress=None)
    assert res.match, (res.outputs, res.expected)
    model = run_sequences(out, CFG)
    assert [sum(c) for c in res.cycles] == model["total_cycles"]
