"""Synthetic stand-ins for the EIE benchmark layers (EIE Table III): AlexNet, VGG-16, NeuralTalk.

Pretrained weights cannot be downloaded here, so these networks have the published layer sizes,
weight densities and activation densities but random weights.  They exercise the compiler and the
hardware exactly like the real layers would (same shapes, same sparsity), but their outputs mean
nothing; every description says "synthetic".

How a layer is generated (:func:`_make_weights`)
------------------------------------------------
* Weights are Laplace distributed (heavier tails than a Gaussian, as trained FC weights are), with
  a log-normal scale per output row and per input column, so magnitude pruning keeps a different
  number of weights in every row and column, as it does on trained networks.
* The whole matrix is then scaled so that the pre-activation ``W_pruned @ x`` has a standard
  deviation of ``PRE_STD`` (2.0), where ``W_pruned`` keeps the ``round(density * size)``
  largest-magnitude weights (the compiler's magnitude pruning).  Activations thus stay well
  inside the hardware's 16-bit range (+-128) and far above its resolution (1/256).

How the published activation densities are hit (:func:`_choose_bias`)
--------------------------------------------------------------------
Layer ``k+1``'s input is ``relu(W_pruned_k @ x_k + b_k)``.  The bias ``b_k`` is a small random
per-neuron term plus one global offset, chosen by a quantile of the pre-activation so that
exactly ``round(act_density_{k+1} * out_k)`` outputs are positive in the float, pruned network.
Neurons whose pre-activation then lies within ``MARGIN`` (0.25, i.e. 64 LSBs of the 8-fraction-bit
format) of zero get their bias nudged to exactly ``+-MARGIN``: the set of positive neurons is
unchanged, but weight quantization and 16-bit rounding must move a pre-activation by more than
``MARGIN`` to flip a neuron, and every positive output is at least ``MARGIN`` so none rounds to 0.
Layer 0's input has exactly ``round(act_density_0 * in)`` non-zeros, each at least ``X_MIN``.

Speed: AlexNet's 58.6M weights are generated from raw generator bits (uniform mantissa -> Laplace
by an inverse CDF in float32), and the pruning threshold is found from a sample that brackets it
plus one pass over the matrix, without sorting it.
"""

from __future__ import annotations

import zlib

import numpy as np

from models.network import Layer, Network

PRE_STD = 2.0  # standard deviation of every pruned layer's pre-activation
MARGIN = 0.25  # no pre-activation of a ReLU layer lies in (-MARGIN, MARGIN)
BIAS_STD = 0.5  # per-neuron random part of the bias
X_MIN = 0.05  # smallest non-zero input magnitude (13 LSBs at 8 fraction bits)
ROW_SCALE_SIGMA = 0.3  # log-normal spread of the per-row weight scale
COL_SCALE_SIGMA = 0.2  # log-normal spread of the per-column weight scale

# (name, inputs, outputs, weight density, input-activation density, relu); EIE Table III
ALEXNET_FC = (("fc6", 9216, 4096, 0.09, 0.351, True),
              ("fc7", 4096, 4096, 0.09, 0.353, True),
              ("fc8", 4096, 1000, 0.25, 0.375, False))
VGG_FC = (("fc6", 25088, 4096, 0.04, 0.183, True),
          ("fc7", 4096, 4096, 0.04, 0.375, True),
          ("fc8", 4096, 1000, 0.23, 0.411, False))
# NeuralTalk's three layers are separate matrix-vector products (not a chain)
NEURALTALK = (("NT-We", 4096, 600, 0.10, 1.0, False),
              ("NT-Wd", 600, 8791, 0.11, 1.0, False),
              ("NT-LSTM", 1201, 2400, 0.10, 1.0, False))


