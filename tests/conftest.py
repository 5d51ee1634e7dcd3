"""Shared fixtures and helpers of the test suite (``from tests.conftest import ...``).

- :func:`random_index_matrix`, :func:`write_model`, :func:`write_random_model`: seeded random
  sparse layers and whole networks in the compiler's output format;
- :func:`amaranth_run`: one Amaranth simulation of a device under test and its testbenches;
- :func:`replay_host_writes`, :func:`load_words`: host writes through a unit's write port,
  one per clock (or a memory set directly);
- :class:`CycleBench`: base of the Amaranth benches (cycle count, start / pause / resume /
  done handshake of a layer sequence).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import ClockSignal, Module
from amaranth.sim import Simulator

from compiler.passes import encode_passes
from compiler.layout import build_images, save_images
from hw.arch.config import PRESETS, EIEConfig
from hw.arch.errors import EIEError
from sim.ref.golden import GoldenModel

#: clock period of every Amaranth simulation (1 MHz: only cycle counts matter)
CLOCK_PERIOD = 1e-6


@pytest.fixture
def tiny():
    return PRESETS["tiny"]


# ---- random sparse layers and networks ---------------------------------------------------
def random_index_matrix(rng, rows, cols, density, codebook_size):
    """Codebook-index matrix with roughly ``density`` non-zeros (indices 1..K-1)."""
    mask = rng.random((rows, cols)) < density
    return np.where(mask, rng.integers(1, codebook_size, (rows, cols)), 0)


def write_model(out_dir, cfg: EIEConfig, qs, codebooks, shifts, biases, relus, x) -> Path:
    """A chained network given exactly (index matrices, codebooks, ...), in the compiler's format.

    Writes ``manifest.json``, ``images/`` and ``golden.npz`` (expected outputs from the golden
    model) into ``out_dir``, as ``python -m compiler`` would; returns ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [f"fc{li}" for li in range(len(qs))]
    enc = [encode_passes(np.asarray(q), cfg, name) for q, name in zip(qs, names)]
    images = build_images(enc, codebooks, shifts, biases, relus, names, cfg)
    images.inputs = [np.atleast_2d(np.asarray(x, dtype=np.int64))]
    shutil.rmtree(out_dir / "images", ignore_errors=True)
    save_images(images, out_dir)
    golden = GoldenModel(images)
    outs = golden.forward(images.inputs[0])
    np.savez(out_dir / "golden.npz", **{f"out{i}": o for i, o in enumerate(outs)},
             **{f"nnz_col{i}": golden.column_nnz(i) for i in range(len(qs))},
             in0=images.inputs[0])
    manifest = {"model": out_dir.name, "synthetic": True, "chained": True,
                "n_samples": int(images.inputs[0].shape[0]), "config": cfg.to_dict(),
                "config_digest": cfg.digest(), "layers": images.layers,
                "passes": images.passes}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out_dir


def write_random_model(out_dir, cfg: EIEConfig, shapes, *, density: float = 0.3,
                       act_density: float = 0.6, n_samples: int = 2, seed: int = 0,
                       relu=None, shift: int | None = None) -> Path:
    """A random chained network in the compiler's output format (see :func:`write_model`).

    Parameters
    ----------
    out_dir : path
        Receives ``manifest.json``, ``images/`` and ``golden.npz``.
    shapes : list of (rows, cols)
        Layer shapes; ``cols`` of layer ``l + 1`` must be ``rows`` of layer ``l``.
    density, act_density : float
        Fraction of non-zero weights / input activations.
    relu : list of bool, optional
        Per layer (default: ReLU on all but the last).
    shift : int, optional
        Write-back shift of every layer (default: random in 4..10, capped at weight_frac_max).
    """
    rng = np.random.default_rng(seed)
    n_l = len(shapes)
    relu = [li < n_l - 1 for li in range(n_l)] if relu is None else list(relu)
    qs, cbs, shifts, biases = [], [], [], []
    for li, (rows, cols) in enumerate(shapes):
        if li and cols != shapes[li - 1][0]:
            raise EIEError(f"layer {li}: {cols} inputs do not match {shapes[li - 1][0]} outputs")
        qs.append(random_index_matrix(rng, rows, cols, density, cfg.codebook_size))
        lim = min(cfg.weight_max, 1 << 8)
        cb = rng.integers(-lim, lim + 1, cfg.codebook_size)
        cb[0] = 0
        cbs.append(cb)
        shifts.append(int(rng.integers(min(4, cfg.weight_frac_max),
                                       min(10, cfg.weight_frac_max) + 1))
                      if shift is None else int(shift))
        biases.append(rng.integers(-(1 << 10), 1 << 10, rows))
    cols0 = shapes[0][1]
    x = np.where(rng.random((n_samples, cols0)) < act_density,
                 rng.integers(-(1 << 11), 1 << 11, (n_samples, cols0)), 0)
    return write_model(out_dir, cfg, qs, cbs, shifts, biases, relu, x)


