"""``python -m hw`` (``make verilog``): write ``eie_top.v`` and its JSON sidecar for a preset or
JSON configuration, by :func:`hw.gen_verilog.generate_verilog`.

The default output directory is ``build/verilog/<config>/`` under the one build root
(:func:`sim.flow.paths.build_root`), keyed like every output by the configuration
(:func:`sim.flow.paths.config_key`: a preset's name, else ``<name>-<digest>``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hw.arch.config import PRESETS, load_config
from hw.arch.errors import ArgumentParser, cli_errors
from hw.gen_verilog import generate_verilog
from sim.flow.paths import build_root, config_key


def main(argv=None) -> int:
    """Command line: ``python -m hw --config NAME|FILE.json [--out DIR] [-q]``."""
    ap = ArgumentParser(
        prog="python -m hw",
        description="Generate eie_top.v (Verilog of the whole array) and its JSON sidecar "
                    "for a preset or JSON configuration.")
    ap.add_argument("--config", default="eie64",
                    help=f"preset name ({', '.join(PRESETS)}) or a JSON config file "
                         "(default: eie64)")
    ap.add_argument("--out", default=None,
                    help="output directory (default: build/verilog/<config>/)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    with cli_errors("gen_verilog"):
        cfg = load_config(args.config)
        out = Path(args.out) if args.out else build_root() / "verilog" / config_key(cfg)

        def say(msg):
            if not args.quiet:
                print(f"gen_verilog: {msg}", flush=True)

        generate_verilog(cfg, out, progress=say)
    return 0


if __name__ == "__main__":
    sys.exit(main())
