"""Shared fixtures: small presets and seeded random sparse layers."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.config import PRESETS


@pytest.fixture
def tiny():
    return PRESETS["tiny"]


def random_index_matrix(rng, rows, cols, density, codebook_size):
    """Codebook-index matrix with roughly ``density`` non-zeros (indices 1..K-1)."""
    mask = rng.random((rows, cols)) < density
    return np.where(mask, rng.integers(1, codebook_size, (rows, cols)), 0)
