"""User models from ``.npz`` files, and :func:`save_npz` to write one.

Format: ``W0, b0, W1, b1, ...`` with ``W_k`` of shape ``(out, in)`` and ``b_k`` of shape
``(out,)``; layer ``k`` consumes layer ``k-1``'s output.

Layer ``k`` may instead be an LSTM (:class:`models.lstm.LSTMLayer`, an LSTMP cell; gates stacked
in the order i, f, g, o), stored as ``lstm<k>_*`` in place of ``W<k>, b<k>``:

=================  ==========================  ===========================================
key                shape                       content
=================  ==========================  ===========================================
``lstm<k>_Wx``     ``(4 * cells, in)``         input weights of gates i, f, g, o
``lstm<k>_Wr``     ``(4 * cells, rec)``        recurrent weights on ``y_{t-1}``
                                               (``rec`` = projection, or ``cells`` without)
``lstm<k>_b``      ``(4 * cells,)``            biases of gates i, f, g, o
``lstm<k>_peep``   ``(3, cells)``, optional    peepholes ``w_ic, w_fc, w_oc``
``lstm<k>_Wym``    ``(proj, cells)``, optional projection ``y_t = W_ym m_t``
``lstm<k>_seq``    scalar flag, optional       1: output every ``y_t`` (return_sequences);
                                               0 (default): only the last ``y_T``
=================  ==========================  ===========================================

A model with an LSTM layer runs on sequences.  Optional arrays:

* ``x`` ``(n, in)`` inputs (a 1-D ``x`` is one sample), for a model with an LSTM layer
  ``(n, T, in)`` sequences with ``T >= 1`` (a 2-D ``x`` is one sequence); without it a seeded
  non-negative input with exactly 50 % non-zeros (each >= 0.05) is generated (for an LSTM model
  one sequence of ``DEFAULT_STEPS`` = 8 such frames);
* ``y`` ``(n,)`` integer labels of ``x`` in ``0 .. outputs - 1`` (accuracy reports);
* ``densities`` one target weight density per layer in (0, 1], or one value for all layers;
  default 1.0, i.e. no pruning unless the compiler is given ``--density``;
* ``relu`` one flag per layer; default ReLU after every FC layer but the last (never after an
  LSTM layer, where a set flag is refused).

Other arrays (metadata) are ignored.  Every problem raises an :class:`EIEError` with one line:
a file that is not a NumPy .npz archive, is truncated or corrupt, or holds pickled objects
(never loaded); complex numbers anywhere (their imaginary parts are never dropped); labels ``y``
that are not integers in ``0 .. outputs - 1``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hw.arch.atomic import read_npz
from hw.arch.errors import EIEError
from models.lstm import LSTMLayer
from models.network import Layer, Network

DEFAULT_DENSITY = 1.0
DEFAULT_X_DENSITY = 0.5
DEFAULT_STEPS = 8  # frames of the generated input sequence of an LSTM model without x
#: the arrays of LSTM layer k: ``lstm<k>_<part>``
LSTM_PARTS = ("Wx", "Wr", "b", "peep", "Wym", "seq")
_LAYER_KEY = re.compile(r"([Wb])(\d+)$")
_LSTM_KEY = re.compile(r"lstm(\d+)_(\w+)$")


def check_finite(what: str, a: np.ndarray) -> None:
    """Raise ``EIEError("<what> contains NaN or Inf")`` unless every element is finite."""
    if not np.all(np.isfinite(a)):
        raise EIEError(f"{what} contains NaN or Inf")


def _numeric(path, key: str, a: np.ndarray) -> np.ndarray:
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise EIEError(f"{path}: {key} must be numeric, got dtype {a.dtype}")
    check_real(f"{path}: {key}", a)
    return a


def check_real(what: str, a) -> None:
    """Refuse complex numbers: the float32 cast would drop their imaginary parts silently."""
    if np.iscomplexobj(a):
        raise EIEError(f"{what} is complex ({np.asarray(a).dtype}); eiegen takes real numbers "
                       f"only (np.real drops the imaginary part, if that is what you mean)")


def _per_layer(path, key: str, a: np.ndarray, n_layers: int) -> np.ndarray:
    """A per-layer option: one value per layer, or one value for all."""
    a = _numeric(path, key, np.asarray(a))
    if a.ndim == 0:
        return np.full(n_layers, a[()])
    if a.shape != (n_layers,):
        raise EIEError(f"{path}: {key} has shape {a.shape}, expected ({n_layers},) "
                       f"(one value per layer)")
    return a


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise EIEError(f"model file not found: {path}")
    if not path.is_file():
        raise EIEError(f"model {path} is not a file")
    # not a .npz (a text file, one .npy array), truncated, corrupt, or holding pickled objects
    return read_npz(path, "save the model again (numpy.savez, or models.save_npz)")


def _count_layers(path, arrays) -> tuple[int, list[bool]]:
    """The number of layers and, per layer, whether it is an LSTM (``lstm<k>_Wx``)."""
    if "W0" not in arrays and "lstm0_Wx" not in arrays:
        raise EIEError(f"{path}: no W0 array (expected W0, b0, W1, b1, ..., or lstm0_Wx, "
                       f"lstm0_Wr, lstm0_b for an LSTM layer 0)")
    is_lstm = []
    while f"W{len(is_lstm)}" in arrays or f"lstm{len(is_lstm)}_Wx" in arrays:
        k = len(is_lstm)
        if f"W{k}" in arrays and f"lstm{k}_Wx" in arrays:
            raise EIEError(f"{path}: layer {k} has both W{k} and lstm{k}_Wx")
        is_lstm.append(f"lstm{k}_Wx" in arrays)
    n_layers = len(is_lstm)
    for key in arrays:
        m = _LAYER_KEY.match(key)
        if m and int(m.group(2)) >= n_layers:
            if m.group(1) == "W":
                raise EIEError(f"{path}: {key} found but W{n_layers} is missing")
            raise EIEError(f"{path}: {key} has no matching W{m.group(2)}")
        m = _LSTM_KEY.match(key)
        if m:
            k, part = int(m.group(1)), m.group(2)
            if part not in LSTM_PARTS:
                raise EIEError(f"{path}: {key} is not an LSTM array (lstm{k}_ takes "
                               f"{', '.join(LSTM_PARTS)})")
            if k >= n_layers or not is_lstm[k]:
                raise EIEError(f"{path}: {key} has no matching lstm{k}_Wx")
    return n_layers, is_lstm


def _fc_layer(path, arrays, k: int, density: float, relu: bool) -> Layer:
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
    # check after the float32 cast: a float64 1e39 becomes Inf there
    with np.errstate(over="ignore"):
        W32, b32 = W.astype(np.float32), b.astype(np.float32)
    check_finite(f"{path}: W{k}", W32)
    check_finite(f"{path}: b{k}", b32)
    return Layer(name=f"fc{k}", W=W32, b=b32, relu=relu, density=density, act_density=None)


def _lstm_layer(path, arrays, k: int, density: float, relu: bool) -> LSTMLayer:
    p = f"lstm{k}_"
    if relu:
        raise EIEError(f"{path}: relu[{k}] is set, but layer {k} is an LSTM (no ReLU after it)")
    for part in ("Wr", "b"):
        if p + part not in arrays:
            raise EIEError(f"{path}: {p}Wx has no {p}{part}")
    get = {part: (_numeric(path, p + part, arrays[p + part]) if p + part in arrays else None)
           for part in LSTM_PARTS}
    seq = get["seq"]
    if seq is not None and (seq.size != 1 or seq.reshape(-1)[0] not in (0, 1)):
        raise EIEError(f"{path}: {p}seq must be one flag (0 or 1), got {seq.tolist()}")
    try:
        return LSTMLayer(name=f"lstm{k}", W_x=get["Wx"], W_r=get["Wr"], b=get["b"],
                         peep=get["peep"], W_ym=get["Wym"], density=density,
                         return_sequences=bool(seq is not None and seq.reshape(-1)[0]))
    except EIEError as e:
        raise EIEError(f"{path}: {e}") from None


def _input(path, arrays, first, sequence: bool, seed: int) -> np.ndarray:
    n_in = first.n_in if isinstance(first, LSTMLayer) else first.W.shape[1]
    if "x" not in arrays:
        if sequence:
            return np.stack([default_input(n_in, seed + t) for t in range(DEFAULT_STEPS)])[None]
        return default_input(n_in, seed)[None, :]
    x = _numeric(path, "x", arrays["x"])
    want = 3 if sequence else 2
    if x.ndim == want - 1:
        x = x[None]
    if x.ndim != want or x.shape[0] == 0 or x.shape[-1] != n_in:
        expected = f"(n, T, {n_in})" if sequence else f"(n, {n_in})"
        raise EIEError(f"{path}: x has shape {arrays['x'].shape}, expected {expected}")
    if sequence and x.shape[1] == 0:
        raise EIEError(f"{path}: x has 0 time steps (T must be >= 1)")
    with np.errstate(over="ignore"):
        x = x.astype(np.float32)
    check_finite(f"{path}: x", x)
    return x


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
    arrays = _read(path)
    n_layers, is_lstm = _count_layers(path, arrays)
    dens = (np.full(n_layers, DEFAULT_DENSITY) if "densities" not in arrays
            else _per_layer(path, "densities", arrays["densities"], n_layers))
    relu = ((np.arange(n_layers) < n_layers - 1) & ~np.array(is_lstm) if "relu" not in arrays
            else _per_layer(path, "relu", arrays["relu"], n_layers))

    layers = []
    for k in range(n_layers):
        d = float(dens[k])
        if not (np.isfinite(d) and 0 < d <= 1):
            raise EIEError(f"{path}: densities[{k}] must be in (0, 1], got {d}")
        make = _lstm_layer if is_lstm[k] else _fc_layer
        layer = make(path, arrays, k, d, bool(relu[k]))
        n_in = layer.n_in if is_lstm[k] else layer.W.shape[1]
        if layers and n_in != _n_out(layers[-1]):
            kind = f"lstm{k}_Wx" if is_lstm[k] else f"W{k}"
            raise EIEError(f"{path}: layer {k}: {kind} has {n_in} inputs but layer {k - 1} "
                           f"has {_n_out(layers[-1])} outputs")
        layers.append(layer)

    x = _input(path, arrays, layers[0], any(is_lstm), seed)
    y = None
    if "y" in arrays:
        if "x" not in arrays:
            raise EIEError(f"{path}: y (labels) given without x")
        y = _numeric(path, "y", arrays["y"])
        y = y.ravel() if y.ndim <= 1 or not any(is_lstm) else y
        if y.shape[0] != x.shape[0]:
            raise EIEError(f"{path}: y has {y.shape[0]} labels for {x.shape[0]} inputs")
        n_out = _n_out(layers[-1])
        whole = np.isfinite(y) & (y == np.round(y))
        if not np.all(whole):
            raise EIEError(f"{path}: y must hold integer labels in 0..{n_out - 1}, got "
                           f"{y[~whole].reshape(-1)[0].item()!r}")
        if y.size and (y.min() < 0 or y.max() >= n_out):
            bad = y.min() if y.min() < 0 else y.max()
            raise EIEError(f"{path}: y holds label {float(bad):g}, outside 0..{n_out - 1} (the "
                           f"network has {n_out} outputs: a label is the index of one)")
        y = y.astype(np.int64)
    try:
        return Network(name=name or path.stem, layers=layers, x=x, labels=y, synthetic=False,
                       description=description or f"user model from {path.name} "
                                                  f"({n_layers} layers, chained)")
    except EIEError as e:
        raise EIEError(f"{path}: {e}") from None


def _n_out(layer) -> int:
    return layer.n_out if isinstance(layer, LSTMLayer) else layer.W.shape[0]


def default_input(n: int, seed: int) -> np.ndarray:
    """Seeded non-negative input with exactly ``round(0.5 * n)`` non-zeros, each >= 0.05."""
    rng = np.random.default_rng([int(seed), n])
    x = np.zeros(n, dtype=np.float32)
    pos = rng.choice(n, size=int(round(DEFAULT_X_DENSITY * n)), replace=False)
    x[pos] = 0.05 + rng.exponential(1.0, size=pos.size)
    return x


def imported_network(path: Path, layers, *, name: str | None, seed: int,
                     description: str, input_affine: tuple | None = None) -> Network:
    """A float :class:`Network` from imported layers (ONNX, PyTorch): ``(W, b, relu)`` tuples
    of fully-connected layers, or :class:`~models.lstm.LSTMLayer` s.

    Weights and biases become float32 and must stay finite; the file carries no data, so the
    input is :func:`default_input` of the first layer's width (for a network with an LSTM one
    sequence of ``DEFAULT_STEPS`` such frames), generated as layer 0 takes it (after the
    ``input_affine`` normalization, see :class:`~models.network.Network`).
    """
    net_layers = []
    for k, spec in enumerate(layers):
        if isinstance(spec, LSTMLayer):
            net_layers.append(spec)
            continue
        W, b, relu = spec
        check_real(f"{path}: layer {k} weights", W)
        check_real(f"{path}: layer {k} bias", b)
        with np.errstate(over="ignore"):
            W32, b32 = np.asarray(W).astype(np.float32), np.asarray(b).astype(np.float32)
        check_finite(f"{path}: layer {k} weights", W32)
        check_finite(f"{path}: layer {k} bias", b32)
        net_layers.append(Layer(name=f"fc{k}", W=W32, b=b32, relu=bool(relu), density=1.0,
                                act_density=None))
    sequence = any(isinstance(layer, LSTMLayer) for layer in net_layers)
    x = _input(path, {}, net_layers[0], sequence, seed)
    try:
        return Network(name=name or path.stem, layers=net_layers, x=x, labels=None,
                       synthetic=False, description=description, input_affine=input_affine)
    except EIEError as e:
        raise EIEError(f"{path}: {e}") from None


def save_npz(net: Network, path) -> Path:
    """Write a chained network in the format :func:`load_npz` reads (``x``, ``y`` included;
    LSTM layers as ``lstm<k>_*``).

    Raises
    ------
    EIEError
        The network is not chained (a ``.npz`` model is always a chain).
    """
    if not net.chained:
        raise EIEError(f"{net.name}: only chained networks can be saved as .npz models")
    arrays = {}
    for k, layer in enumerate(net.layers):
        if isinstance(layer, LSTMLayer):
            arrays.update(lstm_arrays(layer, k))
            continue
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


def lstm_arrays(layer: LSTMLayer, k: int) -> dict[str, np.ndarray]:
    """The ``lstm<k>_*`` arrays of one LSTM layer (optional ones only when present)."""
    p = f"lstm{k}_"
    out = {p + "Wx": layer.W_x, p + "Wr": layer.W_r, p + "b": layer.b,
           p + "seq": np.array(layer.return_sequences)}
    if layer.peep is not None:
        out[p + "peep"] = layer.peep
    if layer.W_ym is not None:
        out[p + "Wym"] = layer.W_ym
    return out
