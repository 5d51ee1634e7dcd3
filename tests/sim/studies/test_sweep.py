"""Design-space sweeps (sim/studies/sweep.py) on a small random model: outputs and content."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from distributed import LocalCluster

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from sim.studies.sweep import derive_config, main, parse_values


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    p = tmp_path_factory.mktemp("npz") / "small.npz"
    x = np.where(rng.random((2, 48)) < 0.6, rng.random((2, 48)), 0.0)
    np.savez(p, W0=rng.laplace(size=(64, 48)), b0=np.zeros(64), W1=rng.laplace(size=(24, 64)),
             b1=np.zeros(24), x=x, densities=np.array([0.25, 0.3]))
    return p


def read(out):
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((out / "sweep.json").read_text())


def sweep(out, model, config, param, values, *extra):
    """Run ``python -m sim.studies.sweep`` into ``out``; its CSV rows and JSON."""
    assert main(["--model", str(model), "--config", config, "--param", param,
                 "--values", values, "--out", str(out), *extra]) == 0
    return read(out)


def totals(rows, column, kind=float):
    """Column ``column`` of the ``total`` rows, one per sweep point."""
    return [kind(r[column]) for r in rows if r["layer"] == "total"]


def test_parse_values():
    assert parse_values("1,2,4,...,32") == [1, 2, 4, 8, 16, 32]
    assert parse_values("3, 5") == [3, 5]
    assert parse_values("1,2,...,12") == [1, 2, 4, 8, 12]
    for bad in ("", "1,x", "1,...,8", "2,2"):
        with pytest.raises(EIEError):
            parse_values(bad)
    # an end below the series is refused, not appended after it (it ran 1, 2, 4, 3)
    with pytest.raises(EIEError, match=r"must end above 4, the value before it; got 3"):
        parse_values("1,2,4,...,3")


def test_derive_config_enlarges_memories_only_when_needed():
    base = PRESETS["tiny"]
    same = derive_config(base, "queue_depth", 2, [(40, 30)], spmat_words=100)
    assert same == base
    one = derive_config(base, "pes", 1, [(400, 300)], spmat_words=3000)
    assert one.n_pes == 1 and one.act_depth == 400 and one.bias_depth == 400
    assert one.spmat_depth == 4096 and one.ptr_depth == 512 and one.name == "tiny-pes1"


def test_pes_sweep(tmp_path, small_npz, capsys):
    out = tmp_path / "pes"
    rows, js = sweep(out, small_npz, "tiny", "pes", "1,2,4,8", "--jobs", "2")
    assert {f.name for f in out.iterdir()} == {"sweep.csv", "sweep.json", "sweep.md",
                                               "load_balance.png", "speedup.png"}
    assert (out / "speedup.png").stat().st_size > 5000
    assert len(rows) == 4 * 3  # 4 points x (2 layers + total)
    total = [r for r in rows if r["layer"] == "total"]
    sp = [float(r["speedup"]) for r in total]
    assert sp[0] == 1.0 and all(b > a for a, b in zip(sp, sp[1:]))
    assert all(float(r["speedup"]) <= int(r["n_pes"]) for r in total)
    assert all(0 < float(r["load_balance_efficiency"]) <= 1 for r in rows)
    assert [p["config"]["n_pes"] for p in js["points"]] == [1, 2, 4, 8]
    assert "| 8 |" in (out / "sweep.md").read_text()
    assert "[sweep] 4/4" in capsys.readouterr().out


def test_queue_depth_sweep_monotone(tmp_path, small_npz):
    rows, _ = sweep(tmp_path / "q", small_npz, "pe2", "queue_depth", "1,2,4,...,16")
    cyc = totals(rows, "cycles")
    # a deeper queue never delays a broadcast
    assert all(b <= a for a, b in zip(cyc, cyc[1:])) and cyc[-1] < cyc[0]
    eff = totals(rows, "load_balance_efficiency")
    assert all(b >= a for a, b in zip(eff, eff[1:]))


def test_rel_index_bits_sweep_padding(tmp_path, small_npz):
    rows, _ = sweep(tmp_path / "z", small_npz, "pe1", "rel_index_bits", "1,2,4")
    pad = totals(rows, "padding_entries", int)
    assert pad[0] > pad[1] > pad[2]  # fewer relative-index bits: more padding entries


def test_bad_input(tmp_path, small_npz, capsys):
    out = tmp_path / "bad"
    for argv in (["--model", "no_such_model", "--param", "pes", "--values", "1"],
                 ["--model", str(small_npz), "--param", "queue_depth", "--values", "0,1"],
                 ["--model", str(small_npz), "--param", "pes", "--values", "1,..."]):
        with pytest.raises(SystemExit) as e:
            main(argv + ["--out", str(out)])
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "queue_depth" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.verilator
def test_check_rtl(tmp_path, small_npz):
    """One point of a queue-depth sweep on tiny re-run on the RTL: equal.  Which point is
    checked depends on which Verilator builds are cached (both qualify, being small)."""
    _, js = sweep(tmp_path / "rtl", small_npz, "tiny", "queue_depth", "1,2", "--check-rtl", "1")
    (c,) = js["rtl_checks"]
    assert c["value"] in (1, 2) and c["config"].startswith("tiny")
    assert c["cycles_equal"] and c["counters_equal"] and c["outputs_match_golden"]
    point = next(p for p in js["points"] if p["value"] == c["value"])
    assert c["rtl_cycles"] == [lay["cycles"] for lay in point["layers"]]


@pytest.mark.parametrize("how", ["address", "file"])
def test_sweep_on_a_dask_cluster(tmp_path, small_npz, how):
    """SCHEDULER= sends the points to a Dask cluster (here a local one on 127.0.0.1, named by
    its address or by a scheduler file): the same points as the local process pool."""
    sched_file = tmp_path / "scheduler.json"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      scheduler_kwargs={"scheduler_file": str(sched_file)}) as cluster:
        target = cluster.scheduler_address if how == "address" else str(sched_file)
        assert target.startswith("tcp://127.0.0.1:") or sched_file.exists()
        rows, js = sweep(tmp_path / "d", small_npz, "tiny", "pes", "2,4", "--scheduler", target)
    local_rows, _ = sweep(tmp_path / "l", small_npz, "tiny", "pes", "2,4", "--jobs", "1")
    assert totals(rows, "cycles") == totals(local_rows, "cycles")
    assert [p["value"] for p in js["points"]] == [2, 4]


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_at_once(tmp_path):
    """Ctrl-C during a sweep over two processes ends it in one line within seconds, the queued
    points cancelled and the running ones ended (the pool used to wait for every point)."""
    env = {**os.environ, "EIEGEN_BUILD_DIR": str(tmp_path / "b")}
    p = subprocess.Popen([sys.executable, "-m", "sim.studies.sweep", "--model", "alexnet_fc",
                          "--param", "pes", "--values", "16,32,64,128,256", "--jobs", "2",
                          "--out", str(tmp_path / "s")], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=_default_sigint)
    # wait until the pool has started (the main process loads the model first), then give
    # its two processes a moment to be inside their compiles
    line = p.stdout.readline()
    assert "[sweep] alexnet_fc" in line and "process(es)" in line, line
    time.sleep(3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert time.monotonic() - t0 < 10, "the sweep did not stop promptly"
    assert p.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert not (tmp_path / "s" / "sweep.json").exists()


def _default_sigint():
    """In the child: SIGINT to its default, so that Python installs its KeyboardInterrupt
    handler (a test run started in the background inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
