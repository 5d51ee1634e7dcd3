"""Random configurations across the space :class:`hw.arch.config.EIEConfig` allows.

A run draws a small pool of configurations (``pool``, 20 by default) so each Verilator build
is reused by many cases.  Every field of the configuration object is drawn over its range (the
ranges below; the object itself validates them): PEs 1-16, queue depth 1-16, weight-index bits
1-8, relative-index bits 2-6, activation, codebook and accumulator widths and fractions, every
rounding mode, saturation on and off, small and odd memory depths (so layers go into Spmat and
pointer segments, and output and column batches), a destination register file smaller than the
activation memories (output batching, as the ``eie`` preset has it), one to eight descriptor
slots, and with ``lstm`` the LSTM hardware with its table and cell-state fields.

:data:`FIELDS` are the fields the coverage table of the summary reports.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hw.arch.config import ROUNDING_MODES, EIEConfig

#: the configuration fields the farm draws and reports coverage of (every field of EIEConfig
#: but ``name``, which is the pool's label)
FIELDS = tuple(f.name for f in dataclasses.fields(EIEConfig) if f.name != "name")
#: fields the hardware admits one value of, and why (the farm holds them there)
FIXED = {"ew_cycles_per_cell": "the element-wise unit reads one gate pre-activation per cycle",
         "lut_interp": "the element-wise unit looks tables up without interpolation"}


def random_config(rng: np.random.Generator, name: str, lstm: bool = False) -> EIEConfig:
    """One random valid configuration (module docstring); ``lstm``: with the LSTM hardware."""
    pick = rng.integers
    n_pes = int(pick(1, 17))
    wi = int(pick(1, 9))
    ri = int(pick(2, 7))
    entry = wi + ri
    act_bits = int(pick(4, 17))
    act_frac = int(pick(0, act_bits))
    weight_bits = int(pick(4, 17))
    acc_bits = int(pick(act_bits + 8, min(56, act_bits + 24) + 1))
    word = int(rng.choice([entry, 2 * entry, 32, 64, int(pick(entry, 65))]))
    word = max(entry, min(64, word))
    act_depth = int(pick(6, 49))
    acc_depth = None
    if rng.random() < 0.4:  # a destination register file smaller than the activation memory
        acc_depth = int(pick(2, act_depth + 1))
    if lstm:
        acc_depth = 2 * int(pick(4, max(5, act_depth // 2) + 1))
        act_depth = max(act_depth, acc_depth)
    frac_hi = min(acc_bits - 1, 30)
    return EIEConfig(
        name=name, n_pes=n_pes, queue_depth=int(pick(1, 17)), weight_index_bits=wi,
        rel_index_bits=ri, act_bits=act_bits, act_frac=act_frac, weight_bits=weight_bits,
        weight_frac_max=int(pick(min(max(weight_bits - 1, 1), frac_hi), frac_hi + 1)),
        acc_bits=acc_bits, rounding=str(rng.choice(ROUNDING_MODES)),
        saturate=bool(rng.random() < 0.7), spmat_word_bits=word,
        spmat_depth=int(pick(24, 256)), ptr_depth=2 * int(pick(6, 80)), act_depth=act_depth,
        acc_depth=acc_depth, bias_depth=int(pick(48, 160)),
        # an LSTM program needs its two or three passes in slots (and FC layers after them)
        max_layers=int(pick(3 if lstm else 1, 9)),
        clock_mhz=float(rng.choice([100.0, 200.0, 800.0])),
        lut_points=int(2 ** pick(5, 12)) if lstm else 2048,
        lut_range_log2=int(pick(2, 7)) if lstm else 6,
        cell_bits=(None if rng.random() < 0.5 else int(pick(act_bits, 33))) if lstm else None,
        ew_latency=int(pick(8, 13)) if lstm else 8,
        channels=int(rng.choice([1, 1, 2, 32])), lstm=lstm)


def config_pool(seed: int, size: int, lstm_share: float = 0.15) -> list[EIEConfig]:
    """``size`` random configurations (names ``r<seed>-<k>``), a ``lstm_share`` of them with
    the LSTM hardware (at least one when ``size`` >= 4)."""
    rng = np.random.default_rng([seed, 0x5EED])
    n_lstm = max(1 if size >= 4 else 0, int(round(size * lstm_share)))
    return [random_config(rng, f"r{seed}-{k}", lstm=k >= size - n_lstm) for k in range(size)]


def coverage(configs: list[EIEConfig]) -> dict:
    """Per field of :data:`FIELDS`, the sorted distinct values the configurations exercised."""
    out = {}
    for f in FIELDS:
        vals = {getattr(c, f) for c in configs}
        out[f] = sorted(vals, key=lambda v: (v is None, str(type(v)), v if v is not None else 0))
    return out


__all__ = ["FIELDS", "config_pool", "coverage", "random_config"]
