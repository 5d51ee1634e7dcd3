"""Fixed-point arithmetic of the array, defined once.

The golden model, the hardware generator's tests and the compiler use these functions; the
hardware implements exactly them.  All integer functions take and return ``np.int64`` arrays (or
Python ints) and are exact: the configuration limits widths so that no int64 overflows.

Per layer, with ``s`` = the layer's codebook fraction ``w_frac``::

    product = w * a                                   (exact, weight_bits + act_bits wide)
    acc     = wrap(sum of products, acc_bits)         (two's complement, order-independent)
    r       = round_shift(acc, s, rounding)           (arithmetic shift right with rounding)
    y       = saturate(r + bias, act_bits)            (or wrap when saturate is false)
    y       = max(y, 0) if relu

LSTM element-wise arithmetic (:func:`lut_table`, :func:`lut_lookup`, :func:`ew_mul`), all in
the activation format (``act_frac`` fraction bits) unless said otherwise::

    sigma(x), tanh(x) = table lookup: index = (x + R * 2**act_frac) >> lut_shift, clamped to
                        the table (R = 2**lut_range_log2); with lut_interp the remainder
                        interpolates linearly to the next point (rounded with cfg.rounding)
    a . b             = saturate(round_shift(a * b, act_frac), bits)  (element-wise multiply)

One LSTMP cell step (:func:`lstm_cell`), from the gate pre-activations the sparse product gave
(``pre_q = finalize(acc_q, w_frac, b_q, relu=False)``, the FC write-back rule, for the gates
``q`` = i, f, g, o), the previous cell state ``c'`` (``cell_width`` bits) and the peepholes::

    i = sigma(sat(pre_i + w_ic . c'))          f = sigma(sat(pre_f + w_fc . c'))
    g = tanh(pre_g)
    c = sat_cell(f . c' + i . g)               (each product rounded, then the sum saturated)
    o = sigma(sat(pre_o + w_oc . c))           (the output peephole sees the new c)
    m = o . tanh(c)

``sat`` saturates to ``act_bits``, ``sat_cell`` to ``cell_width``; without peepholes their terms
are 0.  The projection ``y = W_ym m`` is a second sparse product with the FC rule.
"""

from __future__ import annotations

import numpy as np

from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError


def wrap(x, bits: int):
    """Two's-complement wrap of integers to ``bits`` bits (signed result)."""
    x = np.asarray(x, dtype=np.int64)
    if bits >= 64:
        return x
    half = np.int64(1) << np.int64(bits - 1)
    full = np.int64(1) << np.int64(bits)
    return ((x + half) & (full - 1)) - half


def saturate(x, bits: int):
    """Clamp signed integers to ``bits`` bits."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def round_shift(x, shift: int, rounding: str):
    """Arithmetic right shift by ``shift`` with the configured rounding.

    ``half_up``: add half an LSB then floor (ties go towards +inf); ``truncate``: floor;
    ``half_even``: ties go to the even result.
    """
    x = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return x
    s = np.int64(shift)
    if rounding == "truncate":
        return x >> s
    half = np.int64(1) << (s - 1)
    if rounding == "half_up":
        return (x + half) >> s
    if rounding == "half_even":
        q = x >> s
        rem = x & ((np.int64(1) << s) - 1)
        up = (rem > half) | ((rem == half) & ((q & 1) == 1))
        return q + up.astype(np.int64)
    raise EIEError(f"unknown rounding mode {rounding!r}")


def finalize(acc, shift: int, bias, relu: bool, cfg: EIEConfig):
    """Turn wrapped accumulators into next-layer activations (the ActRW write-back)."""
    r = round_shift(wrap(acc, cfg.acc_bits), shift, cfg.rounding)
    y = r + np.asarray(bias, dtype=np.int64)
    y = saturate(y, cfg.act_bits) if cfg.saturate else wrap(y, cfg.act_bits)
    if relu:
        y = np.maximum(y, 0)
    return y


def to_fixed(x, frac: int, bits: int):
    """Float to signed fixed point: round to nearest (ties to even), saturate to ``bits``."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise EIEError("cannot convert NaN or Inf to fixed point")
    return saturate(np.rint(x * (2.0 ** frac)).astype(np.int64), bits)


def to_float(x, frac: int):
    """Signed fixed point to float64."""
    return np.asarray(x, dtype=np.float64) / (2.0 ** frac)


def choose_w_frac(values, cfg: EIEConfig) -> int:
    """Largest codebook fraction (<= weight_frac_max) at which every value fits weight_bits."""
    m = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if not np.isfinite(m):
        raise EIEError("codebook has NaN or Inf values")
    for frac in range(cfg.weight_frac_max, -1, -1):
        if np.rint(m * 2.0 ** frac) <= cfg.weight_max:
            return frac
    raise EIEError(f"weight magnitude {m:g} does not fit {cfg.weight_bits}-bit fixed point "
                   f"even with 0 fraction bits")


def to_unsigned(x, bits: int):
    """Two's-complement bit pattern of signed ints (for memory images)."""
    x = np.asarray(x, dtype=np.int64)
    return (x & ((np.int64(1) << np.int64(bits)) - 1)).astype(np.uint64)


