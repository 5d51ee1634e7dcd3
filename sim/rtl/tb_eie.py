"""cocotb testbench of ``eie_top``: load a compiled model, run it, read results back.

Runs inside the Verilator executable that :mod:`sim.rtl.build` makes; :func:`sim.rtl.run_rtl`
starts it with ``EIEGEN_TB_JOB`` = a JSON job file (written by :func:`sim.rtl.write_job`)::

    model_dir   build/<model>/<config>/ (images/images.npz + manifest.json)
    config      EIEConfig.to_dict()
    samples     sample indices to run
    backdoor    true: big memories written through VPI handles; false: host interface only
    counter_samples  how many of the first samples get per-layer per-PE counter snapshots
    layers      indices of the layers to run (one Spmat segment; null: all)
    segment     the Spmat segment whose image is loaded (``spmat_seg<s>`` for s > 0)
    inputs_file .npy of the first layer's inputs (n_samples, in_len) replacing the compiled
                inputs (a chained model's later segment starts from the RTL's output)
    result      path of the JSON result file to write

The bench is a ``TB`` class with a host-interface driver (:class:`HostDriver`: one write per
clock, pipelined reads), a backdoor loader (:class:`Backdoor`: VPI writes into the Amaranth
memory arrays of every PE) and a run monitor (:meth:`TB.run`) that lets the array compute on its
own and wakes up only on ``layer_done`` / ``done``.  Checking against the golden outputs is done
by the caller (``sim.rtl.runner``), which has them; the bench only records.
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

from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig

# host_space values (docs/architecture.md section 5)
SPACE_SPMAT, SPACE_PTR, SPACE_BIAS, SPACE_ACT, SPACE_CODEBOOK, SPACE_LAYER = range(6)
DESCRIPTOR_FIELDS = ("in_len", "out_len", "ptr_base", "bias_base", "shift", "relu")
COUNTER_NAMES = ("entries", "busy", "starved", "full", "ptr_reads", "spmat_reads", "acc_reads",
                 "acc_writes", "act_writes", "src_reads", "pushes")
CNT_LAYER_CYCLES = 15
CLOCK_NS = 10

#: memory arrays inside one ``eie_pe`` instance (hw/pe.py docstring), by image name
PE_MEMORIES = {
    "spmat": ("spmat", "spmat"),
    "ptr_even": ("ptr", "even"),
    "ptr_odd": ("ptr", "odd"),
    "bias": ("act_rw", "bias"),
    "act0": ("act_rw", "act0"),
    "act1": ("act_rw", "act1"),
    "codebook": ("arith", "codebook"),
}


def load_job(path: str | Path) -> dict:
    job = json.loads(Path(path).read_text())
    job["cfg"] = EIEConfig.from_dict(job["config"])
    return job


def load_model(model_dir: Path) -> tuple[dict, dict]:
    """``manifest.json`` and the arrays of ``images/images.npz`` of a compiled model."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    with np.load(model_dir / "images" / "images.npz") as z:
        arrays = {k: z[k] for k in z.files}
    if "inputs" in arrays and "inputs0" not in arrays:  # the single-input spelling of the doc
        arrays["inputs0"] = arrays.pop("inputs")
    return manifest, arrays


