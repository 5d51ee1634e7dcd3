"""Element-wise unit of ESE: the LSTM cell update of one PE's cells (docs/architecture.md 4b).

After the gates' sparse product of a frame, the PE's accumulators hold the four gate sums of
each of its local cells ``j = 0 .. C-1`` at ``bank_base + 4j + q`` (``q`` = 0 i, 1 f, 2 g,
3 o).  ``start`` runs, for every cell, bit for bit as :func:`hw.arch.fixedpoint.lstm_cell`
(the golden model's ``GoldenModel.lstm``)::

    pre_q  = finalize(acc[bank_base + 4j + q], shift, bias[bias_base + 4j + q], relu=False)
    c, m   = lstm_cell(pre, c'[j], (w_ic, w_fc, w_oc)[j] if peephole else None)
    Act[dst_base + j] = m;   c'[j] = c;   acc[bank_base + 4j + q] = 0

Timing (the contract of :mod:`sim.ref.lstm_schedule`).  Cycle 0 is the cycle in which
``start`` is high while ``busy`` is low (the parameters are latched at its end).  The unit
reads one accumulator per cycle in cycles ``0 .. 4C-1`` (the first read is issued in cycle 0
itself, from the parameter ports), writes ``m`` of cell ``j`` in cycle ``4j + 11`` (the last
in ``4C + 7``: 8 cycles after the last read) and pulses ``done`` in cycle
``4C + cfg.ew_latency`` (``ew_cycles_per_cell = 4``; ``ew_latency`` >= 8, a longer latency only
delays ``done``).  ``busy`` is high in cycles ``1 .. 4C + ew_latency - 1``; a ``start`` in the
``done`` cycle begins the next run at once.  With ``C = 0`` nothing is read and ``done`` comes
in cycle ``ew_latency``.  The accumulators must be final in cycle 0 (the arithmetic unit idle:
the cycle in which the FC write-back's ``wb_go`` would be pulsed is one).

Pipeline.  Cell ``j`` enters in cycle ``4j``; in its cell-local cycle ``t`` (absolute ``4j + t``)
it is in stage ``t``.  Every resource is used by one stage per residue ``t mod 4``, so cells
follow each other every 4 cycles without a conflict.  The gates are read in the order
f, i, g, o (that puts the four products of the wide multiplier on four distinct residues)::

    t0   read acc / bias of f, c'[j], w_fc (peephole word C + j)
    t1   PRE <- finalize(f)            A <- w_fc * c'      read acc i, w_ic (word j); CP <- c'
    t2   PRE <- finalize(i)            A <- w_ic * CP      X <- sat(pre_f + sat(rnd A))  read g
    t3   PRE <- finalize(g)            sigmoid(X = x_f)    X <- sat(pre_i + sat(rnd A))  read o
    t4   PRE <- finalize(o)            A <- f * CP         sigmoid(X = x_i)   tanh(PRE = pre_g)
    t5   B <- i * g                    AW <- sat_w(rnd A)  PO <- PRE (pre_o)
    t6   C <- sat_cell(AW + sat_w(rnd B))                  read w_oc (word 2C + j)
    t7   c'[j] <- C                    A <- w_oc * C       tanh(C)
    t8   X <- sat(PO + sat(rnd A))     TC <- tanh(C)
    t9   sigmoid(X = x_o)
    t10  B <- o * TC
    t11  Act[dst_base + j] <- sat(rnd B)  (= m)

``rnd`` is ``round_shift`` by ``act_frac`` with ``cfg.rounding``, ``sat`` saturates to
``act_bits``, ``sat_w`` to ``cell_width + 1``, ``sat_cell`` to ``cell_width``; the pre-activation
``finalize`` is the FC write-back's (:func:`hw.act_rw.round_shift`,
:func:`hw.act_rw.finalize_value`), in one stage.  Each table read (a synchronous ROM) gives its
value the next cycle, where it is used.  Accumulator ``r`` read in cycle ``t`` is cleared in
cycle ``t + 1`` (``acc.clr_*``), as the write-back does.

Resources: a sigmoid and a tanh ROM (``lut_points x act_bits``, from
:func:`hw.arch.fixedpoint.lut_table`); the cell-state memory (``ew_cells_max x cell_width``, one
read and one write port); the peephole memory (``3 ew_cells_max x act_bits``, w_ic, w_fc, w_oc
of local cell ``j`` at words ``j``, ``C + j``, ``2C + j``: the per-PE ``(3, C)`` image
row-major, written by the host); two multipliers, ``A`` (``act_bits x cell_width``, the three
peephole products and ``f . c'``: one per cycle) and ``B`` (``act_bits x act_bits``: ``i . g``
and ``o . tanh(c)``).  ``lut_interp`` is refused: interpolation would need two table words per
look-up and an interpolating multiply on the critical path (about 4 more cycles).

``reset_cells`` (start of a sequence) makes the next run's ``c'`` zero (it reads the memory
and drops the data, so the counters are the same in every frame); the run writes every
``c[j]``, ``j < C``, so later runs read what it wrote.  The state after reset is the same.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.act_rw import finalize_value, round_shift
from hw.arch.config import EIEConfig, bits_for, require_config
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import lut_table
from hw.bus import (acc_port_signature, act_write_signature, bias_read_signature,
                    ew_params_signature, host_write_signature)

#: the least ``cfg.ew_latency``: ``done`` in cycle ``4C + ew_latency``, the last write of ``m``
#: in cycle ``4C + 7`` (module docstring)
EW_MIN_LATENCY = 8
#: pipeline stages of a cell: its first read (t0) to its write of ``m`` (t11)
EW_STAGES = 12
#: the gate ``q`` (0 i, 1 f, 2 g, 3 o) read in phase 0..3 of a cell
READ_ORDER = (1, 0, 2, 3)


def round_shift_const(m: Module, x, s: int, rounding: str):
    """Combinational ``hw.arch.fixedpoint.round_shift(x, s, rounding)`` by a constant ``s``
    (:func:`hw.act_rw.round_shift` is ``acc_bits`` wide with a run-time shift); returns a
    signed signal one bit wider than ``x`` (room for the ``half_up`` sum)."""
    w = len(x) + 1
    xw = Signal(signed(w))
    out = Signal(signed(w))
    m.d.comb += xw.eq(x)
    if s == 0:
        return xw
    half = 1 << (s - 1)
    if rounding == "truncate":
        m.d.comb += out.eq(xw >> s)
    elif rounding == "half_up":
        m.d.comb += out.eq((xw + half) >> s)
    else:  # half_even: up when the remainder is above half, or half and the quotient odd
        q = xw >> s
        rem = xw[:s]
        m.d.comb += out.eq(q + ((rem > half) | ((rem == half) & q[0])))
    return out


def saturate(m: Module, x, bits: int):
    """Combinational clamp of the signed value ``x`` to ``bits`` bits."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = Signal(signed(bits))
    m.d.comb += out.eq(Mux(x > hi, hi, Mux(x < lo, lo, x)))
    return out


