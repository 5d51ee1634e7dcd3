"""User models from ``.npz``: ``W0, b0, W1, b1, ...`` with ``W_k`` of shape (out, in).

Optional arrays: ``x`` (n, in) inputs, ``y`` (n,) integer labels, ``densities`` (one target
weight density per layer; default 1.0, i.e. no pruning), ``relu`` (one flag per layer; default
ReLU after every layer but the last).  Without ``x`` a seeded non-negative input at 50 %
density is generated.  Every problem is one EIEError line.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from compiler.errors import EIEError
from models import Layer, Network, check_finite


def load_npz(path: Path, seed: int = 0, name: str | None = None,
             description: str | None = None) -> Network:
    """Read and validate a user model file."""
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise EIEError(f"{path} is not a valid .npz file: {e}") from None
    if "W0" not in arrays:
        raise EIEError(f"{path}: no W0 array (expected W0, b0, W1, b1, ...)")
    n_layers = 0
    while f"W{n_layers}" in arrays:
        n_layers += 1
    dens = arrays.get("densities")
    relu = arrays.get("relu")
    if dens is not None and np.asarray(dens).shape != (n_layers,):
        raise EIEError(f"{path}: densities has shape {np.asarray(dens).shape}, expected "
                       f"({n_layers},)")
    if relu is not None and np.asarray(relu).shape != (n_layers,):
        raise EIEError(f"{path}: relu has shape {np.asarray(relu).shape}, expected ({n_layers},)")
    layers = []
    prev_out = None
    for k in range(n_layers):
        W = arrays[f"W{k}"]
        if f"b{k}" not in arrays:
            raise EIEError(f"{path}: W{k} has no bias b{k}")
        b = arrays[f"b{k}"]
        if W.ndim != 2 or W.size == 0:
            raise EIEError(f"{path}: W{k} must be a non-empty 2-D (out, in) matrix, got shape "
                           f"{W.shape}")
        if not np.issubdtype(W.dtype, np.number) or not np.issubdtype(b.dtype, np.number):
            raise EIEError(f"{path}: W{k} and b{k} must be numeric")
        if b.shape != (W.shape[0],):
            raise EIEError(f"{path}: b{k} has shape {b.shape}, expected ({W.shape[0]},)")
        if prev_out is not None and W.shape[1] != prev_out:
            raise EIEError(f"{path}: layer {k}: W{k} has {W.shape[1]} inputs but layer {k - 1} "
                           f"has {prev_out} outputs")
        check_finite(f"W{k}", W)
        check_finite(f"b{k}", b)
        d = 1.0 if dens is None else float(dens[k])
        if not (np.isfinite(d) and 0 < d <= 1):
            raise EIEError(f"{path}: density of layer {k} must be in (0, 1], got {d}")
        r = (k < n_layers - 1) if relu is None else bool(relu[k])
        layers.append(Layer(f"fc{k}", W.astype(np.float32), b.astype(np.float32), r, d))
        prev_out = W.shape[0]
    n_in = layers[0].W.shape[1]
    if "x" in arrays:
        x = np.asarray(arrays["x"])
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != n_in:
            raise EIEError(f"{path}: x has shape {x.shape}, expected (n, {n_in})")
        check_finite("x", x)
        x = x.astype(np.float32)
    else:
        rng = np.random.default_rng(seed)
        x = (rng.random((1, n_in)) < 0.5) * (0.05 + rng.exponential(1.0, (1, n_in)))
        x = x.astype(np.float32)
    y = arrays.get("y")
    if y is not None:
        y = np.asarray(y).astype(np.int64).ravel()
        if y.shape[0] != x.shape[0]:
            raise EIEError(f"{path}: y has {y.shape[0]} labels for {x.shape[0]} inputs")
    return Network(name=name or path.stem, layers=layers, x=x, labels=y, synthetic=False,
                   description=description or f"user model from {path.name}")
