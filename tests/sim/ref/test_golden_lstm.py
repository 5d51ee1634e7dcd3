"""The golden model of LSTM layers (sim/ref/golden.py) against a fixed-point reference written
separately here: the user's order, one cell at a time, from the decoded integer weights, with
the arithmetic rules of hw/arch/fixedpoint.py (finalize, the tables, ew_mul, saturate)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.options import Options
from hw.arch.config import PRESETS
from models import load_model
from hw.arch.fixedpoint import ew_mul, finalize, lut_lookup, lut_table, saturate, to_fixed, wrap
from sim.flow.compile import compile_network
from sim.ref.golden import decode_weights
from tests.compiler.test_lower import small_net, to_user, user_layout

CONFIGS = {
    "tiny": PRESETS["tiny"],
    # wider cell state, interpolated tables, round-half-even, no saturation of FC outputs
    "wide": PRESETS["tiny"].replace(name="wide", cell_bits=24, lut_interp=True,
                                    rounding="half_even", act_frac=10, lut_points=1024),
}


def user_matrices(images, plan, cfg):
    """[W_x | W_r] (user rows q * cells + c) and W_ym from the images, by the layout formula
    (tests/compiler/test_lower.py's to_user)."""
    G = decode_weights(images, plan["gates"]).toarray()
    P = None if plan["proj"] is None else decode_weights(images, plan["proj"]).toarray()
    cells, y = user_layout(plan["cell_order"], plan["y_order"], plan["cells"], plan["n_rec"],
                           plan["cells_pad"])
    W_x, W_r, W_ym = to_user(G, P, cfg.n_pes, plan["n_in"], plan["in_pad"], plan["cells"],
                             plan["n_rec"], cells, y)
    return np.hstack([W_x, W_r]), W_ym, y


def reference(net, images, cfg, x):
    """Every y_t and c_t of the first LSTM layer, cell by cell."""
    layer, plan = net.layers[0], images.lstm[0]
    W, P, y_order = user_matrices(images, plan, cfg)
    shift_g = images.layers[plan["gates"]]["shift"]
    shift_p = None if P is None else images.layers[plan["proj"]]["shift"]
    b = to_fixed(layer.b, cfg.act_frac, cfg.act_bits)
    peep = None if layer.peep is None else to_fixed(layer.peep, cfg.act_frac, cfg.act_bits)
    sig, tanh = lut_table("sigmoid", cfg), lut_table("tanh", cfg)
    cells, a, wide = layer.n_cells, cfg.act_bits, cfg.cell_width + 1
    ys, cs = [], []
    for xs in x:
        y, c = np.zeros(layer.n_rec, np.int64), np.zeros(cells, np.int64)
        ys.append([])
        cs.append([])
        for xt in xs:
            acc = wrap(W @ np.concatenate([xt, y]), cfg.acc_bits)
            pre = finalize(acc, shift_g, b, False, cfg)
            m = np.zeros(cells, np.int64)
            c_new = np.zeros(cells, np.int64)
            for j in range(cells):
                zi, zf, zg, zo = (int(pre[q * cells + j]) for q in range(4))
                if peep is not None:
                    zi = int(saturate(zi + ew_mul(peep[0, j], c[j], cfg), a))
                    zf = int(saturate(zf + ew_mul(peep[1, j], c[j], cfg), a))
                i, f = lut_lookup(zi, sig, cfg), lut_lookup(zf, sig, cfg)
                g = lut_lookup(zg, tanh, cfg)
                c_new[j] = saturate(ew_mul(f, c[j], cfg, wide) + ew_mul(i, g, cfg, wide),
                                    cfg.cell_width)
                if peep is not None:
                    zo = int(saturate(zo + ew_mul(peep[2, j], c_new[j], cfg), a))
                o = lut_lookup(zo, sig, cfg)
                m[j] = ew_mul(o, lut_lookup(c_new[j], tanh, cfg), cfg)
            c = c_new
            y = m if P is None else finalize(wrap(P @ m, cfg.acc_bits), shift_p,
                                             np.zeros(P.shape[0], np.int64), False, cfg)
            ys[-1].append(y)
            cs[-1].append(c)
    return np.array(ys), np.array(cs)


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@pytest.mark.parametrize("proj, peephole, T", [(3, True, 1), (3, True, 20), (None, True, 5),
                                               (2, False, 8), (None, False, 3)])
def test_golden_lstm_equals_the_cell_by_cell_reference(cfg_name, proj, peephole, T):
    cfg = CONFIGS[cfg_name]
    rng = np.random.default_rng(T + 10 * (proj or 0) + peephole)
    net = small_net(rng, proj=proj, peephole=peephole, T=T, fc=False, seq=True)
    comp = compile_network(net, cfg, progress=lambda m: None)
    x = comp.images.inputs[0]
    ys, cs = reference(net, comp.images, cfg, x)
    np.testing.assert_array_equal(comp.extra["lstm0_c"], cs)
    if proj:
        np.testing.assert_array_equal(comp.golden[1], ys)  # the projection's outputs
        np.testing.assert_array_equal(comp.extra["output"], ys)  # every frame's y_t
    else:
        np.testing.assert_array_equal(comp.extra["lstm0_m"], ys)
    # not a trivial case: the cell states move and the tables are used over a range
    assert np.ptp(cs) > 16


@pytest.mark.parametrize("seq", [False, True])
def test_lstm_then_fc_on_the_last_or_every_frame_and_accuracy_fields(seq):
    cfg = CONFIGS["tiny"]
    rng = np.random.default_rng(11)
    net = small_net(rng, proj=3, T=6, fc=True, seq=seq)
    net.labels = np.array([0, 1, 2]) if not seq else None
    comp = compile_network(net, cfg, progress=lambda m: None)
    ys, _ = reference(net, comp.images, cfg, comp.images.inputs[0])
    ys = ys if seq else ys[:, -1]
    fc = comp.images.layers[2]
    W = decode_weights(comp.images, 2).toarray()
    bias = to_fixed(np.asarray(net.layers[1].b)[np.asarray(fc["row_order"] or range(4))],
                    cfg.act_frac, cfg.act_bits)
    y_order = np.asarray(comp.images.lstm[0]["y_order"] or range(3))
    # the FC layer reads y_T in the projection's hardware order
    hw = finalize(wrap(ys[..., y_order] @ W.T, cfg.acc_bits), fc["shift"], bias, False, cfg)
    order = np.asarray(fc["row_order"] or range(4))
    user = np.empty_like(hw)
    user[..., order] = hw
    np.testing.assert_array_equal(comp.extra["output"], user)
    assert comp.extra["output"].shape == ((3, 6, 4) if seq else (3, 4))
    if seq:
        return
    acc = comp.manifest["accuracy"]
    assert set(acc) == {"samples", "float_dense", "float_compressed", "fixed_point_golden"}
    assert comp.manifest["lstm"][0]["cells_pad"] == 8 and comp.manifest["n_steps"] == 6


def test_lstm_digits_fixed_point_close_to_float_compressed():
    """The real LSTM through the compiler: the golden model's accuracy within 2 points of the
    float compressed network's (the tables' steps are 1/16 wide)."""
    comp = compile_network(load_model("lstm_digits"), PRESETS["eie64"],
                           progress=lambda m: None)
    acc = comp.manifest["accuracy"]
    assert acc["samples"] == 359
    assert abs(acc["fixed_point_golden"] - acc["float_compressed"]) <= 0.02
    assert acc["fixed_point_golden"] > 0.9


@pytest.mark.parametrize("seed", [0, 2, 5])
def test_permuted_cells_and_projection_rows_give_the_same_outputs(seed):
    """Cells permuted as units and the projection's rows permuted (compiler.lower._orders) move
    work between PEs, never a bit of any output: every y_t, c_t and the FC logits equal the
    plain interleave's."""
    cfg = CONFIGS["tiny"]
    net = small_net(np.random.default_rng(seed), proj=3, T=5, fc=True, seq=True)
    a = compile_network(net, cfg, progress=lambda m: None)
    b = compile_network(net, cfg, Options(permute=False), progress=lambda m: None)
    assert a.manifest["lstm"][0]["cell_order"] is not None
    assert b.manifest["lstm"][0]["cell_order"] is None
    assert b.manifest["lstm"][0]["y_order"] is None
    for key in ("lstm0_c", "lstm0_m", "output"):
        np.testing.assert_array_equal(a.extra[key], b.extra[key])
    for x, y in zip(a.golden, b.golden):
        np.testing.assert_array_equal(x, y)
