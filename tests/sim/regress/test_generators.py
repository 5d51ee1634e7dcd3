"""The regression farm's generators: valid random configurations over the whole space,
deterministic cases, the adversarial patterns, the batching and the summary's coverage."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.config import EIEConfig
from sim.regress.cases import FC_PATTERNS, case_specs, make_network
from sim.regress.farm import batches
from sim.regress.space import FIELDS, FIXED, config_pool, coverage
from sim.regress.summary import junit_xml, summarize


def test_pool_is_valid_seeded_and_varies_every_field():
    pool = config_pool(0, 40)
    assert [c.to_dict() for c in pool] == [c.to_dict() for c in config_pool(0, 40)]
    assert pool[0].to_dict() != config_pool(1, 40)[0].to_dict()
    assert any(c.lstm for c in pool) and not all(c.lstm for c in pool)
    cov = coverage(pool)
    assert set(cov) == set(FIELDS)
    flat = [f for f, v in cov.items() if len(v) < 2 and f not in FIXED]
    assert not flat, flat  # every field the hardware lets vary takes several values
    for c in pool:
        assert EIEConfig.from_dict(c.to_dict()) == c
    # the ranges, reached at both ends over a larger pool (not just within them)
    big = coverage(config_pool(7, 300))
    for f, lo, hi in (("n_pes", 1, 16), ("queue_depth", 1, 16), ("weight_index_bits", 1, 8),
                      ("rel_index_bits", 2, 6)):
        assert (min(big[f]), max(big[f])) == (lo, hi), (f, big[f])
    assert set(big["rounding"]) == {"half_up", "truncate", "half_even"}
    assert set(big["saturate"]) == {False, True} and None in big["acc_depth"]


def test_cases_are_deterministic_and_fit():
    pool = config_pool(3, 6)
    specs = case_specs(pool, 60, 3)
    assert specs == case_specs(pool, 60, 3)
    assert {s["pattern"] for s in specs} >= {"lstm"} | set(FC_PATTERNS[:3])
    for s in specs:
        a, b = make_network(s), make_network(s)
        assert np.array_equal(np.asarray(a.x), np.asarray(b.x))
        cfg = EIEConfig.from_dict(s["config"])
        assert np.asarray(a.x).dtype == np.float32
        if s["pattern"] != "lstm":
            assert len(a.layers) <= min(4, cfg.max_layers)
            for layer in a.layers:
                assert max(layer.W.shape) <= cfg.act_depth * cfg.n_pes


@pytest.mark.parametrize("pattern", ["one_pe", "gaps", "empty_cols", "tiny", "zeros"])
def test_adversarial_patterns(pattern):
    cfg = [c for c in config_pool(5, 8) if not c.lstm and c.n_pes > 1][0]
    spec = {"id": "t", "seed": 7, "config": cfg.to_dict(), "pattern": pattern}
    net = make_network(spec)
    W = net.layers[0].W
    n = cfg.n_pes
    if pattern == "one_pe":  # every non-zero on one PE
        assert len({r % n for r in np.flatnonzero(np.any(W != 0, axis=1))}) <= 1
    if pattern == "gaps":  # at most two weights per column, on one PE
        for j in range(W.shape[1]):
            rows = np.flatnonzero(W[:, j])
            assert len(rows) <= 2 and len({r % n for r in rows}) <= 1
    if pattern == "empty_cols":
        assert np.any(~np.any(W != 0, axis=0)) or W.shape[1] < 4
    if pattern == "tiny":
        assert all(layer.W.shape == (1, 1) for layer in net.layers)
    if pattern == "zeros":
        assert not np.any(net.x)
    assert net.layers[0].density <= 1


def test_batches_interleave_configurations():
    pool = config_pool(2, 3)
    specs = case_specs(pool, 12, 2)
    b = batches(specs, 2)
    assert sorted(s["id"] for batch in b for s in batch) == sorted(s["id"] for s in specs)
    assert all(len({s["config"]["name"] for s in batch}) == 1 for batch in b)
    assert [batch[0]["config"]["name"] for batch in b[:3]] == [c.name for c in pool]


def test_summary_and_junit():
    pool = config_pool(2, 2)
    res = [{"id": "c0", "config": pool[0].name, "pattern": "random", "status": "pass",
            "checks": {"outputs": True, "cycles": True, "counters": True, "host_load": None},
            "seconds": 1.0, "message": None},
           {"id": "c1", "config": pool[1].name, "pattern": "gaps", "status": "fail",
            "checks": {"outputs": False, "cycles": True, "counters": True, "host_load": None},
            "seconds": 2.0, "message": "differs from the reference: outputs",
            "command": "python -m sim --model x.npz --config x.json"},
           {"id": "c2", "config": pool[1].name, "pattern": "tiny", "status": "rejected",
            "checks": {}, "seconds": 0.1, "message": "does not fit"}]
    s = summarize(res, pool, {"n": 3, "seed": 2}, 3.0, False)
    assert not s["ok"] and s["counts"] == {"pass": 1, "fail": 1, "error": 0, "rejected": 1}
    assert s["per_check"]["outputs"] == {"pass": 1, "fail": 1, "not run": 1}
    assert s["failures"][0]["command"].startswith("python -m sim")
    x = junit_xml(res, 3.0)
    assert 'failures="1"' in x and 'skipped="1"' in x and "<failure" in x
