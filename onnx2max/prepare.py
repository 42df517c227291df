"""Stage 2: fix input shapes, run ONNX shape inference and fold constant subgraphs.

Folding evaluates, at conversion time, every node whose inputs are all known (initializers,
Constant nodes, earlier folded values) and every ``Shape``/``Size`` of a tensor whose shape is
static, with onnx's reference evaluator (``onnx.reference.ReferenceEvaluator``). This removes the
``Shape -> Gather -> Concat -> Reshape`` chains exporters emit and materialises weights made by
``ConstantOfShape``. Shape inference and folding alternate until nothing more folds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import dtypes
from .errors import InputError, InvalidModelError

#: ops never folded: their output is random or they carry subgraphs.
_NO_FOLD = {
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
    "Bernoulli", "Multinomial", "If", "Loop", "Scan", "SequenceMap",
}
#: a folded tensor larger than this many elements is left to run time (memory guard).
MAX_FOLD_ELEMENTS = 1 << 28
#: initializers up to this many elements are given to shape inference by value.
_INFERENCE_VALUE_LIMIT = 4096

STANDARD_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class TensorSpec:
    """Name, static shape and element type of a graph input or output.

    Attributes:
        name: the ONNX value name.
        shape: a tuple of ints (every dim static).
        elem_type: ONNX ``TensorProto.DataType``.
    """

    name: str
    shape: tuple[int, ...]
    elem_type: int

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of the tensor."""
        return dtypes.to_numpy(self.elem_type)


@dataclass
class Prepared:
    """A model ready to be lowered: static input shapes, constant subgraphs folded away.

    Attributes:
        source: file path or ``"<ModelProto>"``, for messages.
        opsets: ``{domain: version}`` from the model's opset imports (``""`` is ai.onnx).
        inputs: the runtime graph inputs (initializer-backed inputs of IR >= 4 included).
        defaults: values of inputs that are also initializers (IR >= 4): used when not fed.
        outputs: names of the graph outputs.
        nodes: the nodes left after folding, in topological order.
        values: every known tensor by name: initializers and folded results.
        folded: names in ``values`` made by Constant nodes or folding (not from the file).
        types: ``{name: (elem_type, shape or None)}`` from shape inference.
    """

    source: str
    opsets: dict[str, int]
    ir_version: int
    inputs: list[TensorSpec]
    defaults: dict[str, np.ndarray]
    outputs: list[str]
    nodes: list[onnx.NodeProto]
    values: dict[str, np.ndarray]
    folded: set[str] = field(default_factory=set)
    types: dict[str, tuple[int, tuple[int, ...] | None]] = field(default_factory=dict)
    graph_name: str = ""

    def opset(self, domain: str) -> int:
        """Opset version imported for ``domain`` (``""`` and ``"ai.onnx"`` are the same)."""
        d = "" if domain == "ai.onnx" else domain
        return self.opsets.get(d, 0)


def _value_info_shape(vi: onnx.ValueInfoProto) -> tuple[int, tuple | None]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return t.elem_type, None
    dims = []
    for d in t.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return t.elem_type, tuple(dims)


