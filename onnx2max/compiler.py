"""Stage 4: compile lowered graphs with a MAX ``InferenceSession``, through the compile cache.

Several prepared models can be compiled as one MAX ``Module`` (graphs ``g0``, ``g1``, ...):
MAX's fixed cost of about 30 s per compile is then paid once for all of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from max import driver
from max.graph import DeviceRef
from max.graph.graph import Module

from . import cache as cache_mod
from . import derive, dtypes
from .errors import CompileError, DeviceError, InvalidModelError
from .lower import check_supported, lower_graph, lowering_switches
from .prepare import Prepared, TensorSpec

log = logging.getLogger("onnx2max")

_SESSIONS: dict[str, object] = {}
_SESSION_LOCK = threading.Lock()


@dataclass(frozen=True)
class Device:
    """A resolved device: the MAX ``DeviceRef`` for graphs, the driver device, and a label."""

    ref: DeviceRef
    label: str

    @property
    def is_cpu(self) -> bool:
        return self.label == "cpu"


def resolve_device(device) -> Device:
    """``"cpu"``, ``"gpu"``, ``"gpu:N"`` (``"cuda"`` too) or a MAX ``DeviceRef`` -> :class:`Device`.

    Raises:
        DeviceError: unknown name, or a GPU asked for on a machine without one.
    """
    if isinstance(device, Device):
        return device
    if isinstance(device, DeviceRef):
        kind = str(device.device_type).lower()
        label = "cpu" if "cpu" in kind else f"gpu:{device.id}"
    elif isinstance(device, str):
        name = device.strip().lower()
        if name == "cpu":
            label = "cpu"
        elif name in ("gpu", "cuda", "accelerator") or name.startswith(("gpu:", "cuda:")):
            idx = int(name.split(":")[1]) if ":" in name else 0
            label = f"gpu:{idx}"
        else:
            raise DeviceError(f"unknown device '{device}'; expected 'cpu', 'gpu' or 'gpu:N'")
    else:
        raise DeviceError(f"device must be 'cpu', 'gpu', 'gpu:N' or a max.graph.DeviceRef, not {device!r}")
    if label == "cpu":
        return Device(DeviceRef.CPU(), "cpu")
    idx = int(label.split(":")[1])
    count = driver.accelerator_count()
    if idx >= count:
        raise DeviceError(
            f"device '{label}' asked for, but MAX sees {count} GPU(s) on this machine; "
            "use device='cpu'"
        )
    return Device(DeviceRef.GPU(idx), label)


def session_for(dev: Device):
    """One MAX ``InferenceSession`` per device, shared by every model of this process."""
    from max.engine import InferenceSession

    with _SESSION_LOCK:
        s = _SESSIONS.get(dev.label)
        if s is None:
            drv = driver.CPU() if dev.is_cpu else driver.Accelerator(int(dev.label.split(":")[1]))
            s = InferenceSession(devices=[drv])
            _SESSIONS[dev.label] = s
        return s


def _progress_wanted(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    env = os.environ.get("ONNX2MAX_PROGRESS")
    if env is not None:
        return env not in ("0", "", "false", "no")
    return sys.stderr.isatty()


def _compile_with_progress(session, module, what: str, show: bool):
    if not show:
        return session.compile(module)
    from rich.console import Console

    console = Console(stderr=True)
    start = time.monotonic()
    result: dict = {}

    def work():
        try:
            result["v"] = session.compile(module)
        except BaseException as e:  # handed to the caller below
            result["e"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    with console.status(f"Compiling {what} with MAX") as status:
        while t.is_alive():
            t.join(0.25)
            status.update(
                f"Compiling {what} with MAX: {time.monotonic() - start:.0f} s "
                "(about 30 s plus a few s per new kernel; cached for next time)"
            )
    console.print(f"Compiled {what} in {time.monotonic() - start:.1f} s")
    if "e" in result:
        raise result["e"]
    return result["v"]


@dataclass
class Built:
    """One compiled graph: the MAX model, its weights and its I/O types.

    ``weights`` holds the arrays handed to MAX, which aliases them on CPU: keep them alive.
    """

    model: object
    prepared: Prepared
    outputs: list[TensorSpec]
    weights: dict[str, np.ndarray]
    cache_hit: bool
    compile_seconds: float
    stats: "ConversionStats | None" = None


def _weight_registry(ps, ids_list, manifest) -> list[dict[str, np.ndarray]]:
    """The arrays for every weight of the manifest, dtype and shape checked (MAX does not)."""
    regs = []
    for p, ids, g in zip(ps, ids_list, manifest["graphs"]):
        by_id = {v: k for k, v in ids.items()}

        def value(cid, wname):
            name = by_id.get(cid)
            if name is None or name not in p.values:
                raise CompileError(f"{p.source}: the cache manifest names {cid} for weight "
                                   f"'{wname}', which this model does not have")
            return name, p.values[name]

        reg = {}
        for wname, src, dt, shape in g["weights"]:
            if isinstance(src, str):
                name, arr = value(src, wname)
                arr = dtypes.c_contiguous(arr)
            else:
                inputs = [value(c, wname)[1] for c in src["from"]]
                name = f"{src['recipe']} of " + ", ".join(by_id[c] for c in src["from"])
                arr = derive.compute(src["recipe"], inputs, dict(src["params"]), shape)
            if str(arr.dtype) != dt or list(arr.shape) != list(shape):
                raise InvalidModelError(
                    f"{p.source}: tensor '{name}' is {arr.dtype}{list(arr.shape)}, but the graph "
                    f"expects {dt}{list(shape)} for weight '{wname}'"
                )
            reg[wname] = arr
        regs.append(reg)
    return regs


def _weight_manifest(p: Prepared, ids: dict[str, str], weights) -> list:
    out = []
    for w, src in weights:
        if isinstance(src, str):
            v = p.values[src]
            out.append([w, ids[src], str(v.dtype), list(v.shape)])
        else:
            out.append([w, {"recipe": src.recipe, "from": [ids[n] for n in src.names],
                            "params": dict(src.params)}, src.dtype, list(src.shape)])
    return out


@dataclass
class ConversionStats:
    """Where one conversion's time went: wall-clock seconds per stage, and what was compiled.

    Shared by every model of one :func:`~onnx2max.from_onnx_many` call (they compile as one
    MAX module). ``cache`` says how the compiled graph was obtained: ``"structure"`` (the
    structure index hit: no lowering, no compile), ``"graph"`` (lowered, and the MEF of that
    exact MAX graph was in the cache: no compile), ``"miss"`` (compiled by MAX) or ``"off"``
    (caching disabled, compiled).

    Attributes:
        load_s: reading and checking the ONNX files (``load_model``), seconds.
        prepare_s: shape inference and constant folding (``prepare``), seconds.
        lower_s: building the MAX graph (``lower_graph``) and digesting its text, seconds.
        compile_s: MAX ``InferenceSession.compile`` of the module, seconds (0 when cached).
        cache_load_s: loading a cached MEF and initialising the model with its weights, seconds.
        cache_store_s: exporting the MEF and writing the cache entry, seconds.
        init_s: ``init_all`` of a freshly compiled module (weights bound), seconds.
        nodes: ONNX nodes after preparation (folded nodes removed), all models together.
        max_ops: operations in the lowered MAX module (``None`` when it was not lowered).
        models: models compiled together.
        cache: ``"structure"``, ``"graph"``, ``"miss"`` or ``"off"`` (see above).
        graph_digest: the MEF store key of the module (``None`` when not lowered).
        wall_s: the whole ``from_onnx`` call, seconds; ``wall_s - total_s`` is the time outside
            the stages (resolving the device, digesting the structure, building outputs).
        passes: ``{pass name: rewrites}`` made by the graph passes (:mod:`onnx2max.passes`),
            all models together; their time is in ``prepare_s``.
    """

    load_s: float = 0.0
    prepare_s: float = 0.0
    lower_s: float = 0.0
    compile_s: float = 0.0
    cache_load_s: float = 0.0
    cache_store_s: float = 0.0
    init_s: float = 0.0
    nodes: int = 0
    max_ops: int | None = None
    models: int = 1
    cache: str = "miss"
    graph_digest: str | None = None
    wall_s: float = 0.0
    passes: dict[str, int] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        """Sum of the stage times, seconds."""
        return (self.load_s + self.prepare_s + self.lower_s + self.compile_s + self.cache_load_s
                + self.cache_store_s + self.init_s)

    def rows(self) -> list[tuple[str, str]]:
        """``(stage, value)`` rows for a table, times in seconds."""
        r = [("load", f"{self.load_s:.3f} s"), ("prepare", f"{self.prepare_s:.3f} s"),
             ("lower", f"{self.lower_s:.3f} s"), ("MAX compile", f"{self.compile_s:.3f} s"),
             ("init (weights)", f"{self.init_s:.3f} s"),
             ("cache load", f"{self.cache_load_s:.3f} s"),
             ("cache store", f"{self.cache_store_s:.3f} s"),
             ("other", f"{max(self.wall_s - self.total_s, 0.0):.3f} s"),
             ("from_onnx wall time", f"{self.wall_s:.3f} s"),
             ("cache", self.cache), ("ONNX nodes", str(self.nodes)),
             ("MAX ops", "-" if self.max_ops is None else str(self.max_ops)),
             ("models compiled together", str(self.models))]
        r += [(f"pass {k}", f"{v} rewrites") for k, v in self.passes.items()]
        return r

    def print(self, file=None) -> None:
        """Print :meth:`rows` as a table (rich) on ``file`` (default stderr)."""
        from rich.console import Console
        from rich.table import Table

        t = Table(title="conversion profile")
        t.add_column("stage")
        t.add_column("value", justify="right")
        for k, v in self.rows():
            t.add_row(k, v)
        Console(file=file or sys.stderr).print(t)


_MAX_OP = re.compile(r"^\s*(?:%[^=]+ = )?\"?r?mo\.(?!graph\b|output\b)[\w.]+", re.MULTILINE)


def count_max_ops(module_text: str) -> int:
    """Number of MAX graph operations (``mo.*``, ``rmo.*`` ...) in a module's MLIR text."""
    return sum(1 for _ in _MAX_OP.finditer(module_text))


