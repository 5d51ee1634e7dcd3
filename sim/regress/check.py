"""One regression case: compile it, run it on the Verilated RTL, check it.

A case's network is written as a ``.npz`` model first and compiled from that file exactly as
``python -m sim --model <file>.npz --config <file>.json`` compiles it, so a saved failure
reproduces with that one command.  Checks:

* ``outputs``: every output of every sample equal to the golden model's, bit for bit (an LSTM
  network's every ``y_t`` or every frame's FC output, and the final ``c_t``);
* ``cycles``: the RTL's cycles of every layer and pass (an LSTM's: of every sequence and every
  frame) equal to the cycle model's;
* ``counters``: every per-PE counter of every sample equal to the cycle model's;
* ``host_load`` (a share of the cases): the same run with every memory loaded through the host
  interface instead of the ``$fread`` preload gives the same outputs, cycles and counters.

A case the compiler refuses for the configuration (it does not fit, or the LSTM program cannot
run it) is ``rejected``, not failed: the summary counts those separately.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from compiler.manifest import load_manifest
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from models import save_npz
from sim.flow.compile import ensure_compiled
from sim.ref.cycle_model import run_model
from sim.ref.lstm_schedule import run_sequences
from sim.ref.result import compare
from sim.regress.cases import make_network
from sim.rtl.runner import run_rtl
from sim.studies.simulate import lstm_agreement

CHECKS = ("outputs", "cycles", "counters", "host_load")


def write_case(net, cfg: EIEConfig, where: Path, stem: str) -> tuple[Path, Path]:
    """The case as a ``.npz`` model and a configuration JSON file in ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    npz = save_npz(net, where / f"{stem}.npz")
    cfg_file = where / f"{stem}.json"
    cfg_file.write_text(cfg.to_json())
    return npz, cfg_file


def _fc_checks(out: Path, cfg: EIEConfig, host_load: bool) -> dict:
    res = run_rtl(out, cfg, counter_samples=1 << 20, preload=True, progress=None)
    cm = run_model(out, cfg, samples=res.samples, counter_samples=1 << 20)
    c = compare(res, cm)
    checks = {"outputs": bool(res.match), "cycles": c.cycles_equal,
              "counters": c.counters_equal, "host_load": None}
    if host_load:
        res2 = run_rtl(out, cfg, counter_samples=1 << 20, preload=False, progress=None)
        checks["host_load"] = (res2.outputs == res.outputs and res2.cycles == res.cycles
                               and res2.counters == res.counters)
    return checks


def _lstm_checks(out: Path, cfg: EIEConfig, host_load: bool) -> dict:
    manifest = load_manifest(out)
    plan = manifest["lstm"][0]
    if plan.get("program") is None:
        raise _Rejected(f"the LSTM program cannot run it: {plan.get('program_note')}")
    res = run_rtl(out, cfg, counter_samples=1 << 20, preload=True, progress=None)
    a = lstm_agreement(out, cfg, plan, res, run_sequences(out, cfg, samples=res.samples))
    checks = {"outputs": bool(res.match) and a["final_c"],
              "cycles": a["cycles"] and a["frame_cycles"],
              "counters": a["counters"], "host_load": None}
    if host_load:
        res2 = run_rtl(out, cfg, counter_samples=1 << 20, preload=False, progress=None)
        checks["host_load"] = (res2.outputs == res.outputs and res2.cycles == res.cycles
                               and res2.counters == res.counters)
    return checks


class _Rejected(Exception):
    """The compiler or the LSTM program refuses the case for its configuration."""


def run_network(net, cfg: EIEConfig, where: Path, stem: str, host_load: bool) -> dict:
    """Write, compile and check one network (module docstring); returns ``status`` (``pass``,
    ``fail``, ``rejected`` or ``error``), ``checks`` and ``message``."""
    npz, _ = write_case(net, cfg, where, stem)
    out = where / f"{stem}.out"
    try:
        try:
            ensure_compiled(str(npz), 0, cfg, out=out, progress=lambda m: None)
        except EIEError as e:
            raise _Rejected(str(e).splitlines()[0]) from None
        lstm = bool(load_manifest(out).get("lstm"))
        checks = (_lstm_checks if lstm else _fc_checks)(out, cfg, host_load)
        ok = all(v is not False for v in checks.values())
        bad = [k for k, v in checks.items() if v is False]
        return {"status": "pass" if ok else "fail", "checks": checks,
                "message": None if ok else f"differs from the reference: {', '.join(bad)}"}
    except _Rejected as e:
        return {"status": "rejected", "checks": {}, "message": str(e)}
    except EIEError as e:  # a failing simulation: its log tail is in the message
        return {"status": "error", "checks": {}, "message": str(e)[-2000:]}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_case(spec: dict, work: Path) -> dict:
    """One case spec (:func:`sim.regress.cases.case_specs`) in the work directory ``work``;
    the result dict of :func:`run_network` plus ``id``, ``config``, ``pattern``, ``seconds``
    and the network's shape (``layers``, ``samples``)."""
    t0 = time.perf_counter()
    cfg = EIEConfig.from_dict(spec["config"])
    net = make_network(spec)
    where = Path(work) / spec["id"]
    try:
        r = run_network(net, cfg, where, spec["id"], spec.get("host_load", False))
    finally:
        shutil.rmtree(where, ignore_errors=True)
    return {"id": spec["id"], "config": cfg.name, "pattern": spec["pattern"],
            "layers": len(net.layers), "samples": int(np.asarray(net.x).shape[0]), **r,
            "seconds": round(time.perf_counter() - t0, 3)}


__all__ = ["CHECKS", "run_case", "run_network", "write_case"]
