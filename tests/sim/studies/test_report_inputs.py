"""A damaged report.json is named and re-simulated, never a traceback (sim.studies.report)."""

from __future__ import annotations

import json

import pytest

from hw.arch.errors import EIEError
from sim.studies import report


def test_a_truncated_report_is_one_line(tmp_path):
    (tmp_path / "report.json").write_text('{"model": "x", "layers": [{"na')
    with pytest.raises(EIEError, match=r"report.*simulate again \(make sim"):
        report._read_report(tmp_path)


def test_a_report_without_layers_is_refused(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"model": "x"}))
    with pytest.raises(EIEError, match=r"not a report of python -m sim"):
        report._read_report(tmp_path)


def test_a_damaged_report_newer_than_the_manifest_is_simulated_again(tmp_path, monkeypatch):
    out = tmp_path / "m"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / "report.json").write_text("{cut")  # newer than the manifest
    ran = []
    monkeypatch.setattr(report, "ensure_compiled", lambda *a, **k: out)

    def fake_simulate(o, cfg, **kw):
        ran.append(o)
        return {"totals": {"mismatches": 0}}, None

    monkeypatch.setattr(report, "simulate", fake_simulate)
    monkeypatch.setattr(report, "print_summary", lambda *a: None)
    monkeypatch.setattr(report, "outputs_match", lambda r: True)
    assert report.ensure_report("m", 0, None) == out
    assert ran == [out]
