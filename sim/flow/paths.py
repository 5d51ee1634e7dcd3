"""Where outputs go and what a step depends on: the one build root and the one source digest.

Every command writes under :func:`build_root` (the repository's ``build/``, or
``$EIEGEN_BUILD_DIR``), whatever the working directory; :func:`source_digest` hashes the sources
a step depends on, so a cached step is redone exactly when its inputs change.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
