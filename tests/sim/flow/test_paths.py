"""sim.flow.paths: one build root from any directory; output directories keyed by what made
them, so no command's results land in, or replace, another's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler.options import Options
from hw.arch.config import PRESETS, EIEConfig, load_config
from hw.arch.errors import EIEError
from sim.flow.paths import REPO_ROOT, build_root, config_key, model_key, output_dir

EIE64 = PRESETS["eie64"]


def test_build_root_is_the_repository_or_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("EIEGEN_BUILD_DIR", raising=False)
    assert build_root() == REPO_ROOT / "build"
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path))
    assert build_root() == tmp_path
    # from another working directory, a relative EIEGEN_BUILD_DIR is fixed once, absolutely
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EIEGEN_BUILD_DIR", "b")
    assert build_root() == tmp_path / "b"


def test_build_root_does_not_depend_on_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EIEGEN_BUILD_DIR"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    out = subprocess.run([sys.executable, "-c", "from sim.flow.paths import build_root; "
                          "print(build_root())"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert Path(out) == REPO_ROOT / "build"


def test_user_files_never_share_a_registered_models_directory(tmp_path):
    a_npz, a_onnx = tmp_path / "a.npz", tmp_path / "a.onnx"
    other = tmp_path / "sub" / "a.npz"
    keys = {model_key("mlp_digits"), model_key(str(tmp_path / "mlp_digits.npz")),
            model_key(str(a_npz)), model_key(str(a_onnx)), model_key(str(other))}
    assert len(keys) == 5
    assert model_key("mlp_digits") == "mlp_digits"
    assert model_key(str(a_npz)).startswith("a-npz-")
    # the same file, named relatively or absolutely, is one model
    os.chdir(tmp_path)
    try:
        assert model_key("a.npz") == model_key(str(a_npz))
    finally:
        os.chdir(REPO_ROOT)


def test_configurations_are_keyed_by_their_content(tmp_path):
    assert config_key(EIE64) == "eie64"
    # a JSON file without "name" becomes eie64 by default, but it is not eie64's directory
    p = tmp_path / "c.json"
    p.write_text('{"n_pes": 32}')
    cfg = load_config(p)
    assert cfg.name == "eie64" and config_key(cfg) == f"eie64-{cfg.digest()}"
    assert config_key(cfg) != config_key(EIE64)


@pytest.mark.parametrize("name", [".", "..", "", "a/b", "-x", ".hidden", "x" * 65])
def test_configuration_names_that_are_not_directory_names_are_refused(name):
    with pytest.raises(EIEError, match="name must be"):
        EIEConfig(name=name)


def test_options_and_seed_are_part_of_the_directory():
    base = output_dir("alexnet_fc", EIE64)
    assert base == build_root() / "alexnet_fc" / "eie64"
    assert output_dir("alexnet_fc", EIE64, Options()) == base
    bal = output_dir("alexnet_fc", EIE64, Options(balance=True))
    assert bal.name == "eie64+balance"
    assert output_dir("alexnet_fc", EIE64, Options(bits=3, density=0.1)).name == \
        "eie64+bits3-density0.1"
    assert output_dir("alexnet_fc", EIE64, seed=3).name == "eie64+seed3"
    assert len({base, bal, output_dir("alexnet_fc", EIE64, seed=3)}) == 3
    assert output_dir("alexnet_fc", EIE64, Options(balance=True, pad_aware=True)).name == \
        "eie64+balance-padaware"


def test_trained_lstm_codebooks_are_keyed_by_content():
    cb = np.concatenate(([0.0], np.linspace(-1, 1, 15)))
    a = [{"gates": (np.ones((8, 5), int), cb), "proj": (np.ones((3, 2), int), cb)}]
    b = [{"gates": (np.ones((8, 5), int), cb), "proj": (np.zeros((3, 2), int), cb)}]
    ka, kb = (output_dir("m", EIE64, Options(shared=s)).name for s in (a, b))
    assert ka.startswith("eie64+trained-") and ka != kb
