"""PyTorch state-dict import (models.torch_import); skipped when the torch extra is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hw.arch.errors import EIEError
from models import float_forward, load_model


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_without_torch_a_pt_model_is_one_error(tmp_path, monkeypatch):
    p = tmp_path / "m.pt"
    p.write_bytes(b"whatever")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(EIEError, match=r"needs PyTorch: pip install -e '.\[torch\]'"):
        load_model(str(p))


def linear_stack(torch, seed=0, sizes=(12, 20, 9, 4)):
    torch.manual_seed(seed)
    mods = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def test_state_dict_import_reproduces_torch(torch, tmp_path):
    model = linear_stack(torch)
    p = tmp_path / "mlp.pt"
    torch.save(model.state_dict(), p)
    net = load_model(str(p))
    assert [layer.W.shape for layer in net.layers] == [(20, 12), (9, 20), (4, 9)]
    assert [layer.relu for layer in net.layers] == [True, True, False]
    x = np.random.default_rng(0).standard_normal((16, 12)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    net.x = x
    np.testing.assert_allclose(float_forward(net)[-1], ref, rtol=1e-5, atol=1e-5)


def test_checkpoint_dict_and_pth_suffix(torch, tmp_path):
    model = linear_stack(torch, 1, (5, 3))
    p = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, p)
    net = load_model(str(p))
    np.testing.assert_allclose(net.layers[0].W, model[0].weight.detach().numpy())
    assert not net.layers[0].relu


def test_non_linear_parameter_is_one_error(torch, tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(),
                                torch.nn.Linear(8, 2))
    p = tmp_path / "conv.pt"
    torch.save(model.state_dict(), p)
    with pytest.raises(EIEError, match=r"unsupported parameter '0.weight' of shape "
                                       r"\(2, 1, 3, 3\)"):
        load_model(str(p))


def test_pickled_module_is_refused(torch, tmp_path):
    p = tmp_path / "module.pt"
    torch.save(linear_stack(torch), p)  # the whole module: needs pickled code to load
    with pytest.raises(EIEError, match="not a PyTorch state_dict file"):
        load_model(str(p))


def test_layers_that_do_not_chain(torch, tmp_path):
    sd = {"a.weight": torch.zeros(4, 3), "a.bias": torch.zeros(4),
          "b.weight": torch.zeros(2, 5), "b.bias": torch.zeros(2)}
    p = tmp_path / "bad.pt"
    torch.save(sd, p)
    with pytest.raises(EIEError, match="layer 'b' takes 5 inputs but 'a' has 4 outputs"):
        load_model(str(p))
