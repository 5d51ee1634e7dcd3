"""Dask clusters for the commands that spread work over processes or machines (``make
regress``, ``make sweep SCHEDULER=...``).

* No scheduler: a local cluster of one single-threaded worker process per core, bound to
  127.0.0.1 (its dashboard on a random 127.0.0.1 port); its nannies start the workers without Dask's
  ``MALLOC_TRIM_THRESHOLD_=65536`` (which made NumPy-heavy tasks here 1.5x slower).
* ``tcp://host:8786`` (or ``EIEGEN_SCHEDULER``): an existing cluster; a path to a Dask
  scheduler file: the cluster it names.

:class:`EiegenWorker`, registered by :func:`prepare`, checks that every worker runs the same
eiegen sources as the client (a digest of ``hw``, ``compiler``, ``models`` and ``sim``), points
the build root of a worker on another host at its own disk (unless ``EIEGEN_BUILD_DIR`` is set
there), and resets glibc's trim threshold to its default.
"""

from __future__ import annotations

import ctypes
import os
import socket
import tempfile
from pathlib import Path

import dask
from distributed import Client, LocalCluster, WorkerPlugin

from hw.arch.errors import EIEError
from sim.flow.paths import source_digest

#: the packages whose sources every worker must share with the client
SOURCE_PACKAGES = ("hw", "compiler", "models", "sim")
#: glibc's mallopt parameter of the trim threshold
_M_TRIM_THRESHOLD = -1


class EiegenWorker(WorkerPlugin):
    """Set up every worker for eiegen's tasks (module docstring)."""

    name = "eiegen"

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
                                   dashboard_address="127.0.0.1:0", silence_logs=40)
        return Client(cluster)
    if "://" in scheduler:
        return Client(scheduler, timeout="30s")
    if Path(scheduler).is_file():
        return Client(scheduler_file=scheduler, timeout="30s")
    raise EIEError(f"SCHEDULER {scheduler!r} is neither an address (tcp://host:8786) nor an "
                   f"existing Dask scheduler file")


def prepare(client: Client) -> None:
    """Register :class:`EiegenWorker` on every worker of ``client``'s cluster."""
    client.register_plugin(EiegenWorker(source_digest(*SOURCE_PACKAGES), socket.gethostname()))


def close(client: Client) -> None:
    """Close ``client`` and the local cluster :func:`connect` started for it, if any."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


__all__ = ["EiegenWorker", "SOURCE_PACKAGES", "close", "connect", "prepare"]
