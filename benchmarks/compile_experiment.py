"""What MAX 26.7's compile time grows with on CPU: one experiment, one case per process.

Each case is a small ONNX model converted by onnx2max's own stages (load, prepare, lower) and
compiled by MAX twice, in a fresh process each time with its own empty ``MODULAR_CACHE_DIR``:

* ``cold``: nothing cached (MAX's kernel cache and graph cache empty);
* ``kernels cached``: the same graph with its weights renamed, compiled in a new process
  against the kernel cache the cold compile left: a graph-cache miss whose kernels are all
  cached, i.e. MAX's fixed cost for that graph.

The cases separate the costs: one block vs eight identical blocks vs eight blocks of distinct
shapes, for a MatMul block and for a Conv block, and a one-op graph for the fixed part.
Printed: wall and CPU seconds (the child's user+sys) of each compile, and the number of files
MAX wrote to its kernel cache (``.mojo_cache``: compiled kernels and IR blobs).

Usage: ``python benchmarks/compile_experiment.py [CASE ...]`` (all cases by default; about
15 minutes on 2 cores). Run it on an otherwise idle machine; it runs one compile at a time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, x_shape, y_shape, inits):
    g = helper.make_graph(
        nodes, "exp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def mlp(widths, rows=64):
    rng = np.random.default_rng(0)
    nodes, inits, cur = [], {}, "x"
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        inits[f"w{i}"] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        inits[f"b{i}"] = rng.standard_normal(b).astype(np.float32)
        nodes += [helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [f"r{i}"])]
        cur = f"r{i}"
    nodes[-1].output[0] = "y"
    return _model(nodes, [rows, widths[0]], [rows, widths[-1]], inits)


def cnn(channels, size=28, pad=1):
    rng = np.random.default_rng(0)
    nodes, inits, cur, s = [], {}, "x", size
    for i, (a, b) in enumerate(zip(channels, channels[1:])):
        inits[f"w{i}"] = (rng.standard_normal((b, a, 3, 3)) / np.sqrt(9 * a)).astype(np.float32)
        inits[f"b{i}"] = rng.standard_normal(b).astype(np.float32)
        nodes += [helper.make_node("Conv", [cur, f"w{i}", f"b{i}"], [f"c{i}"],
                                   pads=[pad] * 4, kernel_shape=[3, 3]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        cur = f"r{i}"
        s = s + 2 * pad - 2
    nodes[-1].output[0] = "y"
    return _model(nodes, [1, channels[0], size, size], [1, channels[-1], s, s], inits)


def one_add():
    n = helper.make_node("Add", ["x", "x"], ["y"])
    return _model([n], [4], [4], {})


CASES = {
    "add": ("x + x, one op (the fixed part)", one_add),
    "mlp-1": ("1 block MatMul 256x256 + Add + Relu, 64 rows", lambda: mlp([256, 256])),
    "mlp-8-same": ("8 identical blocks", lambda: mlp([256] * 9)),
    "mlp-8-distinct": ("8 blocks, each of another width (256..320)",
                       lambda: mlp([256 + 8 * i for i in range(9)])),
    "mlp-64-same": ("64 identical blocks (192 ONNX nodes)", lambda: mlp([256] * 65)),
    "conv-1": ("1 block Conv 3x3 32->32 + Relu, 1x32x28x28", lambda: cnn([32, 32])),
    "conv-8-same": ("8 identical blocks", lambda: cnn([32] * 9)),
    "conv-8-distinct": ("8 blocks, each of other channels (32..96)",
                        lambda: cnn([32 + 8 * i for i in range(9)])),
    "conv-8-spatial": ("8 blocks, 32 channels, unpadded: 28x28 down to 12x12",
                       lambda: cnn([32] * 9, pad=0)),
}

_CHILD = r"""
import json, sys, time
import onnx
from max.graph.graph import Module
from onnx2max.compiler import resolve_device, session_for
from onnx2max.load import load_model
from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare
import onnx2max.ops  # registers the converters
path, prefix = sys.argv[1], sys.argv[2]
dev = resolve_device("cpu")
proto, src = load_model(path)
p = prepare(proto, src)
m = Module()
lower_graph(p, dev.ref, "g0", prefix, module=m)
sess = session_for(dev)
t0 = time.monotonic()
sess.compile(m)
print(json.dumps({"compile_s": time.monotonic() - t0, "nodes": len(p.nodes)}), flush=True)
import os
os._exit(0)  # MAX 26.7 sometimes aborts in its thread teardown at exit after a compile
"""


def _compile(path: Path, prefix: str, cache: Path) -> dict:
    env = dict(os.environ, MODULAR_CACHE_DIR=str(cache))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), prefix], env=env,
                         capture_output=True, text=True)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {out.returncode}: " + " | ".join(tail), "compile_s": wall,
                "nodes": None, "cpu_s": 0.0, "kernel_entries": 0, "process_wall_s": wall}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["process_wall_s"] = wall
    r["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r["kernel_entries"] = sum(1 for f in (cache / ".mojo_cache").rglob("*") if f.is_file())
    return r


def main(names):
    import onnx

    rows = []
    for name in names:
        what, make = CASES[name]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            path = tmp / f"{name}.onnx"
            onnx.save(make(), path)
            cold = _compile(path, "g0_", tmp / "modular")
            warm = _compile(path, "renamed_", tmp / "modular")
        if "error" in cold:
            row = {"case": name, "what": what, "error": cold["error"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        row = {"case": name, "what": what, "nodes": cold["nodes"],
               "cold_compile_s": round(cold["compile_s"], 1), "cold_cpu_s": round(cold["cpu_s"], 1),
               "kernels": cold["kernel_entries"],
               "kernels_cached_compile_s": round(warm["compile_s"], 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    load = os.getloadavg()
    print(f"# load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| case | what | ONNX nodes | cold compile (s) | cold CPU (s) | kernel entries | "
          "kernels cached (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['case']} | {r['what']} | - | failed: {r['error'][:200]} | | | |")
            continue
        print(f"| {r['case']} | {r['what']} | {r['nodes']} | {r['cold_compile_s']} | "
              f"{r['cold_cpu_s']} | {r['kernels']} | {r['kernels_cached_compile_s']} |")


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
