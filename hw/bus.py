"""The buses between the units of the array, each one :class:`wiring.Signature` or layout.

Every signature is written from the side that drives the request (the host, the central unit,
the write-back sequencer); the unit that serves it declares the port ``In(...)`` of it.  A bus
therefore connects with ``wiring.connect(m, master.port, slave.port)``, a fan-out (one central
unit, ``n_pes`` PEs) with ``wiring.connect(m, ccu.port, *(pe.port for pe in pes))`` when every
member is driven by the master, and a forwarding PE port with
``wiring.connect(m, wiring.flipped(self.port), unit.port)``.

Every width comes from :class:`hw.arch.config.EIEConfig` and :mod:`hw.arch.regmap`.

* :func:`host_write_signature`: host writes (``we``, ``addr``, ``wdata``), one strobe or a
  struct of named strobes sharing address and data;
* :func:`acc_port_signature`: the write-back's read / clear port of the accumulator SRAM
  (activation read/write unit -> arithmetic unit);
* :func:`layer_params_signature`: the current layer's parameters (central unit -> PEs);
* :func:`broadcast_signature`: the broadcast of one non-zero ``(j, a_j)`` (central unit ->
  activation queues), a :class:`stream.Signature` of :func:`queue_entry_layout`;
* :func:`act_read_signature`: a read of the source activation memory (central unit or host ->
  activation read/write unit);
* :func:`descriptor_layout`: one layer descriptor, the field list the compiler writes;
* :func:`bias_read_signature`: a read of the bias memory (element-wise unit -> activation
  read/write unit);
* :func:`act_write_signature`: a write of one activation (element-wise unit -> activation
  read/write unit);
* :func:`ew_params_signature`: the parameters of one element-wise stage (sequencer ->
  element-wise unit).
"""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arch import regmap
from hw.arch.config import EIEConfig

#: the PE memories the host writes one at a time (``host_space`` SPMAT .. CODEBOOK)
PE_HOST_STROBES = ("spmat", "ptr", "bias", "act", "codebook")


def pe_host_strobes(cfg: EIEConfig) -> tuple[str, ...]:
    """The PE memories the host writes: :data:`PE_HOST_STROBES`, and with the LSTM hardware
    (``cfg.lstm``) the element-wise unit's peephole memory (``peep``)."""
    return PE_HOST_STROBES + (("peep",) if cfg.lstm else ())


def host_write_signature(strobes=None) -> wiring.Signature:
    """Host write port: ``we`` strobe(s), ``addr`` and ``wdata`` (the host's widths).

    Parameters
    ----------
    strobes : sequence of str, optional
        None: ``we`` is one bit.  Otherwise ``we`` is a :class:`data.StructLayout` with one
        1-bit strobe per name, all sharing ``addr`` and ``wdata`` (at most one is high).

    Returns
    -------
    wiring.Signature
        Members ``we``, ``addr`` (``HOST_ADDR_BITS``), ``wdata`` (``HOST_DATA_BITS``), all
        ``Out`` (driven by the host).
    """
    we = 1 if strobes is None else data.StructLayout({name: 1 for name in strobes})
    return wiring.Signature({
        "we": Out(we),
        "addr": Out(regmap.HOST_ADDR_BITS),
        "wdata": Out(regmap.HOST_DATA_BITS),
    })


def acc_port_signature(cfg: EIEConfig) -> wiring.Signature:
    """Write-back port of the accumulator SRAM, as the write-back sequencer drives it.

    Members: ``rd_en`` / ``rd_addr`` (read accumulator ``rd_addr``; ``rd_data`` holds it the
    next cycle), ``rd_data`` (``In``, ``signed(acc_bits)``), ``clr_en`` / ``clr_addr`` (clear
    accumulator ``clr_addr`` to 0).
    """
    aab = cfg.act_addr_bits
    return wiring.Signature({
        "rd_en": Out(1),
        "rd_addr": Out(aab),
        "rd_data": In(signed(cfg.acc_bits)),
        "clr_en": Out(1),
        "clr_addr": Out(aab),
    })


def layer_params_signature(cfg: EIEConfig) -> wiring.Signature:
    """The current layer's parameters, common to every PE and stable during a layer.

    Members (all ``Out``, driven by the central unit): ``ptr_base``, ``bias_base``, ``shift``,
    ``relu``, ``cb_slot`` (codebook slot), ``src_sel`` (the source activation memory; the other
    one is the destination) and ``dst_base`` (first destination word): descriptor fields of
    :data:`hw.arch.regmap.DESCRIPTOR_FIELDS`; ``rows_local`` (``ceil(out_len / n_pes)``);
    with the LSTM hardware (``cfg.lstm``) ``acc_base`` (the accumulator of local row 0, set by
    the LSTM sequencer).
    """
    widths = regmap.descriptor_widths(cfg)
    return wiring.Signature({
        "ptr_base": Out(widths["ptr_base"]),
        "bias_base": Out(widths["bias_base"]),
        "shift": Out(widths["shift"]),
        "relu": Out(widths["relu"]),
        "rows_local": Out(cfg.rows_local_bits),
        "cb_slot": Out(widths["cb_slot"]),
        "src_sel": Out(widths["src_sel"]),
        "dst_base": Out(widths["dst_base"]),
        # the accumulator of the pass's local row 0 (the LSTM hardware's banks; without it
        # there is no such member: rows start at accumulator 0)
        **({"acc_base": Out(cfg.act_addr_bits)} if cfg.lstm else {}),
    })


