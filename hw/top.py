"""Top level ``eie_top``: N processing elements, the central control unit and the host interface.

Ports are exactly those of docs/architecture.md section 5 (Verilog port names are the same).

Host interface:

* writes (``host_we``): ``host_space`` picks the memory.  SPMAT, PTR, BIAS and ACT go to PE
  ``host_pe`` only (``host_pe >= n_pes`` writes nothing); CODEBOOK goes to every PE (each keeps
  a copy, EIE's per-PE codebook); LAYER goes to the CCU's descriptor table (``slot * 8 +
  field``).  ``host_addr`` and ``host_wdata`` are shared by all PEs; each PE only acts on its own
  strobe.
* reads (``host_re``): ``host_raddr = sel * act_depth + address`` on PE ``host_pe``; the data is on
  ``host_rdata`` the next cycle.  The read uses the PE's ``act_rd_*`` port, which the CCU owns
  while a layer runs.
* the host may access the memories while the array is idle (``busy`` low) and while it is paused
  after a layer in single-step mode (``layer_done`` high: no PE is doing anything then); in any
  other cycle host strobes are ignored, so a running layer can never be disturbed.
* counters: ``cnt_value`` = counter ``cnt_id`` of PE ``cnt_pe`` (ids 0..10), or for id 15 the
  cycles of layer slot ``cnt_pe`` (``cnt_pe`` is ``cfg.cnt_sel_bits`` wide for that reason); 0
  for other ids and out-of-range selections.

For Verilog export (:mod:`hw.gen_verilog`) ``pe_blackbox=True`` replaces every PE by an instance
of one separately generated module ``eie_pe`` (:mod:`hw.blackbox`); otherwise Amaranth would emit
a copy of the PE per instance (about 1.7 MB of Verilog each for eie64).
"""

from __future__ import annotations

from amaranth._unused import MustUse
from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig
from hw.blackbox import BlackBox
from hw.ccu import CCU
from hw.pe import N_COUNTERS, PE

#: ``host_space`` values (docs/architecture.md section 5)
SPACE_SPMAT = 0
SPACE_PTR = 1
SPACE_BIAS = 2
SPACE_ACT = 3
SPACE_CODEBOOK = 4
SPACE_LAYER = 5
#: ``cnt_id`` of the per-layer cycle counter
CNT_LAYER_CYCLES = 15
#: name of the shared PE module in the generated Verilog
PE_MODULE = "eie_pe"

#: PE ports driven by the CCU, common to every PE
_CCU_TO_PE = ("ptr_base", "bias_base", "shift", "relu", "rows_local", "cb_slot", "src_sel",
              "bc_valid", "bc_col", "bc_act", "wb_go", "computing", "bc_pending", "cnt_clear")


def top_signature_members(cfg: EIEConfig) -> dict:
    """Port name -> ``In``/``Out`` member of ``eie_top`` (section 5 of the architecture)."""
    return {
        "host_we": In(1),
        "host_space": In(3),
        "host_pe": In(cfg.pe_bits),
        "host_addr": In(32),
        "host_wdata": In(64),
        "host_re": In(1),
        "host_raddr": In(32),
        "host_rdata": Out(signed(cfg.act_bits)),
        "n_layers": In(cfg.layer_index_bits + 1),
        "start": In(1),
        "single_step": In(1),
        "resume": In(1),
        "busy": Out(1),
        "layer_done": Out(1),
        "done": Out(1),
        "cnt_pe": In(cfg.cnt_sel_bits),
        "cnt_id": In(4),
        "cnt_value": Out(32),
    }


