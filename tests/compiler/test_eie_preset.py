"""The eie preset (EIE's pointer SRAM and destination register file) on the full-size models:
what runs in segments, output batches and column batches."""

from __future__ import annotations

import pytest

from hw.arch.config import PRESETS
from models import load_model
from sim.flow.compile import compile_network

EIE = PRESETS["eie"]
pytestmark = pytest.mark.slow  # full-size models (AlexNet's 58.6 M weights)


def quiet(msg):
    pass


def test_eie_geometry():
    assert (EIE.n_pes, EIE.ptr_depth, EIE.acc_words, EIE.spmat_kbytes_per_pe) == \
        (64, 16384, 64, 128.0)
    # two 512-word activation memories: EIE's 2 KB activation SRAM
    assert 2 * EIE.act_depth * EIE.act_bits // 8 == 2048


def test_alexnet_runs_in_two_pointer_segments():
    c = compile_network(load_model("alexnet_fc"), EIE, progress=quiet)
    lay = c.manifest["passes"]
    assert [m["segment"] for m in lay] == [0, 0, 1]
    assert [m["ptr_segment"] for m in lay] == [0, 0, 1]
    assert [m["ptr_base"] for m in lay] == [0, 9217, 0]  # fc8's pointers restart at 0
    seg = c.manifest["memory"]["segments"]
    assert [s["ptr_words"] for s in seg] == [13314, 4098]


def test_nt_wd_runs_in_three_output_batches():
    """NT-Wd: 8,791 rows = 138 per PE over 64 accumulators: three batches of 46 rows per PE,
    each with its own 601 pointers, written back at destination words 0, 46 and 92."""
    c = compile_network(load_model("neuraltalk"), EIE, progress=quiet)
    wd = c.manifest["layers"][1]
    assert (wd["name"], wd["row_batches"], wd["col_batches"]) == ("NT-Wd", 3, 1)
    ps = [c.manifest["passes"][p] for p in wd["passes"]]
    assert [(p["row0"], p["out_len"], p["dst_base"], p["keep"]) for p in ps] == \
        [(0, 2944, 0, 0), (2944, 2944, 46, 0), (5888, 2903, 92, 0)]
    assert wd["pointers_per_pe"] == 3 * 601 and wd["nnz"] == sum(
        int(sum(p["entries_per_pe"]) - sum(p["padding_per_pe"])) for p in ps)


def test_vgg6_runs_in_two_column_batches():
    """VGG-6's 25,089 pointers exceed the 16,384 of the pointer SRAM: two column batches of
    12,544 columns, the first without write-back, each in its own segment."""
    c = compile_network(load_model("vgg_fc"), EIE, progress=quiet)
    fc6 = [c.manifest["passes"][p] for p in c.manifest["layers"][0]["passes"]]
    assert [(p["col0"], p["in_len"], p["col_group"], p["keep"], p["segment"]) for p in fc6] == \
        [(0, 12544, 0, 1, 0), (12544, 12544, 196, 0, 1)]
