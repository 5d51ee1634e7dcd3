"""Random networks that fit a configuration, and the adversarial patterns.

A case is a small JSON-able spec (:func:`case_specs`: its id, seed, configuration, pattern and
whether the host-interface loading is checked too); :func:`make_network` rebuilds its network
from the spec, deterministically, wherever the case runs.  Weights, biases and inputs are
float32, so a case saved as a ``.npz`` reproduces exactly.

Patterns (FC networks of 1-4 layers, odd sizes, densities 1-100 %, 1-3 input samples):

* ``random``: Gaussian weights, a random density per layer, inputs of a random density;
* ``one_pe``: every weight of a layer on one PE (its rows ``r0 mod N``);
* ``gaps``: each column's weights far apart on a PE, so the gaps need several padding entries;
* ``empty_cols``: about half the columns of each layer empty;
* ``tiny``: 1 x 1 layers;
* ``saturate``: weights and inputs large enough that the outputs saturate (or wrap);
* ``zeros`` / ``full``: all-zero inputs / inputs without a zero;

and, on a configuration with the LSTM hardware, ``lstm``: one LSTM layer (with or without a
projection and peepholes, 1-6 frames, its sequence or its last frame) and optionally an FC layer.
"""

from __future__ import annotations

import numpy as np

from hw.arch.config import EIEConfig
from hw.arch.regmap import lstm_x_frames
from models.lstm import LSTMLayer
from models.network import Layer, Network

FC_PATTERNS = ("random", "one_pe", "gaps", "empty_cols", "tiny", "saturate", "zeros", "full")
PATTERNS = FC_PATTERNS + ("lstm",)


def case_specs(configs: list[EIEConfig], n: int, seed: int, host_share: float = 0.1) -> list:
    """``n`` case specs over the pool ``configs`` (round robin, so every configuration gets
    cases), patterns drawn at random (``lstm`` on the LSTM configurations), a ``host_share``
    of them also loaded through the host interface."""
    rng = np.random.default_rng([seed, 0xCA5E])
    out = []
    for i in range(n):
        cfg = configs[i % len(configs)]
        pattern = "lstm" if cfg.lstm and rng.random() < 0.7 else str(rng.choice(FC_PATTERNS))
        out.append({"id": f"c{i:05d}", "seed": int(rng.integers(1 << 31)),
                    "config": cfg.to_dict(), "pattern": pattern,
                    "host_load": bool(rng.random() < host_share)})
    return out