def _silence_unused(obj, depth=3):
    """Mark an elaboratable and the units / memories it holds as deliberately unused."""
    if depth < 0:
        return
    if isinstance(obj, MustUse):
        obj._MustUse__silence = True
    if isinstance(obj, (list, tuple)):
        for x in obj:
            _silence_unused(x, depth - 1)
    elif isinstance(obj, MustUse):
        for x in vars(obj).values():
            if isinstance(x, (MustUse, list, tuple)):
                _silence_unused(x, depth - 1)


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
        if not isinstance(cfg, EIEConfig):
            raise TypeError(f"cfg must be an EIEConfig, not {cfg!r}")
        self.cfg = cfg
        self.pe_blackbox = bool(pe_blackbox)
        super().__init__(top_signature_members(cfg))
        if self.pe_blackbox:
            proto = PE(cfg)
            # only its signature is used (the module is generated separately): never elaborated
            _silence_unused(proto)
            self.pes = [BlackBox(proto.signature, PE_MODULE) for _ in range(cfg.n_pes)]
        else:
            self.pes = [PE(cfg) for _ in range(cfg.n_pes)]
        self.ccu = CCU(cfg)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.n_pes
        m.submodules.ccu = ccu = self.ccu
        for k, pe in enumerate(self.pes):
            m.submodules[f"pe{k}"] = pe

        # the host may touch the memories only when no layer is running
        host_ok = Signal()
        m.d.comb += host_ok.eq(~ccu.busy | ccu.layer_done)

        # ---- sequence control ----
        m.d.comb += [
            ccu.n_layers.eq(self.n_layers),
            ccu.start.eq(self.start),
            ccu.single_step.eq(self.single_step),
            ccu.resume.eq(self.resume),
            self.busy.eq(ccu.busy),
            self.layer_done.eq(ccu.layer_done),
            self.done.eq(ccu.done),
            ccu.desc_we.eq(self.host_we & host_ok & (self.host_space == SPACE_LAYER)),
            ccu.desc_addr.eq(self.host_addr),
            ccu.desc_wdata.eq(self.host_wdata),
        ]

        # ---- host read address: sel * act_depth + address (act_depth need not be 2**n) ----
        rd_hi = self.host_raddr >= cfg.act_depth
        rd_addr = Mux(rd_hi, self.host_raddr - cfg.act_depth, self.host_raddr)
        host_rd = Signal()
        m.d.comb += host_rd.eq(self.host_re & host_ok)
        rd_pe = Signal(cfg.pe_bits)  # which PE's data host_rdata shows
        with m.If(host_rd):
            m.d.sync += rd_pe.eq(self.host_pe)

        we = self.host_we & host_ok
        for k, pe in enumerate(self.pes):
            mine = self.host_pe == k
            for name in _CCU_TO_PE:
                m.d.comb += getattr(pe, name).eq(getattr(ccu, name))
            m.d.comb += [
                ccu.queue_ready[k].eq(pe.queue_ready),
                ccu.idle[k].eq(pe.idle),
                ccu.wb_busy[k].eq(pe.wb_busy),
                ccu.act_rd_data[k].eq(pe.act_rd_data),
                pe.host_addr.eq(self.host_addr),
                pe.host_wdata.eq(self.host_wdata),
                pe.host_we_spmat.eq(we & mine & (self.host_space == SPACE_SPMAT)),
                pe.host_we_ptr.eq(we & mine & (self.host_space == SPACE_PTR)),
                pe.host_we_bias.eq(we & mine & (self.host_space == SPACE_BIAS)),
                pe.host_we_act.eq(we & mine & (self.host_space == SPACE_ACT)),
                # one codebook per layer, the same in every PE: broadcast
                pe.host_we_cb.eq(we & (self.host_space == SPACE_CODEBOOK)),
            ]
            # source-group reads of the CCU, or the host's read of this PE only
            with m.If(ccu.busy & ~ccu.layer_done):
                m.d.comb += [
                    pe.act_rd_en.eq(ccu.act_rd_en),
                    pe.act_rd_sel.eq(ccu.act_rd_sel),
                    pe.act_rd_addr.eq(ccu.act_rd_addr),
                ]
            with m.Else():
                m.d.comb += [
                    pe.act_rd_en.eq(host_rd & mine),
                    pe.act_rd_sel.eq(rd_hi),
                    pe.act_rd_addr.eq(rd_addr),
                ]
        rdata = Array(pe.act_rd_data for pe in self.pes)
        m.d.comb += self.host_rdata.eq(rdata[rd_pe])

        # ---- counter mux ----
        per_pe = Array(Array(pe.counters[i] for i in range(N_COUNTERS)) for pe in self.pes)
        layer_cycles = Array(ccu.layer_cycles[s] for s in range(cfg.max_layers))
        with m.If(self.cnt_id == CNT_LAYER_CYCLES):
            with m.If(self.cnt_pe < cfg.max_layers):
                m.d.comb += self.cnt_value.eq(layer_cycles[self.cnt_pe])
        with m.Elif((self.cnt_id < N_COUNTERS) & (self.cnt_pe < n)):
            m.d.comb += self.cnt_value.eq(per_pe[self.cnt_pe][self.cnt_id])
        return m
