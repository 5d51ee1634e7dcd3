"""The memories of one PE, read from the configuration: what the energy and area models cost.

Every depth and width comes from :class:`hw.arch.config.EIEConfig` (and the activation queue's
element layout from :func:`hw.act_queue.col_bits`), never from hand-typed sizes.  Each memory is
tagged with the EIE Table II module it belongs to and with the hierarchical Verilog name
(``<unit>.<memory>`` inside ``eie_pe``) under which Yosys finds it, so the area model can tell
synthesis which memories are SRAM macros and which are flip-flop register files.

A memory of at most ``regfile_max_bits`` bits is a register file (EIE's activation register
files are 64 x 16 bits); a larger one is an SRAM macro.  The activation queue is always a
register FIFO, as in EIE (758 um^2 in Table II).
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.arch.config import EIEConfig

#: the rows of EIE Table II, in the paper's order
MODULES = ("Act queue", "PtrRead", "SpmatRead", "ArithmUnit", "ActRW")


@dataclass(frozen=True)
class PEMemory:
    """One memory of a PE.

    Attributes
    ----------
    name : str
        Short name used in reports (``spmat``, ``ptr_even``, ...).
    verilog : str
        ``<module>/<memory>`` selection path of the memory in the generated Verilog.
    module : str
        EIE Table II row it belongs to.
    depth, width : int
        Words and bits per word.
    always_regfile : bool
        Built from flip-flops whatever its size (the activation queue).
    """

    name: str
    verilog: str
    module: str
    depth: int
    width: int
    always_regfile: bool = False

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def kbytes(self) -> float:
        return self.bits / 8 / 1024

    def is_regfile(self, regfile_max_bits: float) -> bool:
        """True when the memory is costed and sized as flip-flops, not as an SRAM macro."""
        return self.always_regfile or self.bits <= regfile_max_bits


def queue_entry_bits(cfg: EIEConfig) -> int:
    """Bits of one activation-queue element: column index ``j`` and ``a_j``."""
    from hw.act_queue import col_bits

    return col_bits(cfg) + cfg.act_bits


def pe_memories(cfg: EIEConfig) -> list[PEMemory]:
    """Every memory of one PE of ``cfg`` (hw/ptr_read.py, spmat_read.py, arith.py, act_rw.py)."""
    return [
        PEMemory("act_queue", "eie_pe.queue.fifo/storage", "Act queue", cfg.queue_depth,
                 queue_entry_bits(cfg), always_regfile=True),
        PEMemory("ptr_even", "eie_pe.ptr/even", "PtrRead", cfg.ptr_bank_depth, cfg.ptr_bits),
        PEMemory("ptr_odd", "eie_pe.ptr/odd", "PtrRead", cfg.ptr_bank_depth, cfg.ptr_bits),
        PEMemory("spmat", "eie_pe.spmat/spmat", "SpmatRead", cfg.spmat_depth,
                 cfg.spmat_word_bits),
        PEMemory("codebook", "eie_pe.arith/codebook", "ArithmUnit",
                 cfg.max_layers * cfg.codebook_size, cfg.weight_bits),
        PEMemory("acc", "eie_pe.arith/acc", "ActRW", cfg.act_depth, cfg.acc_bits),
        PEMemory("act0", "eie_pe.act_rw/act0", "ActRW", cfg.act_depth, cfg.act_bits),
        PEMemory("act1", "eie_pe.act_rw/act1", "ActRW", cfg.act_depth, cfg.act_bits),
        PEMemory("bias", "eie_pe.act_rw/bias", "ActRW", cfg.bias_depth, cfg.act_bits),
    ]


def memory_by_name(cfg: EIEConfig) -> dict[str, PEMemory]:
    return {m.name: m for m in pe_memories(cfg)}
