"""The public entry points: :func:`from_onnx` and :func:`from_onnx_many`."""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, Sequence

import onnx

from . import ops as _ops  # noqa: F401  (registers the converters)
from .compiler import ConversionStats, build, resolve_device
from .load import load_model
from .model import CompiledModel
from .passes import optimize
from .prepare import prepare

ModelLike = "str | os.PathLike | onnx.ModelProto"


def from_onnx(
    model: str | os.PathLike | bytes | onnx.ModelProto,
    *,
    device="cpu",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    constant_inputs: Mapping[str, Any] | None = None,
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
    cache_dir: str | os.PathLike | bool | None = None,
    progress: bool | None = None,
    profile: bool = False,
) -> CompiledModel:
    """Translate an ONNX model to MAX, compile it and return a runnable model.

    Pipeline: load (ONNX checker) -> prepare (static input shapes, ONNX shape inference,
    constant folding with onnx's reference evaluator) -> lower (one converter per node to
    ``max.graph.ops``) -> compile (MAX ``InferenceSession``, through the compile cache).

    Args:
        model: path of an ``.onnx`` file (external data is read only from its folder), an
            ``onnx.ModelProto``, or the model serialized as ``bytes`` (as onnxruntime's
            ``InferenceSession`` takes it).
        device: ``"cpu"``, ``"gpu"``, ``"gpu:N"`` or a MAX ``DeviceRef``.
        input_shapes: ``{input name: shape}`` fixing symbolic dims, e.g. ``{"x": (1, 3, 224, 224)}``.
            Dims the model leaves symbolic (``dim_param``, or a ``dim_value`` of -1, which
            onnxruntime also treats as dynamic) and are not fixed here stay symbolic in the MAX
            graph: one compile serves every size (see ``CompiledModel.inputs``). Fixing them
            gives MAX static shapes (somewhat faster kernels; a new compile per size), and is
            needed where a converter takes static dims only (its error says so).
        constant_inputs: ``{input name: value}`` binding graph inputs to values at conversion,
            e.g. ``{"sr": np.array(16000)}``: configuration inputs (a sample rate, a mode flag,
            a size). They are folded like initializers (an ``If`` on them is resolved) and are
            no longer inputs of the compiled model. numpy values must have the input's dtype;
            Python scalars and lists are converted to it.
        dynamic: ``{input name: {axis: dim name}}`` making dims symbolic that the model fixes,
            e.g. ``{"x": {0: "batch"}}``. Inputs that share a dim name must agree on its size
            at run time.
        cache_dir: folder of the compile cache; default ``$ONNX2MAX_CACHE_DIR`` or
            ``~/.cache/onnx2max``; ``False`` disables caching.
        progress: show compile progress on stderr; default: when stderr is a terminal.
        profile: print a table of where the conversion's time went (load, prepare, lower,
            MAX compile, cache) on stderr. The same figures are always kept in
            ``CompiledModel.stats`` (a :class:`~onnx2max.compiler.ConversionStats`).

    Returns:
        A :class:`~onnx2max.model.CompiledModel` with ``run(output_names, feed)``.

    Raises:
        ModelLoadError: the file cannot be read or is not ONNX.
        InvalidModelError: the checker rejects the model, or a graph input declares no shape
            (the message shows the ``input_shapes`` to pass).
        InputError: ``input_shapes`` or ``constant_inputs`` names unknown inputs or
            contradicts the model's declared types.
        UnsupportedOpError: lists every node whose (domain, op type, opset) has no converter.
        ConversionError: a node uses an attribute value or dynamic input that MAX cannot take,
            or needs static dims where a symbolic one reaches it (the message names the node
            and the ``input_shapes`` that fix it).
        DeviceError: the device does not exist on this machine.
        CompileError: MAX failed to compile the graph.
    """
    return from_onnx_many(
        [model], device=device, input_shapes=[input_shapes], constant_inputs=[constant_inputs],
        dynamic=[dynamic], cache_dir=cache_dir, progress=progress, profile=profile,
    )[0]


def from_onnx_many(
    models: Sequence[str | os.PathLike | bytes | onnx.ModelProto],
    *,
    device="cpu",
    input_shapes: Sequence[Mapping[str, Sequence[int]] | None] | None = None,
    constant_inputs: Sequence[Mapping[str, Any] | None] | None = None,
    dynamic: Sequence[Mapping[str, Mapping[int, str]] | None] | None = None,
    cache_dir: str | os.PathLike | bool | None = None,
    progress: bool | None = None,
    profile: bool = False,
) -> list[CompiledModel]:
    """Translate several ONNX models and compile them together in one MAX compile.

    MAX pays about 30 s of fixed work per compile, so compiling N models together costs far
    less than N compiles. Arguments are as for :func:`from_onnx`; ``input_shapes``,
    ``constant_inputs`` and ``dynamic`` are one entry per model (or ``None``). Every model is checked before anything is compiled.

    Returns:
        One :class:`~onnx2max.model.CompiledModel` per model, in order; they share one
        ``stats`` record (:class:`~onnx2max.compiler.ConversionStats`) for the whole compile.
    """
    t_start = time.monotonic()
    stats = ConversionStats()
    loaded = []
    for m in models:
        t0 = time.monotonic()
        loaded.append(load_model(m))
        stats.load_s += time.monotonic() - t0
    return _from_loaded(loaded, device=device, input_shapes=input_shapes, constant_inputs=constant_inputs,
                        dynamic=dynamic, cache_dir=cache_dir, progress=progress, profile=profile, stats=stats,
                        t_start=t_start)


def _from_loaded(loaded, *, device, input_shapes, constant_inputs, cache_dir, progress, profile,
                 dynamic=None,
                 stats: ConversionStats | None = None, t_start: float | None = None) -> list[CompiledModel]:
    """:func:`from_onnx_many` on models already loaded: ``(ModelProto, source)`` pairs, the
    source being the label messages use (a path, or what the caller names the model)."""
    t_start = time.monotonic() if t_start is None else t_start
    stats = stats if stats is not None else ConversionStats()
    dev = resolve_device(device)
    n = len(loaded)
    shapes = list(input_shapes) if input_shapes is not None else [None] * n
    if len(shapes) != n:
        raise ValueError(f"{n} models but {len(shapes)} input_shapes entries")
    consts = list(constant_inputs) if constant_inputs is not None else [None] * n
    if len(consts) != n:
        raise ValueError(f"{n} models but {len(consts)} constant_inputs entries")
    dyns = list(dynamic) if dynamic is not None else [None] * n
    if len(dyns) != n:
        raise ValueError(f"{n} models but {len(dyns)} dynamic entries")
    prepared = []
    for (proto, source), s, c, d in zip(loaded, shapes, consts, dyns):
        t1 = time.monotonic()
        p = prepare(proto, source, s, c, d)
        for k, v in optimize(p).items():
            stats.passes[k] = stats.passes.get(k, 0) + v
        prepared.append(p)
        stats.prepare_s += time.monotonic() - t1
    label = os.path.basename(prepared[0].source) if len(prepared) == 1 else f"{len(prepared)} models"
    built = build(prepared, dev, cache_dir=cache_dir, progress=progress, label=label, stats=stats)
    stats.wall_s = time.monotonic() - t_start
    if profile:
        stats.print()
    return [CompiledModel(b, dev) for b in built]
