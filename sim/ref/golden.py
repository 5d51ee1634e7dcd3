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
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import finalize, wrap
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


class GoldenModel:
    """The network as the images define it; decode once, run many inputs.

    Parameters
    ----------
    images : Images
    chained : bool
        True: layer ``l + 1`` consumes layer ``l``'s output.  False: every layer is run on its
        own input (NeuralTalk's layers do not chain).
    """

    def __init__(self, images: Images, chained: bool = True):
        self.images = images
        self.cfg = images.cfg
        self.chained = chained
        self.weights = [decode_weights(images, i) for i in range(len(images.layers))]
        self.biases = [layer_bias(images, i) for i in range(len(images.layers))]

    def layer(self, li: int, a) -> np.ndarray:
        """One layer: accumulate (wrapping), round-shift, add bias, saturate, ReLU."""
        lay = self.images.layers[li]
        a = np.asarray(a, dtype=np.int64)
        if a.shape[-1] != lay["in_len"]:
            raise EIEError(f"layer {lay['name']}: input has {a.shape[-1]} elements, "
                           f"expected {lay['in_len']}")
        acc = wrap((self.weights[li] @ a.T).T, self.cfg.acc_bits)
        return finalize(acc, lay["shift"], self.biases[li], bool(lay["relu"]), self.cfg)

    def user_order(self, outs: list) -> list[np.ndarray]:
        """Every layer's output in the user's row order (the layers' ``row_order``,
        :mod:`compiler.permute`); :meth:`forward` gives them in the hardware's."""
        return [to_user_order(o, lay.get("row_order"))
                for o, lay in zip(outs, self.images.layers)]

    def forward(self, x) -> list[np.ndarray]:
        """Outputs of every layer for input(s) ``x`` (one vector or a batch, int activations),
        in the hardware's row order (:meth:`user_order` gives the user's).

        For a non-chained network ``x`` is a list with one input per layer.
        """
        outs = []
        if self.chained:
            a = np.asarray(x, dtype=np.int64)
            for li in range(len(self.images.layers)):
                a = self.layer(li, a)
                outs.append(a)
        else:
            for li, xi in enumerate(x):
                outs.append(self.layer(li, xi))
        return outs
