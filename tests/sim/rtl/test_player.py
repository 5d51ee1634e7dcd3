"""The host player's operation format (sim.rtl.player) and the harness Verilog that plays it."""

from __future__ import annotations

import numpy as np

from hw.arch.config import PRESETS
from hw.arch.regmap import COUNTER_READ_LATENCY, HOST_READ_LATENCY
from sim.rtl.harness import harness_ports, harness_verilog
from sim.rtl.player import OP_COUNTER, OP_READ, OP_WRITE, encode_program, read_results


def test_program_fields_and_end():
    text = encode_program([OP_WRITE, OP_READ, OP_COUNTER], space=[5, 0, 0], pe=[63, 2, 7],
                          addr=[0x12345678, 9, 15],
                          data=np.array([2**64 - 1, 0, 0], dtype=np.uint64))
    lines = text.split()
    assert len(lines) == 4 and lines[-1] == "0" * 32  # the end operation
    words = [int(w, 16) for w in lines]
    assert words[0] >> 124 == OP_WRITE and (words[0] >> 120) & 0xF == 5
    assert (words[0] >> 96) & 0xFFFFFF == 63 and (words[0] >> 64) & 0xFFFFFFFF == 0x12345678
    assert words[0] & (2**64 - 1) == 2**64 - 1
    assert words[1] >> 124 == OP_READ and (words[1] >> 96) & 0xFFFFFF == 2
    assert words[2] >> 124 == OP_COUNTER and (words[2] >> 64) & 0xFFFFFFFF == 15


def test_negative_int64_words_keep_their_bits():
    """A Spmat word with its top bit set, held as int64, is written with all 64 bits."""
    word = np.array([0x86110E0704060A1D], dtype=np.uint64).view(np.int64)
    line = encode_program(OP_WRITE, data=word).split()[0]
    assert int(line, 16) & (2**64 - 1) == 0x86110E0704060A1D


def test_results_file(tmp_path):
    p = tmp_path / "played.hex"
    p.write_text("// comment\n0000000000000005\nffffffffffffffff\n")
    assert read_results(p, 2).tolist() == [5, -1]
    assert read_results(p, 0).size == 0


def test_harness_has_every_port_and_the_latencies():
    cfg = PRESETS["tiny"]
    v = harness_verilog(cfg)
    header = next(line for line in v.splitlines() if line.startswith("module eiegen_sim("))
    names = header[header.index("(") + 1:header.rindex(")")].split(", ")
    assert names == [p["name"] for p in harness_ports(cfg)]
    assert {"clk", "rst", "host_we", "cnt_value", "eiegen_play", "eiegen_playing"} <= set(names)
    # captures are timed by the register map's latencies
    assert f"eiegen_rd_pipe[{HOST_READ_LATENCY}][32]" in v
    assert f"eiegen_cn_pipe[{COUNTER_READ_LATENCY}][32]" in v
    assert "eie_top eie_top (" in v
