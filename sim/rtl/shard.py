"""Many-sample RTL runs sharded over a Dask cluster (``python -m sim --scheduler ...``).

The samples are cut into one contiguous shard per worker; every worker runs
:func:`sim.rtl.runner.run_rtl` on its shard (building the configuration's simulator once, in
its build root, under the build lock), its progress lines reach the client as Dask events, and
the results are merged in sample order into one
:class:`sim.ref.result.RunResult`, as one run would give them.  The per-PE counters come from
the first shard (a run records them for its first ``counter_samples`` samples); ``shards``
records the samples of each (each shard starts with empty Spmat output registers, so a cycle
model of the run runs shard by shard).  The workers
must see the compiled model's directory (one machine, or a shared disk); a worker that does
not says so in one line.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from distributed import Client, get_worker

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
               kwargs: dict, topic: str | None = None, shard: int = 0,
               progress_every: float | None = None) -> RunResult:
    """One shard on a worker; with ``topic``, its progress lines go to the client as Dask
    events (the worker's ``log_event``, which crosses machines as the results do)."""
    if not (Path(model_dir) / "manifest.json").exists():
        raise EIEError(f"worker {socket.gethostname()} does not see the compiled model "
                       f"{model_dir}: run sharded simulations on one machine or a shared disk")
    say = None
    if topic is not None and progress_every:
        worker = get_worker()

        def say(line: str) -> None:
            if line.startswith("[eiegen] RTL: ") and " to go" in line:  # ProgressWatch's
                worker.log_event(topic, {"shard": shard, "line": line[len("[eiegen] "):]})
    return run_rtl(model_dir, cfg, samples=samples, counter_samples=counter_samples,
                   progress=say, progress_every=progress_every if say else None, **kwargs)


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
                    counter_samples: int = 1, progress=print,
                    progress_every: float | None = None, **kwargs) -> RunResult:
    """:func:`sim.rtl.runner.run_rtl` of ``samples`` over the workers of ``client``; with
    ``progress_every``, every shard's progress line (``[eiegen] shard k of n: RTL: ...``)
    every that many seconds while it runs."""
    n = len(client.scheduler_info().get("workers", {})) or 1
    parts = shards(list(samples), n)
    if progress:
        progress(f"[eiegen] {len(samples)} sample(s) in {len(parts)} shard(s) over {n} Dask "
                 f"worker(s)")
    topic = f"eiegen-rtl-progress-{uuid.uuid4().hex[:12]}" \
        if progress and progress_every else None
    running = [True]  # a line that arrives once the run is over is not shown

    def show(event):
        if running[0]:
            progress(f"[eiegen] shard {event[1]['shard'] + 1} of {len(parts)}: "
                     f"{event[1]['line']}")
    if topic is not None:
        client.subscribe_topic(topic, show)
    futs = [client.submit(_run_shard, str(model_dir), cfg, part,
                          counter_samples if k == 0 else 0, kwargs, topic, k, progress_every,
                          pure=False, retries=1)
            for k, part in enumerate(parts)]
    try:
        results = client.gather(futs)
    except KeyboardInterrupt:
        client.cancel(futs)
        raise
    finally:
        running[0] = False
        if topic is not None:
            client.unsubscribe_topic(topic)
    return merge(results)


__all__ = ["merge", "run_rtl_sharded", "shards"]
