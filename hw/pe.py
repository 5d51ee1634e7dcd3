"""One EIE processing element: the units of EIE section 2 wired together, plus counters.

Data path of a broadcast ``(j, a_j)`` (cycle numbers from the cycle ``bc_valid`` is high)::

    0  push into the activation queue                              (hw/act_queue.py)
    1  pop, read P[g] and P[g+1] from the even / odd banks        (hw/ptr_read.py)
    2  pointers valid; the sparse-matrix read unit takes the column
    3  entry address; Spmat word read on a word change             (hw/spmat_read.py)
    4  entry selected from the word; stage D: row, codebook and accumulator reads (hw/arith.py)
    5  stage M: multiply
    6  stage W: add, write the accumulator

Steady state is one entry per cycle, across column boundaries too (the next column's pointers
wait in the pointer read unit, the next word is read one cycle ahead).  An empty column costs
the pointer read unit one cycle and is hidden entirely while a longer column streams.

Ports are those of docs/architecture.md section 7; the memories of section 2 live in the units
(``pe.ptr.even``, ``pe.ptr.odd``, ``pe.spmat.spmat``, ``pe.arith.codebook``, ``pe.arith.acc``,
``pe.act_rw.act[0/1]``, ``pe.act_rw.bias``) where tests and the top level can reach them.
"""

from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig, bits_for
from hw.act_queue import ActQueue, col_bits
from hw.act_rw import ActRW
from hw.arith import ArithUnit
from hw.ptr_read import PtrRead
from hw.spmat_read import SpmatRead

#: per-PE counter ids (docs/architecture.md section 5)
CNT_ENTRIES = 0
CNT_BUSY = 1
CNT_STARVED = 2
CNT_FULL = 3
CNT_PTR_READS = 4
CNT_SPMAT_READS = 5
CNT_ACC_READS = 6
CNT_ACC_WRITES = 7
CNT_ACT_WRITES = 8
CNT_SRC_READS = 9
CNT_PUSHES = 10
N_COUNTERS = 11
COUNTER_BITS = 32


