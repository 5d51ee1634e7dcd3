"""The simulation harness around ``eie_top``: module ``eiegen_sim`` (simulation only).

The Verilator executable's top level is ``eiegen_sim`` (:data:`hw.arch.memories.SIM_TOP`): it
has every port of ``eie_top`` under the same name (from :func:`hw.gen_verilog.port_table`),
instantiates ``eie_top`` as ``eie_top`` and adds three simulation-only helpers that drive
``eie_top``'s real ports:

* the **clock**: ``clk`` is generated here (``always #5``, :data:`sim.rtl.player.CLOCK_NS`;
  Verilator ``--timing``) and is an output of the harness, which the bench awaits edges of.  A
  clock driven from cocotb costs a timer callback and a VPI write per edge: generated here, a
  1-PE model simulates 1.9x faster, eie64 about 6 % (measured 2026-12-01, alternating runs);

* the **segment reload** (``eiegen_reload``, ``eiegen_seg``): on a rising edge every PE's
  memories of :data:`hw.arch.memories.SEGMENT_MEMORIES` are loaded by ``$fread`` from
  ``<+eiegen_images=DIR>/<PEMemory.preload_file(pe, eiegen_seg)>`` when that file exists (the
  contents the host would write in EIE's I/O mode between segments, without simulating
  millions of host writes; the bench follows it with one host write per PE's Spmat, which
  invalidates the held word exactly as a host reload does);
* the **host player** (``eiegen_play`` in, ``eiegen_playing`` out): a program of host
  operations (:data:`OP_WRITE`, :data:`OP_READ`, :data:`OP_COUNTER`; :func:`encode_program`)
  that the bench writes to ``<+eiegen_play=DIR>/play.hex`` is played one operation per clock
  onto ``eie_top``'s host and counter ports, exactly as a host would drive them, and the read
  data and counter values (captured :data:`hw.arch.regmap.HOST_READ_LATENCY` /
  :data:`~hw.arch.regmap.COUNTER_READ_LATENCY` edges after each request) are written to
  ``DIR/played.hex``.  The bench then waits for one edge of ``eiegen_playing`` instead of
  two Python callbacks per clock: a 9,216-word input costs 9,216 simulated cycles and no
  Python per word.  While the player plays, its outputs replace the host ports; otherwise
  the ports pass straight through (the bench's direct port driver, ``EIEGEN_TB_HOST=ports``,
  uses them).

The operation format is written once, in :mod:`sim.rtl.player` (which the bench imports
without this module's Amaranth dependency).
"""

from __future__ import annotations


from hw.arch.config import EIEConfig
from hw.arch.memories import (PRELOAD_SUFFIX, SEGMENT_MEMORIES, SIM_TOP, TOP_MODULE,
                              pe_memories)
from hw.arch.regmap import COUNTER_READ_LATENCY, HOST_READ_LATENCY, host_read_bits
from hw.gen_verilog import port_table
from sim.rtl.player import (CLOCK_NS, OP_COUNTER, OP_READ, OP_WRITE, PLAY_DEPTH, PLAY_FILE,
                            PLAYED_FILE)

#: the harness's Verilog file (beside eie_top.v in a simulator build)
HARNESS_FILE = f"{SIM_TOP}.v"
#: simulation-only ports of ``eiegen_sim`` beyond ``eie_top``'s: (name, direction, width)
SIM_PORTS = (("eiegen_reload", "in", 1), ("eiegen_seg", "in", 16),
             ("eiegen_play", "in", 1), ("eiegen_playing", "out", 1))
#: the ports of eie_top the player drives, with the operation field each takes
_PLAYED = {"host_we": None, "host_re": None, "host_space": "space", "host_pe": "pe",
           "host_addr": "addr", "host_wdata": "data", "host_raddr": "addr",
           "cnt_pe": "pe", "cnt_id": "addr"}
_FIELD = {"space": (123, 120), "pe": (119, 96), "addr": (95, 64), "data": (63, 0)}


def harness_ports(cfg: EIEConfig) -> list[dict]:
    """The ports of ``eiegen_sim``: ``eie_top``'s, then :data:`SIM_PORTS`; ``clk`` is an output
    (the harness generates the clock)."""
    ports = [dict(p, direction="out") if p["name"] == "clk" else p for p in port_table(cfg)]
    return ports + [dict(name=n, direction=d, width=w, signed=False) for n, d, w in SIM_PORTS]


def _decl(p: dict) -> str:
    rng = "" if p["width"] == 1 else f"[{p['width'] - 1}:0] "
    return f"  {'input' if p['direction'] == 'in' else 'output'} {rng}{p['name']};"


def reload_block(cfg: EIEConfig) -> str:
    """The segment reload (see the module notes): one ``$fread`` per PE and memory of
    :data:`hw.arch.memories.SEGMENT_MEMORIES`, when its file exists."""
    lines = ["  always @(posedge eiegen_reload) begin : eiegen_segment_reload",
             "    string dir, path;", "    integer fd, n;",
             '    if ($value$plusargs("eiegen_images=%s", dir)) begin']
    for k in range(cfg.n_pes):
        for mem in pe_memories(cfg):
            if mem.name not in SEGMENT_MEMORIES:
                continue
            stem = mem.preload_file(k, 0)[: -len("0" + PRELOAD_SUFFIX)]
            lines += [f'      path = {{dir, "/{stem}", $sformatf("%0d", eiegen_seg), '
                      f'"{PRELOAD_SUFFIX}"}};',
                      '      fd = $fopen(path, "rb");',
                      "      if (fd != 0) begin",
                      f"        n = $fread({TOP_MODULE}.{mem.instance_path(k)}, fd);",
                      "        $fclose(fd);",
                      "      end"]
    lines += ["    end", "  end"]
    return "\n".join(lines) + "\n"


