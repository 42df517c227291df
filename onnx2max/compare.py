"""Per-node comparison with onnxruntime: find the first node whose output diverges.

:func:`compare` makes every node output of the main graph a graph output, runs that model on
onnxruntime and (in one MAX compile) on MAX with the same feed, and reports per node output the
max absolute and relative error. The first node, in graph order, whose output exceeds the
tolerance is where a translation went wrong: what onnx2tf's ``-cotof`` and Polygraphy's
``--onnx-outputs mark all`` give their users. :meth:`Comparison.save_repro` writes that node as a
standalone one-node ONNX model with its input arrays, for a bug report.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from . import dtypes
from .errors import InputError, ReferenceRunError


def random_feeds(specs, seed: int = 0, ones: bool = False, given: Mapping[str, np.ndarray] | None = None,
                 skip: Sequence[str] = (), dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """A feed for graph inputs ``specs`` (objects with ``name``, ``shape`` and numpy ``dtype``):
    ``given`` arrays as they are; otherwise all ones (``ones``), or seeded random values: standard
    normal floats, random bools, integers 0 or 1. Inputs named in ``skip`` (those with a
    default) are left out unless given. A symbolic dim (a ``str`` in ``shape``) takes its size
    from ``dims`` (``{dim name: size}``), else from a given array with that dim, else 1."""
    rng = np.random.default_rng(seed)
    given = dict(given or {})
    sizes = dict(dims or {})
    for spec in specs:
        if spec.name in given:
            for d, a in zip(spec.shape, np.shape(given[spec.name])):
                if isinstance(d, str):
                    sizes.setdefault(d, int(a))
    feeds = {}
    for spec in specs:
        dt = np.dtype(spec.dtype)
        shape = tuple(sizes.get(d, 1) if isinstance(d, str) else d for d in spec.shape)
        if spec.name in given:
            feeds[spec.name] = given[spec.name]
        elif spec.name in skip:
            continue
        elif ones:
            feeds[spec.name] = np.ones(shape, dtype=dt)
        elif dt.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind == "b":
            feeds[spec.name] = rng.random(shape) > 0.5
        else:
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(dt)
    return feeds


@dataclass
class NodeDiff:
    """How far MAX's value of one node output is from onnxruntime's.

    Attributes:
        index: the node's position in the model's main graph (graph order).
        node: the node's name (``#index`` when it has none).
        op_type, domain: the node's op.
        output: the output's name.
        shape: its shape (onnxruntime's); dtype: its numpy dtype name.
        max_abs: largest ``|max - ort|`` over the elements (0 for equal integers; NaN where one
            side is NaN and the other is not).
        max_rel: largest ``|max - ort| / |ort|``.
        ok: every element within ``atol + rtol * |ort|`` (NaN matches NaN; integers and bools
            must be equal; shapes and dtypes must agree).
        why: what failed when it is not a value difference (shape or dtype).
    """

    index: int
    node: str
    op_type: str
    domain: str
    output: str
    shape: tuple[int, ...]
    dtype: str
    max_abs: float
    max_rel: float
    ok: bool
    why: str = ""


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes:
        rows: one :class:`NodeDiff` per compared node output, in graph order.
        first_bad: the first row that exceeds the tolerance, or ``None`` when all match.
        skipped: ``{output name: reason}`` for node outputs that were not compared.
        atol, rtol: the tolerance used.
        feeds: the graph inputs fed to both runtimes.
        reference: onnxruntime's value of every compared output, by name.
        values: MAX's value of every compared output, by name.
    """

    model: onnx.ModelProto
    rows: list[NodeDiff]
    skipped: dict[str, str]
    atol: float
    rtol: float
    feeds: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    known: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def first_bad(self) -> NodeDiff | None:
        return next((r for r in self.rows if not r.ok), None)

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def describe(self, row: NodeDiff) -> str:
        """A few lines on ``row``'s node: op, attributes, input names and shapes."""
        node = self.model.graph.node[row.index]
        attrs = {a.name: _attr_text(a) for a in node.attribute}
        ins = [f"{n}: {list(self._shape_of(n)) if self._shape_of(n) is not None else '?'}"
               for n in node.input if n]
        return (f"node '{row.node}' (#{row.index}, {row.domain or 'ai.onnx'}::{row.op_type}), "
                f"output '{row.output}' {list(row.shape)} {row.dtype}\n"
                f"  attributes: {attrs or '{}'}\n  inputs: {', '.join(ins) or '-'}\n"
                f"  max abs err {row.max_abs:.3g}, max rel err {row.max_rel:.3g}"
                + (f" ({row.why})" if row.why else ""))

    def _shape_of(self, name: str):
        for d in (self.feeds, self.reference, self.known):
            if name in d:
                return tuple(np.shape(d[name]))
        return None

    def save_repro(self, folder: str | os.PathLike, row: NodeDiff | None = None) -> Path:
        """Write ``row``'s node (default: :attr:`first_bad`) as a one-node ONNX model.

        Writes into ``folder``: ``repro.onnx`` (the node; inputs that onnx2max knew at
        conversion time, such as initializers and folded constants, are initializers, the
        others graph inputs), one ``<input>.npy`` per graph input holding the value onnxruntime
        computed for it in the full model, and ``repro.json`` (the node, its errors, and the
        ``onnx2max check`` command that reproduces it). Returns the path of ``repro.onnx``.

        Raises:
            ValueError: nothing diverged and no row was given, or the node has graph
                attributes (If, Loop, Scan: its subgraphs may read outer values).
        """
        row = row or self.first_bad
        if row is None:
            raise ValueError("every node output matched onnxruntime; pass the row to save")
        node = self.model.graph.node[row.index]
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"node '{row.node}' ({row.op_type}) has subgraphs, which may read values "
                             "of the outer graph; a one-node repro cannot hold them")
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{folder} exists and is not a folder; give a new or existing folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create the folder {folder}: {e}") from None
        inputs, inits, files = [], [], {}
        for name in dict.fromkeys(n for n in node.input if n):
            if name in self.known:
                inits.append(numpy_helper.from_array(np.asarray(self.known[name]), name))
                continue
            value = self.feeds[name] if name in self.feeds else self.reference.get(name)
            if value is None:
                raise ValueError(f"no value of input '{name}' of node '{row.node}' was computed")
            value = np.asarray(value)
            inputs.append(helper.make_tensor_value_info(name, dtypes.from_numpy(value.dtype), value.shape))
            stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            fname, k = stem + ".npy", 1
            while fname in files.values():  # two names that sanitize alike
                fname, k = f"{stem}_{k}.npy", k + 1
            np.save(folder / fname, value)
            files[name] = fname
        outputs = [helper.make_tensor_value_info(o, dtypes.from_numpy(self.reference[o].dtype),
                                                 self.reference[o].shape)
                   if o in self.reference else helper.make_empty_tensor_value_info(o)
                   for o in node.output if o]
        graph = helper.make_graph([node], f"repro_{row.op_type}", inputs, outputs, initializer=inits)
        m = helper.make_model(graph, opset_imports=list(self.model.opset_import),
                              ir_version=self.model.ir_version)
        used = {(node.domain, node.op_type)}
        m.functions.extend(f for f in self.model.functions if (f.domain, f.name) in used)
        path = folder / "repro.onnx"
        onnx.save(m, path)
        cmd = "onnx2max check repro.onnx " + " ".join(f"--input {shlex.quote(f'{n}={f}')}" for n, f in files.items())
        cmd += f" --atol {self.atol:g} --rtol {self.rtol:g}"
        (folder / "repro.json").write_text(json.dumps({
            "node": row.node, "op_type": row.op_type, "domain": row.domain or "ai.onnx",
            "output": row.output, "max_abs": row.max_abs, "max_rel": row.max_rel,
            "description": self.describe(row), "inputs": files, "command": cmd,
            "run_in": "this folder (the command's paths are relative to it)",
        }, indent=1) + "\n")
        return path


