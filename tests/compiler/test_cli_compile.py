"""`python -m compiler` end to end: outputs, manifests, and bad input (one line, exit 2)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args, cwd):
    """``python -m compiler`` in ``cwd`` with the build root ``cwd/build``."""
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "EIEGEN_BUILD_DIR": str(Path(cwd) / "build")})


def user_out(tmp_path, stem: str, config: str) -> Path:
    """The output directory of a user model file (its key holds a hash of its path)."""
    (out,) = (tmp_path / "build").glob(f"{stem}-npz-*/{config}")
    return out


def user_npz(path, shapes=((12, 20), (5, 12)), **extra):
    rng = np.random.default_rng(0)
    arrays = {}
    for i, (o, n) in enumerate(shapes):
        arrays[f"W{i}"] = rng.standard_normal((o, n)).astype(np.float32) * 0.3
        arrays[f"b{i}"] = rng.standard_normal(o).astype(np.float32) * 0.1
    arrays["x"] = np.abs(rng.standard_normal((3, shapes[0][1]))).astype(np.float32)
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


def test_compile_user_npz(tmp_path):
    m = user_npz(tmp_path / "net.npz", densities=np.array([0.5, 0.5]))
    r = run(["--model", str(m), "--config", "tiny"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = user_out(tmp_path, "net", "tiny")
    man = json.loads((out / "manifest.json").read_text())
    assert [lay["rows"] for lay in man["layers"]] == [12, 5]
    assert man["layers"][0]["nnz"] == 120  # round(0.5 * 240)
    assert man["n_samples"] == 3
    assert (out / "images" / "pe003" / "spmat.hex").exists()
    gold = np.load(out / "golden.npz")
    assert gold["out1"].shape == (3, 5)
    # nothing temporary left behind (the lock file stays beside the directory)
    assert sorted(p.name for p in out.parent.iterdir()) == [".tiny.lock", "tiny"]


def test_compile_mlp_digits(tmp_path):
    r = run(["--model", "mlp_digits", "--config", "pe8"], tmp_path)
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "build/mlp_digits/pe8/manifest.json").read_text())
    for lay in man["layers"]:
        assert abs(lay["weight_density"] - lay["weight_density_target"]) < 0.005
    acc = man["accuracy"]
    assert acc["fixed_point_golden"] >= acc["float_dense"] - 0.03


def _bad(tmp_path, args, message):
    r = run(args, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "build").exists() or not any(
        p.name.startswith(".") or (p / "manifest.json").exists()
        for p in (tmp_path / "build").rglob("*") if p.is_dir())


def test_unknown_model(tmp_path):
    _bad(tmp_path, ["--model", "resnet_fc"], "unknown model 'resnet_fc'")


def test_unknown_preset(tmp_path):
    _bad(tmp_path, ["--model", "mlp_digits", "--config", "eie7"], "unknown config 'eie7'")


def test_missing_model_file(tmp_path):
    _bad(tmp_path, ["--model", str(tmp_path / "none.npz")], "not found")


def test_npz_missing_bias(tmp_path):
    m = tmp_path / "m.npz"
    np.savez(m, W0=np.ones((3, 4), np.float32))
    _bad(tmp_path, ["--model", str(m), "--config", "tiny"], "b0")


def test_npz_shape_mismatch(tmp_path):
    m = user_npz(tmp_path / "m.npz", shapes=((12, 20), (5, 11)))
    _bad(tmp_path, ["--model", str(m), "--config", "tiny"], "inputs")


def test_npz_nan(tmp_path):
    m = user_npz(tmp_path / "m.npz")
    d = dict(np.load(m))
    d["W1"][0, 0] = np.nan
    np.savez(m, **d)
    _bad(tmp_path, ["--model", str(m), "--config", "tiny"], "NaN")


@pytest.mark.parametrize("density", ["0", "1.5", "nan"])
def test_density_out_of_range(tmp_path, density):
    m = user_npz(tmp_path / "m.npz")
    _bad(tmp_path, ["--model", str(m), "--config", "tiny", "--density", density],
         "density must be in (0, 1]")


@pytest.mark.parametrize("bits", ["0", "9"])
def test_codebook_bits_out_of_range(tmp_path, bits):
    m = user_npz(tmp_path / "m.npz")
    _bad(tmp_path, ["--model", str(m), "--config", "tiny", "--bits", bits],
         "codebook bits must be in 1..8")


def test_layer_too_big_for_the_spmat_runs_in_column_batches(tmp_path):
    # 128 x 128 at density 1: 32 rows x 128 cols = 4096 entries = 512 words per PE, 256 exist:
    # two column batches of 64 columns (256 words per PE each), each its own segment, the
    # first without write-back (keep)
    m = user_npz(tmp_path / "m.npz", shapes=((128, 128), (4, 128)),
                 densities=np.array([1.0, 1.0]))
    r = run(["--model", str(m), "--config", "tiny"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "fc0: 128x128" in r.stdout and "2 passes (1 output batch(es) x 2 column" in r.stdout
    man = json.loads((user_out(tmp_path, "m", "tiny") / "manifest.json").read_text())
    fc0 = [man["passes"][p] for p in man["layers"][0]["passes"]]
    assert [(p["col0"], p["in_len"], p["col_group"], p["keep"]) for p in fc0] == \
        [(0, 64, 0, 1), (64, 64, 16, 0)]
    assert all(max(p["spmat_words_per_pe"]) <= 256 for p in fc0)
    assert man["layers"][0]["col_batches"] == 2 and man["memory"]["spmat_segments"] == 3


def test_layer_does_not_fit(tmp_path):
    m = user_npz(tmp_path / "m.npz", shapes=((8, 129), (4, 8)), densities=np.array([1.0, 1.0]))
    _bad(tmp_path, ["--model", str(m), "--config", "tiny"],
         "layer fc0: input length 129 exceeds the activation memories of config 'tiny' "
         "(32 words x 4 PEs = 128)")


def test_layers_that_do_not_fit_together_get_spmat_segments(tmp_path):
    m = user_npz(tmp_path / "m.npz", shapes=((100, 100), (100, 100), (4, 100)),
                 densities=np.array([0.5, 0.4, 1.0]))
    r = run(["--model", str(m), "--config", "tiny"], tmp_path)
    assert r.returncode == 0, r.stderr
    man = json.loads((user_out(tmp_path, "m", "tiny") / "manifest.json").read_text())
    assert man["memory"]["spmat_segments"] == 2
    assert [p["segment"] for p in man["passes"]] == [0, 1, 1]
    assert man["memory"]["spmat_segment_layers"] == [["fc0"], ["fc1", "fc2"]]


def test_help_lists_options(tmp_path):
    r = run(["--help"], tmp_path)
    assert r.returncode == 0 and "--balance" in r.stdout and "--quantizer" in r.stdout


def test_second_run_reuses_an_up_to_date_compile(tmp_path):
    m = user_npz(tmp_path / "net.npz")
    assert run(["--model", str(m), "--config", "tiny"], tmp_path).returncode == 0
    r = run(["--model", str(m), "--config", "tiny"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "is up to date" in r.stdout
    r = run(["--model", str(m), "--config", "tiny", "--recompile"], tmp_path)
    assert r.returncode == 0 and "is up to date" not in r.stdout and "wrote" in r.stdout
    # other options: another directory, nothing replaced
    assert run(["--model", str(m), "--config", "tiny", "--balance"], tmp_path).returncode == 0
    assert (user_out(tmp_path, "net", "tiny+balance") / "manifest.json").exists()


def test_out_keeps_other_files_and_replaces_its_own(tmp_path):
    m = user_npz(tmp_path / "net.npz")
    out = tmp_path / "out"
    assert run(["--model", str(m), "--config", "tiny", "--out", str(out)], tmp_path).returncode == 0
    (out / "report.json").write_text("{}")
    (out / "compress").mkdir()
    (out / "compress" / "compress.md").write_text("kept")
    (out / "images" / "stray.hex").write_text("old")
    r = run(["--model", str(m), "--config", "tiny", "--density", "0.5", "--out", str(out)],
            tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "report.json").read_text() == "{}"
    assert (out / "compress" / "compress.md").read_text() == "kept"
    assert not (out / "images" / "stray.hex").exists()  # images/ is the compiler's, replaced
    assert json.loads((out / "manifest.json").read_text())["options"]["density_override"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == \
        [".out.lock"]


def test_out_refuses_a_foreign_directory_or_a_file(tmp_path):
    m = user_npz(tmp_path / "net.npz")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    _bad(tmp_path, ["--model", str(m), "--config", "tiny", "--out", str(foreign)],
         "is not empty and holds no previous compile")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    f = tmp_path / "file"
    f.write_text("x")
    _bad(tmp_path, ["--model", str(m), "--config", "tiny", "--out", str(f)],
         "is an existing file")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["--model", str(m), "--config", "tiny", "--out", str(empty)],
               tmp_path).returncode == 0
    assert (empty / "manifest.json").exists()


def test_keep_steps_writes_every_steps_artifact_beside_its_images(tmp_path):
    m = user_npz(tmp_path / "net.npz")
    r = run(["--model", str(m), "--config", "tiny", "--keep-steps"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = user_out(tmp_path, "net", "tiny")
    names = sorted(p.name for p in (out / "steps").iterdir())
    assert names == ["0_prune.npz", "1_share.npz", "2_permute.npz", "3_encode.npz",
                     "4_layout.npz", "5_account.json"]
    # a compile without --keep-steps removes them: they would describe other images
    r = run(["--model", str(m), "--config", "tiny", "--recompile"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (out / "steps").exists()
    assert not [p for p in out.parent.iterdir() if ".steps." in p.name]


_HOLD = """
import sys, time
from sim.flow.lock import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    print(time.time(), flush=True)  # the lock is released right after this
"""


def test_a_compile_waits_for_a_command_working_on_the_same_directory(tmp_path):
    """A compile while the model is being simulated must not replace the images under it."""
    m = user_npz(tmp_path / "net.npz")
    out = tmp_path / "out"
    assert run(["--model", str(m), "--config", "tiny", "--out", str(out)], tmp_path).returncode == 0
    before = (out / "manifest.json").stat().st_mtime_ns
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out), "3"], env=env,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    r = subprocess.Popen([sys.executable, "-m", "compiler", "--model", str(m), "--config",
                          "tiny", "--out", str(out), "--recompile"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    released = float(holder.stdout.readline())
    holder.wait(timeout=30)
    stdout, stderr = r.communicate(timeout=120)
    assert r.returncode == 0, stderr
    assert "waiting for another eiegen process" in stdout
    written = (out / "manifest.json").stat().st_mtime_ns
    assert written > before and written / 1e9 >= released - 0.05
