"""PyTorch import (models.torch_import): state dicts and torch.export programs.

The chaining, the activations statement, BatchNorm folding and the ``.pt2`` reader run on NumPy
dicts and hand-written archives without PyTorch; the tests against real PyTorch files skip when
the torch extra is missing.
"""

from __future__ import annotations

import json
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hw.arch.errors import EIEError
from models import float_forward, load_model
from models.lstm import LSTMLayer
from models.npz import imported_network
from models.torch_import import (first_sentence, load_torch, parse_activations,
                                 state_dict_specs)
from tests.models.test_lstm import naive_lstm


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def specs_of(sd, activations=None):
    return state_dict_specs(sd, activations, "sd")


def forward(specs, x):
    """The chain of ``(W, b, relu)`` specs on ``x`` (float64, by hand)."""
    for W, b, relu in specs:
        x = x @ W.T + b
        x = np.maximum(x, 0) if relu else x
    return x


def linear(rng, n_in, n_out):
    return rng.normal(0, 0.5, (n_out, n_in)), rng.normal(0, 0.5, n_out)


def batchnorm(rng, k):
    return {"weight": rng.normal(1, 0.3, k), "bias": rng.normal(0, 0.3, k),
            "running_mean": rng.normal(0, 1, k), "running_var": rng.uniform(0.5, 2, k),
            "num_batches_tracked": np.array(7)}


def state_dict(**modules):
    """``{"name.leaf": array}`` from ``name=(W, b)`` or ``name={leaf: array}`` in order."""
    sd = {}
    for name, m in modules.items():
        name = name.lstrip("_")  # _0, _1: nn.Sequential children
        leaves = m if isinstance(m, dict) else {"weight": m[0], "bias": m[1]}
        sd.update({f"{name}.{leaf}": a for leaf, a in leaves.items()})
    return sd


def bn_apply(x, p, eps=1e-5):
    return (x - p["running_mean"]) / np.sqrt(p["running_var"] + eps) * p["weight"] + p["bias"]


# ---- messages and the activations statement (no PyTorch) ---------------------------------------

def test_missing_file_is_named_before_torch_is_needed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    for name in ("gone.pth", "gone.pt", "gone.pt2"):
        with pytest.raises(EIEError, match=f"model file not found: .*{name}"):
            load_model(str(tmp_path / name))


def test_without_torch_a_pt_model_is_one_error(tmp_path, monkeypatch):
    p = tmp_path / "m.pt"
    p.write_bytes(b"whatever")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(EIEError, match=r"needs PyTorch: pip install -e '.\[torch\]'"):
        load_model(str(p))


def test_first_sentence_strips_colour_codes_and_ends_at_a_sentence():
    # the start of what torch.load(weights_only=True) says about a pickled module
    msg = ("Weights only load failed. This file can still be loaded, to do so you have two "
           "options, \x1b[1mdo those steps only if you trust the source\x1b[0m. \n\t(1) In "
           "PyTorch 2.6 ...")
    assert first_sentence(msg) == "Weights only load failed"
    assert first_sentence("a \x1b[1mbold\x1b[0m\n\tclaim") == "a bold claim"
    long = first_sentence("word " * 100, limit=30)
    assert long.endswith(" ...") and len(long) <= 34 and "\x1b" not in long


def test_parse_activations():
    assert parse_activations(None) is None
    assert parse_activations("ReLU").every == "relu"
    assert parse_activations(" none ").every == "none"
    s = parse_activations("relu, none,relu")
    assert (s.every, s.acts, s.names) == (None, ("relu", "none", "relu"), None)
    s = parse_activations(["body=none", "bn=relu", "head=none"])
    assert s.names == ("body", "bn", "head") and s.acts == ("none", "relu", "none")
    assert str(s) == "body=none,bn=relu,head=none"
    with pytest.raises(EIEError, match=r"'tanh' is not an activation eiegen runs: its layers "
                                       r"apply ReLU or nothing"):
        parse_activations("relu,tanh")
    with pytest.raises(EIEError, match="'gelu' is not an activation"):
        parse_activations("fc=gelu")
    with pytest.raises(EIEError, match="mixes name=act and positional"):
        parse_activations("a=relu,none")
    with pytest.raises(EIEError, match="names 'a' twice"):
        parse_activations("a=relu,a=none")
    with pytest.raises(EIEError, match="has an empty entry"):
        parse_activations("relu,,none")
    with pytest.raises(EIEError, match="must be a string"):
        parse_activations(3)


