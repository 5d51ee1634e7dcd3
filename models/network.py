"""The float network the compiler consumes: :class:`Layer` and :class:`Network`.

A network's layers are fully-connected :class:`Layer` s or :class:`~models.lstm.LSTMLayer` s
(LSTMP cells, ESE's benchmark; :mod:`models.lstm`).  Two shapes of network exist:

* **chained** (``Network.chained`` is true; AlexNet, VGG, mlp_digits, user files): layer ``k``
  consumes layer ``k-1``'s output; ``Network.x`` is the input of layer 0 and every ``Layer.x``
  is ``None``.
* **not chained** (NeuralTalk): the layers are independent matrix-vector products whose shapes
  do not connect.  Every layer carries its own input ``Layer.x`` of shape
  ``(n_samples, in)``; ``Network.x`` is the same array as ``layers[0].x`` so code that only
  looks at the first layer still works.

A network with an LSTM layer is chained and runs on **sequences**: ``Network.x`` has shape
``(n_samples, T, n_in)`` with ``T >= 1``.  An FC layer whose input is a sequence runs on every
frame; an LSTM layer outputs every ``y_t`` (``return_sequences``) or only the last one, after
which the layers see one vector per sample again (and no LSTM may follow).
:func:`check_sequence_network` validates such a network when it is built.

Weights are float32 and dense (uncompressed): the compiler prunes to ``Layer.density`` and
quantizes them itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from hw.arch.errors import EIEError
from models.lstm import LSTMLayer, finite_float32, lstm_forward


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
    layers : list of Layer or LSTMLayer
    x : np.ndarray
        float32 ``(n_samples, layers[0].W.shape[1])``: the network input (chained) or layer 0's
        input (not chained); with an LSTM layer ``(n_samples, T, n_in)``, one sequence per
        sample.
    labels : np.ndarray or None
        int64 class labels of ``x`` (mlp_digits, user files with ``y``), else None; one per
        sample (a sequence network classifying every frame may give ``(n_samples, T)``).
    synthetic : bool
        True for the generated stand-ins of published networks.
    description : str
        One line; says "synthetic" where it is.
    chained : bool
        True: layer ``k`` consumes layer ``k-1``'s output.  False: every layer has ``Layer.x``.
    balance : bool
        The model is meant to be pruned load-balance-aware (ESE's pruning, ese_lstm): the
        compiler prunes it so whatever ``--balance`` says.
    input_affine : tuple of np.ndarray, optional
        ``(scale, shift)`` per input feature: the input normalization of an imported model (a
        StandardScaler, a BatchNorm on the input), applied to a user's inputs on the host
        (:meth:`prepare_inputs`) rather than folded into layer 0's weights, where it would
        spread their magnitudes over the features' scales and a shared-weight codebook could
        not hold them.  ``x`` is already normalized.
    """

    name: str
    layers: list[Layer | LSTMLayer]
    x: np.ndarray
    labels: np.ndarray | None
    synthetic: bool
    description: str
    chained: bool = True
    balance: bool = False
    input_affine: tuple | None = None

    def prepare_inputs(self, x) -> np.ndarray:
        """Raw inputs (what the model's producer takes) -> what layer 0 takes: ``x`` itself, or
        ``x * scale + shift`` along the feature axis with :attr:`input_affine`."""
        if self.input_affine is None:
            return x
        scale, shift = self.input_affine
        y = np.asarray(x, np.float64) * np.asarray(scale, np.float64) + np.asarray(shift,
                                                                                   np.float64)
        return y.astype(np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float64)

    def __post_init__(self):
        if self.has_lstm:
            self.x = check_sequence_network(self)

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    @property
    def has_lstm(self) -> bool:
        """True when a layer is an :class:`~models.lstm.LSTMLayer`."""
        return any(isinstance(layer, LSTMLayer) for layer in self.layers)

    @property
    def n_steps(self) -> int | None:
        """``T``, the frames of every input sequence; None for a network of vectors."""
        return int(self.x.shape[1]) if self.has_lstm else None


def _width_in(layer) -> int:
    return layer.n_in if isinstance(layer, LSTMLayer) else int(np.shape(layer.W)[1])


