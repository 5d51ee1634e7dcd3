"""When is a build step stale?  Content hashes of the sources a step depends on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from sim.flow.paths import source_digest


def compile_key(model: str, seed: int, cfg_digest: str, options=None) -> dict:
    """What a compiled model directory must match to be reused.

    ``options`` is the compiler's :class:`compiler.pipeline.Options` (default: the defaults), so
    images compiled with, say, ``--balance`` are not mistaken for the default compilation.
    """
    from dataclasses import asdict

    from compiler.pipeline import Options

    opts = asdict(options or Options())
    shared = opts.pop("shared", None)
    if shared is not None:  # trained codebooks: their content, not the arrays
        h = hashlib.sha256()
        for idx, centroids in shared:
            h.update(np.ascontiguousarray(idx).tobytes())
            h.update(np.ascontiguousarray(centroids, dtype=np.float64).tobytes())
        opts["shared_sha256"] = h.hexdigest()[:16]
    key = {"model": model, "seed": seed, "config_digest": cfg_digest,
           "options": opts,
           "sources": source_digest("compiler", "models")}
    p = Path(model)
    if p.is_file():  # a model file (.npz, .onnx, .pt): its contents are part of the key
        key["model_file_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return key
