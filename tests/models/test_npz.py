"""models.npz: files that are not a model's arrays, complex numbers and labels out of range are
refused in one line that says what is wrong (never advice to unpickle)."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.errors import EIEError
from models import load_model
from models.npz import imported_network


def write(path, **extra):
    rng = np.random.default_rng(0)
    arrays = {"W0": rng.standard_normal((6, 8)), "b0": np.zeros(6),
              "W1": rng.standard_normal((3, 6)), "b1": np.zeros(3)}
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


def refused(path) -> str:
    with pytest.raises(EIEError) as e:
        load_model(str(path))
    msg = str(e.value)
    assert "\n" not in msg and "allow_pickle" not in msg and str(path) in msg
    return msg


def test_a_text_file_named_npz_is_not_an_archive(tmp_path):
    p = tmp_path / "t.npz"
    p.write_text("W0 = [[1, 2], [3, 4]]\n")
    assert refused(p) == (f"{p} is not a NumPy .npz archive (a zip of .npy arrays, as "
                          f"numpy.savez writes; this file does not start like one); save the "
                          f"model again (numpy.savez, or models.save_npz)")


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_a_truncated_npz_is_truncated(tmp_path, cut):
    p = write(tmp_path / "u.npz")
    p.write_bytes(p.read_bytes()[: int(p.stat().st_size * cut)])
    assert refused(p).startswith(f"{p} is truncated or corrupt")


def test_a_corrupt_member_a_single_array_and_an_empty_file(tmp_path):
    p = write(tmp_path / "u.npz")
    data = bytearray(p.read_bytes())
    data[300] ^= 0xFF
    p.write_bytes(bytes(data))
    assert refused(p).startswith(f"{p} is corrupt (W0: Bad CRC-32")
    npy = tmp_path / "a.npz"
    np.save(tmp_path / "a.npy", np.ones(3))
    (tmp_path / "a.npy").rename(npy)
    assert refused(npy).startswith(f"{npy} holds a single .npy array, not a NumPy .npz")
    empty = tmp_path / "e.npz"
    empty.write_bytes(b"")
    assert refused(empty).startswith(f"{empty} is empty")
    assert refused(tmp_path / "none.npz") == f"model file not found: {tmp_path / 'none.npz'}"


def test_pickled_objects_are_refused_not_unpickled(tmp_path):
    p = write(tmp_path / "o.npz", x=np.array([{"a": 1}], dtype=object))
    msg = refused(p)
    assert msg.startswith(f"{p}: x is an array of Python objects (dtype object)")
    assert "refused; save numeric arrays" in msg


@pytest.mark.parametrize("key, value", [
    ("W0", np.ones((6, 8)) + 1j),
    ("b1", np.zeros(3, np.complex64)),
    ("x", np.ones((2, 8)) * (1 + 0j)),  # a zero imaginary part is still complex data
    ("densities", np.array([0.5, 0.5]) + 0j),
])
def test_complex_numbers_are_refused(tmp_path, key, value):
    p = write(tmp_path / "c.npz", **{key: value})
    msg = refused(p)
    assert msg.startswith(f"{p}: {key} is complex ({value.dtype}); eiegen takes real numbers")


def test_imported_layers_refuse_complex_numbers(tmp_path):
    W = np.ones((3, 4), np.complex128)
    with pytest.raises(EIEError, match="layer 0 weights is complex"):
        imported_network(tmp_path / "m.onnx", [(W, np.zeros(3), False)], name=None, seed=0,
                         description="")


@pytest.mark.parametrize("y, msg", [
    ([0, 3], "y holds label 3, outside 0..2 (the network has 3 outputs: a label is the index "
             "of one)"),
    ([-1, 0], "y holds label -1, outside 0..2"),
    ([0.5, 1], "y must hold integer labels in 0..2, got 0.5"),
    ([np.nan, 1], "y must hold integer labels in 0..2, got nan"),
])
def test_labels_outside_the_outputs_are_refused(tmp_path, y, msg):
    p = write(tmp_path / "y.npz", x=np.ones((2, 8)), y=np.array(y))
    assert refused(p).startswith(f"{p}: {msg}")


def test_labels_inside_the_outputs_load(tmp_path):
    net = load_model(str(write(tmp_path / "y.npz", x=np.ones((3, 8)), y=np.array([0, 2, 1.0]))))
    assert net.labels.tolist() == [0, 2, 1] and net.labels.dtype == np.int64