def test_activations_only_for_state_dicts(tmp_path):
    with pytest.raises(EIEError, match=r"applies to PyTorch state_dict models \(.pt, .pth\) "
                                       r"only"):
        load_model("mlp_digits", activations="relu")
    with pytest.raises(EIEError, match="applies to PyTorch"):
        load_model(str(tmp_path / "m.onnx"), activations="none")


# ---- the order of a state dict's layers (NumPy dicts) -------------------------------------------

def test_head_registered_before_body_is_chained_by_shapes():
    rng = np.random.default_rng(0)
    head, body = linear(rng, 20, 4), linear(rng, 12, 20)
    specs, summary, note = specs_of(state_dict(head=head, body=body))
    assert summary == "body -> relu -> head"
    assert [s[0].shape for s in specs] == [(20, 12), (4, 20)]
    assert [s[2] for s in specs] == [True, False]
    assert "ReLU assumed after 'body', none after" in note and "activations='relu,none'" in note


def test_square_named_layers_are_refused_unless_named_in_order():
    rng = np.random.default_rng(1)
    a, b, c = linear(rng, 8, 8), linear(rng, 8, 8), linear(rng, 8, 3)
    sd = state_dict(a=a, b=b, c=c)
    with pytest.raises(EIEError, match=r"the order of the layers cannot be told from their "
                                       r"shapes \('a' and 'b' could both come first\).*"
                                       r"torch.export \(.pt2\) or torch.onnx.*"
                                       r"activations='a=...,b=...,c=...'"):
        specs_of(sd)
    specs, summary, note = specs_of(sd, "b=relu,a=none,c=none")  # forward() runs b, then a
    assert summary == "b -> relu -> a -> c" and note is None
    x = rng.normal(0, 1, (5, 8))
    want = (np.maximum(x @ b[0].T + b[1], 0) @ a[0].T + a[1]) @ c[0].T + c[1]
    np.testing.assert_allclose(forward(specs, x), want, rtol=1e-12)
    with pytest.raises(EIEError, match="in the order activations names them, layer 'a' takes 8 "
                                       "inputs but 'c' has 3 outputs"):
        specs_of(sd, "b=relu,c=none,a=none")
    with pytest.raises(EIEError, match="does not name 'c'"):
        specs_of(sd, "b=relu,a=none")
    with pytest.raises(EIEError, match="names 'z' which the state dict does not hold"):
        specs_of(sd, "b=relu,a=none,c=none,z=none")


def test_numbered_children_run_in_index_order():
    rng = np.random.default_rng(2)
    # square layers, registered out of index order, and index 10 after 2 (not as strings)
    l2, l10, l0 = linear(rng, 6, 6), linear(rng, 6, 2), linear(rng, 6, 6)
    sd = {"net.2.weight": l2[0], "net.2.bias": l2[1], "net.10.weight": l10[0],
          "net.10.bias": l10[1], "net.0.weight": l0[0], "net.0.bias": l0[1]}
    specs, summary, _ = specs_of(sd)
    assert summary == "net.0 -> relu -> net.2 -> relu -> net.10"
    bad = {"0.weight": l10[0], "0.bias": l10[1], "1.weight": l0[0], "1.bias": l0[1]}
    with pytest.raises(EIEError, match="the numbered modules run in index order, but layer '1' "
                                       "takes 6 inputs but '0' has 2 outputs"):
        specs_of(bad)


def test_layers_that_do_not_chain_in_any_order():
    sd = state_dict(a=(np.zeros((4, 3)), np.zeros(4)), b=(np.zeros((2, 5)), np.zeros(2)))
    with pytest.raises(EIEError, match="layer 'b' takes 5 inputs but 'a' has 4 outputs, and no "
                                       "other order of them chains either"):
        specs_of(sd)


def test_unique_chain_through_a_cycle_of_widths():
    # widths 3 -> 4 -> 3 -> 4 -> 2: the shapes allow one order only, though width 3 repeats
    rng = np.random.default_rng(3)
    mods = {"d": linear(rng, 4, 2), "b": linear(rng, 4, 3), "a": linear(rng, 3, 4),
            "c": linear(rng, 3, 4)}
    with pytest.raises(EIEError, match="'a' and 'c' could both come first"):
        specs_of(state_dict(**mods))
    mods["a"] = linear(rng, 5, 4)  # 5 -> 4 -> 3 -> 4 -> 2 now has one start
    _, summary, _ = specs_of(state_dict(**mods))
    assert summary == "a -> relu -> b -> relu -> c -> relu -> d"


# ---- activations of a state dict (NumPy dicts) ---------------------------------------------------

