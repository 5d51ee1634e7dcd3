"""Training of LSTM networks (compiler.train_lstm): BPTT against finite differences, masked
retraining, iterative and load-balance-aware pruning, trained quantization."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import train_lstm as tl
from compiler.lower import check_lstm_shared, gate_rows
from compiler.train import density_schedule
from hw.arch.errors import EIEError
from models.lstm import LSTMLayer, lstm_forward
from models.network import Layer, Network, float_forward


def lstm(rng, name, n_in, cells, proj=None, peep=True, seq=False, scale=0.5):
    n_rec = proj or cells
    return LSTMLayer(name=name, W_x=rng.normal(0, scale, (4 * cells, n_in)),
                     W_r=rng.normal(0, scale, (4 * cells, n_rec)),
                     b=rng.normal(0, 0.2, 4 * cells),
                     peep=rng.normal(0, scale, (3, cells)) if peep else None,
                     W_ym=rng.normal(0, scale, (proj, cells)) if proj else None,
                     return_sequences=seq)


def fc(rng, name, n_in, n_out, relu):
    return Layer(name=name, W=rng.normal(0, 0.6, (n_out, n_in)).astype(np.float32),
                 b=rng.normal(0, 0.2, n_out).astype(np.float32), relu=relu, density=1.0,
                 act_density=None)


def make_net(layers, n=5, T=4, seed=0, n_classes=None):
    """A network of ``layers`` on random sequences, with random labels (per frame when the
    last output is a sequence)."""
    rng = np.random.default_rng(seed + 100)
    n_in = layers[0].n_in if isinstance(layers[0], LSTMLayer) else layers[0].W.shape[1]
    x = rng.normal(0, 1, (n, T, n_in)).astype(np.float32)
    net = Network(name="t", layers=layers, x=x, labels=None, synthetic=True, description="t")
    out = float_forward(net)[-1]
    net.labels = rng.integers(0, out.shape[-1], out.shape[:-1])
    return net


CASES = {
    "proj+peep, last frame, FC ReLU + FC":
        lambda r: [lstm(r, "l0", 3, 4, proj=2), fc(r, "f1", 2, 5, True), fc(r, "f2", 5, 3, False)],
    "plain LSTM, every frame, FC per frame":
        lambda r: [lstm(r, "l0", 3, 3, peep=False, seq=True), fc(r, "f1", 3, 4, False)],
    "FC on frames, stacked LSTMs (input gradients)":
        lambda r: [fc(r, "f0", 3, 4, True), lstm(r, "l1", 4, 3, proj=2, seq=True),
                   lstm(r, "l2", 2, 2, peep=False), fc(r, "f3", 2, 3, False)],
    "LSTM alone, every frame (no projection, peepholes)":
        lambda r: [lstm(r, "l0", 2, 3, seq=True)],
}


def numeric_grad(f, a, eps=1e-6):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_finite_differences(case):
    net = make_net(CASES[case](np.random.default_rng(1)))
    params, specs = tl.params_of(net), tl.specs_of(net)
    x, y = net.x, net.labels
    _, grads = tl.loss_and_grads(params, specs, x, y, 0.01)
    assert [sorted(g) for g in grads] == [sorted(p) for p in params]
    for p, g in zip(params, grads):
        for f in p:
            num = numeric_grad(lambda: tl.loss_and_grads(params, specs, x, y, 0.01)[0], p[f])
            np.testing.assert_allclose(g[f], num, rtol=1e-5, atol=1e-8, err_msg=f)


@pytest.mark.parametrize("case", CASES)
def test_forward_is_the_float_reference(case):
    net = make_net(CASES[case](np.random.default_rng(2)))
    out, _ = tl.forward(tl.params_of(net), tl.specs_of(net), net.x)
    np.testing.assert_allclose(out, float_forward(net)[-1], rtol=1e-5, atol=1e-5)


def test_params_round_trip_through_a_network():
    net = make_net(CASES["FC on frames, stacked LSTMs (input gradients)"](
        np.random.default_rng(3)))
    params = tl.params_of(net)
    back = tl.to_network(net, params, densities=[0.5, 0.4, 0.3, 0.2], name="back")
    assert back.name == "back" and [lay.density for lay in back.layers] == [0.5, 0.4, 0.3, 0.2]
    assert tl.specs_of(back) == tl.specs_of(net)
    for p, q in zip(params, tl.params_of(back)):
        assert sorted(p) == sorted(q)
        for f in p:
            np.testing.assert_array_equal(p[f], q[f])
    assert len(tl.flatten(params)) == 2 + 5 + 3 + 2
    assert tl.unflatten(params, tl.flatten(params))[1]["W_ym"] is params[1]["W_ym"]


def sum_task(seed=0, n=300, T=5, n_in=3):
    """Which input channel has the largest sum over the sequence: a task a tiny LSTM learns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, T, n_in))
    return x, np.argmax(x.sum(axis=1), axis=1)


