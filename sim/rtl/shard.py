"""Many-sample RTL runs sharded over a Dask cluster (``python -m sim --scheduler ...``).

The samples are cut into one contiguous shard per worker; every worker runs
:func:`sim.rtl.runner.run_rtl` on its shard (building the configuration's simulator once, in
its build root, under the build lock) and the results are merged in sample order into one
:class:`sim.ref.result.RunResult`, as one run would give them.  The per-PE counters come from
the first shard (a run records them for its first ``counter_samples`` samples); ``shards``
records the samples of each (each shard starts with empty Spmat output registers, so a cycle
model of the run runs shard by shard).  The workers
must see the compiled model's directory (one machine, or a shared disk); a worker that does
not says so in one line.
"""

from __future__ import annotations

import socket
from pathlib import Path

from distributed import Client

from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from sim.ref.result import RunResult
from sim.rtl.runner import run_rtl


def shards(samples: list, n: int) -> list[list]:
    """``samples`` in at most ``n`` contiguous, nearly equal shards."""
    n = max(1, min(n, len(samples)))
    q, r = divmod(len(samples), n)
    out, i = [], 0
    for k in range(n):
        size = q + (k < r)
        out.append(list(samples[i:i + size]))
        i += size
    return out


def _run_shard(model_dir: str, cfg: EIEConfig, samples: list, counter_samples: int,
               kwargs: dict) -> RunResult:
    if not (Path(model_dir) / "manifest.json").exists():
        raise EIEError(f"worker {socket.gethostname()} does not see the compiled model "
                       f"{model_dir}: run sharded simulations on one machine or a shared disk")
    return run_rtl(model_dir, cfg, samples=samples, counter_samples=counter_samples,
                   progress=None, **kwargs)


def merge(parts: list[RunResult]) -> RunResult:
    """One :class:`RunResult` of the shards' results, in shard order."""
    first = parts[0]

    def cat(name):
        return [x for p in parts for x in getattr(p, name)]

    res = RunResult(samples=cat("samples"), cycles=cat("cycles"), counters=first.counters,
                    outputs=cat("outputs"), layer_outputs=cat("layer_outputs"),
                    chained=first.chained, preload=first.preload,
                    host_writes=sum(p.host_writes for p in parts),
                    sim_time_ns=sum(p.sim_time_ns or 0 for p in parts),
                    sim_cycles=sum(p.sim_cycles for p in parts),
                    compute_cycles=sum(p.compute_cycles for p in parts),
                    broadcasts=None if first.broadcasts is None else cat("broadcasts"),
                    build=first.build, segments=first.segments,
                    reloads=sum(p.reloads for p in parts), pass_cycles=cat("pass_cycles"),
                    pass_counters=first.pass_counters, frame_cycles=cat("frame_cycles"),
                    cell_states=cat("cell_states"), shards=[p.samples for p in parts])
    # the shards ran side by side: the wall time of the slowest
    res.seconds = {k: max(p.seconds.get(k, 0) for p in parts) for k in first.seconds}
    if all(p.expected is not None for p in parts):
        res.expected = cat("expected")
        res.match = all(p.match for p in parts)
    return res


def run_rtl_sharded(model_dir, cfg: EIEConfig, samples: list, client: Client, *,
                    counter_samples: int = 1, progress=print, **kwargs) -> RunResult:
    """:func:`sim.rtl.runner.run_rtl` of ``samples`` over the workers of ``client``."""
    n = len(client.scheduler_info().get("workers", {})) or 1
    parts = shards(list(samples), n)
    if progress:
        progress(f"[eiegen] {len(samples)} sample(s) in {len(parts)} shard(s) over {n} Dask "
                 f"worker(s)")
    futs = [client.submit(_run_shard, str(model_dir), cfg, part,
                          counter_samples if k == 0 else 0, kwargs, pure=False, retries=1)
            for k, part in enumerate(parts)]
    try:
        results = client.gather(futs)
    except KeyboardInterrupt:
        client.cancel(futs)
        raise
    return merge(results)


__all__ = ["merge", "run_rtl_sharded", "shards"]
