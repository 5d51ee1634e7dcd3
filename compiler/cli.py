"""Command-line flags shared by the commands: the model, configuration and seed
(:func:`add_model_args`) and the compiler's options (:func:`add_options`)."""

from __future__ import annotations

import argparse

from hw.arch.config import PRESETS
from compiler.options import Options, parse_density
from compiler.quantize import METHODS

MODEL_HELP = ("alexnet_fc, vgg_fc, neuraltalk, mlp_digits, or a .npz, .onnx, .pt, .pth or .pt2 "
              "file")


def add_model_args(p: argparse.ArgumentParser, *, seed: bool = True,
                   seed_help: str = "seed of the synthetic models") -> None:
    """``--model`` (required), ``--config`` (default eie64) and, with ``seed``, ``--seed``."""
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--config", default="eie64",
                   help=f"hardware preset ({', '.join(PRESETS)}) or a JSON config file "
                        "(default eie64)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help=f"{seed_help} (default 0)")


def add_options(p: argparse.ArgumentParser) -> None:
    """The compiler's :class:`Options` as command-line flags (shared with ``python -m sim``)."""
    p.add_argument("--quantizer", default="kmeans", choices=METHODS,
                   help="weight-sharing method (default kmeans, Deep Compression)")
    p.add_argument("--bits", type=int, default=None,
                   help="codebook bits (default: the config's weight_index_bits)")
    p.add_argument("--density", default=None,
                   help="target weight density of every layer (0.1), or of each, separated by "
                        "commas (0.08,0.09,0.26); default: each layer's own (a pruned model "
                        "keeps its mask; a zero weight is never kept)")
    p.add_argument("--balance", action="store_true",
                   help="ESE load-balance-aware pruning (equal non-zeros per PE per column)")
    p.add_argument("--pad-aware", action="store_true",
                   help="padding-aware pruning: within every PE's share of every column, swap "
                        "weights so that gaps needing padding entries close (the counts, and so "
                        "--balance's balance, stay; rows stay in the plain interleave)")
    p.add_argument("--no-permute", dest="permute", action="store_false",
                   help="EIE's plain interleave (row i on PE i mod N) instead of the row "
                        "permutation that balances the PEs (the outputs are the same)")


def options_from_args(args) -> Options:
    """:class:`Options` from the flags of :func:`add_options`."""
    return Options(quantizer=args.quantizer, bits=args.bits, balance=args.balance,
                   density=parse_density(args.density), permute=args.permute,
                   pad_aware=args.pad_aware)
