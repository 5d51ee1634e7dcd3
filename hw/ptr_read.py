"""Pointer read unit: column ``j`` -> its entry range ``[P[g], P[g+1])``, ``g = ptr_base + j``.

EIE keeps the column pointers in two single-ported banks so that both ends of a column come out
in one cycle: bank ``g & 1`` holds ``P[g]`` at address ``g >> 1`` (docs/architecture.md
section 2).  For any ``g`` the odd bank is read at ``g >> 1`` and the even bank at
``(g + 1) >> 1``; which of the two words is the start depends on the parity of ``g``:

* ``g`` even: even bank -> ``P[g]``, odd bank (same address) -> ``P[g+1]``;
* ``g`` odd: odd bank -> ``P[g]``, even bank (next address) -> ``P[g+1]``.

Pipeline (two stages, one column per cycle):

* issue (cycle ``t``): pop the activation queue, present both bank addresses;
* hold (cycle ``t + 1``, register ``p1``): the banks' read data is the column's ``start`` and
  ``end``.  An empty column (``start == end``) is dropped here, so it costs this one cycle of the
  unit and nothing downstream.  A non-empty column waits here (the banks' read enables are low,
  so their outputs hold) until the sparse-matrix read unit takes it; that is the prefetch of the
  next column's pointers while the current column streams.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig, require_config
from hw.bus import host_write_signature, queue_entry_layout


def column_layout(cfg: EIEConfig) -> data.StructLayout:
    """A non-empty column handed to the sparse-matrix read unit."""
    return data.StructLayout({
        "start": cfg.ptr_bits,  # absolute entry address of the first entry
        "count": cfg.ptr_bits,  # entries in the column, >= 1
        "act": signed(cfg.act_bits),
    })


class PtrRead(wiring.Component):
    """Pointer read unit with the even / odd pointer banks.

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    col : In(stream.Signature(queue_entry_layout(cfg)))
        Columns popped from the activation queue.
    ptr_base : In(ptr_index_bits)
        Global pointer index of column 0 of the current layer.
    out : Out(stream.Signature(column_layout(cfg)))
        Non-empty columns, one per cycle at most.
    busy : Out(1)
        A column is in the hold stage.
    ptr_read : Out(1)
        Strobe: a pointer pair was read this cycle (performance counter).
    host : In(host_write_signature())
        Host write of pointer ``g = host.addr`` (bank ``g & 1``, address ``g >> 1``).
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        super().__init__({
            "col": In(stream.Signature(queue_entry_layout(cfg))),
            "ptr_base": In(cfg.ptr_index_bits),
            "out": Out(stream.Signature(column_layout(cfg))),
            "busy": Out(1),
            "ptr_read": Out(1),
            "host": In(host_write_signature()),
        })
        # Memories are built here so tests (and the top level) can patch their contents.
        self.even = memory.Memory(shape=cfg.ptr_bits, depth=cfg.ptr_bank_depth, init=[])
        self.odd = memory.Memory(shape=cfg.ptr_bits, depth=cfg.ptr_bank_depth, init=[])
        self._even_r, self._odd_r = self.even.read_port(), self.odd.read_port()
        self._even_w, self._odd_w = self.even.write_port(), self.odd.write_port()

    def elaborate(self, platform):
        m = Module()
        m.submodules.even = self.even
        m.submodules.odd = self.odd
        er, orr = self._even_r, self._odd_r

        # host writes: global index g -> bank g & 1, address g >> 1
        for bank, wp in ((0, self._even_w), (1, self._odd_w)):
            m.d.comb += [
                wp.addr.eq(self.host.addr[1:]),
                wp.data.eq(self.host.wdata),
                wp.en.eq(self.host.we & (self.host.addr[0] == bank)),
            ]

        p1_valid = Signal()
        p1_odd = Signal()  # g was odd: the odd bank holds the start
        p1_act = Signal(signed(self.cfg.act_bits))
        start = Signal(self.cfg.ptr_bits)
        end = Signal(self.cfg.ptr_bits)
        m.d.comb += [
            start.eq(Mux(p1_odd, orr.data, er.data)),
            end.eq(Mux(p1_odd, er.data, orr.data)),
        ]
        empty = start == end
        m.d.comb += [
            self.out.valid.eq(p1_valid & ~empty),
            self.out.payload.start.eq(start),
            self.out.payload.count.eq(end - start),
            self.out.payload.act.eq(p1_act),
        ]
        # the hold stage empties when its column leaves (or is dropped as empty)
        p1_free = ~p1_valid | empty | self.out.ready
        pop = self.col.valid & p1_free
        g = Signal(max(len(self.ptr_base), len(self.col.payload.col)) + 1)
        m.d.comb += [
            self.col.ready.eq(p1_free),
            g.eq(self.ptr_base + self.col.payload.col),
            er.addr.eq((g + 1) >> 1),
            orr.addr.eq(g >> 1),
            # read only on a pop: otherwise the outputs hold the waiting column's pointers
            er.en.eq(pop),
            orr.en.eq(pop),
            self.ptr_read.eq(pop),
            self.busy.eq(p1_valid),
        ]
        with m.If(pop):
            m.d.sync += [
                p1_valid.eq(1),
                p1_odd.eq(g[0]),
                p1_act.eq(self.col.payload.act),
            ]
        with m.Elif(p1_free):
            m.d.sync += p1_valid.eq(0)
        return m
