"""Top level ``eie_top``: N processing elements, the central control unit and the host interface.

Ports are exactly those of docs/architecture.md section 5 (Verilog port names are the same).

Host interface:

* writes (``host_we``): ``host_space`` picks the memory.  SPMAT, PTR, BIAS and ACT go to PE
  ``host_pe`` only (``host_pe >= n_pes`` writes nothing); CODEBOOK goes to every PE (each keeps
  a copy, EIE's per-PE codebook); LAYER goes to the CCU's descriptor table (``slot * 8 +
  field``).  ``host_addr`` and ``host_wdata`` are shared by all PEs; each PE only acts on its own
  strobe.
* reads (``host_re``): ``host_raddr = sel * act_depth + address`` on PE ``host_pe`` (with the LSTM
  hardware, from ``regmap.cell_read_base`` on: the element-wise unit's cell state); the data is on
  ``host_rdata`` ``regmap.HOST_READ_LATENCY`` rising edges after the request.  The read uses
  the PE's ``act_rd_*`` port, which the CCU owns while a layer runs.
* the host may access the memories while the array is idle (``busy`` low) and while it is paused
  after a layer in single-step mode (``layer_done`` high: no PE is doing anything then); in any
  other cycle host strobes are ignored, so a running layer can never be disturbed.
* input stage: every input but ``clk`` is registered (``regmap.INPUT_STAGES``, reset-less
  registers) before it reaches the array, ``rst`` too: the array's reset is ``rst`` one cycle
  later (and high from power-up until then).  So the array acts on a host write, ``start`` or
  ``resume`` one cycle after the host drove it; read data is on ``host_rdata``
  ``regmap.HOST_READ_LATENCY`` edges after the request, a counter on ``cnt_value``
  ``regmap.COUNTER_READ_LATENCY`` edges after its selection.
* counters: ``cnt_value`` = counter ``cnt_id`` of PE ``cnt_pe`` (ids 0..10), or for id 15
  (``regmap.CNT_LAYER_CYCLES``) the cycles of layer slot ``cnt_pe`` (``cnt_pe`` is
  ``cfg.cnt_sel_bits`` wide for that reason); with the LSTM hardware ``cnt_id`` is 5 bits and
  ids 16..20 are the element-wise unit's counters (``regmap.EW_COUNTER_NAMES``); 0 for other
  ids and out-of-range selections.

For Verilog export (:mod:`hw.gen_verilog`) ``pe_blackbox=True`` replaces every PE by an instance
of one separately generated module ``eie_pe`` (:mod:`hw.blackbox`, with the ports of
:func:`hw.pe.pe_signature`); otherwise Amaranth would emit
a copy of the PE per instance (about 1.7 MB of Verilog each for eie64).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import (Array, Cat, ClockDomain, ClockSignal, Module, Mux, ResetInserter,
                          Signal, signed)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.arch import regmap
from hw.arch.config import EIEConfig, require_config
from hw.arch.memories import PE_MODULE
from hw.arch.regmap import Space
from hw.blackbox import BlackBox
from hw.bus import PE_HOST_STROBES, pe_host_strobes, sequence_members
from hw.ccu import CCU
from hw.pe import PE, pe_signature

#: the PE memory each per-PE ``host_space`` writes (CODEBOOK goes to every PE)
_SPACE_OF_STROBE = {"spmat": Space.SPMAT, "ptr": Space.PTR, "bias": Space.BIAS,
                    "act": Space.ACT, "codebook": Space.CODEBOOK, "peep": Space.PEEP}
assert tuple(_SPACE_OF_STROBE)[:len(PE_HOST_STROBES)] == PE_HOST_STROBES


def top_signature_members(cfg: EIEConfig) -> dict:
    """Port name -> ``In``/``Out`` member of ``eie_top`` (section 5 of the architecture)."""
    return {
        "clk": In(1),
        "rst": In(1),
        "host_we": In(1),
        "host_space": In(regmap.HOST_SPACE_BITS),
        "host_pe": In(cfg.pe_bits),
        "host_addr": In(regmap.HOST_ADDR_BITS),
        "host_wdata": In(regmap.HOST_DATA_BITS),
        "host_re": In(1),
        "host_raddr": In(regmap.HOST_ADDR_BITS),
        "host_rdata": Out(signed(regmap.host_read_bits(cfg))),
        **sequence_members(cfg),
        "cnt_pe": In(cfg.cnt_sel_bits),
        "cnt_id": In(regmap.cnt_id_bits(cfg)),
        "cnt_value": Out(regmap.COUNTER_BITS),
    }


class EIETop(wiring.Component):
    """The whole array (Verilog module ``eie_top``).

    Parameters
    ----------
    cfg : EIEConfig
    pe_blackbox : bool
        Instantiate the PEs as instances of an external module ``eie_pe`` (Verilog export)
        instead of elaborating them (simulation).

    Attributes
    ----------
    pes : list of PE or BlackBox
        The processing elements; with ``pe_blackbox=False`` their memories can be patched by
        tests (``top.pes[k].ptr.even`` etc.).
    ccu : CCU
        The central control unit (``ccu.lnzd_nodes`` for the energy model).
    """

    def __init__(self, cfg: EIEConfig, *, pe_blackbox: bool = False):
        require_config(cfg)
        self.cfg = cfg
        self.pe_blackbox = bool(pe_blackbox)
        super().__init__(top_signature_members(cfg))
        #: the array's reset: ``rst`` after the input stage, high from power-up
        self.core_rst = Signal(init=1)
        if self.pe_blackbox:
            # the module is generated separately: only its signature is needed here
            self.pes = [BlackBox(pe_signature(cfg), PE_MODULE, reset=self.core_rst)
                        for _ in range(cfg.n_pes)]
        else:
            self.pes = [PE(cfg) for _ in range(cfg.n_pes)]
        self.ccu = CCU(cfg)

    def elaborate(self, platform):
        m = Module()
        # the one clock domain, without a reset of its own: the array's reset is the
        # registered rst (core_rst), the input stage needs none
        m.domains.sync = ClockDomain(reset_less=True)
        m.d.comb += ClockSignal("sync").eq(self.clk)
        q = self._input_stage(m)
        m.submodules.ccu = ResetInserter(self.core_rst)(self.ccu)
        ccu = self.ccu
        for k, pe in enumerate(self.pes):
            m.submodules[f"pe{k}"] = pe if self.pe_blackbox else \
                ResetInserter(self.core_rst)(pe)

        # the host may touch the memories only when no layer is running
        host_ok = Signal()
        m.d.comb += host_ok.eq((~ccu.busy | ccu.layer_done) & ~self.core_rst)
        we = q.host_we & host_ok

        # ---- sequence control and the descriptor table ----
        m.d.comb += [
            ccu.n_layers.eq(q.n_layers),
            ccu.start.eq(q.start),
            ccu.single_step.eq(q.single_step),
            ccu.resume.eq(q.resume),
            self.busy.eq(ccu.busy),
            self.layer_done.eq(ccu.layer_done),
            self.done.eq(ccu.done),
            ccu.host.we.eq(we & (q.host_space == Space.LAYER)),
            ccu.host.addr.eq(q.host_addr),
            ccu.host.wdata.eq(q.host_wdata),
        ]

        # ---- CCU -> every PE ----
        wiring.connect(m, ccu.params, *(pe.params for pe in self.pes))
        if self.cfg.lstm:  # the LSTM program and the element-wise stage
            m.d.comb += [ccu.lstm_host.we.eq(we & (q.host_space == Space.LSTM)),
                         ccu.lstm_host.addr.eq(q.host_addr),
                         ccu.lstm_host.wdata.eq(q.host_wdata)]
            wiring.connect(m, ccu.ew_params, *(pe.ew_params for pe in self.pes))
            for k, pe in enumerate(self.pes):
                m.d.comb += [pe.ew_go.eq(ccu.ew_go), pe.ew_reset.eq(ccu.ew_reset),
                             pe.ew_to_src.eq(ccu.ew_to_src), ccu.ew_busy[k].eq(pe.ew_busy)]
        m.d.comb += ccu.bc.ready.eq(Cat(pe.bc.ready for pe in self.pes).all())
        for k, pe in enumerate(self.pes):
            m.d.comb += [
                pe.bc.valid.eq(ccu.bc.valid),
                pe.bc.payload.eq(ccu.bc.payload),
                pe.wb_go.eq(ccu.wb_go),
                pe.computing.eq(ccu.computing),
                pe.bc_pending.eq(ccu.bc_pending),
                pe.cnt_clear.eq(ccu.cnt_clear),
                ccu.idle[k].eq(pe.idle),
                ccu.wb_busy[k].eq(pe.wb_busy),
                ccu.act_rd.data[k].eq(pe.act_rd.data),
            ]

        # ---- host writes: SPMAT .. ACT to PE host_pe only, CODEBOOK to every PE ----
        for k, pe in enumerate(self.pes):
            mine = q.host_pe == k
            m.d.comb += [pe.host.addr.eq(q.host_addr), pe.host.wdata.eq(q.host_wdata)]
            for strobe in pe_host_strobes(self.cfg):
                space = _SPACE_OF_STROBE[strobe]
                hit = q.host_space == space
                # one codebook per layer, the same in every PE: broadcast
                strobe_on = we & hit if space == Space.CODEBOOK else we & mine & hit
                m.d.comb += pe.host.we[strobe].eq(strobe_on)
        self._act_reads(m, q, host_ok)
        self._counter_mux(m, q)
        return m

    def _input_stage(self, m):
        """Register every input but ``clk`` (:data:`hw.arch.regmap.INPUT_STAGES` = 1);
        ``rst`` becomes :attr:`core_rst`.  Returns the registered inputs by port name."""
        assert regmap.INPUT_STAGES == 1
        q = SimpleNamespace()
        m.d.sync += self.core_rst.eq(self.rst)
        for name, member in top_signature_members(self.cfg).items():
            if member.flow != In or name in ("clk", "rst"):
                continue
            port = getattr(self, name)
            reg = Signal.like(port, name=f"{name}_q", reset_less=True)
            m.d.sync += reg.eq(port)
            setattr(q, name, reg)
        return q

    def _act_reads(self, m, q, host_ok):
        """Each PE's ``act_rd``: the CCU's group reads while a layer runs, else the host's."""
        cfg, ccu = self.cfg, self.ccu
        # host read address: sel * act_depth + address (act_depth need not be 2**n)
        rd_hi = q.host_raddr >= cfg.act_depth
        rd_addr = Mux(rd_hi, q.host_raddr - cfg.act_depth, q.host_raddr)
        host_rd = Signal()
        m.d.comb += host_rd.eq(q.host_re & host_ok)
        rd_pe = Signal(cfg.pe_bits)  # which PE's data host_rdata shows
        with m.If(host_rd):
            m.d.sync += rd_pe.eq(q.host_pe)
        cell_rd = Signal()  # with the LSTM hardware: a read of the cell state
        if cfg.lstm:
            base = regmap.cell_read_base(cfg)
            is_cell, rd_cell = Signal(), Signal()  # this read / the read host_rdata shows
            m.d.comb += [is_cell.eq(q.host_raddr >= base), cell_rd.eq(host_rd & is_cell)]
            with m.If(host_rd):
                m.d.sync += rd_cell.eq(is_cell)
            for k, pe in enumerate(self.pes):
                m.d.comb += [pe.cell_re.eq(cell_rd & (q.host_pe == k)),
                             pe.cell_raddr.eq(q.host_raddr - base)]
        for k, pe in enumerate(self.pes):
            with m.If(ccu.busy & ~ccu.layer_done):
                m.d.comb += [
                    pe.act_rd.en.eq(ccu.act_rd.en),
                    pe.act_rd.sel.eq(ccu.act_rd.sel),
                    pe.act_rd.addr.eq(ccu.act_rd.addr),
                ]
            with m.Else():
                m.d.comb += [
                    pe.act_rd.en.eq(host_rd & ~cell_rd & (q.host_pe == k)),
                    pe.act_rd.sel.eq(rd_hi),
                    pe.act_rd.addr.eq(rd_addr),
                ]
        rdata = Array(pe.act_rd.data for pe in self.pes)
        if cfg.lstm:
            cdata = Array(pe.cell_rdata for pe in self.pes)
            m.d.comb += self.host_rdata.eq(Mux(rd_cell, cdata[rd_pe], rdata[rd_pe]))
        else:
            m.d.comb += self.host_rdata.eq(rdata[rd_pe])

    def _counter_mux(self, m, q):
        """``cnt_value``: per-PE counter ``cnt_id`` of PE ``cnt_pe``, or a layer's cycles."""
        cfg, ccu = self.cfg, self.ccu
        cnt_pe, cnt_id = q.cnt_pe, q.cnt_id
        n_cnt = len(regmap.counter_names(cfg))
        per_pe = Array(Array(pe.counters[i] for i in range(n_cnt)) for pe in self.pes)
        layer_cycles = Array(ccu.layer_cycles[s] for s in range(cfg.max_layers))
        with m.If(cnt_id == regmap.CNT_LAYER_CYCLES):
            with m.If(cnt_pe < cfg.max_layers):
                m.d.comb += self.cnt_value.eq(layer_cycles[cnt_pe])
        with m.Elif((cnt_id < regmap.N_COUNTERS) & (cnt_pe < cfg.n_pes)):
            m.d.comb += self.cnt_value.eq(per_pe[cnt_pe][cnt_id])
        if cfg.lstm:  # the element-wise unit's, after the FC counters in the PE's array
            base, n_ew = regmap.EW_COUNTER_BASE, len(regmap.EW_COUNTER_NAMES)
            with m.Elif((cnt_id >= base) & (cnt_id < base + n_ew) &
                        (cnt_pe < cfg.n_pes)):
                m.d.comb += self.cnt_value.eq(
                    per_pe[cnt_pe][cnt_id - base + regmap.N_COUNTERS])
