"""Command-line flags of the compiler's options, shared by ``python -m compiler`` and
``python -m sim``."""

from __future__ import annotations

import argparse

from compiler.pipeline import Options
from compiler.quantize import METHODS


def add_options(p: argparse.ArgumentParser) -> None:
    """The compiler's :class:`Options` as command-line flags (shared with ``python -m sim``)."""
    p.add_argument("--quantizer", default="kmeans", choices=METHODS,
                   help="weight-sharing method (default kmeans, Deep Compression)")
    p.add_argument("--bits", type=int, default=None,
                   help="codebook bits (default: the config's weight_index_bits)")
    p.add_argument("--density", type=float, default=None,
                   help="override every layer's target weight density")
    p.add_argument("--balance", action="store_true",
                   help="ESE load-balance-aware pruning (equal non-zeros per PE per column)")


def options_from_args(args) -> Options:
    """:class:`Options` from the flags of :func:`add_options`."""
    return Options(quantizer=args.quantizer, bits=args.bits, balance=args.balance,
                   density=args.density)
