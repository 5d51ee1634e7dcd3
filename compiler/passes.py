"""Passes: a layer cut into the blocks the array runs, one layer descriptor each.

EIE's destination register file (the accumulators) holds ``cfg.acc_words`` rows per PE and its
pointer SRAM ``cfg.ptr_depth`` pointers per PE (EIE section 3).  A layer that needs more runs
in several *passes* (:data:`hw.arch.regmap.DESCRIPTOR_FIELDS` describes one):

* **Output batches.**  A layer with ``rows_local = ceil(rows / N)`` above ``acc_words`` runs in
  ``n_rb = ceil(rows_local / acc_words)`` batches of ``R = ceil(rows_local / n_rb)`` rows per PE
  (as even as the row count allows).  Batch ``b`` holds the global rows
  ``b*R*N .. (b+1)*R*N - 1``: an offset that is a multiple of ``N``, so row ``i`` stays on PE
  ``i % N`` as local row ``i // N - b*R`` of the batch, and the batch's outputs are written back
  to destination words ``dst_base = b*R ..`` of the activation memory.  Every batch re-reads the
  source vector and re-broadcasts its non-zeros, with its own column pointers (EIE: "each batch
  reads the SRAM at its start and writes it at its end").
* **Column batches.**  A layer whose ``cols + 1`` pointers do not fit the pointer SRAM, or
  whose sparse matrix alone does not fit a PE's Spmat SRAM, is cut into ``n_cb`` column
  batches of ``C`` columns (a multiple of ``N``, so batch ``c`` starts at source group
  ``col_group = c*C / N``).  Every column batch but the last ends without write-back (``keep``):
  the accumulators carry its partial sums into the next one, so the sum of every row still
  runs over the same columns, in the same order, and the outputs are bit-identical.

The passes of a layer run row batch by row batch, each over all its column batches.  Each
pass's block of the index matrix is encoded on its own (:func:`compiler.encode.encode_layer`:
local rows and relative indices restart in every block).  A layer that fits runs in one pass,
exactly as before batches existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from compiler.encode import EncodedLayer, encode_layer
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError


@dataclass
class EncodedPass:
    """One pass of a layer: its block of rows and columns, encoded.

    Attributes
    ----------
    row_batch, col_batch : int
        Which output batch and column batch of the layer.
    row0, col0 : int
        First global row and first column of the block (``row0 % N == 0``,
        ``col0 % N == 0``).
    keep : bool
        Not the last column batch: no write-back, the accumulators carry over.
    enc : EncodedLayer
        The block ``Q[row0 : row0 + enc.rows, col0 : col0 + enc.cols]``, encoded.
    """

    row_batch: int
    col_batch: int
    row0: int
    col0: int
    keep: bool
    enc: EncodedLayer

    @property
    def rows_local(self) -> int:
        return -(-self.enc.rows // self.enc.n_pes)


def widest_batch(name: str, cfg: EIEConfig) -> int:
    """The most columns of one column batch whose pointers fit the pointer SRAM (a multiple of
    ``N``, ``C + 1 <= ptr_depth``); an error when not even ``N`` columns fit."""
    n = cfg.n_pes
    widest = (cfg.ptr_depth - 1) // n * n
    if widest < 1:
        raise EIEError(f"layer {name}: the pointer SRAM of config {cfg.name!r} "
                       f"({cfg.ptr_depth} pointers) cannot hold one column batch of "
                       f"{n} columns")
    return widest


def check_layer_count(n_layers: int, cfg: EIEConfig) -> None:
    """One codebook slot per layer: at most ``cfg.max_layers`` layers."""
    if n_layers > cfg.max_layers:
        raise EIEError(f"{n_layers} layers do not fit config {cfg.name!r}: "
                       f"max_layers is {cfg.max_layers} (one codebook each)")


def check_vectors(name: str, rows: int, cols: int, cfg: EIEConfig) -> None:
    """A layer's input (``cols``) and output (``rows``) fit the activation memories."""
    for what, length in (("input", cols), ("output", rows)):
        if length > cfg.max_vector:
            raise EIEError(f"layer {name}: {what} length {length} exceeds the activation "
                           f"memories of config {cfg.name!r} ({cfg.act_depth} words x "
                           f"{cfg.n_pes} PEs = {cfg.max_vector})")


def check_bias(name: str, used: int, rows_local: int, cfg: EIEConfig) -> None:
    """A layer's ``rows_local`` biases per PE fit after the ``used`` words of the layers
    before it."""
    if used + rows_local > cfg.bias_depth:
        raise EIEError(f"layer {name} does not fit the bias memory: needs "
                       f"{used + rows_local} words, {cfg.bias_depth} available")


