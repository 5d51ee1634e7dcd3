"""The whole array on Verilator (cocotb bench sim/rtl/tb_eie.py) against the golden model.

Random chained networks on the small presets must come out bit-exact (the expected outputs are
``hw.arch.fixedpoint.finalize`` of the integer products, via sim.ref.golden), and loading through
the host interface must give exactly what ``$readmemh`` preloading gives: outputs, per-layer
cycles and every per-PE counter.  Each preset's Verilator build is cached (sim.rtl.build) and
shared by all tests; the first build of a preset takes about 25 s, hence the slow marker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.arch.memories import pe_memories
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
    # $readmemh preloading vs every word through the host interface
    assert pre.preload and not host.preload
    assert host.host_writes > pre.host_writes


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
    res = run_rtl(model_dirs[4], cfg, samples=[2, 0], progress=None, counter_samples=0)
    assert res.samples == [2, 0]
    assert res.match
    assert res.counters == []


def test_spmat_segments_reload_between_layers(simulators, tmp_path):
    """Layers that do not fit the Spmat SRAM together run segment by segment (EIE's I/O mode),
    the next segment starting from the RTL's own output; bit-exact with both loading paths."""
    cfg = PRESETS["tiny"]
    simulators("tiny")
    d = write_random_model(tmp_path / "seg", cfg, [(100, 100), (100, 100), (9, 100)],
                           density=0.5, n_samples=2, seed=7)
    man = json.loads((d / "manifest.json").read_text())
    assert [lay["segment"] for lay in man["layers"]] == [0, 1, 1]
    pre = run_rtl(d, cfg, preload=True, progress=None, counter_samples=1, layer_outputs=True)
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
    pointers per PE) run in segments whose pointers restart at 0: bit-exact with ``$readmemh``
    and with host loading, and cycle for cycle (every counter too) equal to the cycle model."""
    ptr_depth, shapes, density, seed, segment, ptr_segment, ptr_base = case
    cfg = PRESETS["tiny"].replace(ptr_depth=ptr_depth)
    build_simulator(cfg, progress=None)
    d = write_random_model(tmp_path / "ptrseg", cfg, shapes, density=density, n_samples=2,
                           seed=seed)
    man = json.loads((d / "manifest.json").read_text())
    assert [lay["segment"] for lay in man["layers"]] == segment
    assert [lay["ptr_segment"] for lay in man["layers"]] == ptr_segment
    assert [lay["ptr_base"] for lay in man["layers"]] == ptr_base
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
    SRAM): a layer that uses every accumulator is bit-exact and cycle-exact, and one more row
    per PE is refused by the compiler."""
    cfg = PRESETS["tiny"].replace(name="tiny-acc8", acc_depth=8)
    assert [m.depth for m in pe_memories(cfg) if m.name == "acc"] == [8]
    d = write_random_model(tmp_path / "m", cfg, [(32, 30), (20, 32)], density=0.3,
                           n_samples=2, seed=5)  # 32 rows = 8 per PE: every accumulator
    res = run_rtl(d, cfg, progress=None)
    assert res.match
    c = compare(res, run_model(d, cfg))
    assert c.cycles_equal and c.counters_equal
    with pytest.raises(EIEError, match="does not fit the accumulators: 33 rows are 9 per PE"):
        write_random_model(tmp_path / "too_many", cfg, [(33, 30)], n_samples=1)
