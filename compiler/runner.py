"""One runner for the compiler's steps: validates the options once, times every step and, on
request, keeps every step's artifact.

``keep_steps=<dir>`` writes ``<dir>/<n>_<step>.npz`` (arrays) or ``.json`` (the account step)
after each step, so a step's output can be inspected or compared on its own (FINN's
``save_intermediate_models``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler import steps
from compiler.lower import lower, lower_shared
from compiler.passes import layer_totals
from compiler.options import Options, check_fits, check_options
from compiler.steps import CompileState, user_shapes
from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig
from hw.arch.memories import segment_key


def _pruned_artifact(state: CompileState) -> dict:
    return {f"{k}{li}": getattr(p, attr) for li, p in enumerate(state.pruned)
            for k, attr in (("rows", "rows"), ("cols", "cols"), ("values", "values"))}


def _shared_artifact(state: CompileState) -> dict:
    out = {}
    for li, s in enumerate(state.shared):
        out.update({f"index{li}": np.asarray(s.index), f"centroids{li}": s.centroids,
                    f"codebook_int{li}": s.codebook_int, f"w_frac{li}": np.array(s.w_frac)})
    return out


def _encoded_artifact(state: CompileState) -> dict:
    """Per layer ``l`` and pass ``p`` of it: ``v<l>_<p>``, ``z<l>_<p>`` (every PE's entries,
    concatenated), ``ptr<l>_<p>`` and ``padding<l>_<p>``."""
    out = {}
    for li, passes in enumerate(state.encoded):
        for pi, ep in enumerate(passes):
            enc = ep.enc
            out.update({f"v{li}_{pi}": np.concatenate(enc.v), f"z{li}_{pi}": np.concatenate(enc.z),
                        f"ptr{li}_{pi}": enc.ptr, f"padding{li}_{pi}": enc.padding})
    return out


def _layout_artifact(state: CompileState) -> dict:
    im = state.images
    out = dict(spmat=im.spmat, ptr_even=im.ptr_even, ptr_odd=im.ptr_odd, bias=im.bias,
               codebook=im.codebook)
    out.update({f"inputs{i}": x for i, x in enumerate(im.inputs)})
    out.update({segment_key("spmat", s): seg for s, seg in enumerate(im.spmat_segments, start=1)})
    for s, banks in im.ptr_segments.items():
        out.update({segment_key("ptr_even", s): banks[0], segment_key("ptr_odd", s): banks[1]})
    return out


def _permute_report(state: CompileState) -> list[str]:
    if not state.opts.permute or all(np.array_equal(o, np.arange(o.size))
                                     for o in state.orders):
        return []
    return ["[compile] rows permuted to balance the PEs (compiler.permute; --no-permute for "
            "EIE's plain interleave)"]


def _encode_report(state: CompileState) -> list[str]:
    lines = []
    dense = user_shapes(state)
    for li, (layer, s, passes) in enumerate(zip(state.mats, state.shared, state.encoded)):
        tot = layer_totals(passes)
        rows = max(ep.row0 + ep.enc.rows for ep in passes)
        cols = max(ep.col0 + ep.enc.cols for ep in passes)
        # over the user's matrix (an LSTM's hardware matrices are padded), as the manifest's
        d_rows, d_cols = dense.get(li, (rows, cols))
        n_rb = 1 + max(ep.row_batch for ep in passes)
        n_cb = 1 + max(ep.col_batch for ep in passes)
        batches = (f", {len(passes)} passes ({n_rb} output batch(es) x {n_cb} column "
                   "batch(es))" if len(passes) > 1 else "")
        lines.append(f"[compile] {layer.name}: {rows}x{cols} density "
                     f"{tot['nnz'] / (d_rows * d_cols):.3f} "
                     f"-> {tot['nnz']} non-zeros, {int(tot['padding'].sum())} padding, "
                     f"w_frac {s.w_frac}{batches}")
    return lines


@dataclass(frozen=True)
class Step:
    """One compiler step: its name (the manifest's ``pass_seconds`` key), the pure function,
    the artifact ``keep_steps`` writes and the progress lines it reports."""

    name: str
    run: Callable[[CompileState, EIEConfig], CompileState]
    artifact: Callable[[CompileState], dict]
    report: Callable[[CompileState], list[str]] | None = None


#: the compiler, in order
STEPS = (
    Step("prune", steps.prune, _pruned_artifact, steps.prune_notes),
    Step("share", steps.share, _shared_artifact, steps.weight_warnings),
    Step("permute", steps.permute, lambda state: {f"order{li}": o
                                                  for li, o in enumerate(state.orders)},
         _permute_report),
    Step("encode", steps.encode, _encoded_artifact, _encode_report),
    Step("layout", steps.layout, _layout_artifact, steps.layout_warnings),
    Step("account", steps.account, lambda state: state.accounting),
)


def save_artifact(path_stem: Path, artifact: dict) -> Path:
    """``<stem>.npz`` when every value is an array, else ``<stem>.json``."""
    if all(isinstance(v, np.ndarray) for v in artifact.values()):
        path = path_stem.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **artifact)
        return path
    return write_atomic(path_stem.with_suffix(".json"), json.dumps(artifact, indent=1))


def run_steps(state: CompileState, cfg: EIEConfig, step_list=STEPS, *, progress=None,
              keep_steps=None) -> tuple[CompileState, dict]:
    """Run ``step_list`` in order; returns the final state and the seconds of every step."""
    timings: dict[str, float] = {}
    for n, step in enumerate(step_list):
        t0 = time.perf_counter()
        state = step.run(state, cfg)
        timings[step.name] = time.perf_counter() - t0
        if keep_steps is not None:
            save_artifact(Path(keep_steps) / f"{n}_{step.name}", step.artifact(state))
        if progress is not None and step.report is not None:
            for line in step.report(state):
                progress(line)
    return state, timings


def compile_steps(net, cfg: EIEConfig, opts: Options | None = None, *, progress=None,
                  keep_steps=None) -> tuple[CompileState, dict]:
    """Validate ``opts`` and the shapes of ``net``'s layers (once, before any work), then run
    every compiler step on ``net``.

    Returns
    -------
    state : CompileState
        The images (``state.images``) and accounting (``state.accounting``) filled in.
    timings : dict
        Seconds of each step, by step name.
    """
    opts = opts or Options()
    bits = check_options(opts, cfg, net)
    check_fits(net, cfg)  # by the shapes alone, before anything is pruned
    mats, plans = lower(net, cfg, opts)
    state = CompileState(net=net, opts=opts, bits=bits, mats=mats, plans=plans,
                         trained=lower_shared(opts.shared, net, plans, cfg))
    return run_steps(state, cfg, progress=progress, keep_steps=keep_steps)
