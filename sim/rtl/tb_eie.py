"""cocotb testbench of ``eie_top``: load a compiled model, run it, read results back.

Runs inside the Verilator executable that :mod:`sim.rtl.build` makes; :func:`sim.rtl.run_rtl`
starts it with ``EIEGEN_TB_JOB`` = the JSON job file of a :class:`sim.ref.result.RunJob` (model
directory, configuration, samples, counter samples, ...) and reads back the
:class:`sim.ref.result.RunResult` the bench writes to ``job.result``.

The bench is a ``TB`` class with a host-interface driver (:class:`HostDriver`: one write per
clock, pipelined reads) and a run monitor (:meth:`TB.run`) that lets the array compute on its
own and wakes up only on ``layer_done`` / ``done``; :class:`SampleRunner` takes every sample
through the schedule of :func:`sim.ref.schedule.sample_runs` (the cycle model follows the same
one), loading descriptors per run and reloading segments.  Spmat, pointers and biases are either
preloaded by the simulator's ``$fread`` of the compiler's binary images at time 0
(``job.preload``, the default) or written word by word through the host interface; inputs and
codebooks always go through the host.
Checking against the golden outputs is done by the caller (``sim.rtl.runner``), which has them;
the bench only records.  Register map and counter names: :mod:`hw.arch.regmap`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

import cocotb
from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, with_timeout

from compiler.lower import slot_order
from compiler.permute import to_user_order
from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig
from hw.arch.fixedpoint import to_unsigned
from hw.arch.interleave import element_home, split_vector
from hw.arch.memories import segment_images, segment_key
from hw.arch.regmap import (CNT_LAYER_CYCLES, COUNTER_NAMES, COUNTER_READ_LATENCY,
                            DESCRIPTOR_FIELDS, HOST_READ_LATENCY, INPUT_STAGES, LSTM_FIELD,
                            Space, cell_read_base, counter_ids, counter_names,
                            descriptor_writes, host_read_bits)
from sim.ref.result import RunJob, RunResult
from sim.rtl.player import (CLOCK_NS, OP_COUNTER, OP_READ, OP_WRITE, PLAY_DEPTH, PLAY_FILE,
                            PLAYED_FILE, encode_program, read_results, words)
from sim.ref.schedule import fold_counters, fold_cycles, sample_runs



class Images(Mapping):
    """The arrays of ``images/images.npz``, each read (and decompressed) when first used: with
    the ``$fread`` preload the bench needs the inputs and codebooks, not the 2 M Spmat
    words, whose loading was a third of a warm alexnet_fc run's start-up."""

    def __init__(self, path: Path):
        self._z = np.load(path)
        self._cache = {}
        # "inputs" is the single-input spelling of the doc
        self._names = {("inputs0" if k == "inputs" and "inputs0" not in self._z.files else k): k
                       for k in self._z.files}

    def __getitem__(self, name):
        if name not in self._cache:
            self._cache[name] = self._z[self._names[name]]
        return self._cache[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def load_model(model_dir: Path) -> tuple[dict, Images]:
    """``manifest.json`` and the arrays of ``images/images.npz`` of a compiled model."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return manifest, Images(model_dir / "images" / "images.npz")


class HostDriver:
    """The host interface: writes one per clock, reads and counter reads pipelined, one per
    clock (read data :data:`hw.arch.regmap.HOST_READ_LATENCY`, counters
    :data:`~hw.arch.regmap.COUNTER_READ_LATENCY` edges after the request).

    Every transfer is a batch of operations (:meth:`transact`), played by the harness's host
    player (:mod:`sim.rtl.harness`; ``play_dir``: where its program and result files go) onto
    ``eie_top``'s ports without Python per clock, or, with ``play_dir=None``, driven onto the
    same ports from Python one operation at a time.
    """

    def __init__(self, dut, cfg: EIEConfig, play_dir=None):
        self.dut = dut
        self.cfg = cfg
        self.clk = dut.clk
        self.play_dir = None if play_dir is None else Path(play_dir)
        self.writes = 0
        self.reads = 0
        self.rd_bits = host_read_bits(cfg)
        #: writes not played yet: they go with the next transfer (:meth:`flush`)
        self._queue: list[list] = []

    def idle(self):
        d = self.dut
        d.host_we.value = 0
        d.host_re.value = 0

    async def transact(self, op, space=0, pe=0, addr=0, data=0) -> np.ndarray:
        """Run operations ``op[i]`` (:data:`sim.rtl.player.OP_WRITE` / ``OP_READ`` /
        ``OP_COUNTER``; the other arguments are broadcast against it: ``addr`` is the read
        address or the counter id, ``pe`` the PE or ``cnt_pe``).  Returns the read data
        (signed) and counter values, in the order of the reads and counter reads."""
        arrays = [a.ravel() for a in np.broadcast_arrays(
            *(words(v) for v in (op, space, pe, addr, data)))]
        if self._queue:  # the queued writes first, in the same program
            arrays = [np.concatenate([q[i] for q in self._queue] + [arrays[i]])
                      for i in range(5)]
            self._queue = []
        op, space, pe, addr, data = arrays
        parts = []
        for lo in range(0, op.size, PLAY_DEPTH):
            sl = slice(lo, lo + PLAY_DEPTH)
            run = self._drive if self.play_dir is None else self._play
            parts.append(await run(op[sl], space[sl], pe[sl], addr[sl], data[sl]))
        res = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        kinds = op[op != OP_WRITE]
        w = self.rd_bits
        rd = (res & ((1 << w) - 1))
        rd = np.where(rd >= 1 << (w - 1), rd - (1 << w), rd)
        self.writes += int(np.count_nonzero(op == OP_WRITE))
        self.reads += int(np.count_nonzero(op == OP_READ))
        return np.where(kinds == OP_READ, rd, res)

    async def _play(self, op, space, pe, addr, data) -> np.ndarray:
        d = self.dut
        (self.play_dir / PLAY_FILE).write_text(encode_program(op, space, pe, addr, data))
        (self.play_dir / PLAYED_FILE).unlink(missing_ok=True)
        d.eiegen_play.value = 1
        await RisingEdge(self.clk)
        d.eiegen_play.value = 0
        await ReadOnly()
        if not int(d.eiegen_playing.value):
            raise RuntimeError("the host player did not start")
        await FallingEdge(d.eiegen_playing)
        return read_results(self.play_dir / PLAYED_FILE, int(np.count_nonzero(op != OP_WRITE)))

    async def _drive(self, op, space, pe, addr, data) -> np.ndarray:
        """The same operations driven from Python: writes back to back, one per clock; each
        read and counter read waits for its data."""
        d = self.dut
        out = []
        for i in range(op.size):
            if op[i] == OP_WRITE:
                d.host_space.value = int(space[i])
                d.host_pe.value = int(pe[i])
                d.host_addr.value = int(addr[i])
                d.host_wdata.value = int(data[i])
                d.host_we.value = 1
                await RisingEdge(self.clk)
                if i + 1 == op.size or op[i + 1] != OP_WRITE:
                    d.host_we.value = 0
            elif op[i] == OP_READ:
                d.host_pe.value = int(pe[i])
                d.host_raddr.value = int(addr[i])
                d.host_re.value = 1
                await RisingEdge(self.clk)
                d.host_re.value = 0
                for _ in range(HOST_READ_LATENCY - 1):
                    await RisingEdge(self.clk)
                await ReadOnly()
                out.append(int(d.host_rdata.value))
                await FallingEdge(self.clk)
            else:
                d.cnt_pe.value = int(pe[i])
                d.cnt_id.value = int(addr[i])
                for _ in range(COUNTER_READ_LATENCY):
                    await RisingEdge(self.clk)
                await ReadOnly()
                out.append(int(d.cnt_value.value))
                await FallingEdge(self.clk)
        return np.asarray(out, dtype=np.int64)

    async def write_many(self, space: int, pe, addrs, values):
        """Write ``values[i]`` at ``addrs[i]`` of ``space`` on PE ``pe`` (or ``pe[i]``): queued,
        and played with the next transfer (a read, or :meth:`flush`), so that consecutive
        loads cost one host-player program; they land in the order they were asked for."""
        self._queue.append([a.ravel().copy() for a in np.broadcast_arrays(
            *(words(v) for v in (OP_WRITE, space, pe, addrs, values)))])

    async def flush(self):
        """Play the queued writes (before anything else drives the array's ports)."""
        if self._queue:
            await self.transact(np.zeros(0, dtype=np.int64))

    async def write(self, space: int, pe: int, addr: int, value: int):
        await self.write_many(space, pe, [addr], [value])

    async def read_act(self, pe, addrs) -> list[int]:
        """Read activation words (``sel * act_depth + address``) of PE ``pe`` (or ``pe[i]``),
        signed."""
        return (await self.transact(OP_READ, 0, pe, addrs)).tolist()

    async def counters(self, pes, ids) -> list[int]:
        """Counters ``ids[i]`` of PEs (or layer slots) ``pes[i]``."""
        return (await self.transact(OP_COUNTER, 0, pes, ids)).tolist()


class TB:
    """One ``eie_top`` bench: clock, reset, loading, running, reading back."""

    def __init__(self, dut, cfg: EIEConfig, play_dir=None):
        self.dut = dut
        self.cfg = cfg
        self.host = HostDriver(dut, cfg, play_dir)
        self.clk = dut.clk
        #: wall seconds and simulated cycles the array spent computing (from a start or resume
        #: to the next pause), the rest of a run being host I/O and the bench's own work
        self.compute_s = 0.0
        self.compute_cycles = 0
        #: what the CCU's descriptor table holds (address -> value), as the bench wrote it
        self.descriptors: dict[int, int] = {}

    async def wait_pause(self, budget_cycles: int):
        """Let the array run until ``done`` or ``layer_done`` rises (at most ``budget_cycles``),
        timing it as compute."""
        d = self.dut
        if int(d.done.value) or int(d.layer_done.value):
            return
        t0, n0 = time.perf_counter(), cocotb.utils.get_sim_time(unit="ns")
        await with_timeout(First(RisingEdge(d.done), RisingEdge(d.layer_done)),
                           budget_cycles * CLOCK_NS, "ns")
        self.compute_s += time.perf_counter() - t0
        self.compute_cycles += int((cocotb.utils.get_sim_time(unit="ns") - n0) // CLOCK_NS)

    async def reset(self):
        d = self.dut
        # the harness generates the clock (sim.rtl.harness)
        d.rst.value = 1
        self.host.idle()
        for name in ("host_space", "host_pe", "host_addr", "host_wdata", "host_raddr",
                     "n_layers", "start", "single_step", "resume", "cnt_pe", "cnt_id",
                     "eiegen_reload", "eiegen_seg", "eiegen_play"):
            getattr(d, name).value = 0
        for _ in range(3):
            await RisingEdge(self.clk)
        d.rst.value = 0
        # the array leaves reset when the registered rst falls
        for _ in range(1 + INPUT_STAGES):
            await RisingEdge(self.clk)

    # ---- loading ----
    async def load_images(self, arrays: dict, preload: bool):
        """Spmat, pointers and biases of every PE (unless preloaded); codebooks, always.

        ``preload``: the simulator already read Spmat, pointers and biases from the
        compiler's binary images with ``$fread`` at time 0 (``sim.rtl.build.preload_transform``);
        otherwise every word goes through the host interface, one per clock.
        """
        if not preload:
            for k in range(self.cfg.n_pes):
                await self.host_load_pe(k, arrays)
        await self.load_codebooks(arrays["codebook"])

    async def host_load_pe(self, k: int, arrays: dict):
        """Spmat words, pointers (even and odd banks interleaved) and biases of PE ``k``."""
        b = arrays["bias"][k]
        bias = (np.full(b.size, Space.BIAS), np.arange(b.size), to_unsigned(b, self.cfg.act_bits))
        await self.host_load_segment(k, arrays, more=bias)

    async def host_load_segment(self, k: int, arrays: dict, more=None):
        """The Spmat words and pointers of PE ``k`` (``arrays``: the images a segment holds),
        in one transfer (with ``more``: (spaces, addresses, values) written after them)."""
        cfg = self.cfg
        sp = words(np.asarray(arrays["spmat"][k], dtype=np.uint64))
        ev, od = arrays["ptr_even"][k], arrays["ptr_odd"][k]
        g = np.empty(ev.size + od.size, dtype=np.int64)
        vals = np.empty_like(g)
        g[0::2], g[1::2] = 2 * np.arange(ev.size), 2 * np.arange(od.size) + 1
        vals[0::2], vals[1::2] = ev, od
        spaces = [np.full(sp.size, Space.SPMAT), np.full(g.size, Space.PTR)]
        addrs = [np.arange(sp.size), g]
        data = [sp, words(to_unsigned(vals, cfg.ptr_bits))]
        if more is not None:  # int64 words throughout: int64 and uint64 concatenate as floats
            spaces.append(more[0])
            addrs.append(more[1])
            data.append(words(more[2]))
        await self.host.write_many(np.concatenate(spaces), k, np.concatenate(addrs),
                                   np.concatenate(data))

    async def reload_segment(self, segment: int, arrays: dict, preload: bool):
        """EIE's I/O mode between segments: the Spmat and pointer SRAMs get ``segment``'s images
        (``arrays``: the images it holds).  With ``preload`` the simulation's ``$fread``
        reload does it at once (sim.rtl.harness.reload_block), followed by one host write of
        Spmat word 0 per PE, which invalidates the held word as the host's reload would."""
        if not preload:
            for k in range(self.cfg.n_pes):
                await self.host_load_segment(k, arrays)
            return
        d = self.dut
        await self.host.flush()
        d.eiegen_seg.value = segment
        d.eiegen_reload.value = 1
        await RisingEdge(self.clk)
        d.eiegen_reload.value = 0
        word0 = words(np.asarray([int(arrays["spmat"][k][0]) for k in range(self.cfg.n_pes)],
                                  dtype=np.uint64))
        await self.host.write_many(Space.SPMAT, np.arange(self.cfg.n_pes), 0, word0)

    async def load_codebooks(self, codebook, slots=None):
        """Codebook rows ``codebook[i]`` into slots ``slots[i]`` (default: slot i)."""
        cfg = self.cfg
        cb = np.asarray(codebook, dtype=np.int64)
        slots = np.arange(cb.shape[0]) if slots is None else np.asarray(slots)
        if cb.size == 0:
            return
        addrs = slots[:, None] * cfg.codebook_size + np.arange(cb.shape[1])
        await self.host.write_many(Space.CODEBOOK, 0, addrs.ravel(),
                                   to_unsigned(cb, cfg.weight_bits).ravel())

    async def load_layers(self, layers: list):
        """Pass descriptors into slots 0.. (fields of docs/architecture.md section 3); only the
        fields whose value differs from what the table already holds are written (the table
        keeps its contents from one sample's run to the next)."""
        addrs, vals = descriptor_writes(layers)
        new = [(int(a), int(v)) for a, v in zip(addrs, vals)
               if self.descriptors.get(int(a)) != int(v)]
        if new:
            self.descriptors.update(new)
            await self.host.write_many(Space.LAYER, 0, [a for a, _ in new], [v for _, v in new])

    async def load_input(self, x):
        """Input vector into Act 0 of every PE (element j -> PE j % N, address j // N)."""
        cfg = self.cfg
        parts = to_unsigned(split_vector(x, cfg.n_pes), cfg.act_bits)
        pe, addr = np.indices(parts.shape)
        await self.host.write_many(Space.ACT, pe.ravel(), addr.ravel(), parts.ravel())

    # ---- counters and results ----
    async def counter(self, pe: int, cid: int) -> int:
        """Counter ``cid`` of PE ``pe`` (or of layer slot ``pe``)."""
        return (await self.host.counters([pe], [cid]))[0]

    async def layer_cycles(self, n: int) -> list[int]:
        """The cycles of layer slots ``0..n-1`` (counter ``CNT_LAYER_CYCLES``)."""
        return (await self.read_back(n, {}))[0]

    async def read_back(self, n_cycles: int, vectors: dict) -> tuple[list[int], dict]:
        """In one transfer: the cycles of layer slots ``0..n_cycles-1`` and the activation
        vectors ``vectors[key] = (sel, length)`` (elements ``0..length-1`` of Act ``sel``,
        each where :func:`hw.arch.interleave.element_home` puts it), or ``(sel, length,
        first)`` (only elements ``first..length-1``)."""
        cfg, n = self.cfg, self.cfg.n_pes
        ops, pes, addrs = [np.full(n_cycles, OP_COUNTER)], [np.arange(n_cycles)], \
            [np.full(n_cycles, CNT_LAYER_CYCLES)]
        spans = []
        for key, (sel, length, *first) in vectors.items():
            pe, word = element_home(np.arange(first[0] if first else 0, length), n)
            ops.append(np.full(pe.size, OP_READ))
            pes.append(pe)
            addrs.append(sel * cfg.act_depth + word)
            spans.append((key, pe.size))
        vals = await self.host.transact(np.concatenate(ops), 0, np.concatenate(pes),
                                        np.concatenate(addrs))
        i, out = n_cycles, {}
        for key, size in spans:
            out[key] = vals[i:i + size].tolist()
            i += size
        return vals[:n_cycles].tolist(), out

    async def start(self):
        """Pulse ``start`` and wait until it has reached the array (``done`` of the last run
        is cleared then); returns in the ReadOnly phase."""
        d = self.dut
        await self.host.flush()
        d.start.value = 1
        await RisingEdge(self.clk)
        d.start.value = 0
        for _ in range(INPUT_STAGES):
            await RisingEdge(self.clk)
        await ReadOnly()

    async def resume(self):
        """Pulse ``resume`` and wait until the pause has ended; returns in the ReadOnly phase."""
        d = self.dut
        await self.host.flush()
        d.resume.value = 1
        await RisingEdge(self.clk)
        d.resume.value = 0
        await ReadOnly()
        while int(d.layer_done.value):  # until resume has passed the input stage
            await RisingEdge(self.clk)
            await ReadOnly()

    async def pe_counters(self, names=COUNTER_NAMES) -> dict:
        """Every PE's counters ``names`` (default the FC counters; with the LSTM hardware
        :func:`hw.arch.regmap.counter_names` adds the element-wise unit's)."""
        ids = counter_ids(self.cfg)
        n = self.cfg.n_pes
        vals = await self.host.counters(np.repeat(np.arange(n), len(names)),
                                        [ids[name] for name in names] * n)
        return {name: vals[i::len(names)] for i, name in enumerate(names)}

    async def read_vector(self, sel: int, length: int) -> list[int]:
        """Activation vector of length ``length`` from Act ``sel`` of every PE."""
        return (await self.read_back(0, {0: (sel, length)}))[1][0]

    # ---- running ----
    async def run(self, n_layers: int, *, snapshot: bool, max_cycles: int,
                  reads: dict | None = None) -> dict:
        """Run slots ``0..n_layers-1``; per slot cycles, optionally per-PE counter deltas.

        With ``snapshot`` the array runs in single-step mode and the bench reads every PE's
        counters at each pause (and, for the slots in ``reads``, the vector
        ``reads[slot] = (sel, length)`` the pass finished); otherwise it awaits ``done`` only
        and reads the vectors of ``reads`` then, with the cycles, in one transfer (each
        pass's vector must then be one no later pass overwrites).
        """
        d = self.dut
        reads = reads or {}
        d.n_layers.value = n_layers
        d.single_step.value = 1 if snapshot else 0
        await self.start()  # every iteration starts in the ReadOnly phase after a rising edge
        snaps, outs = [], {}
        t_start = cocotb.utils.get_sim_time(unit="ns")
        # without single-step there is no pause: wake up once, on done
        for li in range(n_layers if snapshot else 1):
            budget = max(1, max_cycles - int((cocotb.utils.get_sim_time(unit="ns") - t_start)
                                             // CLOCK_NS))
            await self.wait_pause(budget)
            await FallingEdge(self.clk)
            finished = bool(int(d.done.value))
            if snapshot:
                snaps.append(await self.pe_counters())
                if li in reads:
                    outs[li] = await self.read_vector(*reads[li])
            if finished:
                if snapshot and li != n_layers - 1:
                    cyc = await self.layer_cycles(n_layers)
                    raise RuntimeError(f"done after {li + 1} of {n_layers} passes "
                                       f"(pass cycles {cyc})")
                break
            await self.resume()
        # counter 15 is selected by cnt_pe = slot
        cycles, last = await self.read_back(n_layers, {} if snapshot else reads)
        res = {"cycles": cycles, "outputs": outs if snapshot else last}
        if snapshot:
            prev = {name: [0] * self.cfg.n_pes for name in COUNTER_NAMES}
            per_layer = []
            for s in snaps:
                per_layer.append({name: [a - b for a, b in zip(s[name], prev[name])]
                                  for name in COUNTER_NAMES})
                prev = s
            res["counters"] = per_layer
        return res


def _max_cycles(cfg: EIEConfig, passes: list) -> int:
    """A generous bound on the cycles of a run (a hang detector, not a model): every entry a
    PE's Spmat holds, plus every pass's vectors."""
    vec = sum(int(p["in_len"]) + int(p["out_len"]) for p in passes)
    return 20 * (cfg.spmat_entries + vec + 100 * len(passes)) + 10_000


def job_model(job: RunJob) -> tuple[dict, list, dict]:
    """The manifest, per-layer inputs and image arrays (every segment's) a job runs."""
    manifest, arrays = load_model(job.model_dir)
    n_in = len([k for k in arrays if re.fullmatch(r"inputs\d+", k)])
    inputs = [arrays[f"inputs{i}"] for i in range(n_in)]
    return manifest, inputs, arrays


def segment_arrays(arrays: dict, passes: list, segment: int) -> dict:
    """The Spmat and pointer images the SRAMs hold while ``segment`` runs."""
    return {name: arrays[segment_key(name, seg)]
            for name, seg in segment_images(passes, segment).items()}


class SampleRunner:
    """Runs one sample after another through every pass (:func:`sim.ref.schedule.sample_runs`),
    reloading segments as the schedule says; records per-pass and per-layer results."""

    def __init__(self, tb: TB, job: RunJob, manifest: dict, inputs: list, arrays: dict):
        self.tb, self.job = tb, job
        self.layers, self.passes = manifest["layers"], manifest["passes"]
        self.chained = bool(manifest.get("chained", True))
        self.inputs, self.arrays = inputs, arrays
        self.runs = sample_runs(self.layers, self.passes, self.chained, tb.cfg.max_layers)
        self.loaded = 0  # the SRAMs hold segment 0 after loading
        self.reloads = 0
        self.max_cycles = _max_cycles(tb.cfg, self.passes)
        self.last_pass = {lay["passes"][-1]: li for li, lay in enumerate(self.layers)}

    def _reads(self, run, snap: bool) -> dict:
        """Slots after which a layer's output is read: every finished layer in snapshot mode
        with layer outputs, else only the outputs the result needs."""
        out = {}
        for slot, p in enumerate(run.passes):
            li = self.last_pass.get(p)
            if li is None:
                continue
            wanted = (snap and self.job.layer_outputs) or not self.chained or \
                li == len(self.layers) - 1
            if wanted:
                out[slot] = (1 - int(self.passes[p]["src_sel"]), int(self.layers[li]["out_len"]))
        return out

    async def sample(self, res: RunResult, s: int, snap: bool):
        tb, passes = self.tb, self.passes
        cyc, cnt, outs = [0] * len(passes), [None] * len(passes), {}
        for run in self.runs:
            if run.load_input is not None:
                x = self.inputs[0 if self.chained else run.load_input][s]
                await tb.load_input(x)
            if run.segment != self.loaded:
                await tb.reload_segment(run.segment,
                                        segment_arrays(self.arrays, passes, run.segment),
                                        self.job.preload)
                self.loaded = run.segment
                self.reloads += 1
            await tb.load_layers([{f: int(passes[p][f]) for f in DESCRIPTOR_FIELDS}
                                  for p in run.passes])
            # without snapshots the outputs are read once the run is done
            r = await tb.run(len(run.passes), snapshot=snap, max_cycles=self.max_cycles,
                             reads=self._reads(run, snap))
            for slot, p in enumerate(run.passes):
                cyc[p] = r["cycles"][slot]
                if snap:
                    cnt[p] = r["counters"][slot]
                if slot in r["outputs"]:
                    # the read-back puts the rows back into the user's order
                    li = self.last_pass[p]
                    outs[li] = to_user_order(r["outputs"][slot],
                                             self.layers[li].get("row_order")).tolist()
        res.pass_cycles.append(cyc)
        res.cycles.append(fold_cycles(cyc, self.layers))
        if snap:
            res.pass_counters.append(cnt)
            res.counters.append(fold_counters(cnt, self.layers))
        if self.chained:
            res.outputs.append(outs[len(self.layers) - 1])
            if snap and self.job.layer_outputs:
                res.layer_outputs.append([outs[li] for li in range(len(self.layers))])
        else:
            res.outputs.append([outs[li] for li in range(len(self.layers))])


class LSTMRunner:
    """Runs the sequences of a network that is one LSTM layer through the central unit's LSTM
    program (hw/ccu.py ``_LSTMProgram``, the manifest's ``lstm[0]["program"]``): the
    peepholes, the program and the three descriptors once; per sequence the x frames (after the
    y region of the gates' source) and a zero y region, then the run in single-step mode, which
    pauses after every frame for the host to read ``y_t``.  FC layers after an LSTM that
    returns only ``y_T`` run afterwards as an FC network's passes; after one that returns its
    sequence they run in every frame inside the program (``f_slot``, ``f_count``), and the
    host reads their output at every pause."""

    def __init__(self, tb: TB, job: RunJob, manifest: dict, inputs: list, arrays: dict):
        self.tb, self.job, self.arrays = tb, job, arrays
        self.layers, self.passes = manifest["layers"], manifest["passes"]
        self.plan = manifest["lstm"][0]
        self.reloads = 0
        self.prog = self.plan.get("program")
        # the LSTM's passes (X, Y and P, or without a projection X and Y), then the FC layers
        # (on y_T, or on every frame)
        self.n_lstm = 2 if self.plan["proj"] is None else 3
        self.rest = self.passes[self.n_lstm:]
        self.per_frame = bool(self.rest) and bool(self.plan["return_sequences"])
        if self.prog is None or int(self.plan["gates"]) != 0 or \
                len(self.passes) < self.n_lstm or \
                len(self.rest) > tb.cfg.max_layers or \
                (self.per_frame and int(self.prog["f_count"]) != len(self.rest)):
            raise RuntimeError("the LSTM program runs a network of one LSTM layer, in two "
                               "or three passes, then FC layers")
        self.inputs = inputs[0]  # (n, T, n_in)
        self.chained = True
        self.loaded = False
        self.max_cycles = _max_cycles(tb.cfg, self.passes) * self.inputs.shape[1]

    async def _load(self):
        tb, cfg = self.tb, self.tb.cfg
        peep = self.arrays.get("lstm0_peep")
        if peep is not None:
            flat = to_unsigned(np.asarray(peep).reshape(cfg.n_pes, -1), cfg.act_bits)
            pe, addr = np.indices(flat.shape)
            await tb.host.write_many(Space.PEEP, pe.ravel(), addr.ravel(), flat.ravel())
        prog = dict(self.prog)
        await tb.host.write_many(Space.LSTM, 0, [LSTM_FIELD[f] for f in prog],
                                 [int(v) for v in prog.values()])
        self.loaded = True

    async def _program(self, frames: int):
        """The LSTM program's ``frames`` (0: the descriptor slots run as FC passes) and the
        descriptors of the passes it runs."""
        tb = self.tb
        await tb.host.write(Space.LSTM, 0, LSTM_FIELD["frames"], frames)
        passes = (self.passes if self.per_frame else self.passes[:self.n_lstm]) if frames \
            else self.rest
        await tb.load_layers([{f: int(p[f]) for f in DESCRIPTOR_FIELDS} for p in passes])

    async def _load_sequence(self, x):
        tb, cfg, plan, prog = self.tb, self.tb.cfg, self.plan, self.prog
        n, src = cfg.n_pes, int(self.passes[0]["src_sel"])
        words = []
        y_words = -(-int(plan["n_rec"]) // n)
        y_base = int(plan["in_pad"]) // n
        for k in range(n):
            addrs = [src * cfg.act_depth + y_base + w for w in range(y_words)]
            vals = [0] * y_words
            for t, xt in enumerate(x):
                vec = np.zeros(int(plan["in_pad"]), np.int64)
                vec[:xt.size] = xt
                part = split_vector(vec, n)[k]
                base = prog["x_group0"] + t * prog["x_stride"]
                if base + part.size > cfg.act_depth:  # the compiler refuses such a program
                    raise RuntimeError(f"frame {t} of x would be written past the source "
                                       f"bank's {cfg.act_depth} words")
                addrs += [src * cfg.act_depth + base + w for w in range(part.size)]
                vals += to_unsigned(part, cfg.act_bits).tolist()
            words.append((np.full(len(addrs), k), addrs, vals))
        await tb.host.write_many(Space.ACT, np.concatenate([w[0] for w in words]),
                                 np.concatenate([w[1] for w in words]),
                                 np.concatenate([w[2] for w in words]))

    def _y_vector(self):
        """What a pause reads: ``y_t``, or, with layers on every frame, the last one's output;
        ``(sel, length, first, post)``: elements ``first..length-1`` of Act ``sel`` (y_t
        after the x part of the gates' source) and what makes the output of them."""
        if self.per_frame:
            last, lay = self.rest[-1], self.layers[-1]
            return (1 - int(last["src_sel"]), int(lay["out_len"]), 0,
                    lambda v: to_user_order(np.asarray(v), lay.get("row_order")).tolist())
        pad = int(self.plan["in_pad"])
        return int(self.passes[0]["src_sel"]), pad + int(self.plan["n_rec"]), pad, list

    async def _read_cells(self):
        """The final ``c_t`` of the user's cells, from every PE's cell-state memory (host
        reads from ``regmap.cell_read_base``: PE ``k``'s local cell ``j`` is slot ``jN + k``)."""
        tb, plan, n = self.tb, self.plan, self.tb.cfg.n_pes
        cpp = int(plan["cells_pad"]) // n
        slots = slot_order(plan.get("cell_order"), int(plan["cells"]), int(plan["cells_pad"]))
        c = [0] * int(plan["cells"])
        base = cell_read_base(tb.cfg)
        pe, j = np.divmod(np.arange(n * cpp), cpp)
        vals = await tb.host.read_act(pe, base + j)
        for k, jj, v in zip(pe.tolist(), j.tolist(), vals):
            if slots[jj * n + k] >= 0:
                c[int(slots[jj * n + k])] = int(v)
        return c

    async def _read_last(self):
        """The last layer's output, in the user's order."""
        last, lay = self.rest[-1], self.layers[-1]
        y = await self.tb.read_vector(1 - int(last["src_sel"]), int(lay["out_len"]))
        return to_user_order(np.asarray(y), lay.get("row_order")).tolist()

    async def sample(self, res: RunResult, s: int, snap: bool):
        tb, d = self.tb, self.tb.dut
        if not self.loaded:
            await self._load()
        x = self.inputs[s]
        await self._load_sequence(x)
        await self._program(int(x.shape[0]))
        d.n_layers.value = 0
        d.single_step.value = 1
        await tb.start()
        ys, ends = [], []
        n_slots = len(self.passes) if self.per_frame else self.n_lstm
        sel, length, first, post = self._y_vector()
        for _ in range(x.shape[0]):
            await tb.wait_pause(self.max_cycles)
            await FallingEdge(tb.clk)
            # the frame's output, and the end of the frame (every slot's cycles so far)
            cycles, got = await tb.read_back(n_slots, {"y": (sel, length, first)})
            ys.append(post(got["y"]))
            ends.append(sum(cycles))
            if int(d.done.value):
                break
            await tb.resume()
        if len(ys) != x.shape[0]:
            raise RuntimeError(f"the LSTM program ended after {len(ys)} of {x.shape[0]} frames")
        res.frame_cycles.append(np.diff([0] + ends).tolist())
        res.cell_states.append(await self._read_cells())
        slots = await tb.layer_cycles(n_slots)
        # the counters of the program's run (with the layers on every frame), then of the FC
        # layers' run on y_T
        cnt = {"program": await tb.pe_counters(counter_names(tb.cfg))} if snap else None
        # per layer: the gates (and the projection)
        cycles = [slots[0] + slots[1]] + slots[2:self.n_lstm]
        if not self.rest:
            order = self.plan.get("y_order")
            res.outputs.append([to_user_order(np.asarray(y), order).tolist() for y in ys])
        elif self.per_frame:  # the FC layers' output of every frame
            res.outputs.append(ys)
        else:  # the FC layers on y_T, as an FC network's passes
            await self._program(0)
            r = await tb.run(len(self.rest), snapshot=False, max_cycles=self.max_cycles)
            slots += r["cycles"]
            if snap:
                cnt["after"] = await tb.pe_counters()
            res.outputs.append(await self._read_last())
        for li in range(self.n_lstm - 1, len(self.layers)):  # summed over the frames
            cycles.append(sum(c for p, c in zip(self.rest, slots[self.n_lstm:])
                              if int(p["layer"]) == li))
        res.pass_cycles.append(slots)
        res.cycles.append(cycles)
        if snap:
            res.counters.append(cnt)


def flip_first_output(outputs) -> None:
    """A deliberately broken bench (``EIEGEN_TB_FAULT=flip``, the regression farm's own test):
    bit 0 of the first output value of the first sample is flipped."""
    node = outputs
    while isinstance(node, list) and node and isinstance(node[0], list):
        node = node[0]
    if isinstance(node, list) and node:
        node[0] = int(node[0]) ^ 1


@cocotb.test()
async def run_model(dut):
    """Load the job's model, run its samples and write the result JSON."""
    job = RunJob.read(os.environ["EIEGEN_TB_JOB"])
    cfg: EIEConfig = job.cfg
    t0 = time.perf_counter()
    manifest, inputs, arrays = job_model(job)
    tb = TB(dut, cfg, play_dir=Path(job.result).parent if job.host_player else None)
    await tb.reset()
    t1 = time.perf_counter()
    await tb.load_images(arrays, job.preload)
    load_s = time.perf_counter() - t1
    runner = (LSTMRunner if manifest.get("lstm") else SampleRunner)(tb, job, manifest, inputs,
                                                                     arrays)
    samples = job.samples
    if samples is None:
        samples = list(range(inputs[0].shape[0]))
    res = RunResult(samples=samples, cycles=[], chained=runner.chained, preload=job.preload)
    t2 = shown = time.perf_counter()
    for si, s in enumerate(samples):
        await runner.sample(res, s, si < job.counter_samples)
        now = time.perf_counter()
        if job.progress is not None and now - shown >= job.progress_s:
            write_atomic(job.progress, json.dumps({"done": si + 1, "of": len(samples),
                                                   "run_s": round(now - t2, 3)}))
            shown = now
    res.seconds = {"setup": round(t1 - t0, 3), "load": round(load_s, 3),
                   "run": round(time.perf_counter() - t2, 3),
                   "compute": round(tb.compute_s, 3)}
    res.compute_cycles = tb.compute_cycles
    if os.environ.get("EIEGEN_TB_FAULT") == "flip":
        flip_first_output(res.outputs)
    await tb.host.flush()
    res.host_writes = tb.host.writes
    res.reloads = runner.reloads
    res.sim_time_ns = cocotb.utils.get_sim_time(unit="ns")
    res.sim_cycles = int(res.sim_time_ns // CLOCK_NS)
    write_atomic(job.result, res.to_json())