def task_net(seed=0, cells=8, proj=4):
    rng = np.random.default_rng(seed)
    layers = [lstm(rng, "l0", 3, cells, proj=proj, scale=0.3), fc(rng, "f1", proj, 3, False)]
    x, y = sum_task(seed + 1, n=8)
    return Network(name="task", layers=layers, x=x, labels=y, synthetic=True, description="")


OPTS = tl.SeqTrainOptions(epochs=6, batch=32, lr=1e-2, weight_decay=1e-4, clip=5.0)


def test_fit_learns_and_is_deterministic():
    net = task_net()
    params, specs = tl.params_of(net), tl.specs_of(net)
    x, y = sum_task()
    before = tl.accuracy(params, specs, x, y)
    a = tl.fit(params, specs, x, y, OPTS)
    b = tl.fit(params, specs, x, y, OPTS)
    assert tl.accuracy(a, specs, x, y) > max(0.7, before + 0.2)
    for pa, pb in zip(tl.flatten(a), tl.flatten(b)):
        np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(params[0]["W_x"], tl.params_of(net)[0]["W_x"])  # untouched


def test_fit_keeps_pruned_weights_zero():
    net = task_net(1)
    params, specs = tl.params_of(net), tl.specs_of(net)
    masks = tl.prune(params, specs, [0.4, 0.5])
    x, y = sum_task(2)
    out = tl.fit(params, specs, x, y, OPTS, masks=masks)
    for f in ("W_x", "W_r", "W_ym"):
        m = masks[0][f]
        assert m.mean() == pytest.approx(0.4, abs=0.01)
        assert np.all(out[0][f][~m] == 0) and np.all(out[0][f][m] != params[0][f][m])
    assert np.all(out[1]["W"][~masks[1]] == 0) and masks[1].mean() == 0.5
    # vectors are never pruned (a cell whose W_ym column is all pruned has no gradient)
    live = masks[0]["W_ym"].any(axis=0)
    assert np.all(out[0]["peep"][:, live] != params[0]["peep"][:, live])


@pytest.mark.parametrize("balance", [False, True])
def test_iterative_prune_reaches_the_target_density(balance):
    net = task_net(2)
    params, specs = tl.params_of(net), tl.specs_of(net)
    x, y = sum_task(3)
    seen = []
    opts = tl.SeqTrainOptions(epochs=2, batch=32, lr=1e-2)
    pruned, masks = tl.iterative_prune(params, specs, x, y, [0.25, 0.5], rounds=3, opts=opts,
                                       balance=balance, n_pes=4, progress=seen.append)
    assert len(seen) == 3 and seen[-1].startswith("prune round 3/3: densities 25.0/50.0 %")
    for f, W in pruned[0].items():
        if f in tl.MATRIX_FIELDS:
            m = masks[0][f]
            assert m.sum() == round(0.25 * m.size) and np.all(W[~m] == 0) and np.all(W[m] != 0)
    assert masks[1].sum() == 6 and np.all(pruned[1]["W"][~masks[1]] == 0)
    assert tl.density(masks[0]) == pytest.approx(0.25, abs=0.01)
    if balance:  # every round balanced: the PEs' counts of every column within one
        rows = gate_rows(np.arange(8), 8, 4)
        for m in (masks[0]["W_x"][rows], masks[0]["W_r"][rows], masks[0]["W_ym"], masks[1]):
            counts = per_pe_counts(m, 4)
            assert (counts.max(axis=0) - counts.min(axis=0)).max() <= 1


