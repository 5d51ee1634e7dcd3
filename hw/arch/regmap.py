"""The register map of ``eie_top``: what the host writes where, and the hardware counters.

Written once here and read by the gateware (``hw/top.py``, ``hw/ccu.py``, ``hw/pe.py``), the
cocotb bench, the compiler's layout, the cycle model and the tests.  docs/architecture.md
section 5 describes the same map in prose.

Host writes: ``host_space`` (:data:`HOST_SPACE_BITS` wide) picks the memory, ``host_addr``
(:data:`HOST_ADDR_BITS`) the word, ``host_wdata`` (:data:`HOST_DATA_BITS`, low bits used) the
value.  Layer descriptors live in the LAYER space at ``slot * DESCRIPTOR_STRIDE + field``.
Counters: ``cnt_id`` (:func:`cnt_id_bits`) selects per-PE counter 0..10 of PE ``cnt_pe``, or for
:data:`CNT_LAYER_CYCLES` the cycles of layer slot ``cnt_pe``, or, with the LSTM hardware, the
element-wise unit's counters from :data:`EW_COUNTER_BASE` (16..20); every counter is
:data:`COUNTER_BITS` wide.
"""

from __future__ import annotations

from enum import IntEnum

#: host interface widths
HOST_SPACE_BITS = 3
HOST_ADDR_BITS = 32
HOST_DATA_BITS = 64

#: the host interface's timing (docs/architecture.md section 5).  Every input of ``eie_top``
#: but ``clk`` passes :data:`INPUT_STAGES` registers before it reaches the array, ``rst``
#: included (the array leaves reset that many cycles after ``rst`` falls): the host drives a
#: port in one cycle and the array acts on it in the next.  The registers take the 64-way
#: fan-out of the host buses off the timing paths (and, in simulation, keep the array's
#: next-state logic out of Verilator's input-combinational region, which is evaluated at
#: every change of an input).  Writes still go one per clock.
INPUT_STAGES = 1
#: rising edges from a read request (``host_re`` high at an edge) until its data is on
#: ``host_rdata``: the input stage, then the activation memory's registered read
HOST_READ_LATENCY = INPUT_STAGES + 1
#: rising edges from a counter selection (``cnt_pe``, ``cnt_id`` held at an edge) until its
#: value is on ``cnt_value`` (the counter multiplexer is combinational behind the input stage)
COUNTER_READ_LATENCY = INPUT_STAGES


class Space(IntEnum):
    """``host_space`` values: which memory a host write goes to."""

    SPMAT = 0     #: PE ``host_pe``: Spmat word ``host_addr``
    PTR = 1       #: PE ``host_pe``: pointer ``g = host_addr`` (bank ``g & 1``, address ``g >> 1``)
    BIAS = 2      #: PE ``host_pe``: bias word ``host_addr``
    ACT = 3       #: PE ``host_pe``: activation ``sel * act_depth + address``
    CODEBOOK = 4  #: every PE: codebook word ``slot * codebook_size + v``
    LAYER = 5     #: the central unit: descriptor field ``slot * DESCRIPTOR_STRIDE + field``
    PEEP = 6      #: PE ``host_pe`` (LSTM hardware only): peephole word ``host_addr``
    LSTM = 7      #: the central unit (LSTM hardware only): LSTM program field ``host_addr``


#: layer-descriptor fields, in field-number order (docs/architecture.md section 3).  A
#: descriptor is one *pass*: a block of a layer's rows (an output batch of at most
#: ``acc_words`` rows per PE) and columns (a column batch whose pointers fit the pointer SRAM):
#:
#: * ``in_len`` columns of the pass, read from source group ``col_group`` on (its first column
#:   is ``col_group * n_pes`` of the layer's input; the broadcast ``j`` counts from there);
#: * ``out_len`` rows (``rows_local = ceil(out_len / n_pes)`` accumulators per PE), written back
#:   to destination words ``dst_base ..`` with biases ``bias_base ..``;
#: * ``ptr_base``, ``shift``, ``relu``; ``src_sel`` (Act0 / Act1 is the source, the other the
#:   destination), ``cb_slot`` (the layer's codebook);
#: * ``keep``: 1 ends the pass after the drain, without write-back, and keeps the accumulators
#:   for the next column batch of the same rows.
DESCRIPTOR_FIELDS = ("in_len", "out_len", "ptr_base", "bias_base", "shift", "relu", "src_sel",
                     "cb_slot", "col_group", "dst_base", "keep")
