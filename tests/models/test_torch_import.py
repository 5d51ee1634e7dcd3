"""PyTorch state-dict import (models.torch_import); skipped when the torch extra is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hw.arch.errors import EIEError
from models import float_forward, load_model
from models.lstm import LSTMLayer
from models.npz import imported_network
from models.torch_import import linear_layers, state_dict_layers, torch_specs
from tests.models.test_lstm import naive_lstm


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


# ---- nn.LSTM (the state dict's layout, tested without torch; against torch when present) ----

def lstm_state_dict(rng, n_in=4, H=5, proj=3, layers=2, n_out=2):
    """What ``{"lstm": nn.LSTM(n_in, H, layers, proj_size=proj), "fc": nn.Linear}`` saves."""
    sd, rec = {}, proj or H
    for k in range(layers):
        sd[f"lstm.weight_ih_l{k}"] = rng.normal(0, 0.5, (4 * H, n_in if k == 0 else rec))
        sd[f"lstm.weight_hh_l{k}"] = rng.normal(0, 0.5, (4 * H, rec))
        sd[f"lstm.bias_ih_l{k}"] = rng.normal(0, 0.5, 4 * H)
        sd[f"lstm.bias_hh_l{k}"] = rng.normal(0, 0.5, 4 * H)
        if proj:
            sd[f"lstm.weight_hr_l{k}"] = rng.normal(0, 0.5, (proj, H))
    sd["fc.weight"] = rng.normal(0, 0.5, (n_out, rec))
    sd["fc.bias"] = rng.normal(0, 0.5, n_out)
    return sd


@pytest.mark.parametrize("proj", [0, 3])
def test_lstm_state_dict_layers(proj):

    rng = np.random.default_rng(proj)
    sd = lstm_state_dict(rng, proj=proj)
    layers = state_dict_layers(sd)
    assert [type(lay).__name__ for lay in layers] == ["LSTMLayer", "LSTMLayer", "tuple"]
    l0, l1 = layers[:2]
    assert (l0.name, l1.name) == ("lstm.l0", "lstm.l1")
    assert l0.return_sequences and not l1.return_sequences and l0.peep is None
    assert l0.has_projection is bool(proj)
    specs = torch_specs(layers)
    assert specs[2][2] is False  # no ReLU after the last Linear
    # the network computes PyTorch's equations: a 2-layer LSTM, then fc on the last frame
    net = imported_network(Path("m.pt"), specs, name=None, seed=0, description="t")
    x = rng.normal(0, 1, (3, 6, 4))
    net.x = x.astype(np.float32)
    got = float_forward(net)[-1]
    for s in range(3):
        h = net.x[s].astype(np.float64)
        for lay in (l0, l1):
            h = naive_lstm(*(None if a is None else np.asarray(a, np.float64)
                             for a in (lay.W_x, lay.W_r, lay.b, None, lay.W_ym)), h)
        want = sd["fc.weight"] @ h[-1] + sd["fc.bias"]
        np.testing.assert_allclose(got[s], want, rtol=1e-5, atol=1e-5)
    assert isinstance(net.layers[0], LSTMLayer) and net.x.shape == (3, 6, 4)


def test_lstm_state_dict_refusals():
    rng = np.random.default_rng(0)
    sd = lstm_state_dict(rng, layers=1)
    with pytest.raises(EIEError, match="holds an nn.LSTM, not only nn.Linear"):
        linear_layers(sd)
    with pytest.raises(EIEError, match="bidirectional LSTMs are not supported"):
        state_dict_layers({**sd, "lstm.weight_ih_l0_reverse": np.ones((20, 4))})
    bad = dict(sd)
    bad["fc.weight"] = np.ones((2, 7))
    with pytest.raises(EIEError, match="layer 'fc' takes 7 inputs but 'lstm.l0' has 3 outputs"):
        state_dict_layers(bad)
    bad = dict(sd)
    del bad["lstm.weight_hh_l0"]
    with pytest.raises(EIEError, match="needs weight_ih_l0 and weight_hh_l0"):
        state_dict_layers(bad)


def test_lstm_import_reproduces_torch(torch, tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 5, num_layers=2, batch_first=True, proj_size=3)
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    model = Net().double()
    p = tmp_path / "lstm.pt"
    torch.save(model.state_dict(), p)
    net = load_model(str(p))
    x = np.random.default_rng(0).standard_normal((3, 7, 4))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    net.x = x.astype(np.float32)
    np.testing.assert_allclose(float_forward(net)[-1], ref, rtol=1e-4, atol=1e-5)