def test_balanced_rounds_take_back_what_a_quota_needs():
    """A PE whose quota in a column grows between rounds (the one-more slices move) takes
    back weights pruned earlier, so the count stays exact."""
    rng = np.random.default_rng(7)
    W = rng.normal(size=(6, 5))
    params, specs = [{"W": W, "b": np.zeros(6)}], (tl.Spec("f", "fc"),)
    first = tl.prune(params, specs, [0.6], n_pes=4, balance=True)
    second = tl.prune(tl.apply_masks(params, specs, first), specs, [0.4], n_pes=4,
                      balance=True, masks=first)
    assert first[0].sum() == 18 and second[0].sum() == 12
    assert (second[0] & ~first[0]).sum() == 1  # the one weight taken back
    counts = per_pe_counts(second[0], 4)
    assert (counts.max(axis=0) - counts.min(axis=0)).max() <= 1


def test_a_pruned_weight_never_comes_back():
    net = task_net(3)
    params, specs = tl.params_of(net), tl.specs_of(net)
    first = tl.prune(params, specs, [0.5, 0.5])
    # grow the pruned weights: a second round must still not keep them
    grown = [{f: (a + 10 * np.sign(a) if f in tl.MATRIX_FIELDS else a) for f, a in p.items()}
             for p in params]
    second = tl.prune(grown, specs, [0.3, 0.3], masks=first)
    for f in ("W_x", "W_r", "W_ym"):
        assert not np.any(second[0][f] & ~first[0][f])
    assert not np.any(second[1] & ~first[1])


def per_pe_counts(mask_hw, n):
    """Kept weights of every (PE, column): row r on PE r % n."""
    return np.stack([mask_hw[p::n].sum(axis=0) for p in range(n)])


def test_balanced_pruning_is_equal_per_pe_in_the_hardware_order():
    n = 4
    rng = np.random.default_rng(5)
    # imbalanced weights: some cells much larger than others
    layer = lstm(rng, "l0", 6, 8, proj=8)
    scale = rng.lognormal(0, 1.5, 8)
    layer = LSTMLayer(name="l0", W_x=layer.W_x * np.tile(scale, 4)[:, None],
                      W_r=layer.W_r * np.tile(scale, 4)[:, None], b=layer.b, peep=layer.peep,
                      W_ym=layer.W_ym * scale[None, :])
    net = Network(name="b", layers=[layer, fc(rng, "f1", 8, 8, False)],
                  x=rng.normal(size=(2, 3, 6)), labels=None, synthetic=True, description="")
    params, specs = tl.params_of(net), tl.specs_of(net)
    for balance in (False, True):
        # every (PE, column) slice has 8 rows (W_x, W_r) or 2 (W_ym, FC): 4 or 1 kept
        masks = tl.prune(params, specs, [0.5, 0.5], n_pes=n, balance=balance)
        rows = gate_rows(np.arange(8), 8, n)  # the user row at every hardware row
        spread = []
        for f in ("W_x", "W_r"):
            counts = per_pe_counts(masks[0][f][rows], n)
            spread.append(int((counts.max(axis=0) - counts.min(axis=0)).max()))
        for m in (masks[0]["W_ym"], masks[1]):  # rows interleaved as an FC layer's
            counts = per_pe_counts(m, n)
            spread.append(int((counts.max(axis=0) - counts.min(axis=0)).max()))
        if balance:
            assert spread == [0, 0, 0, 0]
        else:
            assert max(spread) > 1
        assert masks[0]["W_x"].sum() == 0.5 * 32 * 6 and masks[1].sum() == 32


