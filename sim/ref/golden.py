"""Bit-exact NumPy golden model of the array, run from the memory images.

It decodes the images exactly as the hardware reads them (pointer banks, packed Spmat words,
relative indices, per-layer codebooks) and applies :mod:`hw.arch.fixedpoint` arithmetic, so a
mismatch with the RTL is a hardware bug or an image bug, never a modelling tolerance.  It never
looks at the dense float matrices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from compiler.encode import local_rows, unpack_words
from compiler.lower import gate_rows, slot_order
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import finalize, lstm_cell, wrap
from compiler.layout import Images
from compiler.permute import to_user_order


def decode_pass(images: Images, pi: int):
    """Rows, columns and codebook values of the weights of pass ``pi``, in layer coordinates.

    Padding entries (codebook index 0) are dropped; a PE whose pointers are not monotonic or that
    addresses a row beyond the pass raises EIEError (corrupt images).
    """
    cfg = images.cfg
    pas = images.passes[pi]
    n, rows, cols = cfg.n_pes, pas["out_len"], pas["in_len"]
    cb = images.codebook[int(pas["cb_slot"])]
    g = pas["ptr_base"] + np.arange(cols + 1, dtype=np.int64)
    spmat = images.spmat_of(int(pas["segment"]))
    rs, cs, ws = [], [], []
    for k in range(n):
        p = images.pointer(k, g, int(pas["ptr_segment"]))
        if np.any(np.diff(p) < 0):
            raise EIEError(f"pass {pas['name']}: PE {k} pointers are not monotonic")
        start, count = int(p[0]), int(p[-1] - p[0])
        if count == 0:
            continue
        if (start + count + cfg.entries_per_word - 1) // cfg.entries_per_word > \
                spmat.shape[1]:
            raise EIEError(f"pass {pas['name']}: PE {k} pointers run past the Spmat image")
        v, z = unpack_words(spmat[k], count, cfg, start)
        rel = p - start
        lr = local_rows(z, rel)
        col = np.repeat(np.arange(cols, dtype=np.int64), np.diff(rel))
        keep = v != 0
        r = lr[keep] * n + k
        if r.size and r.max() >= rows:
            raise EIEError(f"pass {pas['name']}: PE {k} addresses row {int(r.max())} of {rows}")
        rs.append(r + int(pas["row0"]))
        cs.append(col[keep] + int(pas["col0"]))
        ws.append(cb[v[keep]])
    return rs, cs, ws


def decode_weights(images: Images, li: int) -> sp.csr_matrix:
    """Integer weight matrix (``rows x cols``, codebook values) of layer ``li`` from the images:
    the blocks of all its passes (:func:`decode_pass`) put together."""
    lay = images.layers[li]
    rs, cs, ws = [], [], []
    for pi in lay["passes"]:
        r, c, w = decode_pass(images, pi)
        rs += r
        cs += c
        ws += w
    if rs:
        r, c, w = np.concatenate(rs), np.concatenate(cs), np.concatenate(ws)
    else:
        r = c = w = np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((w.astype(np.int64), (r, c)), shape=(lay["out_len"], lay["in_len"]),
                         dtype=np.int64)


def layer_bias(images: Images, li: int) -> np.ndarray:
    """Bias vector of layer ``li`` (activation format), gathered from the per-PE bias images."""
    cfg = images.cfg
    lay = images.layers[li]
    n, rows = cfg.n_pes, lay["out_len"]
    rl = -(-rows // n)
    b = images.bias[:, lay["bias_base"]: lay["bias_base"] + rl]  # (N, rl)
    return b.T.reshape(-1)[:rows].copy()


def gate_slots(pre: np.ndarray, n: int) -> np.ndarray:
    """Gate pre-activations in hardware row order ``(..., 4 * cells_pad)`` as ``(4, ...,
    cells_pad)``, by gate and cell slot (:func:`compiler.lower.gate_rows`: PE ``k``'s local row
    ``4 * j + q`` is gate ``q`` of slot ``j * N + k``)."""
    lead = pre.shape[:-1]
    cpp = pre.shape[-1] // (4 * n)
    g = pre.reshape(*lead, cpp, 4, n)  # hardware row (4 j + q) * N + k
    return np.moveaxis(g, -2, 0).reshape(4, *lead, cpp * n)


def slot_vector(per_pe: np.ndarray) -> np.ndarray:
    """A per-PE vector image ``(N, ..., cells_pad / N)`` (the peepholes) by slot ``j * N + k``."""
    per_pe = np.asarray(per_pe)
    return np.moveaxis(per_pe, 0, -1).reshape(*per_pe.shape[1:-1], -1)


class GoldenModel:
    """The network as the images define it; decode once, run many inputs.

    Parameters
    ----------
    images : Images
    chained : bool
        True: layer ``l + 1`` consumes layer ``l``'s output.  False: every layer is run on its
        own input (NeuralTalk's layers do not chain).

    A network with LSTM layers (``images.lstm``) runs on sequences ``(n, T, n_in)``; each LSTM
    runs frame by frame: the gates' product over ``[x_t ; 0 ; y_{t-1}]``, :func:`finalize`
    without ReLU (the pre-activations), :func:`hw.arch.fixedpoint.lstm_cell` with the
    images' peepholes and tables, then the projection's product and :func:`finalize`.  An FC
    layer on a sequence runs on every frame.
    """

    def __init__(self, images: Images, chained: bool = True):
        self.images = images
        self.cfg = images.cfg
        self.chained = chained
        self.weights = [decode_weights(images, i) for i in range(len(images.layers))]
        self.biases = [layer_bias(images, i) for i in range(len(images.layers))]
        self.lstm_at = {int(p["gates"]): p for p in images.lstm}

    def column_nnz(self, li: int) -> np.ndarray:
        """Non-zero weights of every column of layer ``li`` (padding entries are not
        weights): the products an input element's broadcast makes useful."""
        W = self.weights[li]
        return np.bincount(W.indices, minlength=W.shape[1]).astype(np.int64)

    def layer(self, li: int, a) -> np.ndarray:
        """One layer: accumulate (wrapping), round-shift, add bias, saturate, ReLU (every frame
        of a sequence alike)."""
        lay = self.images.layers[li]
        a = np.asarray(a, dtype=np.int64)
        if a.shape[-1] != lay["in_len"]:
            raise EIEError(f"layer {lay['name']}: input has {a.shape[-1]} elements, "
                           f"expected {lay['in_len']}")
        flat = a.reshape(-1, a.shape[-1])
        acc = wrap((self.weights[li] @ flat.T).T, self.cfg.acc_bits)
        out = finalize(acc, lay["shift"], self.biases[li], bool(lay["relu"]), self.cfg)
        return out.reshape(*a.shape[:-1], out.shape[-1])

    def lstm(self, plan: dict, x) -> dict:
        """One LSTM layer over sequences ``x`` ``(n, T, n_in)`` (class docstring).

        Returns a dict of int64 arrays, each ``(n, T, ...)``: ``src`` (the gates' source
        vectors), ``pre`` (pre-activations, hardware row order), ``c`` (cell states by slot),
        ``m`` (cell outputs by slot) and ``y`` (the layer's outputs ``y_t``).
        """
        cfg, n = self.cfg, self.cfg.n_pes
        x = np.asarray(x, dtype=np.int64)
        if x.ndim != 3 or x.shape[2] != plan["n_in"]:
            raise EIEError(f"LSTM layer {plan['name']}: input has shape {x.shape}, expected "
                           f"(n, T, {plan['n_in']})")
        gi, pi = int(plan["gates"]), plan["proj"]
        in_pad, n_rec, cells_pad = plan["in_pad"], plan["n_rec"], plan["cells_pad"]
        peep = None if plan["peep"] is None else slot_vector(plan["peep"])
        ns, T = x.shape[:2]
        src = np.zeros((ns, T, in_pad + n_rec), dtype=np.int64)
        src[:, :, :plan["n_in"]] = x
        out = {"src": src, "pre": np.zeros((ns, T, 4 * cells_pad), dtype=np.int64),
               "c": np.zeros((ns, T, cells_pad), dtype=np.int64),
               "m": np.zeros((ns, T, cells_pad), dtype=np.int64),
               "y": np.zeros((ns, T, n_rec), dtype=np.int64)}
        c = np.zeros((ns, cells_pad), dtype=np.int64)
        y = np.zeros((ns, n_rec), dtype=np.int64)
        for t in range(T):
            src[:, t, in_pad:] = y
            pre = self.layer(gi, src[:, t])
            c, m = lstm_cell(gate_slots(pre, n), c, peep, cfg, self.images.tables)
            y = self.layer(pi, m) if pi is not None else m[:, :n_rec]
            out["pre"][:, t], out["c"][:, t], out["m"][:, t], out["y"][:, t] = pre, c, m, y
        return out

    def trace(self, x) -> tuple[list, list, list, np.ndarray]:
        """Every matrix layer's input and output (hardware row order), every LSTM's trace
        (:meth:`lstm`) and the network's output in the user's order (an LSTM that returns only
        its last frame gives ``y_T``), for a chained network's input ``x``."""
        ins, outs, lstms = [], [], []
        a = np.asarray(x, dtype=np.int64)
        li = 0
        while li < len(self.images.layers):
            plan = self.lstm_at.get(li)
            if plan is None:
                ins.append(a)
                a = self.layer(li, a)
                outs.append(a)
                li += 1
                continue
            tr = self.lstm(plan, a)
            lstms.append(tr)
            ins.append(tr["src"])
            outs.append(tr["pre"])
            if plan["proj"] is not None:
                ins.append(tr["m"])
                outs.append(tr["y"])
            a = tr["y"] if plan["return_sequences"] else tr["y"][:, -1]
            li += 1 if plan["proj"] is None else 2
        last = self.images.layers[-1]
        if last.get("role") != "gates":  # an FC layer's or a projection's rows, user order
            a = to_user_order(a, last.get("row_order"))
        return ins, outs, lstms, a

    def user_order(self, outs: list) -> list[np.ndarray]:
        """Every layer's output in the user's row order (the layers' ``row_order``,
        :mod:`compiler.permute`; an LSTM's pre-activations by user gate row ``q * cells + c``);
        :meth:`forward` gives them in the hardware's."""
        res = []
        for o, lay in zip(outs, self.images.layers):
            if lay.get("role") == "gates":
                plan = self.images.lstm[int(lay["lstm"])]
                rows = gate_rows(slot_order(plan.get("cell_order"), plan["cells"],
                                            plan["cells_pad"]), plan["cells"], self.cfg.n_pes)
                u = np.zeros((*o.shape[:-1], 4 * plan["cells"]), dtype=o.dtype)
                u[..., rows[rows >= 0]] = o[..., rows >= 0]
                res.append(u)
            else:
                res.append(to_user_order(o, lay.get("row_order")))
        return res

    def forward(self, x) -> list[np.ndarray]:
        """Outputs of every layer for input(s) ``x`` (one vector or a batch, int activations;
        sequences ``(n, T, n_in)`` for a network with an LSTM), in the hardware's row order
        (:meth:`user_order` gives the user's).

        For a non-chained network ``x`` is a list with one input per layer.
        """
        if self.chained:
            if self.images.lstm:
                return self.trace(x)[1]
            outs = []
            a = np.asarray(x, dtype=np.int64)
            for li in range(len(self.images.layers)):
                a = self.layer(li, a)
                outs.append(a)
            return outs
        return [self.layer(li, xi) for li, xi in enumerate(x)]