def _init(session, compiled, ps, ids_list, manifest):
    regs = _weight_registry(ps, ids_list, manifest)
    # bfloat16 weights go in as MAX buffers (numpy cannot export them)
    merged = {k: dtypes.to_buffer(v) if dtypes.is_narrow(v.dtype) or dtypes.is_byte_float_dtype(v.dtype) else v
              for r in regs for k, v in r.items()}
    models = session.init_all(compiled, weights_registry=merged)
    return [models[f"g{k}"] for k in range(len(ps))], regs


def build(
    ps: list[Prepared],
    device: Device,
    cache_dir=None,
    progress: bool | None = None,
    label: str = "model",
    stats: ConversionStats | None = None,
) -> list[Built]:
    """Compile prepared models together (one MAX ``Module``), using the compile cache.

    Args:
        ps: prepared models; graph ``k`` of the module is ``ps[k]``.
        device: where to compile and run.
        cache_dir: cache folder; ``None`` for the default (:func:`cache.default_cache_dir`),
            ``False`` to disable caching.
        progress: show a progress line while compiling (default: when stderr is a terminal).
        label: what to call the models in progress output.
        stats: a :class:`ConversionStats` to fill in (lower, compile, cache times, nodes).

    Raises:
        UnsupportedOpError: before any compile, listing every unsupported node of every model.
        ConversionError, CompileError.
    """
    from .errors import UnsupportedOpError

    stats = stats if stats is not None else ConversionStats()
    stats.models = len(ps)
    stats.nodes = sum(len(p.nodes) for p in ps)
    bad = []
    for p in ps:
        try:
            check_supported(p)
        except UnsupportedOpError as e:
            bad.extend(e.nodes)
    if bad:
        raise UnsupportedOpError(bad)

    ids_list = [cache_mod.canonical_ids(p) for p in ps]
    graphs = list(zip(ps, ids_list))
    h = hashlib.sha256()
    # lowering switches read from the environment change the graph, so they are part of the key
    switches = lowering_switches()
    h.update(f"{cache_mod.code_fingerprint()}|{device.label}|{len(ps)}|{switches}".encode())
    for p, ids in graphs:
        h.update(cache_mod.structure_key(p, ids).encode())
    key = h.hexdigest()[:40]
    root = None if cache_dir is False else (cache_dir or cache_mod.default_cache_dir())
    cache = cache_mod.CompileCache(root)
    session = session_for(device)

    def served(mef, manifest, how: str, t0: float) -> list[Built]:
        compiled = session.compile(str(mef))
        models, regs = _init(session, compiled, ps, ids_list, manifest)
        stats.cache_load_s = time.monotonic() - t0
        stats.cache = how
        out = []
        for k, (p, g) in enumerate(zip(ps, manifest["graphs"])):
            outs = [TensorSpec(n, tuple(s), e) for n, (e, s) in zip(p.outputs, g["outputs"])]
            out.append(Built(models[k], p, outs, regs[k], True, stats.cache_load_s, stats))
        log.info("onnx2max: %s served from the compile cache (%s, %s)", label, how, mef)
        return out

    entry = cache.lookup(key, graphs)
    if entry is not None:
        try:
            return served(entry.mef, entry.manifest, "structure", time.monotonic())
        except Exception as e:  # unreadable artifact or a manifest that disagrees: rebuild
            log.warning("onnx2max: cache entry %s unusable (%s); lowering again", entry.mef, e)

    t0 = time.monotonic()
    module = Module()
    lowered = []
    for k, p in enumerate(ps):
        _g, low = lower_graph(p, device.ref, f"g{k}", f"g{k}_", module=module)
        lowered.append(low)
    text = module._to_mlir_str()
    digest = cache_mod.graph_digest(text, device.label)
    stats.graph_digest = digest
    stats.max_ops = count_max_ops(text)
    stats.lower_s = time.monotonic() - t0
    manifest = {
        "max": cache_mod.max_version(),
        "graphs": [
            {
                "weights": _weight_manifest(p, ids, low.weights),
                "outputs": [[s.elem_type, list(s.shape)] for s in low.outputs],
            }
            for p, ids, low in zip(ps, ids_list, lowered)
        ],
    }
    consumed = [sorted({ids[n] for n in low.consumed if n in ids and n in p.values},
                       key=lambda c: int(c[1:]))
                for p, ids, low in zip(ps, ids_list, lowered)]

    mef = cache.lookup_graph(digest)
    if mef is not None:
        try:
            out = served(mef, manifest, "graph", time.monotonic())
            t1 = time.monotonic()
            cache.store(key, graphs, consumed, digest, None, manifest)
            stats.cache_store_s = time.monotonic() - t1
            return out
        except Exception as e:
            log.warning("onnx2max: cached MEF %s unusable (%s); recompiling", mef, e)

    t0 = time.monotonic()
    try:
        compiled = _compile_with_progress(
            session, module, f"{label} ({stats.nodes} nodes, {device.label})",
            _progress_wanted(progress)
        )
    except Exception as e:
        raise CompileError(
            f"MAX failed to compile {label} for {device.label}: {type(e).__name__}: {e}"
        ) from e
    stats.compile_s = dt = time.monotonic() - t0
    stats.cache = "miss" if cache.root is not None else "off"
    t1 = time.monotonic()
    cache.store(key, graphs, consumed, digest, compiled.export_mef, manifest)
    stats.cache_store_s = time.monotonic() - t1
    t2 = time.monotonic()
    models, regs = _init(session, compiled, ps, ids_list, manifest)
    stats.init_s = time.monotonic() - t2
    return [
        Built(models[k], p, low.outputs, regs[k], False, dt, stats)
        for k, (p, low) in enumerate(zip(ps, lowered))
    ]


__all__ = ["Device", "resolve_device", "build", "session_for", "dtypes", "ConversionStats"]