def test_statements_and_the_default_note():
    rng = np.random.default_rng(4)
    sd = state_dict(_0=linear(rng, 5, 6), _2=linear(rng, 6, 4), _4=linear(rng, 4, 2))
    specs, _, note = specs_of(sd)
    assert [s[2] for s in specs] == [True, True, False]
    assert note.startswith("a state_dict records no activations: ReLU assumed after '0', '2', "
                           "none after the last layer")
    assert "torch.export (.pt2) or torch.onnx" in note and "activations='relu,relu,none'" in note
    for stmt, want in (("none", [False] * 3), ("relu", [True, True, False]),
                       ("none,relu,relu", [False, True, True]), (["relu"] * 3, [True] * 3)):
        specs, _, note = specs_of(sd, stmt)
        assert [s[2] for s in specs] == want and note is None
    with pytest.raises(EIEError, match=r"activations has 2 entries for 3 modules \(0, 2, 4\)"):
        specs_of(sd, "relu,none")


def test_adjacent_sequential_children_have_nothing_between():
    rng = np.random.default_rng(5)
    sd = state_dict(_0=linear(rng, 5, 6), _1=linear(rng, 6, 4), _3=linear(rng, 4, 2))
    specs, _, note = specs_of(sd)  # nn.Sequential(Linear, Linear, ReLU?, Linear)
    assert [s[2] for s in specs] == [False, True, False]
    assert "ReLU assumed after '1', none after" in note
    with pytest.raises(EIEError, match="ReLU after '0', but '1' is the next module of the "
                                       "nn.Sequential: nothing runs between them"):
        specs_of(sd, "relu,relu,none")
    named = state_dict(a=linear(rng, 5, 6), b=linear(rng, 6, 4))  # no such fact for names
    assert [s[2] for s in specs_of(named)[0]] == [True, False]


def test_lstm_activations():
    rng = np.random.default_rng(6)
    sd = lstm_state_dict(rng, layers=1)
    specs, _, _ = specs_of(sd)
    assert isinstance(specs[0], LSTMLayer) and specs[1][2] is False
    with pytest.raises(EIEError, match="ReLU after LSTM 'lstm': eiegen applies no activation "
                                       "after an LSTM layer"):
        specs_of(sd, "relu,none")


def test_complex_and_integer_parameters_are_refused():
    W = np.ones((2, 3))
    with pytest.raises(EIEError, match="'fc.weight' is a complex tensor: .*dropping the "
                                       "imaginary part"):
        specs_of({"fc.weight": W.astype(np.complex128), "fc.bias": np.zeros(2)})
    with pytest.raises(EIEError, match="'fc.bias' is a int64 tensor, not floating point"):
        specs_of({"fc.weight": W, "fc.bias": np.zeros(2, np.int64)})


# ---- BatchNorm in a state dict (NumPy dicts) -------------------------------------------------

def test_batchnorm_of_a_sequential_is_folded():
    # nn.Sequential(Linear(12, 48), BatchNorm1d(48), ReLU(), Linear(48, 3)): the user's model
    rng = np.random.default_rng(7)
    fc0, bn, fc3 = linear(rng, 12, 48), batchnorm(rng, 48), linear(rng, 48, 3)
    sd = state_dict(_0=fc0, _1=bn, _3=fc3)
    specs, summary, note = specs_of(sd)
    assert summary == "0 -> 1 -> relu -> 3" and len(specs) == 2
    assert "BatchNorm '1' folded with PyTorch's default eps = 1e-05" in note
    x = rng.normal(0, 1, (9, 12))
    want = np.maximum(bn_apply(x @ fc0[0].T + fc0[1], bn), 0) @ fc3[0].T + fc3[1]
    np.testing.assert_allclose(forward(specs, x), want, rtol=1e-10, atol=1e-12)
    # Linear, ReLU, BatchNorm, Linear: folded forward into the Linear after it
    sd = state_dict(_0=fc0, _2=bn, _3=fc3)
    specs, summary, _ = specs_of(sd)
    assert summary == "0 -> relu -> 2 -> 3"
    want = bn_apply(np.maximum(x @ fc0[0].T + fc0[1], 0), bn) @ fc3[0].T + fc3[1]
    np.testing.assert_allclose(forward(specs, x), want, rtol=1e-10, atol=1e-12)


