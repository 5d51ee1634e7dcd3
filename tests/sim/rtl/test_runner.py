"""The whole array on Verilator (cocotb bench sim/rtl/tb_eie.py) against the golden model.

Random chained networks on the small presets must come out bit-exact (the expected outputs are
``hw.arch.fixedpoint.finalize`` of the integer products, via sim.ref.golden), and loading through
the host interface must give exactly what the ``$fread`` preload gives: outputs, per-layer
cycles and every per-PE counter.  Each preset's Verilator build is cached (sim.rtl.build) and
shared by all tests; the first build of a preset takes about 25 s, hence the slow marker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from compiler.options import Options
from hw.arch.config import PRESETS
from hw.arch.memories import pe_memories
from models.network import Layer, Network
from sim.flow.compile import compile_into
from sim.ref.cycle_model import run_model
from sim.ref.result import compare
from sim.rtl import tools
from sim.rtl.build import build_simulator
from sim.rtl.runner import run_rtl
from tests.conftest import write_random_model

pytestmark = [pytest.mark.slow, pytest.mark.verilator]

# (preset, layer shapes (rows, cols), weight density, seed); shapes fit max_vector of each preset
CASES = [
    ("tiny", [(10, 12), (7, 10)], 0.3, 0),
    ("tiny", [(100, 60), (37, 100), (9, 37)], 0.05, 1),  # long zero runs: padding entries
    ("tiny", [(128, 128)], 0.4, 2),  # full activation memories, 80 % of the Spmat
    ("pe1", [(20, 30), (5, 20)], 0.2, 3),
    ("pe2", [(33, 17), (16, 33)], 0.4, 4),
]


@pytest.fixture(scope="session")
def simulators():
    """Build each preset once per session (or reuse the cache)."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = build_simulator(PRESETS[name], progress=None)
        return built[name]

    return get


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    out = {}
    for i, (preset, shapes, density, seed) in enumerate(CASES):
        out[i] = write_random_model(tmp_path_factory.mktemp(f"m{i}"), PRESETS[preset], shapes,
                                    density=density, n_samples=3, seed=seed)
    return out


@pytest.mark.parametrize("case", range(len(CASES)),
                         ids=[f"{c[0]}-{len(c[1])}L-s{c[3]}" for c in CASES])
def test_bit_exact_and_host_equals_preload(case, simulators, model_dirs):
    preset = CASES[case][0]
    cfg = PRESETS[preset]
    simulators(preset)
    pre = run_rtl(model_dirs[case], cfg, preload=True, progress=None, counter_samples=3)
    assert pre.match, (pre.outputs, pre.expected)
    host = run_rtl(model_dirs[case], cfg, preload=False, progress=None, counter_samples=3)
    assert host.match
    assert host.outputs == pre.outputs
    assert host.timing_equals(pre)
    assert host.cycles == pre.cycles and host.counters == pre.counters
    # the $fread preload vs every word through the host interface
    assert pre.preload and not host.preload
    assert host.host_writes > pre.host_writes


def test_host_player_equals_python_port_driver(simulators, model_dirs):
    """The harness's host player (sim.rtl.harness) drives eie_top's ports as the bench's Python
    driver does: loading every word through the host interface, reading every layer's output
    and every counter both ways gives the same outputs, cycles, counters and write count."""
    cfg = PRESETS["tiny"]
    simulators("tiny")
    runs = [run_rtl(model_dirs[1], cfg, preload=False, progress=None, counter_samples=2,
                    layer_outputs=True, host_player=player) for player in (True, False)]
    play, ports = runs
    assert play.match and ports.match
    assert play.outputs == ports.outputs and play.layer_outputs == ports.layer_outputs
    assert play.cycles == ports.cycles and play.counters == ports.counters
    assert play.host_writes == ports.host_writes > 0


def test_counters_are_consistent(simulators, model_dirs):
    """Per-layer counters: entries = the PE's stored entries of the columns broadcast."""
    cfg = PRESETS["tiny"]
    simulators("tiny")
    res = run_rtl(model_dirs[0], cfg, samples=[1], progress=None, layer_outputs=True)
    assert res.match
    (layers,) = res.counters
    assert len(layers) == 2 and len(res.cycles[0]) == 2
    for lay, cyc in zip(layers, res.cycles[0]):
        assert all(len(v) == cfg.n_pes for v in lay.values())
        assert all(b <= cyc for b in lay["busy"])
        # every pushed activation was popped; every entry went through the arithmetic unit
        assert lay["busy"] == lay["entries"]
    # the last layer's output read at the final snapshot equals the final output
    assert res.layer_outputs[0][-1] == res.outputs[0]


