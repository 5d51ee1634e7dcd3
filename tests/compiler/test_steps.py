"""The compiler as a list of steps: pure steps, one runner, options checked once, per-step
artifacts, and an output that replaces only the compiler's own entries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compiler import output, steps
from compiler.manifest import build_manifest, compiled_manifest, load_manifest
from compiler.options import Options, check_options
from compiler.output import OUTPUTS, Compiled, check_out_dir, emit
from compiler.runner import STEPS, compile_steps, run_steps
from compiler.steps import CompileState
from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from models.network import Layer, Network

TINY = PRESETS["tiny"]


def small_net(seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    layers = [Layer(name=f"fc{k}", W=rng.standard_normal((o, i)).astype(np.float32),
                    b=(0.1 * rng.standard_normal(o)).astype(np.float32), relu=k == 0,
                    density=0.5, act_density=None)
              for k, (o, i) in enumerate(((12, 20), (5, 12)))]
    x = np.abs(rng.standard_normal((3, 20))).astype(np.float32)
    return Network(name="small", layers=layers, x=x, labels=None, synthetic=False,
                   description="a test network")


def test_steps_in_order_and_timed():
    assert [s.name for s in STEPS] == ["prune", "share", "permute", "encode", "layout", "account"]
    state, timings = compile_steps(small_net(), TINY, Options())
    assert list(timings) == ["prune", "share", "permute", "encode", "layout", "account"]
    assert all(t >= 0 for t in timings.values())
    assert len(state.pruned) == len(state.shared) == len(state.encoded) == 2
    assert state.images is not None and state.bits == TINY.weight_index_bits
    assert [m["nnz"] for m in state.accounting["layers"]] == [120, 30]


def test_steps_are_pure():
    net = small_net()
    s0 = CompileState(net=net, opts=Options(), bits=check_options(Options(), TINY, net))
    W = [layer.W.copy() for layer in net.layers]
    s1 = steps.prune(s0, TINY)
    assert s0.pruned == () and len(s1.pruned) == 2
    again = steps.prune(s0, TINY)
    for a, b in zip(s1.pruned, again.pruned):
        np.testing.assert_array_equal(a.values, b.values)
    s2 = steps.share(s1, TINY)
    assert s1.shared == () and all(s.codebook_int[0] == 0 for s in s2.shared)
    for w, layer in zip(W, net.layers):
        np.testing.assert_array_equal(w, layer.W)


def test_keep_steps_writes_every_artifact(tmp_path):
    state, _ = compile_steps(small_net(), TINY, Options(), keep_steps=tmp_path / "steps")
    names = sorted(p.name for p in (tmp_path / "steps").iterdir())
    assert names == ["0_prune.npz", "1_share.npz", "2_permute.npz", "3_encode.npz",
                     "4_layout.npz", "5_account.json"]
    with np.load(tmp_path / "steps" / "0_prune.npz") as z:
        np.testing.assert_array_equal(z["values0"], state.pruned[0].values)
    with np.load(tmp_path / "steps" / "4_layout.npz") as z:
        np.testing.assert_array_equal(z["spmat"], state.images.spmat)
    acc = json.loads((tmp_path / "steps" / "5_account.json").read_text())
    assert acc["storage_bits"] == state.accounting["storage_bits"]


@pytest.mark.parametrize("opts,msg", [
    (Options(bits=0), "codebook bits must be in 1..8"),
    (Options(bits=5), "codebook bits 5 exceed the weight index of config 'tiny'"),
    (Options(quantizer="nope"), "unknown quantizer 'nope'"),
    (Options(density=1.5), r"density must be in \(0, 1\]"),
    (Options(shared=[]), "0 shared layers given for 2 layers"),
])
def test_options_checked_before_any_step(tmp_path, opts, msg):
    with pytest.raises(EIEError, match=msg):
        compile_steps(small_net(), TINY, opts, keep_steps=tmp_path / "steps")
    assert not (tmp_path / "steps").exists()


def test_run_steps_takes_a_step_list():
    net = small_net()
    s0 = CompileState(net=net, opts=Options(), bits=4)
    state, timings = run_steps(s0, TINY, STEPS[:4])
    assert list(timings) == ["prune", "share", "permute", "encode"] and state.images is None


def _compiled(density: float = 0.5) -> Compiled:
    state, timings = compile_steps(small_net(), TINY, Options(density=density))
    manifest = build_manifest(state, TINY, timings)
    outs = [np.zeros((3, 12), np.int64), np.zeros((3, 5), np.int64)]
    return Compiled(state.images, manifest, outs, [state.images.inputs[0], outs[0]])


def test_emit_replaces_only_its_own_entries(tmp_path):
    out = tmp_path / "m" / "tiny"
    emit(_compiled(), out)
    written = [n for n in OUTPUTS if n != "steps"]  # steps/ only when asked to keep them
    assert sorted(p.name for p in out.iterdir()) == sorted(written)
    (out / "report.json").write_text("{}")
    (out / "compress").mkdir()
    emit(_compiled(0.25), out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*written, "report.json", "compress"])
    assert load_manifest(out)["options"]["density_override"] == 0.25
    assert "emit" in load_manifest(out)["pass_seconds"]
    assert compiled_manifest(out, TINY)["model"] == "small"
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]  # no temporary left


def test_emit_error_leaves_the_previous_compile(tmp_path, monkeypatch):
    out = tmp_path / "tiny"
    emit(_compiled(), out)
    before = (out / "manifest.json").read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(output.np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        emit(_compiled(0.25), out)
    assert (out / "manifest.json").read_text() == before
    assert (out / "images" / "images.npz").exists() and (out / "golden.npz").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]


def test_check_out_dir(tmp_path):
    assert check_out_dir(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "f").write_text("x")
    with pytest.raises(EIEError, match="is an existing file"):
        check_out_dir(tmp_path / "f")
    (tmp_path / "d").mkdir()
    check_out_dir(tmp_path / "d")  # empty: fine
    (tmp_path / "d" / "x").write_text("x")
    with pytest.raises(EIEError, match="holds no previous compile"):
        check_out_dir(tmp_path / "d")
    (tmp_path / "d" / "manifest.json").write_text("{}")
    check_out_dir(tmp_path / "d")


def test_manifest_errors(tmp_path):
    with pytest.raises(EIEError, match="no manifest"):
        load_manifest(tmp_path)
    with pytest.raises(EIEError, match="no compiled model"):
        compiled_manifest(tmp_path, TINY)
    emit(_compiled(), tmp_path / "c")
    with pytest.raises(EIEError, match="another configuration"):
        compiled_manifest(tmp_path / "c", PRESETS["pe8"])
