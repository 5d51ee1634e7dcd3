"""The memories of one PE, read from the configuration: the one inventory every layer uses.

Every depth and width comes from :class:`hw.arch.config.EIEConfig`, never from hand-typed
sizes.  Each memory carries:

* the PE unit (Amaranth submodule of ``eie_pe``) and the memory's name inside it, which give
  its hierarchical names: ``eie_pe.<unit>/<memory>`` for Yosys (:attr:`PEMemory.verilog`),
  ``<unit>.eiegen_mem_<memory>`` for the simulator's ``$fread`` preload
  (:meth:`PEMemory.preload_file`), ``pe.<unit>.<memory>`` for tests that patch an elaborated PE;
* the compiler's image file (``images/pe<k>/<image>.hex``) when the compiler fills it;
* the EIE Table II row it belongs to, for the energy and area models.

A memory of at most ``regfile_max_bits`` bits is a register file (EIE's activation register
files are 64 x 16 bits); a larger one is an SRAM macro.  The activation queue is always a
register FIFO, as in EIE (758 um^2 in Table II).
"""

from __future__ import annotations

from dataclasses import dataclass

#: the rows of EIE Table II, in the paper's order
MODULES = ("Act queue", "PtrRead", "SpmatRead", "ArithmUnit", "ActRW")
#: the row of an LSTM's element-wise units (ESE's ElemMul; hw/ew_unit.py), beside Table II's
EW_MODULE = "ElemMul"


def modules(cfg) -> tuple:
    """The module rows of ``cfg``'s PE: :data:`MODULES`, and :data:`EW_MODULE` with the LSTM
    hardware."""
    return MODULES + ((EW_MODULE,) if cfg.lstm else ())
#: name of the shared PE module in the generated Verilog; its instances in ``eie_top`` are
#: ``pe<k>`` (with the Verilog export's black-box wrapper, ``pe<k>.inst``)
PE_MODULE = "eie_pe"
TOP_MODULE = "eie_top"
#: the simulation harness around eie_top (sim.rtl.harness), the Verilator model's top level:
#: it instantiates eie_top as ``eie_top``, so simulation names start with ``eiegen_sim.eie_top``
SIM_TOP = "eiegen_sim"
#: the compiler's binary copy of a preloaded memory's image (beside its ``.hex``): every word
#: big-endian in ceil(width / 8) bytes, what Verilog's ``$fread`` reads, 5x faster than
#: ``$readmemh`` parses the hex text in Verilator (0.1 s against 0.5 s for alexnet_fc's 2 M words)
PRELOAD_SUFFIX = ".bin"


@dataclass(frozen=True)
class PEMemory:
    """One memory of a PE.

    Attributes
    ----------
    name : str
        Short name used in reports and images (``spmat``, ``ptr_even``, ...).
    unit : str
        Submodule of ``eie_pe`` that holds it (``ptr``; ``queue.fifo`` for the queue's FIFO).
    memory : str
        The memory's name inside the unit (``even``).
    module : str
        EIE Table II row it belongs to.
    depth, width : int
        Words and bits per word.
    image : str or None
        Stem of the compiler's per-PE hex image (``images/pe<k>/<image>.hex``), None when the
        host fills the memory at run time (activations, codebooks) or nothing does.
    always_regfile : bool
        Built from flip-flops whatever its size (the activation queue).
    """

    name: str
    unit: str
    memory: str
    module: str
    depth: int
    width: int
    image: str | None = None
    always_regfile: bool = False

    @property
    def verilog(self) -> str:
        """``<module>/<memory>`` selection path of the memory in the generated Verilog."""
        return f"{PE_MODULE}.{self.unit}/{self.memory}"

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def kbytes(self) -> float:
        return self.bits / 8 / 1024

    def preload_file(self, pe: int, segment: int | None = None) -> str:
        """File name the simulation's preload of PE ``pe`` looks for (a binary image,
        :data:`PRELOAD_SUFFIX`, read by ``$fread``; ``segment``: the file a segment reload
        reads, ``... .seg<segment>.bin``)."""
        stem = f"{SIM_TOP}.{TOP_MODULE}.pe{pe}.inst.{self.unit}.eiegen_mem_{self.memory}"
        return f"{stem}{PRELOAD_SUFFIX}" if segment is None else \
            f"{stem}.seg{segment}{PRELOAD_SUFFIX}"

    def instance_path(self, pe: int) -> str:
        """Hierarchical name of the memory array below ``eie_top`` in the simulation Verilog."""
        return f"pe{pe}.inst.{self.unit}.{self.memory}"

    def is_regfile(self, regfile_max_bits: float) -> bool:
        """True when the memory is costed and sized as flip-flops, not as an SRAM macro."""
        return self.always_regfile or self.bits <= regfile_max_bits