def test_sample_subset(simulators, model_dirs):
    cfg = PRESETS["pe2"]
    simulators("pe2")
    said = []
    res = run_rtl(model_dirs[4], cfg, samples=[2, 0], progress=said.append, counter_samples=0)
    assert res.samples == [2, 0]
    assert res.match
    assert res.counters == []
    # the log the run pointed at outlives its run directory
    kept = model_dirs[4] / "sim.log"
    assert f"[eiegen] log kept as {kept}" in said and kept.stat().st_size > 0
    assert not any(Path(line.split("log ")[-1]).exists() for line in said
                   if line.startswith("[eiegen] simulating"))  # the run directory is gone


def test_a_long_run_tells_its_progress_while_it_runs(simulators, tmp_path):
    """One simulator process for every sample; the bench's progress file gives lines with the
    samples done and the time left while it runs (sim.rtl.runner.ProgressWatch)."""
    cfg = PRESETS["tiny"]
    simulators("tiny")
    model = write_random_model(tmp_path, cfg, [(40, 30), (9, 40)], density=0.3,
                               n_samples=600, seed=7)
    said = []
    res = run_rtl(model, cfg, progress=said.append, progress_every=0.05, counter_samples=1)
    assert res.match and res.samples == list(range(600)) and len(res.counters) == 1
    lines = [m for m in said if m.startswith("[eiegen] RTL: ") and " to go" in m]
    assert lines, said
    done = [int(m.split()[2].replace(",", "")) for m in lines]
    assert done == sorted(set(done)) and 0 < done[0] and done[-1] < 600
    assert all(" of 600 samples in " in m for m in lines)


def test_spmat_segments_reload_between_layers(simulators, tmp_path):
    """Layers that do not fit the Spmat SRAM together run segment by segment (EIE's I/O mode),
    the next segment starting from the RTL's own output; bit-exact with both loading paths."""
    cfg = PRESETS["tiny"]
    simulators("tiny")
    d = write_random_model(tmp_path / "seg", cfg, [(100, 100), (100, 100), (9, 100)],
                           density=0.5, n_samples=2, seed=7)
    man = json.loads((d / "manifest.json").read_text())
    assert [p["segment"] for p in man["passes"]] == [0, 1, 1]
    pre = run_rtl(d, cfg, preload=True, progress=None, counter_samples=1, layer_outputs=True)
    assert pre.reloads == 3  # segment 1, back to 0 for the second sample, 1 again
    c = compare(pre, run_model(d, cfg))
    assert c.cycles_equal and c.counters_equal
    assert pre.segments == 2
    assert pre.match, (pre.outputs, pre.expected)
    assert len(pre.cycles[0]) == 3 and len(pre.counters[0]) == 3
    assert len(pre.layer_outputs[0]) == 3
    host = run_rtl(d, cfg, preload=False, progress=None, counter_samples=1)
    assert host.match and host.timing_equals(pre)


# (ptr_depth, shapes, density, seed, segment, ptr_segment, ptr_base of every layer)
PTR_CASES = [
    # 51 + 41 pointers do not fit 80, 41 + 31 do
    (80, [(40, 50), (30, 40), (12, 30)], 0.4, 11, [0, 1, 1], [0, 1, 1], [0, 0, 41]),
    # a pointer-only boundary (layer 1), then a Spmat-only one (layer 3) that keeps segment 1's
    # pointers resident
    (140, [(20, 128), (30, 20), (60, 30), (128, 60)], 0.9, 12, [0, 1, 1, 2], [0, 1, 1, 1],
     [0, 0, 21, 52]),
]


