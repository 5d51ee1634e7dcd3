"""The user's own sparsity (issue 15): an already-pruned model keeps its mask, exact zeros are
never stored, one density per layer, and a network too big for a configuration by its shapes
alone is refused before it is pruned."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import compiler.__main__ as compiler_main
from compiler import lower as lower_mod
from compiler import runner, steps
from compiler.encode import decode_layer
from compiler.options import Options, check_fits, check_options, parse_density
from compiler.prune import padding_entries
from compiler.runner import compile_steps
from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from models import load_model
from models.lstm import LSTMLayer
from models.network import Layer, Network
from sim.flow.compile import ensure_compiled
from sim.flow.paths import output_dir

TINY = PRESETS["tiny"]  # 4 PEs, 4-bit relative indices (span 16), vectors up to 128


def quiet(_msg):
    pass


def sparse(rng, shape, density):
    """A random matrix with exactly ``round(density * size)`` non-zeros (the rest 0.0), as
    ``torch.nn.utils.prune`` leaves a layer."""
    W = rng.standard_normal(shape).astype(np.float32)
    keep = rng.permutation(W.size) < round(density * W.size)
    return np.where(keep.reshape(shape), W, np.float32(0))


def fc_net(Ws, density=1.0, name="user"):
    """A chained network of FC layers with the given weights (targets ``density``, 1.0 as an
    imported model's)."""
    rng = np.random.default_rng(7)
    layers = [Layer(name=f"fc{k}", W=np.asarray(W, np.float32),
                    b=(0.1 * rng.standard_normal(W.shape[0])).astype(np.float32),
                    relu=k < len(Ws) - 1, density=density, act_density=None)
              for k, W in enumerate(Ws)]
    x = np.abs(rng.standard_normal((2, Ws[0].shape[1]))).astype(np.float32)
    return Network(name=name, layers=layers, x=x, labels=None, synthetic=False,
                   description="test")


def onnx_file(tmp_path, Ws):
    """An ONNX model of Gemm layers (``transB=1``: B is ``(out, in)``, as eiegen's W)."""
    nodes, inits, prev = [], {}, "x"
    for k, W in enumerate(Ws):
        out = "y" if k == len(Ws) - 1 else f"h{k}"
        pre = out if k == len(Ws) - 1 else f"g{k}"
        nodes.append(helper.make_node("Gemm", [prev, f"B{k}", f"C{k}"], [pre], transB=1))
        if k < len(Ws) - 1:
            nodes.append(helper.make_node("Relu", [pre], [out]))
        inits[f"B{k}"], inits[f"C{k}"] = W, np.full(W.shape[0], 0.05)
        prev = out
    graph = helper.make_graph(
        nodes, "sparse", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                        ["n", Ws[0].shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(a, np.float32), k)
                     for k, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "pruned.onnx"
    onnx.save(model, str(path))
    return path


def kept_mask(state, li):
    p = state.pruned[li]
    m = np.zeros(np.shape(state.mats[li].W), dtype=bool)
    m[p.rows, p.cols] = True
    return m


# ---- an already-sparse model keeps its mask ----

@pytest.mark.parametrize("kind", ["onnx", "npz"])
def test_imported_pruned_model_keeps_its_mask_and_density(tmp_path, kind):
    rng = np.random.default_rng(0)
    Ws = [sparse(rng, (48, 40), 0.2), sparse(rng, (10, 48), 0.35)]
    if kind == "onnx":
        path = onnx_file(tmp_path, Ws)
    else:
        path = tmp_path / "pruned.npz"
        np.savez(path, W0=Ws[0], b0=np.zeros(48, np.float32), W1=Ws[1],
                 b1=np.zeros(10, np.float32))
    net = load_model(str(path))
    assert [layer.density for layer in net.layers] == [1.0, 1.0]  # the importers' default
    state, _ = compile_steps(net, TINY, Options())
    for li, W in enumerate(Ws):
        np.testing.assert_array_equal(kept_mask(state, li), W != 0)
        lay = state.accounting["layers"][li]
        assert lay["nnz"] == np.count_nonzero(W)
        assert lay["weight_density_target"] == pytest.approx(np.count_nonzero(W) / W.size)
        assert lay["weight_density"] == pytest.approx(lay["weight_density_target"])


@pytest.mark.parametrize("opts", [Options(balance=True), Options(pad_aware=True),
                                  Options(balance=True, pad_aware=True)])
def test_balance_and_pad_aware_keep_a_pruned_models_mask(opts):
    """No density asked: nothing to drop, so neither ESE's balancing nor the padding-aware
    swaps may move a weight (a swap would bring a zero back)."""
    W = sparse(np.random.default_rng(1), (64, 48), 0.2)
    state, _ = compile_steps(fc_net([W]), TINY, opts)
    np.testing.assert_array_equal(kept_mask(state, 0), W != 0)


def test_density_above_the_models_keeps_its_mask_and_says_so_once():
    rng = np.random.default_rng(2)
    Ws = [sparse(rng, (40, 32), 0.2), sparse(rng, (8, 40), 0.3)]
    lines = []
    state, _ = compile_steps(fc_net(Ws), TINY, Options(density=0.5), progress=lines.append)
    for li, W in enumerate(Ws):
        np.testing.assert_array_equal(kept_mask(state, li), W != 0)
    notes = [line for line in lines if "already sparser" in line]
    assert len(notes) == 1
    assert "fc0 (20.0 % non-zero, asked 50.0 %)" in notes[0] and "fc1 (30.0 %" in notes[0]
    assert "masks are kept" in notes[0]
    # a density below the model's prunes further, among its non-zeros only, silently
    lines = []
    state, _ = compile_steps(fc_net(Ws), TINY, Options(density=0.1), progress=lines.append)
    m = kept_mask(state, 0)
    assert m.sum() == round(0.1 * Ws[0].size) and not (m & (Ws[0] == 0)).any()
    assert np.abs(Ws[0][m]).min() >= np.abs(Ws[0][~m]).max()
    assert not any("already sparser" in line for line in lines)


def test_the_models_own_density_below_one_asks_too():
    """A model file's ``densities`` above the layer's own non-zeros: the same note."""
    W = sparse(np.random.default_rng(3), (40, 32), 0.2)
    lines = []
    state, _ = compile_steps(fc_net([W], density=0.6), TINY, progress=lines.append)
    np.testing.assert_array_equal(kept_mask(state, 0), W != 0)
    assert sum("already sparser" in line for line in lines) == 1


# ---- exact zeros are never stored ----

def test_all_zero_layer_has_no_nonzeros_and_empty_columns():
    rng = np.random.default_rng(4)
    Ws = [rng.standard_normal((16, 12)).astype(np.float32), np.zeros((12, 16), np.float32)]
    for opts in (Options(), Options(density=1.0), Options(density=0.5, balance=True)):
        lines = []
        state, _ = compile_steps(fc_net(Ws), TINY, opts, progress=lines.append)
        lay = state.accounting["layers"][1]
        assert lay["nnz"] == 0 and lay["entries"] == 0 and lay["padding_entries"] == 0
        assert lay["weight_density"] == 0 and lay["weight_density_target"] == 0
        (ep,) = state.encoded[1]
        assert not ep.enc.ptr.any()  # every column of every PE empty
        assert [line for line in lines if "warning" in line] == [
            "[compile] warning: layer fc1 has no non-zero weight: it is stored as empty "
            "columns and outputs its bias only"]
        assert any("fc1: 12x16 density 0.000 -> 0 non-zeros, 0 padding" in line
                   for line in lines)


def test_entries_are_the_nonzeros_plus_the_padding_the_gaps_need():
    """A 20 %-dense model: its non-zeros, and the padding of its own gaps, nothing more (the
    exact zeros used to be entries: nnz was the layer's size)."""
    W = sparse(np.random.default_rng(5), (128, 96), 0.2)
    state, _ = compile_steps(fc_net([W]), TINY, Options(permute=False))
    lay = state.accounting["layers"][0]
    nnz = int(np.count_nonzero(W))
    pad = padding_entries(W != 0, TINY.n_pes, TINY.max_rel_index + 1)
    assert pad > 0  # the test means something: some gaps need padding
    assert lay["nnz"] == nnz and lay["padding_entries"] == pad
    assert lay["entries"] == nnz + pad
    (ep,) = state.encoded[0]
    np.testing.assert_array_equal(decode_layer(ep.enc, TINY).toarray() != 0, W != 0)


def test_weights_that_all_quantize_to_zero_are_warned_about():
    rng = np.random.default_rng(6)
    tiny = (1e-12 * rng.standard_normal((8, 16))).astype(np.float32)
    Ws = [rng.standard_normal((16, 12)).astype(np.float32), tiny]
    lines = []
    state, _ = compile_steps(fc_net(Ws), TINY, Options(), progress=lines.append)
    warn = [line for line in lines if "warning" in line]
    assert len(warn) == 1 and "layer fc1: all 128 of its non-zero weights quantize to 0" in warn[0]
    assert "outputs its bias only" in warn[0]
    # they are weights, stored as entries; the fixed-point codebook gives them 0
    lay = state.accounting["layers"][1]
    assert lay["nnz"] == 128 and not any(lay["codebook_int"])
    # an ordinary layer: no warning
    lines = []
    compile_steps(fc_net(Ws[:1]), TINY, Options(), progress=lines.append)
    assert not any("warning" in line for line in lines)


# ---- one density per layer ----

@pytest.mark.parametrize("text,value", [(None, None), ("0.1", 0.1), ("1", 1.0),
                                        ("0.08,0.09,0.26", [0.08, 0.09, 0.26]),
                                        (" 0.5, 0.25", [0.5, 0.25])])
def test_parse_density(text, value):
    assert parse_density(text) == value


@pytest.mark.parametrize("text", ["", "x", "0.1,", "0.1;0.2", "0.1,,0.2"])
def test_parse_density_refuses_what_is_not_numbers(text):
    with pytest.raises(EIEError, match="--density must be one number, or one per layer"):
        parse_density(text)


@pytest.mark.parametrize("density,match", [
    ([0.1, 0.2, 0.3], "3 densities given for the 2 layers of user: give one per layer, or one "
                      "for all"),
    ([0.1, float("nan")], r"density must be in \(0, 1\], got nan"),
    ([0.1, 0.0], r"density must be in \(0, 1\], got 0.0"),
    ([1.5], r"density must be in \(0, 1\], got 1.5"),
    (float("inf"), r"density must be in \(0, 1\], got inf"),
    ([], "density: no value given"),
])
def test_density_validation(density, match):
    rng = np.random.default_rng(0)
    net = fc_net([rng.standard_normal((8, 6)), rng.standard_normal((4, 8))])
    with pytest.raises(EIEError, match=match):
        check_options(Options(density=density), TINY, net)


def test_per_layer_densities_are_honoured():
    rng = np.random.default_rng(8)
    Ws = [rng.standard_normal((40, 32)), rng.standard_normal((24, 40)),
          rng.standard_normal((8, 24))]
    state, _ = compile_steps(fc_net(Ws), TINY, Options(density=[0.08, 0.5, 0.26]))
    assert [lay["nnz"] for lay in state.accounting["layers"]] == \
        [round(0.08 * 1280), round(0.5 * 960), round(0.26 * 192)]
    # one value in a list is one value for all
    state, _ = compile_steps(fc_net(Ws), TINY, Options(density=[0.5]))
    assert [lay["nnz"] for lay in state.accounting["layers"]] == [640, 480, 96]


def test_per_layer_densities_reach_an_lstms_three_matrices():
    rng = np.random.default_rng(9)
    cells, n_in, proj = 6, 5, 3
    lstm = LSTMLayer(name="lstm0", W_x=rng.normal(0, 0.6, (4 * cells, n_in)),
                     W_r=rng.normal(0, 0.6, (4 * cells, proj)),
                     b=rng.normal(0, 0.3, 4 * cells), peep=None,
                     W_ym=rng.normal(0, 0.6, (proj, cells)), density=1.0)
    fc = Layer(name="fc1", W=rng.normal(0, 0.5, (4, proj)).astype(np.float32),
               b=np.zeros(4, np.float32), relu=False, density=1.0, act_density=None)
    net = Network(name="seq", layers=[lstm, fc], x=rng.normal(0, 1, (2, 3, n_in)),
                  labels=None, synthetic=False, description="test")
    state, _ = compile_steps(net, TINY, Options(density=[0.25, 0.5]))
    nnz = [lay["nnz"] for lay in state.accounting["layers"]]
    # W_x, W_r and W_ym each pruned to 25 %, the FC layer to 50 %
    assert nnz == [round(0.25 * 4 * cells * n_in) + round(0.25 * 4 * cells * proj),
                   round(0.25 * proj * cells), round(0.5 * 4 * proj)]


def test_cli_density_list_and_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path / "build"))
    rng = np.random.default_rng(10)
    m = tmp_path / "m.npz"
    np.savez(m, W0=rng.standard_normal((12, 20)).astype(np.float32),
             b0=np.zeros(12, np.float32), W1=rng.standard_normal((5, 12)).astype(np.float32),
             b1=np.zeros(5, np.float32))
    assert compiler_main.main(["--model", str(m), "--config", "tiny",
                               "--density", "0.25,0.6"]) == 0
    out = capsys.readouterr().out
    assert "-> 60 non-zeros" in out and "-> 36 non-zeros" in out
    for bad, message in (("0.1,0.2,0.3", "3 densities given for the 2 layers of m"),
                         ("0.1,nan", "density must be in (0, 1], got nan"),
                         ("a,b", "--density must be one number")):
        with pytest.raises(SystemExit) as e:
            compiler_main.main(["--model", str(m), "--config", "tiny", "--density", bad])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and err[0].startswith("compile: error:")


