"""Encode pass: EIE's worked example, padding, and decode(encode(W)) == W on hard cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.arch.config import EIEConfig
from compiler.encode import decode_layer, encode_layer, local_rows, pack_words, unpack_words
from hw.arch.errors import EIEError
from tests.conftest import random_index_matrix


def eie_example():
    """EIE Figs. 2-3: 16 x 8 on 4 PEs; PE0's rows 0, 4, 8, 12 and their non-zero columns."""
    W = np.zeros((16, 8), dtype=np.int64)
    pe0 = {0: [0, 2, 4, 5, 6], 4: [1, 4], 8: [0, 7], 12: [0, 2, 5, 7]}
    for r, cols in pe0.items():
        for c in cols:
            W[r, c] = 1 + (3 * r + c) % 15
    rng = np.random.default_rng(7)
    for r in range(16):
        if r % 4:
            W[r] = random_index_matrix(rng, 1, 8, 0.4, 16)[0]
    return W


def test_eie_worked_example_streams():
    cfg = EIEConfig(name="ex", n_pes=4)
    W = eie_example()
    enc = encode_layer(W, cfg)
    assert enc.z[0].tolist() == [0, 1, 0, 1, 0, 2, 0, 0, 0, 2, 0, 2, 0]
    assert enc.ptr[0].tolist() == [0, 3, 4, 6, 6, 8, 10, 11, 13]
    # virtual weights W0,0 W8,0 W12,0 W4,1 W0,2 W12,2 W0,4 W4,4 W0,5 W12,5 W0,6 W8,7 W12,7
    order = [(0, 0), (8, 0), (12, 0), (4, 1), (0, 2), (12, 2), (0, 4), (4, 4), (0, 5),
             (12, 5), (0, 6), (8, 7), (12, 7)]
    assert enc.v[0].tolist() == [W[r, c] for r, c in order]
    assert (decode_layer(enc, cfg).toarray() == W).all()


def test_padding_rule_example():
    cfg = EIEConfig(name="ex", n_pes=1)
    col = np.array([0, 0, 1, 2] + [0] * 18 + [3])[:, None]
    enc = encode_layer(col, cfg)
    assert enc.v[0].tolist() == [1, 2, 0, 3]
    assert enc.z[0].tolist() == [2, 0, 15, 2]
    assert enc.padding.tolist() == [1]
    assert enc.nnz == 3


def test_gap_needing_several_padding_entries():
    cfg = EIEConfig(name="ex", n_pes=2, rel_index_bits=2)  # max gap 3
    W = np.zeros((40, 1), dtype=np.int64)
    W[38, 0] = 5  # PE 0, local row 19: 19 zeros -> 19 // 4 = 4 padding entries, z = 3
    enc = encode_layer(W, cfg)
    assert enc.v[0].tolist() == [0, 0, 0, 0, 5]
    assert enc.z[0].tolist() == [3, 3, 3, 3, 3]
    assert enc.entries.tolist() == [5, 0]
    assert (decode_layer(enc, cfg).toarray() == W).all()


def test_rejects_out_of_range_indices():
    with pytest.raises(EIEError, match="codebook index out of range"):
        encode_layer(np.array([[16]]), EIEConfig(name="ex", n_pes=1))


@st.composite
def layers(draw):
    n_pes = draw(st.sampled_from([1, 2, 3, 4, 8]))
    rows = draw(st.integers(1, 70))
    cols = draw(st.integers(1, 20))
    rib = draw(st.integers(1, 4))
    wib = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["random", "one_pe", "empty_cols", "sparse_gaps"]))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    cfg = EIEConfig(name="h", n_pes=n_pes, rel_index_bits=rib, weight_index_bits=wib)
    W = random_index_matrix(rng, rows, cols, draw(st.floats(0, 1)), 1 << wib)
    if kind == "one_pe":
        W[np.arange(rows) % n_pes != 0] = 0
    elif kind == "empty_cols":
        W[:, rng.random(cols) < 0.5] = 0
    elif kind == "sparse_gaps":
        W = random_index_matrix(rng, rows, cols, 0.03, 1 << wib)
    return cfg, W


@settings(max_examples=200, deadline=None)
@given(layers())
def test_decode_encode_round_trip(case):
    cfg, W = case
    enc = encode_layer(W, cfg)
    assert (decode_layer(enc, cfg).toarray() == W).all()
    assert enc.nnz == np.count_nonzero(W)
    for k in range(cfg.n_pes):
        assert enc.v[k].size == enc.ptr[k, -1]
        assert (np.diff(enc.ptr[k]) >= 0).all()
        assert enc.z[k].max(initial=0) <= cfg.max_rel_index
        # padding entries are exactly the stored zero weights
        assert np.count_nonzero(enc.v[k] == 0) == enc.padding[k]
        # packing round trip
        words = pack_words(enc.v[k], enc.z[k], cfg)
        v, z = unpack_words(words, enc.v[k].size, cfg)
        assert v.tolist() == enc.v[k].tolist() and z.tolist() == enc.z[k].tolist()


def test_local_rows_restart_per_column():
    z = np.array([2, 0, 1, 0, 3])
    ptr = np.array([0, 2, 2, 5])  # columns of 2, 0 and 3 entries
    assert local_rows(z, ptr).tolist() == [2, 3, 1, 2, 6]


def test_pack_layout_slot0_is_least_significant():
    cfg = EIEConfig(name="ex", n_pes=1)
    w = pack_words([1, 2], [3, 4], cfg)
    assert w.tolist() == [0x4231]
