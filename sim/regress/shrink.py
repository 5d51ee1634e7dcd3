"""Shrink a failing case to a smaller one that still fails, and write it as a reproducer.

Candidates, tried in order until none of them still fails (or the attempt budget is spent):
one input sample; fewer layers (the last one dropped; for an LSTM network, its FC layer);
the last layer's rows and the first layer's columns halved; an LSTM's frames halved.  Each
candidate is checked exactly as the case was (:func:`sim.regress.check.run_network`); a
candidate that the compiler rejects does not count as failing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig
from models import save_npz
from models.lstm import LSTMLayer
from models.network import Layer
from sim.regress.check import run_network


def _with(net, layers=None, x=None):
    return dataclasses.replace(net, layers=list(net.layers if layers is None else layers),
                               x=np.asarray(net.x if x is None else x, np.float32))


def candidates(net) -> list:
    """Smaller networks than ``net``, the most promising first (module docstring)."""
    x = np.asarray(net.x)
    layers = list(net.layers)
    out = []
    if x.shape[0] > 1:
        out.append(_with(net, x=x[:1]))
    if len(layers) > 1:
        out.append(_with(net, layers=layers[:-1]))
    last = layers[-1]
    if isinstance(last, Layer) and last.W.shape[0] > 1:
        r = last.W.shape[0] // 2
        out.append(_with(net, layers=layers[:-1] + [dataclasses.replace(
            last, W=last.W[:r], b=np.asarray(last.b)[:r])]))
    first = layers[0]
    if isinstance(first, Layer) and first.W.shape[1] > 1:
        c = first.W.shape[1] // 2
        out.append(_with(net, layers=[dataclasses.replace(first, W=first.W[:, :c])] + layers[1:],
                         x=x[..., :c]))
    if isinstance(first, LSTMLayer) and x.ndim == 3 and x.shape[1] > 1:
        out.append(_with(net, x=x[:, : x.shape[1] // 2]))
    return out


def shrink(net, cfg: EIEConfig, work: Path, stem: str, budget: int = 12,
           host_load: bool = False):
    """The smallest failing network found from ``net`` (which fails), and the attempts made."""
    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for cand in candidates(net):
            if tries >= budget:
                break
            tries += 1
            r = run_network(cand, cfg, Path(work), f"{stem}-s{tries}", host_load)
            if r["status"] in ("fail", "error"):
                net, improved = cand, True
                break
    return net, tries


def reproducer(net, cfg: EIEConfig, stem: str, env: dict | None = None) -> dict:
    """A failure as files: ``<stem>.npz`` (the network, a ``.npz`` model), ``<stem>.json`` (the
    configuration) and the one command that reproduces it (relative to the failures directory
    the client writes them into)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = save_npz(net, Path(tmp) / f"{stem}.npz").read_bytes()
    prefix = "".join(f"{k}={v} " for k, v in sorted((env or {}).items()))
    return {"stem": stem, "npz": data, "config": cfg.to_json(),
            "command": f"{prefix}python -m sim --model {{dir}}/{stem}.npz --config "
                       f"{{dir}}/{stem}.json"}


def write_reproducer(rep: dict, failures: Path) -> Path:
    """Write :func:`reproducer`'s files into ``failures``; returns the command file."""
    failures.mkdir(parents=True, exist_ok=True)
    write_atomic(failures / f"{rep['stem']}.npz", rep["npz"])
    write_atomic(failures / f"{rep['stem']}.json", rep["config"])
    cmd = failures / f"{rep['stem']}.txt"
    write_atomic(cmd, rep["command"].format(dir=failures) + "\n")
    return cmd


__all__ = ["candidates", "reproducer", "shrink", "write_reproducer"]
