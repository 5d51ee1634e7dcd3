"""The manifest (``manifest.json``): what was compiled, how, and what it takes.

:func:`build_manifest` assembles it from the compiler's final :class:`~compiler.steps.CompileState`;
the fields only a run of the golden model can give (each layer's ``act_density``, the network's
``accuracy``) are left ``None`` for :mod:`sim.flow.compile` to fill in.

:func:`load_manifest` reads a compile back, and refuses one that something damaged after the
compiler wrote it (a crash of another tool, a full disk, an edit): a manifest that is not a JSON
object with its layers, or a ``golden.npz`` / ``images/images.npz`` that is not a whole NumPy
archive.  The commands that compile when stale take such a compile for stale
(:func:`sim.flow.compile.is_fresh`) and compile again; the others say so in one line.
"""

from __future__ import annotations

from pathlib import Path

from compiler.steps import CompileState
from hw.arch.atomic import check_npz, read_json
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError

VERSION = "0.1.0"
#: the archives of a compile that the commands read back, beside its manifest (written last)
ARCHIVES = ("golden.npz", "images/images.npz")


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


def recompile_hint(out_dir) -> str:
    """What to do about the damaged compile in ``out_dir``."""
    return (f"compile again (make compile with the same MODEL and CONFIG, or --recompile), or "
            f"delete {out_dir}")


def load_manifest(out_dir: Path) -> dict:
    """``out_dir/manifest.json``, once it and the archives beside it (:data:`ARCHIVES`, those
    present) are whole and every member matches its checksum (a byte changed inside an array
    would otherwise be read as a golden output and blamed on the RTL).

    Raises
    ------
    EIEError
        No manifest; a manifest that is not UTF-8 JSON, or not an object with its layers; an
        archive that is not a whole NumPy .npz (truncated, overwritten, a bad checksum).  Each
        message names the file and says to compile again.
    """
    out_dir = Path(out_dir)
    p = out_dir / "manifest.json"
    if not p.exists():
        raise EIEError(f"no manifest at {p}; run make compile first")
    fix = recompile_hint(out_dir)
    manifest = read_json(p, "manifest", fix)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise EIEError(f"manifest {p} is not a compile's manifest (a JSON object with its "
                       f"layers); {fix}")
    for name in ARCHIVES:
        if (out_dir / name).exists():
            check_npz(out_dir / name, fix, checksums=True)
    return manifest


def compiled_manifest(model_dir: Path, cfg: EIEConfig) -> dict:
    """The manifest of a complete compiled model in ``model_dir`` made for ``cfg``.

    Raises
    ------
    EIEError
        ``manifest.json`` or ``images/images.npz`` missing or damaged (:func:`load_manifest`),
        or compiled for another config.
    """
    model_dir = Path(model_dir)
    mpath = model_dir / "manifest.json"
    if not mpath.exists() or not (model_dir / "images" / "images.npz").exists():
        raise EIEError(f"no compiled model in {model_dir} (manifest.json and "
                       "images/images.npz); run make compile first")
    manifest = load_manifest(model_dir)
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
