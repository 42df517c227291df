"""Latency of the zoo models on MAX, onnxruntime and torch eager: ``onnx2max bench`` per model.

Each model runs in its own process (``onnx2max bench NAME --json``: exported from torch,
converted through the compile cache, timed after warm-up with the engines taking turns in
blocks); the script then prints
a markdown table with the machine, versions, load and commit, for ``docs/performance.md``.

Usage: ``python benchmarks/bench_zoo.py [--models mlp,resnet18] [--runs 50] [--out FILE.json]``.
The first run of a model compiles it (minutes for the CNNs on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="mlp,small_cnn,resnet18,mobilenet_v2,transformer_encoder,gpt")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", type=Path, default=None, help="write all records as JSON")
    a = ap.parse_args()
    from onnx2max.conformance import source_commit

    commit = source_commit()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            out = Path(tmp) / f"{name}.json"
            r = subprocess.run([sys.executable, "-m", "onnx2max.cli", "bench", name, "--runs", str(a.runs),
                                "--no-overhead", "--json", str(out)], capture_output=True, text=True)
            if r.returncode or not out.exists():
                print(f"{name}: failed ({r.returncode}): {r.stderr[-500:]}", file=sys.stderr)
                continue
            rec = json.loads(out.read_text())
            rec["commit"] = commit
            records.append(rec)
            print(f"{name}: MAX/onnxruntime {rec['ratio']:.2f}", file=sys.stderr)
    if a.out:
        a.out.write_text(json.dumps(records, indent=1) + "\n")
    m = records[0]["machine"] if records else {}
    print(f"At {commit}; {m.get('machine')}, {m.get('cores')} cores; MAX {m.get('max')}, onnxruntime "
          f"{m.get('onnxruntime')}, torch {m.get('torch')}. Median (p90) ms per call.\n")
    print("| model | batch | MAX | onnxruntime | torch eager | MAX / onnxruntime | load before |")
    print("|---|---|---|---|---|---|---|")
    for rec in records:
        t = {x["engine"]: x for x in rec["timings"]}

        def cell(e):
            return f"{t[e]['median_ms']:.3f} ({t[e]['p90_ms']:.3f})" if e in t else "-"

        print(f"| {rec['model']} | {rec['batch']} | {cell('onnx2max (MAX)')} | {cell('onnxruntime')} | "
              f"{cell('torch eager')} | {rec['ratio']:.2f} | {rec['machine']['load_avg']} |")


if __name__ == "__main__":
    main()
