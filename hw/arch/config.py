"""The one configuration object: every width, depth and arithmetic rule of an EIE array.

Compiler, hardware generator, golden model, cycle model, energy model and tests all read an
:class:`EIEConfig`; nothing derives a width by hand: every width of a bus, register or memory
is a property here.  This module (like all of :mod:`hw.arch`) imports nothing of the project and
never Amaranth.

Arithmetic (EIE does not publish it; eiegen defines it here and in :mod:`hw.arch.fixedpoint`):

* activations are ``act_bits``-bit signed fixed point with ``act_frac`` fraction bits, the same
  format for every layer's input and output;
* each layer has its own codebook of ``2**weight_index_bits`` entries of ``weight_bits``-bit signed
  fixed point with a per-layer fraction ``w_frac`` (0..``weight_frac_max``) chosen by the compiler;
  codebook index 0 is reserved for the exact zero that padding entries use;
* a multiply gives the exact ``weight_bits + act_bits``-bit product; accumulators are
  ``acc_bits`` wide and wrap (two's complement), so the sum does not depend on the order in which
  columns arrive;
* when a layer finishes, each accumulator is shifted right by the layer's ``w_frac`` with the
  configured ``rounding``, the bias (activation format) is added, the result is saturated to
  ``act_bits`` (or wrapped when ``saturate`` is false) and ReLU is applied when the layer asks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from hw.arch.atomic import read_json
from hw.arch.errors import EIEError
from hw.arch.memories import pe_memories

ROUNDING_MODES = ("half_up", "truncate", "half_even")

#: The most memory one PE of a generated design (Verilog, the Verilator model, Yosys) holds.
#: Bits: 8 Mbit (1 MiB), 6x EIE's 162 KB per PE (128 KB Spmat, 32 KB pointers, 2 KB
#: activations) and 3.7x eie64's 278 KB (its 65,536 pointers).  Words: 2**18, 3x eie64's
#: 84,616, since generating a memory costs Amaranth and Yosys about 8 KB of RAM per word
#: (measured: eie64 6 s and 186 MB; a PE of 2**18 words 153 s and 2.2 GB; one of 2**24, a
#: MemoryError after 89 s).  A configuration beyond either is still valid for the compiler, the
#: golden model and the cycle model: the sweep compiles with a 2**24-word Spmat (only
#: :meth:`EIEConfig.check_generatable`, called where hardware is generated, refuses it).
PE_MEMORY_BITS_MAX = 1 << 23
PE_MEMORY_WORDS_MAX = 1 << 18
#: a configuration file is a few hundred bytes; anything longer is some other file
CONFIG_FILE_MAX_BYTES = 1 << 20


#: a configuration name becomes a directory name: letters, digits, ``_ . -``, not ``.``/``..``
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def bits_for(n: int) -> int:
    """Number of bits to hold the unsigned values 0..n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class EIEConfig:
    """Frozen description of one EIE array. See the module docstring for the arithmetic.

    Parameters
    ----------
    name : str
        Preset name, used in build paths.
    n_pes : int
        Processing elements; row ``i`` of every layer lives on PE ``i % n_pes``.
    queue_depth : int
        Activation-queue (FIFO) depth per PE.
    weight_index_bits : int
        Bits of a stored weight index; the codebook has ``2**weight_index_bits`` entries.
    rel_index_bits : int
        Bits of a stored relative row index; gaps over ``2**rel_index_bits - 1`` need padding.
    act_bits, act_frac : int
        Activation width and fraction bits (signed fixed point).
    weight_bits, weight_frac_max : int
        Codebook entry width and the largest fraction a layer's codebook may use.
    acc_bits : int
        Accumulator width (wraps).
    rounding : str
        ``half_up`` (add half an LSB, then floor), ``truncate`` (floor) or ``half_even``.
    saturate : bool
        Saturate layer outputs to ``act_bits`` (else wrap).
    spmat_word_bits : int
        Sparse-matrix SRAM word width (<= 64); holds ``word // entry_bits`` entries.
    spmat_depth : int
        Sparse-matrix SRAM words per PE.
    ptr_depth : int
        Column pointers per PE (split over an even and an odd bank).
    act_depth : int
        Words of each of the two activation memories (source, destination) per PE.
    acc_depth : int or None
        Accumulators per PE: the destination register file of EIE, one per local output row a
        layer may have (``ceil(out_len / n_pes) <= acc_depth``).  None (the default) means
        ``act_depth``, one accumulator per destination word (and follows it when a derived
        configuration changes ``act_depth``); :attr:`acc_words` is the resolved number.
    bias_depth : int
        Bias words per PE (all layers together).
    max_layers : int
        Layer-descriptor slots; also the number of codebooks held.
    clock_mhz : float
        Clock used to turn cycles into time in reports.
    lut_points : int
        Points of the sigmoid and of the tanh lookup table of LSTM layers (a power of two;
        ESE, per a public implementation citing it: 2,048).
    lut_range_log2 : int
        The tables cover activations in ``[-2**lut_range_log2, 2**lut_range_log2)`` (ESE: 64);
        inputs outside clamp to the end points (a range wider than the activations' is allowed:
        its outer points are never reached).
    lut_interp : bool
        Interpolate linearly between neighbouring table points (else: nearest point below).
    cell_bits : int or None
        Width of an LSTM cell state ``c_t`` (fraction ``act_frac``, saturating); None (the
        default) means ``act_bits`` (:attr:`cell_width` is the resolved width).
    ew_cycles_per_cell : int
        Cycles the element-wise unit of a PE spends per LSTM cell (it reads the cell's four
        gate pre-activations from the one accumulator port, one per cycle: 4).
    ew_latency : int
        Pipeline cycles of the element-wise unit after its reads (table look-ups, the
        multiplies and the cell-state update: 8, the least :mod:`hw.ew_unit` needs): from its
        ``start`` (cycle 0) it reads the accumulators in cycles ``0 .. 4C-1`` and pulses
        ``done`` in cycle ``ew_cycles_per_cell * C + ew_latency``.  With
        ``ew_cycles_per_cell`` it is the contract of ESE part 2's element-wise stage
        (:mod:`sim.ref.lstm_schedule`).
    channels : int
        Independent copies of the array (ESE: 32 channels, each running its own utterance).
        They multiply throughput, not latency; every cycle and time figure is one channel's.
    lstm : bool
        Generate the LSTM hardware of ESE part 2 (docs/architecture.md 4b): the accumulators
        in two banks of ``acc_words / 2`` (:attr:`acc_banks`; the element-wise stage reads one
        while the next frame's x part accumulates into the other) addressed from a pass's
        ``acc_base``, and the element-wise unit.  False (every FC preset): none of it.
    """

    name: str = "eie64"
    n_pes: int = 64
    queue_depth: int = 8
    weight_index_bits: int = 4
    rel_index_bits: int = 4
    act_bits: int = 16
    act_frac: int = 8
    weight_bits: int = 16
    weight_frac_max: int = 24
    acc_bits: int = 32
    rounding: str = "half_up"
    saturate: bool = True
    spmat_word_bits: int = 64
    spmat_depth: int = 16384
    # VGG-16's three FC layers need 25,089 + 4,097 + 4,097 = 33,283 pointers
    ptr_depth: int = 65536
    act_depth: int = 512
    acc_depth: int | None = None
    bias_depth: int = 1024
    max_layers: int = 8
    clock_mhz: float = 800.0
    lut_points: int = 2048
    lut_range_log2: int = 6
    lut_interp: bool = False
    cell_bits: int | None = None
    ew_cycles_per_cell: int = 4
    ew_latency: int = 8
    channels: int = 1
    lstm: bool = False

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise EIEError(f"config {self.name!r}: {msg}")

        need(isinstance(self.name, str) and NAME_RE.fullmatch(self.name) is not None,
             "name must be 1-64 letters, digits, '_', '.' or '-' (not starting with '.' or "
             f"'-'), got {self.name!r}")
        ints = [f.name for f in dataclasses.fields(self)
                if f.type in ("int", int)]
        for f in ints:
            v = getattr(self, f)
            need(isinstance(v, int) and not isinstance(v, bool),
                 f"{f} must be an integer, got {v!r}")
        need(1 <= self.n_pes <= 1024, f"n_pes must be in 1..1024, got {self.n_pes}")
        need(1 <= self.queue_depth <= 256,
             f"queue_depth must be in 1..256, got {self.queue_depth}")
        need(1 <= self.weight_index_bits <= 8,
             f"weight_index_bits must be in 1..8, got {self.weight_index_bits}")
        need(1 <= self.rel_index_bits <= 8,
             f"rel_index_bits must be in 1..8, got {self.rel_index_bits}")
        need(2 <= self.act_bits <= 24, f"act_bits must be in 2..24, got {self.act_bits}")
        need(0 <= self.act_frac < self.act_bits,
             f"act_frac must be in 0..act_bits-1 ({self.act_bits - 1}), got {self.act_frac}")
        need(2 <= self.weight_bits <= 24,
             f"weight_bits must be in 2..24, got {self.weight_bits}")
        need(0 <= self.weight_frac_max <= 40,
             f"weight_frac_max must be in 0..40, got {self.weight_frac_max}")
        # 56 keeps every golden-model sum exact in int64 (see hw.arch.fixedpoint)
        need(self.act_bits + 1 <= self.acc_bits <= 56,
             f"acc_bits must be in act_bits+1..56 ({self.act_bits + 1}..56), got {self.acc_bits}")
        need(self.weight_frac_max < self.acc_bits,
             f"weight_frac_max ({self.weight_frac_max}) must be below acc_bits ({self.acc_bits})")
        need(self.rounding in ROUNDING_MODES,
             f"rounding must be one of {', '.join(ROUNDING_MODES)}, got {self.rounding!r}")
        need(isinstance(self.saturate, bool), f"saturate must be true or false, got "
             f"{self.saturate!r}")
        # a word holds floor(word / entry) entries; leftover high bits stay unused
        need(self.spmat_word_bits >= self.entry_bits,
             f"spmat_word_bits ({self.spmat_word_bits}) must hold at least one entry of "
             f"weight_index_bits + rel_index_bits = {self.entry_bits} bits")
        # images hold one word per uint64; wider words would need a multi-limb format
        need(self.spmat_word_bits <= 64,
             f"spmat_word_bits must be at most 64, got {self.spmat_word_bits}")
        for f in ("spmat_depth", "ptr_depth", "act_depth", "bias_depth"):
            v = getattr(self, f)
            need(2 <= v <= 1 << 24, f"{f} must be in 2..{1 << 24}, got {v}")
        need(self.acc_depth is None or (isinstance(self.acc_depth, int)
                                        and not isinstance(self.acc_depth, bool)
                                        and 2 <= self.acc_depth <= self.act_depth),
             f"acc_depth must be an integer in 2..act_depth ({self.act_depth}), got "
             f"{self.acc_depth!r}")
        need(self.ptr_depth % 2 == 0,
             f"ptr_depth must be even (two banks), got {self.ptr_depth}")
        need(1 <= self.max_layers <= 64, f"max_layers must be in 1..64, got {self.max_layers}")
        need(2 <= self.lut_points <= 1 << 16 and self.lut_points & (self.lut_points - 1) == 0,
             f"lut_points must be a power of two in 2..65536, got {self.lut_points}")
        need(0 <= self.lut_range_log2 <= 16,
             f"lut_range_log2 must be in 0..16, got {self.lut_range_log2}")
        need(isinstance(self.lut_interp, bool), f"lut_interp must be true or false, got "
             f"{self.lut_interp!r}")
        for fname in ("ew_cycles_per_cell", "ew_latency", "channels"):
            v = getattr(self, fname)
            need(isinstance(v, int) and not isinstance(v, bool) and
                 (0 if fname == "ew_latency" else 1) <= v <= 4096,
                 f"{fname} must be an integer in {0 if fname == 'ew_latency' else 1}..4096, "
                 f"got {v!r}")
        need(isinstance(self.lstm, bool), f"lstm must be true or false, got {self.lstm!r}")
        need(not self.lstm or (self.acc_words >= 8 and self.acc_words % 2 == 0),
             f"lstm needs an even acc_depth of at least 8 (two banks of the gates of at least "
             f"one cell), got {self.acc_words}")
        need(self.cell_bits is None or (isinstance(self.cell_bits, int)
                                        and not isinstance(self.cell_bits, bool)
                                        and self.act_bits <= self.cell_bits <= 32),
             f"cell_bits must be an integer in act_bits..32 ({self.act_bits}..32), got "
             f"{self.cell_bits!r}")
        need(isinstance(self.clock_mhz, (int, float)) and not isinstance(self.clock_mhz, bool)
             and 0 < self.clock_mhz <= 10000,
             f"clock_mhz must be a number in (0, 10000], got {self.clock_mhz!r}")

    # ---- derived quantities (the only place widths are computed) ----
    @property
    def entry_bits(self) -> int:
        """Bits of one sparse-matrix entry: relative index above weight index."""
        return self.weight_index_bits + self.rel_index_bits

    @property
    def entries_per_word(self) -> int:
        return self.spmat_word_bits // self.entry_bits

    @property
    def codebook_size(self) -> int:
        return 1 << self.weight_index_bits

    @property
    def max_rel_index(self) -> int:
        """Largest gap a single entry can express; longer gaps take padding entries."""
        return (1 << self.rel_index_bits) - 1

    @property
    def spmat_entries(self) -> int:
        """Sparse-matrix entries one PE can hold."""
        return self.spmat_depth * self.entries_per_word

    @property
    def ptr_bits(self) -> int:
        """Width of a column pointer: an entry address 0..spmat_entries inclusive."""
        return (self.spmat_entries).bit_length()

    @property
    def ptr_bank_depth(self) -> int:
        return self.ptr_depth // 2

    @property
    def acc_words(self) -> int:
        """Accumulators per PE: ``acc_depth``, or ``act_depth`` when it is not set."""
        return self.act_depth if self.acc_depth is None else self.acc_depth

    @property
    def acc_banks(self) -> int:
        """Accumulator banks: 2 with the LSTM hardware (:attr:`lstm`), else 1."""
        return 2 if self.lstm else 1

    @property
    def acc_bank_words(self) -> int:
        """Accumulators per bank (bank ``b`` holds ``b * acc_bank_words ..``)."""
        return self.acc_words // self.acc_banks

    @property
    def ptr_index_bits(self) -> int:
        """Width of a global pointer index ``g = ptr_base + j`` (a layer's ``ptr_base``)."""
        return bits_for(self.ptr_depth)

    @property
    def col_bits(self) -> int:
        """Width of a column index ``j`` on the broadcast bus: bits for ``max_vector``."""
        return bits_for(self.max_vector)

    @property
    def len_bits(self) -> int:
        """Width of a vector length ``1 .. max_vector`` (a layer's ``in_len`` / ``out_len``)."""
        return self.max_vector.bit_length()

    @property
    def rows_local_bits(self) -> int:
        """Width of a PE's row count ``ceil(out_len / n_pes)``, ``0 .. act_depth``."""
        return self.act_addr_bits + 1

    @property
    def queue_entry_bits(self) -> int:
        """Bits of one activation-queue element: column index ``j`` and ``a_j``."""
        return self.col_bits + self.act_bits

    @property
    def spmat_addr_bits(self) -> int:
        return bits_for(self.spmat_depth)

    @property
    def act_addr_bits(self) -> int:
        return bits_for(self.act_depth)

    @property
    def bias_addr_bits(self) -> int:
        return bits_for(self.bias_depth)

    @property
    def pe_bits(self) -> int:
        return bits_for(self.n_pes)

    @property
    def max_vector(self) -> int:
        """Longest input or output vector: one activation memory on every PE."""
        return self.act_depth * self.n_pes

    @property
    def cnt_sel_bits(self) -> int:
        """Width of the counter select: a PE, or a layer slot for the per-layer counters."""
        return max(self.pe_bits, self.layer_index_bits)

    @property
    def layer_index_bits(self) -> int:
        return bits_for(self.max_layers)

    @property
    def shift_bits(self) -> int:
        """Width of a layer's output shift (its codebook fraction, 0..weight_frac_max)."""
        return max(1, self.weight_frac_max.bit_length())

    @property
    def product_bits(self) -> int:
        return self.weight_bits + self.act_bits

    @property
    def act_min(self) -> int:
        return -(1 << (self.act_bits - 1))

    @property
    def act_max(self) -> int:
        return (1 << (self.act_bits - 1)) - 1

    @property
    def weight_min(self) -> int:
        return -(1 << (self.weight_bits - 1))

    @property
    def weight_max(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def lut_shift(self) -> int:
        """Right shift from an activation (offset by the table's range) to its table index;
        negative when the table has more points than there are activations in its range."""
        return self.lut_range_log2 + 1 + self.act_frac - (self.lut_points.bit_length() - 1)

    @property
    def ew_cells_max(self) -> int:
        """LSTM cells per PE the element-wise unit holds (its cell-state and peephole memories):
        ``acc_words // 8``, the most an LSTM compiled for this configuration can have (the
        gates of every cell twice in the accumulators, :func:`compiler.lower.accumulators_needed`).
        """
        return self.acc_words // 8

    @property
    def cell_width(self) -> int:
        """Bits of an LSTM cell state: ``cell_bits``, or ``act_bits`` when it is not set."""
        return self.act_bits if self.cell_bits is None else self.cell_bits

    @property
    def spmat_kbytes_per_pe(self) -> float:
        return self.spmat_depth * self.spmat_word_bits / 8 / 1024

    # ---- serialisation ----
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> EIEConfig:
        if not isinstance(d, dict):
            raise EIEError(f"config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise EIEError(f"config has unknown field(s): {', '.join(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> EIEConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise EIEError(f"config is not valid JSON: {e}") from None
        except RecursionError:
            raise EIEError("config is not valid JSON: nested too deeply") from None
        return cls.from_dict(d)

    def replace(self, **changes) -> EIEConfig:
        return dataclasses.replace(self, **changes)

    def digest(self) -> str:
        """Short hash of every field: keys build caches (Verilog, Verilator) per configuration."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def check_generatable(self) -> EIEConfig:
        """``self``, when a generated design can hold its PE's memories: at most
        :data:`PE_MEMORY_BITS_MAX` bits and :data:`PE_MEMORY_WORDS_MAX` words (why: there).

        Called before the hardware of a configuration is generated or simulated (the Verilog
        generator, the Verilator build), not on construction: deeper configurations serve the
        cycle model (the sweep's).

        Raises
        ------
        EIEError
            Naming the field whose memories take the most, its value, the limit and what to do.
        """
        acc = "acc_depth" if self.acc_depth is not None else "act_depth"
        field_of = {"act_queue": "queue_depth", "ptr_even": "ptr_depth", "ptr_odd": "ptr_depth",
                    "spmat": "spmat_depth", "codebook": "max_layers", "act0": "act_depth",
                    "act1": "act_depth", "bias": "bias_depth", "lut_sigmoid": "lut_points",
                    "lut_tanh": "lut_points"}
        for unit, limit in (("bits", PE_MEMORY_BITS_MAX), ("words", PE_MEMORY_WORDS_MAX)):
            per_field: dict[str, int] = {}
            for m in pe_memories(self):
                f = field_of.get(m.name, acc)  # acc, acc1, cells, peep: the accumulators'
                per_field[f] = per_field.get(f, 0) + (m.bits if unit == "bits" else m.depth)
            total = sum(per_field.values())
            if total > limit:
                f = max(per_field, key=per_field.get)
                what = "bits of memory" if unit == "bits" else "memory words"
                size = " (1 MiB)" if unit == "bits" else ""
                raise EIEError(
                    f"config {self.name!r}: {f} = {getattr(self, f)} gives a PE {total:,} "
                    f"{what} ({per_field[f]:,} of them for {f}), over the {limit:,}{size} a "
                    f"generated design holds per PE; lower {f}, or run this configuration on "
                    f"the cycle model only (make cycles, make sweep)")
        return self


PRESETS: dict[str, EIEConfig] = {
    # EIE as published: 64 PEs, queue 8, 4-bit indices, 16-bit fixed point, 128 KB Spmat per PE.
    "eie64": EIEConfig(),
    # EIE's own memory geometry (EIE section 3, shared/reference/EIE.md): 16,384 pointers per PE
    # (the 32 KB pointer SRAM; layers whose pointers do not fit together run in segments, a
    # layer whose pointers do not fit alone, VGG-6, in column batches) and a 64-row destination
    # register file as the accumulators (layers with more rows per PE, NT-Wd, run in output
    # batches: compiler.passes).  Pointers stay 18 bits wide: EIE's 16-bit pointers cannot
    # address the 131,072 entries of its 128 KB Spmat SRAM.  Activations stay in two
    # 512 x 16-bit memories = EIE's 2 KB activation SRAM, from which the central unit reads
    # every source vector.
    "eie": EIEConfig(name="eie", ptr_depth=16384, acc_depth=64),
    # One ESE channel (Han et al., FPGA 2017; shared/reference/ESE.md): 32 PEs at 200 MHz,
    # queue 8, 16-bit activations, 12-bit weights (ESE's, unconfirmed) as the values of an
    # 8-bit-indexed codebook, 4-bit relative indices; 32 channels.  Memories sized for ese_lstm
    # (1,024 cells, 4 x 32 gate rows per PE double-buffered + the projection's 16 rows in the
    # accumulators); sigmoid / tanh tables of 2,048 points over [-64, 64).
    "ese": EIEConfig(name="ese", n_pes=32, queue_depth=8, weight_index_bits=8,
                     rel_index_bits=4, weight_bits=12, spmat_depth=4096, ptr_depth=2048,
                     act_depth=512, bias_depth=512, clock_mhz=200.0, channels=32, lstm=True),
    # 256 PEs as in EIE's scalability study; activation memories sized for 25,088-long vectors.
    "eie256": EIEConfig(name="eie256", n_pes=256, act_depth=128, spmat_depth=4096),
    # Small presets for tests: tiny SRAMs so Verilator builds and simulations stay fast.
    "tiny": EIEConfig(name="tiny", n_pes=4, queue_depth=2, spmat_depth=256, ptr_depth=512,
                      act_depth=32, bias_depth=64, max_layers=4),
    "pe1": EIEConfig(name="pe1", n_pes=1, queue_depth=1, spmat_depth=256, ptr_depth=512,
                     act_depth=64, bias_depth=128, max_layers=4),
    "pe2": EIEConfig(name="pe2", n_pes=2, queue_depth=2, spmat_depth=256, ptr_depth=512,
                     act_depth=64, bias_depth=128, max_layers=4),
    # 8 PEs with EIE's per-PE Spmat: room for an fc8-sized (4096 x 1000, 25 %) layer
    "pe8": EIEConfig(name="pe8", n_pes=8, queue_depth=8, spmat_depth=16384, ptr_depth=8192,
                     act_depth=512, bias_depth=1024, max_layers=4),
}


def require_config(cfg) -> EIEConfig:
    """``cfg`` itself, or TypeError when it is not an :class:`EIEConfig` (the generators' and
    units' guard against passing a preset name or a dict)."""
    if not isinstance(cfg, EIEConfig):
        raise TypeError(f"cfg must be an EIEConfig, not {cfg!r}")
    return cfg


def load_config(name_or_path: str | Path) -> EIEConfig:
    """Return a preset by name, or read a JSON config file (UTF-8, one JSON object).

    Raises
    ------
    EIEError
        Unknown preset, JSON text in place of a file name, a missing, unreadable, non-UTF-8
        or non-JSON file, or an invalid field (the message starts with the file's name).
    """
    s = str(name_or_path)
    if s in PRESETS:
        return PRESETS[s]
    p = Path(s)
    if s.endswith(".json") or p.exists():
        d = read_json(p, "config file", max_bytes=CONFIG_FILE_MAX_BYTES)
        try:
            return EIEConfig.from_dict(d)
        except EIEError as e:
            raise EIEError(f"{s}: {e}") from None
    if s.lstrip().startswith(("{", "[")):
        raise EIEError(f"--config takes a preset name ({', '.join(PRESETS)}) or a JSON file, "
                       f"not JSON text ({s[:40]!r}); write the object to a .json file")
    raise EIEError(f"unknown config {s!r}; presets: {', '.join(PRESETS)} (or a .json file)")
