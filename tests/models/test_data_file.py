"""models.data_file: the user's inputs and labels (``--data``), every bad file one line."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hw.arch.errors import EIEError
from models.data_file import Widths, load_data, read_arrays, with_data
from models.lstm import LSTMLayer
from models.network import Layer, Network

N_IN, N_OUT = 6, 4


def _fc_net() -> Network:
    rng = np.random.default_rng(0)
    layers = [Layer(name="fc0", W=rng.normal(size=(5, N_IN)).astype(np.float32),
                    b=np.zeros(5, np.float32), relu=True, density=1.0, act_density=None),
              Layer(name="fc1", W=rng.normal(size=(N_OUT, 5)).astype(np.float32),
                    b=np.zeros(N_OUT, np.float32), relu=False, density=1.0, act_density=None)]
    return Network(name="net", layers=layers, x=np.ones((1, N_IN), np.float32), labels=None,
                   synthetic=False, description="test")


def _lstm_net(seq: bool = False) -> Network:
    rng = np.random.default_rng(1)
    lstm = LSTMLayer(name="lstm0", W_x=rng.normal(size=(8, 3)), W_r=rng.normal(size=(8, 2)),
                     b=np.zeros(8), density=1.0, return_sequences=seq)
    fc = Layer(name="fc1", W=rng.normal(size=(3, 2)).astype(np.float32),
               b=np.zeros(3, np.float32), relu=False, density=1.0, act_density=None)
    return Network(name="seq", layers=[lstm, fc], x=np.ones((1, 4, 3), np.float32),
                   labels=None, synthetic=False, description="test")


def _save(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return p


def _x(n=5):
    return np.abs(np.random.default_rng(2).normal(size=(n, N_IN)))


def test_inputs_and_labels_are_read_and_replace_the_models_own(tmp_path):
    x, y = _x(), np.array([0, 1, 2, 3, 0])
    p = _save(tmp_path, x=x, y=y, x_train=np.zeros((2, 2)))  # other arrays are not read
    d = load_data(p, _fc_net())
    assert d.x.dtype == np.float32 and d.x.shape == (5, N_IN) and d.y.dtype == np.int64
    np.testing.assert_array_equal(d.y, y)
    assert d.digest == hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    assert d.describe() == {"path": str(p), "sha256": d.digest, "samples": 5, "labels": True}
    net = with_data(_fc_net(), d)
    assert net.n_samples == 5 and net.labels is d.y and net.layers[0].name == "fc0"
    assert with_data(net, None) is net


def test_one_sample_a_label_column_and_bool_labels(tmp_path):
    d = load_data(_save(tmp_path, x=_x()[0]), _fc_net())
    assert d.x.shape == (1, N_IN) and d.y is None
    d = load_data(_save(tmp_path, x=_x(3), y=np.array([[1], [0], [3]])), _fc_net())
    np.testing.assert_array_equal(d.y, [1, 0, 3])
    d = load_data(_save(tmp_path, x=_x(2), y=np.array([True, False])), _fc_net())
    np.testing.assert_array_equal(d.y, [1, 0])
    d = load_data(_save(tmp_path, x=_x(2), y=np.array([2.0, 3.0])), _fc_net())
    np.testing.assert_array_equal(d.y, [2, 3])


def test_sequences_n_t_in_and_t_n_in(tmp_path):
    net = _lstm_net()
    x = np.random.default_rng(3).normal(size=(5, 7, 3))  # 5 sequences of 7 frames
    d = load_data(_save(tmp_path, x=x), net)
    assert d.x.shape == (5, 7, 3) and d.note is None
    # (T, n, in) as PyTorch and ONNX keep it: y's 5 labels say which axis is n
    d = load_data(_save(tmp_path, x=x.transpose(1, 0, 2), y=np.arange(5) % 3), net)
    assert d.x.shape == (5, 7, 3) and "(T, n, in)" in d.note
    np.testing.assert_array_equal(d.x, x.astype(np.float32))
    assert with_data(net, d).n_steps == 7
    assert load_data(_save(tmp_path, x=x[0]), net).x.shape == (1, 7, 3)  # one sequence
    with pytest.raises(EIEError, match=r"expected \(n, T, 3\) or \(T, n, 3\): the model's "
                                       r"input width is 3"):
        load_data(_save(tmp_path, x=np.zeros((5, 3))[None, :, :2]), net)


def test_per_frame_labels_for_a_sequence_output(tmp_path):
    net = _lstm_net(seq=True)
    assert Widths.of(net) == Widths(3, 3, True, True)
    x = np.zeros((4, 6, 3))
    d = load_data(_save(tmp_path, x=x, y=np.zeros((4, 6), int)), net)
    assert d.y.shape == (4, 6)
    with pytest.raises(EIEError, match=r"y has shape \(4,\), expected \(4, 6\): the model "
                                       r"outputs every frame"):
        load_data(_save(tmp_path, x=x, y=np.zeros(4, int)), net)


def _text(tmp_path):
    p = tmp_path / "d.npz"
    p.write_text("x,y\n1,2\n")
    return p


def _npy(tmp_path):
    p = tmp_path / "d.npz"
    with open(p, "wb") as f:
        np.save(f, _x())
    return p


def _truncated(tmp_path):
    p = _save(tmp_path, x=_x(50), y=np.zeros(50, int))
    p.write_bytes(p.read_bytes()[:300])
    return p


def _corrupt(tmp_path):
    p = tmp_path / "d.npz"
    np.savez_compressed(p, x=_x(200))
    raw = bytearray(p.read_bytes())
    raw[200:260] = bytes(60)  # inside x's deflated bytes: zlib or CRC error on reading
    p.write_bytes(bytes(raw))
    return p


BAD = [
    ("missing", lambda t: t / "nope.npz", "data file not found: "),
    ("text file", _text, "is not a NumPy .npz archive (it does not start like a zip file)"),
    ("single .npy", _npy, "is a single .npy array, not a NumPy .npz archive"),
    ("truncated", _truncated, "the .npz archive is truncated or corrupt"),
    ("corrupt", _corrupt, "the .npz archive is truncated or corrupt"),
    ("no x", lambda t: _save(t, y=np.zeros(3), w=np.zeros(2)),
     r"no array x (the inputs, shape (n, 6)); the file has y, w"),
    ("width", lambda t: _save(t, x=np.zeros((3, 5))),
     "x has shape (3, 5), expected (n, 6): the model's input width is 6"),
    ("3-D", lambda t: _save(t, x=np.zeros((3, 2, 6))), "x has shape (3, 2, 6), expected (n, 6)"),
    ("no samples", lambda t: _save(t, x=np.zeros((0, 6))), "no samples"),
    ("NaN", lambda t: _save(t, x=np.where(np.eye(3, 6) > 0, np.nan, 1.0)),
     "x contains NaN or Inf (first in sample 0)"),
    ("Inf", lambda t: _save(t, x=np.r_[np.ones((2, 6)), np.full((1, 6), np.inf)]),
     "x contains NaN or Inf (first in sample 2)"),
    ("float32 overflow", lambda t: _save(t, x=np.full((2, 6), 1e39)),
     "x holds values beyond float32's range"),
    ("complex", lambda t: _save(t, x=np.ones((2, 6)) * 1j), "x is complex (dtype complex128)"),
    ("strings", lambda t: _save(t, x=np.array([["a"] * 6])), "x must be numeric, got dtype <U1"),
    ("object", lambda t: _save(t, x=np.array([np.zeros(6), np.zeros(3)], dtype=object)),
     "x is an object array (dtype object"),
    ("fractional label", lambda t: _save(t, x=_x(3), y=np.array([0, 1.5, 2])),
     "y must hold integer class labels, got 1.5 at position 1"),
    ("NaN label", lambda t: _save(t, x=_x(2), y=np.array([0, np.nan])),
     "y must hold integer class labels, got nan at position 1"),
    ("string label", lambda t: _save(t, x=_x(2), y=np.array(["a", "b"])),
     "y must hold integer class labels, got dtype <U1"),
    ("complex label", lambda t: _save(t, x=_x(2), y=np.array([1j, 0])), "y is complex"),
    ("negative label", lambda t: _save(t, x=_x(3), y=np.array([0, -1, 2])),
     "y holds the negative label -1 (position 1); labels are class indices 0..3"),
    ("label too big", lambda t: _save(t, x=_x(3), y=np.array([0, 4, 2])),
     "y holds label 4 (position 1), but the model has 4 outputs (labels 0..3)"),
    ("label count", lambda t: _save(t, x=_x(5), y=np.array([0, 1, 2])),
     "y has 3 labels for 5 samples of x"),
    ("label shape", lambda t: _save(t, x=_x(2), y=np.zeros((2, 3), int)),
     "y has shape (2, 3), expected (2,): one label per sample"),
]


@pytest.mark.parametrize("make,msg", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_every_bad_file_is_one_line(tmp_path, make, msg):
    p = make(tmp_path)
    with pytest.raises(EIEError) as e:
        load_data(p, _fc_net())
    text = str(e.value)
    assert msg in text and "\n" not in text
    assert "pickle" not in text  # a text file is no pickle: no advice to allow one


def test_a_network_whose_layers_take_their_own_inputs_is_refused(tmp_path):
    net = _fc_net()
    for layer in net.layers:
        layer.x = np.ones((1, layer.W.shape[1]), np.float32)
    net.chained = False
    with pytest.raises(EIEError, match="--data needs a chained network"):
        load_data(_save(tmp_path, x=_x()), net)


def test_read_arrays_reads_only_what_is_asked(tmp_path):
    # an object array the caller does not ask for is never unpickled, so never refused
    p = _save(tmp_path, x=_x(2), meta=np.array([{"a": 1}], dtype=object))
    arrays, digest, names = read_arrays(p, ("x", "y"))
    assert set(arrays) == {"x"} and names == ["x", "meta"] and len(digest) == 16


def test_the_models_input_normalization_applies_to_the_users_raw_inputs(tmp_path):
    """A model imported with its input Scaler (Network.input_affine): the data's raw inputs
    become what layer 0 takes, x * scale + shift, as the producer computes them."""
    layer = Layer(name="fc0", W=np.eye(2, dtype=np.float32), b=np.zeros(2, np.float32),
                  relu=False, density=1.0, act_density=None)
    scale, shift = np.array([2.0, 0.5]), np.array([-1.0, 3.0])
    net = Network(name="n", layers=[layer], x=np.zeros((1, 2), np.float32), labels=None,
                  synthetic=False, description="t", input_affine=(scale, shift))
    raw = np.array([[1.0, 2.0], [3.0, -4.0]])
    np.savez(tmp_path / "d.npz", x=raw, y=np.array([0, 1]))
    got = with_data(net, load_data(tmp_path / "d.npz", net))
    np.testing.assert_allclose(got.x, raw * scale + shift)
    assert got.input_affine is net.input_affine
    plain = Network(name="p", layers=[layer], x=np.zeros((1, 2), np.float32), labels=None,
                    synthetic=False, description="t")
    np.testing.assert_array_equal(with_data(plain, load_data(tmp_path / "d.npz", plain)).x, raw)