def _attr_text(a: onnx.AttributeProto) -> Any:
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, onnx.TensorProto):
        arr = numpy_helper.to_array(v)
        return arr.tolist() if arr.size <= 8 else f"tensor {list(arr.shape)} {arr.dtype}"
    if isinstance(v, onnx.GraphProto):
        return f"graph '{v.name}' ({len(v.node)} nodes)"
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode(errors="replace") for x in v]
    return v


def _diff(got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> tuple[float, float, bool, str]:
    if got.shape != want.shape or got.dtype != want.dtype:
        return float("nan"), float("nan"), False, f"MAX gave {got.dtype}{list(got.shape)}"
    if want.size == 0:
        return 0.0, 0.0, True, ""
    if want.dtype.kind not in "fc":
        bad = int(np.count_nonzero(got != want))
        return float(bad and np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))), 0.0, bad == 0, ""
    g, w = got.astype(np.float64), want.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(w)
    with np.errstate(invalid="ignore"):
        d = np.abs(g - w)
        d[both_nan] = 0.0
        same_inf = np.isinf(g) & (g == w)
        d[same_inf] = 0.0
        close = np.all((d <= atol + rtol * np.abs(w)) | both_nan | same_inf)
        rel = d / np.maximum(np.abs(w), np.finfo(np.float32).tiny)
    nan = bool(np.isnan(d).any())
    return (float("nan") if nan else float(d.max()), float("nan") if nan else float(rel.max()),
            bool(close) and not nan, "")


def reference_failure(source: str, e: BaseException) -> str:
    """The message of a :class:`~onnx2max.errors.ReferenceRunError`."""
    import onnxruntime as ort

    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return (f"{source}: onnxruntime {ort.__version__} cannot run this model, so there is no "
            f"reference to compare with ({type(e).__name__}: {first}). The conversion does not "
            "depend on onnxruntime: from_onnx(...) or `onnx2max run` convert and run it without "
            "the comparison")