def _is_static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _resolve_inputs(
    graph: onnx.GraphProto,
    runtime_inputs: list[onnx.ValueInfoProto],
    input_shapes: Mapping[str, Sequence[int]] | None,
    source: str,
) -> list[TensorSpec]:
    given = dict(input_shapes or {})
    names = [vi.name for vi in runtime_inputs]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise InputError(
            f"{source}: input_shapes names {unknown}, which are not graph inputs; "
            f"the graph inputs are {names}"
        )
    specs, unresolved = [], []
    for vi in runtime_inputs:
        if not vi.type.HasField("tensor_type"):
            raise InvalidModelError(
                f"{source}: graph input '{vi.name}' is not a tensor "
                f"({vi.type.WhichOneof('value')}); onnx2max handles tensor inputs only"
            )
        elem, shape = _value_info_shape(vi)
        if not dtypes.is_supported(elem) or elem == TensorProto.BFLOAT16:
            raise InvalidModelError(
                f"{source}: graph input '{vi.name}' has element type "
                f"{dtypes.onnx_type_name(elem)}, which MAX cannot take as a numpy input"
            )
        if vi.name in given:
            want = tuple(int(d) for d in given[vi.name])
            if any(d < 0 for d in want):
                raise InputError(f"{source}: input_shapes['{vi.name}'] = {want} has a negative dim")
            if shape is not None:
                if len(shape) != len(want):
                    raise InputError(
                        f"{source}: input_shapes['{vi.name}'] = {want} has rank {len(want)}, "
                        f"but the model declares rank {len(shape)}: {shape}"
                    )
                for i, (m, w) in enumerate(zip(shape, want)):
                    if isinstance(m, int) and m != w:
                        raise InputError(
                            f"{source}: input_shapes['{vi.name}'] sets dim {i} to {w}, "
                            f"but the model fixes it at {m}"
                        )
            shape = want
        elif shape is None:
            unresolved.append(f"input '{vi.name}' has no declared shape (rank unknown)")
            continue
        else:
            for i, d in enumerate(shape):
                if not isinstance(d, int):
                    unresolved.append(f"input '{vi.name}' dim {i} is symbolic ('{d or '?'}')")
        specs.append(TensorSpec(vi.name, tuple(shape), elem))
    if unresolved:
        example = {
            vi.name: tuple(
                d if isinstance(d, int) else 1 for d in (_value_info_shape(vi)[1] or (1,))
            )
            for vi in runtime_inputs
        }
        raise InvalidModelError(
            f"{source}: MAX needs static shapes, and these are not fixed:\n  - "
            + "\n  - ".join(unresolved)
            + f"\nPass input_shapes, for example input_shapes={example} "
            "(CLI: --input-shape NAME=D0,D1,...)."
        )
    return specs


def fold_node(
    node: onnx.NodeProto, feeds: dict[str, np.ndarray], opsets: Mapping[str, int]
) -> list[np.ndarray] | None:
    """Evaluate one node on known inputs with onnx's reference evaluator.

    Returns the outputs (one array per output of the node), or ``None`` when the node cannot
    be evaluated (the reference evaluator lacks it or fails); the node then stays for lowering.
    """
    from onnx.reference import ReferenceEvaluator

    ops = {("" if k == "ai.onnx" else k): v for k, v in opsets.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev = ReferenceEvaluator(node, opsets=ops)
            outs = ev.run(None, {k: v for k, v in feeds.items() if k in node.input})
    except Exception:
        return None
    return [np.asarray(o) for o in outs]


def _inference_model(
    proto: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    inputs: list[TensorSpec],
    values: dict[str, np.ndarray],
) -> onnx.ModelProto:
    g = proto.graph
    small, big_inputs = [], []
    for name, v in values.items():
        if v.dtype == object:
            continue
        if v.size <= _INFERENCE_VALUE_LIMIT:
            small.append(numpy_helper.from_array(v, name))
        else:
            big_inputs.append(helper.make_tensor_value_info(name, dtypes.from_numpy(v.dtype), v.shape))
    graph = helper.make_graph(
        nodes,
        g.name or "graph",
        [helper.make_tensor_value_info(s.name, s.elem_type, s.shape) for s in inputs] + big_inputs,
        list(g.output),
        initializer=small,
    )
    m = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=max(proto.ir_version, 4))
    m.functions.extend(proto.functions)
    return m


def _infer(model: onnx.ModelProto, source: str) -> dict[str, tuple[int, tuple | None]]:
    standard = all(n.domain in STANDARD_DOMAINS for n in model.graph.node)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=standard, data_prop=True
        )
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise InvalidModelError(
            f"{source}: ONNX shape inference failed with the given input shapes: "
            + (msg[0] if msg else repr(e))
        ) from e
    types = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = _value_info_shape(vi)
    return types


