"""The farm's outputs: JUnit XML, ``summary.json``, ``summary.md`` and ``summary.html``.

Counts per configuration, per pattern and per check; the coverage of the configuration space
(the values of every field of the configuration object the run's cases exercised, rejected
cases not counted); the time per case; every failure with its shrunk size and the command that
reproduces it.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig
from sim.regress.cases import PATTERNS
from sim.regress.check import CHECKS
from sim.regress.space import FIELDS, FIXED, coverage
from sim.studies.doc import Doc

STATUSES = ("pass", "fail", "error", "rejected")


def summarize(results: list, configs: list[EIEConfig], params: dict, wall_s: float,
              interrupted: bool) -> dict:
    """The ``summary.json`` of a run."""
    by_name = {c.name: c for c in configs}
    count = {s: sum(r["status"] == s for r in results) for s in STATUSES}
    per_cfg = {c.name: {s: 0 for s in STATUSES} for c in configs}
    per_pat = {p: {s: 0 for s in STATUSES} for p in PATTERNS}
    per_check = {k: {"pass": 0, "fail": 0, "not run": 0} for k in CHECKS}
    for r in results:
        per_cfg[r["config"]][r["status"]] += 1
        per_pat[r["pattern"]][r["status"]] += 1
        for k in CHECKS:
            v = r["checks"].get(k)
            per_check[k]["not run" if v is None else "pass" if v else "fail"] += 1
    ran = [by_name[n] for n in sorted({r["config"] for r in results
                                        if r["status"] != "rejected"})]
    cov = coverage(ran)
    secs = [r["seconds"] for r in results]
    return {
        "params": params, "cases": len(results), "planned": params.get("n"),
        "interrupted": interrupted, "wall_s": round(wall_s, 1), "counts": count,
        "ok": not interrupted and count["fail"] == 0 and count["error"] == 0,
        "per_config": per_cfg, "per_pattern": {p: v for p, v in per_pat.items() if any(v.values())},
        "per_check": per_check,
        "coverage": {f: [_json(v) for v in vals] for f, vals in cov.items()},
        # a field is covered when the cases ran with more than one of its values (or with
        # the one value the hardware admits)
        "fields_covered": sum(len(v) > 1 or (f in FIXED and len(v) == 1)
                              for f, v in cov.items()), "fields": len(FIELDS),
        "fields_not_varied": [f for f, v in cov.items() if len(v) <= 1 and f not in FIXED],
        "fixed_fields": FIXED,
        "seconds_per_case": {"mean": statistics.fmean(secs) if secs else None,
                             "median": statistics.median(secs) if secs else None,
                             "max": max(secs) if secs else None},
        "configs": [c.to_dict() for c in configs],
        "failures": [{k: r.get(k) for k in ("id", "config", "pattern", "status", "message",
                                             "shrunk", "shrink_tries", "command")}
                     for r in results if r["status"] in ("fail", "error")],
        "rejected": [{"id": r["id"], "config": r["config"], "message": r["message"]}
                     for r in results if r["status"] == "rejected"],
    }


def _json(v):
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


def junit_xml(results: list, wall_s: float) -> str:
    """JUnit XML: one test case per regression case (class: its configuration)."""
    fails = sum(r["status"] == "fail" for r in results)
    errors = sum(r["status"] == "error" for r in results)
    skipped = sum(r["status"] == "rejected" for r in results)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="eiegen-regress" tests="{len(results)}" failures="{fails}" '
             f'errors="{errors}" skipped="{skipped}" time="{wall_s:.1f}">']
    for r in results:
        lines.append(f'  <testcase classname={quoteattr(r["config"])} '
                     f'name={quoteattr(r["id"] + "-" + r["pattern"])} '
                     f'time="{r["seconds"]:.3f}">')
        msg = r.get("message") or ""
        if r["status"] == "fail":
            lines.append(f"    <failure message={quoteattr(msg[:200])}>"
                         f"{escape(r.get('command') or '')}</failure>")
        elif r["status"] == "error":
            lines.append(f"    <error message={quoteattr(msg[:200])}>{escape(msg)}</error>")
        elif r["status"] == "rejected":
            lines.append(f"    <skipped message={quoteattr(msg[:200])}/>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


def document(s: dict) -> Doc:
    """``summary.md`` / ``summary.html``."""
    c = s["counts"]
    doc = Doc(f"eiegen regression: {s['cases']} cases, seed {s['params']['seed']}")
    doc.section("Result")
    doc.p(f"**{'PASS' if s['ok'] else 'FAIL'}**: {c['pass']} passed, {c['fail']} failed, "
          f"{c['error']} errors, {c['rejected']} rejected by the compiler for their "
          f"configuration; {s['wall_s']:.0f} s wall on {s['params']['workers']} "
          f"({s['params']['scheduler']}); "
          + ("interrupted (Ctrl-C): partial. " if s["interrupted"] else "")
          + f"{s['params']['pool']} configurations; time per case: median "
          f"{_f(s['seconds_per_case']['median'])} s, max {_f(s['seconds_per_case']['max'])} s.")
    doc.table(["check", "pass", "fail", "not run"],
              [[k, v["pass"], v["fail"], v["not run"]] for k, v in s["per_check"].items()])
    doc.section("Per configuration")
    doc.table(["config", "PEs", "queue", "index / rel bits", "act / weight / acc bits", "lstm",
               *STATUSES],
              [[cfg["name"], cfg["n_pes"], cfg["queue_depth"],
                f"{cfg['weight_index_bits']} / {cfg['rel_index_bits']}",
                f"{cfg['act_bits']} / {cfg['weight_bits']} / {cfg['acc_bits']}", cfg["lstm"],
                *(s["per_config"][cfg["name"]][st] for st in STATUSES)]
               for cfg in s["configs"]])
    doc.section("Per pattern")
    doc.table(["pattern", *STATUSES], [[p, *(v[st] for st in STATUSES)]
                                      for p, v in s["per_pattern"].items()])
    doc.section("Coverage of the configuration space")
    doc.p(f"{s['fields_covered']} of the {s['fields']} fields of the configuration object "
          f"covered (run with more than one value, or with the one value the hardware admits: "
          + "; ".join(f"`{k}`: {v}" for k, v in s["fixed_fields"].items()) + "); not varied: "
          + (", ".join(f"`{f}`" for f in s["fields_not_varied"]) or "none")
          + ". The values of each field the cases that ran exercised:")
    doc.table(["field", "values exercised"],
              [[f, ", ".join(str(v) for v in vals)] for f, vals in s["coverage"].items()])
    if s["failures"]:
        doc.section("Failures (shrunk; each reproduces with its command)")
        doc.table(["case", "config", "pattern", "what", "shrunk to", "command"],
                  [[f["id"], f["config"], f["pattern"], (f["message"] or "")[:120],
                    json.dumps(f.get("shrunk")), f"`{f.get('command')}`"]
                   for f in s["failures"]])
    if s["rejected"]:
        doc.section("Rejected by the compiler")
        doc.table(["case", "config", "why"], [[r["id"], r["config"], r["message"][:160]]
                                             for r in s["rejected"][:50]])
    return doc


def _f(x):
    return "-" if x is None else f"{x:.1f}"


def write_outputs(out: Path, s: dict, results: list) -> list[Path]:
    """Write every output of a run into ``out`` (each atomically)."""
    doc = document(s)
    paths = {"summary.json": json.dumps(s, indent=1), "junit.xml": junit_xml(results,
                                                                            s["wall_s"]),
             "summary.md": doc.markdown(), "summary.html": doc.html(),
             "results.json": json.dumps(
                 [{k: v for k, v in r.items() if k != "reproducer"} for r in results],
                 indent=1)}
    for name, text in paths.items():
        write_atomic(out / name, text)
    return [out / n for n in paths]


__all__ = ["junit_xml", "summarize", "write_outputs"]
