"""Deep Compression's retraining, in plain NumPy, for stacks of fully-connected layers.

A network is a list of parameters ``[W0, b0, W1, b1, ...]`` (``W_k`` of shape ``(out, in)``,
float64) and one ReLU flag per layer; the loss is softmax cross-entropy on the last layer's
outputs (the logits) plus an optional L2 weight decay.  Three stages, each a pure function that
returns new arrays and never modifies its arguments:

* :func:`fit` — mini-batch training (Adam or SGD).  With ``masks`` it is the retraining of a
  pruned network: gradients of pruned weights are masked out and the weights are re-masked after
  every step, so a pruned connection stays pruned.
* :func:`iterative_prune` — Deep Compression §2: prune the smallest-magnitude weights, retrain,
  prune again.  The density falls geometrically from 1 to the target over ``rounds`` rounds;
  every round prunes only among the weights the previous round kept (masks are kept between
  rounds, a pruned weight never comes back).
* :func:`trained_quantization` — Deep Compression §3: per-layer 1-D k-means with linear
  initialisation (:func:`compiler.quantize.quantize`, index 0 = the pruned zero), then the
  shared weights (centroids) are fine-tuned: the gradient of a centroid is the sum of the
  gradients of the weights that share it, and the indices stay fixed.

Everything is deterministic for a given ``seed`` (mini-batch order; NumPy's BLAS summation
order is fixed on one machine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hw.arch.errors import EIEError
from compiler.prune import prune_magnitude
from compiler.quantize import quantize


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters of :func:`fit` (and of the retraining inside the other stages)."""

    epochs: int = 20
    batch: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" or "sgd" (plain, no momentum)
    weight_decay: float = 1e-3  # L2 on the weights (not the biases)
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise EIEError(f"unknown optimizer {self.optimizer!r}; choose adam or sgd")
        for name in ("epochs", "batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 or \
                    (name == "batch" and v < 1):
                kind = "positive" if name == "batch" else "non-negative"
                raise EIEError(f"{name} must be a {kind} integer, got {v!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise EIEError(f"learning rate must be positive, got {self.lr}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise EIEError(f"weight decay must be non-negative, got {self.weight_decay}")


def _n_layers(params) -> int:
    if len(params) % 2 or not params:
        raise EIEError(f"parameters must be [W0, b0, W1, b1, ...], got {len(params)} arrays")
    return len(params) // 2


def forward(params, x, relu) -> list[np.ndarray]:
    """Activations of every layer: ``acts[0] = x``, ``acts[k + 1]`` = layer ``k``'s output.

    Parameters
    ----------
    params : list of np.ndarray
        ``[W0, b0, W1, b1, ...]``; a ``W_k`` may be a ``scipy.sparse`` matrix (a compressed
        layer, multiplied without densifying it).
    x : np.ndarray, shape (n, in)
    relu : sequence of bool
        ReLU after layer ``k``.

    Returns
    -------
    list of np.ndarray
        ``n_layers + 1`` arrays; the last are the logits.
    """
    acts = [np.asarray(x, np.float64)]
    for k in range(_n_layers(params)):
        W = params[2 * k]
        z = (np.asarray(W @ acts[-1].T).T if sp.issparse(W) else acts[-1] @ W.T) \
            + params[2 * k + 1]
        acts.append(np.maximum(z, 0) if relu[k] else z)
    return acts


def predict(params, x, relu) -> np.ndarray:
    """Class of every input: argmax of the logits."""
    return np.argmax(forward(params, x, relu)[-1], axis=1)


def accuracy(params, x, y, relu) -> float:
    """Fraction of inputs whose predicted class equals the label."""
    return float(np.mean(predict(params, x, relu) == np.asarray(y)))


def softmax_cross_entropy(logits, y) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer labels, and its gradient."""
    logits = np.asarray(logits, np.float64)
    y = np.asarray(y)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = y.size
    loss = float(-logp[np.arange(n), y].mean())
    d = np.exp(logp)
    d[np.arange(n), y] -= 1
    return loss, d / n


def loss_and_grads(params, x, y, relu, weight_decay: float = 0.0):
    """Loss (cross-entropy + ``weight_decay / 2 * sum(W**2)``) and its gradient by back-propagation.

    Returns
    -------
    loss : float
    grads : list of np.ndarray, like ``params``
    """
    n = _n_layers(params)
    acts = forward(params, x, relu)
    loss, delta = softmax_cross_entropy(acts[-1], y)
    grads = [None] * len(params)
    for k in range(n - 1, -1, -1):
        W = params[2 * k]
        grads[2 * k] = delta.T @ acts[k] + weight_decay * W
        grads[2 * k + 1] = delta.sum(axis=0)
        loss += 0.5 * weight_decay * float(np.sum(W * W))
        if k:
            delta = delta @ W
            if relu[k - 1]:
                delta = delta * (acts[k] > 0)
    return loss, grads


class Adam:
    """Adam (Kingma & Ba) over a list of arrays; :meth:`step` returns the updated arrays."""

    def __init__(self, shapes_like, lr: float, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = [np.zeros_like(p, dtype=np.float64) for p in shapes_like]
        self.v = [np.zeros_like(p, dtype=np.float64) for p in shapes_like]
        self.t = 0

    def step(self, params, grads) -> list[np.ndarray]:
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        out = []
        for j, (p, g) in enumerate(zip(params, grads)):
            self.m[j] = self.b1 * self.m[j] + (1 - self.b1) * g
            self.v[j] = self.b2 * self.v[j] + (1 - self.b2) * g * g
            out.append(p - self.lr * (self.m[j] / c1) / (np.sqrt(self.v[j] / c2) + self.eps))
        return out


class SGD:
    """Plain stochastic gradient descent (Deep Compression's centroid update is this)."""

    def __init__(self, shapes_like, lr: float):
        self.lr = lr

    def step(self, params, grads) -> list[np.ndarray]:
        return [p - self.lr * g for p, g in zip(params, grads)]


def make_optimizer(opts: TrainOptions, params):
    """The optimizer ``opts`` names, over arrays shaped like ``params``."""
    return Adam(params, opts.lr) if opts.optimizer == "adam" else SGD(params, opts.lr)


def _check_data(x, y, params):
    x = np.asarray(x, np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] == 0:
        raise EIEError(f"training inputs must be a non-empty (n, in) array, got shape {x.shape}")
    if x.shape[1] != params[0].shape[1]:
        raise EIEError(f"training inputs have {x.shape[1]} features, the first layer takes "
                       f"{params[0].shape[1]}")
    if y.shape != (x.shape[0],):
        raise EIEError(f"training labels have shape {y.shape}, expected ({x.shape[0]},)")
    n_cls = params[-1].shape[0]
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_cls:
        raise EIEError(f"training labels must be integers in 0..{n_cls - 1}")
    if not np.all(np.isfinite(x)):
        raise EIEError("training inputs contain NaN or Inf")
    return x, y


def minibatches(rng, n: int, batch: int):
    """Indices of one epoch's mini-batches: a permutation of ``range(n)`` drawn from ``rng``,
    cut into slices of ``batch``."""
    order = rng.permutation(n)
    for i in range(0, n, batch):
        yield order[i:i + batch]


def fit(params, x, y, relu, opts: TrainOptions = TrainOptions(), masks=None,
        progress: Callable[[str], None] | None = None,
        rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Train (or, with ``masks``, retrain a pruned network); returns new parameters.

    Parameters
    ----------
    params : list of np.ndarray
        ``[W0, b0, ...]``; not modified.
    x, y : np.ndarray
        Training inputs ``(n, in)`` and integer labels ``(n,)``.
    relu : sequence of bool
    opts : TrainOptions
    masks : list of bool np.ndarray, optional
        Keep-mask of every ``W_k``; pruned weights are zeroed, get no gradient and stay zero.
    progress : callable(str), optional
        One line per epoch (loss).
    rng : np.random.Generator, optional
        Source of the mini-batch order (default: seeded by ``opts.seed``); a caller that drew
        the initial weights from a generator may continue it here.
    """
    x, y = _check_data(x, y, params)
    params = [np.array(p, dtype=np.float64) for p in params]
    if masks is not None:
        for k, m in enumerate(masks):
            params[2 * k] = np.where(m, params[2 * k], 0.0)
    rng = np.random.default_rng(opts.seed) if rng is None else rng
    opt = make_optimizer(opts, params)
    for epoch in range(opts.epochs):
        total = 0.0
        for idx in minibatches(rng, y.size, opts.batch):
            loss, grads = loss_and_grads(params, x[idx], y[idx], relu, opts.weight_decay)
            total += loss * idx.size
            if masks is not None:
                for k, m in enumerate(masks):
                    grads[2 * k] = np.where(m, grads[2 * k], 0.0)
            params = opt.step(params, grads)
            if masks is not None:
                # Adam's moments from before a weight was pruned could move it again
                for k, m in enumerate(masks):
                    params[2 * k] = np.where(m, params[2 * k], 0.0)
        if progress is not None:
            progress(f"epoch {epoch + 1}/{opts.epochs}: loss {total / y.size:.4f}")
    return params


def density_schedule(target: float, rounds: int) -> list[float]:
    """Densities of the pruning rounds: geometric from 1 down to ``target`` (last = target)."""
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise EIEError(f"pruning rounds must be a positive integer, got {rounds!r}")
    if not (np.isfinite(target) and 0 < target <= 1):
        raise EIEError(f"density must be in (0, 1], got {target}")
    return [float(target ** ((r + 1) / rounds)) for r in range(rounds)]


def prune_step(W, mask, density: float) -> np.ndarray:
    """Keep the ``round(density * W.size)`` largest ``|W|`` among the weights ``mask`` keeps.

    Weights outside ``mask`` are never kept again (Deep Compression keeps masks between rounds).
    """
    kept = np.where(mask, np.abs(np.asarray(W, np.float64)), 0.0)
    # pruned weights rank last (magnitude 0); should the density ask for more weights than the
    # mask holds, ``& mask`` drops the zeros the top-k had to take
    return prune_magnitude(kept, density) & mask


def iterative_prune(params, x, y, relu, densities, rounds: int = 4,
                    opts: TrainOptions = TrainOptions(), progress=None):
    """Iterative magnitude pruning with retraining (Deep Compression §2).

    Parameters
    ----------
    params : list of np.ndarray
        The trained dense network ``[W0, b0, ...]``.
    x, y : training data
    relu : sequence of bool
    densities : sequence of float
        Target weight density of every layer, in (0, 1].
    rounds : int
        Prune-retrain rounds; round ``r`` prunes every layer to ``d ** ((r + 1) / rounds)``.
    opts : TrainOptions
        Retraining of each round (``opts.epochs`` epochs per round).

    Returns
    -------
    params : list of np.ndarray
        Retrained, pruned weights (pruned entries exactly 0).
    masks : list of bool np.ndarray
    """
    n = _n_layers(params)
    if len(densities) != n:
        raise EIEError(f"{len(densities)} densities for {n} layers")
    schedules = [density_schedule(float(d), rounds) for d in densities]
    params = [np.array(p, dtype=np.float64) for p in params]
    masks = [np.ones(params[2 * k].shape, dtype=bool) for k in range(n)]
    for r in range(rounds):
        masks = [prune_step(params[2 * k], masks[k], schedules[k][r]) for k in range(n)]
        if progress is not None:
            progress(f"prune round {r + 1}/{rounds}: densities "
                     + "/".join(f"{100 * m.mean():.1f}" for m in masks) + " %, retraining "
                     f"{opts.epochs} epochs")
        round_opts = TrainOptions(**{**opts.__dict__, "seed": opts.seed + 1000 * (r + 1)})
        params = fit(params, x, y, relu, round_opts, masks=masks)
    return params, masks


@dataclass
class SharedLayer:
    """One weight-shared layer: codebook indices (0 = pruned) and the codebook."""

    index: np.ndarray  # int64 (out, in), 0 where pruned, 1 .. 2**bits - 1 elsewhere
    centroids: np.ndarray  # float64 (2**bits,), centroids[0] == 0

    @property
    def weights(self) -> np.ndarray:
        """The dense float weight matrix the layer stands for."""
        return self.centroids[self.index]


def share_weights(W, mask, bits: int) -> SharedLayer:
    """k-means weight sharing (linear initialisation) of a layer's kept weights."""
    W = np.asarray(W, np.float64)
    index = np.zeros(W.shape, dtype=np.int64)
    idx, centroids = quantize(W[mask], bits, "kmeans")
    index[mask] = idx
    return SharedLayer(index, centroids)


def centroid_gradients(grad_W, index, n_centroids: int) -> np.ndarray:
    """Gradient of every centroid: the sum of the gradients of the weights sharing it.

    Entry 0 (the pruned zero) always gets 0: the zero is not a trainable weight.
    """
    g = np.bincount(np.asarray(index).ravel(), weights=np.asarray(grad_W).ravel(),
                    minlength=n_centroids)
    g[0] = 0.0
    return g


def trained_quantization(params, masks, x, y, relu, bits: int,
                         opts: TrainOptions = TrainOptions(), progress=None):
    """Weight sharing followed by centroid fine-tuning (Deep Compression §3).

    Parameters
    ----------
    params : list of np.ndarray
        Pruned network; only the weights ``masks`` keeps are shared.
    masks : list of bool np.ndarray
    x, y : training data (``opts.epochs == 0`` or ``x is None``: k-means only, no fine-tuning)
    relu : sequence of bool
    bits : int
        Codebook bits (``2**bits - 1`` shared weights plus the zero).
    opts : TrainOptions
        Fine-tuning of the centroids and biases.

    Returns
    -------
    shared : list of SharedLayer
    biases : list of np.ndarray
        The biases, fine-tuned together with the centroids.
    """
    n = _n_layers(params)
    shared = [share_weights(params[2 * k], masks[k], bits) for k in range(n)]
    biases = [np.array(params[2 * k + 1], dtype=np.float64) for k in range(n)]
    if x is None or opts.epochs == 0:
        return shared, biases
    x, y = _check_data(x, y, params)
    # trainable: every layer's centroids (entry 0 is pinned to zero by its zero gradient) and bias
    train = [a for k in range(n) for a in (shared[k].centroids.copy(), biases[k])]
    rng = np.random.default_rng(opts.seed)
    opt = make_optimizer(opts, train)
    for epoch in range(opts.epochs):
        total = 0.0
        for idx in minibatches(rng, y.size, opts.batch):
            full = [a for k in range(n) for a in (train[2 * k][shared[k].index], train[2 * k + 1])]
            loss, grads = loss_and_grads(full, x[idx], y[idx], relu, opts.weight_decay)
            total += loss * idx.size
            g = []
            for k in range(n):
                g.append(centroid_gradients(grads[2 * k], shared[k].index, train[2 * k].size))
                g.append(grads[2 * k + 1])
            train = opt.step(train, g)
            for k in range(n):
                train[2 * k][0] = 0.0
        if progress is not None:
            progress(f"centroid fine-tuning epoch {epoch + 1}/{opts.epochs}: "
                     f"loss {total / y.size:.4f}")
    shared = [SharedLayer(shared[k].index, train[2 * k]) for k in range(n)]
    return shared, [train[2 * k + 1] for k in range(n)]
