"""One EIE processing element: the units of EIE section 2 wired together, plus counters.

Data path of a broadcast ``(j, a_j)`` (cycle numbers from the cycle ``bc.valid`` is high)::

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

Ports are those of docs/architecture.md section 7, grouped into the buses of :mod:`hw.bus`
(:func:`pe_signature`, which the Verilog export's black-box PEs use without building a PE);
the memories of section 2 live in the units
(``pe.ptr.even``, ``pe.ptr.odd``, ``pe.spmat.spmat``, ``pe.arith.codebook``, ``pe.arith.acc``,
``pe.act_rw.act0`` / ``act1``, ``pe.act_rw.bias``) where tests and the top level can reach them.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.act_queue import ActQueue
from hw.act_rw import ActRW
from hw.arch import regmap
from hw.arch.config import EIEConfig, bits_for, require_config
from hw.arith import ArithUnit
from hw.ew_unit import EWUnit
from hw.bus import (act_read_signature, broadcast_signature, ew_params_signature,
                    host_write_signature, layer_params_signature, pe_host_strobes)
from hw.ptr_read import PtrRead
from hw.spmat_read import SpmatRead


def pe_signature(cfg: EIEConfig) -> wiring.Signature:
    """The signature of :class:`PE` for ``cfg``, without building a PE.

    Parameters
    ----------
    cfg : EIEConfig

    Returns
    -------
    wiring.Signature
        ``params`` (:func:`hw.bus.layer_params_signature`), ``bc``
        (:func:`hw.bus.broadcast_signature`; ``bc.ready`` is the queue's "not full"), ``idle``,
        ``wb_go``, ``wb_busy``, ``act_rd`` (:func:`hw.bus.act_read_signature`), ``host``
        (:func:`hw.bus.host_write_signature` with one strobe per memory of
        :func:`hw.bus.pe_host_strobes`), ``computing``, ``bc_pending``, ``cnt_clear`` and
        ``counters``; with the LSTM hardware (``cfg.lstm``) also ``ew_go``, ``ew_reset``,
        ``ew_params`` (:func:`hw.bus.ew_params_signature`), ``ew_to_src``, ``ew_busy`` and the
        host's read of the cell state (``cell_re``, ``cell_raddr``, ``cell_rdata``).
    """
    require_config(cfg)
    lstm = {
        # the element-wise stage (hw/ew_unit.py): start, cell-state reset, its parameters
        "ew_go": In(1),
        "ew_reset": In(1),
        "ew_params": In(ew_params_signature(cfg)),
        # 1: m_t goes into the pass's source memory (an LSTM without a projection)
        "ew_to_src": In(1),
        # the host's read of the cell state (hw/ew_unit.py), data the next cycle
        "cell_re": In(1),
        "cell_raddr": In(bits_for(cfg.ew_cells_max)),
        "cell_rdata": Out(signed(cfg.cell_width)),
        "ew_busy": Out(1),
    } if cfg.lstm else {}
    return wiring.Signature({
        **lstm,
        "params": In(layer_params_signature(cfg)),
        "bc": In(broadcast_signature(cfg)),
        "idle": Out(1),
        "wb_go": In(1),
        "wb_busy": Out(1),
        "act_rd": In(act_read_signature(cfg)),
        "host": In(host_write_signature(pe_host_strobes(cfg))),
        "computing": In(1),
        "bc_pending": In(1),
        "cnt_clear": In(1),
        "counters": Out(data.ArrayLayout(regmap.COUNTER_BITS,
                                         len(regmap.counter_names(cfg)))),
    })


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
    counters : Out(data.ArrayLayout(COUNTER_BITS, len(counter_names(cfg))))
        Per-PE counters of :func:`hw.arch.regmap.counter_names` (the FC counters by counter
        id, then the element-wise unit's with the LSTM hardware); cleared by ``cnt_clear``,
        wrap at ``2**COUNTER_BITS``.

    Notes
    -----
    The ports are :func:`pe_signature`.  ``idle`` is registered state only (no path from
    ``bc.valid``): it falls in the cycle after a push.  Accumulator reads / writes include the
    write-back's read and clear of every row, i.e. they count every access to the accumulator
    SRAM.
    """

    def __init__(self, cfg: EIEConfig):
        super().__init__(pe_signature(cfg))
        self.cfg = cfg
        # units are built here (not in elaborate) so their memories can be patched by tests
        self.queue = ActQueue(cfg)
        self.ptr = PtrRead(cfg)
        self.spmat = SpmatRead(cfg)
        self.arith = ArithUnit(cfg)
        self.act_rw = ActRW(cfg)
        self.ew = EWUnit(cfg) if cfg.lstm else None

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = q = self.queue
        m.submodules.ptr = ptr = self.ptr
        m.submodules.spmat = sp = self.spmat
        m.submodules.arith = ar = self.arith
        m.submodules.act_rw = rw = self.act_rw
        p = self.params

        # ---- broadcast -> queue -> pointer read -> sparse-matrix read -> arithmetic ----
        wiring.connect(m, wiring.flipped(self.bc), q.w)
        wiring.connect(m, q.r, ptr.col)
        wiring.connect(m, ptr.out, sp.col)
        wiring.connect(m, sp.entry, ar.entry)
        m.d.comb += [ptr.ptr_base.eq(p.ptr_base), ar.cb_slot.eq(p.cb_slot)]
        if self.cfg.lstm:
            m.d.comb += [ar.acc_base.eq(p.acc_base), self.act_rw.acc_base.eq(p.acc_base)]
        # ---- activation read/write; its write-back uses the accumulator port ----
        wiring.connect(m, wiring.flipped(self.act_rd), rw.act_rd)
        if self.ew is None:
            wiring.connect(m, rw.acc, ar.wb)
        else:
            self._element_wise(m, rw, ar)
        m.d.comb += [
            rw.src_sel.eq(p.src_sel),
            rw.shift.eq(p.shift),
            rw.relu.eq(p.relu),
            rw.rows_local.eq(p.rows_local),
            rw.bias_base.eq(p.bias_base),
            rw.dst_base.eq(p.dst_base),
            rw.wb_go.eq(self.wb_go),
            self.wb_busy.eq(rw.wb_busy),
        ]
        # ---- host writes: one address / data, a strobe per memory ----
        we = self.host.we
        for unit, strobe in ((sp, we.spmat), (ptr, we.ptr), (ar, we.codebook)):
            m.d.comb += unit.host.we.eq(strobe)
        m.d.comb += [rw.host.we.bias.eq(we.bias), rw.host.we.act.eq(we.act)]
        if self.ew is not None:
            m.d.comb += self.ew.host.we.eq(we.peep)
        for unit in (sp, ptr, ar, rw) + (() if self.ew is None else (self.ew,)):
            m.d.comb += [unit.host.addr.eq(self.host.addr),
                         unit.host.wdata.eq(self.host.wdata)]

        # ---- idle: queue empty and nothing in flight (the element-wise stage runs beside
        # the next pass, so it is not part of idle) ----
        m.d.comb += self.idle.eq((q.level == 0) & ~ptr.busy & ~sp.busy & ~ar.busy)

        # ---- performance counters ----
        entry_in = sp.entry.valid
        events = {
            "entries": entry_in,
            "busy": entry_in,
            "starved": self.computing & self.idle,
            "full": self.bc_pending & ~q.w.ready,
            "ptr_reads": ptr.ptr_read,
            "spmat_reads": sp.word_read,
            "acc_reads": ar.acc_read,
            "acc_writes": ar.acc_write,
            "act_writes": rw.act_write,
            # the central unit's group reads only, not the host reading results back
            "src_reads": self.act_rd.en & self.computing,
            "pushes": self.bc.valid & q.w.ready,
        }
        if self.ew is not None:  # strobes of 0..2 events per cycle
            events.update({name: getattr(self.ew, name) for name in regmap.EW_COUNTER_NAMES})
        names = regmap.counter_names(self.cfg)
        assert tuple(events) == names
        for i, ev in enumerate(events.values()):
            c = self.counters[i]
            with m.If(self.cnt_clear):
                m.d.sync += c.eq(0)
            with m.Elif(ev != 0):
                m.d.sync += c.eq(c + ev)
        return m

    def _element_wise(self, m, rw, ar):
        """The LSTM hardware's element-wise unit: it shares the accumulator port with the
        write-back (they never run at once: the sequencer starts it where a write-back would
        start, in the cycle every PE is idle) and ActRW's bias read and activation write."""
        m.submodules.ew = ew = self.ew
        acc = ar.wb
        ewa, wba = ew.acc, rw.acc
        m.d.comb += [
            acc.rd_en.eq(ewa.rd_en | wba.rd_en),
            acc.rd_addr.eq(Mux(ewa.rd_en, ewa.rd_addr, wba.rd_addr)),
            acc.clr_en.eq(ewa.clr_en | wba.clr_en),
            acc.clr_addr.eq(Mux(ewa.clr_en, ewa.clr_addr, wba.clr_addr)),
            ewa.rd_data.eq(acc.rd_data),
            wba.rd_data.eq(acc.rd_data),
            ew.start.eq(self.ew_go),
            ew.reset_cells.eq(self.ew_reset),
            ew.host_re.eq(self.cell_re),
            ew.host_raddr.eq(self.cell_raddr),
            self.cell_rdata.eq(ew.host_rdata),
            self.ew_busy.eq(ew.busy),
        ]
        wiring.connect(m, wiring.flipped(self.ew_params), ew.params)
        # m_t goes to the memory the gates' write-back would have written, or, without a
        # projection (``ew_to_src``), into the gates' source (m_t is y_t)
        ew_sel, sel_now = Signal(), Signal()
        m.d.comb += sel_now.eq(Mux(self.ew_to_src, self.params.src_sel, ~self.params.src_sel))
        with m.If(self.ew_go & ~ew.busy):
            m.d.sync += ew_sel.eq(sel_now)
        m.d.comb += rw.ew_sel.eq(Mux(self.ew_go & ~ew.busy, sel_now, ew_sel))
        wiring.connect(m, ew.bias, rw.ew_bias)
        wiring.connect(m, ew.act, rw.ew_act)
