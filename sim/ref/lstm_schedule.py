"""The cycle model of the ESE schedule: an LSTM layer frame by frame, the sparse products
overlapped with the element-wise stage.  It is the specification ESE part 2's RTL must equal.

An LSTM layer is compiled (:mod:`compiler.lower`) into the gates' passes over the source
``s_t = [x_t ; 0 ; y_{t-1}]``, split into the **x part** (``X(t)``: the columns of ``x_t``)
and the **y part** (``Y(t)``: the columns of ``y_{t-1}``), and the projection's pass ``P(t)``
over ``m_t``.  Every pass costs exactly what it costs as an FC pass
(:func:`sim.ref.cycle_model.simulate_layer`: the broadcast of the source's non-zeros, the
queues, the pointer and sparse-matrix reads, the drain), with two differences that are the
contract of the element-wise hardware:

* the gates' last pass ends without write-back (as a column batch with ``keep`` does, in the
  cycle ``wb_go`` would be pulsed): the element-wise stage reads the pre-activations from the
  accumulators;
* the **element-wise stage** ``EW(t)`` of a PE takes ``ew_cycles_per_cell * cells_per_pe +
  ew_latency`` cycles (:class:`hw.arch.config.EIEConfig`): it reads the four gates of each of
  its cells, looks up the tables, updates ``c_t`` and writes ``m_t`` into the activation
  memory (the projection's source).

The schedule of one sequence (cycle 0: the start of the layer; one channel)::

    X(0) | Y(0) | EW(0)        || X(1) | P(0) | Y(1) | EW(1) || X(2) | P(1) | ... | P(T-1)
                  ^ from the end of Y(t), side by side with X(t+1)

* ``X(t+1)`` starts when ``Y(t)`` ends: it depends only on ``x_{t+1}``, and it accumulates into
  the other bank of gate accumulators while ``EW(t)`` reads the first (``hw/arith.py``'s two
  banks with ``cfg.lstm``; :func:`compiler.lower.accumulators_needed`);
* ``P(t)`` starts when both ``EW(t)`` and ``X(t+1)`` have ended (the sparse products share one
  broadcast stream, in this order);
* ``Y(t+1)`` starts when ``P(t)`` has written ``y_t`` back into the source vector (without a
  projection, when ``EW(t)`` and ``X(t+1)`` have ended: ``m_t`` is ``y_t``).

FC layers after an LSTM that returns only ``y_T`` run as they do in an FC network, once per
sequence, after the LSTM.  When the LSTM returns its sequence, the layers after it run in every
frame: ``F(t)``, their passes one after another, from the end of ``P(t)``; ``Y(t+1)`` starts
when ``F(t)`` ends (the host reads their output at the frame's pause)::

    ... | P(t) | F(t) || Y(t+1) | ...

The Spmat output registers (the ``held`` word) carry from pass to pass in the order the passes
run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.manifest import compiled_manifest
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from hw.arch.regmap import EW_COUNTER_NAMES
from sim.ref.cycle_model import PointerBanks, layer_inputs, simulate_layer

#: element-wise counters per PE, added to the FC counters of the LSTM's passes
EW_COUNTERS = EW_COUNTER_NAMES


@dataclass
class LSTMCycles:
    """The cycle model of one LSTM layer on one sequence.

    ``steps[t]`` has the start and end cycle of ``X``, ``Y``, ``EW``, ``P`` and ``F`` of frame
    ``t`` (``P`` None without a projection, ``F`` None without layers on every frame) and its
    ``end``: where ``Y(t + 1)`` starts (without a projection, after both ``EW(t)`` and
    ``X(t + 1)``);
    ``cycles`` is the layer's total (from the start of ``X(0)`` to the end of the last frame,
    ``F(T-1)`` included); ``counters`` per PE over the whole sequence (the passes' FC counters
    plus :data:`EW_COUNTERS`; the ``F`` passes' are their layers', not the LSTM's);
    ``fc_cycles`` the cycles of each layer of ``F``, by name, summed over the frames.
    """

    name: str
    cycles: int
    steps: list
    counters: dict = field(repr=False)
    nnz_per_frame: int = 0
    entries_per_frame: int = 0
    ew_cycles: int = 0
    fc_cycles: dict = field(default_factory=dict)


def ew_cycles(cfg: EIEConfig, cells_pad: int) -> int:
    """Cycles of one element-wise stage (module docstring)."""
    return cfg.ew_cycles_per_cell * (cells_pad // cfg.n_pes) + cfg.ew_latency


def ew_counters(cfg: EIEConfig, plan: dict) -> dict:
    """The element-wise unit's per-PE counts of one frame: cells, table look-ups (3 sigmoids, 2
    tanh), multiplies (3 cell products, 3 peepholes when present), cell-state reads and writes,
    plus its 4 accumulator reads per cell, their 4 clears (accumulator writes, as the FC
    write-back counts its clears) and the write of ``m_t`` (:class:`hw.ew_unit.EWUnit`)."""
    cpp = plan["cells_pad"] // cfg.n_pes
    muls = 3 + (3 if plan.get("peepholes") else 0)
    one = {"ew_cells": cpp, "lut_reads": 5 * cpp, "ew_muls": muls * cpp, "cell_reads": cpp,
           "cell_writes": cpp, "acc_reads": 4 * cpp, "acc_writes": 4 * cpp, "act_writes": cpp}
    return {k: np.full(cfg.n_pes, v, dtype=np.int64) for k, v in one.items()}


class _Runner:
    """Runs passes one after another on one sample, carrying the held Spmat words."""

    def __init__(self, cfg: EIEConfig, banks: dict, passes: list, method: str = "windows"):
        self.cfg, self.banks, self.passes, self.method = cfg, banks, passes, method
        self.held = None
        self.counters: dict = {}

    def run(self, pi: int, x, *, no_writeback: bool = False) -> int:
        pas = self.passes[pi]
        if no_writeback:
            pas = {**pas, "keep": 1}
        r = simulate_layer(self.cfg, self.banks[int(pas["ptr_segment"])], pas, x,
                           held=self.held, method=self.method)
        self.held = r.held_word
        self.add(r.counters)
        return int(r.cycles)

    def add(self, counters: dict) -> None:
        for k, v in counters.items():
            self.counters[k] = self.counters.get(k, 0) + np.asarray(v, dtype=np.int64)


def simulate_lstm(cfg: EIEConfig, runner: _Runner, layers: list, plan: dict, src, m,
                  after: list | None = None) -> LSTMCycles:
    """The schedule of one LSTM layer on one sequence (module docstring).

    ``src`` ``(T, src_len)`` and ``m`` ``(T, cells_pad)`` (None without a projection) are the
    golden model's source vectors and cell outputs (by slot) of that sequence: the inputs of
    the gates' and the projection's passes.  ``after``: the layers that run on every frame
    (``F(t)``), as ``(layer index, their inputs (T, in_len))``.
    """
    gates = layers[int(plan["gates"])]
    in_pad = int(plan["in_pad"])
    xp = [p for p in gates["passes"] if int(runner.passes[p]["col0"]) < in_pad]
    yp = [p for p in gates["passes"] if int(runner.passes[p]["col0"]) >= in_pad]
    pp = [] if plan["proj"] is None else layers[int(plan["proj"])]["passes"]
    ew = ew_cycles(cfg, int(plan["cells_pad"]))
    before = dict(runner.counters)
    runner.counters = {}

    def run_all(ps, x, t0, last_no_wb=False):
        for i, p in enumerate(ps):
            t0 += runner.run(p, x, no_writeback=last_no_wb and i == len(ps) - 1)
        return t0

    T = src.shape[0]
    steps = []
    fc_cycles = {layers[li]["name"]: 0 for li, _ in after or []}
    x_end = run_all(xp, src[0], 0)
    x_start, clock = 0, x_end
    for t in range(T):
        y_end = run_all(yp, src[t], clock, last_no_wb=True)
        ew_end = y_end + ew
        runner.add(ew_counters(cfg, plan))
        nx_end = run_all(xp, src[t + 1], y_end) if t + 1 < T else y_end
        p_start = max(ew_end, nx_end)
        p_end = run_all(pp, m[t], p_start) if pp else p_start
        f_end = p_end
        if after:  # F(t): their counters are the layers' (the FC counters of the sample)
            mine, runner.counters = runner.counters, before
            for li, xs in after:
                f0, f_end = f_end, run_all(layers[li]["passes"], xs[t], f_end)
                fc_cycles[layers[li]["name"]] += f_end - f0
            before, runner.counters = runner.counters, mine
        steps.append({"x": [x_start, x_end], "y": [clock, y_end], "ew": [y_end, ew_end],
                      "p": [p_start, p_end] if pp else None,
                      "f": [p_end, f_end] if after else None, "end": f_end})
        x_start, x_end, clock = y_end, nx_end, f_end
    counters, runner.counters = runner.counters, before
    # a frame's work: the gates, the projection and the layers on every frame
    passes = [runner.passes[p] for p in list(gates["passes"]) + list(pp) +
              [q for li, _ in after or [] for q in layers[li]["passes"]]]
    nnz = sum(int(np.sum(p["entries_per_pe"]) - np.sum(p["padding_per_pe"])) for p in passes)
    entries = sum(int(np.sum(p["entries_per_pe"])) for p in passes)
    return LSTMCycles(name=str(plan["name"]), cycles=int(clock), steps=steps, counters=counters,
                      nnz_per_frame=nnz, entries_per_frame=entries, ew_cycles=ew,
                      fc_cycles=fc_cycles)


def run_sequences(model_dir, cfg: EIEConfig, *, samples=None, method: str = "windows") -> dict:
    """The cycle model of a compiled network with LSTM layers, every sample (sequence);
    ``method`` as :func:`sim.ref.cycle_model.simulate_layer`'s.

    Returns
    -------
    dict
        ``samples``; ``lstm``: per LSTM layer a list over samples of :class:`LSTMCycles`
        (its cycles include those of the layers that run on every frame after it);
        ``fc_cycles``: per sample, per FC matrix layer, its cycles (summed over frames when it
        runs on every frame); ``fc_counters``: per sample, the per-PE counters of every FC
        layer together (:data:`hw.arch.regmap.COUNTER_NAMES`, lists over PEs; empty without
        FC layers); ``total_cycles`` per sample; ``seconds``.
    """
    t0 = time.perf_counter()
    model_dir = Path(model_dir)
    manifest = compiled_manifest(model_dir, cfg)
    plans, layers, passes = manifest.get("lstm") or [], manifest["layers"], manifest["passes"]
    if {int(p["segment"]) for p in passes} != {0} or \
            {int(p["ptr_segment"]) for p in passes} != {0}:
        raise EIEError(f"{manifest['model']}: its layers do not fit config {cfg.name!r} at "
                       f"once (Spmat or pointer segments); the LSTM schedule needs every "
                       f"layer resident: use a config with larger memories")
    with np.load(model_dir / "images" / "images.npz") as z:
        banks = {0: PointerBanks(z["ptr_even"], z["ptr_odd"])}
    xs = layer_inputs(model_dir, manifest)
    n = int(xs[0].shape[0])
    samples = list(range(n)) if samples is None else [int(s) for s in samples]
    by_gates = {int(p["gates"]): (k, p) for k, p in enumerate(plans)}
    out = {"samples": samples, "lstm": [[] for _ in plans], "fc_cycles": [], "fc_counters": [],
           "total_cycles": []}
    # one runner for every sample: the Spmat output registers carry from one sequence to the
    # next, as on the array (the bench writes only activations between sequences)
    runner = _Runner(cfg, banks, passes, method)
    for s in samples:
        if not 0 <= s < n:
            raise EIEError(f"sample {s} out of range: the model has {n} sample(s)")
        runner.counters = {}
        fc, total, li = {}, 0, 0
        while li < len(layers):
            if li in by_gates:
                k, plan = by_gates[li]
                m = None if plan["proj"] is None else xs[int(plan["proj"])][s]
                nxt = li + (1 if plan["proj"] is None else 2)
                after = [(a, xs[a][s]) for a in range(nxt, len(layers))] \
                    if plan["return_sequences"] else []
                r = simulate_lstm(cfg, runner, layers, plan, xs[li][s], m, after)
                out["lstm"][k].append(r)
                fc.update(r.fc_cycles)
                total += r.cycles
                li = nxt + len(after)
                continue
            x = np.asarray(xs[li][s])
            frames = x if x.ndim == 2 else x[None]
            cyc = sum(runner.run(p, f) for f in frames for p in layers[li]["passes"])
            fc[layers[li]["name"]] = cyc
            total += cyc
            li += 1
        out["fc_cycles"].append(fc)
        out["fc_counters"].append({k: np.asarray(v).tolist() for k, v in runner.counters.items()})
        out["total_cycles"].append(total)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def frame_summary(cfg: EIEConfig, r: LSTMCycles) -> dict:
    """Per-frame figures of one LSTM layer on one sequence.

    ``cycles_per_frame`` is the **steady-state period**: the cycles between the ends of
    successive frames, averaged over frames 1..T-2 (what a long utterance sees; frame 0 is
    cheaper, its ``y_{-1}`` is zero, the last one has no next x part beside it, and the mean
    over all frames, ``cycles_per_frame_mean``, flatters a short sequence).  Beside it: the
    time at the clock, the theoretical time (one
    frame's non-zeros over the PEs, ESE's 57.0 us), GOP/s, the element-wise stage's share and
    the parts of every frame.
    """
    T = len(r.steps)
    ends = [s["end"] for s in r.steps]
    # frames 1..T-2: frame T-1 has no next x part beside it, frame 0 no y part
    per_frame = ((ends[-2] - ends[0]) / (T - 2) if T > 2 else
                 ends[1] - ends[0] if T == 2 else float(r.cycles))
    us = per_frame / cfg.clock_mhz
    ideal = r.nnz_per_frame / cfg.n_pes
    span = [{"y": s["y"][1] - s["y"][0], "x": s["x"][1] - s["x"][0],
             "ew": s["ew"][1] - s["ew"][0],
             "p": 0 if s["p"] is None else s["p"][1] - s["p"][0],
             "f": 0 if s["f"] is None else s["f"][1] - s["f"][0],
             "frame": s["end"] - s["y"][0],
             # from the end of the previous frame (frame 0: from the start, X(0) included)
             "period": e - (ends[t - 1] if t else 0)} for t, (s, e) in enumerate(zip(r.steps,
                                                                                   ends))]
    # the element-wise stage's cycles that no sparse product hides: EW(t) runs beside X(t + 1)
    # (``steps[t]["x"]`` is frame t's own x part, X(t), run beside EW(t - 1))
    exposed = sum(max(0, a["ew"] - b["x"]) for a, b in zip(span, span[1:])) + span[-1]["ew"]
    return {
        "layer": r.name, "frames": T, "cycles": r.cycles, "cycles_per_frame": per_frame,
        "cycles_per_frame_mean": r.cycles / T,
        "us_per_frame": us, "theoretical_cycles_per_frame": ideal,
        "theoretical_us_per_frame": ideal / cfg.clock_mhz,
        "ratio_to_theoretical": per_frame / ideal if ideal else None,
        "gops": 2 * r.nnz_per_frame / (us * 1e3) if us else None,
        "nnz_per_frame": r.nnz_per_frame, "entries_per_frame": r.entries_per_frame,
        "padding_per_frame": r.entries_per_frame - r.nnz_per_frame,
        # what the PEs did: entries of the broadcast columns (a zero element of x_t, y_{t-1} or
        # m_t is not broadcast, as in EIE), over every PE's cycles
        "processed_entries_per_frame": int(np.sum(r.counters["entries"])) / T,
        "mac_utilisation": float(np.sum(r.counters["entries"])) / (cfg.n_pes * r.cycles),
        "ew_cycles_per_step": r.ew_cycles, "ew_share": r.ew_cycles * T / r.cycles,
        "ew_exposed_share": exposed / r.cycles,
        "steps": span,
    }


def with_counters(r: LSTMCycles) -> dict:
    """``counters`` of :class:`LSTMCycles` as lists (JSON)."""
    return {k: np.asarray(v).tolist() for k, v in r.counters.items()}


__all__ = ["EW_COUNTERS", "LSTMCycles", "ew_cycles", "ew_counters", "frame_summary",
           "run_sequences", "simulate_lstm", "with_counters"]