def queue_entry_layout(cfg: EIEConfig) -> data.StructLayout:
    """One broadcast / activation-queue element: column index ``j`` and activation ``a_j``."""
    return data.StructLayout({"col": cfg.col_bits, "act": signed(cfg.act_bits)})


def broadcast_signature(cfg: EIEConfig) -> stream.Signature:
    """Broadcast of one non-zero ``(j, a_j)``: a stream of :func:`queue_entry_layout`.

    ``ready`` is "not full" of the activation queue (of every queue, at the central unit).
    """
    return stream.Signature(queue_entry_layout(cfg))


def act_read_signature(cfg: EIEConfig, lanes=None) -> wiring.Signature:
    """Read port of the source activation memories, as the reader drives it.

    Parameters
    ----------
    cfg : EIEConfig
    lanes : int, optional
        None: ``data`` is one activation.  Otherwise ``data`` is an array of ``lanes``
        activations, element ``k`` from PE ``k`` (the central unit's group read).

    Returns
    -------
    wiring.Signature
        ``en``, ``sel`` (which of Act0 / Act1), ``addr`` (all ``Out``) and ``data`` (``In``,
        valid the cycle after ``en``).
    """
    act = signed(cfg.act_bits)
    return wiring.Signature({
        "en": Out(1),
        "sel": Out(1),
        "addr": Out(cfg.act_addr_bits),
        "data": In(act if lanes is None else data.ArrayLayout(act, lanes)),
    })


def descriptor_layout(cfg: EIEConfig) -> data.StructLayout:
    """One layer descriptor: the fields of :data:`hw.arch.regmap.DESCRIPTOR_FIELDS`, in order,
    with the register widths of :func:`hw.arch.regmap.descriptor_widths`."""
    widths = regmap.descriptor_widths(cfg)
    return data.StructLayout({name: widths[name] for name in regmap.DESCRIPTOR_FIELDS})


def sequence_members(cfg: EIEConfig) -> dict:
    """The layer-sequence control ports, the same on ``eie_top`` and the CCU: ``n_layers``,
    ``start``, ``single_step``, ``resume`` in; ``busy``, ``layer_done``, ``done`` out
    (docs/architecture.md section 5)."""
    return {
        "n_layers": In(cfg.layer_index_bits + 1),
        "start": In(1),
        "single_step": In(1),
        "resume": In(1),
        "busy": Out(1),
        "layer_done": Out(1),
        "done": Out(1),
    }


def bias_read_signature(cfg: EIEConfig) -> wiring.Signature:
    """Read port of the bias memory, as the reader drives it: ``en``, ``addr`` (``Out``) and
    ``data`` (``In``, ``signed(act_bits)``, valid the cycle after ``en``)."""
    return wiring.Signature({
        "en": Out(1),
        "addr": Out(cfg.bias_addr_bits),
        "data": In(signed(cfg.act_bits)),
    })


def act_write_signature(cfg: EIEConfig) -> wiring.Signature:
    """Write of one activation, as the writer drives it: ``en``, ``addr``, ``data``
    (``signed(act_bits)``), all ``Out``; which of the two activation memories it goes to is
    the receiver's choice."""
    return wiring.Signature({
        "en": Out(1),
        "addr": Out(cfg.act_addr_bits),
        "data": Out(signed(cfg.act_bits)),
    })


def ew_params_signature(cfg: EIEConfig) -> wiring.Signature:
    """The parameters of one element-wise stage of an LSTM frame (:mod:`hw.ew_unit`), all
    ``Out`` (driven by the sequencer), latched by the unit at its ``start``: ``cells`` (the
    PE's cells ``C = cells_pad / N``, ``0 .. ew_cells_max``), ``bank_base`` (accumulator of
    gate i of local cell 0), ``bias_base`` (its bias word), ``shift`` (the gates' codebook
    fraction), ``dst_base`` (activation word of ``m`` of local cell 0) and ``peephole``."""
    return wiring.Signature({
        "cells": Out(cfg.ew_cells_max.bit_length()),
        "bank_base": Out(cfg.act_addr_bits),
        "bias_base": Out(cfg.bias_addr_bits),
        "shift": Out(cfg.shift_bits),
        "dst_base": Out(cfg.act_addr_bits),
        "peephole": Out(1),
    })
