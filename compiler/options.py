"""The compiler's options beyond the hardware configuration, and their one validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.quantize import METHODS
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from compiler.lower import check_lstm_shared
from models.lstm import LSTMLayer


@dataclass
class Options:
    """Compiler options beyond the hardware configuration."""

    quantizer: str = "kmeans"
    bits: int | None = None  # codebook bits; default cfg.weight_index_bits
    balance: bool = False  # ESE load-balance-aware pruning
    permute: bool = True  # balance the PEs by a row permutation (compiler.permute)
    # padding-aware selection (compiler.prune.pad_aware) in the plain interleave: the rows are
    # then not permuted (a permutation would reopen the gaps it closed)
    pad_aware: bool = False
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
        density outside (0, 1], or trained codebooks that do not fit the network.
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
    if opts.shared is not None and net is not None:
        check_shared(opts.shared, net, bits)
    return int(bits)


def lstm_rtl_message(model: str, layer: str, command: str) -> str:
    """The one line of a command that does not take LSTMs yet (report, sweep) given one."""
    return (f"{model}: layer {layer} is an LSTM, and {command} does not take LSTMs yet (ESE "
            f"part 2, issue 13); make compile, make compress, make cycles MODEL={model} (the "
            f"cycle model of the ESE schedule) and, for a network of one LSTM layer, make sim "
            f"can")


def refuse_lstm_rtl(net, command: str) -> None:
    """The RTL of LSTM layers is ESE part 2 (issue 13): ``command`` refuses a network with one
    (:func:`lstm_rtl_message`)."""
    for layer in net.layers:
        if isinstance(layer, LSTMLayer):
            raise EIEError(lstm_rtl_message(net.name, layer.name, command))


def _shared_matrices(shared, net) -> list:
    """(name, expected shape, index, centroids) of every trained codebook in ``shared``."""
    out = []
    for layer, entry in zip(net.layers, shared):
        if isinstance(layer, LSTMLayer):
            out += [(f"{layer.name}.{part}", shape, index, cb)
                    for part, shape, index, cb in check_lstm_shared(entry, layer)]
            continue
        index, centroids = entry
        out.append((layer.name, np.asarray(layer.W).shape, index, centroids))
    return out


def check_shared(shared, net, bits: int) -> None:
    """Validate :attr:`Options.shared` against the network and the codebook size (an LSTM
    layer's entry: :func:`compiler.lower.check_lstm_shared`)."""
    if len(shared) != len(net.layers):
        raise EIEError(f"{len(shared)} shared layers given for {len(net.layers)} layers")
    for name, shape, index, centroids in _shared_matrices(shared, net):
        index, centroids = np.asarray(index), np.asarray(centroids, dtype=np.float64)
        if index.shape != tuple(shape):
            raise EIEError(f"{name}: shared index matrix has shape {index.shape}, "
                           f"expected {tuple(shape)}")
        if centroids.shape != (1 << bits,) or centroids[0] != 0:
            raise EIEError(f"{name}: codebook must have {1 << bits} entries with entry 0 "
                           f"= 0, got {centroids.shape[0]} entries")
        if not np.all(np.isfinite(centroids)):
            raise EIEError(f"{name}: codebook contains NaN or Inf")
        if not np.issubdtype(index.dtype, np.integer) or index.min() < 0 or \
                index.max() >= centroids.size:
            raise EIEError(f"{name}: codebook indices must be integers in "
                           f"0..{centroids.size - 1}")
        if not index.any():
            raise EIEError(f"{name}: every weight is pruned")
