"""The compiler's options beyond the hardware configuration, and their one validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.quantize import METHODS
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from compiler.lower import check_accumulators, check_lstm_shared, round_up
from compiler.passes import check_shapes
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
    # the target weight density of every layer (one value), or of each (a list, one per
    # layer: parse_density); None: each layer's own (Layer.density, or for a pruned model its
    # own non-zeros)
    density: float | list | None = None
    # trained quantization (compiler.train): per layer (index matrix, centroids) given as is;
    # the prune and share steps take them unchanged
    shared: list | None = None


def parse_density(text) -> float | list | None:
    """``--density``'s value: None, one number for every layer (``"0.1"``) or one per layer,
    separated by commas (``"0.08,0.09,0.26"``); :func:`check_options` checks the values.

    Raises
    ------
    EIEError
        Something that is not numbers separated by commas.
    """
    if text is None or isinstance(text, (int, float, np.number)):
        return None if text is None else float(text)
    try:
        vals = [float(v) for v in str(text).split(",")]
    except ValueError:
        raise EIEError(f"--density must be one number, or one per layer separated by commas "
                       f"(0.08,0.09,0.26), got {text!r}") from None
    return vals[0] if len(vals) == 1 else vals


def density_values(density) -> list:
    """:attr:`Options.density` as a list (one value, or one per layer); [] for None."""
    if density is None:
        return []
    return list(density) if isinstance(density, (list, tuple, np.ndarray)) else [density]


def matrix_shapes(net, n_pes: int) -> list[tuple[str, int, int]]:
    """``(name, rows, cols)`` of every matrix layer the array runs (:func:`compiler.lower.lower`:
    an LSTM's gates ``[W_x | 0 | W_r]`` with its cells and ``x_t`` padded to ``n_pes``, and its
    projection), from the shapes alone."""
    out = []
    for layer in net.layers:
        if not isinstance(layer, LSTMLayer):
            out.append((layer.name, *np.shape(layer.W)))
            continue
        cells = round_up(layer.n_cells, n_pes)
        out.append((f"{layer.name}.gates", 4 * cells, round_up(layer.n_in, n_pes) + layer.n_rec))
        if layer.has_projection:
            out.append((f"{layer.name}.proj", int(np.shape(layer.W_ym)[0]), cells))
    return out


def check_fits(net, cfg: EIEConfig) -> None:
    """Refuse a network too big for ``cfg`` by its layers' shapes alone
    (:func:`compiler.passes.check_shapes`, the messages of the checks after encoding), so that
    the compiler says so before it prunes (:func:`compiler.runner.compile_steps`); an LSTM's
    accumulators first (:func:`compiler.lower.check_accumulators`), as the lowering checks
    them.  Not part of :func:`check_options`: the sweep enlarges the memories of its
    configurations to fit."""
    for layer in net.layers:
        if isinstance(layer, LSTMLayer):
            check_accumulators(layer, cfg)
    check_shapes(matrix_shapes(net, cfg.n_pes), cfg)


def check_options(opts: Options | None, cfg: EIEConfig, net=None) -> int:
    """Validate ``opts`` for ``cfg`` (and, given ``net``, the densities and
    :attr:`Options.shared` against it) before any work is done; returns the codebook bits.

    Raises
    ------
    EIEError
        Bits out of 1..8 or wider than the config's weight index, an unknown quantizer, a
        density outside (0, 1] or densities that are neither one nor one per layer, or trained
        codebooks that do not fit the network.
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
    dens = density_values(opts.density)
    if opts.density is not None and not dens:
        raise EIEError("density: no value given (one for every layer, or one per layer)")
    for d in dens:
        if isinstance(d, bool) or not isinstance(d, (int, float, np.number)) or \
                not (np.isfinite(d) and 0 < d <= 1):
            raise EIEError(f"density must be in (0, 1], got {d}")
    if net is not None and len(dens) > 1 and len(dens) != len(net.layers):
        raise EIEError(f"{len(dens)} densities given for the {len(net.layers)} layers of "
                       f"{net.name}: give one per layer, or one for all")
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
