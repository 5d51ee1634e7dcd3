"""Image files: $readmemh text format and the on-disk layout."""

import numpy as np

from hw.arch.config import PRESETS
from compiler.encode import encode_layer
from compiler.layout import build_images, hex_lines, load_images, save_images


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
        "act0.hex", "bias.hex", "ptr_even.hex", "ptr_odd.hex", "spmat.hex"]
    lines = (d / "pe001" / "spmat.hex").read_text().split()
    assert [int(x, 16) for x in lines] == images.spmat[1].tolist()
    ptr = (d / "pe002" / "ptr_odd.hex").read_text().split()
    assert all(len(x) == 3 for x in ptr)  # tiny: 2048 entries -> 12-bit pointers, 3 digits
    back = load_images(tmp_path, cfg, images.layers)
    assert (back.spmat == images.spmat).all() and (back.inputs[0] == images.inputs[0]).all()
    act = [int(x, 16) for x in (d / "pe003" / "act0.hex").read_text().split()]
    x0 = images.inputs[0][0]
    # PE 3 holds elements 3 and 7; element 7 is past the end of a 7-long vector: 0
    assert act == [int(x0[3]) & 0xFFFF, 0]
