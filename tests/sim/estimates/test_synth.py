"""sim.estimates.synth: the zero-initialisation filter, and a synthesis smoke test on pe1."""

from __future__ import annotations

import pytest

from hw.arch.config import PRESETS
from sim.estimates.synth import run_synth, strip_zero_init


def test_strip_zero_init_keeps_nonzero_blocks():
    v = ("module m;\n  reg [7:0] a [1:0];\n  initial begin\n    a[0] = 8'h00;\n    a[1] = 8'h00;\n"
         "  end\n  reg [7:0] b [1:0];\n  initial begin\n    b[0] = 8'h01;\n    b[1] = 8'h00;\n"
         "  end\nendmodule\n")
    out, n = strip_zero_init(v)
    assert n == 1 and "a[0]" not in out and "b[0] = 8'h01;" in out
    # Yosys writes 32-bit zeros in decimal
    v32 = "  reg [31:0] c [1:0];\n  initial begin\n    c[0] = 32'd0;\n    c[1] = 32'd0;\n  end\n"
    assert strip_zero_init(v32)[1] == 1


@pytest.mark.slow
@pytest.mark.yosys
def test_synth_smoke_pe1(tmp_path):
    cfg = PRESETS["pe1"]
    res = run_synth(cfg, ("asic", "xilinx"), root=tmp_path, force=True, progress=lambda m: None)
    x = res["xilinx"]
    # the PE's 11 x 32-bit counters alone are 352 flip-flops; one multiplier -> one DSP
    assert x["pe"]["ff"] >= 352 and x["pe"]["lut"] > 100 and x["pe"]["dsp"] >= 1
    assert x["array"]["lut"] == x["top"]["lut"] + x["pe"]["lut"]
    a = res["asic"]
    # pe1: ptr even/odd, Spmat, acc, bias stay SRAM macros; the rest became flip-flops
    assert sorted(a["sram_macros"]) == ["acc", "bias", "ptr_even", "ptr_odd", "spmat"]
    assert a["pe_units"]["eie_pe.arith"]["transistors"] > 1000
    assert a["pe_units"]["eie_pe"]["ff_bits"] >= 352
    # a second run comes from the cache
    again = run_synth(cfg, ("asic",), root=tmp_path, progress=lambda m: None)
    assert again["asic"] == a
