# amaranth: UnusedElaboratable=no
"""Central control unit against behavioural stub PEs (plain Python, one step per clock).

The stub PEs hold the source activations, answer the group reads one cycle later (and put
garbage on ``act_rd.data`` in every other cycle, so the CCU must not rely on the data holding),
model activation queues with a settable depth, service time and forced-not-ready cycles,
report ``idle`` as registered state (it falls the cycle after a push, as hw/pe.py does) and run
a write-back of ``rows_local + 2`` ``wb_busy`` cycles after ``wb_go``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pytest
from amaranth.hdl import Fragment, Shape

from hw.arch.config import PRESETS, EIEConfig
from hw.arch.regmap import (DESCRIPTOR_FIELDS, DESCRIPTOR_STRIDE, descriptor_widths,
                            descriptor_writes)
from hw.bus import descriptor_layout, layer_params_signature
from hw.ccu import CCU, DescriptorTable, GroupReader, ceil_div
from tests.conftest import CycleBench, replay_host_writes


@dataclass
class Desc:
    in_len: int
    out_len: int
    ptr_base: int = 0
    bias_base: int = 0
    shift: int = 0
    relu: int = 0
    src_sel: int | None = None  # None: slot % 2
    cb_slot: int | None = None  # None: the slot
    col_group: int = 0
    dst_base: int = 0
    keep: int = 0


@dataclass
class StubPEs:
    """N behavioural PEs as the CCU sees them."""

    cfg: EIEConfig
    rng: np.random.Generator
    service: int = 1  # cycles a PE spends on each queue element
    ready_prob: float = 1.0  # probability a PE's queue is not forced "not ready" in a cycle
    mem: np.ndarray = None  # (N, 2, act_depth)
    queues: list = field(default_factory=list)
    work: list = field(default_factory=list)
    rd_data: list = None
    rd_fresh: bool = False
    wb_left: int = 0
    forced: np.ndarray = None

    def __post_init__(self):
        n = self.cfg.n_pes
        self.mem = np.zeros((n, 2, self.cfg.act_depth), dtype=np.int64)
        self.queues = [[] for _ in range(n)]
        self.work = [0] * n
        self.rd_data = [0] * n
        self.forced = np.ones(n, dtype=bool)

    def load_vector(self, sel, x):
        """Element j of x at address j // N of PE j % N (docs/architecture.md section 1)."""
        for j, v in enumerate(x):
            self.mem[j % self.cfg.n_pes, sel, j // self.cfg.n_pes] = v

    def ready(self):
        depth = self.cfg.queue_depth
        return [len(q) < depth and f for q, f in zip(self.queues, self.forced)]

    def idle(self):
        return [not q and w == 0 for q, w in zip(self.queues, self.work)]

    def drive(self, ctx, dut):
        cfg = self.cfg
        # the broadcast's ready: every queue ready
        ctx.set(dut.bc.ready, int(all(self.ready())))
        for k, i in enumerate(self.idle()):
            ctx.set(dut.idle[k], int(i))
            ctx.set(dut.wb_busy[k], int(self.wb_left > 0))
            val = self.rd_data[k] if self.rd_fresh else int(
                self.rng.integers(cfg.act_min, cfg.act_max + 1))
            ctx.set(dut.act_rd.data[k], val)

    def step(self, en, sel, addr, push, wb_go, rows_local):
        """State update at the clock edge."""
        n = self.cfg.n_pes
        self.rd_fresh = bool(en)
        if en:
            self.rd_data = [int(self.mem[k, sel, addr]) for k in range(n)]
        for k in range(n):
            if self.work[k] > 0:
                self.work[k] -= 1
            elif self.queues[k]:
                self.queues[k].pop(0)
                self.work[k] = self.service - 1
            if push is not None:
                assert len(self.queues[k]) < self.cfg.queue_depth
                self.queues[k].append(push)
        if self.wb_left > 0:
            self.wb_left -= 1
        if wb_go:
            assert self.wb_left == 0 and all(self.idle())
            self.wb_left = rows_local + 2
        self.forced = self.rng.random(n) < self.ready_prob


class Bench(CycleBench):
    """CCU plus stub PEs; records every broadcast, read and write-back with its cycle."""

    def __init__(self, cfg, rng, **stub_kw):
        super().__init__(CCU(cfg))
        self.cfg = cfg
        self.stub = StubPEs(cfg, rng, **stub_kw)
        self.bcast = []  # (cycle, j, a, layer params)
        self.wb = []  # (cycle, layer params)
        self.reads = []  # (cycle, sel, addr)
        self.layer_starts = []  # cycles where a layer's SETUP ran (first cycle of the layer)
        self.pending_without_ready = 0
        self.paused_cycles = 0

    def params(self, ctx):
        p = self.dut.params
        names = layer_params_signature(self.cfg).members
        return {name: ctx.get(getattr(p, name)) for name in names}

    async def tick(self, ctx):
        """One clock, with the stub PEs driven before and stepped after it."""
        d = self.dut
        self.stub.drive(ctx, d)
        en = ctx.get(d.act_rd.en)
        sel, addr = ctx.get(d.act_rd.sel), ctx.get(d.act_rd.addr)
        push = None
        if ctx.get(d.bc.valid):
            assert all(self.stub.ready()), "broadcast while a queue is full"
            assert ctx.get(d.bc_pending) and ctx.get(d.computing)
            push = (ctx.get(d.bc.payload.col), ctx.get(d.bc.payload.act))
            self.bcast.append((self.cycle, *push, self.params(ctx)))
        elif ctx.get(d.bc_pending):
            assert not all(self.stub.ready()), "non-zero waiting although every queue is ready"
            self.pending_without_ready += 1
        if en:
            self.reads.append((self.cycle, sel, addr))
        wb_go = ctx.get(d.wb_go)
        if wb_go:
            self.wb.append((self.cycle, self.params(ctx)))
        if ctx.get(d.layer_done):
            self.paused_cycles += 1
        rows_local = ctx.get(d.params.rows_local)
        await ctx.tick()
        self.stub.step(en, sel, addr, push, wb_go, rows_local)
        self.cycle += 1

    async def write(self, ctx, writes):
        """Host writes ``(addr, wdata)`` to the descriptor table, one per clock."""
        host = self.dut.host
        await replay_host_writes(ctx, host.we, (host.addr, host.wdata), writes, self.tick)

    async def write_desc(self, ctx, slot, desc: Desc):
        d = asdict(desc)
        d["src_sel"] = slot % 2 if desc.src_sel is None else desc.src_sel
        d["cb_slot"] = slot if desc.cb_slot is None else desc.cb_slot
        addrs, vals = descriptor_writes([d])
        await self.write(ctx, [(slot * DESCRIPTOR_STRIDE + a, v) for a, v in zip(addrs, vals)])



def expected_bcast(x, in_len):
    return [(j, int(x[j])) for j in range(in_len) if x[j] != 0]


def reference_timing(x, in_len, n):
    """Cycle (from the layer's SETUP cycle) of every broadcast, and the first DRAIN cycle,
    with every queue always ready: the rule documented in hw/ccu.py."""
    groups = -(-in_len // n)
    counts = [int(np.count_nonzero(x[m * n: min(in_len, (m + 1) * n)])) for m in range(groups)]
    times = []
    # group m is in the prefetch slot from cycle insp[m] on; cur frees at `free`
    t_read = 0  # SETUP reads group 0
    free = 1  # first cycle in which the current slot may be (re)loaded
    for c in counts:
        insp = t_read + 1
        if c == 0:
            t_read = insp  # dropped at inspection, next group read in the same cycle
            continue
        load = max(insp, free)
        times.extend(range(load + 1, load + 1 + c))
        free = load + c  # the last broadcast's cycle empties the slot and may load
        t_read = load  # the prefetch slot was emptied at load: next read then
    last_insp = t_read if counts and counts[-1] == 0 else 0
    scan_end = max(times[-1] if times else 1, last_insp, 1)
    return times, scan_end + 1


def layer_vector(rng, cfg, in_len, density, zero_groups=()):
    x = np.where(rng.random(cfg.max_vector) < density,
                 rng.integers(cfg.act_min, cfg.act_max + 1, cfg.max_vector), 0)
    for g in zero_groups:
        x[g * cfg.n_pes:(g + 1) * cfg.n_pes] = 0
    # beyond in_len the memory holds non-zeros: they must be masked
    x[in_len:] = np.where(x[in_len:] == 0, 7, x[in_len:])
    return x


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,in_len,density,zero_groups", [
    ("tiny", 37, 0.7, ()),
    ("tiny", 40, 0.5, (2, 3, 4, 7)),  # runs of all-zero groups
    ("tiny", 40, 0.9, (0, 7, 8, 9)),  # a leading and a trailing run
    ("tiny", 40, 0.3, (1, 2, 3, 5, 6, 8, 9)),
    ("tiny", 13, 0.0, ()),  # nothing to broadcast
    ("tiny", 1, 1.0, ()),
    ("pe8", 61, 0.15, (0, 1)),  # leading zero groups, sparse
    ("pe1", 20, 0.5, ()),  # one PE: one element per group
    ("tiny", 128, 0.9, ()),  # max_vector: the last group is at act_depth - 1
])
def test_ccu_broadcast_order_masking_and_timing(preset, in_len, density, zero_groups):
    # a depth-1 queue is full every other cycle even at one element per cycle; the timing
    # rule is for queues that never fill
    cfg = PRESETS[preset].replace(queue_depth=max(2, PRESETS[preset].queue_depth))
    rng = np.random.default_rng(in_len)
    b = Bench(cfg, rng)
    x = layer_vector(rng, cfg, in_len, density, zero_groups)
    b.stub.load_vector(0, x)

    async def tb(ctx):
        await b.write_desc(ctx, 0, Desc(in_len=in_len, out_len=9, ptr_base=3, bias_base=2,
                                        shift=5, relu=1))
        t_start = b.cycle + 1  # SETUP is the cycle after start
        await b.run(ctx, 1)
        got = [(j, a) for _, j, a, _ in b.bcast]
        assert got == expected_bcast(x, in_len)
        times, drain = reference_timing(x, in_len, cfg.n_pes)
        assert [c - t_start for c, *_ in b.bcast] == times
        # wb_go: the first DRAIN cycle in which every stub PE is idle; with a service time of
        # 1 the last push is popped in the next cycle and idle is seen one cycle later
        assert len(b.wb) == 1
        wb_cycle = b.wb[0][0] - t_start
        assert wb_cycle == max(drain, times[-1] + 2 if times else 0)
        n_groups = -(-in_len // cfg.n_pes)
        assert [a for _, _, a in b.reads] == list(range(n_groups))
        assert all(s == 0 for _, s, _ in b.reads)
        rows_local = ceil_div(9, cfg.n_pes)
        # layer cycles: SETUP .. last WB cycle (rows_local + 2 busy + 1 that sees them low)
        assert ctx.get(b.dut.layer_cycles[0]) == wb_cycle + 1 + rows_local + 2 + 1
        assert ctx.get(b.dut.done) and not ctx.get(b.dut.busy)

    b.simulate(tb)


def test_ccu_no_bubbles_between_dense_groups():
    cfg = PRESETS["pe8"]
    rng = np.random.default_rng(1)
    b = Bench(cfg, rng)
    x = rng.integers(1, 100, cfg.max_vector)
    b.stub.load_vector(0, x)

    async def tb(ctx):
        await b.write_desc(ctx, 0, Desc(in_len=200, out_len=8))
        t0 = b.cycle + 1
        await b.run(ctx, 1)
        cycles = [c - t0 for c, *_ in b.bcast]
        # one broadcast per cycle from the layer's 3rd cycle on
        assert cycles == list(range(2, 2 + 200))

    b.simulate(tb)


@pytest.mark.parametrize("ready_prob,service", [(0.7, 1), (0.9, 3), (1.0, 4)])
def test_ccu_stalls_while_a_queue_is_not_ready(ready_prob, service):
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(int(ready_prob * 10) + service)
    b = Bench(cfg, rng, ready_prob=ready_prob, service=service)
    in_len = 90
    x = layer_vector(rng, cfg, in_len, 0.6)
    b.stub.load_vector(0, x)

    async def tb(ctx):
        await b.write_desc(ctx, 0, Desc(in_len=in_len, out_len=5))
        await b.run(ctx, 1)
        # same sequence as without stalls; the bench asserts bc_valid => every queue ready
        assert [(j, a) for _, j, a, _ in b.bcast] == expected_bcast(x, in_len)
        assert b.pending_without_ready > 0

    b.simulate(tb)


def test_ccu_layer_sequencing():
    cfg = PRESETS["tiny"]
    n = cfg.n_pes
    rng = np.random.default_rng(7)
    b = Bench(cfg, rng, service=2)
    descs = [Desc(in_len=30, out_len=17, ptr_base=0, bias_base=0, shift=3, relu=1),
             Desc(in_len=17, out_len=128, ptr_base=31, bias_base=5, shift=24, relu=0),
             Desc(in_len=128, out_len=1, ptr_base=49, bias_base=37, shift=0, relu=1)]
    xa = layer_vector(rng, cfg, 30, 0.5)
    xa[30:] = layer_vector(rng, cfg, 128, 0.5)[30:]
    xb = layer_vector(rng, cfg, 17, 0.5)
    # layer l reads Act l % 2; the stub does not write back, so layers 0 and 2 both read xa
    xs = [xa, xb, xa]
    b.stub.load_vector(0, xa)
    b.stub.load_vector(1, xb)

    async def tb(ctx):
        # a descriptor in slot 3 and writes to slot 4 / unused fields must not disturb anything
        await b.write_desc(ctx, 3, Desc(in_len=5, out_len=5))
        unused = len(DESCRIPTOR_FIELDS)
        await b.write(ctx, [(addr, 99) for addr in (4 * DESCRIPTOR_STRIDE, unused,
                                                    DESCRIPTOR_STRIDE - 1,
                                                    DESCRIPTOR_STRIDE + unused)])
        for s, d in enumerate(descs):
            await b.write_desc(ctx, s, d)
        cycles = await b.run(ctx, 3)
        per_layer = [ctx.get(b.dut.layer_cycles[s]) for s in range(cfg.max_layers)]
        assert all(t > 0 for t in per_layer[:3]) and per_layer[3] == 0
        # start cycle + three layers back to back, no cycle between layers
        assert sum(per_layer) == cycles
        # running again from start clears the counters and gives the same figures
        await b.run(ctx, 3)
        assert [ctx.get(b.dut.layer_cycles[s]) for s in range(cfg.max_layers)] == per_layer
        assert ctx.get(b.dut.done) and not ctx.get(b.dut.layer_done)

    b.simulate(tb)
    half = len(b.bcast) // 2
    # the second run repeats the first exactly, shifted in time
    shift = b.bcast[half][0] - b.bcast[0][0]
    assert [(c + shift, *r) for c, *r in b.bcast[:half]] == b.bcast[half:]
    by_layer = {}
    for _, j, a, p in b.bcast[:half]:
        by_layer.setdefault(p["cb_slot"], []).append((j, a))
    for s, d in enumerate(descs):
        assert by_layer.get(s, []) == expected_bcast(xs[s], d.in_len)
    # every layer's broadcasts carry its own parameters
    for *_, p in b.bcast:
        d = descs[p["cb_slot"]]
        assert p["src_sel"] == p["cb_slot"] % 2
        assert (p["ptr_base"], p["bias_base"], p["shift"], p["relu"]) == \
            (d.ptr_base, d.bias_base, d.shift, d.relu)
    assert [p["cb_slot"] for _, p in b.wb] == [0, 1, 2] * 2
    assert [p["rows_local"] for _, p in b.wb] == [-(-d.out_len // n) for d in descs] * 2
    # each layer reads its groups 0 .. ceil(in_len / N) - 1 from Act l % 2
    want = [(s % 2, m) for s, d in enumerate(descs) for m in range(-(-d.in_len // n))]
    assert [(sel, addr) for _, sel, addr in b.reads] == want * 2


def test_ccu_single_step_pause_and_resume():
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(3)
    b = Bench(cfg, rng)
    b.stub.load_vector(0, np.arange(1, 9))
    b.stub.load_vector(1, np.arange(1, 9))
    pauses = []

    async def on_pause(ctx):
        d = b.dut
        # paused: busy, not done, nothing moving; the CCU waits however long the host takes
        for _ in range(5):
            assert ctx.get(d.layer_done) and ctx.get(d.busy) and not ctx.get(d.done)
            assert not ctx.get(d.act_rd.en) and not ctx.get(d.bc.valid)
            assert not ctx.get(d.computing)
            await b.tick(ctx)
        pauses.append((b.cycle, ctx.get(d.layer), len(b.bcast)))

    async def tb(ctx):
        for s in range(3):
            await b.write_desc(ctx, s, Desc(in_len=8, out_len=4))
        # resume outside a pause and start while busy are ignored
        ctx.set(b.dut.resume, 1)
        await b.tick(ctx)
        ctx.set(b.dut.resume, 0)
        await b.run(ctx, 3, single_step=True, on_pause=on_pause)
        assert [layer for _, layer, _ in pauses] == [1, 2]  # paused before slots 1 and 2
        assert [nb for _, _, nb in pauses] == [8, 16]
        assert len(b.bcast) == 24

    b.simulate(tb)


def test_ccu_start_while_busy_ignored_and_zero_layers():
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(5)
    b = Bench(cfg, rng)
    b.stub.load_vector(0, np.ones(16, dtype=np.int64))

    async def tb(ctx):
        d = b.dut
        await b.write_desc(ctx, 0, Desc(in_len=16, out_len=4))
        ctx.set(d.n_layers, 0)
        ctx.set(d.start, 1)
        assert ctx.get(d.cnt_clear)
        await b.tick(ctx)
        ctx.set(d.start, 0)
        assert ctx.get(d.done) and not ctx.get(d.busy)
        ctx.set(d.n_layers, 1)
        ctx.set(d.start, 1)
        await b.tick(ctx)
        assert not ctx.get(d.done) and ctx.get(d.busy)
        # start held high while busy: no clear, no restart
        for _ in range(5):
            assert not ctx.get(d.cnt_clear)
            await b.tick(ctx)
        ctx.set(d.start, 0)
        while not ctx.get(d.done):
            await b.tick(ctx)
        assert len(b.bcast) == 16

    b.simulate(tb)


def test_ccu_widths_follow_config():
    for name in ("tiny", "eie64", "eie256", "pe1"):
        cfg = PRESETS[name]
        d = CCU(cfg)
        w = descriptor_widths(cfg)
        assert len(d.bc.payload.col) == (cfg.max_vector - 1).bit_length()
        assert w["in_len"] == cfg.max_vector.bit_length()
        assert len(d.params.rows_local) == cfg.act_addr_bits + 1
        assert len(d.idle) == len(d.wb_busy) == cfg.n_pes
        assert len(d.act_rd.data) == cfg.n_pes
        assert len(d.act_rd.data.as_value()) == cfg.n_pes * cfg.act_bits
        assert d.lnzd_nodes == {"tiny": 1, "eie64": 21, "eie256": 85, "pe1": 1}[name]
        Fragment.get(d, None)  # the submodules elaborate (and count as used)


@pytest.mark.parametrize("name", ["tiny", "eie64", "pe1"])
def test_descriptor_layout_is_the_register_map(name):
    """The descriptor layout has the compiler's field list, in order, with the widths of
    ``regmap.descriptor_widths``, and it is what the descriptor table puts out."""
    cfg = PRESETS[name]
    layout = descriptor_layout(cfg)
    assert tuple(layout.members) == DESCRIPTOR_FIELDS
    widths = descriptor_widths(cfg)
    assert {f: Shape.cast(layout.members[f]).width for f in layout.members} == widths
    assert layout.size == sum(widths.values())
    table = DescriptorTable(cfg)
    assert table.signature.members["desc"].shape == layout
    # the layer parameters carry the descriptor's widths
    params = layer_params_signature(cfg).members
    for f in ("ptr_base", "bias_base", "shift", "relu"):
        assert Shape.cast(params[f].shape).width == widths[f]
    Fragment.get(table, None)


def test_ccu_submodules_split():
    """Descriptor table, group reader (with the LNZD) and the sequencer are separate."""
    cfg = PRESETS["pe8"]
    ccu = CCU(cfg)
    frag = Fragment.get(ccu, None)
    names = [sub_name for _, sub_name, _ in frag.subfragments]
    assert names == ["table", "reader"]
    assert isinstance(ccu.table, DescriptorTable) and isinstance(ccu.reader, GroupReader)
    reader = next(f for f, sub_name, _ in frag.subfragments if sub_name == "reader")
    assert [sub_name for _, sub_name, _ in reader.subfragments] == ["lnzd"]