def prepare(
    proto: onnx.ModelProto,
    source: str,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> Prepared:
    """Fix input shapes, infer shapes and fold constant subgraphs.

    Args:
        proto: a checked ``ModelProto`` (see :func:`onnx2max.load.load_model`).
        source: file path or label used in messages.
        input_shapes: ``{input_name: shape}`` fixing symbolic dims of graph inputs.

    Returns:
        A :class:`Prepared` model.

    Raises:
        InvalidModelError: no default-domain opset import, symbolic dims left unresolved,
            shape inference errors, unreadable initializers.
        InputError: ``input_shapes`` names an unknown input or contradicts the model.
    """
    g = proto.graph
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in proto.opset_import}
    if "" not in opsets:
        raise InvalidModelError(
            f"{source}: the model imports no opset of the default ONNX domain (ai.onnx)"
        )
    init_names = {t.name for t in g.initializer}
    # IR >= 4: an initializer listed as a graph input is an overridable default (as in
    # onnxruntime). IR < 4 required every initializer to be listed, so there they are constants.
    overridable = proto.ir_version >= 4
    runtime_vis = [
        vi for vi in g.input if vi.name not in init_names or overridable
    ]
    inputs = _resolve_inputs(g, runtime_vis, input_shapes, source)
    input_names = {s.name for s in inputs}

    values: dict[str, np.ndarray] = {}
    defaults: dict[str, np.ndarray] = {}
    for t in g.initializer:
        try:
            arr = numpy_helper.to_array(t)
        except Exception as e:
            raise InvalidModelError(
                f"{source}: initializer '{t.name}' cannot be read "
                f"(dims {list(t.dims)}, {dtypes.onnx_type_name(t.data_type)}): {e}"
            ) from e
        if t.name in input_names:
            defaults[t.name] = arr
        else:
            values[t.name] = arr
    for s in inputs:
        if s.name in defaults and tuple(defaults[s.name].shape) != s.shape:
            raise InvalidModelError(
                f"{source}: graph input '{s.name}' has shape {s.shape} but its default "
                f"initializer has shape {defaults[s.name].shape}"
            )

    nodes = list(g.node)
    folded: set[str] = set()
    types: dict = {}
    for _round in range(8):
        types = _infer(_inference_model(proto, nodes, inputs, values), source)
        remaining, changed = [], False
        for node in nodes:
            outs = _try_fold(node, values, types, opsets)
            if outs is None:
                remaining.append(node)
                continue
            changed = True
            for name, arr in zip(node.output, outs):
                if name:
                    values[name] = arr
                    folded.add(name)
        nodes = remaining
        if not changed:
            break

    used = {i for n in nodes for i in _all_inputs(n)} | {o.name for o in g.output}
    values = {k: v for k, v in values.items() if k in used}
    folded &= set(values)
    return Prepared(
        source=source,
        opsets=opsets,
        ir_version=proto.ir_version,
        inputs=inputs,
        defaults=defaults,
        outputs=[o.name for o in g.output],
        nodes=nodes,
        values=values,
        folded=folded,
        types=types,
        graph_name=g.name,
    )


def _all_inputs(node: onnx.NodeProto) -> list[str]:
    """Inputs of a node, including values its subgraphs capture from the outer scope."""
    names = list(node.input)
    for a in node.attribute:
        subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for sg in subs:
            for n in sg.node:
                names.extend(_all_inputs(n))
            names.extend(o.name for o in sg.output)
    return names


def _static_shape(name: str, values, types) -> tuple[int, ...] | None:
    if name in values:
        return tuple(values[name].shape)
    t = types.get(name)
    if t and _is_static(t[1]):
        return tuple(t[1])
    return None


def _try_fold(node, values, types, opsets) -> list[np.ndarray] | None:
    if node.domain not in STANDARD_DOMAINS or node.op_type in _NO_FOLD:
        return None
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        return None
    present = [i for i in node.input if i]
    if node.op_type in ("Shape", "Size") and present:
        shape = _static_shape(present[0], values, types)
        if shape is None:
            return None
        return [shape_values(node, shape)]
    if not all(i in values for i in present):
        return None
    # guard the size of what folding would materialise
    t = [types.get(o) for o in node.output]
    for tt in t:
        if tt and _is_static(tt[1]) and int(np.prod(tt[1], dtype=np.int64)) > MAX_FOLD_ELEMENTS:
            return None
    if node.op_type == "ConstantOfShape" and present:
        if int(np.prod(values[present[0]], dtype=np.int64)) > MAX_FOLD_ELEMENTS:
            return None
    feeds = {i: values[i] for i in present}
    return fold_node(node, feeds, opsets)


def shape_values(node: onnx.NodeProto, shape: Sequence[int]) -> np.ndarray:
    """Output of a ``Shape`` (with ``start``/``end``, opset 15) or ``Size`` node for a static shape."""
    if node.op_type == "Size":
        return np.array(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rank = len(shape)
    start, end = int(attrs.get("start", 0)), int(attrs.get("end", rank))
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return np.array(list(shape)[start:end], dtype=np.int64)
