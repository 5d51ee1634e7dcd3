"""Layout pass: place a network's passes in the per-PE memories and build the memory images.

A layer runs as one or more *passes* (:mod:`compiler.passes`: output batches and column
batches), one layer descriptor each. Pass ``p`` gets a pointer base (common to all PEs) and, per
PE, a word-aligned sparse-matrix base; its layer gets a bias base (common) and codebook slot
``cb_slot`` = the layer's index. Pointers are stored as absolute entry addresses, so the
hardware needs no sparse-matrix base register. Biases and codebooks of all layers are resident
at once; so are the sparse matrices and the pointers when they fit. When they do not (VGG-16's
three FC layers need 18,598 Spmat words on eie64's fullest PE, which has 16,384; AlexNet's need
17,411 pointers, EIE's pointer SRAM holds 16,384), the passes are split into *segments*: runs of
consecutive passes whose Spmat words and pointers fit. Each segment's sparse matrices are placed
from word 0. Its pointers follow the pointers already resident when they fit beside them (so a
network whose pointers all fit keeps one pointer image, ``ptr_base`` the running sum); otherwise
the segment reloads the pointer SRAM and its pointers are placed from pointer 0 (``ptr_base``
restarts). A pass's ``ptr_segment`` is the segment whose pointer image holds its pointers.
Between segments the host reloads the SRAMs in EIE's I/O mode (the array is idle; the
accumulators keep their contents, so a layer's column batches may straddle a reload; the reload
time, :func:`hw.arch.regmap.reload_cycles`, is reported beside the compute cycles, never inside
a layer's). Segment 0 is ``Images.spmat`` / ``ptr_even`` / ``ptr_odd``; segment ``s > 0`` is
``Images.spmat_segments[s - 1]`` and, when it reloads the pointers, ``Images.ptr_segments[s]``.
The image format is docs/architecture.md section 2; :func:`save_images` writes it as
``$readmemh`` hex files (with the binary copies the simulation preloads by ``$fread``) plus
``images.npz``, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.encode import EncodedLayer, pack_words
from compiler.passes import EncodedPass, check_bias, check_layer_count, check_vectors
from hw.arch.config import EIEConfig
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import to_unsigned
from hw.arch.interleave import split_vector
from hw.arch.memories import PRELOAD_SUFFIX, ptr_reload_segments, segment_key, segment_stem
from hw.arch.regmap import DESCRIPTOR_FIELDS, descriptor_widths



@dataclass
class Images:
    """Everything the array's memories hold for one network (docs/architecture.md section 2).

    ``layers`` are the network's layers (``name``, ``in_len``, ``out_len``, ``shift``,
    ``relu``, ``bias_base``, ``passes``: indices into ``passes``, ``row_batches``,
    ``col_batches``); ``passes`` the layer descriptors the array runs
    (:mod:`compiler.passes`), dicts with the fields of
    :data:`hw.arch.regmap.DESCRIPTOR_FIELDS` plus ``name``, ``layer``, ``row_batch``,
    ``col_batch``, ``row0``, ``col0``, ``spmat_base`` (list, per PE, in words), ``segment`` and
    ``ptr_segment``.
    """

    cfg: EIEConfig
    spmat: np.ndarray  # uint64 (N, words)
    ptr_even: np.ndarray  # int64 (N, depth)
    ptr_odd: np.ndarray  # int64 (N, depth)
    bias: np.ndarray  # int64 (N, depth), signed
    codebook: np.ndarray  # int64 (max_layers, codebook_size), signed
    layers: list = field(default_factory=list)
    # int64 (n_samples, cols) arrays: one for a chained network (the first layer's input),
    # one per layer when the layers are independent (NeuralTalk)
    inputs: list = field(default_factory=list)
    # Spmat images of segments 1, 2, ... (uint64 (N, words) each); empty when all layers fit
    spmat_segments: list = field(default_factory=list)
    # pointer banks (even, odd) of the segments s > 0 that reload the pointer SRAM, by s
    ptr_segments: dict = field(default_factory=dict)
    passes: list = field(default_factory=list)
    # per LSTM layer: its plan (compiler.lower.LSTMPlan.to_dict) and ``peep``, int (N, 3,
    # cells_pad / N) or None; empty for a network of FC layers
    lstm: list = field(default_factory=list)
    # the element-wise tables of the LSTMs ({"sigmoid": int array, "tanh": ...}), or empty
    tables: dict = field(default_factory=dict)

    @property
    def n_segments(self) -> int:
        """Number of Spmat segments (1 when every layer is resident at once)."""
        return 1 + len(self.spmat_segments)

    def spmat_of(self, segment: int) -> np.ndarray:
        """The Spmat image (N, words) of ``segment``."""
        return self.spmat if segment == 0 else self.spmat_segments[segment - 1]

    def ptr_of(self, ptr_segment: int) -> tuple:
        """The pointer banks ``(even, odd)``, (N, words) each, of pointer image ``ptr_segment``
        (a pass's ``ptr_segment``)."""
        if ptr_segment == 0:
            return self.ptr_even, self.ptr_odd
        return self.ptr_segments[ptr_segment]

    def pointer(self, k: int, g, ptr_segment: int = 0):
        """Pointer values at pointer indices ``g`` of PE ``k`` (bank g&1, addr g>>1) in pointer
        image ``ptr_segment``."""
        g = np.asarray(g, dtype=np.int64)
        ptr_even, ptr_odd = self.ptr_of(ptr_segment)
        even = ptr_even[k][np.minimum(g >> 1, ptr_even.shape[1] - 1)]
        odd = ptr_odd[k][np.minimum(g >> 1, ptr_odd.shape[1] - 1)]
        return np.where(g & 1, odd, even)


def as_passes(encoded) -> list:
    """A layer's passes: a list of :class:`compiler.passes.EncodedPass` as it is, or one
    :class:`compiler.encode.EncodedLayer` as a single pass."""
    if isinstance(encoded, EncodedLayer):
        return [EncodedPass(0, 0, 0, 0, False, encoded)]
    return list(encoded)


def build_images(encoded: list, codebooks: list, shifts: list, biases: list,
                 relus: list, names: list, cfg: EIEConfig, chained: bool = True,
                 dst_offsets: list | None = None, src_offsets: list | None = None,
                 src_sels: list | None = None) -> Images:
    """Place encoded layers and build the memory images.

    Parameters
    ----------
    encoded : list
        Per layer, its passes (:func:`compiler.passes.encode_passes`) or one
        :class:`compiler.encode.EncodedLayer` (a layer in one pass).
    codebooks : list of int arrays
        Per layer, the fixed-point codebook (``weight_bits`` signed, entry 0 = 0).
    shifts : list of int
        Per layer write-back shift (the codebook fraction).
    biases : list of int arrays
        Per layer bias in activation format, length ``rows``.
    relus : list of bool
    names : list of str
    cfg : EIEConfig
    chained : bool
        Layer ``l + 1`` reads layer ``l``'s output (the source memory alternates by layer);
        otherwise every layer reads its own input from Act0.
    dst_offsets : list of int, optional
        Per layer, the destination word its outputs are written from (``dst_base`` of its first
        output batch; an LSTM's projection writes ``y_t`` into the next step's source vector,
        :mod:`compiler.lower`); default 0.
    src_offsets : list of int, optional
        Per layer, the source group its input starts at (``col_group`` of its first column
        batch; the layer after an LSTM reads ``y_T`` where the projection left it); default 0.
    src_sels : list of int, optional
        Per layer, the activation memory it reads (``src_sel``); default: alternating by layer
        when ``chained`` (``l % 2``), else 0.  The layer after an LSTM without a projection
        reads the gates' source, where the element-wise stage leaves ``y_t``.

    Raises
    ------
    EIEError
        When the network does not fit: too many layers, a vector longer than the activation
        memories, a pass whose sparse matrix alone exceeds a PE's Spmat SRAM or whose
        pointers alone exceed the pointer SRAM, or biases beyond their memory (the message
        names the layer, the PE and the words needed vs available).  Passes whose sparse
        matrices or pointers do not fit together go into separate segments (module docstring).
    """
    check_layer_count(len(encoded), cfg)
    per_layer = [as_passes(e) for e in encoded]
    layers, passes, segment_words, ptr_words, bias_used = _place(
        per_layer, shifts, relus, names, cfg, dst_offsets or [0] * len(per_layer),
        src_offsets or [0] * len(per_layer),
        src_sels or [li % 2 if chained else 0 for li in range(len(per_layer))])
    n, epw = cfg.n_pes, cfg.entries_per_word
    spmats = [np.zeros((n, max(1, int(w.max()))), dtype=np.uint64) for w in segment_words]
    ptrs = {s: np.zeros((n, used + (used & 1)), dtype=np.int64) for s, used in ptr_words.items()}
    bias_img = np.zeros((n, max(1, bias_used)), dtype=np.int64)
    codebook = np.zeros((cfg.max_layers, cfg.codebook_size), dtype=np.int64)
    flat = [p for lp in per_layer for p in lp]
    for ep, pas in zip(flat, passes):
        enc = ep.enc
        ptr_all = ptrs[pas["ptr_segment"]]
        for k in range(n):
            base = pas["spmat_base"][k]
            w = pack_words(enc.v[k], enc.z[k], cfg)
            spmats[pas["segment"]][k, base: base + w.size] = w
            ptr_all[k, pas["ptr_base"]: pas["ptr_base"] + enc.cols + 1] = enc.ptr[k] + base * epw
    for li, lay in enumerate(layers):
        rows = lay["out_len"]
        b = np.zeros(-(-rows // n) * n, dtype=np.int64)
        b[: rows] = biases[li]
        bias_img[:, lay["bias_base"]: lay["bias_base"] + b.size // n] = b.reshape(-1, n).T
        cb = _checked_codebook(codebooks[li], lay["name"], cfg)
        codebook[li, : cb.size] = cb
    check_descriptors(passes, cfg)
    banks = {s: (p[:, 0::2].copy(), p[:, 1::2].copy()) for s, p in ptrs.items()}
    even, odd = banks.pop(0)
    return Images(cfg, spmats[0], even, odd, bias_img, codebook, layers,
                  spmat_segments=spmats[1:], ptr_segments=banks, passes=passes)


def _checked_codebook(cb, name: str, cfg: EIEConfig) -> np.ndarray:
    cb = np.asarray(cb, dtype=np.int64)
    if cb.size > cfg.codebook_size:
        raise EIEError(f"layer {name}: codebook of {cb.size} entries exceeds "
                       f"{cfg.codebook_size} (weight_index_bits={cfg.weight_index_bits})")
    if cb.size and cb[0] != 0:
        raise EIEError(f"layer {name}: codebook entry 0 must be the zero weight")
    if cb.size and (cb.min() < cfg.weight_min or cb.max() > cfg.weight_max):
        raise EIEError(f"layer {name}: codebook does not fit {cfg.weight_bits} bits")
    return cb


def _check_alone(ep: EncodedPass, name: str, cfg: EIEConfig) -> np.ndarray:
    """The pass's Spmat words per PE, after checking that it alone fits every memory that
    segments reload and the accumulators."""
    enc = ep.enc
    words = enc.spmat_words(cfg)
    worst = int(np.argmax(words))
    if words[worst] > cfg.spmat_depth:
        raise EIEError(f"layer {name} does not fit the sparse-matrix SRAM: PE {worst} needs "
                       f"{int(words[worst])} words for this layer alone, "
                       f"{cfg.spmat_depth} available")
    if enc.cols + 1 > cfg.ptr_depth:
        raise EIEError(f"layer {name} does not fit the pointer SRAM: needs {enc.cols + 1} "
                       f"pointers for this layer alone, {cfg.ptr_depth} available on every PE")
    if ep.rows_local > cfg.acc_words:
        raise EIEError(f"layer {name} does not fit the accumulators: {enc.rows} rows are "
                       f"{ep.rows_local} per PE, config {cfg.name!r} has {cfg.acc_words} "
                       "(acc_depth); compile it with compiler.passes.encode_passes, which "
                       "cuts it into output batches")
    return words


def _check_vectors(passes: list, name: str, cfg: EIEConfig) -> tuple[int, int]:
    """The layer's input and output lengths, after checking they fit the activation memories."""
    cols = max(p.col0 + p.enc.cols for p in passes)
    rows = max(p.row0 + p.enc.rows for p in passes)
    check_vectors(name, rows, cols, cfg)  # compiler.options.check_fits: before pruning too
    return cols, rows


def _place(per_layer: list, shifts: list, relus: list, names: list, cfg: EIEConfig,
           dst_offsets: list, src_offsets: list, src_sels: list) -> tuple:
    """Segments and bases of every pass (module docstring): the layers, the pass descriptors,
    the Spmat words per PE of each segment, the pointers of each segment that reloads the
    pointer SRAM (``{segment: pointers}``) and the bias words."""
    words_used = np.zeros(cfg.n_pes, dtype=np.int64)
    segment_words = []  # words used per PE by every finished segment
    ptr_words = {}  # pointers of every finished pointer image, by the segment that loads it
    ptr_segment, ptr_used, bias_used = 0, 0, 0
    layers, passes = [], []
    for li, (eps, shift, relu, name) in enumerate(zip(per_layer, shifts, relus, names)):
        cols, rows = _check_vectors(eps, name, cfg)
        rows_local = -(-rows // cfg.n_pes)
        check_bias(name, bias_used, rows_local, cfg)
        if not 0 <= shift <= cfg.weight_frac_max:
            raise EIEError(f"layer {name}: shift {shift} outside 0..{cfg.weight_frac_max}")
        lay = dict(name=name, in_len=cols, out_len=rows, shift=int(shift),
                   relu=int(bool(relu)), bias_base=bias_used, passes=[],
                   row_batches=1 + max(p.row_batch for p in eps),
                   col_batches=1 + max(p.col_batch for p in eps))
        for ep in eps:
            words = _check_alone(ep, name, cfg)
            spmat_full = (words_used + words).max() > cfg.spmat_depth
            ptr_full = ptr_used + ep.enc.cols + 1 > cfg.ptr_depth
            if spmat_full or ptr_full:
                # EIE's I/O mode: a new segment, loaded after the previous segment's passes
                # ran; its Spmat words from word 0, its pointers from pointer 0 unless they fit
                # beside the resident ones (then the pointer SRAM keeps its contents)
                segment_words.append(words_used)
                words_used = np.zeros(cfg.n_pes, dtype=np.int64)
                if ptr_full:
                    ptr_words[ptr_segment] = ptr_used
                    ptr_segment, ptr_used = len(segment_words), 0
            single = lay["row_batches"] == 1 and lay["col_batches"] == 1
            lay["passes"].append(len(passes))
            passes.append(dict(
                name=name if single else f"{name}.r{ep.row_batch}c{ep.col_batch}",
                layer=li, row_batch=ep.row_batch, col_batch=ep.col_batch, row0=ep.row0,
                col0=ep.col0, in_len=ep.enc.cols, out_len=ep.enc.rows, ptr_base=ptr_used,
                bias_base=bias_used + ep.row0 // cfg.n_pes, shift=int(shift),
                relu=int(bool(relu)), src_sel=int(src_sels[li]), cb_slot=li,
                col_group=src_offsets[li] + ep.col0 // cfg.n_pes,
                dst_base=dst_offsets[li] + ep.row0 // cfg.n_pes,
                keep=int(ep.keep), spmat_base=words_used.tolist(),
                segment=len(segment_words), ptr_segment=ptr_segment))
            words_used = words_used + words
            ptr_used += ep.enc.cols + 1
        layers.append(lay)
        bias_used += rows_local
    segment_words.append(words_used)
    ptr_words[ptr_segment] = ptr_used
    return layers, passes, segment_words, ptr_words, bias_used


def check_descriptors(passes: list, cfg: EIEConfig) -> None:
    """Every descriptor field fits the register the central unit holds it in
    (:func:`hw.arch.regmap.descriptor_widths`, the widths of the hardware's descriptor)."""
    widths = descriptor_widths(cfg)
    for lay in passes:
        for name in DESCRIPTOR_FIELDS:
            if not 0 <= int(lay[name]) < 1 << widths[name]:
                raise EIEError(f"layer {lay['name']}: descriptor field {name} = {lay[name]} "
                               f"does not fit its {widths[name]}-bit register")


def _unsigned_words(values, bits: int) -> np.ndarray:
    """``values`` as ``bits``-bit unsigned words (two's complement below 64 bits)."""
    return to_unsigned(np.asarray(values).astype(np.int64), bits) if bits < 64 else \
        np.asarray(values, dtype=np.uint64)


def hex_lines(values, bits: int) -> bytes:
    """``$readmemh`` text: one zero-padded lower-case hex word per line (vectorised)."""
    u = _unsigned_words(values, bits)
    digits = max(1, -(-bits // 4))
    raw = np.frombuffer(u.astype(">u8").tobytes().hex().encode(), dtype="S1")
    raw = raw.reshape(-1, 16)[:, 16 - digits:]
    out = np.empty((raw.shape[0], digits + 1), dtype="S1")
    out[:, :digits] = raw
    out[:, digits] = b"\n"
    return out.tobytes()


def bin_words(values, bits: int) -> bytes:
    """The binary image the simulation's ``$fread`` preload reads
    (:data:`hw.arch.memories.PRELOAD_SUFFIX`): every word big-endian in ``ceil(bits / 8)``
    bytes (vectorised)."""
    u = _unsigned_words(values, bits)
    nbytes = -(-bits // 8)
    raw = np.asarray(u, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)
    return raw[:, 8 - nbytes:].tobytes()


def _write_image(d: Path, stem: str, values, bits: int) -> None:
    """``stem.hex`` (the documented format) and its binary copy for the simulator."""
    (d / f"{stem}.hex").write_bytes(hex_lines(values, bits))
    (d / f"{stem}{PRELOAD_SUFFIX}").write_bytes(bin_words(values, bits))


def save_images(images: Images, out_dir: Path) -> None:
    """Write ``out_dir/images/``: hex files per memory per PE (with the binary copies the
    simulator preloads), ``codebook.hex``, ``images.npz``.

    Callers write into a temporary directory and rename it (see :mod:`compiler.emit`).
    """
    cfg = images.cfg
    d0 = Path(out_dir) / "images"
    d0.mkdir(parents=True, exist_ok=True)
    for k in range(cfg.n_pes):
        d = d0 / f"pe{k:03d}"
        d.mkdir()
        _write_image(d, "spmat", images.spmat[k], cfg.spmat_word_bits)
        for s, seg in enumerate(images.spmat_segments, start=1):
            _write_image(d, segment_stem("spmat", s), seg[k], cfg.spmat_word_bits)
        for s, banks in images.ptr_segments.items():
            for name, bank in zip(("ptr_even", "ptr_odd"), banks):
                _write_image(d, segment_stem(name, s), bank[k], cfg.ptr_bits)
        _write_image(d, "ptr_even", images.ptr_even[k], cfg.ptr_bits)
        _write_image(d, "ptr_odd", images.ptr_odd[k], cfg.ptr_bits)
        _write_image(d, "bias", images.bias[k], cfg.act_bits)
        if images.inputs and len(images.inputs[0]) and images.inputs[0].ndim == 2:
            (d / "act0.hex").write_bytes(
                hex_lines(split_vector(images.inputs[0][0], cfg.n_pes)[k], cfg.act_bits))
    (d0 / "codebook.hex").write_bytes(hex_lines(images.codebook.ravel(), cfg.weight_bits))
    arrays = dict(spmat=images.spmat, ptr_even=images.ptr_even, ptr_odd=images.ptr_odd,
                  bias=images.bias, codebook=images.codebook)
    for i, x in enumerate(images.inputs):
        arrays[f"inputs{i}"] = x
    for s, seg in enumerate(images.spmat_segments, start=1):
        arrays[segment_key("spmat", s)] = seg
    for s, banks in images.ptr_segments.items():
        arrays.update({segment_key(name, s): bank
                       for name, bank in zip(("ptr_even", "ptr_odd"), banks)})
    for k, lstm in enumerate(images.lstm):
        if lstm["peep"] is not None:
            arrays[f"lstm{k}_peep"] = lstm["peep"]
    arrays.update({f"lut_{fn}": t for fn, t in images.tables.items()})
    np.savez(d0 / "images.npz", **arrays)


def load_images(out_dir: Path, cfg: EIEConfig, layers: list, passes: list,
                lstm: list | None = None) -> Images:
    """Read ``out_dir/images/images.npz`` back (layers, passes and the LSTM plans come from the
    manifest)."""
    p = Path(out_dir) / "images" / "images.npz"
    if not p.exists():
        raise EIEError(f"no compiled images at {p}; run make compile first")
    with np.load(p) as z:
        n_seg = 1 + max((int(pas.get("segment", 0)) for pas in passes), default=0)
        plans = [{**plan, "peep": z[f"lstm{k}_peep"] if f"lstm{k}_peep" in z.files else None}
                 for k, plan in enumerate(lstm or [])]
        tables = {f[4:]: z[f] for f in z.files if f.startswith("lut_")}
        return Images(cfg, z["spmat"], z["ptr_even"], z["ptr_odd"], z["bias"], z["codebook"],
                      layers, [z[f"inputs{i}"] for i in range(len(z.files))
                               if f"inputs{i}" in z.files],
                      [z[segment_key("spmat", s)] for s in range(1, n_seg)],
                      {s: (z[segment_key("ptr_even", s)], z[segment_key("ptr_odd", s)])
                       for s in ptr_reload_segments(passes)},
                      passes=passes, lstm=plans, tables=tables)
