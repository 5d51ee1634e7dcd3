"""The farm's engine: the cases on a Dask cluster (:mod:`sim.flow.cluster`: a local one by
default, an address or a scheduler file).

Cases go out in batches of one configuration each (:func:`batches`), the batches of different
configurations first, so the workers build different simulators at once (each configuration's
simulator is built once per build root, under the build lock); a batch whose worker dies is
retried once.  A failing case is shrunk on the worker (:mod:`sim.regress.shrink`) and its
reproducer comes back with the result.  Ctrl-C cancels the queued batches and returns the
results so far.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from distributed import Client, as_completed

from hw.arch.config import EIEConfig
from models.lstm import LSTMLayer
from sim.flow.cluster import prepare
from sim.regress.cases import make_network
from sim.regress.check import run_case
from sim.regress.shrink import reproducer, shrink

def batches(specs: list, size: int) -> list[list]:
    """The cases in batches of at most ``size`` of one configuration, the first batch of every
    configuration before the second of any."""
    by_cfg: dict = {}
    for s in specs:
        by_cfg.setdefault(s["config"]["name"], []).append(s)
    chunks = [[g[i:i + size] for i in range(0, len(g), size)] for g in by_cfg.values()]
    out = []
    for k in range(max((len(c) for c in chunks), default=0)):
        out += [c[k] for c in chunks if k < len(c)]
    return out


def run_batch(specs: list, shrink_budget: int = 12) -> list[dict]:
    """Run a batch of cases on a worker; each failing case is shrunk and comes back with its
    reproducer (``reproducer``) and the shrink attempts (``shrink_tries``)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="eiegen-regress-") as work:
        for spec in specs:
            r = run_case(spec, Path(work))
            if r["status"] in ("fail", "error") and shrink_budget:
                cfg = EIEConfig.from_dict(spec["config"])
                small, tries = shrink(make_network(spec), cfg, Path(work) / "shrink",
                                      spec["id"], shrink_budget, spec.get("host_load", False))
                env = {k: v for k, v in os.environ.items() if k == "EIEGEN_TB_FAULT"}
                r["reproducer"] = reproducer(small, cfg, spec["id"], env)
                r["shrink_tries"] = tries
                r["shrunk"] = {"layers": len(small.layers),
                               "samples": int(small.x.shape[0]),
                               "shapes": [list((layer.W_x if isinstance(layer, LSTMLayer)
                                                else layer.W).shape)
                                          for layer in small.layers]}
            out.append(r)
    return out


def run_farm(specs: list, client: Client, *, batch: int = 4, shrink_budget: int = 12,
             on_result=None) -> tuple[list[dict], bool]:
    """Every case on the cluster; ``on_result(result)`` is called as results come in.  Returns
    the results (in case order) and whether the run was interrupted (Ctrl-C)."""
    prepare(client)
    futures = [client.submit(run_batch, b, shrink_budget, retries=1, pure=False,
                             key=f"regress-{b[0]['id']}-{len(b)}")
               for b in batches(specs, batch)]
    results, interrupted = [], False
    try:
        for fut in as_completed(futures):
            for r in fut.result():
                results.append(r)
                if on_result is not None:
                    on_result(r)
    except KeyboardInterrupt:
        interrupted = True
        client.cancel(futures)
    order = {s["id"]: i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[r["id"]])
    return results, interrupted


class Progress:
    """One progress line with counts and an ETA, rewritten in place on a terminal."""

    def __init__(self, total: int, stream):
        self.total, self.stream, self.t0 = total, stream, time.monotonic()
        self.done = self.failed = self.rejected = 0

    def __call__(self, r: dict) -> None:
        self.done += 1
        self.failed += r["status"] in ("fail", "error")
        self.rejected += r["status"] == "rejected"
        el = time.monotonic() - self.t0
        eta = el / self.done * (self.total - self.done)
        tty = getattr(self.stream, "isatty", lambda: False)()
        line = (f"[regress] {self.done}/{self.total} cases, {self.failed} failed, "
                f"{self.rejected} rejected; {_clock(el)} elapsed, ETA {_clock(eta)}")
        if r["status"] in ("fail", "error"):  # say which, as it happens
            self.stream.write(("\n" if tty else "") + f"[regress] {r['status'].upper()} "
                              f"{r['id']} ({r['config']}, {r['pattern']}): "
                              f"{(r['message'] or '').splitlines()[0][:160]}\n")
        if tty:
            self.stream.write("\r" + line)
        elif self.done == self.total or self.done % max(1, self.total // 20) == 0 or \
                r["status"] in ("fail", "error"):
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if getattr(self.stream, "isatty", lambda: False)():
            self.stream.write("\n")


def _clock(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60}:{s % 60:02d}"


__all__ = ["Progress", "batches", "run_batch", "run_farm"]
