"""Plain-MAX reproduction of the half-precision product with a graph constant (MAX 26.7, CPU).

``x @ c``, where ``c`` is a float16 (bfloat16) graph constant (``ops.constant``) of K rows, is
wrong from K = 64 (bfloat16: 128) on: errors larger than the values. The same matrix as a graph
input or a ``Weight`` gives the right product, and a float32 constant cast to float16 in the
graph is as wrong as a float16 constant. onnx2max works around it with
``onnx2max.ops.matmul.matmul_by_constant`` (the product in float32). For an upstream report::

    python benchmarks/max_half_constant_matmul.py

prints, per (M, K, N), the largest error of each form against numpy's float64 product of the
same half-precision values, beside the largest value. Two MAX compiles (a minute or two).
"""

from __future__ import annotations

import numpy as np
from max import engine
from max.driver import CPU
from max.dtype import DType
from max.graph import DeviceRef, Graph, TensorType, Weight, ops

SIZES = [(1, 16, 16), (1, 64, 64), (4, 128, 32), (1, 256, 256), (2, 324, 64)]


def _graph(name: str, mats, forms):
    dev = DeviceRef.CPU()
    with Graph(name, input_types=[TensorType(DType.float32, [m, k], dev) for m, k, _ in SIZES]) as g:
        outs = []
        for i, (xin, c) in enumerate(zip(g.inputs, mats)):
            outs += [ops.cast(f(xin.tensor, c, i, dev), DType.float32) for f in forms]
        g.output(*outs)
    return g


def _const(c, dt, dev):
    return ops.cast(ops.constant(c.astype(np.float32), DType.float32, device=dev), dt)


CONSTANT_FORMS = [  # (label, x @ c for the i-th size)
    ("float16 constant",
     lambda x, c, i, dev: ops.matmul(ops.cast(x, DType.float16), ops.constant(c, DType.float16, device=dev))),
    ("float32 constant cast to float16",
     lambda x, c, i, dev: ops.matmul(ops.cast(x, DType.float16), _const(c, DType.float16, dev))),
    ("float32 constant cast to bfloat16",
     lambda x, c, i, dev: ops.matmul(ops.cast(x, DType.bfloat16), _const(c, DType.bfloat16, dev))),
]
# in a graph of their own: beside a Weight, the constant forms above came out right in one trial
WEIGHT_FORMS = [
    ("float16 Weight",
     lambda x, c, i, dev: ops.matmul(ops.cast(x, DType.float16), Weight(f"w{i}", DType.float16, list(c.shape), dev))),
]


def main() -> None:
    rng = np.random.default_rng(0)
    mats = [rng.uniform(-1, 1, (k, n)).astype(np.float16) for _, k, n in SIZES]
    xs = [rng.uniform(-1, 1, (m, k)).astype(np.float16).astype(np.float32) for m, k, _ in SIZES]
    session = engine.InferenceSession(devices=[CPU()])
    for name, forms, weights in (("constants", CONSTANT_FORMS, None),
                                 ("weights", WEIGHT_FORMS, {f"w{i}": m for i, m in enumerate(mats)})):
        model = session.load(_graph(name, mats, [f for _, f in forms]), weights_registry=weights)
        res = model.execute(*xs)
        print(f"max abs error against numpy (float64), graph '{name}' | (M, K, N): "
              + ", ".join(label for label, _ in forms) + "; largest value")
        for i, ((m, k, n), x, c) in enumerate(zip(SIZES, xs, mats)):
            ref = x.astype(np.float64) @ c.astype(np.float64)
            errs = [float(np.abs(res[len(forms) * i + j].to_numpy() - ref).max()) for j in range(len(forms))]
            print(f"({m}, {k}, {n}): " + ", ".join(f"{e:.3g}" for e in errs) + f"; {np.abs(ref).max():.3g}")


if __name__ == "__main__":
    main()
