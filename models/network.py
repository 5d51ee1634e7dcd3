"""The float network the compiler consumes: :class:`Layer` and :class:`Network`.

Two shapes of network exist:

* **chained** (``Network.chained`` is true; AlexNet, VGG, mlp_digits, user files): layer ``k``
  consumes layer ``k-1``'s output; ``Network.x`` is the input of layer 0 and every ``Layer.x``
  is ``None``.
* **not chained** (NeuralTalk): the layers are independent matrix-vector products whose shapes
  do not connect.  Every layer carries its own input ``Layer.x`` of shape
  ``(n_samples, in)``; ``Network.x`` is the same array as ``layers[0].x`` so code that only
  looks at the first layer still works.

Weights are float32 and dense (uncompressed): the compiler prunes to ``Layer.density`` and
quantizes them itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class Layer:
    """One fully-connected layer ``y = f(W x + b)``.

    Attributes
    ----------
    name : str
        Layer name as published (``fc6``, ``NT-We``) or ``fc0``... for user files.
    W : np.ndarray
        float32, shape ``(out, in)``.
    b : np.ndarray
        float32, shape ``(out,)``.
    relu : bool
        Apply ReLU after this layer.
    density : float
        Target weight density for magnitude pruning, in (0, 1].
    act_density : float or None
        Published density of this layer's *input* activations (EIE Table III), None if n/a.
    x : np.ndarray or None
        This layer's own input, float32 ``(n_samples, in)``; only for non-chained networks.
    act_density_float : float or None
        Density of this layer's input that the float network, magnitude-pruned to the target
        densities, actually has (set by the synthetic generators; None elsewhere).
    """

    name: str
    W: np.ndarray
    b: np.ndarray
    relu: bool
    density: float
    act_density: float | None
    x: np.ndarray | None = None
    act_density_float: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)``."""
        return tuple(self.W.shape)


@dataclass(eq=False)
class Network:
    """A float network plus its inputs.

    Attributes
    ----------
    name : str
        Registered name, or the file stem of a user ``.npz``.
    layers : list[Layer]
    x : np.ndarray
        float32 ``(n_samples, layers[0].W.shape[1])``: the network input (chained) or layer 0's
        input (not chained).
    labels : np.ndarray or None
        int64 class labels of ``x`` (mlp_digits, user files with ``y``), else None.
    synthetic : bool
        True for the generated stand-ins of published networks.
    description : str
        One line; says "synthetic" where it is.
    chained : bool
        True: layer ``k`` consumes layer ``k-1``'s output.  False: every layer has ``Layer.x``.
    """

    name: str
    layers: list[Layer]
    x: np.ndarray
    labels: np.ndarray | None
    synthetic: bool
    description: str
    chained: bool = True

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])


def float_forward(net: Network, masks: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Run the float network and return every layer's input (float64 vectors, float32 products).

    Parameters
    ----------
    net : Network
    masks : list of bool arrays, optional
        Per-layer keep-masks (same shape as ``W``); None runs the dense network.

    Returns
    -------
    list of np.ndarray
        ``inputs[k]`` has shape ``(n_samples, in_k)``; for a chained network one more entry,
        the output of the last layer, is appended.
    """
    def matvec(k, a):
        W = net.layers[k].W
        if masks is not None:
            W = np.where(masks[k], W, np.float32(0))
        # products in float32: a float64 copy of a 100M-weight matrix would not be worth it
        out = (W @ a.T.astype(np.float32)).T.astype(np.float64) + net.layers[k].b
        return np.maximum(out, 0) if net.layers[k].relu else out

    if not net.chained:
        return [np.asarray(layer.x, np.float64) for layer in net.layers]
    a = np.asarray(net.x, np.float64)
    inputs = [a]
    for k in range(len(net.layers)):
        a = matvec(k, a)
        inputs.append(a)
    return inputs
