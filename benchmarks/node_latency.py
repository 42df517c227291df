"""Where a model's MAX run time goes: each distinct node of the prepared graph timed alone.

The model is prepared as ``from_onnx`` prepares it (shape inference, folding, graph passes).
Nodes are grouped by signature (op type, domain, attributes, input shapes and dtypes, which inputs
are constants); for each signature a one-node ONNX model is built (constant inputs as
initializers, the others as graph inputs of their inferred shapes). All of them are converted in
one MAX compile (``from_onnx_many``), checked against onnxruntime, and timed interleaved with
onnxruntime (default session options) in blocks of 10 calls per engine, each block after
20 ms of untimed calls (``onnx2max.bench._interleaved``, as ``onnx2max bench``). The table lists, per signature, the median ms per call on
each engine and the count of nodes of that signature; ``count x (MAX - empty call)`` estimates
what that signature would cost if each of its nodes were a call of its own, where the empty
call is a one-``Identity`` model timed the same way. That sum is not the model's latency: in
one graph MAX fuses elementwise ops into their neighbours and runs kernels back to back (the
zoo's gpt: about 0.5-0.9 ms per call as a whole, against a sum of 6.7-9.7 ms over its nodes
alone). What the table shows is each op's cost as a call of its own on each engine: the floor
of MAX's CPU kernels against onnxruntime's for small shapes.

Usage: ``python benchmarks/node_latency.py MODEL.onnx [--runs 200] [--top 25] [--json FILE]``.
A zoo model is exported first with ``python -m models export DIR``. One MAX compile of all
signatures (minutes for a model with many distinct shapes, cold).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import OrderedDict

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _signature(node, p) -> str:
    def shape_of(name):
        if not name:
            return "-"
        if name in p.values:
            v = p.values[name]
            return f"const{list(v.shape)}:{v.dtype}"
        t = p.types.get(name)
        return f"{list(t[1]) if t and t[1] is not None else '?'}:{t[0] if t else '?'}"

    attrs = sorted((a.name, str(helper.get_attribute_value(a))) for a in node.attribute)
    return f"{node.domain}::{node.op_type} {[shape_of(i) for i in node.input]} {attrs}"


def one_node_model(node, p) -> onnx.ModelProto | None:
    """``node`` alone: its constant inputs as initializers, the others as graph inputs."""
    inputs, inits = [], []
    for name in node.input:
        if not name:
            continue
        if name in p.values:
            if name not in {t.name for t in inits}:
                inits.append(numpy_helper.from_array(p.values[name], name))
            continue
        t = p.types.get(name)
        if not t or t[1] is None or not all(isinstance(d, int) for d in t[1]):
            return None
        if name not in {v.name for v in inputs}:
            inputs.append(helper.make_tensor_value_info(name, t[0], list(t[1])))
    if not inputs:
        return None
    outputs = []
    for o in node.output:
        if o:
            t = p.types.get(o)
            if not t:
                return None
            outputs.append(helper.make_tensor_value_info(o, t[0], list(t[1]) if t[1] is not None else None))
    g = helper.make_graph([node], node.op_type, inputs, outputs, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in p.opsets.items()])


def _identity_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "empty", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import onnxruntime as ort

    import onnx2max
    from onnx2max.bench import _interleaved
    from onnx2max.conformance import source_commit
    from onnx2max.load import load_model
    from onnx2max.passes import optimize
    from onnx2max.prepare import prepare

    proto, source = load_model(a.model)
    p = prepare(proto, source)
    optimize(p)
    groups: OrderedDict[str, list] = OrderedDict()
    for node in p.nodes:
        groups.setdefault(_signature(node, p), []).append(node)
    sigs, models, skipped = [], [], []
    for sig, nodes in groups.items():
        m = one_node_model(nodes[0], p)
        if m is None:
            skipped.append(sig)
            continue
        sigs.append(sig)
        models.append(m)
    models.append(_identity_model())
    print(f"{source}: {len(p.nodes)} nodes, {len(groups)} signatures, {len(skipped)} not timed "
          "(no runtime input or unknown shapes)")
    compiled = onnx2max.from_onnx_many(models, progress=True)
    rng = np.random.default_rng(0)
    rows = []
    for sig, m, c in zip(sigs + ["(empty call)"], models, compiled):
        feeds = {}
        for vi in m.graph.input:
            t = vi.type.tensor_type
            shape = [d.dim_value for d in t.shape.dim]
            dt = helper.tensor_dtype_to_np_dtype(t.elem_type)
            if dt.kind == "f":
                feeds[vi.name] = rng.standard_normal(shape).astype(dt)
            elif dt.kind == "b":
                feeds[vi.name] = rng.integers(0, 2, shape).astype(bool)
            else:  # indices: small non-negative values
                feeds[vi.name] = rng.integers(0, 2, shape).astype(dt)
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        same = all(np.allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=1e-3, atol=1e-4)
                   for g, w in zip(c.run(None, feeds), sess.run(None, feeds)))
        t_max, t_ort = _interleaved({"max": lambda: c.run(None, feeds), "ort": lambda: sess.run(None, feeds)},
                                    warmup=10, runs=a.runs, max_seconds=60.0, batch=1, block=10)
        n = len(groups.get(sig, [None]))
        rows.append({"signature": sig, "count": n, "matches_onnxruntime": bool(same), "max_ms": t_max.median_ms,
                     "ort_ms": t_ort.median_ms})
    empty = rows.pop()
    for r in rows:
        r["max_share_ms"] = r["count"] * max(r["max_ms"] - empty["max_ms"], 0.0)
        r["ort_share_ms"] = r["count"] * max(r["ort_ms"] - empty["ort_ms"], 0.0)
    rows.sort(key=lambda r: -r["max_share_ms"])
    print(f"\n{source} at {source_commit()}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.2f}; empty call: MAX {empty['max_ms']:.3f} ms, "
          f"onnxruntime {empty['ort_ms']:.3f} ms")
    print("| node signature | nodes | MAX ms | onnxruntime ms | nodes x (MAX - empty) ms | "
          "nodes x (onnxruntime - empty) ms | same values |")
    print("|---|---|---|---|---|---|---|")
    for r in rows[:a.top]:
        print(f"| `{r['signature'][:110]}` | {r['count']} | {r['max_ms']:.3f} | {r['ort_ms']:.3f} | "
              f"{r['max_share_ms']:.3f} | {r['ort_share_ms']:.3f} | {'yes' if r['matches_onnxruntime'] else 'NO'} |")
    print(f"sum over all signatures: MAX {sum(r['max_share_ms'] for r in rows):.3f} ms, "
          f"onnxruntime {sum(r['ort_share_ms'] for r in rows):.3f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": source, "commit": source_commit(), "empty": empty, "rows": rows,
                       "skipped": skipped}, f, indent=1)


if __name__ == "__main__":
    main()
