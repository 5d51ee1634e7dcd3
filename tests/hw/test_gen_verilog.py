"""Verilog generation: files, sidecar, determinism, CLI, and a Verilator lint of the output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from hw.__main__ import main
from hw.gen_verilog import SIDECAR_NAME, VERILOG_NAME, generate_verilog, port_table
from sim.rtl.tools import verilator_env

#: Amaranth's Verilog has width-extending compares, truncating shifts and case statements
#: without default; all intended, so these warnings are off (everything else stays on)
LINT_FLAGS = ["--lint-only", "-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
              "-Wno-CASEINCOMPLETE"]


@pytest.fixture(scope="module")
def tiny_verilog(tmp_path_factory):
    out = tmp_path_factory.mktemp("verilog") / "tiny"
    return generate_verilog(PRESETS["tiny"], out)


def lint(path):
    """Run ``verilator --lint-only``; return (exit code, stderr, seconds)."""
    t = time.perf_counter()
    r = subprocess.run(["verilator", *LINT_FLAGS, "--top-module", "eie_top", str(path)],
                       env=verilator_env(), capture_output=True, text=True, timeout=900)
    return r.returncode, r.stderr, time.perf_counter() - t


def module_ports(text, name):
    """Port names in the header of Verilog module ``name``."""
    m = re.search(rf"^module {re.escape(name)}\(([^)]*)\);", text, re.M)
    assert m, f"module {name} not found"
    return {p.strip() for p in m.group(1).split(",")}


def test_generate_tiny_files_and_sidecar(tiny_verilog):
    vpath, spath = tiny_verilog
    assert vpath.name == VERILOG_NAME and spath.name == SIDECAR_NAME
    text = vpath.read_text()
    side = json.loads(spath.read_text())
    cfg = PRESETS["tiny"]
    assert side["config"] == cfg.to_dict()
    assert side["config_digest"] == cfg.digest()
    assert side["verilog_bytes"] == vpath.stat().st_size
    assert side["verilog_lines"] == text.count("\n")
    assert side["modules"] == ["eie_top", "eie_pe"] and side["pe_instances"] == 4
    assert side["ports"] == port_table(cfg)
    assert side["amaranth_version"].startswith("0.5")
    assert side["generation_seconds"] > 0
    # the Verilog ports are exactly the sidecar's (section 5 names, plus clk / rst)
    assert module_ports(text, "eie_top") == {p["name"] for p in side["ports"]}
    widths = {p["name"]: p["width"] for p in side["ports"]}
    assert widths["cnt_value"] == 32 and widths["host_pe"] == cfg.pe_bits
    # one shared PE module, instantiated n_pes times
    assert len(re.findall(r"^module eie_pe\(", text, re.M)) == 1
    assert len(re.findall(r"^\s*eie_pe inst \(", text, re.M)) == cfg.n_pes
    # nothing half-written left behind
    assert sorted(p.name for p in vpath.parent.iterdir()) == [SIDECAR_NAME, VERILOG_NAME]


def test_generate_is_deterministic(tiny_verilog, tmp_path):
    vpath, _ = tiny_verilog
    v2, _ = generate_verilog(PRESETS["tiny"], tmp_path / "again")
    assert v2.read_bytes() == vpath.read_bytes()


@pytest.mark.verilator
def test_verilator_lint_tiny(tiny_verilog, capsys):
    rc, err, dt = lint(tiny_verilog[0])
    assert rc == 0, err
    assert "%Error" not in err
    assert "%Warning" not in err, err[:2000]
    with capsys.disabled():
        print(f"\n[gen_verilog] verilator lint tiny: clean in {dt:.1f} s")


@pytest.mark.slow
@pytest.mark.verilator
def test_generate_and_lint_eie64(tmp_path, capsys):
    t = time.perf_counter()
    vpath, spath = generate_verilog(PRESETS["eie64"], tmp_path / "eie64")
    gen = time.perf_counter() - t
    side = json.loads(spath.read_text())
    rc, err, dt = lint(vpath)
    assert rc == 0 and "%Error" not in err, err[:2000]
    with capsys.disabled():
        print(f"\n[gen_verilog] eie64: {side['verilog_bytes']} bytes, "
              f"{side['verilog_lines']} lines in {gen:.1f} s; verilator lint {dt:.1f} s "
              f"({'clean' if '%Warning' not in err else 'warnings'})")


def test_cli_help_and_errors(tmp_path):
    py = [sys.executable, "-m", "hw"]
    r = subprocess.run([*py, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--config" in r.stdout and "--out" in r.stdout
    r = subprocess.run([*py, "--config", "nosuch"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("gen_verilog: error: ")
    assert "nosuch" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_pes": 0}')
    r = subprocess.run([*py, "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "n_pes" in r.stderr and r.stderr.count("\n") == 1
    # an output path below a file cannot be created
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run([*py, "--config", "pe1", "--out", str(blocker / "sub")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("gen_verilog: error: cannot write")


def test_cli_json_config(tmp_path, capsys):
    cfg = PRESETS["pe1"].replace(name="mine")
    p = tmp_path / "mine.json"
    p.write_text(cfg.to_json())
    assert main(["--config", str(p), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "gen_verilog: converting eie_pe (mine)" in out and "wrote" in out
    side = json.loads((tmp_path / "o" / SIDECAR_NAME).read_text())
    assert side["config"]["name"] == "mine" and side["pe_instances"] == 1


@pytest.mark.verilator
@pytest.mark.parametrize("preset", ["tiny", pytest.param("ese", marks=pytest.mark.slow)])
def test_verilator_lint_with_the_lstm_hardware(tmp_path, preset, capsys):
    """The array with the LSTM hardware (cfg.lstm: the element-wise units, the banked
    accumulators, the LSTM program) lints clean: a small array, and ESE's channel."""
    cfg = PRESETS[preset] if PRESETS[preset].lstm else \
        PRESETS[preset].replace(name=f"{preset}-lstm", lstm=True)
    vpath, _ = generate_verilog(cfg, tmp_path / "v")
    text = vpath.read_text()
    assert "sigmoid" in text and "acc1" in text  # the tables and the second bank are there
    rc, err, dt = lint(vpath)
    assert rc == 0 and "%Error" not in err and "%Warning" not in err, err[:2000]
    with capsys.disabled():
        print(f"\n[gen_verilog] verilator lint {cfg.name}: clean in {dt:.1f} s")


def test_too_deep_memories_are_refused_before_generation(tmp_path):
    """A 2**24-word Spmat once died of a MemoryError after 89 s of generation: now one line,
    at once, and no output directory."""
    cfg = PRESETS["tiny"].replace(name="deep", spmat_depth=1 << 24)
    t0 = time.perf_counter()
    with pytest.raises(EIEError, match="config 'deep': spmat_depth = 16777216 gives a PE "):
        generate_verilog(cfg, tmp_path / "v")
    assert time.perf_counter() - t0 < 1.0
    assert list(tmp_path.iterdir()) == []