def _sizes(rng, cfg: EIEConfig, n_layers: int, cap: int) -> list[int]:
    """Layer widths (input first) that fit the activation memories and the bias memory."""
    top = max(1, min(cap, cfg.act_depth * cfg.n_pes))
    while True:
        dims = [int(rng.integers(1, top + 1)) for _ in range(n_layers + 1)]
        if sum(-(-d // cfg.n_pes) for d in dims[1:]) <= cfg.bias_depth:
            return dims


def _weights(rng, pattern: str, rows: int, cols: int, cfg: EIEConfig) -> tuple:
    """A layer's weights and the density that keeps exactly its non-zeros (or a random one)."""
    W = rng.normal(0, 0.5, (rows, cols))
    n = cfg.n_pes
    if pattern == "one_pe":
        keep = np.zeros(rows, bool)
        keep[int(rng.integers(0, min(n, rows)))::n] = True
        W[~keep] = 0
    elif pattern == "gaps":
        W[:] = 0
        for j in range(cols):  # the first and the last row of a PE, far apart
            k = int(rng.integers(0, n))
            local = list(range(k, rows, n))
            if local:
                W[local[0], j] = rng.normal(0, 0.5)
                W[local[-1], j] = rng.normal(0, 0.5)
    elif pattern == "empty_cols":
        W[:, rng.random(cols) < 0.5] = 0
    elif pattern == "saturate":
        W *= 64
    if pattern in ("one_pe", "gaps", "empty_cols"):
        density = max(np.count_nonzero(W) / W.size, 1.0 / W.size)
    else:
        density = float(rng.choice([0.01, 0.05, 0.2, 0.5, 1.0, rng.uniform(0.01, 1.0)]))
    return W.astype(np.float32), density


def _inputs(rng, pattern: str, n: int, shape: tuple, cfg: EIEConfig) -> np.ndarray:
    scale = 2.0 ** (cfg.act_bits - 1 - cfg.act_frac)  # the activations' range
    x = rng.normal(0, 0.3 * scale, (n, *shape))
    if pattern == "zeros":
        x[:] = 0
    elif pattern == "full":
        x = np.where(np.abs(x) < 2.0 ** -cfg.act_frac, 1.0, x)
    elif pattern == "saturate":
        x = rng.choice([-1.5, 1.5], size=x.shape) * scale
    else:
        x[rng.random(x.shape) < rng.uniform(0, 0.9)] = 0
    return x.astype(np.float32)


def make_network(spec: dict) -> Network:
    """The network of a case spec (module docstring)."""
    cfg = EIEConfig.from_dict(spec["config"])
    rng = np.random.default_rng(spec["seed"])
    pattern = spec["pattern"]
    if pattern == "lstm":
        return _lstm_network(rng, cfg, spec["id"])
    n_layers = int(rng.integers(1, min(4, cfg.max_layers) + 1))
    dims = [1] * (n_layers + 1) if pattern == "tiny" else _sizes(rng, cfg, n_layers, 72)
    layers = []
    for k in range(n_layers):
        W, density = _weights(rng, pattern, dims[k + 1], dims[k], cfg)
        b = rng.normal(0, 0.2, dims[k + 1]) * (8 if pattern == "saturate" else 1)
        layers.append(Layer(name=f"fc{k}", W=W, b=b.astype(np.float32),
                            relu=bool(rng.random() < 0.6), density=density, act_density=None))
    x = _inputs(rng, pattern, int(rng.integers(1, 4)), (dims[0],), cfg)
    return Network(name=spec["id"], layers=layers, x=x, labels=None, synthetic=True,
                   description=f"regression case {spec['id']} ({pattern})")


def _lstm_network(rng, cfg: EIEConfig, name: str) -> Network:
    """One LSTM layer that fits the LSTM hardware's accumulators (two banks of the gates and
    the projection: ``2 (4 C + p) <= acc_words``), optionally an FC layer after it."""
    n = cfg.n_pes
    while True:
        cells = int(rng.integers(1, 3 * n + 1))
        proj = None if rng.random() < 0.35 else int(rng.integers(1, cells + 1))
        c, p = -(-cells // n), -(-(proj or 0) // n)
        if 2 * (4 * c + p) <= cfg.acc_words:
            break
    n_in = int(rng.integers(1, 11))
    n_rec = proj or cells
    T = int(rng.integers(1, 7))
    # the sequence is stored whole after the y region of the source bank (the compiler refuses
    # a longer one: compiler.steps.lstm_program): at most as many frames as fit act_depth
    fit = lstm_x_frames(n_in, n_rec, cfg)[2]
    T = min(T, fit) if fit >= 1 else T
    seq = bool(rng.random() < 0.5)
    lstm = LSTMLayer(name="lstm0", W_x=rng.normal(0, 0.6, (4 * cells, n_in)).astype(np.float32),
                     W_r=rng.normal(0, 0.6, (4 * cells, n_rec)).astype(np.float32),
                     b=rng.normal(0, 0.3, 4 * cells).astype(np.float32),
                     peep=(rng.normal(0, 0.4, (3, cells)).astype(np.float32)
                           if rng.random() < 0.5 else None),
                     W_ym=(rng.normal(0, 0.6, (proj, cells)).astype(np.float32)
                           if proj else None),
                     density=float(rng.choice([0.1, 0.3, 0.6, 1.0])), return_sequences=seq)
    layers = [lstm]
    if rng.random() < 0.5:
        out = int(rng.integers(1, 2 * n + 1))
        layers.append(Layer(name="fc1", W=rng.normal(0, 0.5, (out, n_rec)).astype(np.float32),
                            b=rng.normal(0, 0.1, out).astype(np.float32),
                            relu=bool(rng.random() < 0.5), density=0.8, act_density=None))
    scale = 2.0 ** (cfg.act_bits - 1 - cfg.act_frac)
    x = rng.normal(0, min(1.0, 0.3 * scale), (int(rng.integers(1, 3)), T, n_in))
    return Network(name=name, layers=layers, x=x.astype(np.float32), labels=None,
                   synthetic=True, description=f"regression case {name} (lstm)")


__all__ = ["FC_PATTERNS", "PATTERNS", "case_specs", "make_network"]
