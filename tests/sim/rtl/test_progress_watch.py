"""The progress lines of a long RTL run, read from the bench's progress file
(sim.rtl.runner.ProgressWatch), without a simulator."""

from __future__ import annotations

import json
import time

from sim.ref.result import RunJob
from sim.rtl.runner import ProgressWatch
from hw.arch.config import PRESETS


def test_a_line_per_new_count_with_the_time_left(tmp_path):
    p = tmp_path / "progress.json"
    w = ProgressWatch(p, None, 1.0)
    assert w.line() is None  # not written yet
    p.write_text("{\"done\": 3")  # being replaced: not JSON yet
    assert w.line() is None
    p.write_text(json.dumps({"done": 25, "of": 100, "run_s": 5.0}))
    line = w.line()
    assert line.startswith("[eiegen] RTL: 25 of 100 samples in ")
    assert line.endswith(" s, about 15 s to go")  # 0.2 s a sample, 75 left
    assert w.line() is None  # nothing new
    p.write_text(json.dumps({"done": 100, "of": 100, "run_s": 20.0}))
    assert w.line() is None  # finished: the run's own line says so


def test_the_thread_tells_and_stops(tmp_path):
    p = tmp_path / "progress.json"
    said = []
    with ProgressWatch(p, said.append, 0.01):
        p.write_text(json.dumps({"done": 1, "of": 2, "run_s": 0.1}))
        for _ in range(200):
            if said:
                break
            time.sleep(0.01)
    assert said and said[0].startswith("[eiegen] RTL: 1 of 2 samples in ")
    with ProgressWatch(None, said.append, 0.01):  # no file: no thread
        pass


def test_the_job_carries_the_progress_file():
    job = RunJob(model_dir="m", cfg=PRESETS["tiny"], progress="p.json", progress_s=0.25)
    back = RunJob.from_json(job.to_json())
    assert back.progress.name == "p.json" and back.progress_s == 0.25
    assert RunJob.from_json(RunJob(model_dir="m", cfg=PRESETS["tiny"]).to_json()).progress is None
