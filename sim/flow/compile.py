"""The compile half of the flow: the compiler's steps, then the golden model on their images.

:func:`compile_network` runs the compiler (:mod:`compiler.runner`), the golden model
(:mod:`sim.ref.golden`) and fills in the manifest fields only the golden model can give: every
layer's ``act_density`` (measured on the inputs the golden model fed it) and the ``accuracy``
of the float dense, the float compressed and the fixed-point network.  :func:`ensure_compiled`
is the one "compile if stale" step of every command (``python -m compiler``, ``python -m sim``,
the report, the sweep and the compression study).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from compiler.lower import slot_order
from compiler.manifest import build_manifest, load_manifest
from compiler.options import Options, check_options
from compiler.output import Compiled, emit
from compiler.runner import compile_steps
from compiler.steps import CompileState, compressed_network, compressed_weights
from compiler.train import accuracy
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from models import load_model
from models.data_file import UserData, with_data
from models.network import float_forward
from sim.flow.lock import output_lock
from sim.flow.paths import output_dir
from sim.flow.stale import compile_key
from sim.ref.golden import GoldenModel


def _progress_default(msg: str) -> None:
    print(msg, flush=True)


def float_accuracies(state: CompileState, logits_fixed) -> dict | None:
    """Accuracy of the float dense network, the float compressed network (the codebooks'
    float centroids) and the fixed-point golden model; None without labels or for layers that
    are not chained."""
    net = state.net
    labels = getattr(net, "labels", None)
    if labels is None or not state.chained:
        return None
    y = np.asarray(labels)
    if state.plans:
        return {"samples": int(y.size),
                "float_dense": float(np.mean(np.argmax(float_forward(net)[-1], -1) == y)),
                "float_compressed": float(np.mean(np.argmax(
                    float_forward(compressed_network(state))[-1], -1) == y)),
                "fixed_point_golden": float(np.mean(np.argmax(logits_fixed, -1) == y))}
    x = np.atleast_2d(np.asarray(net.x, dtype=np.float64))
    relu = [bool(layer.relu) for layer in net.layers]
    dense = [a for layer in net.layers for a in (np.asarray(layer.W, np.float64), layer.b)]
    comp = [a for layer, W in zip(net.layers, compressed_weights(state)) for a in (W, layer.b)]
    return {
        "samples": int(y.size),
        "float_dense": accuracy(dense, x, y, relu),
        "float_compressed": accuracy(comp, x, y, relu),
        "fixed_point_golden": float(np.mean(np.argmax(logits_fixed, 1) == y)),
    }


def compile_network(net, cfg: EIEConfig, opts: Options | None = None,
                    progress=_progress_default, keep_steps=None) -> Compiled:
    """Compile a float network into EIE memory images and run the golden model on them.

    Parameters
    ----------
    net : models.Network
    cfg : EIEConfig
    opts : Options
    progress : callable(str)
        Receives one line per layer.
    keep_steps : path, optional
        Directory for every compiler step's artifact (:mod:`compiler.runner`).

    Returns
    -------
    Compiled
    """
    state, timings = compile_steps(net, cfg, opts, progress=progress, keep_steps=keep_steps)
    images = state.images
    t0 = time.perf_counter()
    golden = GoldenModel(images, chained=state.chained)
    extra = {}
    if images.lstm:
        # the layers' inputs as the array sees them (hardware order), every output as the
        # user's model gives it, each LSTM's cell states and outputs, the network's output
        layer_inputs, hw_outs, lstms, output = golden.trace(images.inputs[0])
        for k, tr in enumerate(lstms):  # by the user's cells (the trace has them by slot)
            plan = images.lstm[k]
            order = slot_order(plan["cell_order"], plan["cells"], plan["cells_pad"])
            ok = np.flatnonzero(order >= 0)
            for key in ("c", "m"):
                user = np.zeros((*tr[key].shape[:-1], plan["cells"]), np.int64)
                user[..., order[ok]] = tr[key][..., ok]
                extra[f"lstm{k}_{key}"] = user
        extra["output"] = output
    else:
        hw_outs = golden.forward(images.inputs[0] if state.chained else images.inputs)
        layer_inputs = ([images.inputs[0]] + hw_outs[:-1]) if state.chained else \
            list(images.inputs)
        # the non-zero weights of every column (golden.npz ``nnz_col<l>``), from which make
        # sim counts the useful products without decoding the images again
        extra.update({f"nnz_col{li}": golden.column_nnz(li) for li in range(len(images.layers))})
    outs = golden.user_order(hw_outs)
    logits = extra.get("output", outs[-1])
    timings["golden"] = time.perf_counter() - t0
    manifest = build_manifest(state, cfg, timings)
    for m, xin in zip(manifest["layers"], layer_inputs):
        m["act_density"] = float(np.count_nonzero(xin) / xin.size)
    manifest["accuracy"] = float_accuracies(state, logits)
    return Compiled(images, manifest, outs, layer_inputs, extra)


def compile_into(net, cfg: EIEConfig, opts: Options | None, out: Path, *,
                 progress=_progress_default, extra: dict | None = None) -> Compiled:
    """Compile ``net`` and emit it into ``out`` under ``out``'s lock; ``extra`` goes into the
    manifest (``seed``, ``build_key``)."""
    with output_lock(out, say=progress):
        compiled = compile_network(net, cfg, opts, progress=progress)
        compiled.manifest.update(extra or {})
        emit(compiled, out)
    return compiled


def is_fresh(out: Path, key: dict, say=None) -> bool:
    """True when ``out`` holds a whole compile whose ``build_key`` is ``key``.

    A compile that something damaged (a manifest that is not JSON, a truncated ``golden.npz``
    or ``images.npz``: :func:`compiler.manifest.load_manifest`) is stale, not an error: the
    caller compiles again, and ``say`` (when given) is told why.
    """
    try:
        return load_manifest(out).get("build_key") == key
    except EIEError as e:
        if say is not None and (Path(out) / "manifest.json").exists():
            say(f"{str(e).split('; ')[0]}: compiling again")
        return False


def ensure_compiled(model: str, seed: int, cfg: EIEConfig, opts: Options | None = None, *,
                    force: bool = False, out: Path | None = None, progress=_progress_default,
                    tag: str = "[compile]", keep_steps: bool = False,
                    data: UserData | None = None) -> Path:
    """Compile ``model`` unless its output directory is up to date (same model, seed,
    configuration, compiler options and compiler/model sources: :func:`compile_key`).

    The options are validated before anything is touched; the check, the compile and the
    output happen under the directory's :func:`~sim.flow.lock.output_lock`.

    Parameters
    ----------
    out : path, optional
        Output directory (default :func:`sim.flow.paths.output_dir`).
    force : bool
        Compile even when up to date.
    keep_steps : bool
        Keep every compiler step's artifact in ``<out>/steps/`` (compiles even when up to
        date, so that the artifacts belong to the images beside them).
    tag : str
        Prefix of the progress lines (``[sim]``, ``[report]`` ...).
    data : UserData, optional
        The user's inputs and labels (``--data``, :func:`models.data_file.load_data`) in place
        of the model's own: the images and golden.npz hold them; their file's digest is part
        of the key and of the default directory (``+data-<8 hex>``).

    Returns
    -------
    Path
        The output directory.
    """
    opts = opts or Options()
    check_options(opts, cfg)
    digest = None if data is None else data.digest
    out = Path(out) if out is not None else output_dir(model, cfg, opts, seed, digest)
    key = compile_key(model, seed, cfg.digest(), opts, data_digest=digest)
    with output_lock(out, say=progress):
        if not (force or keep_steps) and is_fresh(
                out, key, say=lambda msg: progress(f"{tag} compile: {msg}")):
            progress(f"{tag} compile: {out} is up to date")
            return out
        t0 = time.perf_counter()
        net = with_data(load_model(model, seed=seed), data)
        t_model = time.perf_counter() - t0
        if net.synthetic:
            progress(f"{tag} note: {net.name} is SYNTHETIC: {net.description}")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.steps.", dir=out.parent) as tmp:
            steps = Path(tmp) / "steps" if keep_steps else None
            compiled = compile_network(net, cfg, opts, progress=progress, keep_steps=steps)
            compiled.manifest["pass_seconds"]["model"] = round(t_model, 4)
            compiled.manifest["seed"] = seed
            compiled.manifest["build_key"] = key
            if data is not None:
                compiled.manifest["data"] = data.describe()
            emit(compiled, out, steps=steps)
        progress(f"{tag} compile: wrote {out} in {time.perf_counter() - t0:.1f} s")
    return out