def test_batchnorm_between_named_layers_needs_a_statement():
    rng = np.random.default_rng(8)
    fc1, bn, fc2 = linear(rng, 12, 16), batchnorm(rng, 16), linear(rng, 16, 3)
    sd = state_dict(fc1=fc1, bn=bn, fc2=fc2)
    for stmt in (None, "relu"):
        with pytest.raises(EIEError, match=r"BatchNorm 'bn' sits between two layers, and a state "
                                           r"dict does not record whether the activation runs "
                                           r"before or after it.*torch.export.*"
                                           r"activations='fc1=none,bn=relu,fc2=none'"):
            specs_of(sd, stmt)
    x = rng.normal(0, 1, (4, 12))
    specs, _, note = specs_of(sd, "fc1=none,bn=relu,fc2=none")
    assert note.startswith("BatchNorm 'bn' folded with PyTorch's default eps")
    want = np.maximum(bn_apply(x @ fc1[0].T + fc1[1], bn), 0) @ fc2[0].T + fc2[1]
    np.testing.assert_allclose(forward(specs, x), want, rtol=1e-10, atol=1e-12)
    specs, _, _ = specs_of(sd, "relu,none,none")  # ReLU before the BatchNorm
    want = bn_apply(np.maximum(x @ fc1[0].T + fc1[1], 0), bn) @ fc2[0].T + fc2[1]
    np.testing.assert_allclose(forward(specs, x), want, rtol=1e-10, atol=1e-12)
    specs, _, _ = specs_of(sd, "none")  # affine layers only
    want = bn_apply(x @ fc1[0].T + fc1[1], bn) @ fc2[0].T + fc2[1]
    np.testing.assert_allclose(forward(specs, x), want, rtol=1e-10, atol=1e-12)


def test_batchnorm_that_cannot_be_folded():
    rng = np.random.default_rng(9)
    fc, bn = linear(rng, 12, 16), batchnorm(rng, 16)
    with pytest.raises(EIEError, match="BatchNorm 'bn' ends the model after a ReLU: eiegen "
                                       "folds a BatchNorm into a Linear beside it"):
        specs_of(state_dict(fc=fc, bn=bn), "fc=relu,bn=none")
    lone = {f"norm.{k}": v for k, v in batchnorm(rng, 4).items()}
    with pytest.raises(EIEError, match="folds a BatchNorm into a Linear beside it"):
        specs_of(lone)


def test_batchnorm_and_norm_parameters_are_named():
    rng = np.random.default_rng(10)
    bn = batchnorm(rng, 48)
    del bn["running_var"]
    with pytest.raises(EIEError, match="BatchNorm '1': '1.running_var' is missing"):
        specs_of(state_dict(_0=linear(rng, 12, 48), _1=bn))
    ln = {"weight": np.ones(48), "bias": np.zeros(48)}  # a LayerNorm's parameters
    with pytest.raises(EIEError, match=r"'1.weight' of shape \(48,\) is a 1-D weight without "
                                       r"running_mean/running_var: a norm eiegen cannot fold"):
        specs_of(state_dict(_0=linear(rng, 12, 48), _1=ln))
    with pytest.raises(EIEError, match=r"unsupported parameter '0.weight' of shape "
                                       r"\(2, 1, 3, 3\); only nn.Linear"):
        specs_of({"0.weight": np.ones((2, 1, 3, 3)), "0.bias": np.ones(2)})


# ---- nn.LSTM state dicts (NumPy; against torch below) --------------------------------------------

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
    specs, summary, _ = specs_of(sd)
    assert summary == "lstm -> fc"
    assert [type(lay).__name__ for lay in specs] == ["LSTMLayer", "LSTMLayer", "tuple"]
    l0, l1 = specs[:2]
    assert (l0.name, l1.name) == ("lstm.l0", "lstm.l1")
    assert l0.return_sequences and not l1.return_sequences and l0.peep is None
    assert l0.has_projection is bool(proj)
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
    with pytest.raises(EIEError, match="bidirectional LSTMs are not supported"):
        specs_of({**sd, "lstm.weight_ih_l0_reverse": np.ones((20, 4))})
    bad = dict(sd)
    bad["fc.weight"] = np.ones((2, 7))
    with pytest.raises(EIEError, match="layer 'fc' takes 7 inputs but 'lstm' has 3 outputs"):
        specs_of(bad)
    bad = dict(sd)
    del bad["lstm.weight_hh_l0"]
    with pytest.raises(EIEError, match="needs weight_ih_l0 and weight_hh_l0"):
        specs_of(bad)


# ---- .pt2 archives written by hand (no PyTorch) -------------------------------------------------

def T(name):
    return {"as_tensor": {"name": name}}


def aten(op, name, overload="default", **inputs):
    return {"target": f"torch.ops.aten.{op}.{overload}", "name": name, "metadata": {},
            "inputs": [{"name": k, "arg": v, "kind": 1} for k, v in inputs.items()],
            "outputs": [T(name)]}