def check_shapes(shapes, cfg: EIEConfig) -> None:
    """Everything :func:`encode_passes` and :func:`compiler.layout.build_images` check that
    needs only the layers' shapes, with their messages, so that a network too big for ``cfg``
    is refused before it is pruned and encoded: one column batch's pointers, the layer count
    (codebooks), every input and output against the activation memories, the biases.  Rows
    beyond the accumulators and columns beyond the pointer SRAM are not errors (output and
    column batches); what the sparse matrices need of the Spmat SRAM depends on the pruning.

    Parameters
    ----------
    shapes : list of (name, rows, cols)
        Every matrix layer (:func:`compiler.options.matrix_shapes`).
    cfg : EIEConfig
    """
    for name, _, _ in shapes[:1]:
        widest_batch(name, cfg)
    check_layer_count(len(shapes), cfg)
    used = 0
    for name, rows, cols in shapes:
        check_vectors(name, int(rows), int(cols), cfg)
        rows_local = -(-int(rows) // cfg.n_pes)
        check_bias(name, used, rows_local, cfg)
        used += rows_local


def row_batches(rows: int, cfg: EIEConfig) -> list[tuple[int, int]]:
    """``(row0, n_rows)`` of every output batch of a ``rows``-row layer (module docstring)."""
    n = cfg.n_pes
    rows_local = -(-rows // n)
    n_rb = -(-rows_local // cfg.acc_words)
    per = -(-rows_local // n_rb) * n
    return [(r0, min(per, rows - r0)) for r0 in range(0, rows, per)]


def _column_width(cols: int, n_cb: int, n: int) -> int:
    """Columns per batch for ``n_cb`` column batches: a multiple of ``n``."""
    per_batch = -(-cols // n_cb)
    return -(-per_batch // n) * n


def _spmat_fits(enc: EncodedLayer, cfg: EIEConfig) -> bool:
    return int(enc.spmat_words(cfg).max()) <= cfg.spmat_depth


def encode_passes(Q, cfg: EIEConfig, name: str = "?",
                  col_starts: tuple = (0,)) -> list[EncodedPass]:
    """Cut a layer's index matrix into passes and encode each (module docstring).

    ``col_starts`` (multiples of ``N``, the first 0) forces column batches to start there: an
    LSTM's gates run their x part and their y part as separate column batches
    (:mod:`compiler.lower`); each part is cut further when it does not fit.

    Parameters
    ----------
    Q : scipy.sparse matrix or array, shape (rows, cols)
        Codebook indices (0: zero weight).
    cfg : EIEConfig
    name : str
        The layer's name, for messages.

    Raises
    ------
    EIEError
        When no column split makes a block fit: one group of ``N`` columns already needs more
        pointers or Spmat words than a PE holds.
    """
    csc = sp.csc_matrix(Q)
    rows, cols = csc.shape
    n = cfg.n_pes
    if rows < 1 or cols < 1:
        raise EIEError(f"layer {name}: cannot encode an empty matrix of shape {rows}x{cols}")
    if tuple(col_starts) != (0,):
        bounds = list(col_starts) + [cols]
        out = []
        for part, (c0, c1) in enumerate(zip(bounds[:-1], bounds[1:])):
            last = part == len(bounds) - 2
            sub = encode_passes(csc[:, c0:c1], cfg, name)
            n_cb = 1 + max(p.col_batch for p in out) if out else 0
            out += [EncodedPass(p.row_batch, n_cb + p.col_batch, p.row0, c0 + p.col0,
                                p.keep or not last, p.enc) for p in sub]
        if max(p.row_batch for p in out):
            raise EIEError(f"layer {name}: forced column batches cannot be cut into output "
                           f"batches too")
        return out
    # the fewest column batches whose pointers fit, then more while a block's Spmat does not
    widest = widest_batch(name, cfg)  # C + 1 pointers <= ptr_depth
    n_cb = -(-cols // widest)
    rbs = row_batches(rows, cfg)
    csr = csc.tocsr() if len(rbs) > 1 else None  # row slices only for output batches
    while True:
        width = _column_width(cols, n_cb, n)
        starts = list(range(0, cols, width))
        out = []
        for rb, (r0, nr) in enumerate(rbs):
            block_rows = csr[r0:r0 + nr].tocsc() if csr is not None else csc
            for cb, c0 in enumerate(starts):
                block = block_rows if len(starts) == 1 else \
                    block_rows[:, c0:min(c0 + width, cols)]
                enc = encode_layer(block, cfg)
                out.append(EncodedPass(rb, cb, r0, c0, cb < len(starts) - 1, enc))
        if all(_spmat_fits(p.enc, cfg) for p in out):
            return out
        if width <= n:
            worst = max(out, key=lambda p: int(p.enc.entries.max()))
            words = int(worst.enc.spmat_words(cfg).max())
            raise EIEError(f"layer {name} does not fit the sparse-matrix SRAM: its rows "
                           f"{worst.row0}.. over {n} columns need {words} words on one PE, "
                           f"{cfg.spmat_depth} available (config {cfg.name!r})")
        n_cb = max(n_cb + 1, -(-cols // max(n, width - n)))


def layer_totals(passes: list[EncodedPass]) -> dict:
    """A layer's entries, padding and non-zeros per PE, summed over its passes."""
    entries = np.sum([p.enc.entries for p in passes], axis=0)
    padding = np.sum([p.enc.padding for p in passes], axis=0)
    return {"entries": entries, "padding": padding,
            "nnz": int(sum(p.enc.nnz for p in passes)),
            "pointers": int(sum(p.enc.cols + 1 for p in passes))}
