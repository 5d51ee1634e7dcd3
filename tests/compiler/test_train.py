"""NumPy training (compiler.train): gradients, masked retraining, iterative pruning, trained
quantization."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.errors import EIEError
from compiler.train import (TrainOptions, accuracy, centroid_gradients, density_schedule, fit,
                            iterative_prune, loss_and_grads, prune_step, share_weights,
                            softmax_cross_entropy, trained_quantization)

RELU = [True, True, False]


def tiny_net(seed=0, sizes=(5, 7, 6, 3)):
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(0, 0.8, (n_out, n_in)), rng.normal(0, 0.3, n_out)]
    return params


def blobs(seed=0, n=240, n_in=5, n_cls=3):
    """Separable clusters: a task a tiny MLP learns in a few epochs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2.0, (n_cls, n_in))
    y = rng.integers(0, n_cls, n)
    return centers[y] + rng.normal(0, 0.5, (n, n_in)), y


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


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_gradients_match_finite_differences(wd):
    params = tiny_net()
    x, y = blobs(n=9)
    _, grads = loss_and_grads(params, x, y, RELU, wd)
    for p, g in zip(params, grads):
        num = numeric_grad(lambda: loss_and_grads(params, x, y, RELU, wd)[0], p)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


def test_gradients_without_relu_between_layers():
    params = tiny_net(1)
    x, y = blobs(1, n=6)
    relu = [False, True, False]
    _, grads = loss_and_grads(params, x, y, relu)
    num = numeric_grad(lambda: loss_and_grads(params, x, y, relu)[0], params[0])
    np.testing.assert_allclose(grads[0], num, rtol=1e-5, atol=1e-7)


def test_softmax_cross_entropy_value():
    logits = np.array([[2.0, 0.0, -1.0]])
    loss, d = softmax_cross_entropy(logits, np.array([0]))
    p = np.exp(logits) / np.exp(logits).sum()
    assert loss == pytest.approx(-np.log(p[0, 0]))
    np.testing.assert_allclose(d, p - np.array([[1, 0, 0]]))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_learns_and_is_deterministic(optimizer):
    x, y = blobs()
    params = tiny_net()
    lr = 1e-2 if optimizer == "adam" else 0.1
    opts = TrainOptions(epochs=15, batch=32, lr=lr, optimizer=optimizer, weight_decay=0.0)
    before = accuracy(params, x, y, RELU)
    a = fit(params, x, y, RELU, opts)
    b = fit(params, x, y, RELU, opts)
    assert accuracy(a, x, y, RELU) > max(0.9, before)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
    # the input parameters are not modified
    np.testing.assert_array_equal(params[0], tiny_net()[0])


def test_fit_with_masks_keeps_pruned_weights_zero():
    x, y = blobs()
    params = tiny_net()
    rng = np.random.default_rng(3)
    masks = [rng.random(params[2 * k].shape) < 0.5 for k in range(3)]
    out = fit(params, x, y, RELU, TrainOptions(epochs=3, lr=1e-2), masks=masks)
    for k, m in enumerate(masks):
        assert np.all(out[2 * k][~m] == 0)
        assert np.all(out[2 * k][m] != params[2 * k][m])  # the kept weights did train


def test_density_schedule_and_prune_step():
    s = density_schedule(0.09, 3)
    assert s[-1] == pytest.approx(0.09) and s[0] < 1 and s == sorted(s, reverse=True)
    with pytest.raises(EIEError, match="rounds"):
        density_schedule(0.5, 0)
    W = np.arange(1.0, 21.0).reshape(4, 5)
    mask = np.ones_like(W, dtype=bool)
    mask[3, 4] = False  # the largest weight is already pruned: it must not come back
    m = prune_step(W, mask, 0.25)
    assert m.sum() == 5 and not m[3, 4] and not np.any(m & ~mask)
    assert set(W[m]) == {15.0, 16.0, 17.0, 18.0, 19.0}


def test_iterative_prune_hits_densities_with_nested_masks():
    x, y = blobs()
    params = fit(tiny_net(), x, y, RELU, TrainOptions(epochs=10, lr=1e-2))
    seen = []
    pruned, masks = iterative_prune(params, x, y, RELU, [0.4, 0.5, 0.6], rounds=3,
                                    opts=TrainOptions(epochs=2, lr=1e-2), progress=seen.append)
    assert len(seen) == 3
    for k, (m, d) in enumerate(zip(masks, [0.4, 0.5, 0.6])):
        assert m.sum() == int(round(d * m.size))
        assert np.all(pruned[2 * k][~m] == 0)
    with pytest.raises(EIEError, match="densities"):
        iterative_prune(params, x, y, RELU, [0.5], rounds=1)


def test_centroid_gradients_sum_members():
    index = np.array([[0, 1, 2], [1, 1, 0]])
    g = np.array([[5.0, 1.0, 2.0], [3.0, 4.0, 7.0]])
    np.testing.assert_allclose(centroid_gradients(g, index, 4), [0.0, 8.0, 2.0, 0.0])


def test_trained_quantization_keeps_indices_and_zero():
    x, y = blobs()
    params = fit(tiny_net(), x, y, RELU, TrainOptions(epochs=10, lr=1e-2))
    masks = [np.abs(params[2 * k]) > np.median(np.abs(params[2 * k])) for k in range(3)]
    kmeans = [share_weights(params[2 * k], masks[k], 2) for k in range(3)]
    shared, biases = trained_quantization(params, masks, x, y, RELU, 2,
                                          TrainOptions(epochs=3, lr=1e-2))
    for k in range(3):
        np.testing.assert_array_equal(shared[k].index, kmeans[k].index)
        assert np.all((shared[k].index > 0) == masks[k])
        assert shared[k].centroids.shape == (4,) and shared[k].centroids[0] == 0
        assert not np.allclose(shared[k].centroids, kmeans[k].centroids)  # fine-tuned
        assert np.unique(shared[k].weights[masks[k]]).size <= 3
    # no data: k-means only
    only, _ = trained_quantization(params, masks, None, None, RELU, 2)
    np.testing.assert_array_equal(only[0].centroids, kmeans[0].centroids)


def test_bad_training_input_is_one_error():
    params = tiny_net()
    x, y = blobs()
    with pytest.raises(EIEError, match="labels must be integers in 0..2"):
        fit(params, x, y + 5, RELU)
    with pytest.raises(EIEError, match="features"):
        fit(params, x[:, :3], y, RELU)
    with pytest.raises(EIEError, match="optimizer"):
        TrainOptions(optimizer="rmsprop")
    with pytest.raises(EIEError, match="learning rate"):
        TrainOptions(lr=-1.0)