def _width_out(layer) -> int:
    return layer.n_out if isinstance(layer, LSTMLayer) else int(np.shape(layer.W)[0])


def check_sequence_network(net: Network) -> np.ndarray:
    """Validate a network with an LSTM layer; returns its input as float32.

    Raises
    ------
    EIEError
        Not chained; ``x`` not ``(n, T, n_in)`` with ``n, T >= 1`` or not finite; layers whose
        widths do not connect; an LSTM after the sequence was reduced to its last frame; labels
        that are not one per sample.
    """
    if not net.chained:
        raise EIEError(f"{net.name}: a network with an LSTM layer must be chained")
    x = np.asarray(net.x)
    n_in = _width_in(net.layers[0])
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[2] != n_in:
        raise EIEError(f"{net.name}: x has shape {x.shape}, expected (n_samples, T, {n_in}) "
                       f"sequences")
    if x.shape[1] == 0:
        raise EIEError(f"{net.name}: x has 0 time steps (T must be >= 1)")
    x = finite_float32(f"{net.name}: x", x)
    seq, prev = True, None
    for layer in net.layers:
        if prev is not None and _width_in(layer) != _width_out(prev):
            raise EIEError(f"{net.name}: layer {layer.name} has {_width_in(layer)} inputs but "
                           f"layer {prev.name} has {_width_out(prev)} outputs")
        if isinstance(layer, LSTMLayer):
            if not seq:
                raise EIEError(f"{net.name}: LSTM layer {layer.name} needs a sequence, but an "
                               f"earlier LSTM layer outputs only its last frame "
                               f"(return_sequences=False)")
            seq = layer.return_sequences
        prev = layer
    if net.labels is not None and np.shape(net.labels)[:1] != (x.shape[0],):
        raise EIEError(f"{net.name}: {np.shape(net.labels)} labels for {x.shape[0]} "
                       f"sequences")
    return x


def float_forward(net: Network, masks: list | None = None) -> list[np.ndarray]:
    """Run the float network and return every layer's input (float64; FC products in float32,
    LSTM layers wholly in float64 by :func:`models.lstm.lstm_forward`).

    Parameters
    ----------
    net : Network
    masks : list, optional
        Per-layer keep-masks: a bool array shaped like ``W`` for an FC layer, a dict by matrix
        name (``"W_x"``, ``"W_r"``, ``"W_ym"``) for an LSTM layer; None runs the dense network.

    Returns
    -------
    list of np.ndarray
        ``inputs[k]`` has shape ``(n_samples, in_k)``, or ``(n_samples, T, in_k)`` where the
        layer's input is a sequence; for a chained network one more entry, the output of the
        last layer, is appended.  The output of a layer is the input of the next.
    """
    def matvec(k, a):
        W = net.layers[k].W
        if masks is not None:
            W = np.where(masks[k], W, np.float32(0))
        flat = a.reshape(-1, a.shape[-1])  # every frame of a sequence alike
        # products in float32: a float64 copy of a 100M-weight matrix would not be worth it
        out = (W @ flat.T.astype(np.float32)).T.astype(np.float64) + net.layers[k].b
        out = out.reshape(*a.shape[:-1], out.shape[-1])
        return np.maximum(out, 0) if net.layers[k].relu else out

    def lstm(k, a):
        layer = net.layers[k]
        y = lstm_forward(layer, a, None if masks is None else masks[k])
        return y if layer.return_sequences else y[:, -1]

    if not net.chained:
        return [np.asarray(layer.x, np.float64) for layer in net.layers]
    a = np.asarray(net.x, np.float64)
    inputs = [a]
    for k in range(len(net.layers)):
        a = lstm(k, a) if isinstance(net.layers[k], LSTMLayer) else matvec(k, a)
        inputs.append(a)
    return inputs


#: the notes :func:`print_note` has printed in this process
_NOTES_PRINTED: set[str] = set()


def print_note(msg: str) -> None:
    """``note: <msg>`` on stderr, once per process: a command loads a model several times (its
    data check, the compile, the plain-interleave comparison), and the importers' notes
    (what they skipped, folded, dropped or assumed) say the same each time."""
    if msg not in _NOTES_PRINTED:
        _NOTES_PRINTED.add(msg)
        print(f"note: {msg}", file=sys.stderr)
