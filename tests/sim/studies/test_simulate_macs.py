"""make sim's useful-product count comes from golden.npz's per-column non-zeros."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.errors import EIEError
from sim.studies.simulate import useful_macs


def test_useful_macs_counts_the_columns_of_non_zero_inputs():
    gold = {"nnz_col0": np.array([2, 3, 0, 5])}
    assert useful_macs(gold, 0, [1, 0, 7, -2]) == 2 + 0 + 5


def test_an_older_compile_is_asked_to_recompile():
    with pytest.raises(EIEError, match="recompile the model"):
        useful_macs({"out0": np.zeros(3)}, 0, [1, 2, 3])