# ---- the output directory is keyed by the density ----

def test_density_is_part_of_the_output_directory():
    cfg = PRESETS["eie64"]
    dirs = {output_dir("m.npz", cfg, Options(density=d)).name
            for d in (None, 0.1, [0.1, 0.2], [0.1, 0.3], [0.2, 0.1], 0.1234567, 0.1234568)}
    assert len(dirs) == 7
    assert output_dir("m.npz", cfg, Options(density=[0.08, 0.09, 0.26])).name == \
        "eie64+density0.08_0.09_0.26"
    assert output_dir("m.npz", cfg, Options(density=0.1)).name == "eie64+density0.1"
    long = output_dir("m.npz", cfg, Options(density=[0.123456789] * 20)).name
    assert long.startswith("eie64+density-") and len(long) < 40


def test_a_compile_with_a_density_leaves_the_default_compile_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("EIEGEN_BUILD_DIR", str(tmp_path / "build"))
    rng = np.random.default_rng(11)
    m = tmp_path / "m.npz"
    np.savez(m, W0=sparse(rng, (16, 12), 0.5), b0=np.zeros(16, np.float32),
             W1=rng.standard_normal((4, 16)).astype(np.float32), b1=np.zeros(4, np.float32))
    base = ensure_compiled(str(m), 0, TINY, Options(), progress=quiet)
    before = (base / "manifest.json").read_text()
    dirs = [ensure_compiled(str(m), 0, TINY, Options(density=d), progress=quiet)
            for d in (0.25, [0.25, 0.5])]
    assert len({base, *dirs}) == 3
    assert (base / "manifest.json").read_text() == before
    nnz = [[lay["nnz"] for lay in json.loads((d / "manifest.json").read_text())["layers"]]
           for d in (base, *dirs)]
    assert nnz == [[96, 64], [48, 16], [48, 32]]
    # the per-layer densities are part of the build key: the next run reuses that compile
    said = []
    assert ensure_compiled(str(m), 0, TINY, Options(density=[0.25, 0.5]),
                           progress=said.append) == dirs[1]
    assert any("is up to date" in line for line in said)