def lut_index(m: Module, x, cfg: EIEConfig):
    """Combinational table index of the signed value ``x``, as
    :func:`hw.arch.fixedpoint.lut_lookup` computes it without interpolation: offset by the
    range, shifted by ``cfg.lut_shift`` (left when negative), clamped to the table."""
    k = 1 << (cfg.lut_range_log2 + cfg.act_frac)
    off = Signal(signed(max(len(x), k.bit_length()) + 2))
    m.d.comb += off.eq(x + k)
    raw = off >> cfg.lut_shift if cfg.lut_shift > 0 else off << -cfg.lut_shift
    last = cfg.lut_points - 1
    idx = Signal(range(cfg.lut_points))
    m.d.comb += idx.eq(Mux(raw < 0, 0, Mux(raw > last, last, raw)))
    return idx


class EWUnit(wiring.Component):
    """The element-wise unit of one PE (module docstring: timing, pipeline, resources).

    Parameters
    ----------
    cfg : EIEConfig
        ``ew_cycles_per_cell`` must be 4, ``ew_latency`` at least :data:`EW_MIN_LATENCY`,
        ``lut_interp`` false and ``ew_cells_max`` at least 1.

    Attributes
    ----------
    start : In(1)
        Pulse: latch ``params`` and run (ignored while ``busy``).
    reset_cells : In(1)
        Pulse: the next run starts from ``c' = 0`` (a ``start`` in the same cycle included).
    params : In(ew_params_signature(cfg))
        ``cells``, ``bank_base``, ``bias_base``, ``shift``, ``dst_base``, ``peephole``
        (:func:`hw.bus.ew_params_signature`), read in the ``start`` cycle.
    busy, done : Out(1)
        Running; one-cycle pulse in cycle ``4C + ew_latency`` (``busy`` low there).
    acc : Out(acc_port_signature(cfg))
        The accumulator SRAM's read / clear port (the arithmetic unit's ``wb``).
    bias : Out(bias_read_signature(cfg))
        Read of the bias memory (data the next cycle).
    act : Out(act_write_signature(cfg))
        Write of ``m`` of local cell ``j`` at ``dst_base + j``.
    host : In(host_write_signature())
        Host write of peephole word ``host.addr`` (module docstring), low ``act_bits`` of
        ``wdata``.
    ew_cells, cell_reads, cell_writes : Out(1)
        Strobes: a cell's ``m`` was written / its ``c'`` read / its ``c`` written.
    host_re, host_raddr, host_rdata
        The host's read of cell ``host_raddr``'s state ``c`` (honoured while the unit is not
        busy; data the next cycle; not counted in ``cell_reads``).
    lut_reads, ew_muls : Out(2)
        Table reads (sigmoid and tanh) and multiplies in this cycle, 0..2 each: 5 reads per
        cell, 3 multiplies per cell plus 3 with ``peephole`` (names of
        :data:`hw.arch.regmap.EW_COUNTER_NAMES`; hw/pe.py counts them).
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        need = [
            (cfg.ew_cycles_per_cell == 4, "ew_cycles_per_cell must be 4 (one accumulator read "
             f"per cycle, four gates per cell), got {cfg.ew_cycles_per_cell}"),
            (cfg.ew_latency >= EW_MIN_LATENCY, f"ew_latency must be at least {EW_MIN_LATENCY} "
             f"(the unit's pipeline after its last read), got {cfg.ew_latency}"),
            (not cfg.lut_interp, "lut_interp is not supported by the element-wise unit "
             "(nearest-point tables only): set lut_interp to false"),
            (cfg.ew_cells_max >= 1, f"acc_words ({cfg.acc_words}) leaves no room for one LSTM "
             "cell (8 accumulators: its gates twice)"),
        ]
        for ok, msg in need:
            if not ok:
                raise EIEError(f"config {cfg.name!r}: {msg}")
        self.cfg = cfg
        super().__init__({
            "start": In(1),
            "reset_cells": In(1),
            "params": In(ew_params_signature(cfg)),
            "busy": Out(1),
            "done": Out(1),
            "acc": Out(acc_port_signature(cfg)),
            "bias": Out(bias_read_signature(cfg)),
            "act": Out(act_write_signature(cfg)),
            "host": In(host_write_signature()),
            "ew_cells": Out(1),
            "cell_reads": Out(1),
            "cell_writes": Out(1),
            # the host's read of the cell state (while the unit is idle), data the next cycle
            "host_re": In(1),
            "host_raddr": In(bits_for(cfg.ew_cells_max)),
            "host_rdata": Out(signed(cfg.cell_width)),
            "lut_reads": Out(2),
            "ew_muls": Out(2),
        })
        act = signed(cfg.act_bits)
        self.sigmoid = memory.Memory(shape=act, depth=cfg.lut_points,
                                     init=[int(v) for v in lut_table("sigmoid", cfg)])
        self.tanh = memory.Memory(shape=act, depth=cfg.lut_points,
                                  init=[int(v) for v in lut_table("tanh", cfg)])
        self.cells = memory.Memory(shape=signed(cfg.cell_width), depth=cfg.ew_cells_max,
                                   init=[])
        self.peep = memory.Memory(shape=act, depth=3 * cfg.ew_cells_max, init=[])
        self._sig_r = self.sigmoid.read_port()
        self._tanh_r = self.tanh.read_port()
        self._cell_r = self.cells.read_port()
        self._cell_w = self.cells.write_port()
        self._peep_r = self.peep.read_port()
        self._peep_w = self.peep.write_port()

    def elaborate(self, platform):
        m = Module()
        m.submodules.sigmoid, m.submodules.tanh = self.sigmoid, self.tanh
        m.submodules.cells, m.submodules.peep = self.cells, self.peep
        m.d.comb += [
            self._peep_w.addr.eq(self.host.addr),
            self._peep_w.data.eq(self.host.wdata),
            self._peep_w.en.eq(self.host.we),
        ]
        run, accept = self._control(m)
        v, j = self._reads(m, run, accept)
        self._datapath(m, run, v, j)
        return m

    def _control(self, m: Module):
        """``start`` / ``busy`` / ``done`` and the parameters latched at ``start``; returns
        the latched parameters (with ``zero``: this run's ``c'`` is 0) and the accept strobe."""
        cfg, p = self.cfg, self.params
        run = {name: Signal.like(getattr(p, name), name=f"run_{name}")
               for name in ("cells", "bank_base", "bias_base", "shift", "dst_base",
                            "peephole")}
        run["zero"] = Signal(name="run_zero")
        fresh = Signal(init=1)  # c' reads as 0 until a run has written every cell
        accept = Signal()
        running = Signal()
        left = Signal(range(4 * cfg.ew_cells_max + cfg.ew_latency))
        m.d.comb += [
            accept.eq(self.start & ~self.busy),
            self.done.eq(running & (left == 0)),
            self.busy.eq(running & (left != 0)),
        ]
        with m.If(accept):
            m.d.sync += [running.eq(1), left.eq((p.cells << 2) + (cfg.ew_latency - 1)),
                         run["zero"].eq(fresh | self.reset_cells), fresh.eq(0)]
            m.d.sync += [run[name].eq(getattr(p, name)) for name in run if name != "zero"]
        with m.Else():
            with m.If(self.reset_cells):
                m.d.sync += fresh.eq(1)
            with m.If(running):
                m.d.sync += left.eq(left - 1)
                with m.If(left == 0):
                    m.d.sync += running.eq(0)
        return run, accept

    def _reads(self, m: Module, run: dict, accept):
        """The accumulator and bias reads (one per cycle, cycles ``0 .. 4C-1``), their clears
        and the pipeline's stage valids ``v[t]`` and cell indices ``j[t]``, ``t < EW_STAGES``."""
        cfg, p = self.cfg, self.params
        cells = Mux(accept, p.cells, run["cells"])
        n = Signal(range(4 * cfg.ew_cells_max + 1))  # the next read
        reading = Signal()
        issue = Signal()
        n_cur = Signal.like(n)
        m.d.comb += [issue.eq(Mux(accept, p.cells != 0, reading)), n_cur.eq(Mux(accept, 0, n))]
        with m.If(issue):
            m.d.sync += [n.eq(n_cur + 1), reading.eq(n_cur + 1 != (cells << 2))]
        phase, cell = n_cur[:2], n_cur[2:]
        q = Cat(phase[0] ^ ~phase[1], phase[1])  # READ_ORDER: phases 0 and 1 swap i and f
        row = Cat(q, cell)
        m.d.comb += [
            self.acc.rd_en.eq(issue),
            self.acc.rd_addr.eq(Mux(accept, p.bank_base, run["bank_base"]) + row),
            self.bias.en.eq(issue),
            self.bias.addr.eq(Mux(accept, p.bias_base, run["bias_base"]) + row),
        ]
        clr_en, clr_addr = Signal(), Signal.like(self.acc.clr_addr)
        m.d.sync += [clr_en.eq(issue), clr_addr.eq(self.acc.rd_addr)]
        m.d.comb += [self.acc.clr_en.eq(clr_en), self.acc.clr_addr.eq(clr_addr)]

        v = [Signal(name=f"v{t}") for t in range(EW_STAGES)]
        j = [Signal(range(max(2, cfg.ew_cells_max)), name=f"j{t}") for t in range(EW_STAGES)]
        m.d.comb += [v[0].eq(issue & (phase == 0)), j[0].eq(cell)]
        for t in range(1, EW_STAGES):
            m.d.sync += [v[t].eq(v[t - 1]), j[t].eq(j[t - 1])]

        # cell state c'[j] in t0; peepholes w_fc (C + j) in t0, w_ic (j) in t1, w_oc (2C + j)
        # in t6, only with peepholes
        peep = Mux(accept, p.peephole, run["peephole"])
        m.d.comb += [
            self._cell_r.addr.eq(Mux(v[0], j[0], self.host_raddr)),
            self._cell_r.en.eq(v[0] | (self.host_re & ~self.busy)),
            self.host_rdata.eq(self._cell_r.data),
            self._peep_r.addr.eq(Mux(v[0], cells + j[0],
                                     Mux(v[1], j[1], (run["cells"] << 1) + j[6]))),
            self._peep_r.en.eq(Mux(v[0], peep, run["peephole"] & (v[1] | v[6]))),
            self.cell_reads.eq(v[0]),
        ]
        return v, j

    def _datapath(self, m: Module, run: dict, v: list, j: list):
        """Stages t1 .. t11 of the module docstring's table."""
        cfg = self.cfg
        ab, cw = cfg.act_bits, cfg.cell_width
        sig_out, tanh_out = self._sig_r.data, self._tanh_r.data

        pre = Signal(signed(ab))  # finalize of the accumulator read the cycle before
        rs = round_shift(m, self.acc.rd_data, run["shift"], cfg)
        m.d.sync += pre.eq(finalize_value(m, rs, self.bias.data, Const(0, 1), cfg))

        c_prev = Signal(signed(cw))
        peep_w = Signal(signed(ab))
        m.d.comb += [c_prev.eq(Mux(run["zero"], 0, self._cell_r.data)),
                     peep_w.eq(Mux(run["peephole"], self._peep_r.data, 0))]
        cp = Signal(signed(cw))  # c' of the cell in t2 .. t5
        with m.If(v[1]):
            m.d.sync += cp.eq(c_prev)

        # multiplier A (t1 w_fc c', t2 w_ic c', t4 f c', t7 w_oc c) and its roundings
        prod_a = Signal(signed(ab + cw))
        creg = Signal(signed(cw))  # the new c, t7 .. t10
        m.d.sync += prod_a.eq(Mux(v[4], sig_out, peep_w) * Mux(v[7], creg, Mux(v[1], c_prev, cp)))
        rnd_a = round_shift_const(m, prod_a, cfg.act_frac, cfg.rounding)
        po = Signal(signed(ab))  # pre_o, t6 .. t9
        x = Signal(signed(ab))  # sigmoid argument: x_f (t3), x_i (t4), x_o (t9)
        m.d.sync += x.eq(saturate(m, Mux(v[8], po, pre) + saturate(m, rnd_a, ab), ab))
        aw = Signal(signed(cw + 1))  # f . c', t6
        with m.If(v[5]):
            m.d.sync += [aw.eq(saturate(m, rnd_a, cw + 1)), po.eq(pre)]

        # multiplier B (t5 i g, t10 o tanh(c)) and the cell update
        tc = Signal(signed(ab))  # tanh(c), t9 .. t12
        prod_b = Signal(signed(2 * ab))
        m.d.sync += prod_b.eq(sig_out * Mux(v[10], tc, tanh_out))
        rnd_b = round_shift_const(m, prod_b, cfg.act_frac, cfg.rounding)
        with m.If(v[6]):
            m.d.sync += creg.eq(saturate(m, aw + saturate(m, rnd_b, cw + 1), cw))
        with m.If(v[8]):
            m.d.sync += tc.eq(tanh_out)

        # tables: sigmoid of X in t3, t4, t9; tanh of pre_g in t4, of c in t7
        sig_en, tanh_en = v[3] | v[4] | v[9], v[4] | v[7]
        m.d.comb += [
            self._sig_r.addr.eq(lut_index(m, x, cfg)),
            self._sig_r.en.eq(sig_en),
            self._tanh_r.addr.eq(lut_index(m, Mux(v[7], creg, pre), cfg)),
            self._tanh_r.en.eq(tanh_en),
            self._cell_w.addr.eq(j[7]),
            self._cell_w.data.eq(creg),
            self._cell_w.en.eq(v[7]),
            self.act.en.eq(v[11]),
            self.act.addr.eq(run["dst_base"] + j[11]),
            self.act.data.eq(saturate(m, rnd_b, ab)),
            self.cell_writes.eq(v[7]),
            self.ew_cells.eq(v[11]),
            self.lut_reads.eq(sig_en + tanh_en),
            self.ew_muls.eq((v[4] | (run["peephole"] & (v[1] | v[2] | v[7]))) + (v[5] | v[10])),
        ]
