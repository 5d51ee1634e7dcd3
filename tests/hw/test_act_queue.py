"""Activation queue against a deque model: full, empty, ordering, depth 1."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from hw.arch.config import PRESETS
from hw.act_queue import ActQueue
from tests.conftest import amaranth_run


@pytest.mark.parametrize("depth", [1, 2, 3, 8])
def test_act_queue_random_against_model(depth):
    cfg = PRESETS["tiny"].replace(queue_depth=depth)
    dut = ActQueue(cfg)
    rng = np.random.default_rng(depth)
    model = deque()

    async def tb(ctx):
        seq = 0
        for _ in range(300):
            push = bool(rng.random() < 0.6)
            pop = bool(rng.random() < 0.5)
            ctx.set(dut.w.valid, push)
            ctx.set(dut.w.payload.col, seq % 100)
            ctx.set(dut.w.payload.act, (seq * 37) % 200 - 100)
            ctx.set(dut.r.ready, pop)
            # ready / valid / level are "not full" / "not empty" / occupancy of the model
            assert ctx.get(dut.w.ready) == (len(model) < depth)
            assert ctx.get(dut.r.valid) == (len(model) > 0)
            assert ctx.get(dut.level) == len(model)
            did_pop = pop and len(model) > 0
            if did_pop:
                col, act = model[0]
                assert ctx.get(dut.r.payload.col) == col
                assert ctx.get(dut.r.payload.act) == act
            did_push = push and len(model) < depth
            await ctx.tick()
            if did_pop:
                model.popleft()
            if did_push:
                model.append((seq % 100, (seq * 37) % 200 - 100))
                seq += 1

    amaranth_run(dut, tb)


def test_act_queue_fill_and_drain():
    cfg = PRESETS["pe2"]
    dut = ActQueue(cfg)

    async def tb(ctx):
        assert not ctx.get(dut.r.valid)
        ctx.set(dut.w.valid, 1)
        for i in range(cfg.queue_depth):
            assert ctx.get(dut.w.ready)
            ctx.set(dut.w.payload.col, i)
            await ctx.tick()
        assert not ctx.get(dut.w.ready)  # full
        ctx.set(dut.w.valid, 0)
        ctx.set(dut.r.ready, 1)
        for i in range(cfg.queue_depth):
            assert ctx.get(dut.r.valid)
            assert ctx.get(dut.r.payload.col) == i
            await ctx.tick()
        assert not ctx.get(dut.r.valid)  # empty
        assert ctx.get(dut.level) == 0

    amaranth_run(dut, tb)


def test_act_queue_push_visible_next_cycle():
    dut = ActQueue(PRESETS["tiny"])

    async def tb(ctx):
        ctx.set(dut.w.valid, 1)
        ctx.set(dut.w.payload.act, -5)
        assert not ctx.get(dut.r.valid)
        await ctx.tick()
        ctx.set(dut.w.valid, 0)
        assert ctx.get(dut.r.valid)
        assert ctx.get(dut.r.payload.act) == -5

    amaranth_run(dut, tb)