def player_block(cfg: EIEConfig) -> str:
    """The host player (see the module notes)."""
    rl, cl = HOST_READ_LATENCY, COUNTER_READ_LATENCY
    widths = {p["name"]: p["width"] for p in port_table(cfg)}
    rw = host_read_bits(cfg)
    regs = "\n".join(f"  reg {'' if widths[n] == 1 else f'[{widths[n] - 1}:0] '}p_{n} = 0;"
                     for n in _PLAYED)

    def take(name):
        hi, lo = _FIELD[_PLAYED[name]]
        w = widths[name]
        return f"p_{name} <= op[{lo + w - 1}:{lo}];" if w <= hi - lo + 1 else \
            f"p_{name} <= op[{hi}:{lo}];"

    write = " ".join(take(n) for n in ("host_space", "host_pe", "host_addr", "host_wdata"))
    read = " ".join(take(n) for n in ("host_pe", "host_raddr"))
    count = " ".join(take(n) for n in ("cnt_pe", "cnt_id"))
    return f"""\
  // ---- the host player (sim.rtl.harness) ----
  reg [127:0] eiegen_prog [0:{PLAY_DEPTH - 1}];
  reg [63:0] eiegen_res [0:{PLAY_DEPTH - 1}];
  reg eiegen_active = 0, eiegen_draining = 0, eiegen_play_q = 0;
  reg [31:0] eiegen_pc = 0, eiegen_nres = 0, eiegen_drain = 0;
  // request pipelines: {{valid, result index}}, captured {rl} / {cl} edges after the request
  reg [32:0] eiegen_rd_pipe [0:{rl}];
  reg [32:0] eiegen_cn_pipe [0:{cl}];
{regs}
  assign eiegen_playing = eiegen_active | eiegen_draining;
  always @(posedge clk) begin : eiegen_player
    string dir;
    reg [127:0] op;
    integer i;
    eiegen_play_q <= eiegen_play;
    if (eiegen_rd_pipe[{rl}][32])
      eiegen_res[eiegen_rd_pipe[{rl}][31:0]] <= {{{{{64 - rw}{{1'b0}}}}, host_rdata}};
    if (eiegen_cn_pipe[{cl}][32])
      eiegen_res[eiegen_cn_pipe[{cl}][31:0]] <= {{32'd0, cnt_value}};
    for (i = {rl}; i > 0; i = i - 1) eiegen_rd_pipe[i] <= eiegen_rd_pipe[i - 1];
    for (i = {cl}; i > 0; i = i - 1) eiegen_cn_pipe[i] <= eiegen_cn_pipe[i - 1];
    eiegen_rd_pipe[0] <= 33'd0;
    eiegen_cn_pipe[0] <= 33'd0;
    p_host_we <= 0;
    p_host_re <= 0;
    if (eiegen_play && !eiegen_play_q && !eiegen_playing) begin
      if ($value$plusargs("eiegen_play=%s", dir)) begin
        $readmemh({{dir, "/{PLAY_FILE}"}}, eiegen_prog);
        eiegen_active <= 1;
        eiegen_pc <= 0;
        eiegen_nres <= 0;
      end else
        $display("eiegen_sim: eiegen_play without +eiegen_play=DIR");
    end else if (eiegen_active) begin
      op = eiegen_prog[eiegen_pc];
      eiegen_pc <= eiegen_pc + 1;
      case (op[127:124])
        {OP_WRITE}: begin p_host_we <= 1; {write} end
        {OP_READ}: begin
          p_host_re <= 1; {read}
          eiegen_rd_pipe[0] <= {{1'b1, eiegen_nres}};
          eiegen_nres <= eiegen_nres + 1;
        end
        {OP_COUNTER}: begin
          {count}
          eiegen_cn_pipe[0] <= {{1'b1, eiegen_nres}};
          eiegen_nres <= eiegen_nres + 1;
        end
        default: begin  // the end: wait for the last captures
          eiegen_active <= 0;
          eiegen_draining <= 1;
          eiegen_drain <= {max(rl, cl) + 1};
        end
      endcase
    end else if (eiegen_draining) begin
      if (eiegen_drain == 0) begin
        if (eiegen_nres != 0 && $value$plusargs("eiegen_play=%s", dir))
          $writememh({{dir, "/{PLAYED_FILE}"}}, eiegen_res, 0, eiegen_nres - 1);
        eiegen_draining <= 0;
      end else
        eiegen_drain <= eiegen_drain - 1;
    end
  end
"""


def harness_verilog(cfg: EIEConfig) -> str:
    """Verilog of module ``eiegen_sim`` for ``cfg``."""
    ports = harness_ports(cfg)
    eie = port_table(cfg)
    conns = []
    for p in eie:
        n = p["name"]
        if n in _PLAYED:
            conns.append(f"    .{n}(eiegen_playing ? p_{n} : {n})")
        else:
            conns.append(f"    .{n}({n})")
    return (f"// {SIM_TOP}: the simulation harness of eie_top (sim.rtl.harness); not for "
            "synthesis\n"
            f"module {SIM_TOP}({', '.join(p['name'] for p in ports)});\n"
            + "\n".join(_decl(p) for p in ports) + "\n"
            + "  // the clock, generated here (Verilator --timing): no VPI write per edge\n"
            + f"  reg clk = 1'b0;\n  always #{CLOCK_NS // 2} clk = ~clk;\n"
            + player_block(cfg)
            + f"  {TOP_MODULE} {TOP_MODULE} (\n" + ",\n".join(conns) + "\n  );\n"
            + reload_block(cfg) + "endmodule\n")
