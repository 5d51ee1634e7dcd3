"""PyTorch ``state_dict`` files (``.pt`` / ``.pth``) of ``nn.Linear`` stacks.

The file holds what ``torch.save(model.state_dict(), path)`` writes (or a dict with the
state dict under ``"state_dict"``/``"model_state_dict"``, as training checkpoints do): pairs
``<name>.weight`` ``(out, in)`` and ``<name>.bias`` ``(out,)`` in the order the modules were
registered, each layer taking the previous one's outputs.  A state dict records no activations,
so ReLU follows every layer but the last (the ``.npz`` default).  It is read with
``torch.load(weights_only=True)``: no pickled code is run.  PyTorch is an optional extra
(``pip install -e '.[torch]'``); without it a ``.pt`` model is one clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError
from models.network import Network
from models.npz import imported_network

SUFFIXES = (".pt", ".pth")


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


def linear_layers(sd: dict, where: str = "state_dict") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, W, b)`` of every ``nn.Linear`` in a state dict, checked to form a chain.

    Raises
    ------
    EIEError
        A tensor that is not a Linear weight or bias (the key and shape are named), a weight
        without a bias, or layers whose shapes do not chain.
    """
    layers, seen = [], set()
    for key, a in sd.items():
        if key in seen:
            continue
        prefix, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "bias") or a.ndim != (2 if leaf == "weight" else 1):
            raise EIEError(f"{where}: unsupported parameter {key!r} of shape {tuple(a.shape)}; "
                           "only stacks of nn.Linear (2-D weight, 1-D bias) can be imported")
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
    for k in range(1, len(layers)):
        if layers[k][1].shape[1] != layers[k - 1][1].shape[0]:
            raise EIEError(f"{where}: layer {layers[k][0]!r} takes {layers[k][1].shape[1]} inputs "
                           f"but {layers[k - 1][0]!r} has {layers[k - 1][1].shape[0]} outputs")
    return layers


def load_torch(path, seed: int = 0, name: str | None = None) -> Network:
    """Import a state dict of an ``nn.Linear`` stack as a float :class:`Network`.

    ``path`` is a ``.pt`` / ``.pth`` file; ``seed`` and ``name`` as in
    :func:`models.onnx_import.load_onnx` (the generated input's seed; the network's name,
    default the file stem).
    """
    path = Path(path)
    layers = linear_layers(read_state_dict(path), where=str(path))
    return imported_network(path, [(W, b, k < len(layers) - 1)
                                   for k, (_, W, b) in enumerate(layers)],
                            name=name, seed=seed,
                            description=f"PyTorch state_dict {path.name} ({len(layers)} Linear "
                                        "layers, ReLU between them)")
