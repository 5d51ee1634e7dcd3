"""compiler.manifest: reading a compile back, and refusing one that something damaged since."""

from __future__ import annotations

import json

import pytest

from compiler.manifest import compiled_manifest, load_manifest
from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from tests.conftest import write_random_model

TINY = PRESETS["tiny"]


@pytest.fixture
def out(tmp_path):
    return write_random_model(tmp_path / "m", TINY, [(8, 6), (4, 8)])


def _refused(fn, *args) -> str:
    with pytest.raises(EIEError) as e:
        fn(*args)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_whole_compile_reads_back(out):
    assert load_manifest(out) == json.loads((out / "manifest.json").read_text())
    assert compiled_manifest(out, TINY)["layers"] == load_manifest(out)["layers"]


@pytest.mark.parametrize("damage, why", [
    (lambda p: p.write_bytes(p.read_bytes()[:40]), "is not valid JSON"),
    (lambda p: p.write_bytes(b'{"model": "caf\xe9"}'), "is not UTF-8 text"),
    (lambda p: p.write_text("[1, 2]"), "is not a compile's manifest"),
    (lambda p: p.write_text('{"model": "m"}'), "is not a compile's manifest"),
])
def test_a_damaged_manifest_says_to_compile_again(out, damage, why):
    damage(out / "manifest.json")
    for read in (lambda: load_manifest(out), lambda: compiled_manifest(out, TINY)):
        msg = _refused(read)
        assert msg.startswith(f"manifest {out / 'manifest.json'} {why}")
        assert msg.endswith(f"; compile again (make compile with the same MODEL and CONFIG, "
                            f"or --recompile), or delete {out}")


@pytest.mark.parametrize("name", ["golden.npz", "images/images.npz"])
@pytest.mark.parametrize("damage, why", [
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "is truncated"),
    (lambda p: p.write_text("disk full\n"), "is not a NumPy .npz archive"),
    (lambda p: p.write_bytes(b""), "is empty"),
])
def test_a_damaged_archive_says_to_compile_again(out, name, damage, why):
    damage(out / name)
    msg = _refused(compiled_manifest, out, TINY)
    assert msg.startswith(f"{out / name} {why}")
    assert msg.endswith(f"; compile again (make compile with the same MODEL and CONFIG, or "
                        f"--recompile), or delete {out}")
    assert _refused(load_manifest, out) == msg


def test_a_missing_compile_is_still_make_compile(tmp_path):
    assert _refused(load_manifest, tmp_path).startswith("no manifest at")
    assert _refused(compiled_manifest, tmp_path, TINY).startswith("no compiled model in")