def pe_memories(cfg) -> list[PEMemory]:
    """Every memory of one PE of ``cfg`` (hw/ptr_read.py, spmat_read.py, arith.py, act_rw.py;
    with the LSTM hardware hw/ew_unit.py's: the sigmoid and tanh ROMs, the cell state and the
    peepholes)."""
    ew = [
        PEMemory("lut_sigmoid", "ew", "sigmoid", EW_MODULE, cfg.lut_points, cfg.act_bits),
        PEMemory("lut_tanh", "ew", "tanh", EW_MODULE, cfg.lut_points, cfg.act_bits),
        PEMemory("cells", "ew", "cells", EW_MODULE, cfg.ew_cells_max, cfg.cell_width),
        PEMemory("peep", "ew", "peep", EW_MODULE, 3 * cfg.ew_cells_max, cfg.act_bits),
    ] if cfg.lstm else []
    return [
        PEMemory("act_queue", "queue.fifo", "storage", "Act queue", cfg.queue_depth,
                 cfg.queue_entry_bits, always_regfile=True),
        PEMemory("ptr_even", "ptr", "even", "PtrRead", cfg.ptr_bank_depth, cfg.ptr_bits,
                 image="ptr_even"),
        PEMemory("ptr_odd", "ptr", "odd", "PtrRead", cfg.ptr_bank_depth, cfg.ptr_bits,
                 image="ptr_odd"),
        PEMemory("spmat", "spmat", "spmat", "SpmatRead", cfg.spmat_depth, cfg.spmat_word_bits,
                 image="spmat"),
        PEMemory("codebook", "arith", "codebook", "ArithmUnit",
                 cfg.max_layers * cfg.codebook_size, cfg.weight_bits),
        # with the LSTM hardware, two banks (hw/arith.py): acc is bank 0, acc1 bank 1
        PEMemory("acc", "arith", "acc", "ActRW", cfg.acc_bank_words, cfg.acc_bits),
        *([PEMemory("acc1", "arith", "acc1", "ActRW", cfg.acc_bank_words, cfg.acc_bits)]
          if cfg.acc_banks == 2 else []),
        PEMemory("act0", "act_rw", "act0", "ActRW", cfg.act_depth, cfg.act_bits),
        PEMemory("act1", "act_rw", "act1", "ActRW", cfg.act_depth, cfg.act_bits),
        PEMemory("bias", "act_rw", "bias", "ActRW", cfg.bias_depth, cfg.act_bits,
                 image="bias"),
    ] + ew


def memory_by_name(cfg) -> dict[str, PEMemory]:
    return {m.name: m for m in pe_memories(cfg)}


def preloaded_memories(cfg) -> list[PEMemory]:
    """The memories the simulator preloads from the compiler's images (``$fread`` of their
    :data:`PRELOAD_SUFFIX` copies)."""
    return [m for m in pe_memories(cfg) if m.image is not None]


#: the memories whose images change between segments (compiler.layout): Spmat in every segment,
#: the pointer banks in a segment whose pointers do not fit beside the resident ones
SEGMENT_MEMORIES = ("spmat", "ptr_even", "ptr_odd")


def segment_stem(image: str, segment: int) -> str:
    """Stem of ``image``'s hex file for ``segment`` (``spmat``, ``spmat.seg1``, ...)."""
    return image if segment == 0 else f"{image}.seg{segment}"


def segment_key(image: str, segment: int) -> str:
    """``images.npz`` key of ``image`` for ``segment`` (``ptr_even``, ``ptr_even_seg2``, ...)."""
    return image if segment == 0 else f"{image}_seg{segment}"


def ptr_reload_segments(layers) -> list[int]:
    """The segments s > 0 with a pointer image of their own (layer descriptors' ``ptr_segment``)."""
    return sorted({int(lay.get("ptr_segment", 0)) for lay in layers} - {0})


def segment_images(layers, segment: int) -> dict[str, int]:
    """For each memory of :data:`SEGMENT_MEMORIES`, the segment whose image it holds while
    ``segment`` runs (``layers``: every layer descriptor of the model)."""
    ptr = [int(lay.get("ptr_segment", 0)) for lay in layers
           if int(lay.get("segment", 0)) == segment]
    ps = ptr[0] if ptr else 0
    return {"spmat": segment, "ptr_even": ps, "ptr_odd": ps}