def from_unsigned(x, bits: int):
    """Signed value of ``bits``-bit two's-complement patterns."""
    x = np.asarray(x, dtype=np.uint64).astype(np.int64)
    return wrap(x, bits)


#: the element-wise functions of an LSTM cell that have tables
LUT_FUNCTIONS = ("sigmoid", "tanh")


def lut_table(fn: str, cfg: EIEConfig) -> np.ndarray:
    """The ``cfg.lut_points`` table of ``fn`` (``sigmoid`` or ``tanh``) in the activation format.

    Point ``i`` holds ``fn`` at ``x_i = -R + i * step`` (``step = 2R / lut_points``) with
    ``lut_interp`` (the left end of each interval, so that interpolation is exact at the
    points), else at the middle of interval ``i`` (``x_i + step / 2``, the nearest-point
    error halved).  Values are rounded to nearest and saturated to ``act_bits``.
    """
    if fn not in LUT_FUNCTIONS:
        raise EIEError(f"unknown activation table {fn!r}; choose from {', '.join(LUT_FUNCTIONS)}")
    r = float(1 << cfg.lut_range_log2)
    step = 2 * r / cfg.lut_points
    x = -r + step * np.arange(cfg.lut_points) + (0.0 if cfg.lut_interp else step / 2)
    y = 1.0 / (1.0 + np.exp(-x)) if fn == "sigmoid" else np.tanh(x)
    return to_fixed(y, cfg.act_frac, cfg.act_bits)


def lut_lookup(x, table: np.ndarray, cfg: EIEConfig):
    """``table`` (:func:`lut_table`) applied to activations ``x`` (module docstring)."""
    x = np.asarray(x, dtype=np.int64)
    off = x + (np.int64(1) << np.int64(cfg.lut_range_log2 + cfg.act_frac))
    last = cfg.lut_points - 1
    if cfg.lut_shift <= 0:  # at most one activation per point: no remainder to interpolate
        idx = np.clip(off << np.int64(-cfg.lut_shift), 0, last)
        return np.asarray(table, dtype=np.int64)[idx]
    idx = np.clip(off >> np.int64(cfg.lut_shift), 0, last)
    y = np.asarray(table, dtype=np.int64)[idx]
    if not cfg.lut_interp:
        return y
    # the remainder below the index, only inside the table (the ends clamp)
    inside = (off >= 0) & ((off >> np.int64(cfg.lut_shift)) < last)
    rem = np.where(inside, off & ((np.int64(1) << np.int64(cfg.lut_shift)) - 1), 0)
    nxt = np.asarray(table, dtype=np.int64)[np.minimum(idx + 1, last)]
    return y + round_shift((nxt - y) * rem, cfg.lut_shift, cfg.rounding)


def ew_mul(a, b, cfg: EIEConfig, bits: int | None = None):
    """Element-wise product of two activation-format values: the exact product, rounded back
    to ``act_frac`` fraction bits (``cfg.rounding``) and saturated to ``bits`` (default
    ``act_bits``; ``cfg.cell_width`` for the cell state)."""
    p = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)
    return saturate(round_shift(p, cfg.act_frac, cfg.rounding),
                    cfg.act_bits if bits is None else bits)


def lstm_cell(pre, c_prev, peep, cfg: EIEConfig, tables: dict | None = None):
    """One LSTMP cell step in fixed point (module docstring).

    Parameters
    ----------
    pre : int array (4, ...)
        Gate pre-activations i, f, g, o in the activation format.
    c_prev : int array (...)
        The previous cell state (``cfg.cell_width`` bits, ``act_frac`` fraction bits).
    peep : int array (3, ...) or None
        Peepholes w_ic, w_fc, w_oc in the activation format, or None.
    cfg : EIEConfig
    tables : dict, optional
        ``{"sigmoid": ..., "tanh": ...}`` from :func:`lut_table` (built when not given).

    Returns
    -------
    (c, m) : int arrays
        The new cell state and the cell output ``m = o . tanh(c)``.
    """
    t = tables or {fn: lut_table(fn, cfg) for fn in LUT_FUNCTIONS}
    pre = np.asarray(pre, dtype=np.int64)
    c_prev = np.asarray(c_prev, dtype=np.int64)
    if pre.shape[0] != 4 or pre.shape[1:] != c_prev.shape:
        raise EIEError(f"lstm_cell: pre-activations must be (4, {c_prev.shape}), got "
                       f"{pre.shape}")
    zero = np.zeros_like(c_prev)
    w = [zero] * 3 if peep is None else list(np.asarray(peep, dtype=np.int64))
    a = cfg.act_bits
    i = lut_lookup(saturate(pre[0] + ew_mul(w[0], c_prev, cfg), a), t["sigmoid"], cfg)
    f = lut_lookup(saturate(pre[1] + ew_mul(w[1], c_prev, cfg), a), t["sigmoid"], cfg)
    g = lut_lookup(pre[2], t["tanh"], cfg)
    wide = cfg.cell_width + 1  # each product fits; their sum saturates once
    c = saturate(ew_mul(f, c_prev, cfg, wide) + ew_mul(i, g, cfg, wide), cfg.cell_width)
    o = lut_lookup(saturate(pre[3] + ew_mul(w[2], c, cfg), a), t["sigmoid"], cfg)
    return c, ew_mul(o, lut_lookup(c, t["tanh"], cfg), cfg)
