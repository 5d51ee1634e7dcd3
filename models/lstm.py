"""The LSTM layer (:class:`LSTMLayer`) and its float reference (:func:`lstm_forward`).

The cell is the LSTMP of Sak, Senior and Beaufays (2014), the model ESE benchmarks
(/work/shared/reference/ESE.md), with the projection and the peepholes optional (without both
it is a plain LSTM)::

    i_t = sigma(W_ix x_t + W_ir y_{t-1} + w_ic . c_{t-1} + b_i)
    f_t = sigma(W_fx x_t + W_fr y_{t-1} + w_fc . c_{t-1} + b_f)
    g_t = tanh (W_gx x_t + W_gr y_{t-1} + b_g)            (ESE.md calls this gate c)
    c_t = f_t . c_{t-1} + i_t . g_t
    o_t = sigma(W_ox x_t + W_or y_{t-1} + w_oc . c_t + b_o)   (the output peephole sees c_t)
    m_t = o_t . tanh(c_t)
    y_t = W_ym m_t              (y_t = m_t without a projection)

``.`` is the element-wise product; ``y_0 = c_0 = 0``.

Storage (:data:`GATES` gives the order): the four gates' matrices are stacked row-wise in the
order **i, f, g, o**, so gate ``j``'s rows of ``W_x`` / ``W_r`` / ``b`` are
``j * n_cells : (j + 1) * n_cells``:

* ``W_x`` ``(4 * n_cells, n_in)``: input weights;
* ``W_r`` ``(4 * n_cells, n_rec)``: recurrent weights on ``y_{t-1}``, where ``n_rec`` is
  ``n_proj`` with a projection and ``n_cells`` without;
* ``b`` ``(4 * n_cells,)``: biases (one vector per gate; a model with separate input and
  recurrent biases, like PyTorch's, adds them);
* ``peep`` ``(3, n_cells)`` or None: rows ``w_ic``, ``w_fc``, ``w_oc`` (:data:`PEEPHOLES`);
* ``W_ym`` ``(n_proj, n_cells)`` or None: the projection.

The three matrices (:data:`MATRICES`) are what pruning applies to, all to the layer's one
target ``density``; the peepholes (diagonal, element-wise in ESE) and the biases are vectors and
never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.arch.errors import EIEError

#: gate order of the stacked rows of W_x, W_r and b
GATES: tuple[str, ...] = ("i", "f", "g", "o")
#: row order of ``peep``: input, forget and output gate peepholes
PEEPHOLES: tuple[str, ...] = ("w_ic", "w_fc", "w_oc")
#: the layer's weight matrices, by field name (the ones pruning applies to)
MATRICES: tuple[str, ...] = ("W_x", "W_r", "W_ym")


def finite_float32(what: str, a) -> np.ndarray:
    """``a`` as float32, refusing non-numeric arrays and NaN / Inf (also after the cast);
    ``what`` starts the one-line message (``"<net>: x"``)."""
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise EIEError(f"{what} must be numeric, got dtype {a.dtype}")
    with np.errstate(over="ignore"):
        a32 = a.astype(np.float32)
    if not np.all(np.isfinite(a32)):
        raise EIEError(f"{what} contains NaN or Inf")
    return a32


def _float32(name: str, what: str, a) -> np.ndarray:
    """:func:`finite_float32` with an LSTM layer's message prefix."""
    return finite_float32(f"LSTM layer {name}: {what}", a)


def _shape(name: str, what: str, a: np.ndarray, expected: tuple, why: str) -> None:
    if a.shape != expected:
        raise EIEError(f"LSTM layer {name}: {what} has shape {a.shape}, expected {expected} "
                       f"({why})")


