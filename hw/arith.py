"""Arithmetic unit: ``acc[r] += codebook[v] * a`` for one entry per cycle.

Three stages (EIE's four with the write folded into the add stage):

* D (decode; the entry arrives from the sparse-matrix read unit): running local row
  ``r = z`` for the first entry of a column, else ``r = r_prev + z + 1``; the codebook
  (``cb_slot * codebook_size + v``) and the accumulator at ``r`` are read (synchronous SRAMs);
* M (multiply): exact signed product ``w * a``; the accumulator read data is corrected for the
  write of the previous cycle, which the SRAM read could not see;
* W (add and write): ``acc[r] = wrap(old + product, acc_bits)``, with ``old`` corrected for the
  write of the previous cycle again.

Bypass.  An accumulator read in cycle ``t`` sees the writes of cycles ``< t``.  An entry read in
``t`` therefore misses the writes of cycles ``t`` and ``t + 1`` (the two entries ahead of it, or
whatever occupies the W stage then).  A register ``lw`` holds the row and value written in the
previous cycle; stage M (cycle ``t + 1``) takes ``lw`` if it matches its row (the cycle-``t``
write), stage W (cycle ``t + 2``) takes ``lw`` if it matches (the cycle-``t + 1`` write, which
already contains the cycle-``t`` one when both hit the same row).  So any sequence of rows,
back-to-back repeats included, accumulates correctly without a stall.

Write-back shares the accumulator SRAM's ports through ``wb``
(:func:`hw.bus.acc_port_signature`); the PE only writes back while this unit is idle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig, require_config
from hw.bus import acc_port_signature, host_write_signature
from hw.spmat_read import entry_layout


class ArithUnit(wiring.Component):
    """Arithmetic unit with the codebook and the accumulator SRAM.

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    entry : In(stream.Signature(entry_layout(cfg), always_ready=True))
        Entries from the sparse-matrix read unit.
    cb_slot : In(layer_index_bits)
        Codebook slot of the current layer.
    busy : Out(1)
        An entry is in stage M or W (stage D is the incoming ``entry.valid``).
    acc_read, acc_write : Out(1)
        Strobes: the accumulator SRAM was read / written this cycle (write-back included).
    wb : In(acc_port_signature(cfg))
        The write-back's port of the accumulator SRAM: read accumulator ``wb.rd_addr`` (data
        on ``wb.rd_data`` the next cycle), clear accumulator ``wb.clr_addr`` to 0.
    host : In(host_write_signature())
        Host write of codebook word ``host.addr`` (``slot * codebook_size + v``).
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        super().__init__({
            "entry": In(stream.Signature(entry_layout(cfg), always_ready=True)),
            "cb_slot": In(cfg.layer_index_bits),
            "busy": Out(1),
            "acc_read": Out(1),
            "acc_write": Out(1),
            "wb": In(acc_port_signature(cfg)),
            "host": In(host_write_signature()),
        })
        self.codebook = memory.Memory(shape=signed(cfg.weight_bits),
                                      depth=cfg.max_layers * cfg.codebook_size, init=[])
        self.acc = memory.Memory(shape=signed(cfg.acc_bits), depth=cfg.acc_words, init=[])
        self._cb_r = self.codebook.read_port()
        self._cb_w = self.codebook.write_port()
        self._acc_r = self.acc.read_port()
        self._acc_w = self.acc.write_port()

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.codebook = self.codebook
        m.submodules.acc = self.acc
        cb_r, cb_w, acc_r, acc_w = self._cb_r, self._cb_w, self._acc_r, self._acc_w
        m.d.comb += [
            cb_w.addr.eq(self.host.addr),
            cb_w.data.eq(self.host.wdata),
            cb_w.en.eq(self.host.we),
        ]
        row_bits = cfg.act_addr_bits
        e = self.entry.payload
        d_valid = self.entry.valid

        # ---- stage D: local row, codebook and accumulator reads ----
        r_prev = Signal(row_bits)
        row = Signal(row_bits)
        m.d.comb += row.eq(Mux(e.first, e.z, r_prev + e.z + 1))
        with m.If(d_valid):
            m.d.sync += r_prev.eq(row)
        m.d.comb += [
            # codebook_size is a power of two: slot * size + v is a concatenation
            cb_r.addr.eq((self.cb_slot << cfg.weight_index_bits) | e.v),
            cb_r.en.eq(d_valid),
            acc_r.addr.eq(Mux(self.wb.rd_en, self.wb.rd_addr, row)),
            acc_r.en.eq(d_valid | self.wb.rd_en),
            self.wb.rd_data.eq(acc_r.data),
            self.acc_read.eq(d_valid | self.wb.rd_en),
        ]
        m_valid = Signal()
        m_row = Signal(row_bits)
        m_act = Signal(signed(cfg.act_bits))
        m.d.sync += [m_valid.eq(d_valid), m_row.eq(row), m_act.eq(e.act)]

        # last write: what the W stage wrote in the previous cycle
        lw_valid = Signal()
        lw_row = Signal(row_bits)
        lw_val = Signal(signed(cfg.acc_bits))

        # ---- stage M: multiply, first bypass ----
        prod = Signal(signed(cfg.product_bits))
        m.d.comb += prod.eq(cb_r.data * m_act)
        w_valid = Signal()
        w_row = Signal(row_bits)
        w_prod = Signal(signed(cfg.product_bits))
        w_old = Signal(signed(cfg.acc_bits))
        m.d.sync += [
            w_valid.eq(m_valid),
            w_row.eq(m_row),
            w_prod.eq(prod),
            w_old.eq(Mux(lw_valid & (lw_row == m_row), lw_val, acc_r.data)),
        ]

        # ---- stage W: add (wraps to acc_bits by truncation), write, second bypass ----
        old = Signal(signed(cfg.acc_bits))
        total = Signal(signed(cfg.acc_bits))
        m.d.comb += [
            old.eq(Mux(lw_valid & (lw_row == w_row), lw_val, w_old)),
            total.eq(old + w_prod),
            acc_w.addr.eq(Mux(self.wb.clr_en, self.wb.clr_addr, w_row)),
            acc_w.data.eq(Mux(self.wb.clr_en, 0, total)),
            acc_w.en.eq(w_valid | self.wb.clr_en),
            self.acc_write.eq(w_valid | self.wb.clr_en),
            self.busy.eq(m_valid | w_valid),
        ]
        m.d.sync += [lw_valid.eq(w_valid), lw_row.eq(w_row), lw_val.eq(total)]
        return m
