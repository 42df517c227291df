"""Cold and warm conversion time of real models, one model at a time, each in a new process.

For each model:

* **cold**: a new process converts it with ``MODULAR_CACHE_DIR`` (MAX's kernel and graph
  cache) and the onnx2max compile cache both pointed at new, empty folders;
* **warm**: another new process converts it again with the same folders (onnx2max's cache hit).

Printed per model: the :class:`onnx2max.ConversionStats` of both runs (seconds in load,
prepare, lower, MAX compile, cache) and the process's CPU seconds; ``--json FILE`` writes the
records, with the machine, versions, load average and date. Run it on an otherwise idle
machine: it runs one conversion at a time, and states the load average it saw.

Models: ``gemm`` (one Gemm node, 64x256 @ 256x256), ``loop64`` (a ``Loop`` of 64 trips of
``x = tanh(x @ W)``, unrolled by default, a while loop with ``ONNX2MAX_UNROLL_LOOP=0``), the zoo (``models/``, exported with ``export.to_onnx``), ``resnet50`` (onnx's light
model), ``encoder12`` (``nn.TransformerEncoder``, 12 layers, d_model 384, 6 heads, 1x128
tokens) and ``lstm`` (``nn.LSTM``, 2 layers, bidirectional, hidden 128, 100 steps).

The lowering switches in the environment (``ONNX2MAX_POINTWISE=conv``, ``ONNX2MAX_UNROLL_RNN=1``,
``ONNX2MAX_LAYOUT=basic``, ``ONNX2MAX_UNROLL_LOOP=N``) reach the child processes and are recorded with the results, so
each lever can be measured on and off.

Usage: ``python benchmarks/compile_time.py [--models a,b,...] [--json out.json]``. A cold
ResNet-50 takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: this checkout: the parent and the child processes import its onnx2max, export and models
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_CHILD = r"""
import dataclasses, json, sys
import onnx2max
m = onnx2max.from_onnx(sys.argv[1], cache_dir=sys.argv[2], progress=False)
print("STATS " + json.dumps(dataclasses.asdict(m.stats)), flush=True)
import os
os._exit(0)  # MAX 26.7 sometimes aborts in its thread teardown at exit after a compile
"""


def export_model(name: str, folder: Path) -> Path:
    """Write model ``name`` as ONNX into ``folder`` and return its path."""
    if name == "resnet50":
        from onnx2max.bundled import bundled_models

        return Path(bundled_models()["resnet50"])
    import torch
    from torch import nn

    from export import to_onnx
    from models import ZOO

    if name == "gemm":  # one Gemm node, 64x256 @ 256x256 + bias: MAX's fixed cost plus one matmul
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
                 for n, s in (("w", (256, 256)), ("b", (256,)))]
        g = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 256])], inits)
        path = folder / "gemm.onnx"
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path
    if name == "loop64":  # a Loop of 64 trips: x = tanh(x @ W) on 8x256, W from the outer graph
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        vi = helper.make_tensor_value_info
        body = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Tanh", ["xw"], ["x_next"])],
            "body", [vi("i", TensorProto.INT64, []), vi("c", TensorProto.BOOL, []), vi("x", TensorProto.FLOAT, [8, 256])],
            [vi("c", TensorProto.BOOL, []), vi("x_next", TensorProto.FLOAT, [8, 256])])
        rng = np.random.default_rng(0)
        inits = [numpy_helper.from_array((rng.standard_normal((256, 256)) / 16).astype(np.float32), "w"),
                 numpy_helper.from_array(np.array(64, np.int64), "M")]
        g = helper.make_graph([helper.make_node("Loop", ["M", "", "x0"], ["y"], body=body)], "loop64",
                              [vi("x0", TensorProto.FLOAT, [8, 256])], [vi("y", TensorProto.FLOAT, [8, 256])], inits)
        path = folder / "loop64.onnx"
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path
    if name in ZOO:
        module, inputs = ZOO[name]()
    elif name == "encoder12":
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(384, 6, 1536, dropout=0.0, activation="gelu",
                                           batch_first=True)
        module = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False).eval()
        inputs = (torch.randn(1, 128, 384),)
    elif name == "lstm":
        torch.manual_seed(0)

        class LSTM(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.LSTM(64, 128, num_layers=2, bidirectional=True)

            def forward(self, x):
                return self.rnn(x)[0]

        module, inputs = LSTM().eval(), (torch.randn(100, 1, 64),)
    else:
        raise SystemExit(f"unknown model {name!r}")
    return to_onnx(module, inputs, folder / f"{name}.onnx")


def convert(path: Path, cache: Path, modular: Path) -> dict:
    env = dict(os.environ, MODULAR_CACHE_DIR=str(modular))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(cache)], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rec = {"process_wall_s": round(wall, 2),
           "process_cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2)}
    stats = [ln[6:] for ln in out.stdout.splitlines() if ln.startswith("STATS ")]
    if out.returncode != 0 or not stats:
        rec["error"] = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return rec
    rec.update(json.loads(stats[-1]))
    return rec


_STAGES = ("load_s", "prepare_s", "lower_s", "compile_s", "cache_load_s", "cache_store_s", "init_s")


def _stage_total(rec: dict) -> float:
    return sum(rec.get(k, 0.0) for k in _STAGES) if "error" not in rec else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="gemm,mlp,small_cnn,transformer_encoder,gpt,resnet18,"
                    "mobilenet_v2,encoder12,lstm,resnet50")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from importlib import metadata

    from onnx2max.conformance import source_commit
    from onnx2max.lower import lowering_switches

    records = []
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            path = export_model(name, tmp)
            load0 = os.getloadavg()[0]
            cold = convert(path, tmp / "o2m", tmp / "modular")
            warm = convert(path, tmp / "o2m", tmp / "modular")
        rec = {"model": name, "load_avg_before": round(load0, 2), "cold": cold, "warm": warm}
        records.append(rec)
        c, w = cold, warm
        err = f"  ERROR {c['error']}" if "error" in c else ""
        print(f"{name:20} cold: {c.get('compile_s', float('nan')):7.1f} s MAX compile, "
              f"{c['process_wall_s']:7.1f} s wall, {c['process_cpu_s']:7.1f} CPU-s, "
              f"{c.get('nodes', '-')} nodes, {c.get('max_ops', '-')} MAX ops | warm: "
              f"{_stage_total(w):.3f} s in from_onnx ({w.get('cache', w.get('error'))}), "
              f"{w['process_wall_s']:.1f} s process{err}", flush=True)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "max": metadata.version("max"), "onnx": metadata.version("onnx"),
        "onnx2max_commit": source_commit(),
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "lowering_switches": lowering_switches(),
    }
    print(json.dumps(meta))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "models": records}, indent=1))


if __name__ == "__main__":
    main()
