"""models: registered networks (shapes, densities, seeding), mlp_digits, user .npz files, errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hw.arch.errors import EIEError
from models import MODEL_NAMES, Layer, Network, float_forward, load_model, load_npz, save_npz
from models import synthetic
from models.registry import MLP_DIGITS_NPZ
from models.network import print_note

ROOT = Path(__file__).resolve().parents[2]

# (in, out) as published in EIE Table III
SHAPES = {
    "alexnet_fc": [(9216, 4096), (4096, 4096), (4096, 1000)],
    "vgg_fc": [(25088, 4096), (4096, 4096), (4096, 1000)],
    "neuraltalk": [(4096, 600), (600, 8791), (1201, 2400)],
    "mlp_digits": [(64, 300), (300, 100), (100, 10)],
}
WEIGHT_DENSITY = {"alexnet_fc": [0.09, 0.09, 0.25], "vgg_fc": [0.04, 0.04, 0.23],
                  "neuraltalk": [0.10, 0.11, 0.10]}
ACT_DENSITY = {"alexnet_fc": [0.351, 0.353, 0.375], "vgg_fc": [0.183, 0.375, 0.411],
               "neuraltalk": [1.0, 1.0, 1.0]}


@pytest.fixture(scope="module")
def alexnet():
    return load_model("alexnet_fc")


@pytest.fixture(scope="module")
def vgg():
    return load_model("vgg_fc")


@pytest.fixture(scope="module")
def neuraltalk():
    return load_model("neuraltalk")


@pytest.fixture(scope="module")
def mlp():
    return load_model("mlp_digits")


@pytest.fixture(scope="module")
def nets(alexnet, vgg, neuraltalk, mlp):
    return {"alexnet_fc": alexnet, "vgg_fc": vgg, "neuraltalk": neuraltalk, "mlp_digits": mlp}


def top_k_mask(W, density):
    """Independent magnitude pruning: |w| >= the round(density*size)-th largest |w|."""
    a = np.abs(W).ravel()
    k = int(round(density * a.size))
    t = np.partition(a, a.size - k)[a.size - k]
    return np.abs(W) >= t


def pruned_forward_densities(net):
    """Input-activation density of every layer of the magnitude-pruned float network."""
    x = net.x[0].astype(np.float32)
    dens = []
    for layer in net.layers:
        dens.append(np.count_nonzero(x) / x.size)
        W = np.where(top_k_mask(layer.W, layer.density), layer.W, np.float32(0))
        y = W @ x + layer.b
        x = np.maximum(y, 0) if layer.relu else y
    return dens, x


# ---- registry ----

def test_model_names():
    assert MODEL_NAMES == ("alexnet_fc", "vgg_fc", "neuraltalk", "mlp_digits", "ese_lstm",
                           "lstm_digits")


@pytest.mark.parametrize("name", list(SHAPES))  # the LSTM models: tests/models/test_lstm.py
def test_shapes_and_types(nets, name):
    net = nets[name]
    assert isinstance(net, Network) and net.name == name
    assert [(lay.W.shape[1], lay.W.shape[0]) for lay in net.layers] == SHAPES[name]
    for lay in net.layers:
        assert isinstance(lay, Layer)
        assert lay.W.dtype == np.float32 and lay.b.dtype == np.float32
        assert lay.b.shape == (lay.W.shape[0],)
        assert 0 < lay.density <= 1
        assert np.all(np.isfinite(lay.b))
    assert net.x.dtype == np.float32
    assert net.x.ndim == 2 and net.x.shape[1] == net.layers[0].W.shape[1]
    assert "\n" not in net.description


@pytest.mark.parametrize("name", ["alexnet_fc", "vgg_fc", "neuraltalk"])
def test_synthetic_metadata(nets, name):
    net = nets[name]
    assert net.synthetic and "synthetic" in net.description
    assert net.labels is None
    assert net.x.shape[0] == 1  # batch 1, as EIE
    assert [lay.density for lay in net.layers] == WEIGHT_DENSITY[name]
    assert [lay.act_density for lay in net.layers] == ACT_DENSITY[name]
    for lay, target in zip(net.layers, ACT_DENSITY[name]):
        assert abs(lay.act_density_float - target) <= 0.01


@pytest.mark.parametrize("name", ["alexnet_fc", "vgg_fc"])
def test_chained_relu_pattern(nets, name):
    net = nets[name]
    assert net.chained
    assert [lay.relu for lay in net.layers] == [True, True, False]
    assert [lay.name for lay in net.layers] == ["fc6", "fc7", "fc8"]
    assert all(lay.x is None for lay in net.layers)


def test_first_input_exact_density(alexnet, vgg):
    for net, d in ((alexnet, 0.351), (vgg, 0.183)):
        x = net.x[0]
        assert np.count_nonzero(x) == round(d * x.size)
        assert np.all(x >= 0)
        assert x[x > 0].min() >= 0.05  # survives rounding to 1/256


def test_alexnet_activation_densities(alexnet):
    dens, out = pruned_forward_densities(alexnet)
    for got, target in zip(dens, ACT_DENSITY["alexnet_fc"]):
        assert abs(got - target) <= 0.01, (dens, ACT_DENSITY["alexnet_fc"])
    assert np.all(np.isfinite(out)) and np.abs(out).max() < 64


@pytest.mark.slow
def test_vgg_activation_densities(vgg):
    dens, out = pruned_forward_densities(vgg)
    for got, target in zip(dens, ACT_DENSITY["vgg_fc"]):
        assert abs(got - target) <= 0.01, (dens, ACT_DENSITY["vgg_fc"])


def test_alexnet_activations_fit_fixed_point(alexnet):
    """Every hidden activation is either 0 or well above 1/256, and far below saturation (128);
    rounding the inputs to 8 fraction bits keeps every density."""
    ins = float_forward(alexnet, [top_k_mask(lay.W, lay.density) for lay in alexnet.layers])
    for lay, a in zip(alexnet.layers, ins[:-1]):
        pos = a[a > 0]
        assert pos.min() >= 0.05 and a.max() < 32
        q = np.rint(a * 256) / 256
        assert np.count_nonzero(q) == np.count_nonzero(a)
        assert abs(np.count_nonzero(a) / a.size - lay.act_density) <= 0.01


def test_alexnet_densities_survive_weight_sharing(alexnet):
    """4-bit weight sharing of the pruned weights moves no activation density by over 1 point:
    the bias margin keeps pre-activations away from zero."""
    x = alexnet.x[0].astype(np.float64)
    for k, lay in enumerate(alexnet.layers):
        if k:
            assert abs(np.count_nonzero(x) / x.size - lay.act_density) <= 0.01
        mask = top_k_mask(lay.W, lay.density)
        vals = lay.W[mask]
        # 15 levels, one per equal-count bin (a cheap stand-in for k-means)
        edges = np.quantile(vals, np.linspace(0, 1, 16))
        idx = np.clip(np.searchsorted(edges, vals) - 1, 0, 14)
        cent = np.array([vals[idx == j].mean() for j in range(15)])
        Wq = np.zeros_like(lay.W)
        Wq[mask] = cent[idx]
        y = Wq @ x + lay.b
        x = np.maximum(y, 0) if lay.relu else y


def test_neuraltalk_not_chained(neuraltalk):
    net = neuraltalk
    assert not net.chained
    assert [lay.name for lay in net.layers] == ["NT-We", "NT-Wd", "NT-LSTM"]
    assert not any(lay.relu for lay in net.layers)
    assert net.x is net.layers[0].x
    for lay in net.layers:
        assert lay.x.dtype == np.float32 and lay.x.shape == (1, lay.W.shape[1])
        # 100 % dense and nothing rounds to zero at 8 fraction bits
        assert np.all(np.abs(lay.x) >= 0.05)
        assert np.all(np.rint(lay.x * 256) != 0)
    assert np.all(net.layers[0].x > 0) and np.all(net.layers[1].x > 0)
    lstm = net.layers[2].x[0]
    assert lstm.min() < 0 and np.abs(lstm).max() <= 1.0 and lstm[-1] == 1.0
    # pruned pre-activations are O(1)
    for lay in net.layers:
        y = np.where(top_k_mask(lay.W, lay.density), lay.W, 0) @ lay.x[0] + lay.b
        assert 0.5 < y.std() < 5 and np.abs(y).max() < 64


def test_weights_are_heavy_tailed(alexnet):
    w = alexnet.layers[1].W.ravel()[:2_000_000].astype(np.float64)
    z = (w - w.mean()) / w.std()
    assert np.mean(z ** 4) - 3 > 2  # Gaussian 0, Laplace 3
    assert abs(np.mean(w > 0) - 0.5) < 0.01
    # rows do not all keep the same number of weights
    kept = top_k_mask(alexnet.layers[1].W, 0.09).sum(axis=1)
    assert kept.std() / kept.mean() > 0.2


# ---- seeding ----

def _arrays(net):
    out = [net.x]
    for lay in net.layers:
        out += [lay.W, lay.b] + ([lay.x] if lay.x is not None else [])
    return out


def test_seed_deterministic_neuraltalk(neuraltalk):
    again = load_model("neuraltalk", seed=0)
    for a, b in zip(_arrays(neuraltalk), _arrays(again)):
        assert np.array_equal(a, b)
    other = load_model("neuraltalk", seed=1)
    for a, b in zip(_arrays(neuraltalk), _arrays(other)):
        assert a.shape == b.shape and not np.array_equal(a, b)


def test_seed_deterministic_alexnet(alexnet):
    again = load_model("alexnet_fc", seed=0)
    for a, b in zip(_arrays(alexnet), _arrays(again)):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_seed_changes_alexnet(alexnet):
    other = load_model("alexnet_fc", seed=1)
    for a, b in zip(_arrays(alexnet), _arrays(other)):
        assert not np.array_equal(a, b)
    assert [lay.act_density_float for lay in other.layers] == \
        [lay.act_density_float for lay in alexnet.layers]


def test_kth_largest_abs_matches_partition():
    rng = np.random.default_rng(3)
    W = synthetic.laplace_f32(rng, (2000, 2600))  # > 4M: the bracketing path
    a = np.abs(W).ravel()
    for k in (1, 17, 468_000, a.size // 2, a.size):
        assert synthetic.kth_largest_abs(W, k) == np.partition(a, a.size - k)[a.size - k]


# ---- mlp_digits ----

def test_mlp_digits(mlp):
    assert not mlp.synthetic and mlp.chained
    assert [lay.relu for lay in mlp.layers] == [True, True, False]
    assert all(lay.act_density is None for lay in mlp.layers)
    assert mlp.labels.dtype == np.int64 and mlp.labels.shape == (mlp.x.shape[0],)
    assert set(np.unique(mlp.labels)) == set(range(10))
    assert mlp.x.min() >= 0 and mlp.x.max() <= 1
    acc = np.mean(np.argmax(float_forward(mlp)[-1], axis=1) == mlp.labels)
    assert acc >= 0.94


def test_mlp_digits_file_metadata(mlp):
    assert MLP_DIGITS_NPZ.stat().st_size < 1 << 20
    with np.load(MLP_DIGITS_NPZ) as z:
        meta = json.loads(str(z["meta"]))
        assert all(z[f"W{k}"].dtype == np.float32 for k in range(3))
    assert meta["train_size"] + meta["test_size"] == 1797
    assert meta["test_size"] == mlp.x.shape[0]
    assert tuple(meta["densities"]) == tuple(lay.density for lay in mlp.layers)
    acc = np.mean(np.argmax(float_forward(mlp)[-1], axis=1) == mlp.labels)
    assert acc == pytest.approx(meta["accuracy_dense"], abs=1e-6)


def test_mlp_digits_survives_one_shot_compression(mlp):
    """The shipped densities: one-shot pruning + 4-bit k-means within 2 points of dense."""
    from models.mlp_digits.train import accuracy, compress

    params = [a for lay in mlp.layers for a in (lay.W.astype(np.float64), lay.b)]
    dense = accuracy(params, mlp.x, mlp.labels)
    small = accuracy(compress(params, [lay.density for lay in mlp.layers], "kmeans"),
                     mlp.x, mlp.labels)
    assert small >= dense - 0.02
    # and the density matters: Deep Compression's retrained 8/9/26 % does not hold one-shot
    assert accuracy(compress(params, (0.08, 0.09, 0.26), "kmeans"), mlp.x, mlp.labels) < small


def test_loading_needs_no_sklearn():
    code = ("import sys, models; models.load_model('mlp_digits'); "
            "import models.mlp_digits.train; assert 'sklearn' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---- user .npz ----

def write(path, shapes=((6, 8), (3, 6)), **extra):
    rng = np.random.default_rng(0)
    arrays = {}
    for k, (o, n) in enumerate(shapes):
        arrays[f"W{k}"] = rng.standard_normal((o, n)).astype(np.float32)
        arrays[f"b{k}"] = rng.standard_normal(o).astype(np.float32)
    arrays.update(extra)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_user_defaults(tmp_path):
    net = load_model(str(write(tmp_path / "u.npz")))
    assert net.name == "u" and not net.synthetic and net.chained and net.labels is None
    assert [lay.density for lay in net.layers] == [1.0, 1.0]
    assert [lay.relu for lay in net.layers] == [True, False]
    assert [lay.name for lay in net.layers] == ["fc0", "fc1"]
    assert net.x.shape == (1, 8) and net.x.dtype == np.float32
    assert np.count_nonzero(net.x) == 4 and net.x.min() >= 0 and net.x[net.x > 0].min() >= 0.05
    again = load_model(tmp_path / "u.npz", seed=0)
    assert np.array_equal(net.x, again.x)
    assert not np.array_equal(net.x, load_model(tmp_path / "u.npz", seed=5).x)


def test_user_options(tmp_path):
    x = np.abs(np.random.default_rng(1).standard_normal((4, 8)))
    p = write(tmp_path / "u.npz", x=x, y=np.array([0, 1, 2, 1]), densities=np.array([0.5, 0.25]),
              relu=np.array([False, True]))
    net = load_model(p)
    assert net.x.shape == (4, 8) and net.x.dtype == np.float32
    assert np.array_equal(net.labels, [0, 1, 2, 1]) and net.labels.dtype == np.int64
    assert [lay.density for lay in net.layers] == [0.5, 0.25]
    assert [lay.relu for lay in net.layers] == [False, True]
    one = load_model(write(tmp_path / "v.npz", densities=np.array(0.3), x=x[0]))
    assert [lay.density for lay in one.layers] == [0.3, 0.3] and one.x.shape == (1, 8)


def test_npz_round_trip(tmp_path, mlp):
    p = write(tmp_path / "u.npz", densities=np.array([0.5, 0.7]), relu=np.array([True, True]),
              x=np.ones((2, 8)), y=np.array([1, 0]))
    net = load_model(p)
    q = save_npz(net, tmp_path / "copy.npz")
    back = load_npz(q)
    for a, b in zip(_arrays(net) + [net.labels], _arrays(back) + [back.labels]):
        assert np.array_equal(a, b) and a.dtype == b.dtype
    assert [(lay.density, lay.relu) for lay in back.layers] == [(0.5, True), (0.7, True)]
    m2 = load_npz(save_npz(mlp, tmp_path / "mlp.npz"))
    for a, b in zip(_arrays(mlp) + [mlp.labels], _arrays(m2) + [m2.labels]):
        assert np.array_equal(a, b)
    assert [lay.density for lay in m2.layers] == [lay.density for lay in mlp.layers]


def test_save_refuses_unchained(neuraltalk, tmp_path):
    with pytest.raises(EIEError, match="only chained networks"):
        save_npz(neuraltalk, tmp_path / "nt.npz")


# ---- errors: one line each ----

def raises(match, fn, *args, **kw):
    with pytest.raises(EIEError, match=match) as e:
        fn(*args, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_unknown_model():
    msg = raises("unknown model", load_model, "foo")
    assert msg == ("unknown model 'foo'; models: alexnet_fc, vgg_fc, neuraltalk, mlp_digits, "
                   "ese_lstm, lstm_digits (or a .npz, .onnx, .pt, .pth or .pt2 file)")


def test_bad_seed():
    raises("seed must be a non-negative integer", load_model, "neuraltalk", seed=-1)
    raises("seed must be a non-negative integer", load_model, "neuraltalk", seed=1.5)


def test_missing_file(tmp_path):
    raises(f"model file not found: {tmp_path / 'none.npz'}", load_model,
           str(tmp_path / "none.npz"))


NAN_W1 = np.ones((3, 6), np.float32)
NAN_W1[1, 2] = np.nan


@pytest.mark.parametrize("arrays, message", [
    ({"W0": None, "b0": None, "V": np.ones(3)}, "no W0 array"),
    ({"b1": None}, "W1 has no bias b1"),
    ({"W0": np.ones((2, 3, 4)), "b0": np.ones(2)}, r"W0 must be a non-empty 2-D \(out, in\) "
                                                   r"matrix, got shape \(2, 3, 4\)"),
    ({"W0": np.ones(8), "b0": np.ones(8)}, "W0 must be a non-empty 2-D"),
    ({"W0": np.ones((0, 8)), "b0": np.ones(0)}, "W0 must be a non-empty 2-D"),
    ({"b0": np.ones(5)}, r"b0 has shape \(5,\), expected \(6,\)"),
    ({"b1": np.ones((3, 1))}, r"b1 has shape \(3, 1\), expected \(3,\)"),
    ({"W1": np.ones((3, 5)), "b1": np.ones(3)},
     "layer 1: W1 has 5 inputs but layer 0 has 6 outputs"),
    ({"W2": np.ones((2, 3)), "b2": np.ones(2), "W1": None, "b1": None},
     "W2 found but W1 is missing"),
    ({"b2": np.ones(2)}, "b2 has no matching W2"),
    ({"x": np.ones((2, 7))}, r"x has shape \(2, 7\), expected \(n, 8\)"),
    ({"x": np.ones((2, 8, 1))}, r"x has shape \(2, 8, 1\), expected \(n, 8\)"),
    ({"W1": NAN_W1}, "W1 contains NaN or Inf"),
    ({"b0": np.array([0, 0, np.inf, 0, 0, 0])}, "b0 contains NaN or Inf"),
    ({"W0": np.full((6, 8), 1e39)}, "W0 contains NaN or Inf"),  # overflows float32
    ({"x": np.full((1, 8), np.nan)}, "x contains NaN or Inf"),
    ({"densities": np.array([0.5, 0.0])}, r"densities\[1\] must be in \(0, 1\], got 0.0"),
    ({"densities": np.array([1.5, 0.5])}, r"densities\[0\] must be in \(0, 1\], got 1.5"),
    ({"densities": np.array([np.nan, 0.5])}, r"densities\[0\] must be in \(0, 1\], got nan"),
    ({"densities": np.array([-0.1, 0.5])}, r"densities\[0\] must be in \(0, 1\]"),
    ({"densities": np.array([0.5, 0.5, 0.5])}, r"densities has shape \(3,\), expected \(2,\)"),
    ({"relu": np.array([True])}, r"relu has shape \(1,\), expected \(2,\)"),
    ({"W0": np.array([["a"] * 8] * 6)}, "W0 must be numeric"),
    ({"x": np.ones((2, 8)), "y": np.array([1, 2, 3])}, "y has 3 labels for 2 inputs"),
    ({"y": np.array([1])}, r"y \(labels\) given without x"),
    ({"x": np.ones((2, 8)), "y": np.array([0.5, 1])}, "y must hold integer labels"),
])
def test_npz_errors(tmp_path, arrays, message):
    p = write(tmp_path / "bad.npz", **arrays)  # None drops an array
    msg = raises(message, load_model, str(p))
    assert str(p) in msg


def test_chain_message_exact(tmp_path):
    p = write(tmp_path / "c.npz", shapes=((300, 64), (10, 200)))
    msg = raises("layer 1", load_model, str(p))
    assert msg == f"{p}: layer 1: W1 has 200 inputs but layer 0 has 300 outputs"


def test_an_importer_note_is_printed_once_per_process(capsys):
    for _ in range(3):  # a command loads its model for the data check, the compile, the plain
        print_note("test note: ReLU assumed (printed once)")
    assert capsys.readouterr().err == "note: test note: ReLU assumed (printed once)\n"
