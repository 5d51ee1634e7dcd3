"""Area model on a hand-made synthesis result; memory inventory from the configuration."""

from __future__ import annotations

import pytest

from hw.arch.config import PRESETS
from sim.estimates.area import AREA_ROWS, pe_area
from sim.estimates.energy import load_table
from hw.arch.memories import pe_memories


def fake_asic():
    z = {"mem_cells": 0, "unknown_cells": []}
    return {"pe_units": {"eie_pe": {"transistors": 100, "ff_bits": 10, **z},
                         "eie_pe.arith": {"transistors": 1000, "ff_bits": 20, **z},
                         "eie_pe.queue.fifo": {"transistors": 40, "ff_bits": 44, **z}},
            "top": {"transistors": 0, "ff_bits": 0}}


def test_pe_area_by_hand():
    cfg = PRESETS["pe1"]
    a = pe_area(cfg, fake_asic(), load_table())
    # pe1 SRAMs (> 1024 bits): ptr 2 x 256 x 12, Spmat 256 x 64, acc 64 x 32, bias 128 x 16
    assert a["sram_bits"]["PtrRead"] == 2 * 256 * 12
    assert a["sram_bits"]["SpmatRead"] == 256 * 64
    assert a["sram_bits"]["ActRW"] == 64 * 32 + 128 * 16
    assert a["sram_um2"]["SpmatRead"] == pytest.approx(256 * 64 * 0.45)
    assert a["logic_um2"]["ArithmUnit"] == pytest.approx(1000 * 0.09 + 20 * 2.04)
    assert a["logic_um2"]["Act queue"] == pytest.approx(40 * 0.09 + 44 * 2.04)
    assert a["logic_um2"]["PE control + counters"] == pytest.approx(100 * 0.09 + 10 * 2.04)
    sram = (2 * 256 * 12 + 256 * 64 + 64 * 32 + 128 * 16) * 0.45
    logic = 1140 * 0.09 + 74 * 2.04
    assert a["total_um2"] == pytest.approx((sram + logic) * 1.04)
    assert set(a["rows_um2"]) == set(AREA_ROWS)


def test_eie64_memories_match_the_config():
    cfg = PRESETS["eie64"]
    mems = {m.name: m for m in pe_memories(cfg)}
    assert mems["spmat"].kbytes == cfg.spmat_kbytes_per_pe == 128
    assert mems["ptr_even"].depth + mems["ptr_odd"].depth == cfg.ptr_depth
    assert mems["ptr_even"].width == cfg.ptr_bits == 18
    assert mems["act_queue"].is_regfile(0) and not mems["spmat"].is_regfile(1024)