@pytest.mark.parametrize("case", PTR_CASES, ids=["ptr-seg", "ptr-then-spmat-seg"])
def test_pointer_segments_reload_the_pointer_banks(case, tmp_path):
    """Layers whose pointers do not fit the pointer SRAM together (a tiny array with few
    pointers per PE) run in segments whose pointers restart at 0: bit-exact with the ``$fread``
    preload and with host loading, and cycle for cycle (every counter too) equal to the cycle
    model."""
    ptr_depth, shapes, density, seed, segment, ptr_segment, ptr_base = case
    cfg = PRESETS["tiny"].replace(ptr_depth=ptr_depth)
    build_simulator(cfg, progress=None)
    d = write_random_model(tmp_path / "ptrseg", cfg, shapes, density=density, n_samples=2,
                           seed=seed)
    man = json.loads((d / "manifest.json").read_text())
    assert [p["segment"] for p in man["passes"]] == segment
    assert [p["ptr_segment"] for p in man["passes"]] == ptr_segment
    assert [p["ptr_base"] for p in man["passes"]] == ptr_base
    pre = run_rtl(d, cfg, preload=True, progress=None, counter_samples=2)
    assert pre.segments == segment[-1] + 1 and pre.match, (pre.outputs, pre.expected)
    c = compare(pre, run_model(d, cfg, counter_samples=2))
    assert c.cycles_equal and c.counters_equal
    host = run_rtl(d, cfg, preload=False, progress=None, counter_samples=2)
    assert host.match and host.timing_equals(pre)


def test_waves_write_a_waveform(tmp_path):
    """WAVES=1: a tracing build (its own cache entry) writes dump.fst into the kept run dir
    (dump.vcd on a machine without the lz4 headers Verilator's FST writer needs)."""
    cfg = PRESETS["pe1"]
    d = write_random_model(tmp_path / "w", cfg, [(6, 5)], density=0.5, n_samples=1, seed=9)
    res = run_rtl(d, cfg, waves=True, progress=None)
    assert res.match
    name = "dump.fst" if tools.fst_supported() else "dump.vcd"
    (w,) = Path(res.run_dir).rglob("dump.*")
    assert w.name == name and w.stat().st_size > 0
    head = w.read_bytes()[:16]
    if name == "dump.fst":
        assert head[:1] == b"\x00"  # FST header block, not VCD text
    else:
        assert b"$" in head  # VCD keywords
    shutil.rmtree(res.run_dir)


def test_fewer_accumulators_than_activation_words(tmp_path):
    """acc_depth < act_depth (EIE's destination register file is smaller than the activation
    SRAM): a layer that uses every accumulator runs in one pass, bit-exact and cycle-exact."""
    cfg = PRESETS["tiny"].replace(name="tiny-acc8", acc_depth=8)
    assert [m.depth for m in pe_memories(cfg) if m.name == "acc"] == [8]
    d = write_random_model(tmp_path / "m", cfg, [(32, 30), (20, 32)], density=0.3,
                           n_samples=2, seed=5)  # 32 rows = 8 per PE: every accumulator
    man = json.loads((d / "manifest.json").read_text())
    assert len(man["passes"]) == 2
    res = run_rtl(d, cfg, progress=None)
    assert res.match
    c = compare(res, run_model(d, cfg))
    assert c.cycles_equal and c.counters_equal


def test_output_batches_and_long_inputs(tmp_path):
    """A layer with 3x the rows the accumulators hold (96 rows, 24 per PE, 8 accumulators) runs
    in three output batches, each re-reading its input of 100 elements (over 3x the 8 x 4
    vector the destination register file could hold) from the activation SRAM; the next
    layer reads the whole 96-long vector.  Five passes need two runs of the 4 descriptor slots.
    Bit-exact with $readmemh and host loading, pass for pass equal to the cycle model."""
    cfg = PRESETS["tiny"].replace(name="tiny-acc8", acc_depth=8)
    d = write_random_model(tmp_path / "b", cfg, [(96, 100), (9, 96), (7, 9)], density=0.3,
                           n_samples=3, seed=21)
    man = json.loads((d / "manifest.json").read_text())
    assert [(p["row0"], p["dst_base"], p["keep"]) for p in man["passes"]] == \
        [(0, 0, 0), (32, 8, 0), (64, 16, 0), (0, 0, 0), (0, 0, 0)]
    assert man["layers"][0]["row_batches"] == 3
    assert {p["segment"] for p in man["passes"]} == {0}
    pre = run_rtl(d, cfg, progress=None, counter_samples=3, layer_outputs=True)
    assert pre.match, (pre.outputs, pre.expected)
    assert len(pre.pass_cycles[0]) == 5 and len(pre.cycles[0]) == 3
    model = run_model(d, cfg, counter_samples=3)
    assert model.pass_cycles == pre.pass_cycles
    c = compare(pre, model)
    assert c.cycles_equal and c.counters_equal
    # every batch broadcasts the input's non-zeros again
    with np.load(d / "golden.npz") as z:
        x0 = z["in0"][0]
    assert pre.counters[0][0]["pushes"] == [3 * int(np.count_nonzero(x0))] * cfg.n_pes
    host = run_rtl(d, cfg, preload=False, progress=None, counter_samples=3)
    assert host.match and host.timing_equals(pre)


