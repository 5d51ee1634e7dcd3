"""When is a build step stale?  Content hashes of the sources a step depends on."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

from compiler.options import Options
from models.onnx_import import external_data_files
from sim.flow.paths import shared_digest, source_digest


def compile_key(model: str, seed: int, cfg_digest: str, options=None,
                data_digest: str | None = None) -> dict:
    """What a compiled model directory must match to be reused.

    ``options`` is the compiler's :class:`compiler.options.Options` (default: the defaults), so
    images compiled with, say, ``--balance`` are not mistaken for the default compilation;
    ``data_digest`` the digest of the user's data file (``--data``), whose inputs the images
    hold.
    """
    opts = asdict(options or Options())
    shared = opts.pop("shared", None)
    if shared is not None:  # trained codebooks: their content, not the arrays
        opts["shared_sha256"] = shared_digest(shared)
    key = {"model": model, "seed": seed, "config_digest": cfg_digest,
           "options": opts,
           "sources": source_digest("compiler", "models")}
    p = Path(model)
    if p.is_file():  # a model file (.npz, .onnx, .pt): its contents are part of the key
        h = hashlib.sha256(p.read_bytes())
        # and so are the files an .onnx keeps its weights in (torch's dynamo: <name>.onnx.data)
        for data in external_data_files(p) if p.suffix == ".onnx" else []:
            h.update(data.name.encode())
            if data.is_file():
                with open(data, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
        key["model_file_sha256"] = h.hexdigest()[:16]
    if data_digest is not None:
        key["data_sha256"] = data_digest
    return key
