"""The row interleave: row ``i`` of every layer, and element ``i`` of every vector, on PE
``i mod N`` at local address ``i // N`` (EIE section 3; docs/architecture.md section 1)."""

from __future__ import annotations

import numpy as np


def rows_local(length: int, n_pes: int) -> int:
    """Local rows (or vector words) a PE holds of a length-``length`` vector: ``ceil(length/N)``."""
    return -(-int(length) // n_pes)


def element_home(elements, n_pes: int) -> tuple[np.ndarray, np.ndarray]:
    """The PE and the local word of each of ``elements`` (indices into a vector)."""
    e = np.asarray(elements, dtype=np.int64)
    return e % n_pes, e // n_pes


def split_vector(x, n_pes: int) -> np.ndarray:
    """Interleave a vector over the PEs: ``result[k, m] = x[m*N + k]`` (0 past the end)."""
    x = np.asarray(x, dtype=np.int64)
    m = rows_local(x.size, n_pes)
    pad = np.zeros(m * n_pes, dtype=np.int64)
    pad[: x.size] = x
    return pad.reshape(m, n_pes).T.copy()


def join_vector(parts, length: int) -> np.ndarray:
    """Inverse of :func:`split_vector`: the first ``length`` elements of the interleave."""
    parts = np.asarray(parts, dtype=np.int64)
    return parts.T.reshape(-1)[:length].copy()