def test_column_batches_keep_their_sums_across_a_reload(tmp_path):
    """A layer whose pointers do not fit the pointer SRAM alone (120 columns, 60 pointers per
    PE) runs in column batches, one segment each: the first ends without write-back and its
    partial sums stay in the accumulators while the host reloads the SRAMs.  Bit-exact with
    both loading paths and equal to the cycle model."""
    cfg = PRESETS["tiny"].replace(ptr_depth=60)
    build_simulator(cfg, progress=None)
    d = write_random_model(tmp_path / "c", cfg, [(40, 120), (11, 40)], density=0.5,
                           n_samples=2, seed=3)
    man = json.loads((d / "manifest.json").read_text())
    assert [(p["col0"], p["col_group"], p["keep"], p["segment"]) for p in man["passes"]] == \
        [(0, 0, 1, 0), (40, 10, 1, 1), (80, 20, 0, 2), (0, 0, 0, 3)]
    pre = run_rtl(d, cfg, progress=None, counter_samples=2)
    assert pre.match, (pre.outputs, pre.expected)
    c = compare(pre, run_model(d, cfg, counter_samples=2))
    assert c.cycles_equal and c.counters_equal
    # a keep pass writes nothing back
    assert pre.pass_counters[0][0]["act_writes"] == [0] * cfg.n_pes
    host = run_rtl(d, cfg, preload=False, progress=None, counter_samples=2)
    assert host.match and host.timing_equals(pre)


@pytest.mark.parametrize("preset, changes, sizes, seed", [
    ("tiny", {}, [40, 57, 23, 9], 1),
    ("tiny", {"acc_depth": 4, "ptr_depth": 64, "name": "tiny-batch"}, [30, 90, 40, 12], 2),
    ("pe2", {}, [19, 33, 8], 3)])
def test_row_permutation_leaves_every_output_unchanged_on_the_rtl(tmp_path, preset, changes,
                                                                  sizes, seed):
    """A random chained network compiled with the row permutation and with --no-permute: the
    RTL's outputs, read back in the user's order, equal bit for bit, both equal the golden
    model, and the permuted layout's cycles and counters equal the cycle model's."""
    cfg = PRESETS[preset].replace(**changes)
    rng = np.random.default_rng(seed)
    layers = []
    for li, (cols, rows) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = rng.standard_normal((rows, cols)) * np.geomspace(0.05, 1, rows)[:, None]
        rng.shuffle(W)
        layers.append(Layer(f"fc{li}", W, rng.standard_normal(rows) * 0.1,
                            relu=li < len(sizes) - 2, density=0.3, act_density=None))
    net = Network("perm", layers, np.abs(rng.standard_normal((3, sizes[0]))), labels=None,
                  synthetic=True, description="test network")
    runs = {}
    for permute in (True, False):
        out = tmp_path / f"perm{permute}"
        c = compile_into(net, cfg, Options(permute=permute), out, progress=lambda m: None)
        assert (c.manifest["layers"][0]["row_order"] is not None) == permute
        runs[permute] = run_rtl(out, cfg, progress=None, counter_samples=3, layer_outputs=True)
        assert runs[permute].match
        m = compare(runs[permute], run_model(out, cfg, counter_samples=3))
        assert m.cycles_equal and m.counters_equal
    assert runs[True].outputs == runs[False].outputs
    assert runs[True].layer_outputs == runs[False].layer_outputs
