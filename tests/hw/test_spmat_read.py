"""Sparse-matrix read unit: word boundaries, mid-word columns, read enables, no bubbles."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.config import PRESETS
from compiler.encode import pack_words, unpack_words
from hw.spmat_read import SpmatRead
from tests.conftest import amaranth_run, load_words


def stream_columns(cfg, words, columns, gap=lambda i: 0, host_load=False):
    """Feed ``columns`` = [(start, count, act)]; return the entries seen with their cycle,
    and the word-read count."""
    dut = SpmatRead(cfg)
    seen = []
    reads = []

    async def tb(ctx):
        await load_words(ctx, dut.host, words,
                         None if host_load else lambda i: dut.spmat.data[i])
        t, i, wait = 0, 0, gap(0)
        while i < len(columns) or ctx.get(dut.busy):
            offer = i < len(columns) and wait == 0
            ctx.set(dut.col.valid, offer)
            if offer:
                s, c, a = columns[i]
                ctx.set(dut.col.payload.start, s)
                ctx.set(dut.col.payload.count, c)
                ctx.set(dut.col.payload.act, a)
            if ctx.get(dut.entry.valid):
                p = dut.entry.payload
                seen.append((t, ctx.get(p.v), ctx.get(p.z), ctx.get(p.act), ctx.get(p.first)))
            if ctx.get(dut.word_read):
                reads.append(t)
            took = offer and ctx.get(dut.col.ready)
            await ctx.tick()
            t += 1
            if took:
                i += 1
                wait = gap(i)
            elif wait:
                wait -= 1
            assert t < 5000

    amaranth_run(dut, tb)
    return seen, len(reads)


def expected(cfg, words, columns):
    out, held, n_reads = [], None, 0
    epw = cfg.entries_per_word
    for s, c, a in columns:
        v, z = unpack_words(words, c, cfg, start=s)
        for k in range(c):
            w = (s + k) // epw
            if w != held:
                n_reads += 1
                held = w
            out.append((int(v[k]), int(z[k]), a, int(k == 0)))
    return out, n_reads


def random_case(rng, cfg, n_entries, n_cols):
    v = rng.integers(0, cfg.codebook_size, n_entries)
    z = rng.integers(0, cfg.max_rel_index + 1, n_entries)
    words = pack_words(v, z, cfg)
    cuts = np.sort(rng.integers(0, n_entries + 1, n_cols - 1))
    bounds = np.concatenate([[0], cuts, [n_entries]])
    cols = [(int(bounds[i]), int(bounds[i + 1] - bounds[i]), int(rng.integers(-99, 99)))
            for i in range(n_cols) if bounds[i + 1] > bounds[i]]
    return words, cols


CONFIGS = [
    PRESETS["tiny"],  # 8 entries per word
    PRESETS["tiny"].replace(rel_index_bits=5),  # 9-bit entries, 7 per word
    PRESETS["tiny"].replace(spmat_word_bits=24, rel_index_bits=4, weight_index_bits=4),
    PRESETS["tiny"].replace(spmat_word_bits=8),  # one entry per word
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"epw{c.entries_per_word}")
def test_spmat_read_back_to_back_columns(cfg):
    """Columns start and end anywhere in a word; back-to-back columns stream without a gap
    and each word is read once per run of entries in it."""
    rng = np.random.default_rng(cfg.entries_per_word)
    words, cols = random_case(rng, cfg, 150, 40)
    seen, n_reads = stream_columns(cfg, words, cols)
    want, want_reads = expected(cfg, words, cols)
    assert [s[1:] for s in seen] == want
    times = [s[0] for s in seen]
    assert times == list(range(times[0], times[0] + len(times)))  # no bubble
    assert n_reads == want_reads
    assert n_reads <= -(-150 // cfg.entries_per_word) + 1


def test_spmat_read_columns_with_gaps_and_out_of_order():
    """Columns arrive with idle cycles between them and in any order (an activation vector
    with zeros skips columns); the held word survives idle cycles."""
    cfg = PRESETS["pe2"]
    rng = np.random.default_rng(4)
    words, cols = random_case(rng, cfg, 100, 30)
    cols = [cols[i] for i in rng.permutation(len(cols))]
    seen, n_reads = stream_columns(cfg, words, cols, gap=lambda i: i % 3)
    want, want_reads = expected(cfg, words, cols)
    assert [s[1:] for s in seen] == want
    assert n_reads == want_reads


def test_spmat_read_single_entry_and_word_spanning():
    cfg = PRESETS["tiny"]
    epw = cfg.entries_per_word
    v = np.arange(40) % cfg.codebook_size
    z = (np.arange(40) * 3) % (cfg.max_rel_index + 1)
    words = pack_words(v, z, cfg)
    cols = [(7, 1, 1), (7, 2, 2), (epw - 1, epw + 2, 3), (2 * epw, epw, 4), (3, 1, 5),
            (3 * epw + 7, 9, 6)]
    seen, n_reads = stream_columns(cfg, words, cols, host_load=True)
    want, want_reads = expected(cfg, words, cols)
    assert [s[1:] for s in seen] == want
    assert n_reads == want_reads


def test_spmat_read_host_write_invalidates_held_word():
    cfg = PRESETS["tiny"]
    dut = SpmatRead(cfg)
    got = []

    async def tb(ctx):
        for word in (0x21, 0x43):
            ctx.set(dut.host.we, 1)
            ctx.set(dut.host.addr, 0)
            ctx.set(dut.host.wdata, word)
            await ctx.tick()
            ctx.set(dut.host.we, 0)
            ctx.set(dut.col.valid, 1)
            ctx.set(dut.col.payload.start, 0)
            ctx.set(dut.col.payload.count, 1)
            await ctx.tick()
            ctx.set(dut.col.valid, 0)
            await ctx.tick()
            assert ctx.get(dut.entry.valid)
            got.append((ctx.get(dut.entry.payload.z), ctx.get(dut.entry.payload.v)))

    amaranth_run(dut, tb)
    assert got == [(2, 1), (4, 3)]
