"""The farm's engine: the cases on a Dask cluster (``dask.distributed``).

* No scheduler: a local cluster of one single-threaded worker process per core, bound to
  127.0.0.1, without a dashboard; its nannies start the workers without Dask's
  ``MALLOC_TRIM_THRESHOLD_=65536`` (which made NumPy-heavy tasks here 1.5x slower).
* ``tcp://host:8786`` (or ``EIEGEN_SCHEDULER``): an existing cluster; a path to a Dask
  scheduler file: the cluster it names.

A worker plugin (:class:`EiegenWorker`) checks that every worker runs the same eiegen sources as
the client (a digest of ``hw``, ``compiler``, ``models`` and ``sim``), points the build root of
a worker on another host at its own disk (unless ``EIEGEN_BUILD_DIR`` is set there), and resets
glibc's trim threshold to its default.  Each configuration's simulator is built once per build
root, under the build lock.

Cases go out in batches of one configuration each (:func:`batches`), the batches of different
configurations first, so the workers build different simulators at once; a batch whose worker
dies is retried once.  A failing case is shrunk on the worker (:mod:`sim.regress.shrink`) and
its reproducer comes back with the result.  Ctrl-C cancels the queued batches and returns the
results so far.
"""

from __future__ import annotations

import ctypes
import os
import socket
import tempfile
import time
from pathlib import Path

import dask
from distributed import Client, LocalCluster, WorkerPlugin, as_completed

from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from models.lstm import LSTMLayer
from sim.flow.paths import source_digest
from sim.regress.cases import make_network
from sim.regress.check import run_case
from sim.regress.shrink import reproducer, shrink

#: the packages whose sources every worker must share with the client
SOURCE_PACKAGES = ("hw", "compiler", "models", "sim")
#: glibc's mallopt parameter of the trim threshold
_M_TRIM_THRESHOLD = -1


class EiegenWorker(WorkerPlugin):
    """Set up every worker for the farm (module docstring)."""

    name = "eiegen-regress"

    def __init__(self, digest: str, client_host: str):
        self.digest, self.client_host = digest, client_host

    def setup(self, worker):
        mine = source_digest(*SOURCE_PACKAGES)
        if mine != self.digest:
            raise EIEError(f"worker {worker.address} runs other eiegen sources (digest "
                           f"{mine}, the client's {self.digest}): install the same checkout "
                           f"on every worker")
        if socket.gethostname() != self.client_host and "EIEGEN_BUILD_DIR" not in os.environ:
            os.environ["EIEGEN_BUILD_DIR"] = str(Path(tempfile.gettempdir()) / "eiegen-build")
        try:  # glibc's default trim threshold (128 KiB), whatever the nanny set
            ctypes.CDLL("libc.so.6").mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
        except OSError:
            pass


def connect(scheduler: str | None, workers: int | None = None) -> Client:
    """A Dask client: a local cluster (no ``scheduler``), a scheduler address or a scheduler
    file (module docstring)."""
    scheduler = scheduler or os.environ.get("EIEGEN_SCHEDULER") or None
    if scheduler is None:
        env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
        env.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                   threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=40)
        return Client(cluster)
    if "://" in scheduler:
        return Client(scheduler, timeout="30s")
    if Path(scheduler).is_file():
        return Client(scheduler_file=scheduler, timeout="30s")
    raise EIEError(f"SCHEDULER {scheduler!r} is neither an address (tcp://host:8786) nor an "
                   f"existing Dask scheduler file")


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
    digest = source_digest(*SOURCE_PACKAGES)
    client.register_plugin(EiegenWorker(digest, socket.gethostname()))
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


__all__ = ["EiegenWorker", "Progress", "batches", "connect", "run_batch", "run_farm"]
