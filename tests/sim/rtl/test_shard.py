"""Many-sample RTL runs sharded over a Dask cluster (sim/rtl/shard.py): the merged result of
two workers equals one run's, sample by sample; the shards are contiguous and balanced."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import Client, LocalCluster

from hw.arch.config import PRESETS
from models.network import Layer, Network
from sim.flow.compile import compile_into
from sim.rtl.runner import run_rtl
from sim.rtl.shard import run_rtl_sharded, shards
from tests.conftest import write_random_model


def test_shards_are_contiguous_and_balanced():
    assert shards(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert shards([4], 8) == [[4]]
    assert sum(shards(list(range(359)), 2), []) == list(range(359))


@pytest.mark.verilator
def test_sharded_run_equals_one_run(tmp_path):
    rng = np.random.default_rng(2)
    layers = [Layer(name="fc0", W=rng.normal(0, 0.5, (10, 12)).astype(np.float32),
                    b=np.zeros(10, np.float32), relu=True, density=0.5, act_density=None),
              Layer(name="fc1", W=rng.normal(0, 0.5, (6, 10)).astype(np.float32),
                    b=np.zeros(6, np.float32), relu=False, density=0.7, act_density=None)]
    net = Network(name="s", layers=layers, x=rng.normal(0, 1, (5, 12)).astype(np.float32),
                  labels=None, synthetic=True, description="random")
    cfg = PRESETS["tiny"]
    out = tmp_path / "m"
    compile_into(net, cfg, None, out, progress=lambda m: None)
    one = run_rtl(out, cfg, progress=None)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        merged = run_rtl_sharded(out, cfg, list(range(5)), client, progress=None)
    assert merged.samples == one.samples == list(range(5))
    assert merged.outputs == one.outputs and merged.match
    assert merged.counters == one.counters
    # each shard starts with empty Spmat output registers (recorded, so the cycle model runs
    # shard by shard); the first shard's cycles are one run's
    assert merged.shards == [[0, 1, 2], [3, 4]]
    assert merged.cycles[:3] == one.cycles[:3] and len(merged.cycles) == 5


@pytest.mark.verilator
def test_a_sharded_run_tells_each_shards_progress(tmp_path):
    """The workers' progress lines reach the client (Dask events), one per shard and
    interval, while the shards run."""
    cfg = PRESETS["tiny"]
    out = write_random_model(tmp_path, cfg, [(40, 30), (9, 40)], density=0.3,
                             n_samples=1200, seed=8)
    said = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        res = run_rtl_sharded(out, cfg, list(range(1200)), client, progress=said.append,
                              progress_every=0.05)
    assert res.match and res.samples == list(range(1200))
    assert said[0] == "[eiegen] 1200 sample(s) in 2 shard(s) over 2 Dask worker(s)"
    for k in (1, 2):
        mine = [m for m in said if m.startswith(f"[eiegen] shard {k} of 2: RTL: ")]
        assert mine and all(" of 600 samples in " in m and m.endswith(" s to go")
                            for m in mine), said
