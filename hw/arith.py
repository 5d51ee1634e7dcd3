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

With the LSTM hardware (``cfg.lstm``) the accumulators are two banks of
``cfg.acc_bank_words`` (memories ``acc`` and ``acc1``), each with its own read and write port,
and the pass's rows start at accumulator ``acc_base``: the element-wise stage reads and clears
one bank through ``wb`` while the next frame's x part accumulates into the other, and neither
sees the other's accesses.  ``wb`` wins a bank both address in one cycle (as the one port does
without the LSTM hardware, where there is one bank and no ``acc_base``).
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
    acc_read, acc_write : Out(1), Out(2) with the LSTM hardware
        Accumulator reads / writes this cycle (write-back included): with the LSTM hardware's
        two banks the element-wise stage reads and clears one while a pass accumulates into the
        other, so a cycle can have two of each.
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
            "acc_read": Out(2 if cfg.lstm else 1),
            "acc_write": Out(2 if cfg.lstm else 1),
            "wb": In(acc_port_signature(cfg)),
            **({"acc_base": In(cfg.act_addr_bits)} if cfg.lstm else {}),
            "host": In(host_write_signature()),
        })
        self.codebook = memory.Memory(shape=signed(cfg.weight_bits),
                                      depth=cfg.max_layers * cfg.codebook_size, init=[])
        #: the accumulator banks (hw.arch.memories: ``acc``, and ``acc1`` with cfg.lstm)
        self.banks = [memory.Memory(shape=signed(cfg.acc_bits), depth=cfg.acc_bank_words,
                                    init=[]) for _ in range(cfg.acc_banks)]
        self.acc = self.banks[0]
        if cfg.acc_banks == 2:
            self.acc1 = self.banks[1]
        self._cb_r = self.codebook.read_port()
        self._cb_w = self.codebook.write_port()
        self._acc_r = [b.read_port() for b in self.banks]
        self._acc_w = [b.write_port() for b in self.banks]

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.codebook = self.codebook
        m.submodules.acc = self.acc
        if cfg.acc_banks == 2:
            m.submodules.acc1 = self.acc1
        cb_r, cb_w = self._cb_r, self._cb_w
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
        local = Signal(row_bits)
        row = Signal(row_bits)  # the accumulator: acc_base + the pass's local row
        m.d.comb += [local.eq(Mux(e.first, e.z, r_prev + e.z + 1)),
                     row.eq(self.acc_base + local if cfg.lstm else local)]
        with m.If(d_valid):
            m.d.sync += r_prev.eq(local)
        m.d.comb += [
            # codebook_size is a power of two: slot * size + v is a concatenation
            cb_r.addr.eq((self.cb_slot << cfg.weight_index_bits) | e.v),
            cb_r.en.eq(d_valid),
            self.acc_read.eq(d_valid + self.wb.rd_en if cfg.lstm else d_valid | self.wb.rd_en),
        ]
        mac_data = self._bank_reads(m, row, d_valid)
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
            w_old.eq(Mux(lw_valid & (lw_row == m_row), lw_val, mac_data)),
        ]

        # ---- stage W: add (wraps to acc_bits by truncation), write, second bypass ----
        old = Signal(signed(cfg.acc_bits))
        total = Signal(signed(cfg.acc_bits))
        m.d.comb += [
            old.eq(Mux(lw_valid & (lw_row == w_row), lw_val, w_old)),
            total.eq(old + w_prod),
            self.acc_write.eq(w_valid + self.wb.clr_en if cfg.lstm else
                              w_valid | self.wb.clr_en),
            self.busy.eq(m_valid | w_valid),
        ]
        self._bank_writes(m, w_row, w_valid, total)
        m.d.sync += [lw_valid.eq(w_valid), lw_row.eq(w_row), lw_val.eq(total)]
        return m

    def _bank(self, addr):
        """``(bank, address in the bank)`` of accumulator ``addr``."""
        if self.cfg.acc_banks == 1:
            return 0, addr
        hi = addr >= self.cfg.acc_bank_words
        return hi, Mux(hi, addr - self.cfg.acc_bank_words, addr)

    def _bank_reads(self, m, row, d_valid):
        """Each bank's read port: ``wb``'s read when it addresses the bank, else stage D's.
        Returns stage D's read data (the next cycle); drives ``wb.rd_data``."""
        wb_bank, wb_addr = self._bank(self.wb.rd_addr)
        d_bank, d_addr = self._bank(row)
        wb_last, d_last = Signal(), Signal()  # the bank each read of the last cycle used
        m.d.sync += [wb_last.eq(wb_bank), d_last.eq(d_bank)]
        for b, rp in enumerate(self._acc_r):
            wb_here = self.wb.rd_en & (wb_bank == b)
            m.d.comb += [rp.addr.eq(Mux(wb_here, wb_addr, d_addr)),
                         rp.en.eq(wb_here | (d_valid & (d_bank == b)))]
        if len(self._acc_r) == 1:
            m.d.comb += self.wb.rd_data.eq(self._acc_r[0].data)
            return self._acc_r[0].data
        m.d.comb += self.wb.rd_data.eq(Mux(wb_last, self._acc_r[1].data, self._acc_r[0].data))
        data = Signal(signed(self.cfg.acc_bits))
        m.d.comb += data.eq(Mux(d_last, self._acc_r[1].data, self._acc_r[0].data))
        return data

    def _bank_writes(self, m, w_row, w_valid, total):
        """Each bank's write port: ``wb``'s clear when it addresses the bank, else stage W's."""
        clr_bank, clr_addr = self._bank(self.wb.clr_addr)
        w_bank, w_addr = self._bank(w_row)
        for b, wp in enumerate(self._acc_w):
            clr_here = self.wb.clr_en & (clr_bank == b)
            m.d.comb += [wp.addr.eq(Mux(clr_here, clr_addr, w_addr)),
                         wp.data.eq(Mux(clr_here, 0, total)),
                         wp.en.eq(clr_here | (w_valid & (w_bank == b)))]