# ---- shapes are checked before pruning ----

def _no_pruning(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("pruned before the shapes were checked")
    for mod, name in ((steps, "prune_magnitude"), (steps, "prune_balanced"),
                      (lower_mod, "lstm_masks")):
        monkeypatch.setattr(mod, name, fail)


@pytest.mark.parametrize("shapes,match", [
    # the activation memories hold 128-long vectors
    (((200, 100),), "layer fc0: output length 200 exceeds the activation memories of config "
                    "'tiny' (32 words x 4 PEs = 128)"),
    (((8, 129), (4, 8)), "layer fc0: input length 129 exceeds the activation memories"),
    # 64 bias words per PE: 128 + 128 rows are 32 + 32 words, one more layer does not fit
    (((128, 16), (128, 128), (4, 128)), "layer fc2 does not fit the bias memory: needs 65 "
                                        "words, 64 available"),
    (((8, 8),) * 5, "5 layers do not fit config 'tiny': max_layers is 4"),
])
def test_shapes_too_big_are_refused_before_pruning(monkeypatch, shapes, match):
    rng = np.random.default_rng(12)
    net = fc_net([rng.standard_normal(s) for s in shapes], density=0.5)
    with pytest.raises(EIEError, match="^" + match.replace("(", r"\(").replace(")", r"\)")):
        check_fits(net, TINY)
    late = None
    with monkeypatch.context() as mp:  # without the early check: the same message, later
        mp.setattr(runner, "check_fits", lambda net, cfg: None)
        with pytest.raises(EIEError) as e:
            compile_steps(net, TINY, Options())
        late = str(e.value)
    _no_pruning(monkeypatch)
    with pytest.raises(EIEError) as e:
        compile_steps(net, TINY, Options())
    assert str(e.value) == late


def test_pointer_sram_too_small_for_one_column_batch_before_pruning(monkeypatch):
    cfg = TINY.replace(name="ptr4", ptr_depth=4)
    net = fc_net([np.ones((8, 8))])
    _no_pruning(monkeypatch)
    with pytest.raises(EIEError, match=r"layer fc0: the pointer SRAM of config 'ptr4' \(4 "
                                       r"pointers\) cannot hold one column batch of 4 columns"):
        compile_steps(net, cfg, Options())


def test_an_lstm_too_big_for_the_accumulators_is_refused_before_pruning(monkeypatch):
    """The cell order balances the PEs on the pruned matrices: the capacity comes first."""
    rng = np.random.default_rng(13)
    cells = 24  # 6 cells per PE: 2 x (24 gate rows + 1 projection row) > 32 accumulators
    lstm = LSTMLayer(name="lstm0", W_x=rng.normal(0, 1, (4 * cells, 4)),
                     W_r=rng.normal(0, 1, (4 * cells, 3)), b=np.zeros(4 * cells), peep=None,
                     W_ym=rng.normal(0, 1, (3, cells)), density=0.5)
    net = Network(name="seq", layers=[lstm], x=rng.normal(0, 1, (1, 2, 4)), labels=None,
                  synthetic=False, description="test")
    _no_pruning(monkeypatch)
    with pytest.raises(EIEError, match="LSTM layer lstm0: its 6 cells per PE need 50 "
                                       "accumulators"):
        compile_steps(net, TINY, Options())


def test_saturated_biases_and_inputs_are_warned_not_silent():
    """Biases and inputs beyond the activations' fixed-point range (tiny: 16 bits, 8 fraction
    bits, [-128, 127.996]) are saturated as the hardware holds them, with a warning each."""
    rng = np.random.default_rng(3)
    net = fc_net([rng.standard_normal((8, 12)), rng.standard_normal((4, 8))])
    lines = []
    compile_steps(net, TINY, Options(), progress=lines.append)
    assert not [w for w in lines if "fixed-point range" in w]
    net.layers[1].b[2] = 500.0
    net.x[0, 3] = -1000.0
    net.x[1, 5] = 200.0
    lines = []
    state, _ = compile_steps(net, TINY, Options(), progress=lines.append)
    warns = [w for w in lines if "fixed-point range" in w]
    assert len(warns) == 2
    assert warns[0].startswith("[compile] warning: 1 of the 4 biases of layer fc1 lie beyond "
                               "the fixed-point range [-128, 127.996] (act_bits 16, act_frac 8;"
                               " largest magnitude 500)")
    assert warns[1].startswith("[compile] warning: 2 of the 24 input values lie beyond")
    # saturated, as the warning says
    assert state.images.inputs[0][0, 3] == -(1 << 15) and state.images.inputs[0][1, 5] == 32767
