"""``python -m sim.regress`` (``make regress [N=1000] [SEED=0] [SCHEDULER=...]``): the
constrained-random regression farm (:mod:`sim.regress`).

Writes ``build/regress/s<seed>-n<N>-p<pool>/``: ``summary.json``, ``summary.md``,
``summary.html``, ``junit.xml``, ``results.json`` and, for every failure, ``failures/<case>.npz``
(the shrunk network), ``<case>.json`` (its configuration) and ``<case>.txt`` (the command that
reproduces it).  Exit code 0 when every case passed, 1 when one failed, 130 on Ctrl-C (with
the partial summary written), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from hw.arch.atomic import writing
from hw.arch.config import load_config
from hw.arch.errors import ArgumentParser, EIEError, cli_errors
from sim.flow.lock import output_lock
from sim.flow.paths import build_root
from sim.regress.cases import case_specs
from sim.flow.cluster import close, connect
from sim.regress.farm import Progress, run_farm
from sim.regress.shrink import write_reproducer
from sim.regress.space import config_pool
from sim.regress.summary import summarize, write_outputs


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m sim.regress", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="cases (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the configurations and cases")
    p.add_argument("--pool", type=int, default=20,
                   help="random configurations per run (each is built once; default 20)")
    p.add_argument("--configs", default=None,
                   help="comma-separated presets or JSON config files to use instead of the "
                        "random pool (e.g. tiny,pe2)")
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (tcp://host:8786) or scheduler file (default: "
                        "$EIEGEN_SCHEDULER, else a local cluster of every core on 127.0.0.1)")
    p.add_argument("--workers", type=int, default=None,
                   help="workers of the local cluster (default: one per core)")
    p.add_argument("--batch", type=int, default=4, help="cases per task (default 4)")
    p.add_argument("--shrink-budget", type=int, default=12,
                   help="shrink attempts per failure (0: save failures as they are)")
    p.add_argument("--host-share", type=float, default=0.1,
                   help="share of the cases also loaded through the host interface")
    p.add_argument("--out", default=None, help="output directory (default build/regress/...)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("regress"):
        for name, v, lo in (("--n", args.n, 1), ("--pool", args.pool, 1),
                            ("--batch", args.batch, 1), ("--shrink-budget", args.shrink_budget,
                                                         0)):
            if v < lo:
                raise EIEError(f"{name} must be at least {lo}, got {v}")
        if not 0 <= args.host_share <= 1:
            raise EIEError(f"--host-share must be in 0..1, got {args.host_share}")
        if args.configs:
            # every case simulates the RTL: a configuration too large to generate is refused now
            configs = [load_config(c).check_generatable() for c in args.configs.split(",") if c]
            names = [c.name for c in configs]
            if len(set(names)) != len(names):
                raise EIEError(f"--configs names a configuration twice: {', '.join(names)}")
            key = "c" + "_".join(names)
        else:
            configs, key = config_pool(args.seed, args.pool), f"p{args.pool}"
        args.pool = len(configs)
        specs = case_specs(configs, args.n, args.seed, args.host_share)
        out = Path(args.out) if args.out else \
            build_root() / "regress" / f"s{args.seed}-n{args.n}-{key}"
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
        with output_lock(out):
            return _run(args, configs, specs, out)
    return 2


def _run(args, configs, specs, out: Path) -> int:
    t0 = time.monotonic()
    client = connect(args.scheduler, args.workers)
    cluster = getattr(client, "cluster", None)
    where = "local cluster on 127.0.0.1" if args.scheduler is None and cluster is not None \
        else str(args.scheduler)
    n_workers = len(client.scheduler_info().get("workers", {}))
    print(f"[regress] {len(specs)} cases over {len(configs)} configurations on {n_workers} "
          f"Dask worker(s) ({where}); outputs in {out}", flush=True)
    progress = Progress(len(specs), sys.stdout)
    try:
        results, interrupted = run_farm(specs, client, batch=args.batch,
                                        shrink_budget=args.shrink_budget, on_result=progress)
    finally:
        progress.close()
        close(client)
    failures = out / "failures"
    shutil.rmtree(failures, ignore_errors=True)  # this run's own earlier failures
    for r in results:
        rep = r.pop("reproducer", None)
        if rep is not None:
            r["command"] = write_reproducer(rep, failures).read_text().strip()
    from_params = {"n": args.n, "seed": args.seed, "pool": args.pool, "batch": args.batch,
                   "scheduler": where, "workers": f"{n_workers} worker(s)",
                   "shrink_budget": args.shrink_budget, "host_share": args.host_share}
    s = summarize(results, configs, from_params, time.monotonic() - t0, interrupted)
    paths = write_outputs(out, s, results)
    c = s["counts"]
    print(f"[regress] {c['pass']} passed, {c['fail']} failed, {c['error']} errors, "
          f"{c['rejected']} rejected; {s['fields_covered']} of {s['fields']} configuration "
          f"fields covered; {s['wall_s']:.0f} s")
    for f in s["failures"]:
        print(f"[regress] FAIL {f['id']} ({f['config']}, {f['pattern']}): {f['message']}; "
              f"reproduce: {f.get('command')}")
    print(f"[regress] wrote {', '.join(p.name for p in paths)} in {out}")
    if interrupted:
        print("[regress] interrupted: the summary is partial", file=sys.stderr)
        return 130
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
