import numpy as np

from compiler.account import huffman_bits, huffman_code_lengths, storage_breakdown


def test_huffman_textbook_example():
    counts = [45, 13, 12, 16, 9, 5]  # CLRS: 224 bits
    lengths = huffman_code_lengths(counts)
    assert int(np.dot(counts, lengths)) == 224
    assert np.isclose(np.sum(2.0 ** -lengths), 1.0)  # Kraft equality: a full code


def test_huffman_edge_cases():
    assert huffman_code_lengths([0, 7, 0]).tolist() == [0, 1, 0]
    assert huffman_bits([3, 3, 3, 1], 4) == 4


def test_storage_breakdown_hand_computed():
    s = storage_breakdown(rows=10, cols=10, nnz=9, n_entries=10, weight_index_bits=4,
                          rel_index_bits=4, ptr_bits=8, n_pointers=22, codebook_size=16,
                          codebook_bits=16, v_symbols=np.array([1] * 9 + [0]),
                          z_symbols=np.array([0] * 10))
    assert s["dense_32bit"] == 3200
    assert s["pruned"] == 9 * 32 + 32 + 10 * 4 + 176
    assert s["pruned_quantized"] == 80 + 176 + 256
    # v: counts 1 and 9 -> 1 bit each; z: a single symbol -> 1 bit each
    assert s["huffman"] == 10 + 10 + 176 + 256
    assert np.isclose(s["huffman_ratio"], s["huffman"] / 3200)