class PE(wiring.Component):
    """One processing element (docs/architecture.md section 7).

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    queue, ptr, spmat, arith, act_rw : units
        Activation queue, pointer read, sparse-matrix read, arithmetic and activation
        read/write units (their memories are reachable through them).
    counters : Out(data.ArrayLayout(32, 11))
        Per-PE counters 0..10 of section 5; cleared by ``cnt_clear``, wrap at 2**32.

    Notes
    -----
    ``idle`` is registered state only (no path from ``bc_valid``): it falls in the cycle after a
    push.  Accumulator reads / writes (counters 6 / 7) include the write-back's read and clear of
    every row, i.e. they count every access to the accumulator SRAM.
    """

    def __init__(self, cfg: EIEConfig):
        if not isinstance(cfg, EIEConfig):
            raise TypeError(f"cfg must be an EIEConfig, not {cfg!r}")
        self.cfg = cfg
        aab = cfg.act_addr_bits
        super().__init__({
            "ptr_base": In(bits_for(cfg.ptr_depth)),
            "bias_base": In(cfg.bias_addr_bits),
            "shift": In(cfg.shift_bits),
            "relu": In(1),
            "rows_local": In(aab + 1),
            "cb_slot": In(cfg.layer_index_bits),
            "src_sel": In(1),
            "bc_valid": In(1),
            "bc_col": In(col_bits(cfg)),
            "bc_act": In(signed(cfg.act_bits)),
            "queue_ready": Out(1),
            "idle": Out(1),
            "wb_go": In(1),
            "wb_busy": Out(1),
            "act_rd_en": In(1),
            "act_rd_sel": In(1),
            "act_rd_addr": In(aab),
            "act_rd_data": Out(signed(cfg.act_bits)),
            "host_we_spmat": In(1),
            "host_we_ptr": In(1),
            "host_we_bias": In(1),
            "host_we_act": In(1),
            "host_we_cb": In(1),
            "host_addr": In(32),
            "host_wdata": In(64),
            "computing": In(1),
            "bc_pending": In(1),
            "cnt_clear": In(1),
            "counters": Out(data.ArrayLayout(COUNTER_BITS, N_COUNTERS)),
        })
        # units are built here (not in elaborate) so their memories can be patched by tests
        self.queue = ActQueue(cfg)
        self.ptr = PtrRead(cfg)
        self.spmat = SpmatRead(cfg)
        self.arith = ArithUnit(cfg)
        self.act_rw = ActRW(cfg)

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = q = self.queue
        m.submodules.ptr = ptr = self.ptr
        m.submodules.spmat = sp = self.spmat
        m.submodules.arith = ar = self.arith
        m.submodules.act_rw = rw = self.act_rw

        # ---- activation queue ----
        m.d.comb += [
            q.w.valid.eq(self.bc_valid),
            q.w.payload.col.eq(self.bc_col),
            q.w.payload.act.eq(self.bc_act),
            self.queue_ready.eq(q.w.ready),
        ]
        # ---- queue -> pointer read -> sparse-matrix read -> arithmetic ----
        wiring.connect(m, q.r, ptr.col)
        wiring.connect(m, ptr.out, sp.col)
        wiring.connect(m, sp.entry, ar.entry)
        m.d.comb += [
            ptr.ptr_base.eq(self.ptr_base),
            ar.cb_slot.eq(self.cb_slot),
        ]
        # ---- activation read/write ----
        m.d.comb += [
            rw.src_sel.eq(self.src_sel),
            rw.shift.eq(self.shift),
            rw.relu.eq(self.relu),
            rw.rows_local.eq(self.rows_local),
            rw.bias_base.eq(self.bias_base),
            rw.wb_go.eq(self.wb_go),
            self.wb_busy.eq(rw.wb_busy),
            rw.act_rd_en.eq(self.act_rd_en),
            rw.act_rd_sel.eq(self.act_rd_sel),
            rw.act_rd_addr.eq(self.act_rd_addr),
            self.act_rd_data.eq(rw.act_rd_data),
            ar.wb_rd_en.eq(rw.acc_rd_en),
            ar.wb_rd_addr.eq(rw.acc_rd_addr),
            rw.acc_rd_data.eq(ar.wb_rd_data),
            ar.wb_clr_en.eq(rw.acc_clr_en),
            ar.wb_clr_addr.eq(rw.acc_clr_addr),
        ]
        # ---- host writes ----
        for unit, we in ((sp, self.host_we_spmat), (ptr, self.host_we_ptr),
                         (ar, self.host_we_cb)):
            m.d.comb += [unit.host_we.eq(we), unit.host_addr.eq(self.host_addr),
                         unit.host_wdata.eq(self.host_wdata)]
        m.d.comb += [
            rw.host_we_bias.eq(self.host_we_bias),
            rw.host_we_act.eq(self.host_we_act),
            rw.host_addr.eq(self.host_addr),
            rw.host_wdata.eq(self.host_wdata),
        ]

        # ---- idle: queue empty and nothing in flight ----
        m.d.comb += self.idle.eq((q.level == 0) & ~ptr.busy & ~sp.busy & ~ar.busy)

        # ---- performance counters ----
        entry_in = sp.entry.valid
        events = {
            CNT_ENTRIES: entry_in,
            CNT_BUSY: entry_in,
            CNT_STARVED: self.computing & self.idle,
            CNT_FULL: self.bc_pending & ~q.w.ready,
            CNT_PTR_READS: ptr.ptr_read,
            CNT_SPMAT_READS: sp.word_read,
            CNT_ACC_READS: ar.acc_read,
            CNT_ACC_WRITES: ar.acc_write,
            CNT_ACT_WRITES: rw.act_write,
            # the central unit's group reads only, not the host reading results back
            CNT_SRC_READS: self.act_rd_en & self.computing,
            CNT_PUSHES: self.bc_valid & q.w.ready,
        }
        assert sorted(events) == list(range(N_COUNTERS))
        for i, ev in events.items():
            c = self.counters[i]
            with m.If(self.cnt_clear):
                m.d.sync += c.eq(0)
            with m.Elif(ev):
                m.d.sync += c.eq(c + 1)
        return m
