"""PyTorch ``state_dict`` files (``.pt`` / ``.pth``) of ``nn.Linear`` stacks, with ``nn.LSTM`` s.

The file holds what ``torch.save(model.state_dict(), path)`` writes (or a dict with the
state dict under ``"state_dict"``/``"model_state_dict"``, as training checkpoints do): pairs
``<name>.weight`` ``(out, in)`` and ``<name>.bias`` ``(out,)`` in the order the modules were
registered, each layer taking the previous one's outputs.  A state dict records no activations,
so ReLU follows every layer but the last (the ``.npz`` default).  It is read with
``torch.load(weights_only=True)``: no pickled code is run.  PyTorch is an optional extra
(``pip install -e '.[torch]'``); without it a ``.pt`` model is one clear error.

An ``nn.LSTM`` (unidirectional, ``batch_first`` or not, with or without ``proj_size``) appears as
``<name>.weight_ih_l<k>``, ``weight_hh_l<k>``, ``bias_ih_l<k>``, ``bias_hh_l<k>`` and
``weight_hr_l<k>`` per layer ``k``: each becomes an :class:`~models.lstm.LSTMLayer` (PyTorch's
gate order i, f, g, o is eiegen's; the two biases are added; PyTorch has no peepholes).  A
state dict does not say how the model's ``forward`` uses the LSTM's output: every LSTM layer but
the last of an ``nn.LSTM`` passes every frame on (as PyTorch does), the last passes on its last
frame ``y_T`` (the usual classifier ``self.fc(out[:, -1])``).  No ReLU follows an LSTM layer,
nor the layer just before one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import re

from hw.arch.errors import EIEError
from models.lstm import LSTMLayer
from models.network import Network
from models.npz import imported_network

SUFFIXES = (".pt", ".pth")
_LSTM_PARAM = re.compile(r"^(?:(.*)\.)?(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


def _torch():
    try:
        import torch
    except ImportError:
        raise EIEError("reading .pt/.pth models needs PyTorch: pip install -e '.[torch]' "
                       "(CPU build)") from None
    return torch


def read_state_dict(path) -> dict:
    """The tensors of a state-dict file as float64 NumPy arrays, in file order."""
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"model file not found: {path}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, a pickled nn.Module (weights_only)
        why = " ".join(str(e).split()[:40]) or type(e).__name__
        raise EIEError(f"{path} is not a PyTorch state_dict file (save model.state_dict()): "
                       f"{why}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise EIEError(f"{path}: expected a state_dict (name -> tensor), got "
                       f"{type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise EIEError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[str(k)] = v.detach().to(torch.float64).numpy()
    return out


def lstm_layer(sd: dict, prefix: str, k: int, where: str = "state_dict") -> LSTMLayer:
    """Layer ``k`` of the ``nn.LSTM`` at ``prefix`` (``""`` for a bare ``nn.LSTM``)."""
    p = f"{prefix}." if prefix else ""

    def get(name):
        return sd.get(f"{p}{name}_l{k}")

    W_x, W_r = get("weight_ih"), get("weight_hh")
    if W_x is None or W_r is None:
        raise EIEError(f"{where}: LSTM {prefix or 'state_dict'!r} layer {k} needs weight_ih_l{k} "
                       f"and weight_hh_l{k}")
    b = np.zeros(W_x.shape[0])
    for name in ("bias_ih", "bias_hh"):
        if get(name) is not None:
            b = b + get(name)
    more = f"{p}weight_ih_l{k + 1}" in sd
    try:
        return LSTMLayer(name=f"{prefix or 'lstm'}.l{k}", W_x=W_x, W_r=W_r, b=b,
                         W_ym=get("weight_hr"), return_sequences=more)
    except EIEError as e:
        raise EIEError(f"{where}: {e}") from None


def state_dict_layers(sd: dict, where: str = "state_dict") -> list:
    """Every ``nn.Linear`` (as ``(name, W, b)``) and ``nn.LSTM`` layer (as an
    :class:`~models.lstm.LSTMLayer`) of a state dict, in order, checked to form a chain.

    Raises
    ------
    EIEError
        A tensor that is neither (the key and shape are named), a bidirectional LSTM, a weight
        without a bias, or layers whose shapes do not chain.
    """
    layers, seen = [], set()
    for key, a in sd.items():
        if key in seen:
            continue
        m = _LSTM_PARAM.match(key)
        if m:
            if m.group(5):
                raise EIEError(f"{where}: {key!r}: bidirectional LSTMs are not supported")
            prefix, k = m.group(1) or "", int(m.group(4))
            p = f"{prefix}." if prefix else ""
            seen.update(f"{p}{n}_l{k}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                                 "weight_hr"))
            layers.append(lstm_layer(sd, prefix, k, where))
            continue
        prefix, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "bias") or a.ndim != (2 if leaf == "weight" else 1):
            raise EIEError(f"{where}: unsupported parameter {key!r} of shape {tuple(a.shape)}; "
                           "only stacks of nn.Linear (2-D weight, 1-D bias) and nn.LSTM can be "
                           "imported")
        wk, bk = f"{prefix}.weight" if prefix else "weight", f"{prefix}.bias" if prefix else "bias"
        if wk not in sd:
            raise EIEError(f"{where}: {bk!r} has no weight {wk!r}")
        W = sd[wk]
        b = sd[bk] if bk in sd else np.zeros(W.shape[0])
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise EIEError(f"{where}: layer {prefix!r}: weight {tuple(W.shape)} and bias "
                           f"{tuple(b.shape)} are not an nn.Linear")
        seen.update((wk, bk))
        layers.append((prefix, W, b))
    widths = [(lay.n_in, lay.n_out, lay.name) if isinstance(lay, LSTMLayer)
              else (lay[1].shape[1], lay[1].shape[0], lay[0]) for lay in layers]
    for k in range(1, len(layers)):
        if widths[k][0] != widths[k - 1][1]:
            raise EIEError(f"{where}: layer {widths[k][2]!r} takes {widths[k][0]} inputs "
                           f"but {widths[k - 1][2]!r} has {widths[k - 1][1]} outputs")
    return layers


def linear_layers(sd: dict, where: str = "state_dict") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, W, b)`` of every ``nn.Linear`` in a state dict of Linear layers only."""
    layers = state_dict_layers(sd, where)
    if any(isinstance(lay, LSTMLayer) for lay in layers):
        raise EIEError(f"{where}: the state dict holds an nn.LSTM, not only nn.Linear layers")
    return layers


def load_torch(path, seed: int = 0, name: str | None = None) -> Network:
    """Import a state dict of an ``nn.Linear`` stack as a float :class:`Network`.

    ``path`` is a ``.pt`` / ``.pth`` file; ``seed`` and ``name`` as in
    :func:`models.onnx_import.load_onnx` (the generated input's seed; the network's name,
    default the file stem).
    """
    path = Path(path)
    layers = state_dict_layers(read_state_dict(path), where=str(path))
    return imported_network(path, torch_specs(layers), name=name, seed=seed,
                            description=f"PyTorch state_dict {path.name} ({len(layers)} "
                                        "layers, ReLU between the Linear ones)")


def torch_specs(layers: list) -> list:
    """:func:`state_dict_layers` as :func:`models.npz.imported_network` takes them: ReLU after
    every Linear but the last and but one before an LSTM."""
    out = []
    for k, lay in enumerate(layers):
        if isinstance(lay, LSTMLayer):
            out.append(lay)
            continue
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        out.append((lay[1], lay[2], nxt is not None and not isinstance(nxt, LSTMLayer)))
    return out
