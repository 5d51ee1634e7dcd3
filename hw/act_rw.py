"""Activation read/write unit: the two activation memories, the bias memory and write-back.

The source memory (``Act[src_sel]``) is read by the central unit (``act_rd``; it looks for
non-zeros there) and the host.  At the end of a pass (a layer, or one output
batch of it), ``wb_go`` runs the write-back: for every accumulator ``r < rows_local``::

    Act[1 - src_sel][dst_base + r] = finalize(acc[r], shift, bias[bias_base + r], relu)
    acc[r] = 0                                                      # next pass

Write-back pipeline, one row per cycle:

* R: read ``acc[r]`` (through the arithmetic unit's port) and ``bias[bias_base + r]``;
* F: ``round_shift(acc, shift)`` with ``cfg.rounding``; clear ``acc[r]``;
* G: add bias, saturate (or wrap) to ``act_bits``, ReLU; write
  ``Act[1 - src_sel][dst_base + r]``.

``wb_busy`` rises the cycle after ``wb_go`` and falls after the last write: ``rows_local + 3``
cycles in all (``rows_local + 2`` with ``wb_busy`` high).

The rounding is split out in :func:`round_shift` and :func:`finalize_value` so it can be tested
on its own against :mod:`hw.arch.fixedpoint`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig, require_config
from hw.bus import (acc_port_signature, act_read_signature, act_write_signature,
                    bias_read_signature, host_write_signature)


def round_shift(m: Module, x, shift, cfg: EIEConfig):
    """Combinational ``hw.arch.fixedpoint.round_shift(x, shift, cfg.rounding)``.

    ``x`` is ``signed(acc_bits)``, ``shift`` unsigned; returns a ``signed(acc_bits + 1)`` signal
    (the ``half_up`` sum needs one more bit before the shift).
    """
    w = cfg.acc_bits + 1
    xw = Signal(signed(w))
    out = Signal(signed(w))
    m.d.comb += xw.eq(x)
    if cfg.rounding == "truncate":
        m.d.comb += out.eq(xw >> shift)
        return out
    # half an LSB of the result: 2**(shift-1), and 0 when shift == 0 (no rounding at all).
    # 2**shift is kept w + 2 bits wide (a shift by w + 2 or more gives 0 either way): shifting
    # a w + 1-bit one by the whole shift range made a 65-bit value, which Verilator computes
    # with multi-word arithmetic in every PE every cycle
    pow2 = Signal(w + 2)
    half = Signal(w + 1)
    m.d.comb += [pow2.eq(Const(1, 1) << shift), half.eq(pow2 >> 1)]
    if cfg.rounding == "half_up":
        m.d.comb += out.eq((xw + half) >> shift)
        return out
    # half_even: round up when the remainder is above half, or exactly half and q is odd
    q = Signal(signed(w))
    rem = Signal(w + 1)
    m.d.comb += [
        q.eq(xw >> shift),
        rem.eq(xw.as_unsigned() & (pow2 - 1)),
    ]
    up = (shift != 0) & ((rem > half) | ((rem == half) & q[0]))
    m.d.comb += out.eq(q + up)
    return out


def finalize_value(m: Module, rs, bias, relu, cfg: EIEConfig):
    """Combinational bias add, saturation (or wrap) to ``act_bits`` and ReLU.

    ``rs`` is the rounded accumulator, ``bias`` ``signed(act_bits)``; returns
    ``signed(act_bits)``.
    """
    s = Signal(signed(len(rs) + 1))
    y = Signal(signed(cfg.act_bits))
    m.d.comb += s.eq(rs + bias)
    if cfg.saturate:
        m.d.comb += y.eq(Mux(s > cfg.act_max, cfg.act_max, Mux(s < cfg.act_min, cfg.act_min, s)))
    else:
        m.d.comb += y.eq(s[:cfg.act_bits])
    out = Signal(signed(cfg.act_bits))
    m.d.comb += out.eq(Mux(relu & (y < 0), 0, y))
    return out


class ActRW(wiring.Component):
    """Activation memories Act0 / Act1, bias memory and the write-back sequencer.

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    src_sel, shift, relu, rows_local, bias_base, dst_base : In
        The pass parameters of the same names (:func:`hw.bus.layer_params_signature`); with the
        LSTM hardware also ``acc_base``: the write-back reads and clears ``acc_base + r``.
    wb_go, wb_busy :
        As the PE ports of the same names (docs/architecture.md section 7).
    act_rd : In(act_read_signature(cfg))
        Read of ``Act[act_rd.sel][act_rd.addr]`` (central unit or host); data the next cycle.
    acc : Out(acc_port_signature(cfg))
        The arithmetic unit's accumulator SRAM port, used during write-back.
    act_write : Out(1)
        Strobe: an activation was written back this cycle (performance counter).
    host : In(host_write_signature(("bias", "act")))
        Host writes: bias address ``host.addr`` (strobe ``we.bias``); activation
        ``sel * act_depth + address`` (strobe ``we.act``).
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        super().__init__({
            "src_sel": In(1),
            "shift": In(cfg.shift_bits),
            "relu": In(1),
            "rows_local": In(cfg.rows_local_bits),
            "bias_base": In(cfg.bias_addr_bits),
            "dst_base": In(cfg.act_addr_bits),
            **({"acc_base": In(cfg.act_addr_bits)} if cfg.lstm else {}),
            "wb_go": In(1),
            "wb_busy": Out(1),
            "act_rd": In(act_read_signature(cfg)),
            "acc": Out(acc_port_signature(cfg)),
            "act_write": Out(1),
            "host": In(host_write_signature(("bias", "act"))),
            # the LSTM hardware's element-wise unit: its bias reads and its writes of m_t
            # into Act[1 - src_sel] (it never runs beside the write-back)
            **({"ew_bias": In(bias_read_signature(cfg)), "ew_act": In(act_write_signature(cfg)),
                # the memory the element-wise unit's writes go to (latched at its start: the
                # pass running beside it may read another source)
                "ew_sel": In(1)} if cfg.lstm else {}),
        })
        self.act = [memory.Memory(shape=signed(cfg.act_bits), depth=cfg.act_depth, init=[])
                    for _ in range(2)]
        self.act0, self.act1 = self.act  # by their names in hw.arch.memories.pe_memories
        self.bias = memory.Memory(shape=signed(cfg.act_bits), depth=cfg.bias_depth, init=[])
        self._act_r = [a.read_port() for a in self.act]
        self._act_w = [a.write_port() for a in self.act]
        self._bias_r = self.bias.read_port()
        self._bias_w = self.bias.write_port()

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        aab = cfg.act_addr_bits
        m.submodules.act0, m.submodules.act1 = self.act
        m.submodules.bias = self.bias

        # ---- bias: host writes, write-back reads ----
        m.d.comb += [
            self._bias_w.addr.eq(self.host.addr),
            self._bias_w.data.eq(self.host.wdata),
            self._bias_w.en.eq(self.host.we.bias),
        ]

        # ---- central-unit / host read of Act[sel] ----
        rd_sel = Signal()  # which memory the data of the previous read strobe comes from
        with m.If(self.act_rd.en):
            m.d.sync += rd_sel.eq(self.act_rd.sel)
        for rp in self._act_r:
            m.d.comb += [rp.addr.eq(self.act_rd.addr), rp.en.eq(self.act_rd.en)]
        m.d.comb += self.act_rd.data.eq(
            Mux(rd_sel, self._act_r[1].data, self._act_r[0].data))

        # ---- write-back sequencer ----
        running = Signal()
        row = Signal(aab + 1)
        issue = running & (row < self.rows_local)
        with m.If(self.wb_go & ~self.wb_busy):
            m.d.sync += [running.eq(1), row.eq(0)]
        with m.Elif(running):
            m.d.sync += row.eq(row + 1)
            with m.If(row + 1 >= self.rows_local):
                m.d.sync += running.eq(0)
        bias_addr = Signal(cfg.bias_addr_bits)
        m.d.comb += [
            bias_addr.eq(self.bias_base + row),
            self._bias_r.addr.eq(bias_addr),
            self._bias_r.en.eq(issue),
            self.acc.rd_en.eq(issue),
            self.acc.rd_addr.eq(self.acc_base + row if cfg.lstm else row),
        ]
        if cfg.lstm:
            ew = self.ew_bias
            with m.If(ew.en):
                m.d.comb += [self._bias_r.addr.eq(ew.addr), self._bias_r.en.eq(1)]
            m.d.comb += ew.data.eq(self._bias_r.data)
        # stage F: round, clear the accumulator just read
        f_valid = Signal()
        f_row = Signal(aab)
        m.d.sync += [f_valid.eq(issue), f_row.eq(row)]
        rs = round_shift(m, self.acc.rd_data, self.shift, cfg)
        m.d.comb += [self.acc.clr_en.eq(f_valid),
                     self.acc.clr_addr.eq(self.acc_base + f_row if cfg.lstm else f_row)]
        g_valid = Signal()
        g_row = Signal(aab)
        g_rs = Signal.like(rs)
        g_bias = Signal(signed(cfg.act_bits))
        m.d.sync += [
            g_valid.eq(f_valid),
            g_row.eq(f_row),
            g_rs.eq(rs),
            g_bias.eq(self._bias_r.data),
        ]
        # stage G: bias, saturate, ReLU, write the destination memory at dst_base + row
        y = finalize_value(m, g_rs, g_bias, self.relu, cfg)
        dst_addr = Signal(aab)
        m.d.comb += dst_addr.eq(self.dst_base + g_row)
        m.d.comb += [
            self.act_write.eq(g_valid),
            self.wb_busy.eq(running | f_valid | g_valid),
        ]

        # ---- activation write ports: host, or write-back into Act[1 - src_sel] ----
        g_valid_w, dst_w, y_w = Signal(), Signal(aab), Signal(signed(cfg.act_bits))
        m.d.comb += [g_valid_w.eq(g_valid), dst_w.eq(dst_addr), y_w.eq(y)]
        host_hi = self.host.addr >= cfg.act_depth  # sel = 1 (act_depth need not be 2**n)
        host_a = Mux(host_hi, self.host.addr - cfg.act_depth, self.host.addr)
        dst_sel = Signal()  # the memory a write-back (or the element-wise unit) writes
        m.d.comb += dst_sel.eq(~self.src_sel)
        if cfg.lstm:  # m_t of the element-wise unit, into Act[ew_sel]
            with m.If(self.ew_act.en):
                m.d.comb += [g_valid_w.eq(1), dst_w.eq(self.ew_act.addr),
                             y_w.eq(self.ew_act.data), self.act_write.eq(1),
                             dst_sel.eq(self.ew_sel)]
        for i, wp in enumerate(self._act_w):
            wb_here = g_valid_w & (dst_sel == i)
            m.d.comb += [
                wp.addr.eq(Mux(wb_here, dst_w, host_a)),
                wp.data.eq(Mux(wb_here, y_w, self.host.wdata)),
                wp.en.eq(wb_here | (self.host.we.act & (host_hi == i))),
            ]
        return m
