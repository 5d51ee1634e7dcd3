"""Central control unit (CCU): layer sequencing and the non-zero activation broadcast.

EIE's central control unit scans the source activations for non-zeros with a tree of
leading-non-zero detectors and broadcasts each non-zero ``(j, a_j)`` to the activation queue of
every PE (EIE section 2).  Here it also sequences the layers of a network from a
layer-descriptor table written by the host (docs/architecture.md sections 3, 5 and 6).

Per layer slot ``l = 0 .. n_layers - 1`` (cycle counts from the layer's first cycle):

A slot holds one *pass* (:data:`hw.arch.regmap.DESCRIPTOR_FIELDS`): a whole layer, or one
output batch / column batch of it.

* **SETUP** (1 cycle): the descriptor of slot ``l`` (:class:`DescriptorTable`) is latched into
  the registers that drive the PEs' layer parameters (``params``: ``ptr_base``, ``bias_base``,
  ``dst_base``, ``shift``, ``relu``, ``rows_local = ceil(out_len / N)``; ``cb_slot`` and
  ``src_sel`` follow the descriptor directly), and group 0 of the pass is read.
* **SCAN** (:class:`GroupReader`): group ``m`` = elements ``j = m*N .. m*N + N - 1`` of the
  pass, address ``col_group + m`` of every PE's source memory.  Two group buffers form a
  pipeline:

  - the *prefetch* slot holds the group read in the previous cycle (the PEs' read ports deliver it
    one cycle after ``act_rd.en``; it is copied into a hold register so the CCU does not rely on
    the PEs keeping ``act_rd.data`` stable);
  - the *current* slot holds the mask of non-zeros still to broadcast, and their values.

  Each cycle the LNZD picks the lowest bit of the current mask; when every queue is ready
  (``bc.ready``) that element is broadcast (``bc.valid``) and its bit cleared.  The prefetch
  group is masked (zeros and ``j >= in_len``) and either dropped at once when it has no
  non-zeros, or moved into the current slot in the cycle the current slot runs empty; a new
  group is read whenever the prefetch slot is free or being emptied.
* **DRAIN**: from the cycle after the last broadcast until every PE reports ``idle``; in that
  cycle ``wb_go`` is pulsed, unless the pass has ``keep`` set (a column batch that is not the
  last one of its rows): then the pass ends in that cycle, with no write-back, and the
  accumulators keep their sums for the next pass.
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
  one cycle that sees them all low); a ``keep`` pass takes ``2 + B + S + D``.  Layer cycles
  (counter 15) count exactly these; the next
  layer's SETUP follows at once (no cycle between layers), and ``done`` rises in the cycle after
  the last layer's final cycle.

``single_step``: after every layer but the last the CCU pauses with ``layer_done`` high until
``resume``; after the last layer it finishes (``done``) without pausing.  ``n_layers`` is latched
at ``start``; slots at and above ``max_layers`` are never run (the sequence ends there).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.arch import regmap
from hw.arch.config import EIEConfig, require_config
from hw.bus import (act_read_signature, broadcast_signature, descriptor_layout,
                    ew_params_signature, host_write_signature, layer_params_signature,
                    sequence_members)
from hw.lnzd import LNZD, lnzd_nodes


def ceil_div(value, n: int):
    """``ceil(value / n)`` for a constant ``n``: a shift when ``n`` is a power of two."""
    if n & (n - 1) == 0:
        return (value + (n - 1)) >> (n.bit_length() - 1)
    return (value + (n - 1)) // n


class DescriptorTable(wiring.Component):
    """The layer-descriptor registers of ``cfg.max_layers`` slots, written by the host.

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    host : In(host_write_signature())
        Write of descriptor field ``addr % DESCRIPTOR_STRIDE`` of slot
        ``addr // DESCRIPTOR_STRIDE``; writes to slots ``>= max_layers`` or to unused field
        numbers are ignored.  The register holds the low bits of ``wdata``.
    slot : In(layer_index_bits)
        The slot read on ``desc``.
    desc : Out(descriptor_layout(cfg))
        The descriptor of slot ``slot`` (combinational).
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        super().__init__({
            "host": In(host_write_signature()),
            "slot": In(cfg.layer_index_bits),
            "desc": Out(descriptor_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        widths = regmap.descriptor_widths(cfg)
        table = {name: Array(Signal(widths[name], name=f"desc{s}_{name}")
                             for s in range(cfg.max_layers))
                 for name in regmap.DESCRIPTOR_FIELDS}
        slot = self.host.addr[regmap.DESCRIPTOR_FIELD_BITS:]
        field = self.host.addr[:regmap.DESCRIPTOR_FIELD_BITS]
        with m.If(self.host.we & (slot < cfg.max_layers)):
            with m.Switch(field):
                for name, regs in table.items():
                    with m.Case(regmap.FIELD[name]):
                        m.d.sync += regs[slot[:cfg.layer_index_bits]].eq(self.host.wdata)
        for name, regs in table.items():
            m.d.comb += self.desc[name].eq(regs[self.slot])
        return m


class GroupReader(wiring.Component):
    """Source-group reads, the prefetch and current slots, the LNZD and the broadcast.

    See the module docstring (SCAN) for the pipeline and its timing.

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    setup : In(1)
        The layer's SETUP cycle: latch ``in_len``, empty both slots and, when ``in_len != 0``,
        read group 0 into the prefetch slot.
    in_len : In(len_bits)
        The pass's input length (sampled in ``setup``).
    grp_base : In(act_addr_bits)
        Source address of the pass's group 0 (the descriptor's ``col_group``, used in
        ``setup``).
    scanning : In(1)
        SCAN: read, inspect and broadcast.
    src_sel : In(1)
        The source memory, driven on ``act_rd.sel``.
    act_rd : Out(act_read_signature(cfg, n_pes))
        The group read, common to every PE; ``act_rd.data[k]`` from PE ``k`` the next cycle.
    bc : Out(broadcast_signature(cfg))
        The broadcast.  ``bc.valid`` is only raised together with ``bc.ready`` (every queue
        ready): a non-zero waits in the current slot otherwise.
    pending : Out(1)
        A non-zero is waiting for the queues (``bc.valid`` or stalled).
    finished : Out(1)
        Nothing left to read, inspect or broadcast after this cycle (SCAN ends).
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        super().__init__({
            "setup": In(1),
            "in_len": In(cfg.len_bits),
            "grp_base": In(cfg.act_addr_bits),
            "scanning": In(1),
            "src_sel": In(1),
            "act_rd": Out(act_read_signature(cfg, cfg.n_pes)),
            "bc": Out(broadcast_signature(cfg)),
            "pending": Out(1),
            "finished": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.n_pes
        act = signed(cfg.act_bits)
        m.submodules.lnzd = lnzd = LNZD(n)
        jw = cfg.len_bits + 1  # a group base runs up to max_vector (one past the last group)
        in_len = Signal(cfg.len_bits)
        scanning = self.scanning

        # ---- read -> prefetch slot -> current slot -> LNZD -> broadcast ----
        rd_addr = Signal(cfg.act_addr_bits + 1)  # next group to read
        rd_base = Signal(jw)  # its first j
        pf_valid = Signal()  # prefetch slot holds a group ...
        pf_fresh = Signal()  # ... read in the previous cycle (data on act_rd.data)
        pf_base = Signal(jw)
        pf_vals, pf_mask = self._prefetch(m, pf_fresh, in_len - pf_base)
        pf_zero = pf_mask == 0
        cur_mask = Signal(n)
        cur_vals = Array(Signal(act, name=f"cur_val{k}") for k in range(n))
        cur_base = Signal(jw)

        m.d.comb += lnzd.mask.eq(cur_mask)
        fire, cur_left, cur_empty_next = Signal(), Signal(n), Signal()
        consume, load, more, issue = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            fire.eq(scanning & lnzd.valid & self.bc.ready),
            cur_left.eq(cur_mask & ~(fire << lnzd.index)[:n]),
            cur_empty_next.eq(cur_left == 0),
            consume.eq(pf_valid & (pf_zero | cur_empty_next)),
            load.eq(consume & ~pf_zero),
            more.eq(rd_base < in_len),
            issue.eq(scanning & more & (~pf_valid | consume)),
            self.bc.valid.eq(fire),
            self.bc.payload.col.eq(cur_base + lnzd.index),
            self.bc.payload.act.eq(cur_vals[lnzd.index]),
            self.pending.eq(scanning & lnzd.valid),
            self.finished.eq(cur_empty_next & ~load & ~more & (~pf_valid | consume)),
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

        # the group read: SCAN's reads, or group 0 in SETUP (overrides)
        m.d.comb += [
            self.act_rd.en.eq(issue),
            self.act_rd.sel.eq(self.src_sel),
            self.act_rd.addr.eq(rd_addr),
        ]
        with m.If(issue):
            m.d.sync += [rd_addr.eq(rd_addr + 1), rd_base.eq(rd_base + n)]
        with m.If(self.setup):
            m.d.sync += [in_len.eq(self.in_len), cur_mask.eq(0), pf_valid.eq(0),
                         rd_addr.eq(self.grp_base), rd_base.eq(0)]
            # read group 0 now so that SCAN starts with it in the prefetch slot
            with m.If(self.in_len != 0):
                m.d.comb += [self.act_rd.en.eq(1), self.act_rd.addr.eq(self.grp_base)]
                m.d.sync += [pf_valid.eq(1), pf_fresh.eq(1), pf_base.eq(0),
                             rd_addr.eq(self.grp_base + 1), rd_base.eq(n)]
        return m

    def _prefetch(self, m, pf_fresh, pf_left_value):
        """The prefetch slot's values (fresh read data or the hold register) and its mask."""
        n = self.cfg.n_pes
        act = signed(self.cfg.act_bits)
        pf_hold = [Signal(act, name=f"pf_hold{k}") for k in range(n)]
        pf_vals = [Signal(act, name=f"pf_val{k}") for k in range(n)]
        pf_mask = Signal(n)
        pf_left = Signal(self.cfg.len_bits + 1)  # elements of the prefetch group below in_len
        m.d.comb += pf_left.eq(pf_left_value)
        for k in range(n):
            rd = self.act_rd.data[k]
            m.d.comb += pf_vals[k].eq(Mux(pf_fresh, rd, pf_hold[k]))
            # j >= in_len: beyond the vector (the last group may be partial); a group is only
            # read while pf_base < in_len, so pf_left does not wrap
            m.d.comb += pf_mask[k].eq((pf_vals[k] != 0) & (pf_left > k))
            with m.If(pf_fresh):
                m.d.sync += pf_hold[k].eq(rd)
        return pf_vals, pf_mask


class CCU(wiring.Component):
    """Central control unit for ``cfg.n_pes`` PEs (see the module docstring for timing).

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    table, reader : DescriptorTable, GroupReader
        Its submodules (``table``, ``reader``); the sequencer FSM is the CCU itself.
    host : In(host_write_signature())
        Host write of the descriptor table (:class:`DescriptorTable`).
    n_layers, start, single_step, resume : In
        Sequence control (docs/architecture.md section 5).
    busy, layer_done, done : Out(1)
        Running; paused after a layer in single-step mode; sequence finished (cleared by
        ``start``).
    layer : Out(layer_index_bits)
        Slot of the layer being run (or about to run after a pause).
    params : Out(layer_params_signature(cfg))
        The current layer's parameters, common to every PE.
    bc : Out(broadcast_signature(cfg))
        Broadcast of one non-zero ``(j, a_j)`` to every PE's activation queue; ``bc.ready``
        is high when every queue is ready, and ``bc.valid`` is only raised then.
    idle, wb_busy : In(n_pes)
        Bit ``k`` from PE ``k``.
    wb_go : Out(1)
        Write-back pulse to every PE.
    act_rd : Out(act_read_signature(cfg, n_pes))
        Source-group read, common to every PE; ``act_rd.data[k]`` from PE ``k``, one cycle
        after ``act_rd.en``.
    computing, bc_pending, cnt_clear : Out(1)
        For the PE counters: compute phase (SCAN and DRAIN), a non-zero waiting for the queues,
        clear (pulsed by an accepted ``start``).
    layer_cycles : Out(ArrayLayout(COUNTER_BITS, max_layers))
        Counter ``CNT_LAYER_CYCLES`` per layer slot; cleared by ``start``.
    lnzd_nodes : int
        Nodes of the LNZD tree (:func:`hw.lnzd.lnzd_nodes`), for the energy model.
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        n = cfg.n_pes
        lstm = {
            # the LSTM program (regmap.LSTM_FIELDS) and the element-wise stage of the PEs
            "lstm_host": In(host_write_signature()),
            "ew_go": Out(1),
            "ew_reset": Out(1),
            "ew_params": Out(ew_params_signature(cfg)),
            # 1: m_t goes into the gates' source memory (no projection), 0: the other one
            "ew_to_src": Out(1),
            "ew_busy": In(n),
        } if cfg.lstm else {}
        super().__init__({
            **lstm,
            "host": In(host_write_signature()),
            **sequence_members(cfg),
            "layer": Out(cfg.layer_index_bits),
            "params": Out(layer_params_signature(cfg)),
            "bc": Out(broadcast_signature(cfg)),
            "idle": In(n),
            "wb_go": Out(1),
            "wb_busy": In(n),
            "act_rd": Out(act_read_signature(cfg, n)),
            "computing": Out(1),
            "bc_pending": Out(1),
            "cnt_clear": Out(1),
            "layer_cycles": Out(data.ArrayLayout(regmap.COUNTER_BITS, cfg.max_layers)),
        })
        self.table = DescriptorTable(cfg)
        self.reader = GroupReader(cfg)
        #: 4-input LNZD nodes of the detector tree (energy model: charged per broadcast)
        self.lnzd_nodes = lnzd_nodes(n)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.table = table = self.table
        m.submodules.reader = reader = self.reader
        wiring.connect(m, wiring.flipped(self.host), table.host)
        wiring.connect(m, wiring.flipped(self.act_rd), reader.act_rd)
        wiring.connect(m, wiring.flipped(self.bc), reader.bc)

        # the current layer (one more bit: n_layers may be max_layers) and its descriptor
        layer = Signal(cfg.layer_index_bits + 1)
        m.d.comb += [
            table.slot.eq(layer[:cfg.layer_index_bits]),
            self.layer.eq(layer),
            self.params.cb_slot.eq(table.desc.cb_slot),
            self.params.src_sel.eq(table.desc.src_sel),
            reader.src_sel.eq(table.desc.src_sel),
            reader.in_len.eq(table.desc.in_len),
            reader.grp_base.eq(table.desc.col_group),
            self.bc_pending.eq(reader.pending),
        ]
        lstm = _LSTMProgram(m, self) if cfg.lstm else None
        count = self._sequencer(m, layer, lstm)

        # ---- counter CNT_LAYER_CYCLES: cycles per layer slot ----
        for s in range(cfg.max_layers):
            with m.If(count & (layer == s)):
                m.d.sync += self.layer_cycles[s].eq(self.layer_cycles[s] + 1)
        return m

    def _sequencer(self, m, layer, lstm=None):
        """The layer sequencer FSM; returns the "this cycle belongs to layer ``layer``" flag.
        With the LSTM hardware (``lstm``, :class:`_LSTMProgram`) a non-zero ``frames`` runs the
        LSTM program instead of the descriptor slots in order."""
        cfg = self.cfg
        desc, reader, p = self.table.desc, self.reader, self.params
        n_layers = Signal.like(self.n_layers)
        accept_start = Signal()
        count = Signal()
        done = Signal()
        m.d.comb += [accept_start.eq(self.start & ~self.busy), self.cnt_clear.eq(accept_start),
                     self.done.eq(done)]
        with m.If(accept_start):
            m.d.sync += [done.eq(0), layer.eq(0), n_layers.eq(self.n_layers)]
            m.d.sync += [c.eq(0) for c in self.layer_cycles]
        active = lstm.active if lstm is not None else Const(0)  # running an LSTM program
        last = Signal()  # the layer just finished is the last one to run
        m.d.comb += last.eq((layer + 1 >= n_layers) | (layer + 1 >= cfg.max_layers))

        with m.FSM(name="ccu"):
            with m.State("IDLE"):
                with m.If(accept_start):
                    if lstm is not None:
                        lstm.on_start(m, layer)
                    with m.If(self.n_layers == 0 if lstm is None else
                              (self.n_layers == 0) & ~lstm.active_next):
                        m.d.sync += done.eq(1)
                    with m.Else():
                        m.next = "SETUP"
            with m.State("SETUP"):
                # computing: group 0 is read here (counted as a source read; PEs wait)
                m.d.comb += [self.busy.eq(1), count.eq(1), self.computing.eq(1),
                             reader.setup.eq(1)]
                m.d.sync += [
                    p.ptr_base.eq(desc.ptr_base),
                    p.bias_base.eq(desc.bias_base),
                    p.dst_base.eq(desc.dst_base),
                    p.shift.eq(desc.shift),
                    p.relu.eq(desc.relu),
                    p.rows_local.eq(ceil_div(desc.out_len, cfg.n_pes)),
                ]
                if lstm is not None:
                    lstm.on_setup(m)
                m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += [self.busy.eq(1), count.eq(1), reader.scanning.eq(1),
                             self.computing.eq(1)]
                with m.If(reader.finished):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [self.busy.eq(1), count.eq(1), self.computing.eq(1)]
                with m.If(self.idle.all()):
                    with m.If(active & ~lstm.in_f if lstm is not None else Const(0)):
                        if lstm is not None:
                            lstm.on_drained(m, layer, done)
                    with m.Elif(desc.keep):
                        # a column batch: the accumulators carry over to the next pass
                        if lstm is None:
                            self._next_pass(m, layer, last, done)
                        else:
                            with m.If(active):
                                lstm.after_pass(m, layer, done)
                            with m.Else():
                                self._next_pass(m, layer, last, done)
                    with m.Else():
                        m.d.comb += self.wb_go.eq(1)
                        m.next = "WB"
            with m.State("WB"):
                m.d.comb += [self.busy.eq(1), count.eq(1)]
                with m.If(~self.wb_busy.any()):
                    with m.If(active):
                        if lstm is not None:
                            lstm.after_pass(m, layer, done)
                    with m.Else():
                        self._next_pass(m, layer, last, done)
            if lstm is not None:
                with m.State("WAIT_EW"):
                    # P(t) waits for the element-wise stage of frame t (and X(t + 1) has ended)
                    m.d.comb += [self.busy.eq(1), count.eq(1)]
                    with m.If(~self.ew_busy.any()):
                        with m.If(lstm.reg["no_proj"]):  # no P(t): the frame's end
                            lstm.after_pass(m, layer, done)
                        with m.Else():
                            m.next = "SETUP"
            with m.State("PAUSE"):
                m.d.comb += [self.busy.eq(1), self.layer_done.eq(1)]
                with m.If(self.resume):
                    m.next = "SETUP"
        return count

    def _next_pass(self, m, layer, last, done):
        """The end of a pass (inside the sequencer FSM): the next slot, a pause or done."""
        m.d.sync += layer.eq(layer + 1)
        with m.If(last):
            m.d.sync += done.eq(1)
            m.next = "IDLE"
        with m.Elif(self.single_step):
            m.next = "PAUSE"
        with m.Else():
            m.next = "SETUP"


class _LSTMProgram:
    """The LSTM program registers and the frame sequence of the CCU (``cfg.lstm``; the fields
    are :data:`hw.arch.regmap.LSTM_FIELDS`, the schedule :mod:`sim.ref.lstm_schedule`'s).

    Per frame ``t``: ``Y(t)`` (the gates' y part, bank ``t mod 2``) ends without write-back
    and pulses ``ew_go`` in the cycle a write-back would start (the element-wise stage's cycle
    0); ``X(t + 1)`` (the x part of the next frame, the other bank, source group ``x_group0 +
    (t + 1) x_stride``) follows at once; then ``P(t)`` (the projection, at ``proj_acc_base``),
    from the cycle after the element-wise stage's ``done`` or after ``X(t + 1)``'s end,
    whichever is later (state WAIT_EW), with its write-back; then ``F(t)``, the ``f_count``
    FC passes of slots ``f_slot ..`` on ``y_t`` (an LSTM that returns its sequence: the layers
    after it run in every frame, as ordinary passes with their write-backs, their accumulators
    from ``f_acc_base``); then ``Y(t + 1)``, or, in single-step mode, a pause first (the host
    reads ``y_t`` and the FC layers' output).  ``X(0)`` runs first.  Without a projection
    (``no_proj``) ``m_t`` is ``y_t``: the element-wise stage writes it into the gates' source
    (``ew_to_src``, at ``ew_dst``, the y region, which no pass reads before ``Y(t + 1)``), and
    the frame ends (``F(t)``, then ``Y(t + 1)``) where ``P(t)`` would start.
    """

    X, Y, P, F = 0, 1, 2, 3

    def __init__(self, m, ccu):
        cfg = ccu.cfg
        self.ccu, self.cfg = ccu, cfg
        widths = regmap.lstm_widths(cfg)
        self.reg = {name: Signal(widths[name], name=f"lstm_{name}")
                    for name in regmap.LSTM_FIELDS}
        host = ccu.lstm_host
        with m.If(host.we):
            with m.Switch(host.addr):
                for name, r in self.reg.items():
                    with m.Case(regmap.LSTM_FIELD[name]):
                        m.d.sync += r.eq(host.wdata)
        self.active = Signal()  # running the LSTM program
        self.active_next = Signal()
        m.d.comb += self.active_next.eq(self.reg["frames"] != 0)
        self.phase = Signal(2)
        self.t = Signal(16)  # the frame of Y and P
        self.x_grp = Signal(cfg.act_addr_bits)  # the source group of the next X
        self.first_x = Signal()
        self.in_f = Signal()  # running a frame's FC passes (ordinary passes)
        m.d.comb += self.in_f.eq(self.phase == self.F)
        r, e = self.reg, ccu.ew_params
        m.d.comb += [e.cells.eq(r["ew_cells"]), e.bias_base.eq(r["ew_bias_base"]),
                     e.shift.eq(r["ew_shift"]), e.dst_base.eq(r["ew_dst"]),
                     e.peephole.eq(r["ew_peephole"]),
                     e.bank_base.eq(Mux(self.t[0], cfg.acc_bank_words, 0)),
                     ccu.ew_to_src.eq(r["no_proj"])]
        # an X pass reads its frame's source group
        with m.If(self.active & (self.phase == self.X)):
            m.d.comb += ccu.reader.grp_base.eq(self.x_grp)

    def on_start(self, m, layer):
        r = self.reg
        m.d.sync += [self.active.eq(self.active_next), self.phase.eq(self.X), self.t.eq(0),
                     self.x_grp.eq(r["x_group0"]), self.first_x.eq(1)]
        with m.If(self.active_next):
            m.d.sync += layer.eq(r["x_slot"])

    def on_setup(self, m):
        """SETUP: the pass's accumulators (and, for X, the next frame's source group)."""
        cfg, p = self.cfg, self.ccu.params
        bank = Mux(self.first_x, 0, ~self.t[0])  # X(0) is bank 0; X(t + 1) the other bank
        with m.If(self.active):
            with m.Switch(self.phase):
                with m.Case(self.X):
                    m.d.sync += [p.acc_base.eq(Mux(bank, cfg.acc_bank_words, 0)),
                                 self.x_grp.eq(self.x_grp + self.reg["x_stride"])]
                with m.Case(self.Y):
                    m.d.sync += p.acc_base.eq(Mux(self.t[0], cfg.acc_bank_words, 0))
                with m.Case(self.P):
                    m.d.sync += p.acc_base.eq(self.reg["proj_acc_base"])
                with m.Case(self.F):
                    m.d.sync += p.acc_base.eq(self.reg["f_acc_base"])
        with m.Else():
            m.d.sync += p.acc_base.eq(0)

    def on_drained(self, m, layer, done):
        """DRAIN, every PE idle, in the LSTM program (inside the FSM)."""
        ccu, r = self.ccu, self.reg
        more = self.t + 1 < r["frames"]
        with m.Switch(self.phase):
            with m.Case(self.X):
                with m.If(self.first_x):  # X(0) -> Y(0)
                    m.d.sync += [self.first_x.eq(0), self.phase.eq(self.Y),
                                 layer.eq(r["y_slot"])]
                    m.next = "SETUP"
                with m.Elif(r["no_proj"]):  # X(t + 1) -> the frame's end, after EW(t)
                    with m.If(ccu.ew_busy.any()):
                        m.next = "WAIT_EW"
                    with m.Else():
                        self.after_pass(m, layer, done)
                with m.Else():  # X(t + 1) -> P(t), once the element-wise stage is done
                    m.d.sync += [self.phase.eq(self.P), layer.eq(r["p_slot"])]
                    with m.If(ccu.ew_busy.any()):
                        m.next = "WAIT_EW"
                    with m.Else():
                        m.next = "SETUP"
            with m.Case(self.Y):
                # no write-back: the element-wise stage reads the gates in this cycle
                m.d.comb += [ccu.ew_go.eq(1), ccu.ew_reset.eq(self.t == 0)]
                with m.If(more):
                    m.d.sync += [self.phase.eq(self.X), layer.eq(r["x_slot"])]
                    m.next = "SETUP"
                with m.Else():
                    m.d.sync += [self.phase.eq(self.P), layer.eq(r["p_slot"])]
                    m.next = "WAIT_EW"
            with m.Case(self.P):
                m.d.comb += ccu.wb_go.eq(1)
                m.next = "WB"

    def after_pass(self, m, layer, done):
        """The end of ``P(t)`` or of one of ``F(t)``'s passes: the next FC pass, or the end of
        the frame."""
        r = self.reg
        more_f = Signal()
        m.d.comb += more_f.eq(Mux(self.in_f, layer + 1 < r["f_slot"] + r["f_count"],
                                  r["f_count"] != 0))
        with m.If(more_f):
            with m.If(self.in_f):
                m.d.sync += layer.eq(layer + 1)
            with m.Else():
                m.d.sync += [self.phase.eq(self.F), layer.eq(r["f_slot"])]
            m.next = "SETUP"
        with m.Else():
            self._frame_end(m, layer, done)

    def _frame_end(self, m, layer, done):
        """The end of frame ``t``: the next frame's Y, a pause, or the end."""
        r = self.reg
        with m.If(self.t + 1 >= r["frames"]):
            m.d.sync += [done.eq(1), self.active.eq(0)]
            m.next = "IDLE"
        with m.Else():
            m.d.sync += [self.t.eq(self.t + 1), self.phase.eq(self.Y), layer.eq(r["y_slot"])]
            with m.If(self.ccu.single_step):
                m.next = "PAUSE"
            with m.Else():
                m.next = "SETUP"
