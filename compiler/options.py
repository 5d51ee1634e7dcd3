"""The compiler's options beyond the hardware configuration, and their one validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.quantize import METHODS
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from models.lstm import LSTMLayer


@dataclass
class Options:
    """Compiler options beyond the hardware configuration."""

    quantizer: str = "kmeans"
    bits: int | None = None  # codebook bits; default cfg.weight_index_bits
    balance: bool = False  # ESE load-balance-aware pruning
    permute: bool = True  # balance the PEs by a row permutation (compiler.permute)
    density: float | None = None  # override every layer's target weight density
    # trained quantization (compiler.train): per layer (index matrix, centroids) given as is;
    # the prune and share steps take them unchanged
    shared: list | None = None


def check_options(opts: Options | None, cfg: EIEConfig, net=None) -> int:
    """Validate ``opts`` for ``cfg`` (and, given ``net``, :attr:`Options.shared` against it)
    before any work is done; returns the codebook bits.

    Raises
    ------
    EIEError
        Bits out of 1..8 or wider than the config's weight index, an unknown quantizer, a
        density outside (0, 1], trained codebooks that do not fit the network, or an LSTM
        layer in the network (not encoded yet).
    """
    opts = opts or Options()
    bits = cfg.weight_index_bits if opts.bits is None else opts.bits
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise EIEError(f"codebook bits must be in 1..8, got {bits!r}")
    if bits > cfg.weight_index_bits:
        raise EIEError(f"codebook bits {bits} exceed the weight index of config {cfg.name!r} "
                       f"(weight_index_bits={cfg.weight_index_bits})")
    if opts.quantizer not in METHODS:
        raise EIEError(f"unknown quantizer {opts.quantizer!r}; choose from {', '.join(METHODS)}")
    if opts.density is not None and not (np.isfinite(opts.density) and 0 < opts.density <= 1):
        raise EIEError(f"density must be in (0, 1], got {opts.density}")
    for layer in [] if net is None else net.layers:
        if isinstance(layer, LSTMLayer):
            raise EIEError(f"{net.name}: layer {layer.name} is an LSTM; the compiler does not "
                           f"encode LSTM layers yet (ESE, issue 12)")
    if opts.shared is not None and net is not None:
        check_shared(opts.shared, net, bits)
    return int(bits)


def check_shared(shared, net, bits: int) -> None:
    """Validate :attr:`Options.shared` against the network and the codebook size."""
    if len(shared) != len(net.layers):
        raise EIEError(f"{len(shared)} shared layers given for {len(net.layers)} layers")
    for layer, (index, centroids) in zip(net.layers, shared):
        index, centroids = np.asarray(index), np.asarray(centroids, dtype=np.float64)
        if index.shape != np.asarray(layer.W).shape:
            raise EIEError(f"{layer.name}: shared index matrix has shape {index.shape}, "
                           f"expected {np.asarray(layer.W).shape}")
        if centroids.shape != (1 << bits,) or centroids[0] != 0:
            raise EIEError(f"{layer.name}: codebook must have {1 << bits} entries with entry 0 "
                           f"= 0, got {centroids.shape[0]} entries")
        if not np.all(np.isfinite(centroids)):
            raise EIEError(f"{layer.name}: codebook contains NaN or Inf")
        if not np.issubdtype(index.dtype, np.integer) or index.min() < 0 or \
                index.max() >= centroids.size:
            raise EIEError(f"{layer.name}: codebook indices must be integers in "
                           f"0..{centroids.size - 1}")
        if not index.any():
            raise EIEError(f"{layer.name}: every weight is pruned")
