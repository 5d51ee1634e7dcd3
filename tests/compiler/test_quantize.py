import numpy as np
import pytest

from hw.arch.errors import EIEError
from compiler.quantize import METHODS, kmeans_1d, quantize


@pytest.mark.parametrize("method", METHODS)
def test_codebook_contract(method):
    rng = np.random.default_rng(1)
    v = rng.laplace(size=5000) * 0.05
    idx, c = quantize(v, 4, method)
    assert c.size == 16 and c[0] == 0.0
    assert idx.min() >= 1 and idx.max() <= 15 and idx.size == v.size


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(2)
    centers = np.array([-3.0, -1.0, 0.5, 2.0])
    v = np.concatenate([c + 0.01 * rng.standard_normal(500) for c in centers])
    c = kmeans_1d(v, 4)
    assert np.allclose(c, centers, atol=0.01)


def test_kmeans_beats_linear():
    rng = np.random.default_rng(3)
    v = rng.laplace(size=20000)
    errs = {}
    for m in ("kmeans", "linear"):
        idx, c = quantize(v, 3, m)
        errs[m] = np.mean((c[idx] - v) ** 2)
    assert errs["kmeans"] < 0.7 * errs["linear"]


def test_pow2_centroids_are_powers_of_two():
    v = np.random.default_rng(4).standard_normal(1000)
    idx, c = quantize(v, 4, "pow2")
    nz = np.abs(c[1:])
    assert np.allclose(np.log2(nz), np.round(np.log2(nz)))


def test_ternary_and_binary_by_sign():
    v = np.array([-2.0, -1.0, 1.0, 3.0])
    idx, c = quantize(v, 2, "ternary")
    assert c[1:3].tolist() == [-1.75, 1.75] and idx.tolist() == [1, 1, 2, 2]
    idx, c = quantize(v, 2, "binary")
    assert c[1:3].tolist() == [-1.5, 2.0]


@pytest.mark.parametrize("bits,method,msg", [
    (0, "kmeans", "codebook bits must be in 1..8, got 0"),
    (9, "kmeans", "codebook bits must be in 1..8, got 9"),
    (1, "ternary", "ternary quantization needs at least 2 codebook bits"),
    (4, "lloyd", "unknown quantizer 'lloyd'"),
])
def test_errors(bits, method, msg):
    with pytest.raises(EIEError, match=msg):
        quantize(np.ones(3), bits, method)
