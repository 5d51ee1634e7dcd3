"""The bus signatures of hw/bus.py: members, directions and widths from hw.arch."""

from __future__ import annotations

import pytest
from amaranth.hdl import Shape
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from hw.arch import regmap
from hw.arch.config import PRESETS
from hw.bus import (PE_HOST_STROBES, acc_port_signature, act_read_signature,
                    act_write_signature, bias_read_signature, broadcast_signature,
                    descriptor_layout, ew_params_signature, host_write_signature,
                    layer_params_signature, queue_entry_layout)


def widths(sig):
    return {name: (m.flow, Shape.cast(m.shape).width) for name, m in sig.members.items()}


def test_host_write_signature_has_the_register_map_widths():
    assert widths(host_write_signature()) == {
        "we": (Out, 1),
        "addr": (Out, regmap.HOST_ADDR_BITS),
        "wdata": (Out, regmap.HOST_DATA_BITS),
    }
    sig = host_write_signature(PE_HOST_STROBES)
    we = sig.members["we"].shape
    assert isinstance(we, data.StructLayout)
    assert tuple(we.members) == PE_HOST_STROBES
    assert all(Shape.cast(s).width == 1 for s in we.members.values())
    assert host_write_signature() == host_write_signature()


@pytest.mark.parametrize("name", ["tiny", "eie64", "pe1", "ese"])
def test_bus_widths_follow_config(name):
    cfg = PRESETS[name]
    assert widths(acc_port_signature(cfg)) == {
        "rd_en": (Out, 1), "rd_addr": (Out, cfg.act_addr_bits),
        "rd_data": (In, cfg.acc_bits), "clr_en": (Out, 1), "clr_addr": (Out, cfg.act_addr_bits),
    }
    dw = regmap.descriptor_widths(cfg)
    assert widths(layer_params_signature(cfg)) == {
        "ptr_base": (Out, dw["ptr_base"]), "bias_base": (Out, dw["bias_base"]),
        "shift": (Out, dw["shift"]), "relu": (Out, 1),
        "rows_local": (Out, cfg.rows_local_bits), "cb_slot": (Out, cfg.layer_index_bits),
        "src_sel": (Out, 1), "dst_base": (Out, cfg.act_addr_bits),
        **({"acc_base": (Out, cfg.act_addr_bits)} if cfg.lstm else {}),
    }
    entry = queue_entry_layout(cfg)
    assert entry.size == cfg.queue_entry_bits
    assert Shape.cast(entry.members["col"]).width == cfg.col_bits
    assert Shape.cast(entry.members["act"]).signed
    assert broadcast_signature(cfg) == stream.Signature(entry)
    one = act_read_signature(cfg)
    assert widths(one) == {"en": (Out, 1), "sel": (Out, 1), "addr": (Out, cfg.act_addr_bits),
                           "data": (In, cfg.act_bits)}
    group = act_read_signature(cfg, cfg.n_pes).members["data"].shape
    assert group == data.ArrayLayout(Shape.cast(one.members["data"].shape), cfg.n_pes)


@pytest.mark.parametrize("name", ["tiny", "eie256"])
def test_descriptor_layout_fields_are_regmap_descriptor_widths(name):
    cfg = PRESETS[name]
    layout = descriptor_layout(cfg)
    assert tuple(layout.members) == regmap.DESCRIPTOR_FIELDS
    assert {f: Shape.cast(s).width for f, s in layout.members.items()} == \
        regmap.descriptor_widths(cfg)


@pytest.mark.parametrize("name", ["tiny", "ese", "eie"])
def test_element_wise_buses_follow_config(name):
    cfg = PRESETS[name]
    assert widths(bias_read_signature(cfg)) == {
        "en": (Out, 1), "addr": (Out, cfg.bias_addr_bits), "data": (In, cfg.act_bits)}
    assert Shape.cast(bias_read_signature(cfg).members["data"].shape).signed
    assert widths(act_write_signature(cfg)) == {
        "en": (Out, 1), "addr": (Out, cfg.act_addr_bits), "data": (Out, cfg.act_bits)}
    assert widths(ew_params_signature(cfg)) == {
        "cells": (Out, cfg.ew_cells_max.bit_length()), "bank_base": (Out, cfg.act_addr_bits),
        "bias_base": (Out, cfg.bias_addr_bits), "shift": (Out, cfg.shift_bits),
        "dst_base": (Out, cfg.act_addr_bits), "peephole": (Out, 1)}
    assert cfg.ew_cells_max == cfg.acc_words // 8