def write_pt2(path, params, nodes, shapes, output, schema=8, pickled=(), x="x"):
    """An archive laid out as torch.export.save (torch 2.13) writes one, for a graph of
    ``nodes`` on the parameters ``params`` (fqn -> array) and one input ``x``."""
    codes = {np.dtype(np.float32): 7, np.dtype(np.float64): 8, np.dtype(np.complex64): 10}
    files, config, specs = {}, {}, []
    for i, (fqn, a) in enumerate(params.items()):
        a = np.ascontiguousarray(a)
        files[f"m/data/weights/weight_{i}"] = a.tobytes()
        config[fqn] = {"path_name": f"weight_{i}", "is_param": True, "use_pickle": fqn in pickled,
                       "tensor_meta": {"dtype": codes[a.dtype],
                                       "sizes": [{"as_int": n} for n in a.shape],
                                       "strides": [{"as_int": s // a.itemsize}
                                                   for s in a.strides],
                                       "storage_offset": {"as_int": 0}, "layout": 7,
                                       "requires_grad": True,
                                       "device": {"type": "cpu", "index": None}}}
        specs.append({"parameter": {"arg": {"name": "p_" + fqn.replace(".", "_")},
                                    "parameter_name": fqn}})
    specs.append({"user_input": {"arg": T(x)}})
    program = {"schema_version": {"major": schema, "minor": 20}, "torch_version": "2.13.0+cpu",
               "graph_module": {"graph": {"inputs": [], "outputs": [T(output)], "nodes": nodes,
                                          "tensor_values": {
                                              n: {"dtype": 7, "sizes": [{"as_int": d} for d in s]}
                                              for n, s in shapes.items()}},
                                "signature": {"input_specs": specs, "output_specs": [
                                    {"user_output": {"arg": T(output)}}]}}}
    files.update({"m/archive_format": b"pt2", "m/byteorder": b"little",
                  "m/models/model.json": json.dumps(program).encode(),
                  "m/data/weights/model_weights_config.json":
                      json.dumps({"config": config}).encode(),
                  "m/data/constants/model_constants_config.json": b'{"config": {}}'})
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def mlp_pt2(tmp_path, rng, act="relu", name="m.pt2", **kw):
    (W0, b0), (W1, b1) = linear(rng, 6, 5), linear(rng, 5, 3)
    params = {"a.weight": W0.astype(np.float32), "a.bias": b0.astype(np.float32),
              "b.weight": W1.astype(np.float32), "b.bias": b1.astype(np.float32)}
    nodes = [aten("linear", "l0", input=T("x"), weight=T("p_a_weight"), bias=T("p_a_bias")),
             aten(act, "act", self=T("l0")),
             aten("linear", "l1", input=T("act"), weight=T("p_b_weight"), bias=T("p_b_bias"))]
    shapes = {"x": (2, 6), "l0": (2, 5), "act": (2, 5), "l1": (2, 3)}
    return write_pt2(tmp_path / name, params, nodes, shapes, "l1", **kw), params


def test_pt2_read_without_torch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    rng = np.random.default_rng(11)
    path, p = mlp_pt2(tmp_path, rng)
    net = load_torch(path)
    assert [lay.relu for lay in net.layers] == [True, False]
    assert "(a -> relu -> b)" in net.description
    x = rng.normal(0, 1, (4, 6)).astype(np.float32)
    net.x = x
    want = np.maximum(x @ p["a.weight"].T + p["a.bias"], 0) @ p["b.weight"].T + p["b.bias"]
    np.testing.assert_allclose(float_forward(net)[-1], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(EIEError, match="records its activations: drop activations"):
        load_torch(path, activations="relu")


def test_pt2_refuses_other_activations_by_name(tmp_path):
    rng = np.random.default_rng(12)
    for op, name in (("tanh", "tanh"), ("sigmoid", "sigmoid"), ("gelu", "gelu"),
                     ("silu", "silu")):
        path, _ = mlp_pt2(tmp_path, rng, act=op)
        with pytest.raises(EIEError, match=rf"node 'act' \(aten.{op}.default\): {name}.* is an "
                                           r"activation eiegen does not support: its layers "
                                           r"apply ReLU or nothing"):
            load_torch(path)


def test_pt2_archive_refusals(tmp_path):
    rng = np.random.default_rng(13)
    with pytest.raises(EIEError, match=r"schema 9.20; eiegen reads schema 8.x"):
        load_torch(mlp_pt2(tmp_path, rng, name="v9.pt2", schema=9)[0])
    with pytest.raises(EIEError, match="'b.weight' is stored as a pickled object"):
        load_torch(mlp_pt2(tmp_path, rng, name="pk.pt2", pickled=("b.weight",))[0])
    W = (rng.normal(size=(3, 6)) + 1j).astype(np.complex64)
    nodes = [aten("linear", "l0", input=T("x"), weight=T("p_a_weight"))]
    path = write_pt2(tmp_path / "cx.pt2", {"a.weight": W}, nodes, {"x": (2, 6), "l0": (2, 3)},
                     "l0")
    with pytest.raises(EIEError, match="'a.weight' is a complex tensor.*imaginary part"):
        load_torch(path)
    # x -> linear, and x again into an add: a skip connection
    W = rng.normal(size=(6, 6)).astype(np.float32)
    nodes = [aten("linear", "l0", input=T("x"), weight=T("p_a_weight")),
             aten("add", "y", overload="Tensor", self=T("x"), other=T("l0"))]
    path = write_pt2(tmp_path / "res.pt2", {"a.weight": W}, nodes,
                     {"x": (2, 6), "l0": (2, 6), "y": (2, 6)}, "y")
    with pytest.raises(EIEError, match="combines two values computed from the input"):
        load_torch(path)
    nodes = [aten("linear", "l0", input=T("x"), weight=T("p_a_weight")),
             aten("dropout", "d", input=T("l0"), p={"as_float": 0.5}, train={"as_bool": True})]
    path = write_pt2(tmp_path / "tr.pt2", {"a.weight": W}, nodes,
                     {"x": (2, 6), "l0": (2, 6), "d": (2, 6)}, "d")
    with pytest.raises(EIEError, match="exported in training mode; call model.eval()"):
        load_torch(path)
    (tmp_path / "zip.pt2").write_bytes(b"not a zip")
    with pytest.raises(EIEError, match="zip.pt2 is not a torch.export archive"):
        load_torch(tmp_path / "zip.pt2")


# ---- against PyTorch -------------------------------------------------------------------------

def linear_stack(torch, seed=0, sizes=(12, 20, 9, 4)):
    torch.manual_seed(seed)
    mods = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def against_torch(torch, model, net, x, tol=1e-5):
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).double().numpy()
    net.x = x.reshape(x.shape[0], -1).astype(np.float32) if not net.has_lstm else x
    np.testing.assert_allclose(float_forward(net)[-1], ref, rtol=tol, atol=tol)


def test_state_dict_import_reproduces_torch(torch, tmp_path, capsys):
    model = linear_stack(torch)
    p = tmp_path / "mlp.pt"
    torch.save(model.state_dict(), p)
    net = load_model(str(p))
    assert [layer.W.shape for layer in net.layers] == [(20, 12), (9, 20), (4, 9)]
    assert [layer.relu for layer in net.layers] == [True, True, False]
    against_torch(torch, model, net, np.random.default_rng(0).standard_normal((16, 12))
                  .astype(np.float32))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"note: {p}: a state_dict records no activations")
    load_model(str(p), activations="relu")
    assert capsys.readouterr().err == ""


