"""The eie preset (EIE's pointer SRAM and destination register file) on the full-size models:
what runs in segments, and what is refused until output batches and long inputs exist."""

from __future__ import annotations

import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
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
    lay = c.manifest["layers"]
    assert [m["segment"] for m in lay] == [0, 0, 1]
    assert [m["ptr_segment"] for m in lay] == [0, 0, 1]
    assert [m["ptr_base"] for m in lay] == [0, 9217, 0]  # fc8's pointers restart at 0
    seg = c.manifest["memory"]["segments"]
    assert [s["ptr_words"] for s in seg] == [13314, 4098]


def test_what_eie_cannot_run_yet_is_refused_in_one_line():
    with pytest.raises(EIEError, match="NT-Wd does not fit the accumulators: 8791 rows are 138"):
        compile_network(load_model("neuraltalk"), EIE, progress=quiet)
    with pytest.raises(EIEError, match="fc6 does not fit the pointer SRAM: needs 25089"):
        compile_network(load_model("vgg_fc"), EIE, progress=quiet)
