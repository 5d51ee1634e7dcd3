"""File output of the compiler: ``images/``, ``golden.npz`` and ``manifest.json`` in a model's
output directory, and nothing else there touched.

Other commands keep their results in the same directory (``report.json``, ``compress/``,
``plots/`` ...), so :func:`emit` replaces only :data:`OUTPUTS`.  Everything is written into a
temporary sibling first and then renamed in entry by entry, the manifest last
(:func:`hw.arch.atomic.replace_entries`); an error while writing leaves the previous compile
as it was.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.layout import Images, save_images
from hw.arch.atomic import replace_entries
from hw.arch.errors import EIEError

#: the compiler's own entries of an output directory (the manifest is renamed in last);
#: ``steps/`` holds each compiler step's artifact when the compile was asked to keep them
OUTPUTS = ("images", "golden.npz", "manifest.json", "steps")


@dataclass
class Compiled:
    """A compiled network: memory images, manifest and the golden model's outputs."""

    images: Images
    manifest: dict
    golden: list  # per layer: int64 outputs (n_samples, rows)
    layer_inputs: list = field(default_factory=list)  # per layer: int64 inputs it consumed
    # more of the golden model's arrays by golden.npz key: every LSTM's cell states and cell
    # outputs (``lstm<k>_c``, ``lstm<k>_m``, by cell slot) and the network's ``output``
    extra: dict = field(default_factory=dict)


def check_out_dir(out_dir: Path) -> Path:
    """Refuse an output directory that is a file, or a non-empty directory that holds no
    previous compile (no ``manifest.json``): the compiler would mix its files with others'."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EIEError(f"output {out_dir} is an existing file, not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists():
        raise EIEError(f"output directory {out_dir} is not empty and holds no previous "
                       "compile (no manifest.json); choose an empty or new directory")
    return out_dir


def emit(compiled: Compiled, out_dir: Path, steps: Path | None = None) -> Path:
    """Write :data:`OUTPUTS` of ``compiled`` to ``out_dir``, replacing only those entries.

    ``steps`` is a directory of step artifacts (:mod:`compiler.runner`), moved in as
    ``steps/``; without it a ``steps/`` of an earlier compile is removed (it would describe
    other images).  Records the seconds it took as ``pass_seconds["emit"]`` in the manifest.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EIEError(f"output {out_dir} is an existing file, not a directory")
    with replace_entries(out_dir, last=("manifest.json",)) as tmp:
        t0 = time.perf_counter()
        save_images(compiled.images, tmp)
        np.savez(tmp / "golden.npz",
                 **{f"out{i}": o for i, o in enumerate(compiled.golden)},
                 **{f"in{i}": x for i, x in enumerate(compiled.layer_inputs)},
                 **compiled.extra)
        if steps is not None:
            shutil.move(str(steps), tmp / "steps")
        compiled.manifest["pass_seconds"]["emit"] = round(time.perf_counter() - t0, 4)
        (tmp / "manifest.json").write_text(json.dumps(compiled.manifest, indent=1))
    if steps is None and (out_dir / "steps").is_dir():
        shutil.rmtree(out_dir / "steps", ignore_errors=True)
    return out_dir