def test_checkpoint_dict_and_its_activations_entry(torch, tmp_path, capsys):
    model = linear_stack(torch, 1, (5, 3))
    p = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "activations": "none"}, p)
    net = load_model(str(p))
    np.testing.assert_allclose(net.layers[0].W, model[0].weight.detach().numpy())
    assert not net.layers[0].relu and capsys.readouterr().err == ""
    load_model(str(p), activations="none")  # the same statement twice is fine
    with pytest.raises(EIEError, match="the checkpoint's 'activations' entry says 'none', the "
                                       "argument '0=relu': give one"):
        load_model(str(p), activations="0=relu")


def test_tanh_state_dict_is_never_silent(torch, tmp_path, capsys):
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    p = tmp_path / "tanh.pt"
    torch.save(model.state_dict(), p)
    load_model(str(p))
    assert "ReLU assumed after '0'" in capsys.readouterr().err
    with pytest.raises(EIEError, match="'tanh' is not an activation eiegen runs"):
        load_model(str(p), activations="tanh,none")
    export(torch, model, np.zeros((2, 8), np.float32), tmp_path / "tanh.pt2")
    with pytest.raises(EIEError, match=r"node 'tanh' \(aten.tanh.default\): tanh is an "
                                       r"activation eiegen does not support"):
        load_model(str(tmp_path / "tanh.pt2"))


def test_non_linear_parameter_is_one_error(torch, tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(),
                                torch.nn.Linear(8, 2))
    p = tmp_path / "conv.pt"
    torch.save(model.state_dict(), p)
    with pytest.raises(EIEError, match=r"unsupported parameter '0.weight' of shape "
                                       r"\(2, 1, 3, 3\)"):
        load_model(str(p))


