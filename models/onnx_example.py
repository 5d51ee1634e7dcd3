"""Build the small ONNX test model shipped as ``models/data/onnx_example.onnx``.

``python -m models.onnx_example`` rewrites it (seeded, byte-identical on every run).  The graph,
16 -> 32 -> 24 -> 10, uses every form :mod:`models.onnx_import` accepts:

* ``Gemm(x, W0, b0, alpha=0.5, beta=2, transB=1)`` -> ``Relu`` (PyTorch's export of nn.Linear,
  with non-default scales);
* ``MatMul(h, W1)`` -> ``Add(h, b1)`` with ``b1`` a ``Constant`` node of shape ``(1, 24)`` ->
  ``Relu`` (TensorFlow-style export);
* ``Gemm(h, W2, b2, transB=0)``: the logits, no ReLU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.arch.atomic import write_atomic
from hw.arch.errors import ArgumentParser

OUT = Path(__file__).resolve().parent / "data" / "onnx_example.onnx"
SIZES = (16, 32, 24, 10)
SEED = 6


def build_example(seed: int = SEED):
    """The example ``onnx.ModelProto`` (opset 17, IR version 8)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n0, n1, n2, n3 = SIZES

    def rand(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    W0 = rand(n1, n0, scale=np.sqrt(2 / n0))  # (out, in): Gemm transB=1
    b0 = rand(n1, scale=0.05)
    W1 = rand(n1, n2, scale=np.sqrt(2 / n1))  # (in, out): MatMul
    b1 = rand(1, n2, scale=0.05)
    W2 = rand(n2, n3, scale=np.sqrt(2 / n2))  # (in, out): Gemm transB=0
    b2 = rand(n3, scale=0.05)
    init = [numpy_helper.from_array(a, name) for a, name in
            ((W0, "W0"), (b0, "b0"), (W1, "W1"), (W2, "W2"), (b2, "b2"))]
    nodes = [
        helper.make_node("Gemm", ["x", "W0", "b0"], ["h0"], name="fc0", alpha=0.5, beta=2.0,
                         transB=1),
        helper.make_node("Relu", ["h0"], ["a0"], name="relu0"),
        helper.make_node("MatMul", ["a0", "W1"], ["h1"], name="fc1"),
        helper.make_node("Constant", [], ["b1"], name="b1_const",
                         value=numpy_helper.from_array(b1, "b1")),
        helper.make_node("Add", ["h1", "b1"], ["h1b"], name="fc1_bias"),
        helper.make_node("Relu", ["h1b"], ["a1"], name="relu1"),
        helper.make_node("Gemm", ["a1", "W2", "b2"], ["logits"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes, "eiegen_onnx_example",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n0])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", n3])],
        initializer=init)
    model = helper.make_model(graph, producer_name="eiegen models.onnx_example",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main(argv=None) -> int:
    ap = ArgumentParser(prog="python -m models.onnx_example",
                        description="Write the ONNX test model "
                                    "(models/data/onnx_example.onnx).")
    ap.add_argument("--out", type=Path, default=OUT, help=f"output file (default {OUT})")
    args = ap.parse_args(argv)
    write_atomic(args.out, build_example().SerializeToString())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
