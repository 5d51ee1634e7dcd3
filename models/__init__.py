"""Networks the compiler consumes: float, uncompressed; the compiler prunes and quantizes them.

``load_model(name_or_path, seed)`` returns a :class:`Network`.  Registered names:

* ``alexnet_fc``, ``vgg_fc``, ``neuraltalk`` — SYNTHETIC stand-ins for the EIE benchmark layers
  (EIE Table III shapes, weight and activation densities); pretrained weights cannot be
  downloaded here.  See :mod:`models.synthetic` for how the densities are hit.
* ``mlp_digits`` — a real 64-300-100-10 MLP (LeNet-300-100 shape) trained on scikit-learn's
  8x8 digits by ``python -m models.mlp_digits.train``; weights and the held-out test split ship
  in ``models/data/mlp_digits.npz``.

A path to a ``.npz`` file loads a user model (see :func:`models.npz.load_npz`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.errors import EIEError

MODEL_NAMES = ("alexnet_fc", "vgg_fc", "neuraltalk", "mlp_digits")


@dataclass
class Layer:
    """One fully-connected layer ``y = f(W x + b)``.

    Attributes
    ----------
    name : str
    W : np.ndarray, float32, shape (out, in)
    b : np.ndarray, float32, shape (out,)
    relu : bool
        Apply ReLU after the layer.
    density : float
        Target weight density for pruning.
    act_density : float or None
        Published density of this layer's input activations (None if not published).
    x : np.ndarray or None
        This layer's own input (n_samples, in) when the network is not chained.
    """

    name: str
    W: np.ndarray
    b: np.ndarray
    relu: bool
    density: float
    act_density: float | None = None
    x: np.ndarray | None = None


@dataclass
class Network:
    """A list of layers and their inputs.

    ``chained``: layer ``k + 1`` consumes layer ``k``'s output and ``x`` is the first layer's
    input.  Otherwise (NeuralTalk's three benchmark layers do not connect) every layer carries
    its own input in ``Layer.x`` and ``x`` is the first layer's.
    """

    name: str
    layers: list
    x: np.ndarray
    labels: np.ndarray | None
    synthetic: bool
    description: str
    chained: bool = True


def load_model(name_or_path: str, seed: int = 0) -> Network:
    """Load a registered model by name, or a user model from a ``.npz`` path.

    Raises
    ------
    EIEError
        Unknown name, missing or malformed file.
    """
    from models import npz, synthetic

    s = str(name_or_path)
    if s in synthetic.BUILDERS:
        return synthetic.BUILDERS[s](seed)
    if s == "mlp_digits":
        return npz.load_npz(Path(__file__).parent / "data" / "mlp_digits.npz", name="mlp_digits",
                            description="64-300-100-10 MLP trained on scikit-learn digits "
                                        "(real weights, held-out test images)")
    if s.endswith(".npz") or Path(s).exists():
        if not Path(s).is_file():
            raise EIEError(f"model file not found: {s}")
        return npz.load_npz(Path(s), seed=seed)
    raise EIEError(f"unknown model {s!r}; models: {', '.join(MODEL_NAMES)} (or a .npz file)")


def check_finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise EIEError(f"{name} contains NaN or Inf")


__all__ = ["Layer", "Network", "MODEL_NAMES", "load_model", "np"]
