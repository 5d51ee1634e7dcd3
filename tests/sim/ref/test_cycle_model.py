"""The fast cycle model (sim/ref/cycle_model.py): hand-computed cases, its two solvers against each
other, and (slow) exact equality with the RTL on randomized small-preset networks.

Hand-computed timing (docs/architecture.md sections 5-6, hw/pe.py): SETUP is cycle 0, group 0
is inspected in cycle 1, the first broadcast fires in cycle 2, its PE pops it in 3, holds the
pointers in 4 and loads the sparse-matrix read unit there (cycle L), emits entries in
L+1 .. L+c and is idle from L+c+4; wb_go follows, and the write-back takes rows_local + 4 more
cycles to the end of the layer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from compiler.encode import encode_layer
from compiler.layout import build_images
from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.arch.regmap import COUNTER_NAMES
from sim.ref.cycle_model import (_solve_sequential, _solve_windows, group_structure, run_passes,
                                 run_model)
from sim.ref.result import compare
from sim.rtl.runner import run_rtl
from tests.conftest import random_index_matrix, write_model, write_random_model


def one_layer(tmp_path, cfg, q, x, name="m"):
    """A one-layer model with index matrix ``q`` (rows x cols) and input ``x``."""
    q = np.asarray(q)
    cb = np.arange(cfg.codebook_size)
    return write_model(tmp_path / name, cfg, [q], [cb], [4], [np.zeros(q.shape[0], int)],
                       [False], np.asarray([x]))


@pytest.mark.parametrize("c", [1, 5, 8, 9, 16])
def test_one_column_on_one_pe(tmp_path, c):
    """pe1, one non-zero input whose column has c entries (rows 0..c-1, no padding)."""
    cfg = PRESETS["pe1"]
    d = one_layer(tmp_path, cfg, np.ones((c, 1), int), [3])
    r = run_model(d, cfg)
    # fire 2, pop 3, load 4, entries 5..4+c, idle from c+8 = wb_go; write-back c rows + 4
    assert r.cycles == [[(c + 8) + c + 4]]
    cnt = {k: v[0] for k, v in r.counters[0][0].items()}
    assert cnt["entries"] == cnt["busy"] == c
    # busy from 3 (queue) to c+7 (last add); 0..c+8 computing: cycles 0, 1, 2 and c+8 idle
    assert cnt["starved"] == 4
    assert cnt["full"] == 0
    assert cnt["spmat_reads"] == -(-c // cfg.entries_per_word)
    assert cnt["pushes"] == cnt["ptr_reads"] == cnt["src_reads"] == 1
    assert cnt["acc_reads"] == cnt["acc_writes"] == c + c
    assert cnt["act_writes"] == c


@pytest.mark.parametrize("depth, period, extra", [(1, 2, 5), (2, 1, 6)])
def test_queue_full_stalls(tmp_path, depth, period, extra):
    """m one-entry columns on one PE: a full depth-1 queue cannot take a push in the cycle it is
    popped, so it passes one column every two cycles; depth 2 passes one per cycle."""
    cfg = PRESETS["pe1"].replace(queue_depth=depth)
    m = 20
    d = one_layer(tmp_path, cfg, np.ones((1, m), int), np.arange(1, m + 1))
    r = run_model(d, cfg)
    last = 2 + period * (m - 1)  # last broadcast; its entry is loaded at last + 2
    assert r.cycles == [[last + 2 + 1 + 4 + 1 + 4]]
    assert r.counters[0][0]["full"] == [(m - 1) if depth == 1 else 0]
    assert r.cycles[0][0] == period * m + extra + 7


def test_zero_groups_and_empty_columns(tmp_path):
    """tiny (4 PEs), an all-zero weight matrix (every column empty), two non-zero inputs.

    Far apart (groups 0 and 5, four all-zero groups between): group 5 is loaded at
    max(C_0 + 4 + 1, T_0) = 6 and fires at 7; its empty column is popped at 8, dropped at 9,
    the PE is idle at 10 = wb_go; 10 + 1 row + 4 = 15 cycles.  In adjacent groups (0 and 1):
    the second fires at 3, the four trailing all-zero groups keep the scan until 2 + 4 = 6,
    wb_go = 7, 12 cycles.
    """
    cfg = PRESETS["tiny"]
    q = np.zeros((4, 24), int)
    x = np.zeros(24, int)
    x[0] = x[20] = 1
    far = run_model(one_layer(tmp_path, cfg, q, x, "a"), cfg)
    x[20], x[4] = 0, 1
    near = run_model(one_layer(tmp_path, cfg, q, x, "b"), cfg)
    assert far.cycles == [[15]] and near.cycles == [[12]]
    # empty columns still pass the pointer read unit: two pointer reads, no entries
    assert far.counters[0][0]["ptr_reads"] == [2] * 4
    assert far.counters[0][0]["entries"] == [0] * 4


def random_timeline(rng, nb, n, density, long_frac, n_groups):
    count = random_index_matrix(rng, nb, n, density, 4)
    long = rng.random((nb, n)) < long_frac
    count = np.where(long, rng.integers(5, 40, (nb, n)), count)
    js = np.sort(rng.choice(n_groups * n, size=nb, replace=False))
    first, zb, _ = group_structure(js, n, n_groups * n)
    return count, first, zb


@pytest.mark.parametrize("seed", range(12))
def test_windows_equal_sequential(seed):
    """The vectorised solver against the plain recursion, with small windows so that groups,
    queue-full sources and PE states cross window boundaries."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 2, 4, 8, 64]))
    nb = int(rng.integers(1, 300))
    n_groups = int(rng.integers(-(-nb // n), 3 * -(-nb // n) + 2))
    count, first, zb = random_timeline(rng, nb, n, rng.uniform(0.05, 1), rng.uniform(0, 0.2),
                                       n_groups)
    for depth in (1, 2, 3, 8, 64):
        ref = _solve_sequential(count, first, zb, depth)
        for window in (1, 7, 64, 512):
            got = _solve_windows(count, first, zb, depth, window=window)
            for a, b in zip(ref, got):
                np.testing.assert_array_equal(a, b)


def test_counters_consistent(tmp_path):
    cfg = PRESETS["pe2"]
    d = write_random_model(tmp_path / "r", cfg, [(40, 30), (12, 40)], density=0.3,
                           n_samples=3, seed=5)
    r = run_model(d, cfg, counter_samples=3)
    man = json.loads((d / "manifest.json").read_text())
    assert len(r.counters) == 3 and len(r.cycles) == 3
    for s in range(3):
        for li, lay in enumerate(man["layers"]):
            c = {k: np.asarray(v) for k, v in r.counters[s][li].items()}
            assert tuple(c) == COUNTER_NAMES
            rl = -(-lay["out_len"] // cfg.n_pes)
            assert (c["busy"] == c["entries"]).all()
            assert (c["pushes"] == r.broadcasts[s][li]).all()
            assert (c["acc_reads"] == c["entries"] + rl).all()
            assert (c["starved"] + c["entries"] <= r.cycles[s][li]).all()


def test_bad_inputs(tmp_path):
    cfg = PRESETS["pe2"]
    d = write_random_model(tmp_path / "r", cfg, [(10, 10)], n_samples=1)
    with pytest.raises(EIEError, match="another configuration"):
        run_model(d, PRESETS["tiny"])
    with pytest.raises(EIEError, match="sample 3 out of range"):
        run_model(d, cfg, samples=[3])
    with pytest.raises(EIEError, match="no compiled model"):
        run_model(tmp_path / "nothing", cfg)


# ---- exact equality with the RTL (Verilator) ----

# (preset, queue depth or None for the preset's, seed); the network is drawn from the seed
RTL_CASES = [
    ("tiny", None, 0), ("tiny", 1, 1), ("tiny", 8, 2), ("pe1", None, 3), ("pe2", None, 4),
    ("pe2", 1, 5), ("pe8", None, 6),
    # eie's features on a tiny array: 4 accumulators (output batches), 64 pointers and 64 Spmat
    # words per PE (column batches, segments, reloads between samples)
    ("tiny-batch", None, 7), ("tiny-batch", 1, 8), ("tiny-batch", None, 9),
]
CONFIGS = {**PRESETS, "tiny-batch": PRESETS["tiny"].replace(
    name="tiny-batch", acc_depth=4, ptr_depth=64, spmat_depth=64)}


def random_network(tmp_path, cfg, seed):
    """A random chained network that fits ``cfg`` (at most 3 layers, vectors <= 160)."""
    rng = np.random.default_rng(seed)
    top = min(cfg.max_vector, 160)
    for attempt in range(20):
        cols = int(rng.integers(1, top + 1))
        shapes = []
        for _ in range(int(rng.integers(1, 4))):
            rows = int(rng.integers(1, top + 1))
            shapes.append((rows, cols))
            cols = rows
        try:
            return write_random_model(
                tmp_path / f"net{attempt}", cfg, shapes,
                density=float(rng.choice([0.03, 0.15, 0.4, 0.8])),
                act_density=float(rng.choice([0.1, 0.5, 0.95])), n_samples=3, seed=seed)
        except EIEError:
            continue  # does not fit this preset's memories: draw again
    raise AssertionError("no network fits")  # pragma: no cover


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize("preset, depth, seed", RTL_CASES,
                         ids=[f"{p}-q{d or CONFIGS[p].queue_depth}-s{s}" for p, d, s in RTL_CASES])
def test_equal_to_rtl(tmp_path, preset, depth, seed):
    cfg = CONFIGS[preset] if depth is None else CONFIGS[preset].replace(queue_depth=depth)
    d = random_network(tmp_path, cfg, seed)
    rtl = run_rtl(d, cfg, progress=None, counter_samples=3)
    assert rtl.match
    model = run_model(d, cfg, counter_samples=3)
    c = compare(rtl, model)
    assert c.samples == [0, 1, 2] and c.cycles_equal and c.counters_equal
    assert model.cycles == rtl.cycles and model.counters == rtl.counters


def test_pointer_segments_read_their_own_banks():
    """A layer of a segment that reloads the pointers reads that segment's banks: its cycles and
    counters equal those of the same layers laid out with room for every pointer (same Spmat
    word alignment, the output registers emptied at the same segment boundary)."""
    rng = np.random.default_rng(5)
    shapes = [(40, 50), (30, 40), (12, 30)]
    enc = [encode_layer(random_index_matrix(rng, r, c, 0.4, 16), PRESETS["tiny"])
           for r, c in shapes]
    args = ([np.arange(16)] * 3, [4] * 3, [np.zeros(r) for r, _ in shapes], [True] * 3,
            ["a", "b", "c"])
    seg = build_images(enc, *args, PRESETS["tiny"].replace(ptr_depth=80))
    wide = build_images(enc, *args, PRESETS["tiny"])
    assert [p["ptr_base"] for p in seg.passes] == [0, 0, 41] and seg.ptr_segments
    for p, s in zip(wide.passes, seg.passes):
        p["segment"] = s["segment"]
    xs = [rng.integers(-50, 50, (2, c)) for _, c in shapes]
    a = run_passes(seg.cfg, seg.ptr_even, seg.ptr_odd, seg.layers, seg.passes, xs,
                   chained=False, counter_samples=2, ptr_segments=seg.ptr_segments)
    b = run_passes(wide.cfg, wide.ptr_even, wide.ptr_odd, wide.layers, wide.passes, xs,
                   chained=False, counter_samples=2)
    assert a.cycles == b.cycles and a.counters == b.counters
