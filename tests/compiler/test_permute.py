"""The row permutation (compiler/permute.py): a bijection that keeps every PE's row count, never
makes the busiest PE heavier, and leaves every output bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from compiler.options import Options
from compiler.passes import row_batches
from compiler.permute import balanced_order, pe_work, to_user_order
from hw.arch.config import PRESETS
from models.network import Layer, Network
from sim.flow.compile import compile_network

TINY = PRESETS["tiny"]


def skewed_matrix(rng, rows, cols, density):
    """Index matrix whose row densities differ 20x (the plain interleave is then unbalanced)."""
    per_row = density * np.geomspace(0.1, 2.0, rows)
    rng.shuffle(per_row)
    mask = rng.random((rows, cols)) < per_row[:, None]
    return sp.csr_matrix(np.where(mask, rng.integers(1, 16, (rows, cols)), 0))


@pytest.mark.parametrize("cfg, rows, cols, density", [
    (TINY, 37, 50, 0.3), (TINY.replace(acc_depth=4), 57, 40, 0.2),  # output batches
    (PRESETS["pe8"], 300, 200, 0.05), (TINY.replace(n_pes=3), 10, 20, 0.5)])
def test_order_is_a_bijection_with_the_plain_rows_per_pe(cfg, rows, cols, density):
    rng = np.random.default_rng(rows)
    Q = skewed_matrix(rng, rows, cols, density)
    o = balanced_order(Q, cfg)
    assert np.array_equal(np.sort(o), np.arange(rows))
    # each output batch holds a set of rows of its own; PE k keeps len(range(k, rows, N)) rows
    # because hardware row i is still on PE i % N
    for r0, nr in row_batches(rows, cfg):
        assert len(set(o[r0:r0 + nr].tolist())) == nr
    plain = pe_work(Q, cfg.n_pes, cfg.max_rel_index + 1)
    balanced = pe_work(Q[o], cfg.n_pes, cfg.max_rel_index + 1)
    assert balanced.sum() <= plain.sum() + rows  # padding not traded for balance
    assert balanced.max() <= plain.max()


def test_work_counts_padding_like_the_encoder():
    # one PE, a column with entries at local rows 0 and 40: 40 - 0 - 1 = 39 = 2 x 16 + 7 zeros,
    # two padding entries
    Q = sp.csr_matrix(([1, 2], ([0, 40], [0, 0])), shape=(41, 1))
    assert pe_work(Q, 1, 16).tolist() == [4]
    assert pe_work(Q, 2, 16).tolist() == [3, 0]  # PE 0 local rows 0 and 20: one padding


def test_user_order_undoes_the_permutation():
    o = np.array([2, 0, 3, 1])
    y_user = np.array([[10, 11, 12, 13]])
    assert to_user_order(y_user[:, o], o).tolist() == y_user.tolist()
    assert to_user_order(y_user, None) is not None


def _net(rng, sizes, chained=True):
    layers = []
    for li, (cols, rows) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = rng.standard_normal((rows, cols)) * np.geomspace(0.05, 1, rows)[:, None]
        rng.shuffle(W)
        layers.append(Layer(f"fc{li}", W, rng.standard_normal(rows) * 0.1,
                            relu=li < len(sizes) - 2, density=float(rng.choice([0.1, 0.3])),
                            act_density=None))
    x = np.abs(rng.standard_normal((3, sizes[0])))
    return Network("perm", layers, x, labels=None, synthetic=True, description="test network",
                   chained=chained)


@pytest.mark.parametrize("seed, sizes, cfg", [
    (1, [40, 57, 23, 9], TINY), (2, [30, 90, 12], TINY.replace(acc_depth=4)),
    (3, [64, 100, 100, 10], PRESETS["pe8"])])
def test_outputs_equal_bit_for_bit_with_no_permute(seed, sizes, cfg):
    """The golden model of the permuted and of the plain layout: every layer's output (in the
    user's order) equal, and the permuted layout no slower on its busiest PE."""
    rng = np.random.default_rng(seed)
    net = _net(rng, sizes)
    quiet = lambda msg: None  # noqa: E731
    a = compile_network(net, cfg, Options(), progress=quiet)
    b = compile_network(net, cfg, Options(permute=False), progress=quiet)
    assert any(lay["row_order"] is not None for lay in a.manifest["layers"])
    assert all(lay["row_order"] is None for lay in b.manifest["layers"])
    for oa, ob in zip(a.golden, b.golden):
        np.testing.assert_array_equal(oa, ob)
    for la, lb in zip(a.manifest["layers"], b.manifest["layers"]):
        assert max(la["entries_per_pe"]) <= max(lb["entries_per_pe"])
        assert la["nnz"] == lb["nnz"]
