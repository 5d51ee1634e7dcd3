"""The typed run job and result (sim/ref/result.py): JSON round trips and the comparison."""

from __future__ import annotations

from pathlib import Path

from hw.arch.config import PRESETS
from sim.ref.result import RunJob, RunResult, compare


def test_job_round_trip(tmp_path):
    job = RunJob(model_dir=tmp_path / "m", cfg=PRESETS["tiny"], samples=[2, 0],
                 counter_samples=2, layer_outputs=True, preload=False, result=tmp_path / "r.json")
    back = RunJob.read(job.write(tmp_path / "job.json"))
    assert back == job
    assert RunJob.from_json(RunJob(model_dir=Path("m"), cfg=PRESETS["pe1"]).to_json()).samples \
        is None


def test_result_round_trip_ignores_unknown_keys():
    res = RunResult(samples=[0], cycles=[[3, 4]], counters=[[{"entries": [1, 2]}] * 2],
                    outputs=[[5]], seconds={"run": 0.5}, match=True)
    assert RunResult.from_json(res.to_json()) == res
    assert RunResult.from_json('{"samples": [1], "cycles": [[2]], "extra": 1}').cycles == [[2]]


def test_compare_on_the_common_samples():
    rtl = RunResult(samples=[0, 1], cycles=[[10, 20], [11, 21]],
                    counters=[[{"busy": [1]}, {"busy": [2]}]])
    model = RunResult(samples=[0], cycles=[[10, 20]], counters=[[{"busy": [1]}, {"busy": [2]}]])
    c = compare(rtl, model)
    assert c.samples == [0] and c.cycles_equal and c.counters_equal and c.max_rel_error == 0
    assert model.timing_equals(rtl)
    off = RunResult(samples=[1, 0], cycles=[[11, 21], [10, 25]],
                    counters=[[{"busy": [1]}, {"busy": [2]}]])
    c = compare(rtl, off)
    assert c.samples == [0, 1] and not c.cycles_equal
    # off's only counter sample is sample 1, rtl's only is sample 0: nothing to compare
    assert not c.counters_equal
    assert abs(c.max_rel_error - 0.25) < 1e-12


def test_runs_without_a_common_sample_are_not_equal():
    a = RunResult(samples=[0], cycles=[[10]], counters=[[{"entries": [1]}]])
    b = RunResult(samples=[1], cycles=[[10]], counters=[[{"entries": [1]}]])
    c = compare(a, b)
    assert c.samples == [] and not c.cycles_equal and not c.counters_equal
    no_counters = RunResult(samples=[0], cycles=[[10]])
    c = compare(a, no_counters)
    assert c.cycles_equal and not c.counters_equal
