"""Image files: $readmemh text format and the on-disk layout."""

import numpy as np
import pytest

from hw.arch.config import PRESETS
from hw.arch.errors import EIEError
from compiler.encode import encode_layer
from compiler.layout import build_images, hex_lines, load_images, save_images
from compiler.steps import segment_loads


def test_hex_lines_format():
    assert hex_lines([1, -1, 255], 16) == b"0001\nffff\n00ff\n"
    assert hex_lines([5, 131071], 18) == b"00005\n1ffff\n"
    words = np.array([0x0705290314071501, 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    assert hex_lines(words, 64) == b"0705290314071501\nffffffffffffffff\n"


def test_save_and_load_images(tmp_path):
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(0)
    Q = np.where(rng.random((9, 7)) < 0.5, rng.integers(1, 16, (9, 7)), 0)
    cb = np.arange(16) * 3
    images = build_images([encode_layer(Q, cfg)], [cb], [2], [np.arange(9) - 4], [True],
                          ["fc"], cfg)
    images.inputs = [rng.integers(-5, 5, (2, 7))]
    save_images(images, tmp_path)
    d = tmp_path / "images"
    assert sorted(p.name for p in (d / "pe000").iterdir()) == [
        "act0.hex", "bias.bin", "bias.hex", "ptr_even.bin", "ptr_even.hex", "ptr_odd.bin",
        "ptr_odd.hex", "spmat.bin", "spmat.hex"]
    lines = (d / "pe001" / "spmat.hex").read_text().split()
    assert [int(x, 16) for x in lines] == images.spmat[1].tolist()
    ptr = (d / "pe002" / "ptr_odd.hex").read_text().split()
    assert all(len(x) == 3 for x in ptr)  # tiny: 2048 entries -> 12-bit pointers, 3 digits
    # the binary copies the simulation preloads ($fread): big-endian, ceil(width / 8) bytes
    raw = (d / "pe002" / "ptr_odd.bin").read_bytes()
    assert len(raw) == 2 * len(ptr)
    assert [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)] == \
        [int(x, 16) for x in ptr]
    spm = (d / "pe001" / "spmat.bin").read_bytes()
    assert [int.from_bytes(spm[i:i + 8], "big") for i in range(0, len(spm), 8)] == \
        images.spmat[1].tolist()
    back = load_images(tmp_path, cfg, images.layers, images.passes)
    assert (back.spmat == images.spmat).all() and (back.inputs[0] == images.inputs[0]).all()
    act = [int(x, 16) for x in (d / "pe003" / "act0.hex").read_text().split()]
    x0 = images.inputs[0][0]
    # PE 3 holds elements 3 and 7; element 7 is past the end of a 7-long vector: 0
    assert act == [int(x0[3]) & 0xFFFF, 0]


def _network(cfg, shapes, density=0.4, seed=0):
    """Encoded random layers of ``shapes`` and the other build_images arguments."""
    rng = np.random.default_rng(seed)
    enc, cbs, Qs = [], [], []
    for rows, cols in shapes:
        Q = np.where(rng.random((rows, cols)) < density,
                     rng.integers(1, cfg.codebook_size, (rows, cols)), 0)
        cb = rng.integers(cfg.weight_min, cfg.weight_max + 1, cfg.codebook_size)
        cb[0] = 0
        enc.append(encode_layer(Q, cfg))
        cbs.append(cb)
        Qs.append(cb[Q])
    n = len(shapes)
    args = (enc, cbs, [3] * n, [np.zeros(r, dtype=np.int64) for r, _ in shapes], [True] * n,
            [f"l{i}" for i in range(n)], cfg)
    return args, Qs


def test_pointers_that_do_not_fit_together_get_segments(tmp_path):
    """61 + 21 pointers exceed 64: the second layer starts segment 1, its pointers from 0 (and
    its Spmat words from word 0); the third layer's follow inside segment 1."""
    cfg = PRESETS["tiny"].replace(ptr_depth=64)
    args, _ = _network(cfg, [(20, 60), (30, 20), (10, 30)])
    images = build_images(*args)
    assert [lay["segment"] for lay in images.passes] == [0, 1, 1]
    assert [lay["ptr_segment"] for lay in images.passes] == [0, 1, 1]
    assert [lay["ptr_base"] for lay in images.passes] == [0, 0, 21]
    assert images.passes[1]["spmat_base"] == [0] * cfg.n_pes
    assert images.ptr_even.shape == (cfg.n_pes, 31) and list(images.ptr_segments) == [1]
    assert images.ptr_segments[1][0].shape == (cfg.n_pes, 26)
    # the absolute entry address of column 0 of the third layer: after the second's words
    assert images.pointer(0, 21, 1) == images.passes[2]["spmat_base"][0] * cfg.entries_per_word
    save_images(images, tmp_path)
    pe = tmp_path / "images" / "pe000"
    assert {p.name for p in pe.glob("*.seg1.hex")} == {"spmat.seg1.hex", "ptr_even.seg1.hex",
                                                       "ptr_odd.seg1.hex"}
    assert (pe / "ptr_odd.seg1.hex").read_bytes() == hex_lines(images.ptr_segments[1][1][0],
                                                               cfg.ptr_bits)
    again = load_images(tmp_path, cfg, images.layers, images.passes)
    assert list(again.ptr_segments) == [1]
    for a, b in zip(again.ptr_of(1), images.ptr_of(1)):
        assert np.array_equal(a, b)


def test_fitting_pointers_stay_one_image():
    """The structural invariant that keeps a fitting network's images as they were: one pointer
    image, ptr_base the running sum of cols + 1, no pointer segment."""
    cfg = PRESETS["tiny"]
    args, _ = _network(cfg, [(20, 60), (30, 20), (10, 30)])
    images = build_images(*args)
    assert images.n_segments == 1 and images.ptr_segments == {}
    assert [lay["ptr_base"] for lay in images.passes] == [0, 61, 82]
    assert [lay["ptr_segment"] for lay in images.passes] == [0, 0, 0]
    assert images.ptr_even.shape == (cfg.n_pes, 57)  # 113 pointers, padded to 114


def test_layer_whose_pointers_alone_do_not_fit():
    cfg = PRESETS["tiny"].replace(ptr_depth=32)
    args, _ = _network(cfg, [(20, 40)])
    with pytest.raises(EIEError, match=r"^layer l0 does not fit the pointer SRAM: needs 41 "
                                       r"pointers for this layer alone, 32 available on "
                                       r"every PE$"):
        build_images(*args)


def test_segment_loads_count_words_and_host_cycles():
    """The manifest's per-segment load: Spmat image words and pointer words per PE (none when
    the pointers stay resident), one host write per word per PE (hw.arch.regmap)."""
    cfg = PRESETS["tiny"].replace(ptr_depth=64)
    args, _ = _network(cfg, [(20, 60), (30, 20), (10, 30)])
    images = build_images(*args)
    loads = segment_loads([dict(name=lay["name"], segment=lay["segment"])
                           for lay in images.passes], images, cfg)
    assert [s["layers"] for s in loads] == [["l0"], ["l1", "l2"]]
    assert [s["ptr_words"] for s in loads] == [62, 52]
    assert loads[1]["spmat_words"] == images.spmat_segments[0].shape[1]
    for s in loads:
        assert s["reload_cycles"] == cfg.n_pes * (s["spmat_words"] + s["ptr_words"])
    one = build_images(*_network(PRESETS["tiny"], [(100, 100), (100, 100), (7, 100)],
                                 density=0.7)[0])
    loads = segment_loads([dict(name=lay["name"], segment=lay["segment"])
                           for lay in one.passes], one, one.cfg)
    assert len(loads) == 2 and loads[1]["ptr_words"] == 0  # a Spmat-only segment
