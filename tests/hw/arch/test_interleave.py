"""The row interleave (hw/arch/interleave.py): element i on PE i mod N at word i // N."""

from __future__ import annotations

import numpy as np

from hw.arch.interleave import element_home, join_vector, rows_local, split_vector


def test_every_element_is_where_split_vector_puts_it():
    x = np.arange(100, 123)  # 23 elements over 4 PEs: 6 words, the last one short
    parts = split_vector(x, 4)
    assert parts.shape == (4, rows_local(23, 4)) == (4, 6)
    pe, word = element_home(np.arange(23), 4)
    assert (parts[pe, word] == x).all()
    assert (join_vector(parts, 23) == x).all()
    pe, word = element_home([8, 9, 22], 4)  # a part of the vector: y_t after x
    assert pe.tolist() == [0, 1, 2] and word.tolist() == [2, 2, 5]
