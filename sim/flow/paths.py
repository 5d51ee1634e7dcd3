"""Where outputs go and what a step depends on: the one build root and the one source digest.

Every command writes under :func:`build_root` (the repository's ``build/``, or
``$EIEGEN_BUILD_DIR``), whatever the working directory; :func:`source_digest` hashes the sources
a step depends on, so a cached step is redone exactly when its inputs change.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from compiler.options import Options
from hw.arch.config import PRESETS, EIEConfig
from models.registry import MODEL_NAMES

#: the repository (the directory holding hw/, sim/, compiler/, models/)
REPO_ROOT = Path(__file__).resolve().parents[2]


def build_root() -> Path:
    """``build/`` of the repository, or ``$EIEGEN_BUILD_DIR`` (from any working directory)."""
    env = os.environ.get("EIEGEN_BUILD_DIR")
    return Path(env).resolve() if env else REPO_ROOT / "build"


def source_digest(*packages: str) -> str:
    """Hash of every ``.py`` (and shipped ``.npz``) file under the given top-level packages.

    Parameters
    ----------
    packages : str
        Directories of the repository (``"hw"``, ``"compiler"``, ``"models"``; ``"hw/arch"``).
    """
    h = hashlib.sha256()
    for pkg in packages:
        for p in sorted((REPO_ROOT / pkg).rglob("*")):
            if p.suffix in (".py", ".npz") and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(REPO_ROOT)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def model_key(model: str) -> str:
    """Directory name of a model: a registered name as is; a user file by its stem, suffix and
    a hash of its absolute path, so ``mlp_digits.npz`` never lands in the built-in model's
    directory and ``a.npz`` beside ``a.onnx`` does not collide with it."""
    if str(model) in MODEL_NAMES:
        return str(model)
    p = Path(model)
    h = hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:8]
    suffix = p.suffix.lstrip(".") or "file"
    return f"{p.stem}-{suffix}-{h}"


def config_key(cfg: EIEConfig) -> str:
    """Directory name of a configuration: a preset's name when ``cfg`` is that preset exactly,
    else ``<name>-<digest>`` (a JSON config that reuses or omits a preset's name never lands
    in the preset's directory)."""
    return cfg.name if PRESETS.get(cfg.name) == cfg else f"{cfg.name}-{cfg.digest()}"


def options_key(opts: Options | None) -> str:
    """``""`` for the default compiler options, else ``+`` and the options that differ
    (``+balance``, ``+bits3-density0.1``, ``+density0.08_0.09_0.26`` for one density per
    layer, ``+plain`` for ``--no-permute``), so a ``--balance`` or ``--density`` build is never
    replaced by a default one."""
    if opts is None:
        return ""
    default = Options()
    parts = []
    if opts.quantizer != default.quantizer:
        parts.append(f"q{opts.quantizer}")
    if opts.bits is not None:
        parts.append(f"bits{opts.bits}")
    if opts.density is not None:
        parts.append(density_key(opts.density))
    if opts.balance:
        parts.append("balance")
    if opts.pad_aware:
        parts.append("padaware")
    if not opts.permute:
        parts.append("plain")
    if opts.shared is not None:
        parts.append(f"trained-{shared_digest(opts.shared)[:8]}")
    return "+" + "-".join(parts) if parts else ""


def _number(d) -> str:
    """``d`` short (``0.1``, ``1``), but never two values alike (``repr`` when ``:g`` rounds)."""
    d = float(d)
    short = f"{d:g}"
    return short if float(short) == d else repr(d)


def density_key(density) -> str:
    """``density0.1`` for one density, ``density0.08_0.09_0.26`` for one per layer (a list too
    long for a directory name: ``density-<hash of the values>``)."""
    vals = list(density) if isinstance(density, (list, tuple, np.ndarray)) else [density]
    key = "density" + "_".join(_number(d) for d in vals)
    if len(key) <= 64:
        return key
    text = ",".join(repr(float(d)) for d in vals)
    return f"density-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def output_dir(model: str, cfg: EIEConfig, opts: Options | None = None, seed: int = 0,
               data_digest: str | None = None) -> Path:
    """``<build root>/<model key>/<config key><options key>/``: the directory of everything the
    commands make for this model, seed, configuration and compiler options (docs/layout.md).

    A seed other than 0 (it seeds the synthetic models and generated inputs) adds ``+seed<s>``;
    the user's data (``--data``, :func:`models.data_file.file_digest` of the file) adds
    ``+data-<8 hex>``, so a compile on the user's inputs never replaces one on the model's own.
    """
    key = options_key(opts) + (f"+seed{int(seed)}" if seed else "") + data_key(data_digest)
    return build_root() / model_key(model) / (config_key(cfg) + key)


def data_key(data_digest: str | None) -> str:
    """``+data-<first 8 hex digits of the data file's digest>``, or ``""`` without data."""
    return f"+data-{data_digest[:8]}" if data_digest else ""


def shared_digest(shared) -> str:
    """Content hash of trained codebooks (``Options.shared``: per layer ``(index, centroids)``,
    or for an LSTM layer a dict of them by part, ``gates`` and ``proj``)."""
    h = hashlib.sha256()
    for entry in shared:
        parts = [entry[k] for k in sorted(entry)] if isinstance(entry, dict) else [entry]
        for idx, centroids in parts:
            h.update(np.ascontiguousarray(idx).tobytes())
            h.update(np.ascontiguousarray(centroids, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]
