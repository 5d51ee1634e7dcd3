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
  ``host_rdata`` the next cycle.  The read uses the PE's ``act_rd_*`` port, which the CCU owns
  while a layer runs.
* the host may access the memories while the array is idle (``busy`` low) and while it is paused
  after a layer in single-step mode (``layer_done`` high: no PE is doing anything then); in any
  other cycle host strobes are ignored, so a running layer can never be disturbed.
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

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
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
        if self.pe_blackbox:
            # the module is generated separately: only its signature is needed here
            self.pes = [BlackBox(pe_signature(cfg), PE_MODULE) for _ in range(cfg.n_pes)]
        else:
            self.pes = [PE(cfg) for _ in range(cfg.n_pes)]
        self.ccu = CCU(cfg)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ccu = ccu = self.ccu
        for k, pe in enumerate(self.pes):
            m.submodules[f"pe{k}"] = pe

        # the host may touch the memories only when no layer is running
        host_ok = Signal()
        m.d.comb += host_ok.eq(~ccu.busy | ccu.layer_done)
        we = self.host_we & host_ok

        # ---- sequence control and the descriptor table ----
        m.d.comb += [
            ccu.n_layers.eq(self.n_layers),
            ccu.start.eq(self.start),
            ccu.single_step.eq(self.single_step),
            ccu.resume.eq(self.resume),
            self.busy.eq(ccu.busy),
            self.layer_done.eq(ccu.layer_done),
            self.done.eq(ccu.done),
            ccu.host.we.eq(we & (self.host_space == Space.LAYER)),
            ccu.host.addr.eq(self.host_addr),
            ccu.host.wdata.eq(self.host_wdata),
        ]

        # ---- CCU -> every PE ----
        wiring.connect(m, ccu.params, *(pe.params for pe in self.pes))
        if self.cfg.lstm:  # the LSTM program and the element-wise stage
            m.d.comb += [ccu.lstm_host.we.eq(we & (self.host_space == Space.LSTM)),
                         ccu.lstm_host.addr.eq(self.host_addr),
                         ccu.lstm_host.wdata.eq(self.host_wdata)]
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
            mine = self.host_pe == k
            m.d.comb += [pe.host.addr.eq(self.host_addr), pe.host.wdata.eq(self.host_wdata)]
            for strobe in pe_host_strobes(self.cfg):
                space = _SPACE_OF_STROBE[strobe]
                hit = self.host_space == space
                # one codebook per layer, the same in every PE: broadcast
                strobe_on = we & hit if space == Space.CODEBOOK else we & mine & hit
                m.d.comb += pe.host.we[strobe].eq(strobe_on)
        self._act_reads(m, host_ok)
        self._counter_mux(m)
        return m

    def _act_reads(self, m, host_ok):
        """Each PE's ``act_rd``: the CCU's group reads while a layer runs, else the host's."""
        cfg, ccu = self.cfg, self.ccu
        # host read address: sel * act_depth + address (act_depth need not be 2**n)
        rd_hi = self.host_raddr >= cfg.act_depth
        rd_addr = Mux(rd_hi, self.host_raddr - cfg.act_depth, self.host_raddr)
        host_rd = Signal()
        m.d.comb += host_rd.eq(self.host_re & host_ok)
        rd_pe = Signal(cfg.pe_bits)  # which PE's data host_rdata shows
        with m.If(host_rd):
            m.d.sync += rd_pe.eq(self.host_pe)
        cell_rd = Signal()  # with the LSTM hardware: a read of the cell state
        if cfg.lstm:
            base = regmap.cell_read_base(cfg)
            is_cell, rd_cell = Signal(), Signal()  # this read / the read host_rdata shows
            m.d.comb += [is_cell.eq(self.host_raddr >= base), cell_rd.eq(host_rd & is_cell)]
            with m.If(host_rd):
                m.d.sync += rd_cell.eq(is_cell)
            for k, pe in enumerate(self.pes):
                m.d.comb += [pe.cell_re.eq(cell_rd & (self.host_pe == k)),
                             pe.cell_raddr.eq(self.host_raddr - base)]
        for k, pe in enumerate(self.pes):
            with m.If(ccu.busy & ~ccu.layer_done):
                m.d.comb += [
                    pe.act_rd.en.eq(ccu.act_rd.en),
                    pe.act_rd.sel.eq(ccu.act_rd.sel),
                    pe.act_rd.addr.eq(ccu.act_rd.addr),
                ]
            with m.Else():
                m.d.comb += [
                    pe.act_rd.en.eq(host_rd & ~cell_rd & (self.host_pe == k)),
                    pe.act_rd.sel.eq(rd_hi),
                    pe.act_rd.addr.eq(rd_addr),
                ]
        rdata = Array(pe.act_rd.data for pe in self.pes)
        if cfg.lstm:
            cdata = Array(pe.cell_rdata for pe in self.pes)
            m.d.comb += self.host_rdata.eq(Mux(rd_cell, cdata[rd_pe], rdata[rd_pe]))
        else:
            m.d.comb += self.host_rdata.eq(rdata[rd_pe])

    def _counter_mux(self, m):
        """``cnt_value``: per-PE counter ``cnt_id`` of PE ``cnt_pe``, or a layer's cycles."""
        cfg, ccu = self.cfg, self.ccu
        n_cnt = len(regmap.counter_names(cfg))
        per_pe = Array(Array(pe.counters[i] for i in range(n_cnt)) for pe in self.pes)
        layer_cycles = Array(ccu.layer_cycles[s] for s in range(cfg.max_layers))
        with m.If(self.cnt_id == regmap.CNT_LAYER_CYCLES):
            with m.If(self.cnt_pe < cfg.max_layers):
                m.d.comb += self.cnt_value.eq(layer_cycles[self.cnt_pe])
        with m.Elif((self.cnt_id < regmap.N_COUNTERS) & (self.cnt_pe < cfg.n_pes)):
            m.d.comb += self.cnt_value.eq(per_pe[self.cnt_pe][self.cnt_id])
        if cfg.lstm:  # the element-wise unit's, after the FC counters in the PE's array
            base, n_ew = regmap.EW_COUNTER_BASE, len(regmap.EW_COUNTER_NAMES)
            with m.Elif((self.cnt_id >= base) & (self.cnt_id < base + n_ew) &
                        (self.cnt_pe < cfg.n_pes)):
                m.d.comb += self.cnt_value.eq(
                    per_pe[self.cnt_pe][self.cnt_id - base + regmap.N_COUNTERS])