def model_rng(name: str, seed: int) -> np.random.Generator:
    """Generator for one model and seed; different models never share a stream."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def laplace_f32(rng: np.random.Generator, shape: tuple[int, int],
                row_scale: np.ndarray | None = None,
                col_scale: np.ndarray | None = None) -> np.ndarray:
    """Laplace samples (unit scale times optional per-row and per-column scales), float32.

    Built in place in the buffer of raw 32-bit generator words, a block of rows at a time (one
    allocation of the matrix, every block in cache): bits 9..31 of a word give a uniform
    mantissa ``u`` in [0, 1), ``-log(1 - u)`` is a unit exponential, bit 0 gives the sign.
    """
    rows, cols = shape
    n = rows * cols
    buf = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n].reshape(shape)
    step = max(1, (1 << 18) // cols)
    for r0 in range(0, rows, step):
        blk = buf[r0:r0 + step]
        sign = blk << np.uint32(31)
        blk >>= np.uint32(9)
        blk |= np.uint32(0x3F800000)  # float32 in [1, 2)
        f = blk.view(np.float32)
        np.subtract(np.float32(2), f, out=f)  # (0, 1]
        np.log(f, out=f)  # <= 0
        blk ^= sign  # random sign (log gave a negative value or -0.0)
        if row_scale is not None:
            f *= row_scale[r0:r0 + step, None]
        if col_scale is not None:
            f *= col_scale[None, :]
    return buf.view(np.float32)


def kth_largest_abs(W: np.ndarray, k: int) -> float:
    """The ``k``-th largest ``|w|`` of ``W`` (1-based), exactly, without sorting ``W``.

    A strided sample of about a million magnitudes brackets the answer (a 6-sigma binomial
    margin); one pass then counts the magnitudes above the bracket and keeps those inside it, and
    a partition of that small set gives the exact value.  Falls back to a full partition if the
    bracket misses (never seen) or the matrix is small.
    """
    flat = W.reshape(-1)
    n = flat.size
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    if n <= 4_000_000:
        a = np.abs(flat)
        return float(np.partition(a, n - k)[n - k])
    step = n // 1_000_000
    samp = np.sort(np.abs(flat[::step]))[::-1]
    m = samp.size
    q = k / n
    sd = np.sqrt(m * q * (1 - q))
    t_hi = samp[max(int(q * m - 6 * sd) - 1, 0)]
    t_lo = samp[min(int(q * m + 6 * sd) + 1, m - 1)]
    above, cands = 0, []
    rows = max(1, (1 << 20) // W.shape[1])
    for r0 in range(0, W.shape[0], rows):
        a = np.abs(W[r0:r0 + rows])
        above += int(np.count_nonzero(a > t_hi))
        cands.append(a[(a <= t_hi) & (a >= t_lo)])
    c = np.concatenate(cands)
    need = k - above
    if not 1 <= need <= c.size:
        a = np.abs(flat)
        return float(np.partition(a, n - k)[n - k])
    return float(np.partition(c, c.size - need)[c.size - need])


def pruned_matvec(W: np.ndarray, x: np.ndarray, density: float) -> np.ndarray:
    """``W_pruned @ x`` (float64) where ``W_pruned`` keeps the top ``round(density*size)`` |w|.

    Weights tied with the threshold are all kept; with continuous float32 draws a tie at the
    threshold is a handful of weights at most.  Only the columns where ``x`` is non-zero are read.
    """
    k = max(1, int(round(density * W.size)))
    t = np.float32(kth_largest_abs(W, k))
    nz = np.flatnonzero(x)
    y = np.zeros(W.shape[0], dtype=np.float64)
    xs = x[nz].astype(np.float32)
    rows = max(1, (1 << 18) // max(1, nz.size))  # blocks that stay in cache
    for r0 in range(0, W.shape[0], rows):
        Wc = W[r0:r0 + rows, nz]
        Wc *= np.abs(Wc) >= t
        y[r0:r0 + rows] = Wc @ xs
    return y


def sparse_input(rng: np.random.Generator, n: int, density: float) -> np.ndarray:
    """Non-negative vector with exactly ``round(density * n)`` non-zeros, each >= ``X_MIN``."""
    x = np.zeros(n, dtype=np.float32)
    k = int(round(density * n))
    pos = rng.choice(n, size=k, replace=False)
    x[pos] = X_MIN + rng.exponential(1.0, size=k)
    return x


def _make_weights(rng, rows, cols, density, x) -> tuple[np.ndarray, np.ndarray]:
    """Weights scaled so the pruned pre-activation on ``x`` has std ``PRE_STD``; and that
    pre-activation."""
    row_scale = rng.lognormal(0.0, ROW_SCALE_SIGMA, rows).astype(np.float32)
    col_scale = rng.lognormal(0.0, COL_SCALE_SIGMA, cols).astype(np.float32)
    W = laplace_f32(rng, (rows, cols), row_scale, col_scale)
    y = pruned_matvec(W, x, density)
    scale = PRE_STD / float(np.std(y))
    W *= np.float32(scale)
    return W, y * scale


def _choose_bias(rng, y: np.ndarray, out_density: float | None) -> np.ndarray:
    """Bias giving exactly ``round(out_density * len(y))`` positive outputs, none in the margin.

    ``out_density=None`` (a layer without ReLU): only the random per-neuron part.
    """
    b = rng.normal(0.0, BIAS_STD, y.size)
    if out_density is None:
        return b.astype(np.float32)
    k = int(round(out_density * y.size))
    z = y + b
    order = np.sort(z)[::-1]
    if k == 0:
        offset = -order[0] - MARGIN
    elif k == y.size:
        offset = -order[-1] + MARGIN
    else:
        offset = -0.5 * (order[k - 1] + order[k])  # midway between the k-th and (k+1)-th
    z = z + offset
    pos = z > 0
    # push neurons out of (-MARGIN, MARGIN), keeping their sign
    nudge = np.where(pos, np.maximum(MARGIN - z, 0), np.minimum(-MARGIN - z, 0))
    b = b + offset + nudge
    return b.astype(np.float32)


def _chained(name: str, spec, seed: int, description: str) -> Network:
    rng = model_rng(name, seed)
    x = sparse_input(rng, spec[0][1], spec[0][4])
    x0 = x
    layers = []
    for k, (lname, cols, rows, density, act_density, relu) in enumerate(spec):
        W, y = _make_weights(rng, rows, cols, density, x)
        out_density = spec[k + 1][4] if relu and k + 1 < len(spec) else None
        b = _choose_bias(rng, y, out_density)
        layers.append(Layer(name=lname, W=W, b=b, relu=relu, density=density,
                            act_density=act_density,
                            act_density_float=float(np.count_nonzero(x) / x.size)))
        out = y + b
        x = np.maximum(out, 0).astype(np.float32) if relu else out.astype(np.float32)
    return Network(name=name, layers=layers, x=x0[None, :], labels=None, synthetic=True,
                   description=description, chained=True)


def alexnet_fc(seed: int = 0) -> Network:
    """AlexNet fc6-fc8 (EIE Alex-6/7/8) with synthetic weights; see the module docstring."""
    return _chained("alexnet_fc", ALEXNET_FC, seed,
                    "synthetic AlexNet fc6-fc8 (random Laplace weights with the published sizes, "
                    "weight densities 9/9/25 % and activation densities 35.1/35.3/37.5 %)")


def vgg_fc(seed: int = 0) -> Network:
    """VGG-16 fc6-fc8 (EIE VGG-6/7/8) with synthetic weights; see the module docstring."""
    return _chained("vgg_fc", VGG_FC, seed,
                    "synthetic VGG-16 fc6-fc8 (random Laplace weights with the published sizes, "
                    "weight densities 4/4/23 % and activation densities 18.3/37.5/41.1 %)")


def neuraltalk(seed: int = 0) -> Network:
    """NeuralTalk NT-We, NT-Wd, NT-LSTM as three independent layers (``chained=False``).

    Inputs are 100 % dense: NT-We and NT-Wd get positive inputs in ``[X_MIN, ...)``; NT-LSTM gets
    the concatenation ``[x (600), h (600), 1]`` with signed values of magnitude in ``[X_MIN, 1]``
    and a constant 1 as its last element (the bias input).  No layer has a ReLU (the LSTM's
    gate non-linearities and the softmax are outside EIE).
    """
    rng = model_rng("neuraltalk", seed)
    layers = []
    for lname, cols, rows, density, act_density, relu in NEURALTALK:
        if lname == "NT-LSTM":
            mag = rng.uniform(X_MIN, 1.0, cols)
            x = np.where(rng.random(cols) < 0.5, -mag, mag).astype(np.float32)
            x[-1] = 1.0
        else:
            x = sparse_input(rng, cols, 1.0)
        W, y = _make_weights(rng, rows, cols, density, x)
        b = _choose_bias(rng, y, None)
        layers.append(Layer(name=lname, W=W, b=b, relu=relu, density=density,
                            act_density=act_density, x=x[None, :],
                            act_density_float=float(np.count_nonzero(x) / x.size)))
    return Network(name="neuraltalk", layers=layers, x=layers[0].x, labels=None, synthetic=True,
                   description="synthetic NeuralTalk NT-We, NT-Wd, NT-LSTM (random Laplace "
                               "weights, published sizes and densities 10/11/10 %; three "
                               "independent layers, not a chain)",
                   chained=False)