#: field number of each descriptor field
FIELD = {name: i for i, name in enumerate(DESCRIPTOR_FIELDS)}
#: LAYER-space words per descriptor slot (a power of two: slot and field are bit fields)
DESCRIPTOR_STRIDE = 16
DESCRIPTOR_FIELD_BITS = DESCRIPTOR_STRIDE.bit_length() - 1


def descriptor_widths(cfg) -> dict:
    """Register width of each descriptor field of ``cfg`` (an :class:`EIEConfig`), by name."""
    return {
        "in_len": cfg.len_bits,
        "out_len": cfg.len_bits,
        "ptr_base": cfg.ptr_index_bits,
        "bias_base": cfg.bias_addr_bits,
        "shift": cfg.shift_bits,
        "relu": 1,
        "src_sel": 1,
        "cb_slot": cfg.layer_index_bits,
        "col_group": cfg.act_addr_bits,
        "dst_base": cfg.act_addr_bits,
        "keep": 1,
    }


#: the LSTM program of the central unit (LSTM hardware only, host space LSTM, one field per
#: address; docs/architecture.md 4b).  ``frames`` = T (0: the FC sequence of the descriptor
#: slots, as without the LSTM hardware); ``x_slot``, ``y_slot``, ``p_slot``: the descriptor
#: slots of the gates' x part, y part and the projection; the x part of frame ``t`` reads source
#: group ``x_group0 + t * x_stride`` (the frames are stored after the y region); the gates of
#: frame ``t`` accumulate in bank ``t mod 2`` (``acc_base = (t mod 2) * acc_bank_words``), the
#: projection at ``proj_acc_base``; the element-wise stage: ``ew_cells`` (C), ``ew_bias_base``,
#: ``ew_shift``, ``ew_dst`` (word of m of local cell 0 in the projection's source) and
#: ``ew_peephole``; the FC layers that run on every frame (an LSTM that returns its sequence):
#: ``f_count`` descriptor slots from ``f_slot`` run after ``P(t)`` in every frame, their
#: accumulators from ``f_acc_base`` (0: no such layers); ``no_proj`` 1: an LSTM without a
#: projection (``m_t`` is ``y_t``: the element-wise stage writes it into the gates' source at
#: ``ew_dst``, there is no ``P(t)`` and ``p_slot`` is not used).
LSTM_FIELDS = ("frames", "x_slot", "y_slot", "p_slot", "x_group0", "x_stride",
               "proj_acc_base", "ew_cells", "ew_bias_base", "ew_shift", "ew_dst", "ew_peephole",
               "f_slot", "f_count", "f_acc_base", "no_proj")
#: field number (LSTM-space address) of each LSTM program field
LSTM_FIELD = {name: i for i, name in enumerate(LSTM_FIELDS)}


def lstm_widths(cfg) -> dict:
    """Register width of each LSTM program field of ``cfg``, by name."""
    return {"frames": 16, "x_slot": cfg.layer_index_bits, "y_slot": cfg.layer_index_bits,
            "p_slot": cfg.layer_index_bits, "x_group0": cfg.act_addr_bits,
            "x_stride": cfg.act_addr_bits, "proj_acc_base": cfg.act_addr_bits,
            "ew_cells": cfg.ew_cells_max.bit_length(), "ew_bias_base": cfg.bias_addr_bits,
            "ew_shift": cfg.shift_bits, "ew_dst": cfg.act_addr_bits, "ew_peephole": 1,
            "f_slot": cfg.layer_index_bits, "f_count": cfg.max_layers.bit_length(),
            "f_acc_base": cfg.act_addr_bits, "no_proj": 1}


