"""Latency of a compiled model against onnxruntime (and torch eager), measured interleaved in blocks.

:func:`bench` times ``CompiledModel.run`` and onnxruntime's ``InferenceSession.run`` (default
session options, so all cores) on the same feed, and a torch module under
``torch.inference_mode`` when one is given, after warm-up, taking turns in blocks of calls
(untimed calls for 20 ms, then ``block`` timed ones per engine), so that machine noise hits
every engine alike while no engine is timed in the calls right after another's (see
:func:`_interleaved`). :func:`call_overhead` does the same on a one-op model,
whose time is the per-call cost of ``run`` itself. The CLI is ``onnx2max bench``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping

import numpy as np


@dataclass
class EngineTiming:
    """One engine's latencies: ``median_ms``, ``p90_ms``, ``min_ms`` (milliseconds) over
    ``runs`` calls, and ``throughput`` (samples per second: the batch size, dim 0 of the first
    input, divided by the median)."""

    engine: str
    runs: int
    median_ms: float
    p90_ms: float
    min_ms: float
    throughput: float


@dataclass
class BenchResult:
    """:func:`bench`'s figures. ``ratio`` is MAX's median over onnxruntime's (below 1: MAX is
    faster); ``overhead`` the per-call timings of a one-op model when measured."""

    model: str
    batch: int
    timings: list[EngineTiming]
    ratio: float
    overhead: list[EngineTiming] = field(default_factory=list)
    machine: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


#: seconds of untimed calls at the start of each block (at least one call): after another
#: engine's calls, the first MAX calls of the zoo's gpt took 2-15x the steady time for about
#: 10 calls (the other engine's threads spinning on the two cores, MAX's waking up)
SETTLE_S = 0.02


def _interleaved(calls: Mapping[str, Callable[[], object]], warmup: int, runs: int,
                 max_seconds: float, batch: int, block: int = 10) -> list[EngineTiming]:
    """Time each engine in turn, ``block`` timed calls at a time, until ``runs`` calls each.

    Engines alternate block by block, so drifting machine noise hits them alike. With
    ``block > 1`` each block starts with untimed calls for :data:`SETTLE_S` (at least one): on
    a machine with few cores the calls right after another engine's pay for that engine's
    threads still holding the cores (onnxruntime's and torch's intra-op threads spin after a
    run) and for waking their own, which made every engine slower when calls alternated one by
    one (``docs/performance.md``). ``block=1`` alternates single calls.
    """
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in calls}
    deadline = time.monotonic() + max_seconds
    while True:
        for k, fn in calls.items():
            todo = min(block, runs - len(times[k]))
            if block > 1:  # settle: untimed calls for SETTLE_S (at least one)
                t_end = time.perf_counter() + SETTLE_S
                fn()
                while time.perf_counter() < t_end:
                    fn()
            for _ in range(todo):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        n = min(len(ts) for ts in times.values())
        if n >= runs or (n >= 5 and time.monotonic() > deadline):
            break
    out = []
    for k, ts in times.items():
        a = np.array(ts) * 1e3
        med = float(np.median(a))
        out.append(EngineTiming(k, len(ts), med, float(np.percentile(a, 90)), float(a.min()),
                                batch / (med / 1e3) if med > 0 else float("inf")))
    return out


def machine_info() -> dict:
    """The machine and versions the figures come from, with the load average before the run,
    the onnx2max commit (:func:`onnx2max.conformance.source_commit`) and the lowering switches
    (:func:`onnx2max.lower.lowering_switches`)."""
    import os
    import platform

    from .conformance import source_commit
    from .lower import lowering_switches

    info = {"machine": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load_avg": round(os.getloadavg()[0], 2), "onnx2max_commit": source_commit(),
            "lowering_switches": lowering_switches()}
    for mod in ("max", "onnxruntime", "onnx", "torch"):
        try:
            from importlib.metadata import version

            info[mod] = version(mod)
        except Exception:
            pass
    return info


def bench(model, compiled, feeds: Mapping[str, np.ndarray], *, ort_feeds: Mapping[str, np.ndarray] | None = None,
          torch_module=None, torch_inputs=None,
          warmup: int = 3, runs: int = 50, max_seconds: float = 20.0, label: str | None = None,
          block: int = 10) -> BenchResult:
    """Time ``compiled`` (a :class:`~onnx2max.CompiledModel`) against onnxruntime on ``model``.

    Args:
        model: the ONNX model (path or bytes) onnxruntime loads.
        compiled: the model converted by onnx2max.
        feeds: ``{input name: array}`` fed to MAX, and to onnxruntime unless ``ort_feeds`` is
            given (inputs bound by ``constant_inputs`` are fed to onnxruntime only); dim 0 of
            the first is the batch size.
        torch_module, torch_inputs: a torch module and its positional inputs, timed under
            ``torch.inference_mode`` when given.
        warmup: calls of each engine before timing.
        runs: timed calls of each engine, at most; fewer (at least 5) when ``max_seconds`` of
            timing have passed.
        label: the model's name in the result.
        block: timed calls of one engine before the next engine's turn (see
            :func:`_interleaved`); 1 alternates single calls.

    Returns:
        A :class:`BenchResult` (milliseconds per call; ``ratio`` = MAX median / onnxruntime median).

    Raises:
        ImportError: onnxruntime (or torch, when a module is given) is missing.
    """
    import onnxruntime as ort

    src = model if isinstance(model, (bytes, bytearray)) else str(model)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feeds = dict(feeds)
    ofeeds = dict(ort_feeds) if ort_feeds is not None else feeds
    calls: dict[str, Callable[[], object]] = {
        "onnx2max (MAX)": lambda: compiled.run(None, feeds),
        "onnxruntime": lambda: sess.run(names, ofeeds),
    }
    if torch_module is not None:
        import torch

        def run_torch():
            with torch.inference_mode():
                return torch_module(*torch_inputs)

        calls["torch eager"] = run_torch
    first = next(iter(feeds.values()), np.zeros(1))
    batch = int(first.shape[0]) if np.ndim(first) else 1
    info = machine_info()
    timings = _interleaved(calls, warmup, runs, max_seconds, batch, block)
    info["block"] = block
    ratio = timings[0].median_ms / timings[1].median_ms
    return BenchResult(label or str(model), batch, timings, ratio, machine=info)


def call_overhead(*, warmup: int = 20, runs: int = 500, max_seconds: float = 5.0, cache_dir=None,
                  block: int = 10) -> list[EngineTiming]:
    """Per-call time of ``run`` on a one-op model (``y = x + 1``, x float32[1]) for MAX and
    onnxruntime: what every call pays beyond its kernels. Compiles that model once (cached)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from .api import from_onnx

    g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "overhead",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                          initializer=[helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    blob = m.SerializeToString()
    compiled = from_onnx(blob, cache_dir=cache_dir, progress=False)
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    feeds = {"x": np.ones(1, np.float32)}
    return _interleaved({"onnx2max (MAX)": lambda: compiled.run(None, feeds),
                         "onnxruntime": lambda: sess.run(["y"], feeds)}, warmup, runs, max_seconds, 1, block)


def plot(results: list[BenchResult], path) -> None:
    """A bar chart of median latency per model and engine, written to ``path`` (PNG).

    Raises:
        ImportError: matplotlib is missing (``pip install 'onnx2max[plot]'``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = [t.engine for t in results[0].timings]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(results) * len(engines) / 2), 4))
    width = 0.8 / len(engines)
    for k, eng in enumerate(engines):
        vals = [next((t.median_ms for t in r.timings if t.engine == eng), np.nan) for r in results]
        ax.bar(np.arange(len(results)) + k * width, vals, width, label=eng)
    ax.set_xticks(np.arange(len(results)) + width * (len(engines) - 1) / 2)
    ax.set_xticklabels([r.model for r in results], rotation=20, ha="right")
    ax.set_ylabel("median latency (ms)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