@dataclass(frozen=True, eq=False)
class LSTMLayer:
    """One LSTMP layer (module docstring: equations, gate order, shapes).

    Arrays are stored as float32 (cast and checked in ``__post_init__``).

    Attributes
    ----------
    name : str
        ``lstm0``... for user files, ``lstm`` for ese_lstm.
    W_x : np.ndarray
        ``(4 * n_cells, n_in)``, gates i, f, g, o.
    W_r : np.ndarray
        ``(4 * n_cells, n_rec)``; ``n_rec = n_proj`` with a projection, else ``n_cells``.
    b : np.ndarray
        ``(4 * n_cells,)``.
    peep : np.ndarray or None
        ``(3, n_cells)``: ``w_ic, w_fc, w_oc``; None: no peepholes.
    W_ym : np.ndarray or None
        ``(n_proj, n_cells)``; None: no projection (``y_t = m_t``).
    density : float
        Target weight density of ``W_x``, ``W_r`` and ``W_ym`` for magnitude pruning, in (0, 1].
    return_sequences : bool
        True: the layer outputs every ``y_t`` (``(n, T, n_out)``; a following FC layer runs on
        every frame); False: only the last ``y_T`` (``(n, n_out)``).
    act_density : float or None
        Published density of the layer's input activations, None if n/a (as for FC layers).
    """

    name: str
    W_x: np.ndarray
    W_r: np.ndarray
    b: np.ndarray
    peep: np.ndarray | None = None
    W_ym: np.ndarray | None = None
    density: float = 1.0
    return_sequences: bool = False
    act_density: float | None = None

    def __post_init__(self):
        name = self.name
        if not isinstance(name, str) or not name:
            raise EIEError(f"LSTM layer name must be a non-empty string, got {name!r}")
        W_x = _float32(name, "W_x", self.W_x)
        if W_x.ndim != 2 or W_x.shape[0] == 0 or W_x.shape[0] % 4 or W_x.shape[1] == 0:
            raise EIEError(f"LSTM layer {name}: W_x has shape {W_x.shape}, expected "
                           f"(4 * n_cells, n_in) with n_cells, n_in >= 1")
        cells = W_x.shape[0] // 4
        W_ym = None if self.W_ym is None else _float32(name, "W_ym", self.W_ym)
        if W_ym is not None and (W_ym.ndim != 2 or W_ym.shape[0] == 0 or
                                 W_ym.shape[1] != cells):
            raise EIEError(f"LSTM layer {name}: W_ym has shape {W_ym.shape}, expected "
                           f"(n_proj, {cells}) (projection of {cells} cells)")
        n_rec = cells if W_ym is None else W_ym.shape[0]
        W_r = _float32(name, "W_r", self.W_r)
        _shape(name, "W_r", W_r, (4 * cells, n_rec),
               f"4 gates x {cells} cells, {n_rec} recurrent inputs")
        b = _float32(name, "b", self.b)
        _shape(name, "b", b, (4 * cells,), f"4 gates x {cells} cells")
        peep = None if self.peep is None else _float32(name, "peep", self.peep)
        if peep is not None:
            _shape(name, "peep", peep, (3, cells), f"w_ic, w_fc, w_oc of {cells} cells")
        d = self.density
        if isinstance(d, bool) or not isinstance(d, (int, float, np.number)) or \
                not (np.isfinite(d) and 0 < d <= 1):
            raise EIEError(f"LSTM layer {name}: density must be in (0, 1], got {d!r}")
        if not isinstance(self.return_sequences, (bool, np.bool_)):
            raise EIEError(f"LSTM layer {name}: return_sequences must be a bool, got "
                           f"{self.return_sequences!r}")
        for field, value in (("W_x", W_x), ("W_r", W_r), ("b", b), ("peep", peep),
                             ("W_ym", W_ym), ("density", float(d)),
                             ("return_sequences", bool(self.return_sequences))):
            object.__setattr__(self, field, value)

    @property
    def n_cells(self) -> int:
        return self.W_x.shape[0] // 4

    @property
    def n_in(self) -> int:
        return self.W_x.shape[1]

    @property
    def n_rec(self) -> int:
        """Width of ``y_t``, the recurrent input (``n_proj`` or ``n_cells``)."""
        return self.W_r.shape[1]

    @property
    def n_out(self) -> int:
        """Width of the layer's output ``y_t`` (same as :attr:`n_rec`)."""
        return self.W_r.shape[1]

    @property
    def has_projection(self) -> bool:
        return self.W_ym is not None

    @property
    def has_peepholes(self) -> bool:
        return self.peep is not None

    @property
    def relu(self) -> bool:
        """Never: the cell's own non-linearities are its output (kept for code that reads
        ``layer.relu`` of every layer)."""
        return False

    def matrices(self) -> dict[str, np.ndarray]:
        """The weight matrices pruning applies to, by field name (``W_ym`` only if present)."""
        out = {"W_x": self.W_x, "W_r": self.W_r}
        if self.W_ym is not None:
            out["W_ym"] = self.W_ym
        return out

    def gate(self, a: np.ndarray, gate: str) -> np.ndarray:
        """Gate ``gate``'s rows (``"i"``, ``"f"``, ``"g"`` or ``"o"``) of a stacked array."""
        j = GATES.index(gate)
        return a[j * self.n_cells:(j + 1) * self.n_cells]

    @property
    def n_params(self) -> int:
        """Weights, biases and peepholes (ESE.md: 3,255,296 for the benchmark shape)."""
        n = self.W_x.size + self.W_r.size + self.b.size
        return n + (0 if self.peep is None else self.peep.size) + \
            (0 if self.W_ym is None else self.W_ym.size)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, without overflow warnings for large ``|z|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _masked(layer: LSTMLayer, masks: dict | None) -> dict[str, np.ndarray]:
    """The layer's matrices in float64, with pruned weights zeroed (``masks`` by field name)."""
    out = {}
    for field, W in layer.matrices().items():
        W = np.asarray(W, np.float64)
        if masks is not None and masks.get(field) is not None:
            m = np.asarray(masks[field], bool)
            if m.shape != W.shape:
                raise EIEError(f"LSTM layer {layer.name}: mask of {field} has shape {m.shape}, "
                               f"expected {W.shape}")
            W = np.where(m, W, 0.0)
        out[field] = W
    return out


