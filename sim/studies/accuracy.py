"""What the fixed-point compile costs a model on its data: the accuracy of the float model, the
golden model and the RTL, and the codebooks' cost layer by layer.

:func:`data_accuracy` is report.json's ``accuracy`` (``make sim``, ``make report``): top-1 of
the imported float network (:func:`models.network.float_forward`), of the golden model
(``golden.npz``, bit-exact with the RTL) and of the RTL's outputs against the labels, and the
agreement of each top-1 with the float model's (the only measure without labels).
:func:`codebook_rows` is report.json's ``codebook``: per layer the shared weights the images
use (distinct non-zero fixed-point weights, of the codebook's ``2**bits - 1``) and the RMS
error of the layer's fixed-point output against the float model's, on the same samples.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from compiler.layout import load_images
from models.network import Network, float_forward
from sim.ref.golden import decode_weights
from sim.ref.result import RunResult
from sim.studies.doc import _f


def top1(logits) -> np.ndarray:
    """The predicted class of every sample (of every frame, for a sequence output)."""
    return np.argmax(np.asarray(logits), axis=-1)


def float_outputs(net: Network, samples) -> list[np.ndarray]:
    """Every layer's float output on the ``samples`` of ``net.x`` (the last: the network's)."""
    sub = dataclasses.replace(net, x=np.asarray(net.x)[list(samples)], labels=None)
    return float_forward(sub)[1:]


def golden_logits(manifest: dict, gold: dict, samples) -> np.ndarray:
    """The golden model's network output of the samples (``golden.npz``, integers)."""
    key = "output" if manifest.get("lstm") else f"out{len(manifest['layers']) - 1}"
    return np.asarray(gold[key])[list(samples)]


def data_accuracy(net: Network, manifest: dict, res: RunResult, gold: dict, *,
                  outs: list | None = None, data: dict | None = None) -> dict:
    """report.json's ``accuracy`` on the samples the RTL ran.

    Parameters
    ----------
    net : Network
        The float network on the inputs that were compiled (the user's data in place of the
        model's own, :func:`models.data_file.with_data`); its ``labels`` may be None.
    manifest, gold : dict
        The compile's manifest and ``golden.npz``.
    res : RunResult
        The RTL's run (its ``samples`` and ``outputs``).
    outs : list, optional
        :func:`float_outputs` of ``res.samples``, when the caller has them.
    data : dict, optional
        :meth:`models.data_file.UserData.describe` of the data file.

    Returns
    -------
    dict
        ``samples`` (run), ``of`` (compiled), ``labels``; with labels ``float``, ``golden``
        and ``rtl`` (top-1 accuracy); always ``agreement_with_float`` (``golden``, ``rtl``:
        the share of top-1 equal to the float model's); ``compile`` (the manifest's accuracy
        on every compiled sample, when it has one); ``data``.
    """
    samples = list(res.samples)
    outs = outs if outs is not None else float_outputs(net, samples)
    pred = {"float": top1(outs[-1]), "golden": top1(golden_logits(manifest, gold, samples)),
            "rtl": top1(res.outputs)}
    acc = {"samples": len(samples), "of": int(net.n_samples), "labels": net.labels is not None}
    if net.labels is not None:
        y = np.asarray(net.labels)[samples]
        acc.update({k: float(np.mean(p == y)) for k, p in pred.items()})
    acc["agreement_with_float"] = {k: float(np.mean(pred[k] == pred["float"]))
                                   for k in ("golden", "rtl")}
    if manifest.get("accuracy"):
        acc["compile"] = manifest["accuracy"]
    if data is not None:
        acc["data"] = data
    return acc


def _rms(a) -> float:
    a = np.asarray(a, np.float64)
    return float(np.sqrt(np.mean(np.square(a)))) if a.size else 0.0


