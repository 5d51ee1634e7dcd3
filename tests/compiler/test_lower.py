"""LSTM layers through the compiler (compiler/lower.py): where every gate row goes, decode(encode)
exact, the x part and the y part as column batches, y_t written into the next source, trained
codebooks, and what does not fit refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.lower import balanced_cells, gate_rows, lower, lstm_masks
from compiler.options import Options
from compiler.runner import compile_steps
from compiler.steps import compressed_network
from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import to_fixed
from models.lstm import LSTMLayer
from models.network import Layer, Network
from sim.ref.golden import decode_weights

CFG = PRESETS["tiny"]  # 4 PEs, 32 accumulators


def small_net(rng, n_in=5, cells=6, proj=3, peephole=True, T=4, n=3, density=0.6, fc=True,
              seq=False):
    n_rec = proj or cells
    lstm = LSTMLayer(name="lstm0", W_x=rng.normal(0, 0.6, (4 * cells, n_in)),
                     W_r=rng.normal(0, 0.6, (4 * cells, n_rec)), b=rng.normal(0, 0.3, 4 * cells),
                     peep=rng.normal(0, 0.4, (3, cells)) if peephole else None,
                     W_ym=rng.normal(0, 0.6, (proj, cells)) if proj else None,
                     density=density, return_sequences=seq)
    layers = [lstm]
    if fc:
        layers.append(Layer(name="fc1", W=rng.normal(0, 0.5, (4, n_rec)).astype(np.float32),
                            b=rng.normal(0, 0.1, 4).astype(np.float32), relu=False, density=0.8,
                            act_density=None))
    return Network(name="small_lstm", layers=layers, x=rng.normal(0, 1, (n, T, n_in)),
                   labels=None, synthetic=True, description="random")


def test_gate_rows_by_the_formula():
    """Gate q of cell c: PE c % N, local row 4 (c // N) + q, i.e. hardware row
    4N (c // N) + qN + c % N."""
    n, cells = 4, 6
    order = np.array(list(range(cells)) + [-1, -1])  # 8 slots, 2 padded
    rows = gate_rows(order, cells, n)
    assert rows.size == 32 and sorted(rows[rows >= 0]) == list(range(4 * cells))
    for c in range(cells):
        for q in range(4):
            hw = 4 * n * (c // n) + q * n + c % n
            assert rows[hw] == q * cells + c
            assert hw % n == c % n and hw // n == 4 * (c // n) + q
    assert (rows[[4 * n + q * n + k for q in range(4) for k in (2, 3)]] == -1).all()


def user_layout(cell_order, y_order, cells, n_rec, cells_pad):
    """The plan's orders as arrays (None: the identity, padded slots -1)."""
    cells_o = np.full(cells_pad, -1)
    cells_o[:cells] = np.arange(cells)
    cells_o = cells_o if cell_order is None else np.asarray(cell_order)
    return cells_o, np.arange(n_rec) if y_order is None else np.asarray(y_order)


def to_user(G, P, n, n_in, in_pad, cells, n_rec, cell_order, y_order):
    """Decoded hardware matrices back in the user's order, by the layout formula: slot s holds
    cell cell_order[s]; its gate q is hardware row 4N (s // N) + qN + s % N; G's recurrent
    column i and P's row i are y_t[y_order[i]]; P's column s is cell cell_order[s]."""
    W_x = np.zeros((4 * cells, n_in), np.int64)
    W_r = np.zeros((4 * cells, n_rec), np.int64)
    for s, c in enumerate(cell_order):
        if c < 0:
            assert not G[[4 * n * (s // n) + q * n + s % n for q in range(4)]].any()
            continue
        for q in range(4):
            row = G[4 * n * (s // n) + q * n + s % n]
            W_x[q * cells + c] = row[:n_in]
            W_r[q * cells + c, y_order] = row[in_pad:]
    assert not G[:, n_in:in_pad].any()  # the padding columns are empty
    W_ym = None
    if P is not None:
        W_ym = np.zeros((n_rec, cells), np.int64)
        ok = cell_order >= 0
        W_ym[np.ix_(y_order, cell_order[ok])] = P[:, ok]
        assert not P[:, ~ok].any()
    return W_x, W_r, W_ym


def _user_ints(state, li_gates, li_proj, plan):
    G = decode_weights(state.images, li_gates).toarray()
    P = None if li_proj is None else decode_weights(state.images, li_proj).toarray()
    cells, y = user_layout(plan.to_dict()["cell_order"], plan.to_dict()["y_order"], plan.cells,
                           plan.n_rec, plan.cells_pad)
    return to_user(G, P, CFG.n_pes, plan.n_in, plan.in_pad, plan.cells, plan.n_rec, cells, y)


@pytest.mark.parametrize("proj, peephole", [(3, True), (None, False), (2, False)])
def test_decode_encode_exact(proj, peephole):
    rng = np.random.default_rng(3)
    net = small_net(rng, proj=proj, peephole=peephole)
    state, _ = compile_steps(net, CFG)
    plan = state.plans[0]
    assert plan.in_pad == 8 and plan.cells_pad == 8 and plan.n_rec == (proj or 6)
    W_x, W_r, P = _user_ints(state, plan.gates, plan.proj, plan)
    comp = compressed_network(state).layers[0]
    wf_g = state.shared[plan.gates].w_frac
    np.testing.assert_array_equal(W_x, to_fixed(comp.W_x, wf_g, CFG.weight_bits))
    np.testing.assert_array_equal(W_r, to_fixed(comp.W_r, wf_g, CFG.weight_bits))
    m = lstm_masks(net.layers[0], 0.6, CFG.n_pes, False)
    assert ((W_x != 0) == m["W_x"]).all() and ((W_r != 0) == m["W_r"]).all()
    if proj:
        np.testing.assert_array_equal(
            P, to_fixed(comp.W_ym, state.shared[plan.proj].w_frac, CFG.weight_bits))
    # the biases in hardware order, padded rows zero
    lay = state.images.layers[plan.gates]
    assert lay["role"] == "gates" and lay["relu"] == 0


def test_passes_x_part_y_part_and_projection_write_back():
    rng = np.random.default_rng(4)
    state, _ = compile_steps(small_net(rng), CFG)
    im, plan = state.images, state.plans[0]
    gates = [im.passes[p] for p in im.layers[plan.gates]["passes"]]
    assert [(p["col0"], p["in_len"], p["keep"]) for p in gates] == [(0, 8, 1), (8, 3, 0)]
    proj = im.passes[im.layers[plan.proj]["passes"][0]]
    # y_t[i] is written to PE i % N, word in_pad / N + i // N: the next step's source
    assert proj["dst_base"] == plan.in_pad // CFG.n_pes == 2
    assert im.layers[plan.proj]["row_order"] is None
    assert im.lstm[0]["peep"].shape == (4, 3, 2)


def test_feeding_fc_layer_keeps_its_rows_and_following_fc_is_permuted():
    rng = np.random.default_rng(5)
    base = small_net(rng, fc=True)
    pre = Layer(name="fc0", W=rng.normal(0, 0.5, (5, 7)).astype(np.float32),
                b=np.zeros(5, np.float32), relu=True, density=0.7, act_density=None)
    net = Network(name="mixed", layers=[pre] + base.layers, x=rng.normal(0, 1, (2, 3, 7)),
                  labels=None, synthetic=True, description="random")
    state, _ = compile_steps(net, CFG)
    assert [m.name for m in state.mats] == ["fc0", "lstm0.gates", "lstm0.proj", "fc1"]
    assert np.array_equal(state.orders[0], np.arange(5))  # x_t in the LSTM's column order


def test_trained_codebooks_of_an_lstm():
    rng = np.random.default_rng(6)
    net = small_net(rng, fc=False)
    layer = net.layers[0]
    cb = np.concatenate(([0.0], np.linspace(-1, 1, 15)))
    gi = rng.integers(0, 16, (4 * layer.n_cells, layer.n_in + layer.n_rec))
    pi = rng.integers(0, 16, layer.W_ym.shape)
    state, _ = compile_steps(net, CFG, Options(shared=[{"gates": (gi, cb), "proj": (pi, cb)}]))
    W_x, W_r, P = _user_ints(state, 0, 1, state.plans[0])
    wf = state.shared[0].w_frac
    np.testing.assert_array_equal(np.hstack([W_x, W_r]), to_fixed(cb[gi], wf, CFG.weight_bits))
    with pytest.raises(EIEError, match="a dict with 'gates' and 'proj'"):
        compile_steps(net, CFG, Options(shared=[(gi, cb)]))
    with pytest.raises(EIEError, match=r"lstm0.gates: shared index matrix has shape"):
        compile_steps(net, CFG, Options(shared=[{"gates": (gi[:, :3], cb), "proj": (pi, cb)}]))


def test_balanced_lstm_pruning_equal_per_pe_in_every_column():
    rng = np.random.default_rng(7)
    net = small_net(rng, cells=8, fc=False, density=0.5)
    m = lstm_masks(net.layers[0], 0.5, CFG.n_pes, True)
    pe = (np.arange(32) % 8) % 4  # user row q * cells + c is on PE c % N
    for field in ("W_x", "W_r"):
        for j in range(m[field].shape[1]):
            counts = np.bincount(pe[m[field][:, j]], minlength=4)
            assert counts.max() - counts.min() <= 1


def test_too_many_cells_per_pe_refused_in_one_line():
    rng = np.random.default_rng(8)
    net = small_net(rng, cells=16, proj=3, fc=False)  # 4 cells per PE: 2 x (16 + 1) > 32
    with pytest.raises(EIEError) as e:
        lower(net, CFG)
    assert str(e.value) == ("LSTM layer lstm0: its 4 cells per PE need 34 accumulators (two "
                            "banks of their 4 gates and the projection's rows), config 'tiny' "
                            "has 32 (acc_depth): use more PEs or a deeper acc_depth")


def test_balanced_cells_lpt():
    assert balanced_cells(np.ones(8), 8, 4).tolist() == list(range(8))  # ties: the interleave
    work = np.random.default_rng(0).integers(1, 100, 30)
    order = balanced_cells(work, 32, 4)
    assert sorted(order[order >= 0]) == list(range(30)) and (order < 0).sum() == 2
    load = [work[order[k::4][order[k::4] >= 0]].sum() for k in range(4)]
    assert max(load) - min(load) <= work.max()


def _fc(rng, name, n_out, n_in):
    return Layer(name=name, W=rng.normal(0, 0.5, (n_out, n_in)).astype(np.float32),
                 b=rng.normal(0, 0.1, n_out).astype(np.float32), relu=True, density=0.8,
                 act_density=None)


@pytest.mark.parametrize("extra, note", [
    (None, None),  # one FC layer on every frame: it runs in the program
    ("lstm", "2 LSTM layers"),
    ("wide", "would write its output over the LSTM's y_t"),
    ("slots", "has 4 descriptor slots"),
])
def test_lstm_program_on_every_frame_or_its_reason(extra, note):
    """The program of an LSTM that returns its sequence runs the layers after it in every frame
    (slots from 3, accumulators after bank 1's gates), or is None with the reason: a second LSTM
    layer, or a layer that would write over y_t (a second FC layer writes the gates' source
    memory, where only in_pad / N words per PE are free before y_t)."""
    cfg = CFG.replace(name="tiny-lstm", lstm=True, max_layers=4 if extra == "slots" else 8)
    rng = np.random.default_rng(3)
    net = small_net(rng, cells=6, proj=3, T=3, n=1, fc=True, seq=True)
    layers = list(net.layers)
    if extra == "lstm":
        layers.append(LSTMLayer(name="lstm1", W_x=rng.normal(0, 0.6, (16, 4)),
                                W_r=rng.normal(0, 0.6, (16, 4)), b=rng.normal(0, 0.3, 16),
                                density=0.6))
    if extra == "slots":
        layers.append(_fc(rng, "fc2", 4, 4))
    if extra == "wide":  # fc2 writes Act0 from word 0: 3 rows per PE, 2 free before y_t
        layers.append(_fc(rng, "fc2", 12, 4))
    net = Network(name="n", layers=layers, x=net.x, labels=None, synthetic=True,
                  description="random")
    state, _ = compile_steps(net, cfg, Options())
    plan = state.images.lstm[0]
    if note is None:
        assert plan["program_note"] is None
        prog = plan["program"]
        assert (prog["f_slot"], prog["f_count"]) == (3, 1)
        assert prog["f_acc_base"] == cfg.acc_bank_words + 4 * plan["cells_pad"] // cfg.n_pes
    else:
        assert plan["program"] is None and note in plan["program_note"], plan["program_note"]


@pytest.mark.parametrize("T", [14, 15])
def test_lstm_program_needs_the_whole_sequence_in_the_source_bank(T):
    """The x frames are stored after y_t in the gates' source bank (act_depth words per PE):
    on tiny (32 words, 4 PEs), x of 5 inputs takes 2 words a frame after 2 words of x_t and 1 of
    y_t, so 14 frames fit and 15 are refused with the reason (the RTL would have written frame
    14 into the other bank)."""
    cfg = CFG.replace(name="tiny-lstm", lstm=True)
    net = small_net(np.random.default_rng(4), cells=6, proj=3, T=T, n=1, fc=False)
    state, _ = compile_steps(net, cfg, Options())
    plan = state.images.lstm[0]
    if T == 14:
        prog = plan["program"]
        assert prog["x_group0"] + T * prog["x_stride"] == 31 <= cfg.act_depth == 32
    else:
        assert plan["program"] is None
        assert plan["program_note"] == (
            "its sequences of 15 frames are stored whole in the source activations, "
            "3 + 15 x 2 = 33 words per PE, and config 'tiny-lstm' has act_depth 32 (room for "
            "14 frame(s)); use shorter sequences or a config with a larger act_depth")
