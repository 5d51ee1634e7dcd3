"""The compiler: a pipeline of small pure passes, prune -> share -> encode -> layout -> account.

``compile_network`` turns a float network (:mod:`models`) into memory images, a manifest and the
golden model's outputs; ``emit`` writes them to ``build/<model>/<config>/`` atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from compiler.account import storage_breakdown
from hw.arch.atomic import replace_dir
from hw.arch.config import EIEConfig
from compiler.encode import encode_layer
from hw.arch.errors import EIEError
from hw.arch.fixedpoint import choose_w_frac, to_fixed
from compiler.layout import Images, build_images, save_images
from compiler.prune import prune_balanced, prune_magnitude
from compiler.quantize import METHODS, quantize

VERSION = "0.1.0"


@dataclass
class Options:
    """Compiler options beyond the hardware configuration."""

    quantizer: str = "kmeans"
    bits: int | None = None  # codebook bits; default cfg.weight_index_bits
    balance: bool = False  # ESE load-balance-aware pruning
    density: float | None = None  # override every layer's target weight density
    # trained quantization (compiler.train): per layer (index matrix, centroids) given as is;
    # the prune and share passes are skipped and the codebook is used unchanged
    shared: list | None = None


@dataclass
class Compiled:
    """Result of :func:`compile_network`."""

    images: Images
    manifest: dict
    golden: list  # per layer: int64 outputs (n_samples, rows)
    layer_inputs: list = field(default_factory=list)  # per layer: int64 inputs it consumed


def _progress_default(msg: str) -> None:
    print(msg, flush=True)


def _network_inputs(net) -> tuple[bool, list]:
    chained = bool(getattr(net, "chained", True))
    if chained:
        return True, [net.x]
    return False, [layer.x for layer in net.layers]


def compile_network(net, cfg: EIEConfig, opts: Options | None = None,
                    progress=_progress_default) -> Compiled:
    """Compile a float network into EIE memory images and run the golden model on them.

    Parameters
    ----------
    net : models.Network
    cfg : EIEConfig
    opts : Options
    progress : callable(str)
        Receives one line per pass and layer.

    Returns
    -------
    Compiled
    """
    from sim.ref.golden import GoldenModel  # the golden model lives with the simulator

    opts = opts or Options()
    bits = cfg.weight_index_bits if opts.bits is None else opts.bits
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise EIEError(f"codebook bits must be in 1..8, got {bits!r}")
    if bits > cfg.weight_index_bits:
        raise EIEError(f"codebook bits {bits} exceed the weight index of config {cfg.name!r} "
                       f"(weight_index_bits={cfg.weight_index_bits})")
    if opts.quantizer not in METHODS:
        raise EIEError(f"unknown quantizer {opts.quantizer!r}; choose from {', '.join(METHODS)}")
    if opts.density is not None and not (np.isfinite(opts.density) and 0 < opts.density <= 1):
        raise EIEError(f"density must be in (0, 1], got {opts.density}")
    if opts.shared is not None:
        check_shared(opts.shared, net, bits)
    timings: dict[str, float] = {"prune": 0.0, "share": 0.0, "encode": 0.0}
    chained, inputs_f = _network_inputs(net)

    encoded, codebooks, shifts, biases, relus, names, metas = [], [], [], [], [], [], []
    float_ws = []
    for li, layer in enumerate(net.layers):
        W = np.asarray(layer.W)
        rows, cols = W.shape
        density = opts.density if opts.density is not None else layer.density
        t0 = time.perf_counter()
        if opts.shared is not None:
            index, centroids = (np.asarray(a) for a in opts.shared[li])
            cs, rs = np.nonzero(index.T)
            idx = index[rs, cs]
            vals = centroids[idx]
            density = idx.size / index.size
            t1 = time.perf_counter()
        else:
            mask = (prune_balanced(W, density, cfg.n_pes) if opts.balance
                    else prune_magnitude(W, density))
            # column-major non-zero positions give the CSC order directly
            cs, rs = np.nonzero(mask.T)
            del mask
            vals = W[rs, cs].astype(np.float64)
            t1 = time.perf_counter()
            idx, centroids = quantize(vals, bits, opts.quantizer)
        w_frac = choose_w_frac(centroids, cfg)
        cb_int = to_fixed(centroids, w_frac, cfg.weight_bits)
        cb_int[0] = 0
        indptr = np.zeros(cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(cs, minlength=cols), out=indptr[1:])
        Q = sp.csc_matrix((np.asarray(idx, dtype=np.int64), rs, indptr), shape=(rows, cols))
        t2 = time.perf_counter()
        enc = encode_layer(Q, cfg)
        t3 = time.perf_counter()
        timings["prune"] += t1 - t0
        timings["share"] += t2 - t1
        timings["encode"] += t3 - t2
        bias_int = to_fixed(layer.b, cfg.act_frac, cfg.act_bits)
        encoded.append(enc)
        codebooks.append(cb_int)
        shifts.append(w_frac)
        biases.append(bias_int)
        relus.append(bool(layer.relu))
        names.append(layer.name)
        # float view of the compressed layer, for accuracy reports only
        float_ws.append(sp.csr_matrix((centroids[np.asarray(idx)], (rs, cs)),
                                      shape=(rows, cols)))
        metas.append({"density_target": float(density), "centroids": centroids,
                      "quantizer_values": vals.size})
        progress(f"[compile] {layer.name}: {rows}x{cols} density {density:.3f} -> "
                 f"{enc.nnz} non-zeros, {int(enc.padding.sum())} padding, "
                 f"w_frac {w_frac} ({t3 - t0:.2f} s)")

    t0 = time.perf_counter()
    images = build_images(encoded, codebooks, shifts, biases, relus, names, cfg)
    images.inputs = [to_fixed(np.atleast_2d(x), cfg.act_frac, cfg.act_bits)
                     for x in inputs_f]
    for x, lay in zip(images.inputs, images.layers if not chained else images.layers[:1]):
        if x.shape[1] != lay["in_len"]:
            raise EIEError(f"layer {lay['name']}: input has {x.shape[1]} elements, "
                           f"expected {lay['in_len']}")
    timings["layout"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    golden = GoldenModel(images, chained=chained)
    outs = golden.forward(images.inputs[0] if chained else images.inputs)
    layer_inputs = ([images.inputs[0]] + outs[:-1]) if chained else list(images.inputs)
    timings["golden"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    layers_m = []
    totals: dict[str, float] = {}
    for li, (enc, lay, meta) in enumerate(zip(encoded, images.layers, metas)):
        nnz = enc.nnz
        store = storage_breakdown(
            rows=enc.rows, cols=enc.cols, nnz=nnz, n_entries=int(enc.entries.sum()),
            weight_index_bits=cfg.weight_index_bits, rel_index_bits=cfg.rel_index_bits,
            ptr_bits=cfg.ptr_bits, n_pointers=cfg.n_pes * (enc.cols + 1),
            codebook_size=cfg.codebook_size, codebook_bits=cfg.weight_bits,
            v_symbols=np.concatenate(enc.v), z_symbols=np.concatenate(enc.z))
        for key, val in store.items():
            if not key.endswith("_ratio"):
                totals[key] = totals.get(key, 0) + val
        xin = layer_inputs[li]
        words = -(-enc.entries // cfg.entries_per_word)
        layer_obj = net.layers[li]
        layers_m.append({
            **{k: lay[k] for k in ("name", "in_len", "out_len", "ptr_base", "bias_base",
                                   "shift", "relu", "spmat_base", "segment")},
            "rows": enc.rows, "cols": enc.cols,
            "weight_density_target": meta["density_target"],
            "weight_density": nnz / (enc.rows * enc.cols),
            "nnz": nnz,
            "padding_entries": int(enc.padding.sum()),
            "entries": int(enc.entries.sum()),
            "entries_per_pe": enc.entries.tolist(),
            "padding_per_pe": enc.padding.tolist(),
            "spmat_words_per_pe": words.tolist(),
            "act_density_target": getattr(layer_obj, "act_density", None),
            "act_density": float(np.count_nonzero(xin) / xin.size),
            "codebook_int": images.codebook[li].tolist(),
            "codebook": [float(c) for c in meta["centroids"]],
            "w_frac": lay["shift"],
            "storage_bits": store,
        })
    dense = totals.get("dense_32bit", 0)
    for key in list(totals):
        if key != "dense_32bit" and dense:
            totals[f"{key}_ratio"] = totals[key] / dense
    n = cfg.n_pes
    # words used per PE: the fullest Spmat segment (segments replace each other in the SRAM)
    spmat_used = np.max([np.asarray(m["spmat_base"]) + np.asarray(m["spmat_words_per_pe"])
                         for m in layers_m], axis=0)
    n_segments = images.n_segments
    timings["account"] = time.perf_counter() - t0

    accuracy = None
    labels = getattr(net, "labels", None)
    if labels is not None and chained:
        logits_fx = outs[-1]
        a = np.atleast_2d(np.asarray(net.x, dtype=np.float64))
        dense_logits = a
        comp = a
        for li, layer in enumerate(net.layers):
            dense_logits = dense_logits @ np.asarray(layer.W, np.float64).T + layer.b
            comp = np.asarray(float_ws[li] @ comp.T).T + layer.b
            if layer.relu:
                dense_logits = np.maximum(dense_logits, 0)
                comp = np.maximum(comp, 0)
        y = np.asarray(labels)
        accuracy = {
            "samples": int(y.size),
            "float_dense": float(np.mean(np.argmax(dense_logits, 1) == y)),
            "float_compressed": float(np.mean(np.argmax(comp, 1) == y)),
            "fixed_point_golden": float(np.mean(np.argmax(logits_fx, 1) == y)),
        }

    manifest = {
        "eiegen_version": VERSION,
        "model": net.name,
        "description": net.description,
        "synthetic": bool(net.synthetic),
        "chained": chained,
        "n_samples": int(images.inputs[0].shape[0]),
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "options": {"quantizer": opts.quantizer, "bits": int(bits), "balance": opts.balance,
                    "density_override": opts.density},
        "layers": layers_m,
        "storage_bits": totals,
        "memory": {
            "spmat_words_used_per_pe": spmat_used.tolist(),
            "spmat_words_available": cfg.spmat_depth,
            "spmat_max_utilisation": float(spmat_used.max() / cfg.spmat_depth),
            "spmat_segments": n_segments,
            "spmat_segment_layers": [[m["name"] for m in layers_m if m["segment"] == s]
                                     for s in range(n_segments)],
            "pointers_used": int(sum(m["cols"] + 1 for m in layers_m)),
            "pointers_available": cfg.ptr_depth,
            "bias_words_used": int(sum(-(-m["rows"] // n) for m in layers_m)),
            "bias_words_available": cfg.bias_depth,
        },
        "accuracy": accuracy,
        "pass_seconds": {k: round(v, 4) for k, v in timings.items()},
    }
    return Compiled(images, manifest, outs, layer_inputs)


def check_shared(shared, net, bits: int) -> None:
    """Validate :attr:`Options.shared` against the network and the codebook size."""
    if len(shared) != len(net.layers):
        raise EIEError(f"{len(shared)} shared layers given for {len(net.layers)} layers")
    for layer, (index, centroids) in zip(net.layers, shared):
        index, centroids = np.asarray(index), np.asarray(centroids, dtype=np.float64)
        if index.shape != np.asarray(layer.W).shape:
            raise EIEError(f"{layer.name}: shared index matrix has shape {index.shape}, "
                           f"expected {np.asarray(layer.W).shape}")
        if centroids.shape != (1 << bits,) or centroids[0] != 0:
            raise EIEError(f"{layer.name}: codebook must have {1 << bits} entries with entry 0 "
                           f"= 0, got {centroids.shape[0]} entries")
        if not np.all(np.isfinite(centroids)):
            raise EIEError(f"{layer.name}: codebook contains NaN or Inf")
        if not np.issubdtype(index.dtype, np.integer) or index.min() < 0 or \
                index.max() >= centroids.size:
            raise EIEError(f"{layer.name}: codebook indices must be integers in "
                           f"0..{centroids.size - 1}")
        if not index.any():
            raise EIEError(f"{layer.name}: every weight is pruned")


def output_dir(model: str, cfg: EIEConfig, root: Path = Path("build")) -> Path:
    """``build/<model>/<config>/``; a model file (.npz, .onnx, .pt, .pth) is named by its stem."""
    name = Path(model).stem if Path(model).suffix in (".npz", ".onnx", ".pt", ".pth") else model
    return Path(root) / name / cfg.name


def emit(compiled: Compiled, out_dir: Path) -> Path:
    """Write images, ``golden.npz`` and ``manifest.json`` to ``out_dir`` atomically.

    Everything is written into a sibling temporary directory which then replaces ``out_dir``,
    so an error leaves the previous output (or nothing) and never a half-written one.
    """
    out_dir = Path(out_dir)
    with replace_dir(out_dir) as tmp:
        t0 = time.perf_counter()
        save_images(compiled.images, tmp)
        np.savez(tmp / "golden.npz",
                 **{f"out{i}": o for i, o in enumerate(compiled.golden)},
                 **{f"in{i}": x for i, x in enumerate(compiled.layer_inputs)})
        compiled.manifest["pass_seconds"]["emit"] = round(time.perf_counter() - t0, 4)
        (tmp / "manifest.json").write_text(json.dumps(compiled.manifest, indent=1))
    return out_dir


def load_manifest(out_dir: Path) -> dict:
    p = Path(out_dir) / "manifest.json"
    if not p.exists():
        raise EIEError(f"no manifest at {p}; run make compile first")
    return json.loads(p.read_text())


def compiled_manifest(model_dir: Path, cfg: EIEConfig) -> dict:
    """The manifest of a complete compiled model in ``model_dir`` made for ``cfg``.

    Raises
    ------
    EIEError
        ``manifest.json`` or ``images/images.npz`` missing, or compiled for another config.
    """
    model_dir = Path(model_dir)
    mpath = model_dir / "manifest.json"
    if not mpath.exists() or not (model_dir / "images" / "images.npz").exists():
        raise EIEError(f"no compiled model in {model_dir} (manifest.json and "
                       "images/images.npz); run make compile first")
    manifest = json.loads(mpath.read_text())
    if manifest.get("config_digest", cfg.digest()) != cfg.digest():
        raise EIEError(f"{model_dir} was compiled for another configuration "
                       f"({manifest.get('config', {}).get('name')}) than {cfg.name!r}")
    return manifest