def test_pickled_module_is_one_plain_sentence(torch, tmp_path):
    p = tmp_path / "module.pt"
    torch.save(linear_stack(torch), p)  # the whole module: needs pickled code to load
    with pytest.raises(EIEError) as e:
        load_model(str(p))
    msg = str(e.value)
    assert msg == (f"{p} holds a pickled torch.nn.modules.container.Sequential "
                   f"(torch.save(model) saves the whole module, which eiegen does not unpickle "
                   f"as that could run code): save model.state_dict() instead, or export the "
                   f"model with torch.export.save (.pt2)")
    scripted = tmp_path / "script.pt"
    with warnings.catch_warnings():  # torch.jit is deprecated, and what users still have
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), scripted)
    with pytest.raises(EIEError, match="is a TorchScript archive"):
        load_model(str(scripted))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02 junk")
    with pytest.raises(EIEError) as e:
        load_model(str(junk))
    assert "\x1b" not in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).endswith("save one with torch.save(model.state_dict(), path)")


def test_complex_and_integer_tensors_are_refused(torch, tmp_path):
    p = tmp_path / "c.pt"
    torch.save({"fc.weight": torch.ones(2, 3, dtype=torch.complex64), "fc.bias": torch.ones(2)}, p)
    with pytest.raises(EIEError, match="'fc.weight' is a complex tensor"):
        load_model(str(p))
    torch.save({"fc.weight": torch.ones(2, 3, dtype=torch.int32)}, p)
    with pytest.raises(EIEError, match="'fc.weight' is a torch.int32 tensor, not floating"):
        load_model(str(p))


def bn_model(torch, relu_first=False):
    torch.manual_seed(3)
    bn = torch.nn.BatchNorm1d(48)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.normal_(1, 0.3)
        bn.bias.normal_(0, 0.3)
    mid = [torch.nn.ReLU(), bn] if relu_first else [bn, torch.nn.ReLU()]
    return torch.nn.Sequential(torch.nn.Linear(12, 48), *mid, torch.nn.Dropout(0.2),
                               torch.nn.Linear(48, 3)).eval()


@pytest.mark.parametrize("relu_first", [False, True])
def test_batchnorm_state_dict_reproduces_torch(torch, tmp_path, capsys, relu_first):
    model = bn_model(torch, relu_first)  # 0 Linear, 1 BN / ReLU, 2 ReLU / BN, 3 Dropout, 4
    p = tmp_path / "bn.pt"
    torch.save(model.state_dict(), p)
    if relu_first:  # the assumed ReLU in the Dropout's place, after the BatchNorm, cannot fold
        with pytest.raises(EIEError, match=r"BatchNorm '2' after '0' is followed by a ReLU.*"
                                           r"ReLU was assumed after '0', '2'.*"
                                           r"activations='relu,relu,none'"):
            load_model(str(p))
    net = load_model(str(p), activations="relu,none,none" if relu_first else None)
    assert len(net.layers) == 2
    against_torch(torch, model, net, np.random.default_rng(1).standard_normal((7, 12))
                  .astype(np.float32))
    assert "folded with PyTorch's default eps = 1e-05" in capsys.readouterr().err