def codebook_rows(out, cfg, manifest: dict, gold: dict, outs: list, samples) -> dict:
    """report.json's ``codebook``: the shared weights every layer uses and what fixed point
    costs its output.

    Parameters
    ----------
    out : Path
        The compiled model's directory (its images are decoded as the golden model does).
    cfg : EIEConfig
    manifest, gold : dict
        The compile's manifest and ``golden.npz``.
    outs : list
        :func:`float_outputs` of ``samples``.
    samples : list of int

    Returns
    -------
    dict
        ``layers``: per compiled layer ``name``, ``bits``, ``entries`` (the codebook's
        non-zero entries, ``2**bits - 1``), ``used`` (distinct non-zero weights in its
        images), and for a network of fully-connected layers ``rms_error`` (fixed-point
        output against the float model's) and ``rms_float`` (the float output's RMS, its
        scale); ``output``: the same two of the network's output; ``samples``.
    """
    samples = list(samples)
    images = load_images(out, cfg, manifest["layers"], manifest["passes"], manifest.get("lstm"))
    bits = int(manifest["options"]["bits"])
    scale = 2.0 ** -cfg.act_frac
    rows = []
    for li, m in enumerate(manifest["layers"]):
        w = decode_weights(images, li).data
        row = {"name": m["name"], "bits": bits, "entries": (1 << bits) - 1,
               "used": int(np.unique(w[w != 0]).size), "nnz": int(m["nnz"])}
        if not manifest.get("lstm"):  # the golden model's layers are the float model's
            fixed = np.asarray(gold[f"out{li}"])[samples] * scale
            row.update(rms_error=_rms(fixed - outs[li]), rms_float=_rms(outs[li]))
        rows.append(row)
    fixed = golden_logits(manifest, gold, samples) * scale
    return {"layers": rows, "samples": len(samples),
            "output": {"rms_error": _rms(fixed - outs[-1]), "rms_float": _rms(outs[-1])}}


def accuracy_lines(acc: dict, what: str) -> list[str]:
    """``make sim``'s lines of report.json's ``accuracy`` (``what``: images, sequences)."""
    src = f" of {acc['data']['path']}" if acc.get("data") else ""
    # the user's data are samples; a model's own labelled inputs its test images (sequences)
    what = ("samples" if what == "images" else what) if acc.get("data") else f"test {what}"
    part = (f" (the first {acc['samples']:,} of {acc['of']:,}: --samples)"
            if acc.get("of", acc["samples"]) > acc["samples"] else "")
    if acc.get("float") is not None:
        cost = 100 * (acc["golden"] - acc["float"])
        lines = [f"accuracy on {acc['samples']:,} {what}{src}{part}, top-1 against the "
                 f"labels: float model {acc['float']:.4f}, golden model {acc['golden']:.4f}, "
                 f"RTL {acc['rtl']:.4f} (fixed point: {cost:+.2f} points against float)"]
        c = acc.get("compile")
        if c and c.get("float_compressed") is not None:
            lines.append(f"  the compile, on all {c['samples']:,} {what}: float "
                         f"{c['float_dense']:.4f}, pruned + codebooks in float "
                         f"{c['float_compressed']:.4f}, fixed point "
                         f"{c['fixed_point_golden']:.4f}")
        return lines
    if "rtl" in acc:  # a report.json of before the float model's column
        return [f"accuracy on {acc['samples']} {what}: RTL {acc['rtl']:.4f}, golden "
                f"{acc['golden']:.4f}"]
    ag = acc["agreement_with_float"]
    return [f"no labels (y) in the data: top-1 agreement with the float model on "
            f"{acc['samples']:,} {what}{src}{part}: golden model {ag['golden']:.4f}, RTL "
            f"{ag['rtl']:.4f}"]


def codebook_lines(cb: dict) -> list[str]:
    """``make sim``'s table of report.json's ``codebook``."""
    lines = ["", "| layer | shared weights used | RMS error, fixed point vs float | RMS of the "
                 "float output |", "|---|---|---|---|"]
    for r in cb["layers"]:
        rms = (f"{r['rms_error']:.4g} | {r['rms_float']:.4g}" if "rms_error" in r
               else "- | -")
        lines.append(f"| {r['name']} | {r['used']} of {r['entries']} ({r['bits']}-bit) | {rms} |")
    if any("rms_error" not in r for r in cb["layers"]):  # an LSTM's: the network's output
        o = cb["output"]
        lines.append(f"| network output | | {o['rms_error']:.4g} | {o['rms_float']:.4g} |")
    return lines


