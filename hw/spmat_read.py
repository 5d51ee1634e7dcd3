"""Sparse-matrix read unit: a column's entry range -> one ``(v, z)`` entry per cycle.

The Spmat SRAM is ``spmat_word_bits`` wide and holds ``entries_per_word`` entries per word
(entry slot ``s`` at bits ``[s * entry_bits, (s + 1) * entry_bits)``).  Reading it once per entry
would waste most of its energy, so (as in EIE) a word is read only when the entry address moves
to a different word than the one the SRAM's output register already holds; a column that starts
in the word where the previous column ended reuses it.

Two stages:

* address generator (register ``cur``): the current column's word address, slot, remaining
  count and activation.  It emits one entry address per cycle and asserts the SRAM read enable
  only on a word change.  On the cycle it emits a column's last entry it already loads the next
  column from the pointer read unit, so consecutive columns stream without a bubble;
* select (register ``s``): the SRAM's output word is valid; the entry at ``s.slot`` is cut out
  and handed to the arithmetic unit together with the activation and a first-of-column flag.

A word read issued in cycle ``t`` is used in ``t + 1`` by construction, i.e. the next word is
fetched exactly one cycle ahead and the steady state is one entry per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig, require_config
from hw.bus import host_write_signature
from hw.ptr_read import column_layout


def entry_layout(cfg: EIEConfig) -> data.StructLayout:
    """One sparse-matrix entry as the arithmetic unit receives it."""
    return data.StructLayout({
        "v": cfg.weight_index_bits,
        "z": cfg.rel_index_bits,
        "act": signed(cfg.act_bits),
        "first": 1,  # first entry of its column: the local row restarts at z
    })


class SpmatRead(wiring.Component):
    """Sparse-matrix read unit with the Spmat SRAM.

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    col : In(stream.Signature(column_layout(cfg)))
        Non-empty columns from the pointer read unit; ``col.ready`` is high while the current
        column has at most one entry left.
    entry : Out(stream.Signature(entry_layout(cfg), always_ready=True))
        Entries, at most one per cycle; the arithmetic unit never stalls.
    busy : Out(1)
        A column is being streamed or an entry is in the select stage.
    word_read : Out(1)
        Strobe: a Spmat word was read this cycle (performance counter).
    host : In(host_write_signature())
        Host write of Spmat word ``host.addr``.
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        super().__init__({
            "col": In(stream.Signature(column_layout(cfg))),
            "entry": Out(stream.Signature(entry_layout(cfg), always_ready=True)),
            "busy": Out(1),
            "word_read": Out(1),
            "host": In(host_write_signature()),
        })
        self.spmat = memory.Memory(shape=cfg.spmat_word_bits, depth=cfg.spmat_depth, init=[])
        self._rd = self.spmat.read_port()
        self._wr = self.spmat.write_port()

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        epw = cfg.entries_per_word
        m.submodules.spmat = self.spmat
        rd, wr = self._rd, self._wr
        m.d.comb += [
            wr.addr.eq(self.host.addr),
            wr.data.eq(self.host.wdata),
            wr.en.eq(self.host.we),
        ]

        # ---- address generator ----
        word_bits = cfg.spmat_addr_bits + 1  # start may point one past the last word
        cur_word = Signal(word_bits)
        cur_slot = Signal(range(epw))
        cur_left = Signal(cfg.ptr_bits)
        cur_act = Signal(signed(cfg.act_bits))
        cur_first = Signal()
        emit = cur_left != 0

        start = self.col.payload.start
        if epw & (epw - 1) == 0:
            # power-of-two words: word and slot are bit fields of the entry address
            sb = epw.bit_length() - 1
            start_word, start_slot = start[sb:], start[:sb]
        else:
            # once per column, not per entry; a constant divisor (synthesis: multiply-shift)
            start_word, start_slot = start // epw, start % epw

        load = self.col.valid & (cur_left <= 1)
        m.d.comb += self.col.ready.eq(cur_left <= 1)
        with m.If(load):
            m.d.sync += [
                cur_word.eq(start_word),
                cur_slot.eq(start_slot),
                cur_left.eq(self.col.payload.count),
                cur_act.eq(self.col.payload.act),
                cur_first.eq(1),
            ]
        with m.Elif(emit):
            m.d.sync += [cur_left.eq(cur_left - 1), cur_first.eq(0)]
            with m.If(cur_slot == epw - 1):
                m.d.sync += [cur_slot.eq(0), cur_word.eq(cur_word + 1)]
            with m.Else():
                m.d.sync += cur_slot.eq(cur_slot + 1)

        # The SRAM output register holds the last word read; re-read only on a word change.
        # A host write may change that word, so it invalidates the held copy.
        held_word = Signal(word_bits)
        held_valid = Signal()
        read = emit & (~held_valid | (held_word != cur_word))
        m.d.comb += [
            rd.addr.eq(cur_word),
            rd.en.eq(read),
            self.word_read.eq(read),
        ]
        with m.If(self.host.we):
            m.d.sync += held_valid.eq(0)
        with m.Elif(read):
            m.d.sync += [held_valid.eq(1), held_word.eq(cur_word)]

        # ---- select stage ----
        s_valid = Signal()
        s_slot = Signal(range(epw))
        s_act = Signal(signed(cfg.act_bits))
        s_first = Signal()
        m.d.sync += [
            s_valid.eq(emit),
            s_slot.eq(cur_slot),
            s_act.eq(cur_act),
            s_first.eq(cur_first),
        ]
        raw = Signal(cfg.entry_bits)
        m.d.comb += [
            raw.eq(rd.data.word_select(s_slot, cfg.entry_bits)),
            self.entry.valid.eq(s_valid),
            self.entry.payload.v.eq(raw[:cfg.weight_index_bits]),
            self.entry.payload.z.eq(raw[cfg.weight_index_bits:]),
            self.entry.payload.act.eq(s_act),
            self.entry.payload.first.eq(s_first),
            self.busy.eq(emit | s_valid),
        ]
        return m
