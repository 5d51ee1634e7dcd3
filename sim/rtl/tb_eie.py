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
preloaded by the simulator's ``$readmemh`` at time 0 (``job.preload``, the default) or written
word by word through the host interface; inputs and codebooks always go through the host.
Checking against the golden outputs is done by the caller (``sim.rtl.runner``), which has them;
the bench only records.  Register map and counter names: :mod:`hw.arch.regmap`.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, with_timeout

from compiler.lower import slot_order
from compiler.permute import to_user_order
from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig
from hw.arch.fixedpoint import to_unsigned
from hw.arch.interleave import join_vector, rows_local, split_vector
from hw.arch.memories import segment_images, segment_key
from hw.arch.regmap import (CNT_LAYER_CYCLES, COUNTER_NAMES, DESCRIPTOR_FIELDS, LSTM_FIELD,
                            Space, cell_read_base, counter_ids, counter_names,
                            descriptor_writes)
from sim.ref.result import RunJob, RunResult
from sim.ref.schedule import fold_counters, fold_cycles, sample_runs

CLOCK_NS = 10


def load_model(model_dir: Path) -> tuple[dict, dict]:
    """``manifest.json`` and the arrays of ``images/images.npz`` of a compiled model."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    with np.load(model_dir / "images" / "images.npz") as z:
        arrays = {k: z[k] for k in z.files}
    if "inputs" in arrays and "inputs0" not in arrays:  # the single-input spelling of the doc
        arrays["inputs0"] = arrays.pop("inputs")
    return manifest, arrays


class HostDriver:
    """The host interface: one write per clock; reads take one cycle of latency."""

    def __init__(self, dut):
        self.dut = dut
        self.clk = dut.clk
        self.writes = 0
        self.reads = 0

    def idle(self):
        d = self.dut
        d.host_we.value = 0
        d.host_re.value = 0

    async def write_many(self, space: int, pe: int, addrs, values):
        """Write ``values[i]`` at ``addrs[i]`` of ``space`` on PE ``pe``; one per clock."""
        d = self.dut
        d.host_space.value = int(space)
        d.host_pe.value = pe
        d.host_we.value = 1
        for a, v in zip(addrs, values):
            d.host_addr.value = int(a)
            d.host_wdata.value = int(v)
            await RisingEdge(self.clk)
        d.host_we.value = 0
        self.writes += len(addrs)

    async def write(self, space: int, pe: int, addr: int, value: int):
        await self.write_many(space, pe, [addr], [value])

    async def read_act(self, pe: int, addrs) -> list[int]:
        """Read activation words (``sel * act_depth + address``) of PE ``pe``, signed."""
        d = self.dut
        out = []
        d.host_pe.value = pe
        for a in addrs:
            d.host_re.value = 1
            d.host_raddr.value = int(a)
            await RisingEdge(self.clk)  # request sampled here
            d.host_re.value = 0
            await FallingEdge(self.clk)  # data valid in the cycle after the request
            out.append(d.host_rdata.value.to_signed())
        self.reads += len(out)
        return out


class TB:
    """One ``eie_top`` bench: clock, reset, loading, running, reading back."""

    def __init__(self, dut, cfg: EIEConfig):
        self.dut = dut
        self.cfg = cfg
        self.host = HostDriver(dut)
        self.clk = dut.clk

    async def reset(self):
        d = self.dut
        cocotb.start_soon(Clock(d.clk, CLOCK_NS, unit="ns").start())
        d.rst.value = 1
        self.host.idle()
        for name in ("host_space", "host_pe", "host_addr", "host_wdata", "host_raddr",
                     "n_layers", "start", "single_step", "resume", "cnt_pe", "cnt_id",
                     "eiegen_reload", "eiegen_seg"):
            getattr(d, name).value = 0
        for _ in range(3):
            await RisingEdge(self.clk)
        d.rst.value = 0
        await RisingEdge(self.clk)

    # ---- loading ----
    async def load_images(self, arrays: dict, preload: bool):
        """Spmat, pointers and biases of every PE (unless preloaded); codebooks, always.

        ``preload``: the simulator already read Spmat, pointers and biases from the
        compiler's hex files with ``$readmemh`` at time 0 (``sim.rtl.build.readmem_transform``);
        otherwise every word goes through the host interface, one per clock.
        """
        if not preload:
            for k in range(self.cfg.n_pes):
                await self.host_load_pe(k, arrays)
        await self.load_codebooks(arrays["codebook"])

    async def host_load_pe(self, k: int, arrays: dict):
        """Spmat words, pointers (even and odd banks interleaved) and biases of PE ``k``."""
        await self.host_load_segment(k, arrays)
        b = arrays["bias"][k]
        await self.host.write_many(Space.BIAS, k, range(b.size),
                                   to_unsigned(b, self.cfg.act_bits).tolist())

    async def host_load_segment(self, k: int, arrays: dict):
        """The Spmat words and pointers of PE ``k`` (``arrays``: the images a segment holds)."""
        cfg = self.cfg
        sp = arrays["spmat"][k]
        await self.host.write_many(Space.SPMAT, k, range(sp.size), sp.tolist())
        ev, od = arrays["ptr_even"][k], arrays["ptr_odd"][k]
        g = np.empty(ev.size + od.size, dtype=np.int64)
        vals = np.empty_like(g)
        g[0::2], g[1::2] = 2 * np.arange(ev.size), 2 * np.arange(od.size) + 1
        vals[0::2], vals[1::2] = ev, od
        await self.host.write_many(Space.PTR, k, g.tolist(),
                                   to_unsigned(vals, cfg.ptr_bits).tolist())

    async def reload_segment(self, segment: int, arrays: dict, preload: bool):
        """EIE's I/O mode between segments: the Spmat and pointer SRAMs get ``segment``'s images
        (``arrays``: the images it holds).  With ``preload`` the simulation's ``$readmemh``
        reload does it at once (sim.rtl.build.reload_block), followed by one host write of
        Spmat word 0 per PE, which invalidates the held word as the host's reload would."""
        if not preload:
            for k in range(self.cfg.n_pes):
                await self.host_load_segment(k, arrays)
            return
        d = self.dut
        d.eiegen_seg.value = segment
        d.eiegen_reload.value = 1
        await RisingEdge(self.clk)
        d.eiegen_reload.value = 0
        for k in range(self.cfg.n_pes):
            await self.host.write(Space.SPMAT, k, 0, int(arrays["spmat"][k][0]))

    async def load_codebooks(self, codebook, slots=None):
        """Codebook rows ``codebook[i]`` into slots ``slots[i]`` (default: slot i)."""
        cfg = self.cfg
        cb = np.asarray(codebook, dtype=np.int64)
        slots = range(cb.shape[0]) if slots is None else slots
        for row, slot in zip(cb, slots):
            addrs = slot * cfg.codebook_size + np.arange(row.size)
            await self.host.write_many(Space.CODEBOOK, 0, addrs.tolist(),
                                       to_unsigned(row, cfg.weight_bits).tolist())

    async def load_layers(self, layers: list):
        """Pass descriptors into slots 0.. (fields of docs/architecture.md section 3)."""
        addrs, vals = descriptor_writes(layers)
        await self.host.write_many(Space.LAYER, 0, addrs, vals)

    async def load_input(self, x):
        """Input vector into Act 0 of every PE (element j -> PE j % N, address j // N)."""
        cfg = self.cfg
        parts = to_unsigned(split_vector(x, cfg.n_pes), cfg.act_bits)
        for k in range(cfg.n_pes):
            await self.host.write_many(Space.ACT, k, range(parts.shape[1]), parts[k].tolist())

    # ---- counters and results ----
    async def counter(self, pe: int, cid: int) -> int:
        self.dut.cnt_pe.value = pe
        self.dut.cnt_id.value = cid
        await FallingEdge(self.clk)  # combinational: settled half a cycle later
        return int(self.dut.cnt_value.value)

    async def pe_counters(self, names=COUNTER_NAMES) -> dict:
        """Every PE's counters ``names`` (default the FC counters; with the LSTM hardware
        :func:`hw.arch.regmap.counter_names` adds the element-wise unit's)."""
        ids = counter_ids(self.cfg)
        out = {name: [] for name in names}
        for k in range(self.cfg.n_pes):
            for name in names:
                out[name].append(await self.counter(k, ids[name]))
        return out

    async def read_vector(self, sel: int, length: int) -> list[int]:
        """Activation vector of length ``length`` from Act ``sel`` of every PE."""
        cfg = self.cfg
        n = cfg.n_pes
        parts = np.zeros((n, rows_local(length, n)), dtype=np.int64)
        for k in range(n):
            m = len(range(k, length, n))
            parts[k, :m] = await self.host.read_act(k, [sel * cfg.act_depth + a
                                                        for a in range(m)])
        return join_vector(parts, length).tolist()

    # ---- running ----
    async def run(self, n_layers: int, *, snapshot: bool, max_cycles: int,
                  reads: dict | None = None) -> dict:
        """Run slots ``0..n_layers-1``; per slot cycles, optionally per-PE counter deltas.

        With ``snapshot`` the array runs in single-step mode and the bench reads every PE's
        counters at each pause (and, for the slots in ``reads``, the vector
        ``reads[slot] = (sel, length)`` the pass finished); otherwise it awaits ``done`` only.
        """
        d = self.dut
        reads = reads or {}
        d.n_layers.value = n_layers
        d.single_step.value = 1 if snapshot else 0
        d.start.value = 1
        await RisingEdge(self.clk)
        d.start.value = 0
        snaps, outs = [], {}
        t_start = cocotb.utils.get_sim_time(unit="ns")
        await ReadOnly()  # every iteration starts in the ReadOnly phase after a rising edge
        # without single-step there is no pause: wake up once, on done
        for li in range(n_layers if snapshot else 1):
            budget = max(1, max_cycles - int((cocotb.utils.get_sim_time(unit="ns") - t_start)
                                             // CLOCK_NS))
            if not (int(d.done.value) or int(d.layer_done.value)):
                await with_timeout(First(RisingEdge(d.done), RisingEdge(d.layer_done)),
                                   budget * CLOCK_NS, "ns")
            await FallingEdge(self.clk)
            finished = bool(int(d.done.value))
            if snapshot:
                snaps.append(await self.pe_counters())
                if li in reads:
                    outs[li] = await self.read_vector(*reads[li])
            if finished:
                if snapshot and li != n_layers - 1:
                    cyc = [await self.counter(i, CNT_LAYER_CYCLES) for i in range(n_layers)]
                    raise RuntimeError(f"done after {li + 1} of {n_layers} passes "
                                       f"(pass cycles {cyc})")
                break
            d.resume.value = 1
            await RisingEdge(self.clk)
            d.resume.value = 0
            await ReadOnly()
            while int(d.layer_done.value):  # tolerate a layer_done that falls a cycle late
                await RisingEdge(self.clk)
                await ReadOnly()
        # counter 15 is selected by cnt_pe = slot
        cycles = [await self.counter(li, CNT_LAYER_CYCLES) for li in range(n_layers)]
        res = {"cycles": cycles, "outputs": outs}
        if snapshot:
            prev = {name: [0] * self.cfg.n_pes for name in COUNTER_NAMES}
            per_layer = []
            for s in snaps:
                per_layer.append({name: [a - b for a, b in zip(s[name], prev[name])]
                                  for name in COUNTER_NAMES})
                prev = s
            res["counters"] = per_layer
        return res


def _max_cycles(cfg: EIEConfig, arrays: dict, passes: list) -> int:
    """A generous bound on the cycles of a run (a hang detector, not a model)."""
    entries = max(int(np.count_nonzero(v, axis=1).max()) for k, v in arrays.items()
                  if k.startswith("spmat")) * cfg.entries_per_word
    vec = sum(int(p["in_len"]) + int(p["out_len"]) for p in passes)
    return 20 * (entries + vec + 100 * len(passes)) + 10_000


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
        self.max_cycles = _max_cycles(tb.cfg, arrays, self.passes)
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
            reads = self._reads(run, snap)
            r = await tb.run(len(run.passes), snapshot=snap, max_cycles=self.max_cycles,
                             reads=reads if snap else {})
            if not snap:  # the outputs are read once the run is done
                r["outputs"] = {slot: await tb.read_vector(*rd) for slot, rd in reads.items()}
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
        self.max_cycles = _max_cycles(tb.cfg, arrays, self.passes) * self.inputs.shape[1]

    async def _load(self):
        tb, cfg = self.tb, self.tb.cfg
        peep = self.arrays.get("lstm0_peep")
        if peep is not None:
            for k in range(cfg.n_pes):
                flat = to_unsigned(peep[k].ravel(), cfg.act_bits)
                await tb.host.write_many(Space.PEEP, k, range(flat.size), flat)
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
                addrs += [src * cfg.act_depth + base + w for w in range(part.size)]
                vals += to_unsigned(part, cfg.act_bits).tolist()
            words.append((k, addrs, vals))
        for k, addrs, vals in words:
            await tb.host.write_many(Space.ACT, k, addrs, vals)

    async def _read_y(self):
        """``y_t`` at a pause, or, with layers on every frame, the last one's output."""
        tb, plan = self.tb, self.plan
        if self.per_frame:
            return await self._read_last()
        src = int(self.passes[0]["src_sel"])
        y = await tb.read_vector(src, int(plan["in_pad"]) + int(plan["n_rec"]))
        return y[int(plan["in_pad"]):]

    async def _read_cells(self):
        """The final ``c_t`` of the user's cells, from every PE's cell-state memory (host
        reads from ``regmap.cell_read_base``: PE ``k``'s local cell ``j`` is slot ``jN + k``)."""
        tb, plan, n = self.tb, self.plan, self.tb.cfg.n_pes
        cpp = int(plan["cells_pad"]) // n
        slots = slot_order(plan.get("cell_order"), int(plan["cells"]), int(plan["cells_pad"]))
        c = [0] * int(plan["cells"])
        base = cell_read_base(tb.cfg)
        for k in range(n):
            vals = await tb.host.read_act(k, [base + j for j in range(cpp)])
            for j, v in enumerate(vals):
                if slots[j * n + k] >= 0:
                    c[int(slots[j * n + k])] = int(v)
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
        d.start.value = 1
        await RisingEdge(tb.clk)
        d.start.value = 0
        await ReadOnly()
        ys, ends = [], []
        n_slots = len(self.passes) if self.per_frame else self.n_lstm
        for _ in range(x.shape[0]):
            if not (int(d.done.value) or int(d.layer_done.value)):
                await with_timeout(First(RisingEdge(d.done), RisingEdge(d.layer_done)),
                                   self.max_cycles * CLOCK_NS, "ns")
            await FallingEdge(tb.clk)
            ys.append(await self._read_y())
            # the end of the frame: every slot's cycles so far
            ends.append(sum([await tb.counter(i, CNT_LAYER_CYCLES) for i in range(n_slots)]))
            if int(d.done.value):
                break
            d.resume.value = 1
            await RisingEdge(tb.clk)
            d.resume.value = 0
            await ReadOnly()
            while int(d.layer_done.value):
                await RisingEdge(tb.clk)
                await ReadOnly()
        if len(ys) != x.shape[0]:
            raise RuntimeError(f"the LSTM program ended after {len(ys)} of {x.shape[0]} frames")
        res.frame_cycles.append(np.diff([0] + ends).tolist())
        res.cell_states.append(await self._read_cells())
        slots = [await tb.counter(i, CNT_LAYER_CYCLES) for i in range(n_slots)]
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
    tb = TB(dut, cfg)
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
    t2 = time.perf_counter()
    for si, s in enumerate(samples):
        await runner.sample(res, s, si < job.counter_samples)
    res.seconds = {"setup": round(t1 - t0, 3), "load": round(load_s, 3),
                   "run": round(time.perf_counter() - t2, 3)}
    if os.environ.get("EIEGEN_TB_FAULT") == "flip":
        flip_first_output(res.outputs)
    res.host_writes = tb.host.writes
    res.reloads = runner.reloads
    res.sim_time_ns = cocotb.utils.get_sim_time(unit="ns")
    write_atomic(job.result, res.to_json())
