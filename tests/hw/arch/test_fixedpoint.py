"""Fixed-point rules: rounding modes, wrap, saturation, codebook fraction choice."""

import numpy as np
import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import (choose_w_frac, finalize, from_unsigned, round_shift, saturate,
                                 to_fixed, to_unsigned, wrap)


@pytest.mark.parametrize("x,expect", [
    # value / 4 with shift 2: ties at .5
    (6, {"half_up": 2, "truncate": 1, "half_even": 2}),    # 1.5
    (10, {"half_up": 3, "truncate": 2, "half_even": 2}),   # 2.5
    (-6, {"half_up": -1, "truncate": -2, "half_even": -2}),  # -1.5
    (-10, {"half_up": -2, "truncate": -3, "half_even": -2}),  # -2.5
    (7, {"half_up": 2, "truncate": 1, "half_even": 2}),    # 1.75
    (-7, {"half_up": -2, "truncate": -2, "half_even": -2}),  # -1.75
])
def test_round_shift_modes(x, expect):
    for mode, want in expect.items():
        assert int(round_shift(x, 2, mode)) == want, mode


def test_round_shift_zero_is_identity():
    assert round_shift(np.array([-3, 5]), 0, "half_up").tolist() == [-3, 5]


def test_wrap_and_saturate():
    assert wrap(np.array([127, 128, -129, 255]), 8).tolist() == [127, -128, 127, -1]
    assert saturate(np.array([40000, -40000, 5]), 16).tolist() == [32767, -32768, 5]
    assert from_unsigned(to_unsigned(np.array([-1, -32768, 7]), 16), 16).tolist() == \
        [-1, -32768, 7]


def test_finalize_order_of_operations():
    cfg = PRESETS["tiny"]
    # acc wraps at 32 bits first, then shift 4 (half up), bias, saturate, ReLU
    acc = np.array([(1 << 31) + 16, 40, -40, 10**9])
    y = finalize(acc, 4, np.array([0, 1, 0, 0]), False, cfg)
    assert y.tolist() == [-32768, 4, -2, 32767]
    assert finalize(acc, 4, np.zeros(4), True, cfg).tolist() == [0, 3, 0, 32767]
    nosat = cfg.replace(saturate=False)
    assert finalize(np.array([32768 << 4]), 4, np.zeros(1), False, nosat).tolist() == [-32768]


def test_to_fixed_rounds_and_rejects_nan():
    assert to_fixed([0.5, -0.5, 1.5, 1000.0], 1, 8).tolist() == [1, -1, 3, 127]
    with pytest.raises(EIEError, match="NaN or Inf"):
        to_fixed([np.nan], 8, 16)


def test_choose_w_frac_uses_the_whole_range():
    cfg = PRESETS["eie64"]
    assert choose_w_frac([0.0, 0.25, -0.9], cfg) == 15  # 0.9 * 2^15 < 32767
    assert choose_w_frac([0.0, 3.0], cfg) == 13
    assert choose_w_frac([0.0, 1e-9], cfg) == cfg.weight_frac_max
    with pytest.raises(EIEError, match="does not fit 16-bit"):
        choose_w_frac([1e6], cfg)