def lstm_x_frames(n_in: int, n_rec: int, cfg) -> tuple[int, int, int]:
    """Where an LSTM's input frames lie in the gates' source bank, all of a sequence at once:
    the program's ``x_group0`` (after ``x_t``'s ``ceil(n_in / N)`` words and ``y_t``'s
    ``ceil(n_rec / N)``) and ``x_stride`` (``ceil(n_in / N)`` words a frame), and how many
    frames the bank's ``act_depth`` words hold."""
    stride = -(-int(n_in) // cfg.n_pes)
    group0 = stride + -(-int(n_rec) // cfg.n_pes)
    return group0, stride, max(0, (cfg.act_depth - group0) // stride)


def cell_read_base(cfg) -> int:
    """With the LSTM hardware, host reads (``host_raddr``) from this address on read the
    element-wise unit's cell state of PE ``host_pe``: local cell ``j`` at ``cell_read_base + j``
    (below it, ``sel * act_depth + address`` reads the activation memories)."""
    return 2 * cfg.act_depth


def host_read_bits(cfg) -> int:
    """Width of ``host_rdata`` (signed): ``act_bits``, or with the LSTM hardware the wider of
    ``act_bits`` and the cell state's ``cell_width``."""
    return max(cfg.act_bits, cfg.cell_width) if cfg.lstm else cfg.act_bits


def descriptor_addr(slot: int, field: str) -> int:
    """LAYER-space address of descriptor field ``field`` of slot ``slot``."""
    return slot * DESCRIPTOR_STRIDE + FIELD[field]


def descriptor_writes(layers) -> tuple[list[int], list[int]]:
    """Addresses and values of the LAYER-space writes that load ``layers`` into slots 0..

    ``layers`` are dicts with the :data:`DESCRIPTOR_FIELDS` (the manifest's pass table).
    """
    addrs, vals = [], []
    for slot, lay in enumerate(layers):
        for name in DESCRIPTOR_FIELDS:
            addrs.append(descriptor_addr(slot, name))
            vals.append(int(lay[name]))
    return addrs, vals


def reload_cycles(n_pes: int, words_per_pe: int) -> int:
    """Clock cycles the host interface takes to write ``words_per_pe`` words into each of
    ``n_pes`` PEs' memories (a segment's Spmat and pointer reload, docs/architecture.md
    section 2).

    The host interface moves one word per write (``host_wdata``, one memory word however
    narrow, to one PE: ``host_pe``) and one write per clock, as the cocotb bench writes.
    """
    return int(n_pes) * int(words_per_pe)


#: per-PE counters, in counter-id order (hw/pe.py counts them; docs/architecture.md section 5)
COUNTER_NAMES = ("entries", "busy", "starved", "full", "ptr_reads", "spmat_reads", "acc_reads",
                 "acc_writes", "act_writes", "src_reads", "pushes")
#: counter id of each per-PE counter
COUNTER_ID = {name: i for i, name in enumerate(COUNTER_NAMES)}
N_COUNTERS = len(COUNTER_NAMES)
#: ``cnt_id`` of the per-layer cycle counter (``cnt_pe`` = the layer slot)
CNT_LAYER_CYCLES = 15
#: ``cnt_id`` width without the LSTM hardware (:func:`cnt_id_bits`)
CNT_ID_BITS = 4
COUNTER_BITS = 32
#: the element-wise unit's per-PE counters (LSTM hardware only; hw/ew_unit.py's strobes, counted
#: by hw/pe.py): cells done (``m`` written), sigmoid / tanh table reads, multiplies, cell-state
#: reads and writes; counter ids from :data:`EW_COUNTER_BASE`
EW_COUNTER_NAMES = ("ew_cells", "lut_reads", "ew_muls", "cell_reads", "cell_writes")
EW_COUNTER_BASE = 16


def counter_names(cfg) -> tuple:
    """The per-PE counters of ``cfg``, in the order of the PE's counter array: the FC counters
    (:data:`COUNTER_NAMES`, ids 0..), then with the LSTM hardware :data:`EW_COUNTER_NAMES`."""
    return COUNTER_NAMES + (EW_COUNTER_NAMES if cfg.lstm else ())


def counter_ids(cfg) -> dict:
    """``cnt_id`` of every per-PE counter of ``cfg``, by name."""
    ids = dict(COUNTER_ID)
    if cfg.lstm:
        ids.update({n: EW_COUNTER_BASE + i for i, n in enumerate(EW_COUNTER_NAMES)})
    return ids


def cnt_id_bits(cfg) -> int:
    """Width of ``cnt_id``: :data:`CNT_ID_BITS`, one more with the LSTM hardware."""
    return CNT_ID_BITS + (1 if cfg.lstm else 0)


assert N_COUNTERS <= CNT_LAYER_CYCLES < 1 << CNT_ID_BITS <= EW_COUNTER_BASE
assert EW_COUNTER_BASE + len(EW_COUNTER_NAMES) <= 1 << (CNT_ID_BITS + 1)
assert max(Space) < 1 << HOST_SPACE_BITS
assert len(DESCRIPTOR_FIELDS) <= DESCRIPTOR_STRIDE
