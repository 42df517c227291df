"""Run-time cost of symbolic dims: one model compiled with a symbolic batch (and sequence)
against the same model compiled for each static size, on MAX.

The zoo's transformer encoder (batch and sequence symbolic, sequence 16) and ResNet-18 (batch
symbolic) are exported with ``export.to_onnx(..., dynamic=...)``; each is converted once
symbolic and once per batch size with ``input_shapes`` (through the compile cache: a first run
compiles ``1 + len(batches)`` graphs per model, minutes each on 2 cores). Then, per batch size,
the symbolic and the static model are timed interleaved (one call of each in turn) after
warm-up, and the script prints a markdown table with the medians, the ratio, the commit and the
load average, for ``docs/performance.md``. Time only on an otherwise idle machine.

Usage: ``python benchmarks/symbolic_latency.py [--models transformer_encoder,resnet18]
[--batches 1,4] [--runs 30]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPECS = {
    "transformer_encoder": ({0: "batch", 1: "seq"}, lambda b: (b, 16, 64)),
    "resnet18": ({0: "batch"}, lambda b: (b, 3, 224, 224)),
}


def _time(fn, x) -> float:
    t0 = time.perf_counter()
    fn(x)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="transformer_encoder,resnet18")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    import onnx2max
    from export import to_onnx
    from models import ZOO
    from onnx2max.conformance import source_commit

    batches = [int(b) for b in a.batches.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            axes, shape_of = SPECS[name]
            module, inputs = ZOO[name]()
            path = to_onnx(module, inputs, Path(tmp) / f"{name}.onnx", input_names=["x"],
                           dynamic={0: axes})
            sym = onnx2max.from_onnx(path, progress=True)
            print(f"{name}: symbolic {sym.inputs[0].shape}, {sym.stats.cache} "
                  f"({sym.stats.wall_s:.1f} s)", file=sys.stderr)
            for b in batches:
                shape = shape_of(b)
                static = onnx2max.from_onnx(path, input_shapes={"x": shape}, progress=True)
                print(f"{name}: static {shape}, {static.stats.cache} ({static.stats.wall_s:.1f} s)",
                      file=sys.stderr)
                x = np.random.default_rng(b).standard_normal(shape).astype(np.float32)
                np.testing.assert_allclose(sym(x), static(x), rtol=1e-3, atol=1e-4)
                for _ in range(3):
                    sym(x), static(x)
                ts, tt = [], []
                for _ in range(a.runs):
                    ts.append(_time(sym, x))
                    tt.append(_time(static, x))
                rows.append((name, shape, statistics.median(ts), statistics.median(tt)))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    from onnx2max.cache import max_version

    print(f"\nAt {source_commit()}; {os.cpu_count()} cores, MAX {max_version()}; load average "
          f"{load} after the runs; median ms per call over {a.runs} interleaved calls.\n")
    print("| model | input | symbolic | static | symbolic / static |")
    print("|---|---|---|---|---|")
    for name, shape, s, t in rows:
        print(f"| {name} | {list(shape)} | {s:.3f} | {t:.3f} | {s / t:.2f} |")


if __name__ == "__main__":
    main()
