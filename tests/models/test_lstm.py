"""models.lstm: the LSTMP layer, sequence networks, their .npz keys, ese_lstm and lstm_digits."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from compiler import train_lstm
from compiler.options import Options, check_options, refuse_lstm_rtl
from hw.arch.config import load_config
from hw.arch.errors import EIEError
from models import LSTMLayer, Network, float_forward, load_model, load_npz, lstm_forward, save_npz
from models.ese_lstm import N_PARAMS
from models.lstm import GATES
from models.lstm_digits import train as lstm_train
from models.network import Layer
from models.registry import LSTM_DIGITS_NPZ

ROOT = Path(__file__).resolve().parents[2]


# ---- an independent reference: one sample, one step at a time, one matrix per gate ----

def naive_lstm(Wx, Wr, b, peep, Wym, xs):
    """Sak et al. 2014 written out gate by gate for one sequence ``xs`` (T, n_in)."""
    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    nc = Wx.shape[0] // 4
    W = {g: (Wx[j * nc:(j + 1) * nc], Wr[j * nc:(j + 1) * nc], b[j * nc:(j + 1) * nc])
         for j, g in enumerate("ifgo")}
    w_ic, w_fc, w_oc = (np.zeros(nc),) * 3 if peep is None else peep
    y, c = np.zeros(Wr.shape[1]), np.zeros(nc)
    out = []
    for x in xs:
        pre = {g: Wgx @ x + Wgr @ y + bg for g, (Wgx, Wgr, bg) in W.items()}
        i = sig(pre["i"] + w_ic * c)
        f = sig(pre["f"] + w_fc * c)
        g = np.tanh(pre["g"])
        c = f * c + i * g
        o = sig(pre["o"] + w_oc * c)
        m = o * np.tanh(c)
        y = m if Wym is None else Wym @ m
        out.append(y)
    return np.array(out)


def random_layer(rng, n_in, cells, proj, peephole, scale=0.5, seq=True, name="lstm0"):
    rec = proj or cells
    return LSTMLayer(name=name, W_x=rng.normal(0, scale, (4 * cells, n_in)),
                     W_r=rng.normal(0, scale, (4 * cells, rec)),
                     b=rng.normal(0, scale, 4 * cells),
                     peep=rng.normal(0, scale, (3, cells)) if peephole else None,
                     W_ym=rng.normal(0, scale, (proj, cells)) if proj else None,
                     density=0.5, return_sequences=seq)


@pytest.mark.parametrize("proj", [None, 3])
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("T", [1, 2, 7, 20])
def test_lstm_forward_matches_naive(proj, peephole, T):
    rng = np.random.default_rng([T, proj or 0, peephole])
    layer = random_layer(rng, n_in=4, cells=5, proj=proj, peephole=peephole)
    x = rng.normal(0, 1, (3, T, 4))
    y, c = lstm_forward(layer, x, return_cells=True)
    assert y.shape == (3, T, proj or 5) and c.shape == (3, T, 5)
    for s in range(3):
        want = naive_lstm(*(np.asarray(a, np.float64) if a is not None else None
                            for a in (layer.W_x, layer.W_r, layer.b, layer.peep, layer.W_ym)),
                          x[s])
        np.testing.assert_allclose(y[s], want, rtol=1e-12, atol=1e-13)


def test_lstm_forward_masks():
    rng = np.random.default_rng(5)
    layer = random_layer(rng, 4, 5, 3, True)
    x = rng.normal(0, 1, (2, 6, 4))
    masks = {k: rng.random(W.shape) < 0.5 for k, W in layer.matrices().items()}
    pruned = LSTMLayer(name="p", **{k: np.where(masks[k], getattr(layer, k), 0)
                                    for k in ("W_x", "W_r", "W_ym")},
                       b=layer.b, peep=layer.peep)
    np.testing.assert_array_equal(lstm_forward(layer, x, masks), lstm_forward(pruned, x))
    raises(r"mask of W_r has shape \(2, 2\), expected \(20, 3\)", lstm_forward, layer, x,
           {"W_r": np.ones((2, 2), bool)})


def test_lstm_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    for proj, peephole in ((0, False), (3, False)):  # torch has no peepholes
        layer = random_layer(rng, 4, 5, proj, peephole)
        m = torch.nn.LSTM(4, 5, batch_first=True, proj_size=proj).double()
        # torch's gate order is i, f, g, o, as here; its two biases add up
        with torch.no_grad():
            m.weight_ih_l0.copy_(torch.from_numpy(layer.W_x.astype(np.float64)))
            m.weight_hh_l0.copy_(torch.from_numpy(layer.W_r.astype(np.float64)))
            m.bias_ih_l0.copy_(torch.from_numpy(layer.b.astype(np.float64)))
            m.bias_hh_l0.zero_()
            if proj:
                m.weight_hr_l0.copy_(torch.from_numpy(layer.W_ym.astype(np.float64)))
        x = rng.normal(0, 1, (2, 9, 4))
        want = m(torch.from_numpy(x))[0].detach().numpy()
        np.testing.assert_allclose(lstm_forward(layer, x), want, rtol=1e-10, atol=1e-12)


def test_layer_fields():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, 4, 5, 3, True)
    assert GATES == ("i", "f", "g", "o")
    assert (layer.n_in, layer.n_cells, layer.n_rec, layer.n_out) == (4, 5, 3, 3)
    assert layer.has_projection and layer.has_peepholes and not layer.relu
    assert all(a.dtype == np.float32 for a in (layer.W_x, layer.W_r, layer.b, layer.peep,
                                               layer.W_ym))
    assert list(layer.matrices()) == ["W_x", "W_r", "W_ym"]
    assert np.array_equal(layer.gate(layer.b, "f"), layer.b[5:10])
    assert layer.n_params == 80 + 60 + 20 + 15 + 15
    plain = random_layer(rng, 4, 5, None, False)
    assert plain.n_rec == 5 and list(plain.matrices()) == ["W_x", "W_r"]
    with pytest.raises(AttributeError):  # frozen
        layer.density = 0.3


# ---- refusals: one line each ----

def raises(match, fn, *args, **kw):
    with pytest.raises(EIEError, match=match) as e:
        fn(*args, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def _kw(**over):
    rng = np.random.default_rng(0)
    kw = dict(name="L", W_x=rng.normal(size=(8, 3)), W_r=rng.normal(size=(8, 4)),
              b=np.zeros(8), peep=np.zeros((3, 2)), W_ym=np.ones((4, 2)))
    kw.update(over)
    return kw


NAN = np.ones((8, 3))
NAN[2, 1] = np.nan


@pytest.mark.parametrize("over, message", [
    ({"W_x": np.ones((7, 3))}, r"LSTM layer L: W_x has shape \(7, 3\), expected \(4 \* n_cells"),
    ({"W_x": np.ones(8)}, r"W_x has shape \(8,\)"),
    ({"W_x": np.ones((8, 0))}, r"W_x has shape \(8, 0\)"),
    ({"W_r": np.ones((8, 2))}, r"LSTM layer L: W_r has shape \(8, 2\), expected \(8, 4\)"),
    ({"W_ym": None}, r"W_r has shape \(8, 4\), expected \(8, 2\) \(4 gates x 2 cells, 2 rec"),
    ({"W_ym": np.ones((4, 3))}, r"W_ym has shape \(4, 3\), expected \(n_proj, 2\)"),
    ({"b": np.ones(4)}, r"LSTM layer L: b has shape \(4,\), expected \(8,\)"),
    ({"peep": np.ones((2, 2))}, r"peep has shape \(2, 2\), expected \(3, 2\) \(w_ic, w_fc"),
    ({"W_x": NAN}, "LSTM layer L: W_x contains NaN or Inf"),
    ({"W_r": np.full((8, 4), np.inf)}, "W_r contains NaN or Inf"),
    ({"b": np.full(8, 1e39)}, "b contains NaN or Inf"),  # overflows float32
    ({"peep": np.full((3, 2), np.nan)}, "peep contains NaN or Inf"),
    ({"W_ym": np.full((4, 2), np.nan)}, "W_ym contains NaN or Inf"),
    ({"W_x": np.array([["a"] * 3] * 8)}, "W_x must be numeric"),
    ({"density": 0.0}, r"LSTM layer L: density must be in \(0, 1\], got 0.0"),
    ({"density": 1.5}, r"density must be in \(0, 1\]"),
    ({"density": float("nan")}, r"density must be in \(0, 1\]"),
    ({"return_sequences": "yes"}, "return_sequences must be a bool"),
    ({"name": ""}, "LSTM layer name must be a non-empty string"),
])
def test_layer_refusals(over, message):
    raises(message, LSTMLayer, **_kw(**over))


def _net(layers, x, **kw):
    return Network(name="n", layers=layers, x=x, labels=kw.pop("labels", None), synthetic=False,
                   description="test", **kw)


def test_network_refusals():
    lay = LSTMLayer(**_kw())
    last = LSTMLayer(**_kw(W_x=np.ones((8, 4)), return_sequences=False))
    raises(r"n: x has 0 time steps \(T must be >= 1\)", _net, [lay], np.ones((2, 0, 3)))
    raises(r"x has shape \(2, 3\), expected \(n_samples, T, 3\) sequences", _net, [lay],
           np.ones((2, 3)))
    raises(r"x has shape \(2, 5, 4\)", _net, [lay], np.ones((2, 5, 4)))
    raises(r"x has shape \(0, 5, 3\)", _net, [lay], np.ones((0, 5, 3)))
    raises("n: x contains NaN or Inf", _net, [lay], np.full((1, 2, 3), np.nan))
    raises("must be chained", _net, [lay], np.ones((1, 2, 3)), chained=False)
    fc = Layer(name="fc1", W=np.ones((5, 3), np.float32), b=np.zeros(5, np.float32), relu=False,
               density=1.0, act_density=None)
    raises("n: layer fc1 has 3 inputs but layer L has 4 outputs", _net, [lay, fc],
           np.ones((1, 2, 3)))
    first = LSTMLayer(**_kw(name="A", return_sequences=False))
    raises("LSTM layer L needs a sequence, but an earlier LSTM layer outputs only its last frame",
           _net, [first, LSTMLayer(**_kw(W_x=np.ones((8, 4))))], np.ones((1, 2, 3)))
    raises(r"\(3,\) labels for 1 sequences", _net, [lay], np.ones((1, 2, 3)),
           labels=np.zeros(3, np.int64))
    raises("input has 0 time steps", lstm_forward, lay, np.ones((1, 0, 3)))
    raises(r"input has shape \(1, 3\), expected \(n, T, 3\)", lstm_forward, lay, np.ones((1, 3)))
    every = LSTMLayer(**_kw(return_sequences=True))
    net = _net([every, last], np.ones((2, 5, 3)))  # a stacked LSTM is fine
    assert net.n_steps == 5 and net.has_lstm and net.x.dtype == np.float32


def mixed_network(rng, n=3, T=6):
    """FC per frame -> LSTM (every frame) -> FC per frame -> LSTM (last frame) -> FC."""
    def fc(name, out, n_in, relu):
        return Layer(name=name, W=rng.normal(0, 0.5, (out, n_in)).astype(np.float32),
                     b=rng.normal(0, 0.5, out).astype(np.float32), relu=relu, density=0.7,
                     act_density=None)

    layers = [fc("fc0", 6, 4, True), random_layer(rng, 6, 5, 3, True, name="lstm1"),
              fc("fc2", 4, 3, True), random_layer(rng, 4, 2, None, False, seq=False,
                                                  name="lstm3"),
              fc("fc4", 3, 2, False)]
    x = rng.normal(0, 1, (n, T, 4)).astype(np.float32)
    return _net(layers, x, labels=np.array([0, 1, 2][:n]))


def test_float_forward_mixed():
    rng = np.random.default_rng(7)
    net = mixed_network(rng)
    a = float_forward(net)
    assert [v.shape for v in a] == [(3, 6, 4), (3, 6, 6), (3, 6, 3), (3, 6, 4), (3, 2), (3, 3)]
    fc0 = net.layers[0]
    for t in range(6):  # an FC layer runs on every frame
        want = np.maximum(fc0.W.astype(np.float64) @ a[0][1, t] + fc0.b, 0)
        np.testing.assert_allclose(a[1][1, t], want, rtol=1e-6)
    np.testing.assert_array_equal(a[2], lstm_forward(net.layers[1], a[1]))
    np.testing.assert_array_equal(a[4], lstm_forward(net.layers[3], a[3])[:, -1])
    assert all(np.all(np.isfinite(v)) for v in a)


# ---- .npz ----

def _layer_arrays(layer):
    if isinstance(layer, LSTMLayer):
        return [layer.W_x, layer.W_r, layer.b, layer.peep, layer.W_ym]
    return [layer.W, layer.b]


def test_npz_round_trip(tmp_path):
    net = mixed_network(np.random.default_rng(3))
    back = load_npz(save_npz(net, tmp_path / "m.npz"))
    assert [type(a) for a in back.layers] == [type(a) for a in net.layers]
    assert [lay.name for lay in back.layers] == ["fc0", "lstm1", "fc2", "lstm3", "fc4"]
    for a, b in zip(net.layers, back.layers):
        assert (a.density, a.relu) == (b.density, b.relu)
        for u, v in zip(_layer_arrays(a), _layer_arrays(b)):
            assert (u is None and v is None) or (np.array_equal(u, v) and u.dtype == v.dtype)
    assert [lay.return_sequences for lay in back.layers[1::2]] == [True, False]
    assert back.layers[3].peep is None and back.layers[3].W_ym is None
    assert np.array_equal(net.x, back.x) and np.array_equal(net.labels, back.labels)
    for u, v in zip(float_forward(net), float_forward(back)):
        assert np.array_equal(u, v)
    with np.load(tmp_path / "m.npz") as z:
        assert {"lstm1_Wx", "lstm1_Wr", "lstm1_b", "lstm1_peep", "lstm1_Wym", "lstm1_seq",
                "lstm3_Wx", "lstm3_Wr", "lstm3_b", "lstm3_seq", "W0", "W2", "W4"} <= set(z.files)
        assert "lstm3_peep" not in z.files and "W1" not in z.files


def _lstm_file(path, **over):
    rng = np.random.default_rng(0)
    arrays = {"lstm0_Wx": rng.normal(size=(8, 3)), "lstm0_Wr": rng.normal(size=(8, 4)),
              "lstm0_b": np.zeros(8), "lstm0_peep": np.zeros((3, 2)),
              "lstm0_Wym": np.ones((4, 2)), "W1": np.ones((3, 4)), "b1": np.zeros(3)}
    arrays.update(over)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_lstm_defaults(tmp_path):
    net = load_model(str(_lstm_file(tmp_path / "l.npz")))
    assert [type(lay).__name__ for lay in net.layers] == ["LSTMLayer", "Layer"]
    assert not net.layers[0].return_sequences and not net.layers[1].relu
    assert net.x.shape == (1, 8, 3) and net.n_steps == 8  # generated: one sequence of 8 frames
    assert float_forward(net)[-1].shape == (1, 3)
    one = load_model(str(_lstm_file(tmp_path / "o.npz", x=np.ones((5, 3)), y=np.array([2]))))
    assert one.x.shape == (1, 5, 3) and one.labels.tolist() == [2]
    # every frame's y_t into the FC layer: a sequence out
    seq = load_model(str(_lstm_file(tmp_path / "s.npz", lstm0_seq=np.array(True))))
    assert seq.layers[0].return_sequences and float_forward(seq)[-1].shape == (1, 8, 3)


@pytest.mark.parametrize("over, message", [
    ({"lstm0_foo": np.ones(3)}, r"lstm0_foo is not an LSTM array \(lstm0_ takes Wx, Wr, b, "),
    ({"lstm1_Wr": np.ones(3)}, "lstm1_Wr has no matching lstm1_Wx"),
    ({"lstm0_Wr": None}, "lstm0_Wx has no lstm0_Wr"),
    ({"lstm0_b": None}, "lstm0_Wx has no lstm0_b"),
    ({"W0": np.ones((8, 3)), "b0": np.ones(8)}, "layer 0 has both W0 and lstm0_Wx"),
    ({"lstm0_Wr": np.ones((8, 3))}, r"LSTM layer lstm0: W_r has shape \(8, 3\), expected"),
    ({"lstm0_peep": np.full((3, 2), np.nan)}, "LSTM layer lstm0: peep contains NaN or Inf"),
    ({"lstm0_seq": np.array([1, 0])}, r"lstm0_seq must be one flag \(0 or 1\)"),
    ({"relu": np.array([True, False])}, r"relu\[0\] is set, but layer 0 is an LSTM"),
    ({"W1": np.ones((3, 5))}, "layer 1: W1 has 5 inputs but layer 0 has 4 outputs"),
    ({"x": np.ones((2, 0, 3))}, r"x has 0 time steps \(T must be >= 1\)"),
    ({"x": np.ones((2, 4, 5))}, r"x has shape \(2, 4, 5\), expected \(n, T, 3\)"),
    ({"x": np.full((2, 4, 3), np.inf)}, "x contains NaN or Inf"),
])
def test_npz_lstm_errors(tmp_path, over, message):
    p = _lstm_file(tmp_path / "bad.npz", **over)
    msg = raises(message, load_model, str(p))
    assert str(p) in msg


# ---- ese_lstm ----

@pytest.fixture(scope="module")
def ese():
    return load_model("ese_lstm")


def test_ese_lstm_shape(ese):
    (layer,) = ese.layers
    assert isinstance(layer, LSTMLayer)
    assert layer.n_params == N_PARAMS == 3_255_296
    assert layer.W_x.shape == (4096, 153) and layer.W_r.shape == (4096, 512)
    assert layer.W_ym.shape == (512, 1024) and layer.peep.shape == (3, 1024)
    assert layer.b.shape == (4096,) and layer.return_sequences
    assert layer.density == pytest.approx(282 / 2520, abs=1e-3)
    assert ese.synthetic and "SYNTHETIC" in ese.description and "\n" not in ese.description
    assert ese.x.shape == (4, 16, 153) and ese.x.dtype == np.float32 and ese.labels is None


def test_ese_lstm_seeded_and_fast(ese):
    t0 = time.perf_counter()
    again = load_model("ese_lstm", seed=0)
    assert time.perf_counter() - t0 < 3
    for a, b in zip(_layer_arrays(ese.layers[0]) + [ese.x],
                    _layer_arrays(again.layers[0]) + [again.x]):
        assert np.array_equal(a, b)
    other = load_model("ese_lstm", seed=1)
    for a, b in zip(_layer_arrays(ese.layers[0]) + [ese.x],
                    _layer_arrays(other.layers[0]) + [other.x]):
        assert a.shape == b.shape and not np.array_equal(a, b)


def test_ese_lstm_activations_in_range(ese):
    """Pruned to its density, the layer's gates are O(1) and its states fit 16-bit fixed
    point (+-128) by a wide margin."""
    layer = ese.layers[0]
    masks = {}
    for k, W in layer.matrices().items():
        a = np.abs(W).ravel()
        n = int(round(layer.density * a.size))
        masks[k] = np.abs(W) >= np.partition(a, a.size - n)[a.size - n]
        assert abs(masks[k].mean() - layer.density) < 1e-4
    y, c = lstm_forward(layer, ese.x, masks, return_cells=True)
    assert 0.2 < y.std() < 2 and np.abs(y).max() < 16 and np.abs(c).max() < 32


# ---- lstm_digits ----

@pytest.fixture(scope="module")
def digits():
    return load_model("lstm_digits")


def test_lstm_digits_accuracy(digits):
    assert LSTM_DIGITS_NPZ.stat().st_size < 1 << 20
    with np.load(LSTM_DIGITS_NPZ) as z:
        meta = json.loads(str(z["meta"]))
    lstm, fc = digits.layers
    assert (lstm.n_in, lstm.n_cells, lstm.n_out) == (8, 48, 24) and lstm.has_peepholes
    assert not lstm.return_sequences and fc.W.shape == (10, 24) and not digits.synthetic
    assert digits.x.shape == (359, 8, 8) and meta["test_size"] == 359
    assert meta["train_size"] + meta["test_size"] == 1797
    assert tuple(meta["densities"]) == (lstm.density, fc.density) == lstm_train.DENSITIES
    acc = float(np.mean(np.argmax(float_forward(digits)[-1], axis=1) == digits.labels))
    assert round(acc, 4) == round(meta["accuracy_dense"], 4) == 0.9777
    assert "97.77 %" in digits.description
    assert round(lstm_train.pruned_accuracy(digits, lstm_train.DENSITIES), 4) == \
        round(meta["accuracy_pruned"], 4) == 0.9666


def test_lstm_digits_same_images_as_mlp_digits(digits):
    mlp = load_model("mlp_digits")
    assert np.array_equal(digits.x.reshape(-1, 64), mlp.x)
    assert np.array_equal(digits.labels, mlp.labels)


def test_training_forward_is_the_float_reference(digits):
    """The trainer's forward pass (compiler.train_lstm) computes what the models' float
    reference does; its gradients are checked in tests/compiler/test_train_lstm.py."""
    params, specs = train_lstm.params_of(digits), train_lstm.specs_of(digits)
    assert specs == lstm_train.SPECS
    logits, _ = train_lstm.forward(params, specs, digits.x[:20])
    np.testing.assert_allclose(logits, float_forward(digits)[-1][:20], rtol=1e-6, atol=1e-6)


# ---- the commands that need the RTL refuse LSTM layers (ESE part 2) ----

def test_refuse_lstm_rtl_names_the_layer_and_what_runs(ese, digits):
    for net in (ese, digits):
        msg = raises("is an LSTM", refuse_lstm_rtl, net, "make report")
        assert msg == (f"{net.name}: layer lstm0 is an LSTM, and make report does not take "
                       f"LSTMs yet (ESE part 2, issue 13); make compile, make compress, make "
                       f"cycles MODEL={net.name} (the cycle model of the ESE schedule) and, for "
                       f"a network of one LSTM layer, make sim can")
    check_options(Options(), load_config("eie64"), digits)  # the compiler takes them