@pytest.mark.parametrize("bits", [2, 4])
def test_trained_quantization_codebooks(bits):
    net = task_net(4)
    params, specs = tl.params_of(net), tl.specs_of(net)
    x, y = sum_task(5)
    masks = tl.prune(params, specs, [0.5, 0.5])
    pruned = tl.fit(params, specs, x, y, OPTS, masks=masks)
    km = tl.trained_quantization(pruned, specs, masks, None, None, bits)
    seen = []
    opts = tl.SeqTrainOptions(epochs=3, batch=32, lr=1e-3)
    q = tl.trained_quantization(pruned, specs, masks, x, y, bits, opts, progress=seen.append)
    assert len(seen) == 3 and seen[0].startswith("centroid fine-tuning epoch 1/3: loss ")
    lstm_entry, fc_entry = q.shared
    assert set(lstm_entry) == {"gates", "proj"}
    for s, m in ((lstm_entry["gates"], np.hstack([masks[0]["W_x"], masks[0]["W_r"]])),
                 (lstm_entry["proj"], masks[0]["W_ym"]), (fc_entry, masks[1])):
        assert s.centroids.shape == (1 << bits,) and s.centroids[0] == 0
        np.testing.assert_array_equal(s.index > 0, m)  # index 0 = pruned, exactly
    p = q.params[0]
    G = np.hstack([p["W_x"], p["W_r"]])
    np.testing.assert_array_equal(G, lstm_entry["gates"].centroids[lstm_entry["gates"].index])
    np.testing.assert_array_equal(p["W_ym"], lstm_entry["proj"].weights)
    np.testing.assert_array_equal(q.params[1]["W"], fc_entry.weights)
    # fine-tuning moves the centroids, biases and peepholes but keeps the indices
    np.testing.assert_array_equal(km.shared[0]["gates"].index, lstm_entry["gates"].index)
    assert not np.array_equal(km.shared[0]["gates"].centroids, lstm_entry["gates"].centroids)
    assert not np.array_equal(p["peep"], pruned[0]["peep"])
    loss_km = tl.loss_and_grads(km.params, specs, x, y)[0]
    assert tl.loss_and_grads(q.params, specs, x, y)[0] < loss_km
    # what Options.shared takes
    shared = q.options_shared()
    for _name, shape, index, cb in check_lstm_shared(shared[0], net.layers[0]):
        assert np.shape(index) == shape and np.shape(cb) == (1 << bits,)
    assert shared[1][0].shape == (3, 4)


def test_quantized_lstm_without_projection_has_one_codebook():
    rng = np.random.default_rng(6)
    net = make_net([lstm(rng, "l0", 3, 3, peep=False), fc(rng, "f1", 3, 2, False)])
    params, specs = tl.params_of(net), tl.specs_of(net)
    q = tl.trained_quantization(params, specs, None, None, None, 3)
    assert set(q.shared[0]) == {"gates"} and q.shared[0]["gates"].index.shape == (12, 6)
    assert np.all(q.shared[0]["gates"].index > 0)  # unpruned: every weight shared
    layer = tl.to_network(net, q.params).layers[0]
    y = lstm_forward(layer, net.x)
    assert y.shape == (5, 4, 3)


def test_bad_data_and_options():
    net = task_net()
    params, specs = tl.params_of(net), tl.specs_of(net)
    x, y = sum_task(n=10)
    with pytest.raises(EIEError, match=r"training inputs have shape \(10, 3\), expected "
                                       r"non-empty \(n, T, 3\)"):
        tl.fit(params, specs, x[:, 0], y)
    with pytest.raises(EIEError, match=r"training labels have shape \(10, 5\), expected \(10,\)"):
        tl.fit(params, specs, x, np.zeros((10, 5), int))
    with pytest.raises(EIEError, match=r"labels must be integers in 0..2"):
        tl.fit(params, specs, x, y + 3)
    with pytest.raises(EIEError, match="1 densities for 2 layers"):
        tl.prune(params, specs, [0.5])
    with pytest.raises(EIEError, match=r"mask of W_x has shape \(2, 2\)"):
        tl.fit(params, specs, x, y, masks=[{"W_x": np.ones((2, 2), bool)}, None])
    with pytest.raises(EIEError, match="clipping norm must be positive"):
        tl.SeqTrainOptions(clip=0.0)
    assert density_schedule(0.25, 2) == [0.5, 0.25]
