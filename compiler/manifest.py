"""The manifest (``manifest.json``): what was compiled, how, and what it takes.

:func:`build_manifest` assembles it from the compiler's final :class:`~compiler.steps.CompileState`;
the fields only a run of the golden model can give (each layer's ``act_density``, the network's
``accuracy``) are left ``None`` for :mod:`sim.flow.compile` to fill in.
"""

from __future__ import annotations

import json
from pathlib import Path

from compiler.steps import CompileState
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError

VERSION = "0.1.0"


def build_manifest(state: CompileState, cfg: EIEConfig, timings: dict) -> dict:
    """The manifest of a compiled network (``timings``: seconds per step, rounded here)."""
    net, opts, acc = state.net, state.opts, state.accounting
    return {
        "eiegen_version": VERSION,
        "model": net.name,
        "description": net.description,
        "synthetic": bool(net.synthetic),
        "chained": state.chained,
        "n_samples": int(state.images.inputs[0].shape[0]),
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "options": {"quantizer": opts.quantizer, "bits": int(state.bits),
                    "balance": state.balance, "density_override": opts.density},
        "layers": acc["layers"],
        "passes": acc["passes"],
        # per LSTM layer, where its products, cells and vectors are (compiler.lower.LSTMPlan)
        "lstm": [{k: v for k, v in lstm.items() if k != "peep"}
                 for lstm in state.images.lstm],
        "n_steps": net.n_steps if hasattr(net, "n_steps") else None,
        "storage_bits": acc["storage_bits"],
        "memory": acc["memory"],
        "accuracy": None,
        "pass_seconds": {k: round(v, 4) for k, v in timings.items()},
    }


def load_manifest(out_dir: Path) -> dict:
    """``out_dir/manifest.json``; EIEError when there is none."""
    p = Path(out_dir) / "manifest.json"
    if not p.exists():
        raise EIEError(f"no manifest at {p}; run make compile first")
    return json.loads(p.read_text())


def compiled_manifest(model_dir: Path, cfg: EIEConfig) -> dict:
    """The manifest of a complete compiled model in ``model_dir`` made for ``cfg``.

    Raises
    ------
    EIEError
        ``manifest.json`` or ``images/images.npz`` missing, or compiled for another config.
    """
    model_dir = Path(model_dir)
    mpath = model_dir / "manifest.json"
    if not mpath.exists() or not (model_dir / "images" / "images.npz").exists():
        raise EIEError(f"no compiled model in {model_dir} (manifest.json and "
                       "images/images.npz); run make compile first")
    manifest = json.loads(mpath.read_text())
    if "passes" not in manifest:
        raise EIEError(f"{model_dir} was compiled by an older eiegen (its manifest has no "
                       "pass table); compile it again (make compile, or --recompile)")
    if manifest.get("config_digest", cfg.digest()) != cfg.digest():
        was = manifest.get("config", {}).get("name")
        if was == cfg.name:
            raise EIEError(f"{model_dir} was compiled for another version of configuration "
                           f"{cfg.name!r} (digest {manifest.get('config_digest')}, now "
                           f"{cfg.digest()}); compile it again (make compile, or --recompile)")
        raise EIEError(f"{model_dir} was compiled for another configuration ({was}) than "
                       f"{cfg.name!r}")
    return manifest
