"""The typed job and result of a run of a compiled model: one type for the RTL and the model.

:class:`RunJob` is what the RTL bench (``sim.rtl.tb_eie``) is asked to do, written to the job
file it reads; :class:`RunResult` is what a run gives, whether it came from the Verilated array
(:func:`sim.rtl.runner.run_rtl`) or from the cycle model (:func:`sim.ref.cycle_model.run_model`).
"RTL equals model" is then a comparison of two values of one type (:func:`compare`), as in
cocotb's matrix_multiplier bench.

>>> a = RunResult(samples=[0], cycles=[[10, 20]], counters=[[{"entries": [1]}, {"entries": [2]}]])
>>> b = RunResult(samples=[0], cycles=[[10, 22]], counters=a.counters)
>>> c = compare(a, b)
>>> c.cycles_equal, c.counters_equal, round(c.max_rel_error, 2)
(False, True, 0.1)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hw.arch.config import EIEConfig


@dataclass
class RunJob:
    """What one simulator process runs (the JSON job file of ``sim.rtl.tb_eie``).

    Attributes
    ----------
    model_dir : Path
        ``build/<model>/<config>/`` (``images/images.npz`` + ``manifest.json``).
    cfg : EIEConfig
        The configuration the model was compiled for.
    samples : list of int or None
        Sample indices to run (None: all).
    counter_samples : int
        How many of the first samples get per-layer per-PE counter snapshots.
    layer_outputs : bool
        Also read every layer's output (chained models, counter samples only).
    preload : bool
        True: Spmat, pointers and biases were preloaded by ``$fread`` at time 0; False:
        every word goes through the host interface.  Inputs and codebooks always do.
    result : Path or None
        Where the bench writes its :class:`RunResult` as JSON.
    host_player : bool
        True: the bench's host transfers are played by the harness's host player
        (:mod:`sim.rtl.harness`) onto ``eie_top``'s ports, one operation per clock; False: the
        bench drives the same ports from Python, one callback per clock (slower; the results
        are the same, which a test checks).
    progress : Path or None
        Where the bench writes how far it is (``{"done": samples run, "of": samples,
        "run_s": seconds}``), for the progress lines of a long run
        (:func:`sim.rtl.runner.run_rtl`); None: not written.
    progress_s : float
        The bench replaces the progress file after a sample when this many seconds have
        passed since it last did.
    """

    model_dir: Path
    cfg: EIEConfig
    samples: list | None = None
    counter_samples: int = 1
    layer_outputs: bool = False
    preload: bool = True
    result: Path | None = None
    host_player: bool = True
    progress: Path | None = None
    progress_s: float = 1.0

    def to_json(self) -> str:
        def path(p):
            return None if p is None else str(Path(p).resolve())

        return json.dumps({
            "model_dir": path(self.model_dir), "config": self.cfg.to_dict(),
            "samples": None if self.samples is None else [int(s) for s in self.samples],
            "counter_samples": int(self.counter_samples),
            "layer_outputs": bool(self.layer_outputs), "preload": bool(self.preload),
            "result": path(self.result), "host_player": bool(self.host_player),
            "progress": path(self.progress), "progress_s": float(self.progress_s)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RunJob:
        d = json.loads(text)
        return cls(model_dir=Path(d["model_dir"]), cfg=EIEConfig.from_dict(d["config"]),
                   samples=d["samples"], counter_samples=d["counter_samples"],
                   layer_outputs=d["layer_outputs"], preload=d["preload"],
                   result=None if d["result"] is None else Path(d["result"]),
                   host_player=bool(d.get("host_player", True)),
                   progress=None if d.get("progress") is None else Path(d["progress"]),
                   progress_s=float(d.get("progress_s", 1.0)))

    def write(self, path) -> Path:
        Path(path).write_text(self.to_json())
        return Path(path)

    @classmethod
    def read(cls, path) -> RunJob:
        return cls.from_json(Path(path).read_text())


@dataclass
class RunResult:
    """The result of running samples of a compiled model, on the RTL or on the cycle model.

    Attributes
    ----------
    samples : list of int
        The samples run, in order.
    cycles : list of list of int
        ``cycles[s][l]``: cycles of layer ``l`` on the ``s``-th sample (the sum of its passes).
    counters : list of list of dict
        ``counters[s][l][name]``: per-PE counter ``name`` (a list over PEs) of layer ``l``
        (summed over its passes), for the first ``counter_samples`` samples.  An LSTM
        network's (the bench's ``LSTMRunner``): ``counters[s]`` is a dict, ``program`` the
        counters of the LSTM program's run (the FC layers on every frame and the element-wise
        unit's included), ``after`` those of the FC layers' run on ``y_T``.
    pass_cycles, pass_counters : list
        The same per pass (the manifest's ``passes``): ``pass_cycles[s][p]``,
        ``pass_counters[s][p][name]``.
    outputs : list
        Per sample, the final output (chained) or every layer's output (independent layers);
        empty for the cycle model, which computes timing only.
    layer_outputs : list
        Per counter sample, every layer's output (when asked for).
    seconds : dict
        Wall time of the run's phases, by name.
    chained : bool
        The layers feed each other (False: independent layers, as NeuralTalk's).
    preload : bool
        The RTL's big memories were preloaded by ``$fread`` (False: host interface).
    host_writes : int
        Host-interface writes the bench made.
    sim_time_ns : int or None
        Simulated time of the RTL run.
    sim_cycles : int
        The RTL run's simulated clock cycles (reset, host I/O and computing).
    compute_cycles : int
        Of them, those in which the array computed (from a start or
        resume to the next pause); ``seconds['compute']`` is their wall time, the rest of
        ``seconds['run']`` host I/O and the bench's own work.
    broadcasts : list or None
        ``broadcasts[s][l]``: non-zero activations broadcast (cycle model).
    build : dict or None
        The Verilator build (``sim.rtl.build.BuildInfo`` as JSON).
    expected : list or None
        The golden outputs shaped like ``outputs`` (when ``golden.npz`` exists).
    match : bool or None
        ``outputs == expected`` (None: nothing to compare against).
    segments : int
        Segments the passes are placed in (the SRAMs are reloaded between them).
    reloads : int
        Segment reloads the run made (every sample after the first reloads segment 0 when the
        model has several).
    run_dir : str or None
        The kept run directory of an RTL run.
    frame_cycles : list
        An LSTM network's: per sample, the cycles of every frame of the LSTM program (the
        layer-cycle counters' growth from one frame's pause to the next: frame ``t`` ends
        when ``P(t)``, and ``F(t)`` with layers on every frame, have written back).
    cell_states : list
        An LSTM network's: per sample, the final ``c_t`` of every cell (the user's order),
        read back from the element-wise units' cell-state memories after the last frame.
    shards : list
        A run sharded over workers (:mod:`sim.rtl.shard`): the samples of each shard, each of
        which started with empty Spmat output registers; empty for one run.
    """

    samples: list
    cycles: list
    counters: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    layer_outputs: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    chained: bool = True
    preload: bool = True
    host_writes: int = 0
    sim_time_ns: int | None = None
    compute_cycles: int = 0
    sim_cycles: int = 0
    broadcasts: list | None = None
    build: dict | None = None
    expected: list | None = None
    match: bool | None = None
    segments: int = 1
    reloads: int = 0
    run_dir: str | None = None
    pass_cycles: list = field(default_factory=list)
    pass_counters: list = field(default_factory=list)
    frame_cycles: list = field(default_factory=list)
    cell_states: list = field(default_factory=list)
    shards: list = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        d = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def timing_equals(self, other: RunResult) -> bool:
        """Cycles and every counter equal on the samples both ran."""
        c = compare(self, other)
        return c.cycles_equal and c.counters_equal


@dataclass(frozen=True)
class Comparison:
    """How two runs of the same model compare on the samples both ran.

    Attributes
    ----------
    samples : list of int
        The samples compared (cycles); counters are compared on the ones both recorded.
    cycles_equal, counters_equal : bool
        Every layer's cycles / every per-PE counter equal, on at least one sample (False when
        the runs share no sample, or no sample with counters).
    max_rel_error : float
        Largest ``|other / reference - 1|`` of a layer's cycles (reference: the first run).
    """

    samples: list
    cycles_equal: bool
    counters_equal: bool
    max_rel_error: float


def compare(ref: RunResult, other: RunResult) -> Comparison:
    """Compare ``other`` (e.g. the cycle model) with ``ref`` (e.g. the RTL) sample by sample."""
    pos = {s: i for i, s in enumerate(other.samples)}
    common = [(i, pos[s]) for i, s in enumerate(ref.samples) if s in pos]
    # nothing in common proves nothing: equality needs at least one compared sample
    cycles_equal = bool(common) and all(ref.cycles[i] == other.cycles[j] for i, j in common)
    if ref.pass_cycles and other.pass_cycles:  # pass by pass when both ran pass by pass
        cycles_equal = cycles_equal and all(ref.pass_cycles[i] == other.pass_cycles[j]
                                            for i, j in common)
    counted = [(i, j) for i, j in common if i < len(ref.counters) and j < len(other.counters)]
    counters_equal = bool(counted) and all(ref.counters[i] == other.counters[j]
                                           for i, j in counted)
    if ref.pass_counters and other.pass_counters:
        counters_equal = counters_equal and all(ref.pass_counters[i] == other.pass_counters[j]
                                                for i, j in counted)
    errors = [abs(b / a - 1) for i, j in common
              for a, b in zip(ref.cycles[i], other.cycles[j]) if a]
    return Comparison(samples=[ref.samples[i] for i, _ in common], cycles_equal=cycles_equal,
                      counters_equal=counters_equal, max_rel_error=max(errors, default=0.0))
