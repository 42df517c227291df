"""How long MAX calls take right after something else ran: the k-th call after torch,
onnxruntime, an idle pause, or MAX itself.

On a 2-core machine the first MAX calls after another engine's calls (whose intra-op threads
spin for a while after a run) or after an idle pause (MAX's worker threads asleep) take several
times the steady time. This script measures it for a zoo model: for each "before" action
(5 torch eager calls, 5 onnxruntime calls, a 50 ms sleep, nothing), ``--rounds`` rounds of the
action followed by 30 MAX calls; it prints the median time of the k-th MAX call over the rounds.

Usage: ``python benchmarks/call_after.py [--model gpt] [--rounds 40]``. The model is exported
from the zoo and converted through the compile cache (a compile on first use).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gpt")
    ap.add_argument("--rounds", type=int, default=40)
    a = ap.parse_args()
    import onnxruntime as ort
    import torch

    import onnx2max
    from export import to_onnx
    from models import ZOO
    from onnx2max.conformance import source_commit

    module, args = ZOO[a.model]()
    with tempfile.TemporaryDirectory() as tmp:
        path = to_onnx(module, args, Path(tmp) / f"{a.model}.onnx")
        compiled = onnx2max.from_onnx(str(path), progress=True)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(sess.get_inputs(), args)}

    def torch_calls():
        with torch.inference_mode():
            for _ in range(5):
                module(*args)

    before = {"5 torch eager calls": torch_calls,
              "5 onnxruntime calls": lambda: [sess.run(None, feeds) for _ in range(5)],
              "a 50 ms sleep": lambda: time.sleep(0.05),
              "nothing (MAX calls)": lambda: None}
    for _ in range(20):
        compiled.run(None, feeds)
    print(f"{a.model} at {source_commit()}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.2f}; median ms of the k-th MAX call over {a.rounds} rounds")
    print("| before | " + " | ".join(f"call {k}" for k in (1, 2, 3, 5, 10, 20, 30)) + " |")
    print("|---|" + "---|" * 7)
    for name, fn in before.items():
        t = np.zeros((a.rounds, 30))
        for r in range(a.rounds):
            fn()
            for k in range(30):
                t0 = time.perf_counter()
                compiled.run(None, feeds)
                t[r, k] = time.perf_counter() - t0
        med = np.median(t, axis=0) * 1e3
        print(f"| {name} | " + " | ".join(f"{med[k - 1]:.2f}" for k in (1, 2, 3, 5, 10, 20, 30)) + " |")


if __name__ == "__main__":
    main()
