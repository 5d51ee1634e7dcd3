"""Encode pass: a quantized layer -> EIE interleaved CSC streams, one per PE.

Input is the matrix of codebook indices ``Q`` (``rows x cols``; 0 = zero weight, 1..K-1 = the
shared weights).  Row ``i`` goes to PE ``i % N`` as local row ``i // N``.  Each PE's entries are
stored column by column as ``(v, z)``: codebook index and number of zero local rows since the
previous entry of the PE in that column (restarting at every column); a gap longer than
``cfg.max_rel_index`` is bridged by padding entries ``(0, max_rel_index)``.  See
docs/architecture.md section 1.  Everything here is vectorised: AlexNet fc6 (3.4 M non-zeros)
encodes in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError


@dataclass
class EncodedLayer:
    """One layer's per-PE streams.

    Attributes
    ----------
    rows, cols : int
        Layer shape (outputs, inputs).
    v, z : list of np.ndarray (uint8 / uint16)
        Per PE: codebook index and relative row index of every entry, padding included.
    ptr : np.ndarray, int64, shape (n_pes, cols + 1)
        Per PE column pointers into that PE's entry list (P[0] = 0).
    padding : np.ndarray, int64, shape (n_pes,)
        Padding entries per PE.
    """

    rows: int
    cols: int
    v: list
    z: list
    ptr: np.ndarray
    padding: np.ndarray

    @property
    def n_pes(self) -> int:
        return len(self.v)

    @property
    def entries(self) -> np.ndarray:
        """Entries per PE (padding included)."""
        return self.ptr[:, -1].copy()

    @property
    def nnz(self) -> int:
        return int(self.entries.sum() - self.padding.sum())

    def spmat_words(self, cfg: EIEConfig) -> np.ndarray:
        """Spmat words per PE the streams take (each PE's entries from a word boundary)."""
        return -(-self.entries // cfg.entries_per_word)


def encode_layer(Q, cfg: EIEConfig) -> EncodedLayer:
    """Encode a matrix of codebook indices into per-PE interleaved CSC streams.

    Parameters
    ----------
    Q : array_like or scipy.sparse matrix, shape (rows, cols)
        Codebook indices; 0 means a zero weight.  Indices must be below ``cfg.codebook_size``.
    cfg : EIEConfig

    Returns
    -------
    EncodedLayer
    """
    csc = sp.csc_matrix(Q)
    csc.eliminate_zeros()
    rows, cols = csc.shape
    if rows < 1 or cols < 1:
        raise EIEError(f"cannot encode an empty matrix of shape {rows}x{cols}")
    csc.sort_indices()
    data = np.asarray(csc.data)
    if data.size and (data.min() < 0 or data.max() >= cfg.codebook_size):
        raise EIEError(f"codebook index out of range 0..{cfg.codebook_size - 1}: "
                       f"found {int(data.min())}..{int(data.max())}")
    n = cfg.n_pes
    r = csc.indices.astype(np.int64)
    c = np.repeat(np.arange(cols, dtype=np.int64), np.diff(csc.indptr))
    pe = r % n
    lr = r // n
    # Order entries by (PE, column, local row); the CSC order is already (column, row), and
    # within one PE row order equals local-row order, so a stable sort by PE is enough.
    order = np.argsort(pe, kind="stable")
    pe, c, lr, data = pe[order], c[order], lr[order], data[order]
    # Previous local row in the same (PE, column) slice, -1 at the start of a slice.
    key = pe * cols + c
    prev = np.empty_like(lr)
    if lr.size:
        prev[0] = -1
        prev[1:] = np.where(key[1:] == key[:-1], lr[:-1], -1)
    gap = lr - prev - 1
    span = cfg.max_rel_index + 1
    npad = gap // span
    zreal = gap % span
    width = npad + 1  # stored entries per non-zero (padding + the real one)
    counts = np.bincount(key, weights=width, minlength=n * cols).astype(np.int64)
    counts = counts.reshape(n, cols)
    ptr = np.zeros((n, cols + 1), dtype=np.int64)
    np.cumsum(counts, axis=1, out=ptr[:, 1:])
    pe_start = np.searchsorted(pe, np.arange(n + 1))
    vdt = np.uint8 if cfg.weight_index_bits <= 8 else np.uint16
    v_list, z_list = [], []
    padding = np.zeros(n, dtype=np.int64)
    for k in range(n):
        a, b = pe_start[k], pe_start[k + 1]
        w = width[a:b]
        total = int(w.sum())
        v = np.zeros(total, dtype=vdt)
        z = np.full(total, cfg.max_rel_index, dtype=np.uint8)
        pos = np.cumsum(w) - 1  # each real entry comes after its padding entries
        v[pos] = data[a:b]
        z[pos] = zreal[a:b]
        v_list.append(v)
        z_list.append(z)
        padding[k] = int(npad[a:b].sum())
    return EncodedLayer(rows, cols, v_list, z_list, ptr, padding)


def decode_layer(enc: EncodedLayer, cfg: EIEConfig) -> sp.csc_matrix:
    """Rebuild the codebook-index matrix from per-PE streams (padding entries dropped)."""
    n = enc.n_pes
    rs, cs, vs = [], [], []
    for k in range(n):
        v = np.asarray(enc.v[k], dtype=np.int64)
        z = np.asarray(enc.z[k], dtype=np.int64)
        p = enc.ptr[k]
        if v.size == 0:
            continue
        col = np.repeat(np.arange(enc.cols, dtype=np.int64), np.diff(p))
        lr = local_rows(z, p)
        keep = v != 0
        rs.append(lr[keep] * n + k)
        cs.append(col[keep])
        vs.append(v[keep])
    if not rs:
        return sp.csc_matrix((enc.rows, enc.cols), dtype=np.int64)
    r, c, v = np.concatenate(rs), np.concatenate(cs), np.concatenate(vs)
    if r.size and r.max() >= enc.rows:
        raise EIEError(f"decoded row {int(r.max())} beyond the layer's {enc.rows} rows")
    return sp.csc_matrix((v, (r, c)), shape=(enc.rows, enc.cols), dtype=np.int64)


def local_rows(z, ptr):
    """Local row of every entry: r_0 = z_0, r_e = r_(e-1) + z_e + 1, restarting per column."""
    z = np.asarray(z, dtype=np.int64)
    step = z + 1
    csum = np.cumsum(step)
    # subtract the running sum at each column start so the count restarts there
    starts = np.asarray(ptr[:-1], dtype=np.int64)
    nonempty = starts < np.asarray(ptr[1:])
    base = np.zeros(z.size, dtype=np.int64)
    s = starts[nonempty]
    before = np.where(s > 0, csum[np.maximum(s - 1, 0)], 0)
    base[s] = before - np.concatenate([[0], before[:-1]])
    return csum - np.cumsum(base) - 1


def pack_words(v, z, cfg: EIEConfig) -> np.ndarray:
    """Pack entries into Spmat words: slot s at bits [s*eb, (s+1)*eb), entry = z << wib | v."""
    v = np.asarray(v, dtype=np.uint64)
    z = np.asarray(z, dtype=np.uint64)
    epw = cfg.entries_per_word
    n_words = -(-v.size // epw)
    e = np.zeros(n_words * epw, dtype=np.uint64)
    e[: v.size] = (z << np.uint64(cfg.weight_index_bits)) | v
    e = e.reshape(n_words, epw)
    shifts = (np.arange(epw, dtype=np.uint64) * np.uint64(cfg.entry_bits))
    return np.bitwise_or.reduce(e << shifts, axis=1) if n_words else np.zeros(0, np.uint64)


def unpack_words(words, n_entries: int, cfg: EIEConfig, start: int = 0):
    """Entries ``start .. start+n_entries-1`` of packed Spmat words, as (v, z) arrays."""
    words = np.asarray(words, dtype=np.uint64)
    epw = cfg.entries_per_word
    idx = np.arange(start, start + n_entries, dtype=np.int64)
    w = words[idx // epw]
    sh = ((idx % epw) * cfg.entry_bits).astype(np.uint64)
    e = (w >> sh) & np.uint64((1 << cfg.entry_bits) - 1)
    v = (e & np.uint64(cfg.codebook_size - 1)).astype(np.int64)
    z = (e >> np.uint64(cfg.weight_index_bits)).astype(np.int64)
    return v, z
