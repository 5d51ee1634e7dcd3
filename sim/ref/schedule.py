"""The order in which one sample's passes run, and the folding of per-pass figures into layers.

Both the RTL bench (:mod:`sim.rtl.tb_eie`) and the cycle model (:mod:`sim.ref.cycle_model`)
follow :func:`sample_runs`, so that they reload the same segments at the same moments:

* a chained network loads its input into Act0 once, then runs its passes in order;
* independent layers (NeuralTalk) load each layer's own input into Act0 before its passes;
* a *run* is a sequence of consecutive passes of one segment, at most ``max_layers`` (the
  descriptor slots) long: its descriptors go into slots ``0 ..`` and the central unit runs
  them without the host.  Before a run whose segment
  is not the one the SRAMs hold, the host reloads them (EIE's I/O mode,
  :func:`hw.arch.regmap.reload_cycles`); a reload rewrites Spmat words, which invalidates the
  word the Spmat read units hold (hw/spmat_read.py).  The SRAMs hold segment 0 at the start.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    """Passes run back to back from slots 0.. (one ``start``).

    Attributes
    ----------
    segment : int
        The segment whose Spmat and pointer images the passes need.
    passes : tuple of int
        Pass indices (the manifest's ``passes``), in order.
    load_input : int or None
        Before the run, load layer ``load_input``'s own input into Act0 (None: the input is
        already there, the previous pass's output or the chained input).
    """

    segment: int
    passes: tuple
    load_input: int | None


def sample_runs(layers: list, passes: list, chained: bool, max_slots: int) -> list[Run]:
    """The runs of one sample (module docstring); ``layers`` and ``passes`` as in the manifest,
    ``max_slots`` the configuration's ``max_layers``.

    For a chained network the first run has ``load_input = 0``.
    """
    groups = [list(lay["passes"]) for lay in layers] if not chained else \
        [[p for lay in layers for p in lay["passes"]]]
    out = []
    for gi, group in enumerate(groups):
        load = gi if not chained else 0
        cur, seg = [], None
        for p in group:
            s = int(passes[p]["segment"])
            if cur and (s != seg or len(cur) == max_slots):
                out.append(Run(seg, tuple(cur), load))
                load, cur = None, []
            cur.append(p)
            seg = s
        out.append(Run(seg, tuple(cur), load))
    return out


def fold_cycles(per_pass: list, layers: list) -> list:
    """Per-layer cycles: the sum of each layer's passes (``per_pass[p]``)."""
    return [int(sum(per_pass[p] for p in lay["passes"])) for lay in layers]


def fold_counters(per_pass: list, layers: list) -> list:
    """Per-layer counters: for every counter, the per-PE sums over each layer's passes
    (``per_pass[p][name]`` a list over PEs)."""
    out = []
    for lay in layers:
        ps = [per_pass[p] for p in lay["passes"]]
        out.append({name: [int(sum(v)) for v in zip(*(c[name] for c in ps))]
                    for name in ps[0]})
    return out