def lstm_forward(layer: LSTMLayer, x: np.ndarray, masks: dict | None = None,
                 return_cells: bool = False):
    """Run the layer over sequences in float64 (the float reference; batch of sequences).

    Parameters
    ----------
    layer : LSTMLayer
    x : np.ndarray
        ``(n, T, n_in)`` with ``T >= 1``.
    masks : dict, optional
        Keep-masks by matrix field name (``"W_x"``, ``"W_r"``, ``"W_ym"``); a missing entry is
        the dense matrix.
    return_cells : bool
        Also return every cell state ``c_t``.

    Returns
    -------
    np.ndarray or (np.ndarray, np.ndarray)
        ``y`` of shape ``(n, T, n_out)``: every ``y_t``, whatever ``return_sequences`` says
        (the network applies it); with ``return_cells`` also ``c`` of shape ``(n, T, n_cells)``.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[2] != layer.n_in:
        raise EIEError(f"LSTM layer {layer.name}: input has shape {x.shape}, expected "
                       f"(n, T, {layer.n_in})")
    if x.shape[1] == 0:
        raise EIEError(f"LSTM layer {layer.name}: input has 0 time steps (T must be >= 1)")
    W = _masked(layer, masks)
    n, T, _ = x.shape
    nc = layer.n_cells
    b = layer.b.astype(np.float64)
    peep = None if layer.peep is None else layer.peep.astype(np.float64)
    # the input product of every frame at once: it does not depend on the recurrence
    zx = x @ W["W_x"].T + b
    y = np.zeros((n, layer.n_rec))
    c = np.zeros((n, nc))
    ys, cs = np.empty((n, T, layer.n_out)), np.empty((n, T, nc))
    for t in range(T):
        z = zx[:, t] + y @ W["W_r"].T
        zi, zf, zg, zo = (z[:, j * nc:(j + 1) * nc] for j in range(4))
        if peep is not None:
            zi = zi + peep[0] * c
            zf = zf + peep[1] * c
        c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
        if peep is not None:
            zo = zo + peep[2] * c
        m = sigmoid(zo) * np.tanh(c)
        y = m @ W["W_ym"].T if "W_ym" in W else m
        ys[:, t], cs[:, t] = y, c
    return (ys, cs) if return_cells else ys
