"""Central control unit (CCU): layer sequencing and the non-zero activation broadcast.

EIE's central control unit scans the source activations for non-zeros with a tree of
leading-non-zero detectors and broadcasts each non-zero ``(j, a_j)`` to the activation queue of
every PE (EIE section 2).  Here it also sequences the layers of a network from a
layer-descriptor table written by the host (docs/architecture.md sections 3, 5 and 6).

Per layer slot ``l = 0 .. n_layers - 1`` (cycle counts from the layer's first cycle):

* **SETUP** (1 cycle): the descriptor of slot ``l`` is latched into the registers that drive the
  PEs' layer ports (``ptr_base``, ``bias_base``, ``shift``, ``relu``, ``rows_local =
  ceil(out_len / N)``, ``cb_slot = l``, ``src_sel = l % 2``), and group 0 is read.
* **SCAN**: group ``m`` = elements ``j = m*N .. m*N + N - 1``, address ``m`` of every PE's source
  memory.  Two group buffers form a pipeline:

  - the *prefetch* slot holds the group read in the previous cycle (the PEs' read ports deliver it
    one cycle after ``act_rd_en``; it is copied into a hold register so the CCU does not rely on
    the PEs keeping ``act_rd_data`` stable);
  - the *current* slot holds the mask of non-zeros still to broadcast, and their values.

  Each cycle the LNZD picks the lowest bit of the current mask; when every ``queue_ready`` is
  high that element is broadcast (``bc_valid``) and its bit cleared.  The prefetch group is
  masked (zeros and ``j >= in_len``) and either dropped at once when it has no non-zeros, or
  moved into the current slot in the cycle the current slot runs empty; a new group is read
  whenever the prefetch slot is free or being emptied.
* **DRAIN**: from the cycle after the last broadcast until every PE reports ``idle``; in that
  cycle ``wb_go`` is pulsed.
* **WB**: until no PE is ``wb_busy`` (the cycle where all are low ends the layer).
* **PAUSE** (single-step only): ``layer_done`` high until ``resume``; then SETUP of the next slot.

Timing rules (all exact; see tests/hw/test_ccu.py):

* one broadcast per cycle while the queues are ready, in ascending ``j``; no bubble between
  groups when the next non-zero group is already in the prefetch slot;
* the reader inspects one group per cycle, in parallel with the broadcast.  An all-zero group is
  dropped in its inspection cycle.  After a group with ``c >= 1`` non-zeros, a run of ``z``
  all-zero groups therefore costs ``max(0, z - c + 1)`` broadcast-free cycles when a non-zero
  group follows, ``max(0, z - c)`` when the run ends the layer; each all-zero group before the
  first non-zero group of a layer costs one cycle (a layer without non-zeros scans its ``G``
  groups in ``G`` cycles);
* the first broadcast of a layer is in its 3rd cycle (SETUP, group 0 in the prefetch slot, first
  broadcast) when group 0 has a non-zero;
* a layer with ``B`` broadcasts takes ``2 + B + S + D + (rows_local + 3)`` cycles: SETUP and the
  first inspection, the broadcasts, ``S`` broadcast-free scan cycles (queue stalls and the
  all-zero-group costs above), the drain ``D`` (the DRAIN cycles, up to and including the one in
  which every PE is idle and ``wb_go`` is pulsed; 1 at best, about the PE pipeline depth after a
  broadcast) and the write-back (``rows_local + 2`` cycles of ``wb_busy`` and
  one cycle that sees them all low).  Layer cycles (counter 15) count exactly these; the next
  layer's SETUP follows at once (no cycle between layers), and ``done`` rises in the cycle after
  the last layer's final cycle.

``single_step``: after every layer but the last the CCU pauses with ``layer_done`` high until
``resume``; after the last layer it finishes (``done``) without pausing.  ``n_layers`` is latched
at ``start``; slots at and above ``max_layers`` are never run (the sequence ends there).
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig, bits_for
from hw.lnzd import LNZD, lnzd_nodes

#: LAYER-space field numbers (docs/architecture.md section 5: ``slot * 8 + field``)
FIELD_IN_LEN = 0
FIELD_OUT_LEN = 1
FIELD_PTR_BASE = 2
FIELD_BIAS_BASE = 3
FIELD_SHIFT = 4
FIELD_RELU = 5
FIELDS_PER_SLOT = 8
COUNTER_BITS = 32


def col_width(cfg: EIEConfig) -> int:
    """Width of a column index ``j`` on the broadcast bus (bits for ``cfg.max_vector``)."""
    return bits_for(cfg.max_vector)


def len_width(cfg: EIEConfig) -> int:
    """Width of a vector length ``1 .. cfg.max_vector`` (in_len / out_len)."""
    return cfg.max_vector.bit_length()


def descriptor_widths(cfg: EIEConfig) -> dict:
    """Register width of each descriptor field, by field number."""
    return {
        FIELD_IN_LEN: len_width(cfg),
        FIELD_OUT_LEN: len_width(cfg),
        FIELD_PTR_BASE: bits_for(cfg.ptr_depth),
        FIELD_BIAS_BASE: cfg.bias_addr_bits,
        FIELD_SHIFT: cfg.shift_bits,
        FIELD_RELU: 1,
    }


def ceil_div(value, n: int):
    """``ceil(value / n)`` for a constant ``n``: a shift when ``n`` is a power of two."""
    if n & (n - 1) == 0:
        return (value + (n - 1)) >> (n.bit_length() - 1)
    return (value + (n - 1)) // n


class CCU(wiring.Component):
    """Central control unit for ``cfg.n_pes`` PEs (see the module docstring for timing).

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    desc_we, desc_addr, desc_wdata : In
        Host write of descriptor field ``desc_addr % 8`` of slot ``desc_addr // 8``; writes to
        slots ``>= max_layers`` or fields ``> 5`` are ignored.
    n_layers, start, single_step, resume : In
        Sequence control (docs/architecture.md section 5).
    busy, layer_done, done : Out(1)
        Running; paused after a layer in single-step mode; sequence finished (cleared by
        ``start``).
    layer : Out(layer_index_bits)
        Slot of the layer being run (or about to run after a pause).
    ptr_base, bias_base, shift, relu, rows_local, cb_slot, src_sel : Out
        The current layer's parameters, common to every PE.
    bc_valid, bc_col, bc_act : Out
        Broadcast of one non-zero ``(j, a_j)`` to every PE's activation queue.
    queue_ready, idle, wb_busy : In(n_pes)
        Bit ``k`` from PE ``k``.
    wb_go : Out(1)
        Write-back pulse to every PE.
    act_rd_en, act_rd_sel, act_rd_addr : Out
        Source-group read, common to every PE.
    act_rd_data : In(ArrayLayout(signed(act_bits), n_pes))
        Element ``k`` from PE ``k``, one cycle after ``act_rd_en``.
    computing, bc_pending, cnt_clear : Out(1)
        For the PE counters: compute phase (SCAN and DRAIN), a non-zero waiting for the queues,
        clear (pulsed by an accepted ``start``).
    layer_cycles : Out(ArrayLayout(32, max_layers))
        Counter 15 per layer slot; cleared by ``start``.
    lnzd_nodes : int
        Nodes of the LNZD tree (:func:`hw.lnzd.lnzd_nodes`), for the energy model.
    """

    def __init__(self, cfg: EIEConfig):
        if not isinstance(cfg, EIEConfig):
            raise TypeError(f"cfg must be an EIEConfig, not {cfg!r}")
        self.cfg = cfg
        n = cfg.n_pes
        widths = descriptor_widths(cfg)
        super().__init__({
            "desc_we": In(1),
            "desc_addr": In(32),
            "desc_wdata": In(64),
            "n_layers": In(cfg.layer_index_bits + 1),
            "start": In(1),
            "single_step": In(1),
            "resume": In(1),
            "busy": Out(1),
            "layer_done": Out(1),
            "done": Out(1),
            "layer": Out(cfg.layer_index_bits),
            "ptr_base": Out(widths[FIELD_PTR_BASE]),
            "bias_base": Out(widths[FIELD_BIAS_BASE]),
            "shift": Out(widths[FIELD_SHIFT]),
            "relu": Out(1),
            "rows_local": Out(cfg.act_addr_bits + 1),
            "cb_slot": Out(cfg.layer_index_bits),
            "src_sel": Out(1),
            "bc_valid": Out(1),
            "bc_col": Out(col_width(cfg)),
            "bc_act": Out(signed(cfg.act_bits)),
            "queue_ready": In(n),
            "idle": In(n),
            "wb_go": Out(1),
            "wb_busy": In(n),
            "act_rd_en": Out(1),
            "act_rd_sel": Out(1),
            "act_rd_addr": Out(cfg.act_addr_bits),
            "act_rd_data": In(data.ArrayLayout(signed(cfg.act_bits), n)),
            "computing": Out(1),
            "bc_pending": Out(1),
            "cnt_clear": Out(1),
            "layer_cycles": Out(data.ArrayLayout(COUNTER_BITS, cfg.max_layers)),
        })
        #: 4-input LNZD nodes of the detector tree (energy model: charged per broadcast)
        self.lnzd_nodes = lnzd_nodes(n)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.n_pes
        m.submodules.lnzd = lnzd = LNZD(n)
        widths = descriptor_widths(cfg)
        lw = len_width(cfg)
        jw = lw + 1  # a group base runs up to max_vector (one past the last group)

        # ---- layer-descriptor table: registers, written by the host ----
        table = {f: Array(Signal(w, name=f"desc{s}_f{f}") for s in range(cfg.max_layers))
                 for f, w in widths.items()}
        slot = self.desc_addr[3:]
        field = self.desc_addr[:3]
        with m.If(self.desc_we & (slot < cfg.max_layers)):
            with m.Switch(field):
                for f, regs in table.items():
                    with m.Case(f):
                        m.d.sync += regs[slot[:cfg.layer_index_bits]].eq(self.desc_wdata)

        # ---- the current layer's registers (drive all PEs; stable during a layer) ----
        layer = Signal(cfg.layer_index_bits + 1)  # one more bit: n_layers may be max_layers
        n_layers = Signal.like(self.n_layers)
        in_len = Signal(lw)
        m.d.comb += [
            self.layer.eq(layer),
            self.cb_slot.eq(layer),
            self.src_sel.eq(layer[0]),
        ]
        desc = {f: table[f][layer[:cfg.layer_index_bits]] for f in widths}

        # ---- group pipeline: read -> prefetch slot -> current slot -> LNZD -> broadcast ----
        rd_addr = Signal(cfg.act_addr_bits + 1)  # next group to read
        rd_base = Signal(jw)  # its first j
        pf_valid = Signal()  # prefetch slot holds a group ...
        pf_fresh = Signal()  # ... read in the previous cycle (data on act_rd_data)
        pf_base = Signal(jw)
        pf_hold = Array(Signal(signed(cfg.act_bits), name=f"pf_hold{k}") for k in range(n))
        cur_mask = Signal(n)
        cur_vals = Array(Signal(signed(cfg.act_bits), name=f"cur_val{k}") for k in range(n))
        cur_base = Signal(jw)

        pf_vals = [Signal(signed(cfg.act_bits), name=f"pf_val{k}") for k in range(n)]
        pf_mask = Signal(n)
        pf_left = Signal(lw + 1)  # elements of the prefetch group below in_len
        m.d.comb += pf_left.eq(in_len - pf_base)
        for k in range(n):
            m.d.comb += pf_vals[k].eq(Mux(pf_fresh, self.act_rd_data[k], pf_hold[k]))
            # j >= in_len: beyond the vector (the last group may be partial); a group is only
            # read while pf_base < in_len, so pf_left does not wrap
            m.d.comb += pf_mask[k].eq((pf_vals[k] != 0) & (pf_left > k))
            with m.If(pf_fresh):
                m.d.sync += pf_hold[k].eq(self.act_rd_data[k])
        pf_zero = pf_mask == 0

        all_ready = self.queue_ready.all()
        m.d.comb += lnzd.mask.eq(cur_mask)
        fire = Signal()
        cur_left = Signal(n)
        cur_empty_next = Signal()
        consume = Signal()
        load = Signal()
        more = Signal()
        issue = Signal()
        scanning = Signal()
        m.d.comb += [
            fire.eq(scanning & lnzd.valid & all_ready),
            cur_left.eq(cur_mask & ~(fire << lnzd.index)[:n]),
            cur_empty_next.eq(cur_left == 0),
            consume.eq(pf_valid & (pf_zero | cur_empty_next)),
            load.eq(consume & ~pf_zero),
            more.eq(rd_base < in_len),
            issue.eq(scanning & more & (~pf_valid | consume)),
            self.bc_valid.eq(fire),
            self.bc_col.eq(cur_base + lnzd.index),
            self.bc_act.eq(cur_vals[lnzd.index]),
            self.bc_pending.eq(scanning & lnzd.valid),
        ]
        with m.If(scanning):
            m.d.sync += cur_mask.eq(cur_left)
            with m.If(load):
                m.d.sync += [cur_mask.eq(pf_mask), cur_base.eq(pf_base)]
                m.d.sync += [cur_vals[k].eq(pf_vals[k]) for k in range(n)]
            with m.If(issue):
                m.d.sync += [pf_valid.eq(1), pf_base.eq(rd_base)]
            with m.Elif(consume):
                m.d.sync += pf_valid.eq(0)
        m.d.sync += pf_fresh.eq(issue)  # SETUP's first read overrides below

        # the group read: SCAN's reads, or group 0 in SETUP (overrides, see FSM)
        m.d.comb += [
            self.act_rd_en.eq(issue),
            self.act_rd_sel.eq(layer[0]),
            self.act_rd_addr.eq(rd_addr),
        ]
        with m.If(issue):
            m.d.sync += [rd_addr.eq(rd_addr + 1), rd_base.eq(rd_base + n)]

        # ---- sequencer ----
        all_idle = self.idle.all()
        any_wb_busy = self.wb_busy.any()
        accept_start = Signal()
        count = Signal()  # this cycle belongs to layer `layer` (counter 15)
        m.d.comb += accept_start.eq(self.start & ~self.busy)
        m.d.comb += self.cnt_clear.eq(accept_start)
        done = Signal()
        m.d.comb += self.done.eq(done)
        with m.If(accept_start):
            m.d.sync += [done.eq(0), layer.eq(0), n_layers.eq(self.n_layers)]
            m.d.sync += [c.eq(0) for c in self.layer_cycles]

        last = Signal()  # the layer just finished is the last one to run
        m.d.comb += last.eq((layer + 1 >= n_layers) | (layer + 1 >= cfg.max_layers))

        with m.FSM(name="ccu"):
            with m.State("IDLE"):
                with m.If(accept_start):
                    with m.If(self.n_layers == 0):
                        m.d.sync += done.eq(1)
                    with m.Else():
                        m.next = "SETUP"
            with m.State("SETUP"):
                # computing: group 0 is read here (counted as a source read; PEs wait)
                m.d.comb += [self.busy.eq(1), count.eq(1), self.computing.eq(1)]
                m.d.sync += [
                    self.ptr_base.eq(desc[FIELD_PTR_BASE]),
                    self.bias_base.eq(desc[FIELD_BIAS_BASE]),
                    self.shift.eq(desc[FIELD_SHIFT]),
                    self.relu.eq(desc[FIELD_RELU]),
                    self.rows_local.eq(ceil_div(desc[FIELD_OUT_LEN], n)),
                    in_len.eq(desc[FIELD_IN_LEN]),
                    cur_mask.eq(0),
                    pf_valid.eq(0),
                    rd_addr.eq(0),
                    rd_base.eq(0),
                ]
                # read group 0 now so that SCAN starts with it in the prefetch slot
                with m.If(desc[FIELD_IN_LEN] != 0):
                    m.d.comb += [self.act_rd_en.eq(1), self.act_rd_addr.eq(0)]
                    m.d.sync += [pf_valid.eq(1), pf_fresh.eq(1), pf_base.eq(0),
                                 rd_addr.eq(1), rd_base.eq(n)]
                m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += [self.busy.eq(1), count.eq(1), scanning.eq(1),
                             self.computing.eq(1)]
                with m.If(cur_empty_next & ~load & ~more & (~pf_valid | consume)):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [self.busy.eq(1), count.eq(1), self.computing.eq(1)]
                with m.If(all_idle):
                    m.d.comb += self.wb_go.eq(1)
                    m.next = "WB"
            with m.State("WB"):
                m.d.comb += [self.busy.eq(1), count.eq(1)]
                with m.If(~any_wb_busy):
                    m.d.sync += layer.eq(layer + 1)
                    with m.If(last):
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
                    with m.Elif(self.single_step):
                        m.next = "PAUSE"
                    with m.Else():
                        m.next = "SETUP"
            with m.State("PAUSE"):
                m.d.comb += [self.busy.eq(1), self.layer_done.eq(1)]
                with m.If(self.resume):
                    m.next = "SETUP"

        # ---- counter 15: cycles per layer slot ----
        for s in range(cfg.max_layers):
            with m.If(count & (layer == s)):
                m.d.sync += self.layer_cycles[s].eq(self.layer_cycles[s] + 1)
        return m

