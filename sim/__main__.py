"""``python -m sim`` (``make sim``): compile -> Verilog -> Verilator build -> RTL simulation.

Each step runs only when stale (compiled images are keyed by model, seed, configuration and the
compiler's sources; the Verilator build by the configuration and the generator's sources).  The
RTL's outputs are compared bit for bit with the golden model; the per-layer table and
``build/<model>/<config>/report.json`` give cycles, time, GOP/s, load balance and mismatches.
Exit code 1 when any output mismatches, 2 on bad input.  ``--data FILE.npz`` (``x``, optional
``y``: :mod:`models.data_file`) compiles and runs the user's inputs instead of the model's own,
into their own directory (``<config>+data-<8 hex>``), and prints the accuracy of the float
model, the golden model and the RTL (or, without labels, their agreement with the float model).
A thin command over :func:`sim.studies.simulate.simulate`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hw.arch.config import load_config
from hw.arch.errors import ArgumentParser, cli_errors
from compiler.cli import add_model_args, add_options, options_from_args
from sim.flow.compile import ensure_compiled
from sim.flow.lock import output_lock
from sim.flow.paths import output_dir
from sim.studies.simulate import outputs_match, print_summary, simulate, user_data


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m sim", description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--waves", action="store_true",
                   help="write an FST waveform (a tracing build, cached separately)")
    p.add_argument("--data", default=None,
                   help="a .npz of your inputs x, (n, in) or for an LSTM (n, T, in), and "
                        "optional integer labels y (n,): compiled and run instead of the "
                        "model's own inputs; prints the float, golden and RTL accuracy")
    p.add_argument("--samples", type=int, default=None,
                   help="simulate only the first N input samples (default: all)")
    p.add_argument("--host-load", action="store_true",
                   help="load every memory through the host interface instead of preloading "
                        "Spmat, pointers and biases with $fread")
    p.add_argument("--recompile", action="store_true", help="compile even if up to date")
    p.add_argument("--scheduler", default=None,
                   help="shard the samples over a Dask cluster: 'local' (every core, "
                        "127.0.0.1), a scheduler address (tcp://host:8786) or a scheduler "
                        "file; the results are merged in sample order")
    add_options(p)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("sim"):
        t0 = time.perf_counter()
        # before anything is compiled: a configuration whose memories cannot be generated
        cfg = load_config(args.config).check_generatable()
        opts = options_from_args(args)
        data, net = user_data(args.data, args.model, args.seed)
        out = output_dir(args.model, cfg, opts, args.seed,
                         None if data is None else data.digest)
        with output_lock(out):  # no other command changes the images while they run
            ensure_compiled(args.model, args.seed, cfg, opts, force=args.recompile, out=out,
                            tag="[sim]", data=data)
            report, res = simulate(out, cfg, model=args.model, seed=args.seed,
                                   samples=args.samples, waves=args.waves,
                                   preload=not args.host_load, opts=opts,
                                   scheduler=args.scheduler, data=data, net=net)
        print_summary(report, cfg, time.perf_counter() - t0)
        if args.waves and res.run_dir:
            for w in sorted(Path(res.run_dir).rglob("dump.*")):
                print(f"waveform: {w}")
        print(f"report: {out / 'report.json'}")
        return 0 if outputs_match(report) else 1


if __name__ == "__main__":
    sys.exit(main())