# ---- Amaranth simulation -----------------------------------------------------------------
def amaranth_run(dut, *testbenches, clock: bool = True, deadline: float | None = None):
    """Simulate ``dut`` until every async testbench ``testbenches`` has returned.

    Parameters
    ----------
    clock : bool
        Drive the ``sync`` domain with a :data:`CLOCK_PERIOD` clock (False: a combinational
        design, whose testbenches only ``ctx.set`` / ``ctx.get`` / ``ctx.delay``).
    deadline : float, optional
        Simulated seconds after which a testbench still running fails the test (a hang guard);
        by default the simulation runs for as long as the testbenches do.
    """
    members = getattr(getattr(dut, "signature", None), "members", {})
    if clock and "clk" in members:
        # a design with a clock port that defines its own reset-less sync domain (eie_top):
        # drive the port from the bench's clock
        harness = Module()
        harness.submodules.dut = dut
        harness.d.comb += dut.clk.eq(ClockSignal("bench"))
        sim = Simulator(harness)
        sim.add_clock(CLOCK_PERIOD, domain="bench")
    else:
        sim = Simulator(dut)
        if clock:
            sim.add_clock(CLOCK_PERIOD)
    for tb in testbenches:
        sim.add_testbench(tb)
    if deadline is not None:
        async def watchdog(ctx):
            await ctx.delay(deadline)
            raise AssertionError(f"testbenches still running after {deadline} s simulated")

        # background: it does not keep the simulation alive once the testbenches are done
        sim.add_testbench(watchdog, background=True)
    sim.run()


async def replay_host_writes(ctx, we, ports, writes, tick=None):
    """Host writes one per clock: ``we`` high, ``ports`` set to each tuple of ``writes``.

    ``ports`` are the address / data signals (``host_space``, ``host_pe``, ... of the top
    level; ``addr``, ``wdata`` of a unit's host port), in the order of each write's values.
    ``tick(ctx)`` advances one clock (default ``ctx.tick()``; a bench passes its own to count
    cycles or step a model).  ``we`` is low again when this returns.
    """
    for values in writes:
        ctx.set(we, 1)
        for port, value in zip(ports, values, strict=True):
            ctx.set(port, int(value))
        await (ctx.tick() if tick is None else tick(ctx))
    ctx.set(we, 0)


async def load_words(ctx, host, words, backdoor=None):
    """Words ``0..`` of a unit's memory: host writes through its port ``host`` (``we``,
    ``addr``, ``wdata``), one per clock; or, with ``backdoor(addr)`` naming the memory element
    that holds word ``addr``, set directly without a clock."""
    if backdoor is None:
        await replay_host_writes(ctx, host.we, (host.addr, host.wdata), enumerate(words))
    else:
        for addr, word in enumerate(words):
            ctx.set(backdoor(addr), int(word))


class CycleBench:
    """Base of the Amaranth benches: the ``dut``, a cycle-counting :meth:`tick`, :meth:`run`
    of a layer sequence and :meth:`simulate`.

    ``input_stages``: the registers between the dut's inputs and its logic (``eie_top``:
    :data:`hw.arch.regmap.INPUT_STAGES`; the CCU: 0).
    """

    input_stages = 0

    def __init__(self, dut):
        self.dut = dut
        self.cycle = 0

    async def tick(self, ctx, n=1):
        for _ in range(n):
            await ctx.tick()
            self.cycle += 1

    def simulate(self, *testbenches, deadline=None):
        amaranth_run(self.dut, *testbenches, deadline=deadline)

    async def run(self, ctx, n_layers, single_step=False, on_pause=None, limit=50000):
        """Start layer slots ``0..n_layers-1`` and wait for ``done``, resuming every
        single-step pause (after ``await on_pause(ctx)``, if given), on a ``dut`` with the
        sequence-control ports of :func:`hw.bus.sequence_members` (the CCU, the top level).

        Checks that ``busy`` is high from the cycle after ``start`` reached the logic until
        ``done``; ``limit`` bounds the cycles outside ``on_pause``.  Returns the cycles from
        that one to ``done`` (the resume's input stage included).
        """
        d = self.dut
        ctx.set(d.n_layers, n_layers)
        ctx.set(d.single_step, int(single_step))
        ctx.set(d.start, 1)
        await self.tick(ctx)
        ctx.set(d.start, 0)
        for _ in range(self.input_stages):  # start reaches the array
            await self.tick(ctx)
        t0, steps = self.cycle, 0
        while not ctx.get(d.done):
            assert ctx.get(d.busy), "busy low before done"
            if ctx.get(d.layer_done):
                if on_pause is not None:
                    await on_pause(ctx)
                ctx.set(d.resume, 1)
                await self.tick(ctx)
                ctx.set(d.resume, 0)
                for _ in range(self.input_stages):
                    await self.tick(ctx)
            else:
                await self.tick(ctx)
            steps += 1
            assert steps < limit, f"sequence did not finish in {limit} cycles"
        assert not ctx.get(d.busy), "busy high with done"
        return self.cycle - t0


@pytest.fixture
def unprivileged(tmp_path) -> list[str]:
    """The command prefix that makes a read-only directory read-only for this user (root:
    ``setpriv`` without the capabilities that override permissions)."""
    prefix = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv writes into read-only directories")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o555)
    r = subprocess.run([*prefix, sys.executable, "-c", f"import os; os.mkdir('{probe}/x')"],
                       capture_output=True)
    probe.chmod(0o755)
    if r.returncode == 0:
        pytest.skip("this user writes into read-only directories")
    return prefix
