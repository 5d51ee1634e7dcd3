"""``python -m sim.studies.compress`` (``make compress``): Deep Compression with retraining, and the
model's accuracy at every stage down to the RTL.

Stages (rows of the accuracy table):

1. **float dense** — the model as loaded;
2. **pruned, one-shot** — magnitude pruning to the target densities, no retraining (what
   ``make compile`` does), for comparison;
3. **pruned + retrained** — iterative magnitude pruning with retraining
   (:func:`compiler.train.iterative_prune`);
4. **+ trained quantization** — k-means weight sharing with linear initialisation, then the
   centroids fine-tuned by the summed gradients of their members
   (:func:`compiler.train.trained_quantization`); float codebooks;
5. **fixed-point golden model** — the compiler's memory images (16-bit codebooks, Q8.8
   activations, :mod:`hw.arch.fixedpoint`) run by :class:`sim.ref.golden.GoldenModel`;
6. **RTL** — the same images on the Verilated ``eie_top`` (``--no-rtl`` skips it); every output
   must equal the golden model's bit for bit, else exit code 1.

Training data: ``mlp_digits`` ships its training split; a user ``.npz`` may carry ``x_train`` /
``y_train``; ``--data FILE.npz`` (``x_train``, ``y_train``, optionally test ``x``, ``y``) supplies
it for any model, ONNX and PyTorch included.  Without training data, stages 3-4 are one-shot
(pruning without retraining, k-means without fine-tuning) and the report says so.  Test data:
``--data``'s ``x``/``y``, else the model's.  Without labels the metric is top-1 agreement with the
dense float model instead of accuracy, on the model's inputs or, when it has at most one
(ONNX and PyTorch files carry none), on 256 generated ones (seeded, non-negative, half zeros).

Writes into ``build/<model>/<config>/``: ``compress.json`` and ``compress.md`` (the tables),
``compress_weights.npz`` (the compressed network: ``W_k``, ``b_k``, ``index_k``, ``codebook_k``)
and ``compress/`` (the compiled images the RTL ran).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.cli import add_model_args
from compiler.options import Options, check_options
from compiler.prune import prune_magnitude
from compiler.train import (TrainOptions, accuracy, iterative_prune, predict,
                            trained_quantization)
from hw.arch.atomic import write_atomic
from hw.arch.config import EIEConfig, load_config
from hw.arch.errors import EIEError, cli_errors
from models import load_model
from models.network import Layer, Network
from models.npz import default_input
from models.registry import MLP_DIGITS_NPZ
from sim.flow.compile import compile_into
from sim.flow.lock import output_lock
from sim.flow.paths import output_dir
from sim.rtl.runner import run_rtl

#: Deep Compression's LeNet-300-100 densities (EIE.md section 10), used for the model of that shape
DEFAULT_DENSITIES = {"mlp_digits": (0.08, 0.09, 0.26)}

#: published Deep Compression results for LeNet-300-100 on MNIST, for the side-by-side table
PUBLISHED_LENET_300_100 = {
    "source": "Han, Mao, Dally, Deep Compression (ICLR 2016), Table 1; densities from EIE.md "
              "section 10",
    "layer_densities": [0.08, 0.09, 0.26],
    "weights_kept": "8 % (12x fewer weights)",
    "top1_error_reference": 0.0164,
    "top1_error_compressed": 0.0158,
    "size_dense_kb": 1070,
    "size_compressed_kb": 27,
    "compression": 40,
}

#: inputs generated for the agreement metric when a model brings at most one input
N_GENERATED = 256

STAGES = (
    ("float_dense", "float dense"),
    ("pruned_oneshot", "pruned, one-shot (no retraining)"),
    ("pruned_retrained", "pruned + retrained"),
    ("kmeans_float", "pruned + k-means, before centroid fine-tuning (float codebook)"),
    ("quantized_float", "pruned + trained quantization (float codebook)"),
    ("fixed_point_golden", "fixed-point golden model (compiled images)"),
    ("rtl", "RTL (Verilator)"),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.studies.compress",
                                description=__doc__.split("\n\n")[0].replace("``", ""))
    add_model_args(p, seed_help="training seed, also the synthetic models' seed")
    p.add_argument("--density", default=None,
                   help="target weight density, one value or one per layer (comma-separated); "
                        "default: 8,9,26 %% for mlp_digits (Deep Compression's LeNet-300-100), "
                        "else the model's own densities")
    p.add_argument("--bits", type=int, default=None,
                   help="codebook bits (default: the config's weight_index_bits)")
    p.add_argument("--data", default=None,
                   help=".npz with x_train, y_train (and optional test x, y) for retraining")
    p.add_argument("--rounds", type=int, default=6, help="prune-retrain rounds (default 6)")
    p.add_argument("--epochs", type=int, default=15,
                   help="retraining epochs per round (default 15)")
    p.add_argument("--quant-epochs", type=int, default=10,
                   help="centroid fine-tuning epochs (default 10)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="Adam learning rate of retraining (default 1e-3)")
    p.add_argument("--quant-lr", type=float, default=1e-4,
                   help="Adam learning rate of centroid fine-tuning (default 1e-4)")
    p.add_argument("--weight-decay", type=float, default=1e-4,
                   help="L2 weight decay (default 1e-4)")
    p.add_argument("--no-rtl", action="store_true", help="skip the RTL simulation")
    p.add_argument("--out", default=None,
                   help="report directory (default build/<model>/<config>)")
    return p


def parse_densities(text, n_layers: int, default) -> list[float]:
    """One density per layer from ``"0.1"`` or ``"0.08,0.09,0.26"`` (or the default list)."""
    if text is None:
        vals = list(default)
    else:
        try:
            vals = [float(v) for v in str(text).split(",")]
        except ValueError:
            raise EIEError(f"density must be numbers separated by commas, got {text!r}") from None
    if len(vals) == 1:
        vals = vals * n_layers
    if len(vals) != n_layers:
        raise EIEError(f"{len(vals)} densities given for {n_layers} layers")
    for d in vals:
        if not (np.isfinite(d) and 0 < d <= 1):
            raise EIEError(f"density must be in (0, 1], got {d}")
    return vals


def _read_npz(path: Path) -> dict:
    if not path.is_file():
        raise EIEError(f"data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise EIEError(f"{path} is not a valid .npz file: {' '.join(str(e).split())}") from None


def _xy(arrays: dict, xk: str, yk: str, n_in: int, n_out: int, where: str):
    if xk not in arrays and yk not in arrays:
        return None
    if xk not in arrays or yk not in arrays:
        raise EIEError(f"{where}: {xk} and {yk} must be given together")
    x, y = np.asarray(arrays[xk]), np.asarray(arrays[yk]).ravel()
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != n_in:
        raise EIEError(f"{where}: {xk} has shape {x.shape}, expected (n, {n_in})")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise EIEError(f"{where}: {xk} must be finite numbers")
    if y.shape[0] != x.shape[0]:
        raise EIEError(f"{where}: {yk} has {y.shape[0]} labels for {x.shape[0]} inputs")
    if not np.issubdtype(y.dtype, np.number) or not np.all(y == np.round(y)) or \
            y.min() < 0 or y.max() >= n_out:
        raise EIEError(f"{where}: {yk} must hold integer labels in 0..{n_out - 1}")
    return x.astype(np.float64), y.astype(np.int64)


def find_data(model: str, data: str | None, net):
    """Training and test data: ``(train or None, test or None, training data source)``."""
    n_in, n_out = net.layers[0].W.shape[1], net.layers[-1].W.shape[0]
    train = test = None
    source = None
    if data is not None:
        arrays = _read_npz(Path(data))
        train = _xy(arrays, "x_train", "y_train", n_in, n_out, data)
        test = _xy(arrays, "x", "y", n_in, n_out, data)
        if train is None and test is None:
            raise EIEError(f"{data}: no x_train/y_train or x/y arrays")
        source = data if train is not None else None
    elif model == "mlp_digits" or model.endswith(".npz"):
        path = MLP_DIGITS_NPZ if model == "mlp_digits" else Path(model)
        train = _xy(_read_npz(path), "x_train", "y_train", n_in, n_out, str(path))
        source = str(path) if train is not None else None
    if test is None and net.labels is not None and net.chained:
        test = (np.asarray(net.x, np.float64), np.asarray(net.labels, np.int64))
    return train, test, source


def _params(net) -> tuple[list, list]:
    params = [a for layer in net.layers
              for a in (np.asarray(layer.W, np.float64), np.asarray(layer.b, np.float64))]
    return params, [bool(layer.relu) for layer in net.layers]


def _pct(a) -> str:
    return "n/a" if a is None else f"{100 * a:.2f} %"


def storage_rows(totals: dict) -> list[dict]:
    """Storage at each Deep Compression stage (from the compiler's account pass)."""
    dense = totals["dense_32bit"]
    rows = []
    for key, label in (("dense_32bit", "dense, 32-bit floats"),
                       ("pruned", "pruned (CSC: 32-bit values, relative indices, pointers)"),
                       ("pruned_quantized", "pruned + quantized (codebook indices, codebooks)"),
                       ("huffman", "pruned + quantized + Huffman")):
        rows.append({"stage": key, "label": label, "bits": int(totals[key]),
                     "kbytes": totals[key] / 8 / 1000, "of_dense": totals[key] / dense,
                     "compression": dense / totals[key]})
    return rows


def markdown(rep: dict) -> str:
    """The human-readable report (``compress.md``)."""
    metric = rep["metric"]
    t = rep["training"]
    lines = [f"# Deep Compression of {rep['model']} on {rep['config']}", "",
             rep["description"], "",
             f"Target densities {'/'.join(f'{100 * d:g}' for d in rep['densities'])} %, "
             f"{rep['bits']}-bit codebooks ({(1 << rep['bits']) - 1} shared weights + the zero); "
             + (f"retrained on {t['train_samples']} samples ({t['rounds']} prune-retrain rounds "
                f"x {t['epochs']} epochs, {t['quant_epochs']} epochs of centroid fine-tuning, "
                f"seed {t['seed']})" if rep["retrained"] else
                "**no training data: one-shot pruning and k-means without retraining**")
             + f"; {metric} on {rep['test_samples']} test samples (one sample = "
               f"{100 / rep['test_samples']:.2f} pp).", "",
             f"| stage | {metric} | vs dense |", "|---|---|---|"]
    dense = rep["accuracy"]["float_dense"]
    for key, label in STAGES:
        a = rep["accuracy"].get(key)
        if a is None:
            continue
        if key == "quantized_float" and not rep["retrained"]:
            label = "pruned + k-means quantization, no fine-tuning (float codebook)"
        delta = "" if key == "float_dense" else f"{100 * (a - dense):+.2f} pp"
        lines.append(f"| {label} | {_pct(a)} | {delta} |")
    if rep.get("rtl"):
        r = rep["rtl"]
        lines += ["", f"RTL outputs equal the golden model's bit for bit: "
                      f"**{'yes' if r['match'] else 'NO'}** ({r['samples']} samples, "
                      f"{r['cycles_first_sample']:,} cycles for the first)."]
    lines += ["", "| layer | shape (out x in) | density | non-zeros | codebook w_frac |",
              "|---|---|---|---|---|"]
    for m in rep["layers"]:
        lines.append(f"| {m['name']} | {m['rows']} x {m['cols']} | "
                     f"{100 * m['density']:.2f} % | {m['nnz']:,} | {m['w_frac']} |")
    lines += ["", "| storage | KB | of dense | compression |", "|---|---|---|---|"]
    for s in rep["storage"]:
        lines.append(f"| {s['label']} | {s['kbytes']:.2f} | {100 * s['of_dense']:.2f} % | "
                     f"{s['compression']:.1f}x |")
    c = rep["compression"]
    dense, huff = rep["storage"][0]["bits"], rep["storage"][-1]["bits"]
    lines += ["", f"Weights kept: {c['nonzeros']:,} of {c['weights']:,} "
                  f"({100 * c['density']:.2f} %, {1 / c['density']:.1f}x fewer).  The column "
                  f"pointers ({c['n_pes']} PEs x (cols + 1) x {c['ptr_bits']} bits per layer, "
                  f"EIE's per-PE CSC) are {c['pointer_bits'] / 8000:.2f} KB of each compressed "
                  f"size; without them pruned + quantized + Huffman is "
                  f"{(huff - c['pointer_bits']) / 8000:.2f} KB "
                  f"({dense / (huff - c['pointer_bits']):.1f}x).", ""]
    p = rep["published"]
    lines += [f"Deep Compression, LeNet-300-100 on MNIST (published; {p['source']}): "
              f"densities {'/'.join(f'{100 * d:g}' for d in p['layer_densities'])} %, "
              f"{p['weights_kept']}; top-1 error {100 * p['top1_error_reference']:.2f} % -> "
              f"{100 * p['top1_error_compressed']:.2f} %; {p['size_dense_kb']} KB -> "
              f"{p['size_compressed_kb']} KB ({p['compression']}x, pruning + quantization + "
              "Huffman)."]
    return "\n".join(lines) + "\n"


@dataclass
class Study:
    """What the stages of :func:`run` share: the inputs, and the accuracies and seconds so far."""

    args: argparse.Namespace
    cfg: EIEConfig
    bits: int
    net: Network
    densities: list
    train: tuple | None  # (x, y) training data, or None: one-shot stages
    source: str | None  # where the training data came from
    params: list  # the dense float network [W0, b0, ...]
    relu: list
    x_test: np.ndarray
    y_test: np.ndarray
    metric: str
    progress: Callable[[str], None]
    acc: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def say(self, msg: str) -> None:
        self.progress(f"[compress] {msg}")

    def accuracy(self, params) -> float:
        """Accuracy (or agreement) of ``params`` on the test data."""
        return accuracy(params, self.x_test, self.y_test, self.relu)


def report_dir(args, cfg: EIEConfig) -> Path:
    """``--out``, else the model's output directory."""
    return Path(args.out) if args.out else output_dir(args.model, cfg, seed=args.seed)


def setup(args, progress=print) -> Study:
    """Check the arguments, load the model and its data; the float dense accuracy."""
    cfg = load_config(args.config)
    net = load_model(args.model, seed=args.seed)
    bits = check_options(Options(bits=args.bits), cfg, net)  # refuses what cannot be compiled
    if not net.chained:
        raise EIEError(f"{net.name}: compress needs a chained network (layer k feeds layer k+1)")
    densities = parse_densities(args.density, len(net.layers),
                                DEFAULT_DENSITIES.get(args.model,
                                                      [layer.density for layer in net.layers]))
    train, test, source = find_data(args.model, args.data, net)
    params, relu = _params(net)
    if test is None:
        x_test = np.asarray(net.x, np.float64)
        if x_test.shape[0] < 2:  # one (generated) input says little: agree on many
            x_test = np.stack([default_input(x_test.shape[1], args.seed + i)
                               for i in range(N_GENERATED)]).astype(np.float64)
        y_test = predict(params, x_test, relu)
        metric = "top-1 agreement with dense float"
    else:
        x_test, y_test = test
        metric = "accuracy"
    st = Study(args, cfg, bits, net, densities, train, source, params, relu, x_test, y_test,
               metric, progress)
    st.acc["float_dense"] = st.accuracy(params)
    st.say(f"{net.name}: {len(net.layers)} layers, densities "
           + "/".join(f"{100 * d:g}" for d in densities) + f" %, {bits}-bit codebooks; "
           f"float dense {metric} {_pct(st.acc['float_dense'])} on {y_test.size} samples")
    return st


def prune_stage(st: Study) -> tuple[list, list]:
    """One-shot pruning for comparison, then iterative pruning with retraining (if data)."""
    args = st.args
    oneshot_masks = [prune_magnitude(st.params[2 * k], d) for k, d in enumerate(st.densities)]
    oneshot = [np.where(oneshot_masks[k // 2], p, 0.0) if k % 2 == 0 else p
               for k, p in enumerate(st.params)]
    st.acc["pruned_oneshot"] = st.accuracy(oneshot)
    st.say(f"one-shot pruning: {_pct(st.acc['pruned_oneshot'])}")
    t0 = time.perf_counter()
    if st.train is None:
        st.say("note: no training data (give --data FILE.npz with x_train, y_train): one-shot "
               "pruning and k-means without retraining")
        st.seconds["prune"] = time.perf_counter() - t0
        return oneshot, oneshot_masks
    st.say(f"iterative pruning with retraining on {st.train[1].size} samples from {st.source}")
    opts = TrainOptions(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                        seed=args.seed)
    pruned, masks = iterative_prune(st.params, st.train[0], st.train[1], st.relu, st.densities,
                                    args.rounds, opts, progress=st.say)
    st.seconds["prune"] = time.perf_counter() - t0
    st.acc["pruned_retrained"] = st.accuracy(pruned)
    st.say(f"pruned + retrained: {_pct(st.acc['pruned_retrained'])} "
           f"({st.seconds['prune']:.1f} s)")
    return pruned, masks


def quantize_stage(st: Study, pruned: list, masks: list) -> tuple[list, list]:
    """k-means weight sharing, then (with training data) centroid fine-tuning."""
    args = st.args
    t0 = time.perf_counter()
    x, y = (None, None) if st.train is None else st.train
    if st.train is not None:
        km, _ = trained_quantization(pruned, masks, None, None, st.relu, st.bits)
        st.acc["kmeans_float"] = st.accuracy([a for k in range(len(km)) for a in (
            km[k].weights, pruned[2 * k + 1])])
        st.say(f"+ k-means weight sharing: {_pct(st.acc['kmeans_float'])}")
    qopts = TrainOptions(epochs=args.quant_epochs, lr=args.quant_lr,
                         weight_decay=args.weight_decay, seed=args.seed)
    shared, biases = trained_quantization(pruned, masks, x, y, st.relu, st.bits, qopts,
                                          progress=st.say)
    st.seconds["quantize"] = time.perf_counter() - t0
    st.acc["quantized_float"] = st.accuracy(
        [a for k in range(len(shared)) for a in (shared[k].weights, biases[k])])
    st.say(f"+ {'trained ' if st.train is not None else ''}quantization (float codebook): "
           f"{_pct(st.acc['quantized_float'])} ({st.seconds['quantize']:.1f} s)")
    return shared, biases


def compile_stage(st: Study, shared: list, biases: list, masks: list, out: Path):
    """The compressed network through the compiler and the golden model into ``out/compress``;
    returns the compiled network and its directory."""
    t0 = time.perf_counter()
    net = st.net
    layers = [Layer(name=layer.name, W=shared[k].weights.astype(np.float32),
                    b=biases[k].astype(np.float32), relu=st.relu[k],
                    density=float(masks[k].mean()), act_density=None)
              for k, layer in enumerate(net.layers)]
    cnet = Network(name=f"{net.name}-compressed", layers=layers,
                   x=st.x_test.astype(np.float32), labels=st.y_test, synthetic=net.synthetic,
                   description=f"{net.name} after Deep Compression")
    images_dir = out / "compress"
    compiled = compile_into(cnet, st.cfg, Options(bits=st.bits, shared=[
        (s.index, s.centroids) for s in shared]), images_dir, progress=st.progress)
    gold_pred = np.argmax(compiled.golden[-1], axis=1)
    st.acc["fixed_point_golden"] = float(np.mean(gold_pred == st.y_test))
    st.seconds["compile"] = time.perf_counter() - t0
    st.say(f"fixed-point golden model: {_pct(st.acc['fixed_point_golden'])}; "
           f"images in {images_dir}")
    return compiled, images_dir


def rtl_stage(st: Study, images_dir: Path, compiled) -> tuple[dict | None, int]:
    """The compiled images on the Verilated array (unless ``--no-rtl``); exit code 1 when an
    output differs from the golden model's."""
    if st.args.no_rtl:
        return None, 0
    t0 = time.perf_counter()
    res = run_rtl(images_dir, st.cfg, progress=st.progress)
    st.seconds["rtl"] = time.perf_counter() - t0
    gold_pred = np.argmax(compiled.golden[-1], axis=1)
    rtl_pred = np.argmax(np.asarray(res.outputs), axis=1)
    samples = np.asarray(res.samples)
    st.acc["rtl"] = float(np.mean(rtl_pred == st.y_test[samples]))
    rtl = {"match": bool(res.match), "samples": int(samples.size),
           "cycles_first_sample": int(sum(res.cycles[0])),
           "predictions_equal_golden": bool(np.array_equal(rtl_pred, gold_pred[samples]))}
    st.say(f"RTL: {_pct(st.acc['rtl'])}; outputs equal golden: {rtl['match']}")
    return rtl, 0 if rtl["match"] else 1


def build_report(st: Study, compiled, rtl: dict | None, images_dir: Path) -> dict:
    """``compress.json``: the accuracy of every stage, the layers, storage and compression."""
    args, cfg, m = st.args, st.cfg, compiled.manifest
    n_w = sum(layer.W.size for layer in st.net.layers)
    nnz = sum(lay["nnz"] for lay in m["layers"])
    return {
        "model": st.net.name, "config": cfg.name, "description": st.net.description,
        "densities": st.densities, "bits": st.bits, "retrained": st.train is not None,
        "training": {"source": st.source, "train_samples": None if st.train is None else
                     int(st.train[1].size), "rounds": args.rounds, "epochs": args.epochs,
                     "quant_epochs": args.quant_epochs, "lr": args.lr, "quant_lr": args.quant_lr,
                     "weight_decay": args.weight_decay, "optimizer": "adam", "seed": args.seed},
        "metric": st.metric, "test_samples": int(st.y_test.size), "accuracy": st.acc,
        "compiler_float_compressed": (m["accuracy"] or {}).get("float_compressed"),
        "rtl": rtl,
        "layers": [{"name": lay["name"], "rows": lay["rows"], "cols": lay["cols"],
                    "density": lay["weight_density"], "nnz": lay["nnz"], "w_frac": lay["w_frac"],
                    "codebook": lay["codebook"], "codebook_int": lay["codebook_int"]}
                   for lay in m["layers"]],
        "storage": storage_rows(m["storage_bits"]),
        "compression": {"weights": int(n_w), "nonzeros": int(nnz), "density": nnz / n_w,
                        # EIE's CSC keeps cols + 1 pointers per PE per layer
                        "pointer_bits": int(sum(cfg.n_pes * (lay["cols"] + 1) * cfg.ptr_bits
                                                for lay in m["layers"])),
                        "n_pes": cfg.n_pes, "ptr_bits": cfg.ptr_bits},
        "published": PUBLISHED_LENET_300_100,
        "images": str(images_dir),
        "seconds": {k: round(v, 2) for k, v in st.seconds.items()},
    }


def write_outputs(out: Path, st: Study, shared: list, biases: list, rep: dict) -> None:
    """``compress_weights.npz``, ``compress.json`` and ``compress.md`` in ``out``."""
    arrays = {}
    for k, s in enumerate(shared):
        arrays.update({f"W{k}": s.weights.astype(np.float32),
                       f"b{k}": biases[k].astype(np.float32), f"index{k}": s.index,
                       f"codebook{k}": s.centroids})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays, x=st.x_test.astype(np.float32), y=st.y_test,
                        relu=np.array(st.relu))
    write_atomic(out / "compress_weights.npz", buf.getvalue())
    write_atomic(out / "compress.json", json.dumps(rep, indent=1))
    write_atomic(out / "compress.md", markdown(rep))


def run(args, progress=print) -> tuple[dict, int]:
    """Run every stage; returns the report and the exit code (1: RTL differs from golden)."""
    t_start = time.perf_counter()
    st = setup(args, progress)
    out = report_dir(args, st.cfg)
    pruned, masks = prune_stage(st)
    shared, biases = quantize_stage(st, pruned, masks)
    with output_lock(out, say=progress):
        compiled, images_dir = compile_stage(st, shared, biases, masks, out)
        rtl, code = rtl_stage(st, images_dir, compiled)
        rep = build_report(st, compiled, rtl, images_dir)
        rep["seconds"]["total"] = round(time.perf_counter() - t_start, 2)
        write_outputs(out, st, shared, biases, rep)
    return rep, code


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors("compress"):
        rep, code = run(args)
        out = report_dir(args, load_config(args.config))
        print()
        print(markdown(rep))
        print(f"[compress] wrote {out / 'compress.json'}, {out / 'compress.md'} in "
              f"{rep['seconds']['total']:.1f} s")
    return code

if __name__ == "__main__":
    sys.exit(main())
