# amaranth: UnusedElaboratable=no
"""The array with the LSTM hardware (``cfg.lstm``) running a compiled LSTM frame by frame from
its LSTM program: every y_t bit-exact with the golden model, and the cycles of the whole
sequence against the cycle model of the ESE schedule (sim/ref/lstm_schedule.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.config import PRESETS
from hw.arch.fixedpoint import to_unsigned
from compiler.lower import slot_order
from hw.arch.regmap import CNT_LAYER_CYCLES, LSTM_FIELD, Space, cell_read_base
from sim.flow.compile import compile_into
from sim.ref.lstm_schedule import run_sequences
from tests.compiler.test_lower import small_net
from tests.hw.test_top import TopBench, host_load_writes

CFG = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)


def lstm_layout(cfg, im):
    """The LSTM program and where the x frames go (after the y region of the source)."""
    plan = im.lstm[0]
    n = cfg.n_pes
    gates = [im.passes[p] for p in im.layers[plan["gates"]]["passes"]]
    xp, yp = gates
    y_base = plan["in_pad"] // n
    x_group0 = y_base + -(-plan["n_rec"] // n)
    prog = {"x_slot": 0, "y_slot": 1, "p_slot": 2, "x_group0": x_group0,
            "x_stride": plan["in_pad"] // n, "proj_acc_base": plan["proj_acc_base"],
            "ew_cells": plan["cells_pad"] // n, "ew_bias_base": xp["bias_base"],
            "ew_shift": xp["shift"], "ew_dst": 0, "ew_peephole": int(plan["peep"] is not None)}
    return plan, xp, y_base, prog


def frame_writes(cfg, plan, x_int, x_group0, stride, src_sel):
    """Host writes of every frame's x_t (padded to in_pad) into the gates' source memory."""
    n, writes = cfg.n_pes, []
    for t, xt in enumerate(x_int):
        vec = np.zeros(plan["in_pad"], np.int64)
        vec[:xt.size] = xt
        for j, v in enumerate(vec):
            addr = src_sel * cfg.act_depth + x_group0 + t * stride + j // n
            writes.append((Space.ACT, j % n, addr, to_unsigned(v, cfg.act_bits)))
    return writes


@pytest.mark.parametrize("T, seed, cells, proj, peephole", [
    (1, 0, 6, 3, True), (3, 1, 6, 3, True), (5, 2, 6, 3, True),
    (4, 3, 12, 4, False),  # 3 cells per PE, no peepholes
    (6, 4, 4, 2, True),  # 1 cell per PE: the element-wise stage shorter than the x part
    (8, 5, 5, 2, True),  # 8 frames, 5 cells on 4 PEs
    # no projection: m_t is y_t, written by the element-wise stage into the gates' source
    (4, 6, 6, None, True), (3, 7, 5, None, False), (1, 8, 9, None, True),
])
def test_lstm_program_on_the_array(tmp_path, T, seed, cells, proj, peephole):
    cfg = CFG
    net = small_net(np.random.default_rng(seed), cells=cells, proj=proj, peephole=peephole,
                    T=T, n=1, fc=False, seq=True)
    comp = compile_into(net, cfg, None, tmp_path / "m", progress=lambda m: None)
    im = comp.images
    plan, xp, y_base, prog = lstm_layout(cfg, im)
    if proj is None:  # the compiler's program (the hand-built one below assumes P)
        prog = {k: int(v) for k, v in plan["program"].items()}
        assert prog["no_proj"] == 1 and prog["ew_dst"] == y_base
    x_int = im.inputs[0][0]  # (T, n_in)
    y_hw = comp.layer_inputs[plan["gates"]][0][:, plan["in_pad"]:]  # y_{t-1} as the source
    y_order = np.asarray(plan["y_order"] or range(plan["n_rec"]))
    # y_t in the hardware's order (the projection's rows may be permuted); without a
    # projection y_t is m_t of the cells in order
    want = [(comp.golden[plan["proj"]][0][t] if proj else comp.extra["lstm0_m"][0][t])[y_order]
            for t in range(T)]
    b = TopBench(cfg)
    got = {"y": []}
    n = cfg.n_pes

    async def read_y(ctx):
        vals = [await b.read(ctx, i % n, xp["src_sel"], y_base + i // n)
                for i in range(plan["n_rec"])]
        got["y"].append(vals)

    async def tb(ctx):
        writes = host_load_writes(cfg, im, np.zeros(0, np.int64))
        peep = plan["peep"]
        for k in range(n if peep is not None else 0):
            writes += [(Space.PEEP, k, a, to_unsigned(v, cfg.act_bits))
                       for a, v in enumerate(peep[k].ravel())]
        writes += frame_writes(cfg, plan, x_int, prog["x_group0"], prog["x_stride"],
                               xp["src_sel"])
        writes += [(Space.LSTM, 0, LSTM_FIELD[f], v) for f, v in prog.items()]
        writes.append((Space.LSTM, 0, LSTM_FIELD["frames"], T))
        await b.write(ctx, writes)
        got["cycles"] = await b.run(ctx, 0, single_step=True, on_pause=read_y)
        await read_y(ctx)
        # the final c_t of every cell, through the host's read of the cell state
        got["c"] = {(k, j): await b.read(ctx, k, 0, cell_read_base(cfg) + j)
                    for k in range(n) for j in range(plan["cells_pad"] // n)}
        got["slot_cycles"] = [await b.counter(ctx, s, CNT_LAYER_CYCLES)
                              for s in range(3 if proj else 2)]

    b.simulate(tb)
    assert len(got["y"]) == T
    slots = slot_order(plan.get("cell_order"), plan["cells"], plan["cells_pad"])
    c_last = comp.extra["lstm0_c"][0][-1]  # by user cell
    for (k, j), c in got["c"].items():  # the user's cells (a padded slot has no golden)
        cell = slots[j * n + k]
        if cell >= 0:
            assert c == c_last[cell], (k, j)
    assert any(got["c"].values())
    for t in range(T):
        assert got["y"][t] == list(want[t]), t
        if t + 1 < T:
            assert list(y_hw[t + 1][:plan["n_rec"]]) == list(want[t])
    cm = run_sequences(tmp_path / "m", cfg)["lstm"][0][0]
    got["model"] = cm.cycles
    assert sum(got["slot_cycles"]) == cm.cycles, got


@pytest.mark.parametrize("T, seed", [(1, 7), (4, 8)])
def test_lstm_with_fc_on_every_frame(tmp_path, T, seed):
    """An LSTM that returns its sequence, then an FC layer on every frame: the program runs the
    FC pass after each P(t) (``f_slot``, ``f_count``, from the compiler); every frame's logits
    are bit-exact, and the cycles of the LSTM, of the FC layer and of the whole sequence equal
    the cycle model's (F(t) between P(t) and Y(t+1))."""
    cfg = CFG
    net = small_net(np.random.default_rng(seed), cells=6, proj=3, T=T, n=1, fc=True, seq=True)
    comp = compile_into(net, cfg, None, tmp_path / "m", progress=lambda m: None)
    im = comp.images
    plan = im.lstm[0]
    prog = {k: int(v) for k, v in plan["program"].items()}
    assert (prog["f_slot"], prog["f_count"]) == (3, 1), prog
    fc = im.passes[3]
    assert fc["col_group"] == plan["in_pad"] // cfg.n_pes  # it reads y_t in place
    want = comp.golden[-1][0]  # (T, 4): the FC layer on every frame
    b = TopBench(cfg)
    got = {"out": []}

    async def read_out(ctx):
        got["out"].append(await b.read_vector(ctx, 1 - fc["src_sel"], fc["out_len"]))

    async def tb(ctx):
        writes = host_load_writes(cfg, im, np.zeros(0, np.int64))
        for k in range(cfg.n_pes):
            writes += [(Space.PEEP, k, a, to_unsigned(v, cfg.act_bits))
                       for a, v in enumerate(plan["peep"][k].ravel())]
        writes += frame_writes(cfg, plan, im.inputs[0][0], prog["x_group0"], prog["x_stride"],
                               im.passes[0]["src_sel"])
        writes += [(Space.LSTM, 0, LSTM_FIELD[f], v) for f, v in prog.items()]
        writes.append((Space.LSTM, 0, LSTM_FIELD["frames"], T))
        await b.write(ctx, writes)
        await b.run(ctx, 0, single_step=True, on_pause=read_out)
        await read_out(ctx)
        got["slots"] = [await b.counter(ctx, s, CNT_LAYER_CYCLES) for s in range(4)]

    b.simulate(tb)
    order = im.layers[-1].get("row_order")
    outs = [np.asarray(o) if order is None else np.asarray(o)[np.argsort(order)]
            for o in got["out"]]
    assert len(outs) == T
    for t in range(T):
        assert list(outs[t]) == list(want[t]), t
    model = run_sequences(tmp_path / "m", cfg)
    cm = model["lstm"][0][0]
    assert sum(got["slots"]) == cm.cycles == model["total_cycles"][0]
    assert got["slots"][3] == cm.fc_cycles["fc1"] == model["fc_cycles"][0]["fc1"]
    assert [s["f"] is not None for s in cm.steps] == [True] * T
