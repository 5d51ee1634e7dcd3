"""Account pass: storage of a layer at each stage of Deep Compression.

Stages, in bits:

* ``dense_32bit`` — ``rows * cols`` 32-bit floats.
* ``pruned`` — CSC with 32-bit values: ``nnz * 32`` + relative indices
  (``entries * rel_index_bits``, padding entries included, as their zero value is stored too:
  ``+ padding * 32``) + column pointers (``n_pointers * ptr_bits``).
* ``pruned_quantized`` — what EIE stores: ``entries * (weight_index_bits + rel_index_bits)`` +
  pointers + the codebook (``codebook_size * codebook_bits``).
* ``huffman`` — Deep Compression stage 3: weight indices and relative indices each Huffman-coded
  with a code built from their actual symbol counts (payload bits only) + pointers + codebook.

Every stage also has a ``*_ratio`` = bits / dense bits (Deep Compression's "compression rate").
"""

from __future__ import annotations

import heapq

import numpy as np


def huffman_code_lengths(counts) -> np.ndarray:
    """Code length of every symbol of a Huffman code built from ``counts``.

    Zero-count symbols get length 0; a single used symbol gets length 1.  Ties are broken by
    symbol order, so the result is deterministic.
    """
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(counts.size, dtype=np.int64)
    used = [i for i in range(counts.size) if counts[i] > 0]
    if not used:
        return lengths
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    # heap of (weight, tie-break, symbols in this subtree)
    heap = [(int(counts[i]), i, [i]) for i in used]
    heapq.heapify(heap)
    tick = counts.size
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, tick, s1 + s2))
        tick += 1
    return lengths


def huffman_bits(symbols, n_symbols: int) -> int:
    """Total payload bits of ``symbols`` (ints in ``0 .. n_symbols-1``) Huffman-coded."""
    counts = np.bincount(np.asarray(symbols, dtype=np.int64).ravel(), minlength=n_symbols)
    return int(np.dot(counts, huffman_code_lengths(counts)))


def storage_breakdown(*, rows: int, cols: int, nnz: int, n_entries: int,
                      weight_index_bits: int, rel_index_bits: int, ptr_bits: int,
                      n_pointers: int, codebook_size: int, codebook_bits: int,
                      v_symbols, z_symbols) -> dict:
    """Storage of one layer at each compression stage (see the module docstring).

    Returns
    -------
    dict
        ``dense_32bit``, ``pruned``, ``pruned_quantized``, ``huffman`` (bits, ints) and the
        same keys with ``_ratio`` (fraction of dense), plus ``huffman_weight_index_bits`` and
        ``huffman_rel_index_bits`` (the two coded streams alone).
    """
    padding = n_entries - nnz
    pointers = n_pointers * ptr_bits
    codebook = codebook_size * codebook_bits
    dense = rows * cols * 32
    pruned = nnz * 32 + padding * 32 + n_entries * rel_index_bits + pointers
    quant = n_entries * (weight_index_bits + rel_index_bits) + pointers + codebook
    hv = huffman_bits(v_symbols, 1 << weight_index_bits)
    hz = huffman_bits(z_symbols, 1 << rel_index_bits)
    huff = hv + hz + pointers + codebook
    out = {"dense_32bit": dense, "pruned": pruned, "pruned_quantized": quant, "huffman": huff,
           "huffman_weight_index_bits": hv, "huffman_rel_index_bits": hz}
    for key in ("pruned", "pruned_quantized", "huffman"):
        out[f"{key}_ratio"] = out[key] / dense
    return out