def compare(
    model: str | os.PathLike | bytes | onnx.ModelProto,
    feeds: Mapping[str, np.ndarray] | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    constant_inputs: Mapping[str, Any] | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    seed: int = 0,
    ones: bool = False,
    device="cpu",
    cache_dir: str | os.PathLike | bool | None = None,
    progress: bool | None = None,
) -> Comparison:
    """Run ``model`` on MAX and onnxruntime with every node output exposed, and compare each.

    The model is converted once with all node outputs of its main graph as graph outputs (one
    MAX compile, through the compile cache); onnxruntime (CPU provider, default options) runs
    the same augmented model. Node outputs inside subgraphs (If, Loop) and outputs whose type
    is not a tensor are not compared (see :attr:`Comparison.skipped`).

    Args:
        model: as for :func:`onnx2max.from_onnx`.
        feeds: ``{input name: array}``; inputs not given get seeded random values
            (:func:`random_feeds`). Their shapes fix symbolic dims unless ``input_shapes`` does.
        constant_inputs: as for :func:`onnx2max.from_onnx`; onnxruntime is fed the same values.
        atol, rtol: an element matches when ``|max - ort| <= atol + rtol * |ort|``.
        seed: seed of the random inputs; ``ones``: all-ones inputs instead.
        device, cache_dir, progress: as for :func:`onnx2max.from_onnx`.

    Returns:
        A :class:`Comparison`; ``.first_bad`` is the first diverging node output.

    Raises:
        ImportError: onnxruntime is not installed.
        InputError: ``feeds`` names an input the model does not have.
        The errors of :func:`onnx2max.from_onnx` when the model cannot be converted.
    """
    import onnxruntime as ort

    from .api import _from_loaded
    from .load import load_model
    from .prepare import prepare

    proto, source = load_model(model)
    feeds = dict(feeds or {})
    runtime = [i.name for i in proto.graph.input
               if i.name not in {t.name for t in proto.graph.initializer}]
    unknown = [k for k in feeds if k not in [i.name for i in proto.graph.input]]
    if unknown:
        raise InputError(f"{source}: feeds name {unknown}, which are not graph inputs; "
                         f"the graph inputs are {runtime}")
    shapes = dict(input_shapes or {})
    for k, v in feeds.items():
        shapes.setdefault(k, np.shape(v))
    consts = dict(constant_inputs or {})
    p = prepare(proto, source, {k: v for k, v in shapes.items() if k in runtime and k not in consts} or None,
                consts)
    bound = dict(p.constants)
    if not (atol >= 0 and rtol >= 0):
        raise ValueError(f"atol and rtol must be numbers >= 0, not {atol!r} and {rtol!r}")
    for spec in p.inputs:
        v = feeds.get(spec.name)
        if v is not None and (np.asarray(v).dtype != spec.dtype or tuple(np.shape(v)) != spec.shape):
            raise InputError(f"{source}: feed '{spec.name}' is {np.asarray(v).dtype}{list(np.shape(v))}; "
                             f"the model expects {spec.dtype}{list(spec.shape)}")
    feeds = random_feeds(p.inputs, seed, ones, given={k: v for k, v in feeds.items() if k not in consts},
                         skip=list(p.defaults))

    present = {o.name for o in proto.graph.output}
    extra, skipped = [], {}
    for node in proto.graph.node:
        for o in node.output:
            if not o or o in present:
                continue
            elem, shape = p.types.get(o, (0, None))
            if not elem or not dtypes.is_supported(elem):
                skipped[o] = "its type is unknown or not a tensor MAX can return"
                continue
            static = shape is not None and all(isinstance(d, int) for d in shape)
            extra.append(helper.make_tensor_value_info(o, elem, shape if static else None))
            present.add(o)
    augmented = onnx.ModelProto()
    augmented.CopyFrom(proto)
    augmented.graph.output.extend(extra)
    blob = augmented.SerializeToString()

    try:
        sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        want = dict(zip(names, sess.run(names, {**feeds, **bound})))
    except Exception as e:  # onnxruntime's own errors have no common base class
        raise ReferenceRunError(reference_failure(source, e)) from e
    # the augmented model, labelled with the user's model in messages (not "<bytes>")
    aug_proto, _ = load_model(blob)
    (compiled,) = _from_loaded([(aug_proto, source)], device=device,
                               input_shapes=[{k: v for k, v in shapes.items() if k not in consts} or None],
                               constant_inputs=[consts or None], cache_dir=cache_dir, progress=progress,
                               profile=False)
    got = dict(zip([s.name for s in compiled.outputs], compiled.run(None, feeds)))

    rows = []
    for i, node in enumerate(proto.graph.node):
        for o in node.output:
            if not o or o not in want or o not in got:
                continue
            mabs, mrel, ok, why = _diff(np.asarray(got[o]), np.asarray(want[o]), atol, rtol)
            rows.append(NodeDiff(i, node.name or f"#{i}", node.op_type, node.domain, o,
                                 tuple(np.shape(want[o])), str(np.asarray(want[o]).dtype),
                                 mabs, mrel, ok, why))
    known = {k: v for k, v in p.values.items() if getattr(v, "dtype", None) is not None and v.dtype != object}
    return Comparison(proto, rows, skipped, atol, rtol, feeds, want, got, known)