def split_vector(x, n: int) -> np.ndarray:
    """result[k, m] = x[m*n + k] (0 past the end): element j on PE j % n at address j // n."""
    x = np.asarray(x, dtype=np.int64)
    m = -(-x.size // n)
    pad = np.zeros(m * n, dtype=np.int64)
    pad[: x.size] = x
    return pad.reshape(m, n).T.copy()


def to_unsigned(x, bits: int) -> np.ndarray:
    x = np.asarray(x)
    if bits >= 64:
        return x.astype(np.uint64)
    return (x.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint64)


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
        d.host_space.value = space
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


class Backdoor:
    """Direct VPI writes into the memory arrays of every ``eie_pe`` instance.

    The PE instances are the top level's children named ``pe<k>`` (hw/top.py names them so);
    with the Verilog export's black-box PEs the memories sit one level down, in ``pe<k>.inst``
    (the shared ``eie_pe`` module).  Writing goes through the raw GPI handles
    (``get_handle_by_index`` + ``set_signal_val_*``): about 8 us a word with Verilator, against
    one clock (several cocotb callbacks) per word through the host interface.  Only non-zero
    words are written to memories the simulation has never written (they start at zero).
    """

    def __init__(self, dut, cfg: EIEConfig):
        self.dut = dut
        self.cfg = cfg
        self.pes = self._find_pes()
        self.words = 0

    def _find_pes(self) -> list:
        from cocotb.handle import HierarchyObject

        found = {}
        for child in self.dut:
            mt = re.fullmatch(r"pe_?(\d+)", child._name)
            if mt and isinstance(child, HierarchyObject):
                found[int(mt.group(1))] = child
        if sorted(found) != list(range(self.cfg.n_pes)):
            raise RuntimeError(f"backdoor: found PE instances {sorted(found)}, expected "
                               f"0..{self.cfg.n_pes - 1}; use backdoor=False")
        # Verilog export wraps the shared ``eie_pe`` module in a per-PE module (instance inst)
        return [getattr(found[k], "inst", found[k]) for k in range(self.cfg.n_pes)]

    def memory(self, k: int, name: str):
        unit, mem = PE_MEMORIES[name]
        return getattr(getattr(self.pes[k], unit), mem)

    def write(self, k: int, name: str, values, *, start: int = 0, skip_zeros: bool = False):
        """Write ``values`` at addresses ``start..`` of memory ``name`` of PE ``k``."""
        h = self.memory(k, name)
        raw = h._handle
        width = len(h[start]) if len(values) else 0
        u = to_unsigned(np.asarray(values), width)
        idx = np.arange(start, start + u.size)
        if skip_zeros:
            nz = u != 0
            idx, u = idx[nz], u[nz]
        if width <= 32:
            for i, v in zip(idx.tolist(), u.tolist()):
                raw.get_handle_by_index(i).set_signal_val_int(0, v)
        else:
            for i, v in zip(idx.tolist(), u.tolist()):
                raw.get_handle_by_index(i).set_signal_val_binstr(0, format(v, f"0{width}b"))
        self.words += int(u.size)

    def read(self, k: int, name: str, addrs) -> list[int]:
        raw = self.memory(k, name)._handle
        return [raw.get_handle_by_index(int(a)).get_signed() for a in addrs]


class TB:
    """One ``eie_top`` bench: clock, reset, loading, running, reading back."""

    def __init__(self, dut, cfg: EIEConfig):
        self.dut = dut
        self.cfg = cfg
        self.host = HostDriver(dut)
        self.backdoor = None
        self.clk = dut.clk

    async def reset(self):
        d = self.dut
        cocotb.start_soon(Clock(d.clk, CLOCK_NS, unit="ns").start())
        d.rst.value = 1
        self.host.idle()
        for name in ("host_space", "host_pe", "host_addr", "host_wdata", "host_raddr",
                     "n_layers", "start", "single_step", "resume", "cnt_pe", "cnt_id"):
            getattr(d, name).value = 0
        for _ in range(3):
            await RisingEdge(self.clk)
        d.rst.value = 0
        await RisingEdge(self.clk)

    # ---- loading ----
    async def load_images(self, arrays: dict, backdoor: bool, preloaded: bool = False):
        """Spmat, pointers and biases of every PE; codebooks (always via the host).

        ``preloaded``: the simulator already read Spmat, pointers and biases from the
        compiler's hex files with ``$readmemh`` at time 0 (``sim.rtl.build.readmem_transform``).
        """
        cfg = self.cfg
        n = cfg.n_pes
        if preloaded:
            pass  # read by $readmemh at time 0; inputs and codebooks go through the host
        elif backdoor:
            self.backdoor = Backdoor(self.dut, cfg)
            for k in range(n):
                self.backdoor.write(k, "spmat", arrays["spmat"][k], skip_zeros=True)
                self.backdoor.write(k, "ptr_even", arrays["ptr_even"][k], skip_zeros=True)
                self.backdoor.write(k, "ptr_odd", arrays["ptr_odd"][k], skip_zeros=True)
                self.backdoor.write(k, "bias", arrays["bias"][k], skip_zeros=True)
        else:
            for k in range(n):
                sp = arrays["spmat"][k]
                await self.host.write_many(SPACE_SPMAT, k, range(sp.size), sp.tolist())
                ev, od = arrays["ptr_even"][k], arrays["ptr_odd"][k]
                g = np.empty(ev.size + od.size, dtype=np.int64)
                vals = np.empty_like(g)
                g[0::2], g[1::2] = 2 * np.arange(ev.size), 2 * np.arange(od.size) + 1
                vals[0::2], vals[1::2] = ev, od
                await self.host.write_many(SPACE_PTR, k, g.tolist(),
                                           to_unsigned(vals, cfg.ptr_bits).tolist())
                b = arrays["bias"][k]
                await self.host.write_many(SPACE_BIAS, k, range(b.size),
                                           to_unsigned(b, cfg.act_bits).tolist())
        await self.load_codebooks(arrays["codebook"])

    async def load_codebooks(self, codebook, slots=None):
        """Codebook rows ``codebook[i]`` into slots ``slots[i]`` (default: slot i)."""
        cfg = self.cfg
        cb = np.asarray(codebook, dtype=np.int64)
        slots = range(cb.shape[0]) if slots is None else slots
        for row, slot in zip(cb, slots):
            addrs = slot * cfg.codebook_size + np.arange(row.size)
            await self.host.write_many(SPACE_CODEBOOK, 0, addrs.tolist(),
                                       to_unsigned(row, cfg.weight_bits).tolist())

    async def load_layers(self, layers: list):
        """Layer descriptors into slots 0.. (fields of section 3)."""
        addrs, vals = [], []
        for slot, lay in enumerate(layers):
            for f, name in enumerate(DESCRIPTOR_FIELDS):
                addrs.append(slot * 8 + f)
                vals.append(int(lay[name]))
        await self.host.write_many(SPACE_LAYER, 0, addrs, vals)

    async def load_input(self, x, backdoor: bool):
        """Input vector into Act 0 of every PE (element j -> PE j % N, address j // N)."""
        cfg = self.cfg
        parts = to_unsigned(split_vector(x, cfg.n_pes), cfg.act_bits)
        for k in range(cfg.n_pes):
            if backdoor and self.backdoor is not None:
                self.backdoor.write(k, "act0", parts[k])
            else:
                await self.host.write_many(SPACE_ACT, k, range(parts.shape[1]),
                                           parts[k].tolist())

    # ---- counters and results ----
    async def counter(self, pe: int, cid: int) -> int:
        self.dut.cnt_pe.value = pe
        self.dut.cnt_id.value = cid
        await FallingEdge(self.clk)  # combinational: settled half a cycle later
        return int(self.dut.cnt_value.value)

    async def pe_counters(self) -> dict:
        out = {name: [] for name in COUNTER_NAMES}
        for k in range(self.cfg.n_pes):
            for cid, name in enumerate(COUNTER_NAMES):
                out[name].append(await self.counter(k, cid))
        return out

    async def read_vector(self, sel: int, length: int) -> list[int]:
        """Activation vector of length ``length`` from Act ``sel`` of every PE."""
        cfg = self.cfg
        n = cfg.n_pes
        words = -(-length // n)
        parts = np.zeros((n, words), dtype=np.int64)
        for k in range(n):
            m = len(range(k, length, n))
            parts[k, :m] = await self.host.read_act(k, [sel * cfg.act_depth + a
                                                        for a in range(m)])
        return parts.T.reshape(-1)[:length].tolist()

    # ---- running ----
    async def run(self, n_layers: int, *, snapshot: bool, max_cycles: int,
                  layer_outputs: list | None = None) -> dict:
        """Run slots ``0..n_layers-1``; per layer cycles, optionally per-PE counter deltas.

        With ``snapshot`` the array runs in single-step mode and the bench reads every PE's
        counters at each pause (and the layer output when ``layer_outputs`` gives the lengths);
        otherwise it awaits ``done`` only.
        """
        d = self.dut
        d.n_layers.value = n_layers
        d.single_step.value = 1 if snapshot else 0
        d.start.value = 1
        await RisingEdge(self.clk)
        d.start.value = 0
        snaps, outs = [], []
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
                if layer_outputs is not None:
                    outs.append(await self.read_vector((li + 1) % 2, layer_outputs[li]))
            if finished:
                if snapshot and li != n_layers - 1:
                    cyc = [await self.counter(i, CNT_LAYER_CYCLES) for i in range(n_layers)]
                    raise RuntimeError(f"done after {li + 1} of {n_layers} layers "
                                       f"(layer cycles {cyc})")
                break
            d.resume.value = 1
            await RisingEdge(self.clk)
            d.resume.value = 0
            await ReadOnly()
            while int(d.layer_done.value):  # tolerate a layer_done that falls a cycle late
                await RisingEdge(self.clk)
                await ReadOnly()
        # counter 15 is selected by cnt_pe = layer slot
        cycles = [await self.counter(li, CNT_LAYER_CYCLES) for li in range(n_layers)]
        res = {"cycles": cycles}
        if snapshot:
            prev = {name: [0] * self.cfg.n_pes for name in COUNTER_NAMES}
            per_layer = []
            for s in snaps:
                per_layer.append({name: [a - b for a, b in zip(s[name], prev[name])]
                                  for name in COUNTER_NAMES})
                prev = s
            res["counters"] = per_layer
            if layer_outputs is not None:
                res["layer_outputs"] = outs
        return res


def _max_cycles(cfg: EIEConfig, arrays: dict, layers: list) -> int:
    """A generous bound on the cycles of a run (a hang detector, not a model)."""
    entries = int(np.count_nonzero(arrays["spmat"], axis=1).max()) * cfg.entries_per_word
    vec = sum(int(lay["in_len"]) + int(lay["out_len"]) for lay in layers)
    return 20 * (entries + vec + 100 * len(layers)) + 10_000


@cocotb.test()
async def run_model(dut):
    """Load the job's model, run its samples and write the result JSON."""
    job = load_job(os.environ["EIEGEN_TB_JOB"])
    cfg: EIEConfig = job["cfg"]
    t0 = time.perf_counter()
    manifest, arrays = load_model(job["model_dir"])
    layers = [{f: int(lay[f]) for f in DESCRIPTOR_FIELDS} for lay in manifest["layers"]]
    chained = bool(manifest.get("chained", True))
    n_in = len([k for k in arrays if re.fullmatch(r"inputs\d+", k)])
    inputs = [arrays[f"inputs{i}"] for i in range(n_in)]
    subset = job.get("layers")
    if subset is not None:
        # one Spmat segment: its layers go into descriptor and codebook slots 0..
        layers = [layers[i] for i in subset]
        arrays["codebook"] = arrays["codebook"][subset]
        if not chained:
            inputs = [inputs[i] for i in subset]
    if job.get("segment"):
        arrays["spmat"] = arrays[f"spmat_seg{int(job['segment'])}"]
    if job.get("inputs_file"):
        inputs = [np.load(job["inputs_file"])]
    backdoor = bool(job.get("backdoor", True))
    tb = TB(dut, cfg)
    await tb.reset()
    t1 = time.perf_counter()
    preloaded = bool(job.get("preloaded", False))
    await tb.load_images(arrays, backdoor, preloaded)
    if chained:
        await tb.load_layers(layers)
    load_s = time.perf_counter() - t1
    max_cycles = _max_cycles(cfg, arrays, layers)
    samples = job.get("samples")
    if samples is None:
        samples = list(range(inputs[0].shape[0]))
    n_snap = int(job.get("counter_samples", 1))
    want_layer_outputs = bool(job.get("layer_outputs", False))
    result = {"samples": samples, "outputs": [], "cycles": [], "counters": [],
              "layer_outputs": [], "chained": chained, "backdoor": backdoor,
              "preloaded": preloaded}
    t2 = time.perf_counter()
    for si, s in enumerate(samples):
        snap = si < n_snap
        if chained:
            await tb.load_input(inputs[0][s], backdoor)
            r = await tb.run(len(layers), snapshot=snap, max_cycles=max_cycles,
                             layer_outputs=[lay["out_len"] for lay in layers]
                             if want_layer_outputs else None)
            out = await tb.read_vector(len(layers) % 2, layers[-1]["out_len"])
            result["outputs"].append(out)
            result["cycles"].append(r["cycles"])
            if snap:
                result["counters"].append(r["counters"])
                if want_layer_outputs:
                    result["layer_outputs"].append(r["layer_outputs"])
        else:
            # independent layers (NeuralTalk): each runs alone from slot 0 with its codebook
            outs, cyc, cnts = [], [], []
            for li, lay in enumerate(layers):
                await tb.load_layers([lay])
                await tb.load_codebooks(arrays["codebook"][li:li + 1], slots=[0])
                await tb.load_input(inputs[li][s], backdoor)
                r = await tb.run(1, snapshot=snap, max_cycles=max_cycles)
                outs.append(await tb.read_vector(1, lay["out_len"]))
                cyc.append(r["cycles"][0])
                if snap:
                    cnts.append(r["counters"][0])
            result["outputs"].append(outs)
            result["cycles"].append(cyc)
            if snap:
                result["counters"].append(cnts)
    run_s = time.perf_counter() - t2
    result["seconds"] = {"setup": round(t1 - t0, 3), "load": round(load_s, 3),
                         "run": round(run_s, 3)}
    result["host_writes"] = tb.host.writes
    result["backdoor_words"] = tb.backdoor.words if tb.backdoor else 0
    result["sim_time_ns"] = cocotb.utils.get_sim_time(unit="ns")
    out = Path(job["result"])
    write_atomic(out, json.dumps(result))