def accuracy_section(doc, report: dict, cfg) -> None:
    """The report's section on the accuracy on the data (the user's, ``--data``, or the model's
    labelled test set) and what the codebooks cost: ``report``'s (report.json's) ``accuracy``
    and ``codebook``, into ``doc`` (a :class:`sim.studies.doc.Doc`); nothing without them.
    ``cfg`` is the compile's :class:`hw.arch.config.EIEConfig`."""
    acc, cb = report.get("accuracy"), report.get("codebook")
    what = "sequences" if report.get("kind") == "lstm" else "samples"
    if not acc or "agreement_with_float" not in acc:  # none, or a report.json of before
        return
    doc.section("Accuracy on the data, and what the codebooks cost")
    d = acc.get("data")
    where = (f"`{d['path']}` (sha256 {d['sha256']}, {d['samples']:,} {what})" if d
             else f"the model's own labelled inputs ({acc['of']:,})")
    first = f"the first {acc['samples']:,} of " if acc["samples"] < acc["of"] else "all of "
    # one sample's worth (a sequence output is scored frame by frame: no such unit)
    unit = f": one = {100 / acc['samples']:.2f} pp" if what == "samples" else ""
    per_frame = ("; every label scores on its own: one a sequence, or one a frame for a "
                 "network that outputs every frame" if what == "sequences" else "")
    if acc.get("float") is not None:
        f = acc["float"]
        rows = [[lab, f"{100 * acc[k]:.2f} %", "" if k == "float" else
                 f"{100 * (acc[k] - f):+.2f} pp"]
                for lab, k in (("float model (as imported)", "float"),
                               ("golden model (fixed point, bit-exact with the RTL)", "golden"),
                               ("RTL (Verilator)", "rtl"))]
        doc.p(f"Top-1 accuracy against the labels `y` of {where}, on {first}them "
              f"({acc['samples']:,} {what}{unit}){per_frame}. The float "
              f"model is the network as imported (before any pruning of the compile).")
        doc.table(["model", "top-1 accuracy", "vs float"], rows)
    else:
        ag = acc["agreement_with_float"]
        doc.p(f"{where} has no labels `y`: the share of {first}its {acc['samples']:,} {what} "
              f"whose top-1 class equals the float model's.")
        doc.table(["model", "top-1 agreement with the float model"],
                  [["golden model (fixed point, bit-exact with the RTL)",
                    f"{100 * ag['golden']:.2f} %"],
                   ["RTL (Verilator)", f"{100 * ag['rtl']:.2f} %"]])
    comp = acc.get("compile")
    if comp and comp.get("float_compressed") is not None:
        doc.p(f"The compile, on all {comp['samples']:,} "
              f"{'labels' if what == 'sequences' else 'labelled samples'}: float "
              f"{100 * comp['float_dense']:.2f} %, pruned with the codebooks in float "
              f"{100 * comp['float_compressed']:.2f} %, fixed point (the images) "
              f"{100 * comp['fixed_point_golden']:.2f} %: from the first to the second is "
              f"what pruning and the codebooks cost, from the second to the third what the "
              f"fixed-point arithmetic costs.")
    if not cb:
        return
    def rms(r):
        rel = r["rms_error"] / r["rms_float"] if r.get("rms_float") else None
        return [_f(r.get("rms_error"), ".4g"), _f(r.get("rms_float"), ".4g"), _f(rel, ".2%")]

    rows = [[r["name"], f"{r['used']} of {r['entries']} ({r['bits']}-bit codebook)",
             f"{r['nnz']:,}", *(rms(r) if "rms_error" in r else ["-"] * 3)]
            for r in cb["layers"]]
    if any("rms_error" not in r for r in cb["layers"]):  # an LSTM's: the network's output
        rows.append(["network output", "", "", *rms(cb["output"])])
    doc.table(["layer", "shared weights used", "non-zeros", "RMS error, fixed point vs float",
               "RMS of the float output", "relative"], rows)
    doc.p(f"Shared weights used: the distinct non-zero weights in the layer's images, of the "
          f"codebook's 2^bits - 1 non-zero entries (entry 0 is the zero of padding). RMS "
          f"error: the golden model's output of the layer (Q{cfg.act_bits - cfg.act_frac}"
          f".{cfg.act_frac} activations) against the float model's, both run from the same "
          f"input through every layer before it (so the errors add up layer by layer), over "
          f"the {cb['samples']:,} {what} simulated.")
