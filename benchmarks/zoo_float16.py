"""Convert zoo models exported in float16 and compare them with onnxruntime and torch.

Each model of ``models/zoo.py`` named is made float16 with ``Module.half()`` (its inputs too,
where they are floats) and exported by ``torch.onnx.export`` at each opset asked for: below
opset 17 torch writes LayerNorm out as ReduceMean, Sub, Pow, Sqrt and Div; from 17 on it
writes ``LayerNormalization``. Each file is converted without onnx2max's compile cache
(``cache_dir=False``; MAX's own cache may still hold a compile of the same graph, so the
seconds are not a cold compile's), run once, and compared with onnxruntime on the same float16
model and with the float32 torch module (its float32 weights).

Usage::

    python benchmarks/zoo_float16.py [--models gpt transformer_encoder] [--opsets 14 17] [--json FILE]

Prints one line per model and opset; ``--json`` writes the records with the onnx2max commit,
the versions and the date. Each conversion is a MAX compile (about 1-2 minutes each on this
project's 2-core machine). Errors are recorded, not raised: the point is which exports convert.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_one(name: str, opset: int, folder: Path) -> dict:
    """Export zoo model ``name`` in float16 at ``opset``, convert, run and compare. Returns a
    record: ``ok``, the largest absolute differences against onnxruntime and float32 torch,
    the largest absolute reference value, and the conversion seconds; or ``ok: False`` and the
    error."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    import onnx2max
    from models.zoo import ZOO

    module, example = ZOO[name]()
    half = tuple(e.half() if e.is_floating_point() else e for e in example)
    path = folder / f"{name}_float16_opset{opset}.onnx"
    with torch.no_grad():
        want32 = module.float()(*example).numpy()
    # not under no_grad: there nn.TransformerEncoder takes a fused path that has no ONNX export
    torch.onnx.export(module.half(), half, str(path), opset_version=opset, dynamo=False)
    feeds = {i.name: e.numpy() for i, e in zip(onnx.load(str(path)).graph.input, half)}
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    rec = {"model": name, "opset": opset, "max_abs_value": float(np.abs(want32).max()),
           "onnxruntime_vs_torch32": float(np.abs(ref.astype(np.float32) - want32).max())}
    t0 = time.monotonic()
    try:
        got = onnx2max.from_onnx(str(path), cache_dir=False, progress=False).run(None, feeds)[0]
    except Exception as e:  # noqa: BLE001  (recorded: which exports convert is the result)
        rec.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    else:
        g = got.astype(np.float32)
        rec.update(ok=True, dtype=str(got.dtype), vs_onnxruntime=float(np.abs(g - ref.astype(np.float32)).max()),
                   vs_torch32=float(np.abs(g - want32).max()))
    rec["seconds"] = round(time.monotonic() - t0, 1)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["gpt", "transformer_encoder"])
    ap.add_argument("--opsets", nargs="+", type=int, default=[14, 17])
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args()
    from importlib.metadata import version

    meta = {"onnx2max_commit": _commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **{pkg: version(pkg) for pkg in ("max", "onnx", "onnxruntime", "torch")}}
    records = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.models:
            for opset in args.opsets:
                rec = run_one(name, opset, Path(d))
                records.append(rec)
                if rec["ok"]:
                    print(f"{name} opset {opset}: converted in {rec['seconds']} s; max |MAX - onnxruntime| "
                          f"{rec['vs_onnxruntime']:.3g}, max |MAX - torch float32| {rec['vs_torch32']:.3g} "
                          f"(onnxruntime's {rec['onnxruntime_vs_torch32']:.3g}; values up to {rec['max_abs_value']:.3g})",
                          flush=True)
                else:
                    print(f"{name} opset {opset}: failed after {rec['seconds']} s: {rec['error']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
