"""The LSTM element-wise arithmetic of hw/arch/fixedpoint.py: the sigmoid and tanh lookup
tables against their definition, and the element-wise multiply, checked by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import ew_mul, lstm_cell, lut_lookup, lut_table, to_fixed

CFG = PRESETS["eie64"]  # Q8.8 activations, 2,048 points over [-64, 64): step 1/16
ALL = np.arange(CFG.act_min, CFG.act_max + 1)  # every 16-bit activation


def exact(fn, x):
    v = x / 256.0
    return 256.0 * (1 / (1 + np.exp(-v)) if fn == "sigmoid" else np.tanh(v))


def test_table_geometry_by_hand():
    # index = (x + 64 * 256) >> 4: x = 0 is index 1024, x = -16384 (-64.0) index 0
    assert CFG.lut_shift == 4
    t = lut_table("tanh", CFG)
    assert t.size == 2048
    # nearest-point tables hold the middle of each interval: index 1024 is tanh(1/32)
    assert t[1024] == round(np.tanh(1 / 32) * 256) == 8
    assert t[1023] == -8 and t[0] == -256 and t[-1] == 256
    s = lut_table("sigmoid", CFG)
    assert s[1024] == 130 and s[1023] == 126  # 0.5078 and 0.4922 in Q8.8
    ti = lut_table("tanh", CFG.replace(lut_interp=True))
    assert ti[1024] == 0 and ti[1040] == round(np.tanh(1.0) * 256) == 195  # x = 0 and 1.0


@pytest.mark.parametrize("fn, slope", [("sigmoid", 0.25), ("tanh", 1.0)])
def test_lookup_against_the_definition_on_every_input(fn, slope):
    y = lut_lookup(ALL, lut_table(fn, CFG), CFG)
    # nearest point: half an interval (1/32) at the largest slope, plus half an LSB of rounding
    bound = slope * (1 / 32) * 256 + 0.5
    assert np.max(np.abs(y - exact(fn, ALL))) <= bound
    assert np.all(np.diff(y) >= 0)  # monotonic
    # beyond the table's range the end points hold
    assert lut_lookup([CFG.act_min, CFG.act_max], lut_table(fn, CFG), CFG).tolist() == \
        ([0, 256] if fn == "sigmoid" else [-256, 256])


@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_interpolation_is_closer(fn):
    cfg = CFG.replace(lut_interp=True)
    y = lut_lookup(ALL, lut_table(fn, cfg), cfg)
    # linear interpolation over 1/16: curvature error below 1/8 LSB, plus two roundings
    assert np.max(np.abs(y - exact(fn, ALL))) <= 1.0
    assert np.all(np.diff(y) >= 0)


def test_narrow_activations_keep_every_table_field_valid():
    """FC-only configurations are never refused for their LSTM defaults: Q4.4 activations with
    2,048 points over [-64, 64) give one point per activation (shift 0), Q6.2 more points than
    activations (a left shift); the lookup still clamps and follows the function."""
    for changes in ({"act_bits": 8, "act_frac": 4, "acc_bits": 20, "weight_frac_max": 12},
                    {"act_bits": 8, "act_frac": 2, "acc_bits": 20, "weight_frac_max": 12},
                    {"act_bits": 24, "act_frac": 8, "acc_bits": 40}):
        cfg = PRESETS["tiny"].replace(**changes)
        assert cfg.cell_width == cfg.act_bits
        x = np.arange(cfg.act_min, cfg.act_max + 1, max(1, (cfg.act_max - cfg.act_min) // 4096))
        y = lut_lookup(x, lut_table("tanh", cfg), cfg)
        scale = 2.0 ** cfg.act_frac
        step = 128 / cfg.lut_points
        bound = max(step / 2, 1 / scale) * scale + 0.5
        assert np.max(np.abs(y - np.tanh(x / scale) * scale)) <= bound + 1
        assert np.all(np.diff(y) >= 0)


def test_element_wise_multiply_by_hand():
    # Q8.8: 1.0 x 1.0 = 1.0; 0.5 x 0.0117 (3 LSB) = 1.5 LSB -> 2 (half up); saturation
    assert ew_mul(256, 256, CFG) == 256
    assert ew_mul(128, 3, CFG) == 2
    assert ew_mul(128, 3, CFG.replace(rounding="truncate")) == 1
    assert ew_mul(-128, 3, CFG) == -1  # -1.5 -> -1 (ties toward +inf)
    assert ew_mul(32767, 32767, CFG) == 32767
    assert ew_mul(-32768, 32767, CFG) == -32768
    # the cell state may be wider: 100.0 x 2.0 = 200.0 does not fit Q8.8, fits 24 bits
    assert ew_mul(25600, 512, CFG, bits=24) == 51200
    assert ew_mul(25600, 512, CFG) == 32767


@pytest.mark.parametrize("field, value, msg", [
    ("lut_points", 1000, "lut_points must be a power of two in 2..65536, got 1000"),
    ("lut_range_log2", 17, "lut_range_log2 must be in 0..16, got 17"),
    ("cell_bits", 8, "cell_bits must be an integer in act_bits..32 (16..32), got 8"),
    ("lut_interp", 1, "lut_interp must be true or false, got 1"),
])
def test_lstm_fields_validated(field, value, msg):
    with pytest.raises(EIEError, match=re.escape(msg)):
        CFG.replace(**{field: value})
    with pytest.raises(EIEError, match="unknown activation table 'relu'"):
        lut_table("relu", CFG)


def test_lstm_cell_by_hand():
    """Q8.8: pre-activations 0 everywhere, c' = 1.0, no peepholes: i = f = o = sigma(0) and
    g = tanh(0) from the nearest-point tables (130 and 8: the middle of interval 1024), so
    c = f . c' + i . g = 130 + 4 = 134; tanh(c) is point (134 + 16384) >> 4 = 1032, the
    middle of [0.5, 0.5625): round(tanh(0.53125) x 256) = 125; m = (130 x 125 + 128) >> 8 = 63."""
    c, m = lstm_cell(np.zeros((4, 1)), np.array([256]), None, CFG)
    assert lut_table("sigmoid", CFG)[1024] == 130 and lut_table("tanh", CFG)[1024] == 8
    assert lut_table("tanh", CFG)[1032] == 125
    assert c.tolist() == [134] and m.tolist() == [63]


@pytest.mark.parametrize("peep, interp", [(False, False), (True, False), (True, True)])
def test_lstm_cell_follows_the_float_cell(peep, interp):
    """Random cells in range: the fixed-point step within a few LSBs of the float LSTMP step."""
    cfg = CFG.replace(lut_interp=interp, cell_bits=20)
    rng = np.random.default_rng(3)
    pre = rng.uniform(-4, 4, (4, 500))
    c0 = rng.uniform(-3, 3, 500)
    w = rng.uniform(-1, 1, (3, 500)) if peep else np.zeros((3, 500))
    q = lambda v: to_fixed(v, 8, 16)  # noqa: E731
    c, m = lstm_cell(q(pre), to_fixed(c0, 8, 20), q(w) if peep else None, cfg)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f = sig(pre[0] + w[0] * c0), sig(pre[1] + w[1] * c0)
    cf = f * c0 + i * np.tanh(pre[2])
    mf = sig(pre[3] + w[2] * cf) * np.tanh(cf)
    # nearest-point tables: tanh up to 1/32 off, sigmoid 1/128; a few roundings on top
    tol = 0.02 if interp else 0.06
    assert np.max(np.abs(c / 256 - cf)) < tol
    assert np.max(np.abs(m / 256 - mf)) < tol


def test_lstm_cell_refuses_mismatched_shapes():
    with pytest.raises(EIEError, match="pre-activations must be"):
        lstm_cell(np.zeros((3, 2)), np.zeros(2), None, CFG)
