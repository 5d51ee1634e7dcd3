"""sim.flow.compile: the compiler's steps plus the golden model, and compile-if-stale."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.manifest import load_manifest
from compiler.options import Options
from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from models import load_model
from sim.flow.compile import compile_network, ensure_compiled
from sim.flow.paths import output_dir
from sim.ref.golden import GoldenModel

PE8 = PRESETS["pe8"]


def quiet(msg):
    pass


def test_golden_fields_of_the_manifest():
    net = load_model("mlp_digits")
    c = compile_network(net, PE8, progress=quiet)
    ps = c.manifest["pass_seconds"]
    assert list(ps) == ["prune", "share", "permute", "encode", "layout", "account", "golden"]
    g = GoldenModel(c.images)
    outs = g.user_order(g.forward(c.images.inputs[0]))  # golden.npz: the user's row order
    for got, want in zip(c.golden, outs):
        np.testing.assert_array_equal(got, want)
    for m, x in zip(c.manifest["layers"], c.layer_inputs):
        assert m["act_density"] == np.count_nonzero(x) / x.size
    acc = c.manifest["accuracy"]
    assert acc["samples"] == 359
    assert acc["fixed_point_golden"] == np.mean(np.argmax(c.golden[-1], 1) == net.labels)
    assert acc["float_dense"] > acc["float_compressed"] > 0.9


def test_ensure_compiled_reuses_and_keeps_other_files(tmp_path, monkeypatch):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    lines = []
    out = ensure_compiled("mlp_digits", 0, PE8, progress=lines.append)
    assert out == output_dir("mlp_digits", PE8) == tmp_path / "mlp_digits" / "pe8"
    man = load_manifest(out)
    assert man["seed"] == 0 and "model" in man["pass_seconds"] and "emit" in man["pass_seconds"]
    (out / "report.json").write_text("{}")
    mtime = (out / "manifest.json").stat().st_mtime_ns
    assert ensure_compiled("mlp_digits", 0, PE8, progress=lines.append) == out
    assert (out / "manifest.json").stat().st_mtime_ns == mtime
    assert any("is up to date" in line for line in lines)
    ensure_compiled("mlp_digits", 0, PE8, force=True, progress=quiet)
    assert (out / "report.json").read_text() == "{}"  # a recompile keeps other results
    other = ensure_compiled("mlp_digits", 0, PE8, Options(bits=3), progress=quiet)
    assert other == tmp_path / "mlp_digits" / "pe8+bits3"
    assert load_manifest(other)["options"]["bits"] == 3


def test_ensure_compiled_checks_options_before_touching_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    with pytest.raises(EIEError, match="codebook bits 5 exceed"):
        ensure_compiled("mlp_digits", 0, PE8, Options(bits=5), progress=quiet)
    assert list(tmp_path.iterdir()) == []


def _truncate(p):  # a crash, a full disk
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip_a_byte(p):  # inside the first member's array data: the zip directory stays whole
    data = bytearray(p.read_bytes())
    data[300] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("name, damage", [
    ("manifest.json", _truncate), ("golden.npz", _truncate), ("images/images.npz", _truncate),
    ("golden.npz", _flip_a_byte), ("images/images.npz", _flip_a_byte)])
def test_a_damaged_compile_is_stale_and_compiled_again(tmp_path, monkeypatch, name, damage):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    out = ensure_compiled("mlp_digits", 0, PE8, progress=quiet)
    whole = load_manifest(out)
    p = out / name
    good = p.read_bytes()
    damage(p)
    lines = []
    assert ensure_compiled("mlp_digits", 0, PE8, progress=lines.append) == out
    assert any(line.startswith("[compile] compile: ") and f"{p} is " in line and
               line.endswith(": compiling again") for line in lines), lines
    assert load_manifest(out)["build_key"] == whole["build_key"]  # whole again
    assert p.suffix == ".json" or p.read_bytes() == good  # (the manifest holds timings)
