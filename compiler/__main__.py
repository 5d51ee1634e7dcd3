"""``python -m compiler``: compile a model into EIE memory images (``make compile``)."""

from __future__ import annotations

import argparse
import sys
import time

from compiler.cli import add_model_args, add_options, options_from_args
from compiler.manifest import load_manifest
from compiler.options import check_options
from compiler.output import check_out_dir
from hw.arch.config import load_config
from hw.arch.errors import ArgumentParser, cli_errors
from sim.flow.compile import ensure_compiled


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m compiler",
        description="Compile a pruned, weight-shared network into EIE interleaved CSC memory "
                    "images, a manifest and the golden model's outputs under "
                    "build/<model>/<config>/.")
    add_model_args(p)
    add_options(p)
    p.add_argument("--out", default=None,
                   help="output directory: new, empty or a previous compile's (default "
                        "build/<model>/<config>[+options])")
    p.add_argument("--recompile", action="store_true", help="compile even if up to date")
    p.add_argument("--keep-steps", action="store_true",
                   help="keep every compiler step's artifact in <out>/steps/ "
                        "(0_prune.npz ... 5_account.json)")
    return p


def storage_table(manifest: dict) -> str:
    """Markdown table of the per-layer storage breakdown."""
    lines = ["| layer | dense 32-bit | pruned | pruned+quantized | +Huffman |",
             "|---|---|---|---|---|"]

    def cell(s, key):
        return f"{s[key] / 8 / 2**20:.2f} MB ({100 * s[key + '_ratio']:.2f} %)"

    for m in manifest["layers"]:
        s = m["storage_bits"]
        lines.append(f"| {m['name']} | {s['dense_32bit'] / 8 / 2**20:.2f} MB | "
                     f"{cell(s, 'pruned')} | {cell(s, 'pruned_quantized')} | "
                     f"{cell(s, 'huffman')} |")
    t = manifest["storage_bits"]
    lines.append(f"| total | {t['dense_32bit'] / 8 / 2**20:.2f} MB | {cell(t, 'pruned')} | "
                 f"{cell(t, 'pruned_quantized')} | {cell(t, 'huffman')} |")
    return "\n".join(lines)


def layer_table(manifest: dict) -> str:
    lines = ["| layer | shape (out x in) | weight density | act density | non-zeros | padding |"
             " max entries/PE | w_frac |",
             "|---|---|---|---|---|---|---|---|"]
    for m in manifest["layers"]:
        tgt = m["act_density_target"]
        act = f"{100 * m['act_density']:.1f} %" + (f" (target {100 * tgt:.1f} %)"
                                                    if tgt is not None else "")
        lines.append(f"| {m['name']} | {m['rows']} x {m['cols']} | "
                     f"{100 * m['weight_density']:.2f} % | {act} | {m['nnz']:,} | "
                     f"{m['padding_entries']:,} | {max(m['entries_per_pe']):,} | {m['w_frac']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("compile"):
        t0 = time.perf_counter()
        cfg = load_config(args.config)
        opts = options_from_args(args)
        check_options(opts, cfg)
        if args.out is not None:
            check_out_dir(args.out)
        print(f"[compile] model {args.model}, config {cfg.name} ({cfg.n_pes} PEs), "
              f"seed {args.seed}", flush=True)
        out = ensure_compiled(args.model, args.seed, cfg, opts, force=args.recompile,
                              out=args.out, keep_steps=args.keep_steps)
        m = load_manifest(out)
        print(layer_table(m))
        print()
        print(storage_table(m))
        if m["accuracy"]:
            a = m["accuracy"]
            print(f"\naccuracy on {a['samples']} samples: float dense {a['float_dense']:.4f}, "
                  f"float compressed {a['float_compressed']:.4f}, fixed-point golden "
                  f"{a['fixed_point_golden']:.4f}")
        print(f"\n[compile] {out}/ (manifest.json, images/, golden.npz) in "
              f"{time.perf_counter() - t0:.1f} s; passes: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in m["pass_seconds"].items()))
    return 0

if __name__ == "__main__":
    sys.exit(main())