def test_head_before_body_module_reproduces_torch(torch, tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(20, 4)
            self.body = torch.nn.Linear(12, 20)

        def forward(self, x):
            return self.head(torch.relu(self.body(x)))

    torch.manual_seed(4)
    model = Net()
    p = tmp_path / "hb.pt"
    torch.save(model.state_dict(), p)
    against_torch(torch, model, load_model(str(p)),
                  np.random.default_rng(2).standard_normal((5, 12)).astype(np.float32))


def export(torch, model, x, path, decompose=False):
    with warnings.catch_warnings():  # torch.export's own FutureWarning and LSTM UserWarnings
        warnings.simplefilter("ignore")
        ep = torch.export.export(model.eval(), (torch.from_numpy(x),))
        torch.export.save(ep.run_decompositions() if decompose else ep, path)
    return path


@pytest.mark.parametrize("decompose", [False, True])
@pytest.mark.parametrize("relu_first", [False, True])
def test_pt2_reproduces_torch(torch, tmp_path, capsys, decompose, relu_first):
    model = torch.nn.Sequential(torch.nn.Flatten(), *bn_model(torch, relu_first))
    x = np.random.default_rng(3).standard_normal((6, 1, 3, 4)).astype(np.float32)
    net = load_model(str(export(torch, model, x, tmp_path / "m.pt2", decompose)))
    assert [lay.relu for lay in net.layers] == [True, False]
    against_torch(torch, model, net, x)
    assert capsys.readouterr().err == ""  # the graph records everything: nothing assumed


def test_pt2_bias_free_and_functional_layers(torch, tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W = torch.nn.Parameter(torch.randn(12, 7))
            self.fc = torch.nn.Linear(7, 3, bias=False)

        def forward(self, x):
            return 1.0 - self.fc(torch.clamp_min(x @ self.W + 0.5, 0))

    torch.manual_seed(5)
    model = Net()
    x = np.random.default_rng(4).standard_normal((5, 12)).astype(np.float32)
    for decompose in (False, True):
        net = load_model(str(export(torch, model, x, tmp_path / "f.pt2", decompose)))
        against_torch(torch, model, net, x)


def test_pt2_training_mode_is_refused(torch, tmp_path):
    model = bn_model(torch).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(model, (torch.zeros(4, 12),)), tmp_path / "t.pt2")
    with pytest.raises(EIEError, match="training mode; call model.eval()"):
        load_model(str(tmp_path / "t.pt2"))


def lstm_net(torch, use_h, batch_first, proj):
    """nn.LSTM + nn.Linear on the last frame, through ``out[:, -1]`` or ``h_n[-1]``."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 5, num_layers=2, batch_first=batch_first,
                                      proj_size=proj)
            self.fc = torch.nn.Linear(proj or 5, 2)

        def forward(self, x):
            out, (h, _) = self.lstm(x)
            if use_h:
                return self.fc(h[-1])
            return self.fc(out[:, -1] if batch_first else out[-1])

    torch.manual_seed(6)
    return Net()


@pytest.mark.parametrize("use_h,batch_first,proj", [(False, True, 3), (True, True, 0),
                                                    (False, False, 0)])
def test_pt2_lstm_reproduces_torch(torch, tmp_path, use_h, batch_first, proj):
    model = lstm_net(torch, use_h, batch_first, proj)
    x = np.random.default_rng(5).standard_normal((3, 7, 4)).astype(np.float32)
    tx = x if batch_first else x.transpose(1, 0, 2).copy()
    net = load_model(str(export(torch, model, tx, tmp_path / "l.pt2")))
    assert [type(lay).__name__ for lay in net.layers] == ["LSTMLayer", "LSTMLayer", "Layer"]
    assert not net.layers[1].return_sequences
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(tx)).numpy()
    net.x = x
    np.testing.assert_allclose(float_forward(net)[-1], ref, rtol=1e-4, atol=1e-5)


def test_pt2_dynamic_batch_lstm_fc_lstm(torch, tmp_path):
    class Net(torch.nn.Module):  # the FC runs on every frame between two LSTMs
        def __init__(self):
            super().__init__()
            self.a = torch.nn.LSTM(4, 5, batch_first=True)
            self.fc = torch.nn.Linear(5, 2)
            self.b = torch.nn.LSTM(2, 3, batch_first=True)

        def forward(self, x):
            return self.b(self.fc(self.a(x)[0]))[0][:, -1]

    torch.manual_seed(7)
    model = Net().eval()
    x = np.random.default_rng(6).standard_normal((3, 7, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(model, (torch.from_numpy(x),),
                                 dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(ep, tmp_path / "d.pt2")  # x[:, -1] is a slice, then a select
    net = load_model(str(tmp_path / "d.pt2"))
    assert [lay.return_sequences for lay in (net.layers[0], net.layers[2])] == [True, False]
    against_torch(torch, model, net, x)


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


@pytest.mark.parametrize("form", ["state_dict", "pt2"])
def test_a_batchnorm_on_the_input_normalizes_the_inputs_not_the_weights(torch, tmp_path,
                                                                        form, capsys):
    """BatchNorm1d first: applied to the raw inputs on the host (Network.input_affine), the
    first Linear's weights unchanged (folded, they would span the features' scales)."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 3))
    with torch.no_grad():
        m[0].running_mean.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
        m[0].running_var.copy_(torch.tensor([0.01, 4.0, 1.0, 100.0]))
    m.eval()
    x = torch.randn(5, 4)
    path = tmp_path / ("m.pth" if form == "state_dict" else "m.pt2")
    if form == "state_dict":
        torch.save({"state_dict": m.state_dict(), "activations": "none,none"}, path)
    else:
        torch.export.save(torch.export.export(m, (x,)), str(path))
    net = load_torch(path)
    np.testing.assert_allclose(net.layers[0].W, m[1].weight.detach().numpy(), rtol=1e-6)
    scale = 1 / np.sqrt(np.array([0.01, 4.0, 1.0, 100.0]) + 1e-5)
    np.testing.assert_allclose(net.input_affine[0], scale, rtol=1e-5)
    net.x = net.prepare_inputs(x.numpy())
    np.testing.assert_allclose(float_forward(net)[-1], m(x).detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    assert "BatchNorm on the model's input is applied to the inputs on the host" in \
        capsys.readouterr().err
