"""User models from ``.npz`` files, and :func:`save_npz` to write one.

Format: ``W0, b0, W1, b1, ...`` with ``W_k`` of shape ``(out, in)`` and ``b_k`` of shape
``(out,)``; layer ``k`` consumes layer ``k-1``'s output.  Optional arrays:

* ``x`` ``(n, in)`` inputs (a 1-D ``x`` is one sample); without it a seeded non-negative input with
  exactly 50 % non-zeros (each >= 0.05) is generated;
* ``y`` ``(n,)`` integer labels of ``x`` (accuracy reports);
* ``densities`` one target weight density per layer in (0, 1], or one value for all layers;
  default 1.0, i.e. no pruning unless the compiler is given ``--density``;
* ``relu`` one flag per layer; default ReLU after every layer but the last.

Other arrays (metadata) are ignored.  Every problem raises an :class:`EIEError` with one line.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError
from models.network import Layer, Network

DEFAULT_DENSITY = 1.0
DEFAULT_X_DENSITY = 0.5
_LAYER_KEY = re.compile(r"([Wb])(\d+)$")


def check_finite(what: str, a: np.ndarray) -> None:
    """Raise ``EIEError("<what> contains NaN or Inf")`` unless every element is finite."""
    if not np.all(np.isfinite(a)):
        raise EIEError(f"{what} contains NaN or Inf")


def _numeric(path, key: str, a: np.ndarray) -> np.ndarray:
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise EIEError(f"{path}: {key} must be numeric, got dtype {a.dtype}")
    return a


def _per_layer(path, key: str, a: np.ndarray, n_layers: int) -> np.ndarray:
    """A per-layer option: one value per layer, or one value for all."""
    a = _numeric(path, key, np.asarray(a))
    if a.ndim == 0:
        return np.full(n_layers, a[()])
    if a.shape != (n_layers,):
        raise EIEError(f"{path}: {key} has shape {a.shape}, expected ({n_layers},) "
                       f"(one value per layer)")
    return a


def load_npz(path, seed: int = 0, name: str | None = None,
             description: str | None = None) -> Network:
    """Read and validate a model file (format in the module docstring).

    Parameters
    ----------
    path : str or Path
    seed : int
        Seeds the generated input when the file has no ``x``.
    name, description : str, optional
        Default to the file stem and "user model from <file>".

    Raises
    ------
    EIEError
        Missing or unreadable file, missing or misshapen arrays, layers that do not chain,
        NaN or Inf, densities outside (0, 1].
    """
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"model file not found: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a plain .npy loads as one array
            raise ValueError("it holds a single array, not named arrays")
        with z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        why = " ".join(str(e).split()) or type(e).__name__
        raise EIEError(f"{path} is not a valid .npz file: {why}") from None
    if "W0" not in arrays:
        raise EIEError(f"{path}: no W0 array (expected W0, b0, W1, b1, ...)")
    n_layers = 0
    while f"W{n_layers}" in arrays:
        n_layers += 1
    for key in arrays:
        m = _LAYER_KEY.match(key)
        if m and int(m.group(2)) >= n_layers:
            if m.group(1) == "W":
                raise EIEError(f"{path}: {key} found but W{n_layers} is missing")
            raise EIEError(f"{path}: {key} has no matching W{m.group(2)}")

    dens = (np.full(n_layers, DEFAULT_DENSITY) if "densities" not in arrays
            else _per_layer(path, "densities", arrays["densities"], n_layers))
    relu = (np.arange(n_layers) < n_layers - 1 if "relu" not in arrays
            else _per_layer(path, "relu", arrays["relu"], n_layers))

    layers = []
    prev_out = None
    for k in range(n_layers):
        W = _numeric(path, f"W{k}", arrays[f"W{k}"])
        if f"b{k}" not in arrays:
            raise EIEError(f"{path}: W{k} has no bias b{k}")
        b = _numeric(path, f"b{k}", arrays[f"b{k}"])
        if W.ndim != 2 or W.size == 0:
            raise EIEError(f"{path}: W{k} must be a non-empty 2-D (out, in) matrix, got shape "
                           f"{W.shape}")
        if b.shape != (W.shape[0],):
            raise EIEError(f"{path}: b{k} has shape {b.shape}, expected ({W.shape[0]},) to match "
                           f"W{k} {W.shape}")
        if prev_out is not None and W.shape[1] != prev_out:
            raise EIEError(f"{path}: layer {k}: W{k} has {W.shape[1]} inputs but layer {k - 1} "
                           f"has {prev_out} outputs")
        # check after the float32 cast: a float64 1e39 becomes Inf there
        with np.errstate(over="ignore"):
            W32, b32 = W.astype(np.float32), b.astype(np.float32)
        check_finite(f"{path}: W{k}", W32)
        check_finite(f"{path}: b{k}", b32)
        d = float(dens[k])
        if not (np.isfinite(d) and 0 < d <= 1):
            raise EIEError(f"{path}: densities[{k}] must be in (0, 1], got {d}")
        layers.append(Layer(name=f"fc{k}", W=W32, b=b32, relu=bool(relu[k]), density=d,
                            act_density=None))
        prev_out = W.shape[0]

    n_in = layers[0].W.shape[1]
    if "x" in arrays:
        x = _numeric(path, "x", arrays["x"])
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != n_in:
            raise EIEError(f"{path}: x has shape {arrays['x'].shape}, expected (n, {n_in})")
        with np.errstate(over="ignore"):
            x = x.astype(np.float32)
        check_finite(f"{path}: x", x)
    else:
        x = default_input(n_in, seed)[None, :]
    y = None
    if "y" in arrays:
        if "x" not in arrays:
            raise EIEError(f"{path}: y (labels) given without x")
        y = _numeric(path, "y", arrays["y"]).ravel()
        if y.shape[0] != x.shape[0]:
            raise EIEError(f"{path}: y has {y.shape[0]} labels for {x.shape[0]} inputs")
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise EIEError(f"{path}: y must hold integer labels")
        y = y.astype(np.int64)
    return Network(name=name or path.stem, layers=layers, x=x, labels=y, synthetic=False,
                   description=description or f"user model from {path.name} "
                                              f"({n_layers} layers, chained)")


def default_input(n: int, seed: int) -> np.ndarray:
    """Seeded non-negative input with exactly ``round(0.5 * n)`` non-zeros, each >= 0.05."""
    rng = np.random.default_rng([int(seed), n])
    x = np.zeros(n, dtype=np.float32)
    pos = rng.choice(n, size=int(round(DEFAULT_X_DENSITY * n)), replace=False)
    x[pos] = 0.05 + rng.exponential(1.0, size=pos.size)
    return x


def imported_network(path: Path, layers, *, name: str | None, seed: int,
                     description: str) -> Network:
    """A float :class:`Network` from imported ``(W, b, relu)`` layers (ONNX, PyTorch).

    Weights and biases become float32 and must stay finite; the file carries no data, so the
    input is :func:`default_input` of the first layer's width.
    """
    net_layers = []
    for k, (W, b, relu) in enumerate(layers):
        with np.errstate(over="ignore"):
            W32, b32 = np.asarray(W).astype(np.float32), np.asarray(b).astype(np.float32)
        check_finite(f"{path}: layer {k} weights", W32)
        check_finite(f"{path}: layer {k} bias", b32)
        net_layers.append(Layer(name=f"fc{k}", W=W32, b=b32, relu=bool(relu), density=1.0,
                                act_density=None))
    n_in = net_layers[0].W.shape[1]
    return Network(name=name or path.stem, layers=net_layers,
                   x=default_input(n_in, seed)[None, :], labels=None, synthetic=False,
                   description=description)


def save_npz(net: Network, path) -> Path:
    """Write a chained network in the format :func:`load_npz` reads (``x``, ``y`` included).

    Raises
    ------
    EIEError
        The network is not chained (a ``.npz`` model is always a chain).
    """
    if not net.chained:
        raise EIEError(f"{net.name}: only chained networks can be saved as .npz models")
    arrays = {}
    for k, layer in enumerate(net.layers):
        arrays[f"W{k}"] = np.asarray(layer.W, np.float32)
        arrays[f"b{k}"] = np.asarray(layer.b, np.float32)
    arrays["x"] = np.asarray(net.x, np.float32)
    if net.labels is not None:
        arrays["y"] = np.asarray(net.labels, np.int64)
    arrays["densities"] = np.array([layer.density for layer in net.layers], np.float64)
    arrays["relu"] = np.array([layer.relu for layer in net.layers], bool)
    path = Path(path)
    np.savez(path, **arrays)
    return path
