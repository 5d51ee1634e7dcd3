"""Golden model (decoding the images) against a plain dense fixed-point reference.

The reference below is written independently of hw.arch.fixedpoint, with Python integers.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.arch.config import PRESETS, EIEConfig
from compiler.encode import encode_layer
from hw.arch.errors import EIEError
from compiler.layout import build_images
from hw.arch.interleave import join_vector, split_vector
from sim.ref.golden import GoldenModel
from tests.conftest import random_index_matrix


def ref_layer(Wint, a, shift, bias, relu, cfg):
    out = []
    for i in range(Wint.shape[0]):
        acc = sum(int(w) * int(x) for w, x in zip(Wint[i], a))
        m = 1 << cfg.acc_bits
        acc = (acc + m // 2) % m - m // 2  # wrap
        if shift == 0:
            r = acc
        elif cfg.rounding == "truncate":
            r = acc // (1 << shift)
        elif cfg.rounding == "half_up":
            r = (acc + (1 << (shift - 1))) // (1 << shift)
        else:  # half_even
            q, rem = divmod(acc, 1 << shift)
            half = 1 << (shift - 1)
            r = q + (1 if rem > half or (rem == half and q % 2) else 0)
        y = r + int(bias[i])
        lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
        if cfg.saturate:
            y = min(max(y, lo), hi)
        else:
            y = (y - lo) % (1 << cfg.act_bits) + lo
        out.append(max(y, 0) if relu else y)
    return np.array(out, dtype=np.int64)


def make_network(rng, cfg, shapes, density, relus):
    enc, cbs, shifts, biases, Ws = [], [], [], [], []
    for rows, cols in shapes:
        Q = random_index_matrix(rng, rows, cols, density, cfg.codebook_size)
        cb = rng.integers(cfg.weight_min, cfg.weight_max + 1, cfg.codebook_size)
        cb[0] = 0
        shift = int(rng.integers(0, cfg.weight_frac_max + 1))
        enc.append(encode_layer(Q, cfg))
        cbs.append(cb)
        shifts.append(shift)
        biases.append(rng.integers(cfg.act_min, cfg.act_max + 1, rows))
        Ws.append(cb[Q])
    names = [f"l{i}" for i in range(len(shapes))]
    images = build_images(enc, cbs, shifts, biases, relus, names, cfg)
    return images, Ws, shifts, biases


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n_pes=st.sampled_from([1, 2, 3, 4]),
       rounding=st.sampled_from(["half_up", "truncate", "half_even"]),
       saturate=st.booleans(), acc_bits=st.sampled_from([17, 24, 32]),
       density=st.floats(0, 1))
def test_golden_matches_dense_reference(seed, n_pes, rounding, saturate, acc_bits, density):
    rng = np.random.default_rng(seed)
    cfg = PRESETS["tiny"].replace(n_pes=n_pes, rounding=rounding, saturate=saturate,
                                  acc_bits=acc_bits, weight_frac_max=12)
    shapes = [(int(rng.integers(1, 20)), int(rng.integers(1, 20)))]
    shapes.append((int(rng.integers(1, 20)), shapes[0][0]))
    relus = [bool(rng.integers(2)), bool(rng.integers(2))]
    images, Ws, shifts, biases = make_network(rng, cfg, shapes, density, relus)
    x = rng.integers(cfg.act_min, cfg.act_max + 1, shapes[0][1])
    outs = GoldenModel(images).forward(x)
    a = x
    for li in range(2):
        a = ref_layer(Ws[li], a, shifts[li], biases[li], relus[li], cfg)
        assert outs[li].tolist() == a.tolist()


def test_non_chained_layers():
    rng = np.random.default_rng(3)
    cfg = PRESETS["tiny"]
    images, Ws, shifts, biases = make_network(rng, cfg, [(5, 9), (7, 3)], 0.5, [True, False])
    xs = [rng.integers(-300, 300, (2, 9)), rng.integers(-300, 300, (2, 3))]
    outs = GoldenModel(images, chained=False).forward(xs)
    for li in range(2):
        for s in range(2):
            ref = ref_layer(Ws[li], xs[li][s], shifts[li], biases[li], [True, False][li], cfg)
            assert outs[li][s].tolist() == ref.tolist()


def test_layers_share_memories_without_overlap():
    rng = np.random.default_rng(5)
    cfg = PRESETS["tiny"]
    images, *_ = make_network(rng, cfg, [(12, 10), (6, 12), (3, 6)], 0.6, [True] * 3)
    bases = [lay["ptr_base"] for lay in images.passes]
    assert bases == [0, 11, 24]
    assert [lay["bias_base"] for lay in images.layers] == [0, 3, 5]
    for k in range(cfg.n_pes):
        sb = [lay["spmat_base"][k] for lay in images.passes]
        assert sb == sorted(sb)


def test_does_not_fit_names_pe_and_words():
    cfg = PRESETS["tiny"]  # 256 Spmat words x 8 entries per PE
    Q = np.ones((4, 600), dtype=np.int64)  # 600 entries per PE in one layer: 75 words, fits
    enc = encode_layer(Q, cfg)
    build_images([enc], [np.arange(16)], [0], [np.zeros(4)], [True], ["a"], cfg.replace(
        ptr_depth=1024, act_depth=1024))
    Q = np.ones((4, 2100), dtype=np.int64)
    Q[1::4] = 0
    enc = encode_layer(Q, cfg)
    with pytest.raises(EIEError, match=r"layer big does not fit the sparse-matrix SRAM: PE 0 "
                                       r"needs 263 words for this layer alone, 256 available"):
        build_images([enc], [np.arange(16)], [0], [np.zeros(4)], [True], ["big"],
                     cfg.replace(ptr_depth=4096, act_depth=1024))


def test_spmat_segments_when_layers_do_not_fit_together(tmp_path):
    """Layers whose sparse matrices exceed the Spmat SRAM together go into separate segments,
    each placed from word 0; pointers and biases stay resident; decoding and saving round-trip."""
    from compiler.layout import load_images, save_images

    rng = np.random.default_rng(8)
    cfg = PRESETS["tiny"].replace(ptr_depth=2048)  # 256 Spmat words per PE
    # 100 x 100 dense-ish: about 25 rows x 100 cols x 0.7 = 1750 entries = 219 words per PE
    shapes = [(100, 100), (100, 100), (7, 100)]
    images, Ws, shifts, biases = make_network(rng, cfg, shapes, 0.7, [True, True, False])
    assert [lay["segment"] for lay in images.passes] == [0, 1, 1]
    assert images.n_segments == 2
    assert images.passes[1]["spmat_base"] == [0] * cfg.n_pes
    # the third layer follows the second inside segment 1
    words1 = [-(-int(e) // cfg.entries_per_word) for e in encode_layer(
        (Ws[1] != 0).astype(np.int64), cfg).entries]
    assert images.passes[2]["spmat_base"] == words1
    assert all(s.shape[1] <= cfg.spmat_depth for s in (images.spmat, *images.spmat_segments))
    bases = [lay["ptr_base"] for lay in images.passes]
    assert bases == [0, 101, 202]
    assert [lay["ptr_segment"] for lay in images.passes] == [0, 0, 0] and not images.ptr_segments
    g = GoldenModel(images)
    for li, W in enumerate(Ws):
        assert np.array_equal(g.weights[li].toarray(), W)
    save_images(images, tmp_path)
    assert (tmp_path / "images" / "pe000" / "spmat.seg1.hex").exists()
    again = load_images(tmp_path, cfg, images.layers, images.passes)
    assert again.n_segments == 2
    assert np.array_equal(again.spmat_of(1), images.spmat_of(1))
    x = rng.integers(-500, 500, (2, 100))
    assert all(np.array_equal(a, b) for a, b in
               zip(GoldenModel(again).forward(x), g.forward(x)))


def test_vector_too_long():
    cfg = PRESETS["tiny"]
    enc = encode_layer(np.ones((1, cfg.max_vector + 1), dtype=np.int64), cfg)
    with pytest.raises(EIEError, match="input length 129 exceeds the activation memories"):
        build_images([enc], [np.arange(16)], [0], [np.zeros(1)], [True], ["x"], cfg)


def test_interleave_round_trip():
    cfg = EIEConfig(name="t", n_pes=3)
    x = np.arange(10)
    parts = split_vector(x, cfg.n_pes)
    assert parts[1].tolist() == [1, 4, 7, 0]
    assert join_vector(parts, 10).tolist() == x.tolist()


def test_pointer_segments_decode_and_run_as_one_image(tmp_path):
    """A network whose pointers exceed ptr_depth together runs in pointer segments (ptr_base
    restarting at 0): the golden model decodes every layer's weights from its segment's pointer
    image and computes exactly what the same network laid out with room for every pointer does;
    saving and loading round-trip.  A Spmat-only segment keeps the pointers resident."""
    from compiler.layout import load_images, save_images

    shapes, relus = [(40, 50), (30, 40), (12, 30)], [True, True, False]
    cfg = PRESETS["tiny"].replace(ptr_depth=80)  # 51 + 41 do not fit, 41 + 31 do
    images, Ws, _, _ = make_network(np.random.default_rng(9), cfg, shapes, 0.4, relus)
    assert [lay["ptr_segment"] for lay in images.passes] == [0, 1, 1]
    assert [lay["ptr_base"] for lay in images.passes] == [0, 0, 41]
    wide, _, _, _ = make_network(np.random.default_rng(9), PRESETS["tiny"], shapes, 0.4, relus)
    assert wide.n_segments == 1 and [lay["ptr_base"] for lay in wide.passes] == [0, 51, 92]
    g = GoldenModel(images)
    for li, W in enumerate(Ws):
        assert np.array_equal(g.weights[li].toarray(), W)
    x = np.random.default_rng(1).integers(-500, 500, (3, 50))
    ref = GoldenModel(wide).forward(x)
    assert all(np.array_equal(a, b) for a, b in zip(g.forward(x), ref))
    save_images(images, tmp_path)
    again = GoldenModel(load_images(tmp_path, cfg, images.layers, images.passes))
    assert all(np.array_equal(a, b) for a, b in zip(again.forward(x), ref))
