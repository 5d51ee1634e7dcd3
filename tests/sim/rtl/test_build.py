"""sim.rtl.build: cache keys and cache hits of Verilator builds.

The cache mechanics are tested with a stand-in ``eie_top`` (a counter, in a stand-in harness)
so they do not depend on the hardware generator; the real ``eie_top`` builds are exercised by
tests/sim/rtl/test_runner.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from sim.rtl import build
from sim.rtl.build import RUNTIME_OBJECTS, BuildProgress, preload_transform


def test_key_depends_on_config_and_waves():
    tiny, pe2 = PRESETS["tiny"], PRESETS["pe2"]
    k = build.build_key(tiny)
    assert k.startswith("tiny-")
    assert k == build.build_key(tiny)
    assert k != build.build_key(pe2)
    assert k != build.build_key(tiny.replace(queue_depth=4))
    assert k != build.build_key(tiny, waves=True)
    assert k != build.build_key(tiny, threads=2)


def test_key_depends_on_hw_sources(monkeypatch):
    tiny = PRESETS["tiny"]
    k = build.build_key(tiny)
    monkeypatch.setattr(build, "source_digest", lambda *pkgs: "0123456789abcdef")
    assert build.build_key(tiny) != k


STUB = """module eie_top(input clk, input rst, input start, output reg done);
  always @(posedge clk) done <= rst ? 1'b0 : start;
endmodule
"""
#: a stand-in for the simulation harness around it (sim.rtl.harness)
STUB_HARNESS = """module eiegen_sim(input clk, input rst, input start, output done);
  eie_top eie_top(.clk(clk), .rst(rst), .start(start), .done(done));
endmodule
"""


@pytest.fixture
def stub_generator(monkeypatch, tmp_path):
    """Point the build at ``tmp_path`` and replace Verilog generation by a stub."""
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    calls = []

    def fake_generate(cfg, out_dir, progress=None):
        calls.append(cfg.name)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "eie_top.v").write_text(STUB)
        return [out_dir / "eie_top.v"]

    monkeypatch.setattr(build, "generate", fake_generate)
    monkeypatch.setattr(build, "harness_verilog", lambda cfg: STUB_HARNESS)
    # hw/*.py may be edited while the tests run; the stub does not depend on them
    monkeypatch.setattr(build, "source_digest", lambda *pkgs: "stub")
    return calls


@pytest.mark.verilator
def test_second_build_is_a_cache_hit(stub_generator, tmp_path):
    cfg = PRESETS["tiny"]
    lines = []
    first = build.build_simulator(cfg, progress=lines.append)
    assert not first.cached
    assert build.executable(first).exists()
    assert first.build_dir == tmp_path / "sim" / build.build_key(cfg)
    assert any("Verilator build done" in s for s in lines)
    mtime = build.executable(first).stat().st_mtime_ns
    second = build.build_simulator(cfg, progress=None)
    assert second.cached
    assert second.key == first.key
    assert build.executable(second).stat().st_mtime_ns == mtime
    assert stub_generator == ["tiny"]


@pytest.mark.verilator
def test_parallel_builds_share_one(stub_generator):
    """Two threads asking for the same build: one builds, the other waits and reuses it."""
    cfg = PRESETS["pe1"]
    out = []
    ts = [threading.Thread(target=lambda: out.append(build.build_simulator(cfg, progress=None)))
          for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(i.cached for i in out) == [False, True]
    assert stub_generator == ["pe1"]


@pytest.mark.parametrize("width, zero", [(64, "64'h0000000000000000"), (32, "32'd0"),
                                          (12, "12'h000")])
def test_preload_transform_preloads_every_width(width, zero):
    """Every zero-initialised memory gets the $fread preload, whatever notation Yosys
    writes its zeros in (32-bit words in decimal: a regression farm finding; such a
    configuration's Spmat was never preloaded, and its outputs were wrong)."""
    v = (f"module m;\n  reg [{width - 1}:0] spmat [2:0];\n  initial begin\n"
         + "".join(f"    spmat[{i}] = {zero};\n" for i in range(3)) + "  end\nendmodule\n")
    out = preload_transform(v)
    assert "i = $fread(spmat, fd);" in out and zero not in out


def test_too_deep_memories_are_refused_before_anything_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    cfg = PRESETS["tiny"].replace(name="deep", ptr_depth=1 << 24)
    with pytest.raises(EIEError, match="config 'deep': ptr_depth = 16777216 gives a PE "):
        build.build_simulator(cfg, progress=None)
    assert list(tmp_path.iterdir()) == []


def test_build_progress_lines(tmp_path):
    """The Verilator build's progress: the C++ phase's elapsed time, then a bar of objects."""
    obj = tmp_path / "obj"
    obj.mkdir()
    lines = []
    bp = BuildProgress(obj, lines.append, period=0.01, every=0.05)
    assert bp.state() == (0, 0)
    assert bp.line(0, 0, 12.3, 0) == "[eiegen] Verilator: Verilog -> C++, 12 s"
    (obj / "Vtop.mk").write_text("")
    for k in range(4):
        (obj / f"Vtop_{k}.cpp").write_text("")
    (obj / "Vtop_0.o").write_text("")
    assert bp.state() == (1, 4 + RUNTIME_OBJECTS)
    assert bp.line(5, 10, 30, 20) == ("[eiegen] Verilator: compiling C++ [##########..........] "
                                      "5/10 objects, 20 s, about 20 s left")
    with bp:
        time.sleep(0.3)
    assert lines and all(x.startswith("[eiegen] Verilator: compiling C++ [") for x in lines)
