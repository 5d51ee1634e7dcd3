"""One PE with the LSTM hardware (``cfg.lstm``): two frames of a compiled LSTM, the gates'
products as the central unit would broadcast them, the element-wise stage of frame 0 running
beside frame 1's x part (the other accumulator bank), every m_t of the PE's cells bit-exact with
the golden model."""

from __future__ import annotations

import numpy as np
import pytest

from hw.arch.config import PRESETS
from hw.arch.fixedpoint import to_unsigned
from hw.pe import pe_signature
from sim.flow.compile import compile_network
from tests.compiler.test_lower import small_net
from tests.hw.test_pe import Bench

CFG = PRESETS["tiny"].replace(name="tiny-lstm", lstm=True)


def pointers(images, k):
    """PE ``k``'s pointers by global index (bank ``g & 1``, address ``g >> 1``)."""
    even, odd = images.ptr_even[k], images.ptr_odd[k]
    out = np.empty(even.size + odd.size, dtype=np.int64)
    out[0::2], out[1::2] = even, odd
    return out


async def load_pe(b, ctx, images, k):
    cfg = b.cfg
    await b.write(ctx, "spmat", 0, images.spmat[k])
    await b.write(ctx, "ptr", 0, pointers(images, k))
    await b.write(ctx, "bias", 0, to_unsigned(images.bias[k], cfg.act_bits))
    await b.write(ctx, "codebook", 0, to_unsigned(images.codebook.ravel(), cfg.weight_bits))
    peep = images.lstm[0]["peep"]
    if peep is not None:
        await b.write(ctx, "peep", 0, to_unsigned(peep[k].ravel(), cfg.act_bits))


def set_pass(b, ctx, pas, acc_base):
    p = b.dut.params
    for field in ("ptr_base", "bias_base", "shift", "relu", "cb_slot", "src_sel"):
        ctx.set(getattr(p, field), int(pas[field]))
    ctx.set(p.rows_local, -(-int(pas["out_len"]) // b.cfg.n_pes))
    ctx.set(p.acc_base, acc_base)


def pairs(vec):
    return [(j, int(vec[j])) for j in np.flatnonzero(vec)]


@pytest.mark.parametrize("k", [0, 3])
def test_pe_two_lstm_frames_element_wise_beside_the_next_x_part(k):
    cfg = CFG
    net = small_net(np.random.default_rng(21), proj=3, T=2, n=1, fc=False, seq=True)
    comp = compile_network(net, cfg, progress=lambda m: None)
    im = comp.images
    plan = im.lstm[0]
    gi = int(plan["gates"])
    gates = [im.passes[p] for p in im.layers[gi]["passes"]]
    xp, yp = gates  # the x part and the y part (tests/compiler/test_lower.py)
    src = comp.layer_inputs[gi][0]  # (T, src_len): the gates' source vectors, hardware order
    m_hw = comp.layer_inputs[int(plan["proj"])][0]  # (T, cells_pad): m_t by slot
    n, cpp = cfg.n_pes, plan["cells_pad"] // cfg.n_pes
    half = cfg.acc_bank_words
    b = Bench(cfg)
    got = {}

    def ew(ctx, frame, bank_base, dst):
        e = b.dut.ew_params
        for field, v in (("cells", cpp), ("bank_base", bank_base),
                         ("bias_base", xp["bias_base"]), ("shift", xp["shift"]),
                         ("dst_base", dst), ("peephole", int(plan["peep"] is not None))):
            ctx.set(getattr(e, field), int(v))
        ctx.set(b.dut.ew_reset, int(frame == 0))
        ctx.set(b.dut.ew_go, 1)

    async def wait_ew(ctx):
        ctx.set(b.dut.ew_go, 0)
        ctx.set(b.dut.ew_reset, 0)
        while ctx.get(b.dut.ew_busy):
            await b.tick(ctx)

    async def tb(ctx):
        await load_pe(b, ctx, im, k)
        # frame 0: x part into bank 0 (y_{-1} = 0: the y part broadcasts nothing)
        set_pass(b, ctx, xp, 0)
        await b.broadcast(ctx, pairs(src[0, :xp["in_len"]]))
        assert not pairs(src[0, yp["col0"]:])
        # EW(0) on bank 0, started with frame 1's x part into bank 1
        ew(ctx, 0, 0, 0)
        set_pass(b, ctx, xp, half)
        await b.tick(ctx)
        ctx.set(b.dut.ew_go, 0)
        ctx.set(b.dut.ew_reset, 0)
        assert ctx.get(b.dut.ew_busy)
        await b.broadcast(ctx, pairs(src[1, :xp["in_len"]]))
        await wait_ew(ctx)
        # frame 1: the y part (y_0, as the projection wrote it) into bank 1, then EW(1)
        set_pass(b, ctx, yp, half)
        await b.broadcast(ctx, pairs(src[1, yp["col0"]:yp["col0"] + yp["in_len"]]))
        ew(ctx, 1, half, cpp)
        await b.tick(ctx)
        await wait_ew(ctx)
        got["m"] = await b.read_act(ctx, 1, 2 * cpp)
        got["acc"] = [ctx.get(b.dut.arith.banks[q].data[r]) for q in range(2)
                      for r in range(half)]

    b.simulate(tb)
    want0 = [m_hw[0, j * n + k] for j in range(cpp)]
    want1 = [m_hw[1, j * n + k] for j in range(cpp)]
    assert got["m"].tolist() == want0 + want1
    assert any(want0) and any(want1)
    assert got["acc"] == [0] * (2 * half)  # every gate sum read was cleared


def test_pe_without_lstm_hardware_has_no_element_wise_ports():
    assert "ew_go" not in pe_signature(PRESETS["tiny"]).members
    assert "peep" not in pe_signature(PRESETS["tiny"]).members["host"].signature.members["we"] \
        .shape.members
    assert {"ew_go", "ew_reset", "ew_params", "ew_busy"} <= set(pe_signature(CFG).members)
