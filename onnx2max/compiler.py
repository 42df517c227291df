"""Stage 4: compile lowered graphs with a MAX ``InferenceSession``, through the compile cache.

Several prepared models can be compiled as one MAX ``Module`` (graphs ``g0``, ``g1``, ...):
MAX's fixed cost of about 30 s per compile is then paid once for all of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from max import driver
from max.graph import DeviceRef
from max.graph.graph import Module

from . import cache as cache_mod
from . import derive, dtypes
from .errors import CompileError, DeviceError, InvalidModelError
from .lower import check_supported, lower_graph
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


def build(
    ps: list[Prepared],
    device: Device,
    cache_dir=None,
    progress: bool | None = None,
    label: str = "model",
) -> list[Built]:
    """Compile prepared models together (one MAX ``Module``), using the compile cache.

    Args:
        ps: prepared models; graph ``k`` of the module is ``ps[k]``.
        device: where to compile and run.
        cache_dir: cache folder; ``None`` for the default (:func:`cache.default_cache_dir`),
            ``False`` to disable caching.
        progress: show a progress line while compiling (default: when stderr is a terminal).
        label: what to call the models in progress output.

    Raises:
        UnsupportedOpError: before any compile, listing every unsupported node of every model.
        ConversionError, CompileError.
    """
    from .errors import UnsupportedOpError

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
    h.update(f"{cache_mod.code_fingerprint()}|{device.label}|{len(ps)}".encode())
    for p, ids in graphs:
        h.update(cache_mod.structure_key(p, ids).encode())
    key = h.hexdigest()[:40]
    root = None if cache_dir is False else (cache_dir or cache_mod.default_cache_dir())
    cache = cache_mod.CompileCache(root)
    session = session_for(device)

    entry = cache.lookup(key, graphs)
    if entry is not None:
        try:
            t0 = time.monotonic()
            compiled = session.compile(str(entry.mef))
            regs = _weight_registry(ps, ids_list, entry.manifest)
            merged = {k: v for r in regs for k, v in r.items()}
            models = session.init_all(compiled, weights_registry=merged)
            dt = time.monotonic() - t0
            out = []
            for k, (p, g) in enumerate(zip(ps, entry.manifest["graphs"])):
                outs = [TensorSpec(n, tuple(s), e) for n, (e, s) in zip(p.outputs, g["outputs"])]
                out.append(Built(models[f"g{k}"], p, outs, regs[k], True, dt))
            log.info("onnx2max: %s served from the compile cache (%s)", label, entry.mef)
            return out
        except Exception as e:  # unreadable artifact or a manifest that disagrees: rebuild
            log.warning("onnx2max: cache entry %s unusable (%s); recompiling", entry.mef, e)

    module = Module()
    lowered = []
    for k, p in enumerate(ps):
        _g, low = lower_graph(p, device.ref, f"g{k}", f"g{k}_", module=module)
        lowered.append(low)
    nodes = sum(len(p.nodes) for p in ps)
    t0 = time.monotonic()
    try:
        compiled = _compile_with_progress(
            session, module, f"{label} ({nodes} nodes, {device.label})", _progress_wanted(progress)
        )
    except Exception as e:
        raise CompileError(
            f"MAX failed to compile {label} for {device.label}: {type(e).__name__}: {e}"
        ) from e
    dt = time.monotonic() - t0
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
    cache.store(key, graphs, consumed, compiled.export_mef, manifest)
    regs = _weight_registry(ps, ids_list, manifest)
    merged = {k: v for r in regs for k, v in r.items()}
    models = session.init_all(compiled, weights_registry=merged)
    return [
        Built(models[f"g{k}"], p, low.outputs, regs[k], False, dt)
        for k, (p, low) in enumerate(zip(ps, lowered))
    ]


__all__ = ["Device", "resolve_device", "build", "session_for", "dtypes"]
