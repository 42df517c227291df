"""Stage 2: fix input shapes, run ONNX shape inference and fold constant subgraphs.

Folding evaluates, at conversion time, every node whose inputs are all known (initializers,
Constant nodes, earlier folded values) and every ``Shape``/``Size`` of a tensor whose shape is
static, with onnx's reference evaluator (``onnx.reference.ReferenceEvaluator``). This removes the
``Shape -> Gather -> Concat -> Reshape`` chains exporters emit and materialises weights made by
``ConstantOfShape``. Shape inference and folding alternate until nothing more folds.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, inliner, numpy_helper

from . import dtypes
from .errors import InputError, InvalidModelError, UnsupportedModelError

#: ops never folded: their output is random or they carry subgraphs.
_NO_FOLD = {
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
    "Bernoulli", "Multinomial", "If", "Loop", "Scan", "SequenceMap",
}
#: a folded tensor larger than this many elements is left to run time (memory guard).
MAX_FOLD_ELEMENTS = 1 << 26
#: ops whose output can be far larger than their inputs: folded only when the output size is
#: known (from shape inference, or computed by :func:`_output_elements`) and under the limit.
_GROWING = {"ConstantOfShape", "Range", "Tile", "Expand", "Resize", "Upsample", "Pad", "OneHot",
            "CenterCropPad", "Col2Im", "EyeLike"}
#: initializers up to this many elements are given to shape inference by value.
_INFERENCE_VALUE_LIMIT = 4096

STANDARD_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and element type of a graph input or output.

    Attributes:
        name: the ONNX value name.
        shape: a tuple of ``int`` (static dims) and ``str`` (symbolic dims by name, e.g.
            ``("batch", 3, 224, 224)``; an output's may be an expression such as
            ``"batch * seq"``).
        elem_type: ONNX ``TensorProto.DataType``.
    """

    name: str
    shape: tuple[int | str, ...]
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
    #: graph inputs bound at conversion (``constant_inputs``), as arrays of their dtypes
    constants: dict[str, np.ndarray] = field(default_factory=dict)

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
        if d.HasField("dim_value"):
            # older exporters (paddle2onnx, some TF converters) write -1 for a dynamic dim;
            # onnxruntime treats a negative dim_value as unknown, and so do we
            dims.append(d.dim_value if d.dim_value >= 0 else None)
        else:
            dims.append(d.dim_param or None)
    return t.elem_type, tuple(dims)


def _is_static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _inputs_by_name(runtime_vis, given, what: str, source: str) -> dict:
    """``{name: ValueInfoProto}`` of the runtime graph inputs; InputError when ``given`` (the
    keys of the ``what`` argument) names others."""
    by_name = {vi.name: vi for vi in runtime_vis}
    unknown = [n for n in given if n not in by_name]
    if unknown:
        raise InputError(f"{source}: {what} names {unknown}, which are not graph inputs; "
                         f"the graph inputs are {list(by_name)}")
    return by_name


def _constant_inputs(runtime_vis, given, input_shapes, source: str) -> dict[str, np.ndarray]:
    """Check ``constant_inputs`` against the graph inputs and return them as arrays.

    numpy arrays and numpy scalars must have the input's declared dtype (they are never cast,
    as in :meth:`CompiledModel.run`); Python scalars and lists are converted to it. The shape
    must have the declared rank and agree with every static dim."""
    if not given:
        return {}
    by_name = _inputs_by_name(runtime_vis, given, "constant_inputs", source)
    both = [n for n in given if n in (input_shapes or {})]
    if both:
        raise InputError(f"{source}: {both} are in both constant_inputs and input_shapes; a "
                         "constant input's shape is its value's")
    out = {}
    for name, value in given.items():
        elem, shape = _value_info_shape(by_name[name])
        want = dtypes.to_numpy(elem)
        if isinstance(value, (np.ndarray, np.generic)):
            arr = np.asarray(value)
            if arr.dtype != want:
                raise InputError(f"{source}: constant_inputs['{name}'] has dtype {arr.dtype}, but "
                                 f"the model declares {want}; pass np.asarray(value, np.{want})")
        else:
            arr = _python_value(value, want, f"{source}: constant_inputs['{name}']")
        if shape is not None and (len(shape) != arr.ndim or any(
                isinstance(d, int) and d != a for d, a in zip(shape, arr.shape))):
            raise InputError(f"{source}: constant_inputs['{name}'] has shape {arr.shape}, but the "
                             f"model declares {tuple(d if isinstance(d, int) else '?' for d in shape)}")
        out[name] = np.ascontiguousarray(arr) if arr.ndim else arr
    return out


def _python_value(value, want: np.dtype, what: str) -> np.ndarray:
    """A Python scalar or (nested) list as an array of ``want``, refused when that would change
    a value (a fraction into an integer, an out-of-range integer, a bool as a number, text)."""
    try:
        natural = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(f"{what} cannot be read as {want}: {e}") from None
    if natural.dtype.kind not in "biuf" or (natural.dtype.kind == "b") != (want.kind == "b"):
        raise InputError(f"{what} is {value!r}; the model declares {want}: pass "
                         f"{'True/False' if want.kind == 'b' else 'numbers'}")
    try:
        with np.errstate(all="ignore"):
            arr = natural.astype(want)
            same = bool(np.all((arr == natural) | (np.isnan(natural) & np.isnan(arr))
                               if natural.dtype.kind == "f" and want.kind == "f" else arr == natural))
    except (OverflowError, ValueError, TypeError) as e:
        raise InputError(f"{what} cannot be read as {want}: {e}") from None
    if not same and want.kind != "f":
        raise InputError(f"{what} is {value!r}, which {want} cannot hold exactly")
    return arr


def dim_name(name: str) -> str:
    """A MAX symbolic dim name for ONNX ``dim_param`` ``name``: characters other than letters,
    digits and ``_`` become ``_`` (MAX names dims like identifiers)."""
    out = re.sub(r"\W", "_", name)
    return out if out and not out[0].isdigit() else f"d_{out}"


def _check_dynamic(dynamic, runtime_inputs, given, source) -> dict[str, dict[int, str]]:
    if not dynamic:
        return {}
    by_name = _inputs_by_name(runtime_inputs, dynamic, "dynamic", source)
    out = {}
    for name, axes in dynamic.items():
        if not isinstance(axes, Mapping):
            raise InputError(f"{source}: dynamic['{name}'] = {axes!r}: expected {{axis: dim name}}, "
                             "e.g. dynamic={'x': {0: 'batch'}}")
        if name in given:
            raise InputError(f"{source}: input '{name}' is in both input_shapes and dynamic; "
                             "give each input in one of them")
        rank = len(_value_info_shape(by_name[name])[1] or ())
        out[name] = {}
        for axis, dname in axes.items():
            if not isinstance(axis, (int, np.integer)) or not -rank <= axis < rank:
                raise InputError(f"{source}: dynamic['{name}'] names axis {axis!r}; input '{name}' "
                                 f"has rank {rank}")
            if not isinstance(dname, str) or not dname:
                raise InputError(f"{source}: dynamic['{name}'][{axis}] = {dname!r}: expected a "
                                 "dim name such as 'batch'")
            out[name][int(axis) % rank] = dim_name(dname)
    return out


def _resolve_inputs(
    graph: onnx.GraphProto,
    runtime_inputs: list[onnx.ValueInfoProto],
    input_shapes: Mapping[str, Sequence[int]] | None,
    source: str,
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
) -> list[TensorSpec]:
    """The runtime graph inputs as :class:`TensorSpec`: ``input_shapes`` fixes dims, symbolic
    dims (``dim_param``, and ``dim_value`` < 0 or absent, which onnxruntime treats as dynamic)
    stay symbolic as MAX dim names, and ``dynamic`` makes the named axes symbolic."""
    given = dict(input_shapes or {})
    names = [vi.name for vi in runtime_inputs]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise InputError(
            f"{source}: input_shapes names {unknown}, which are not graph inputs; "
            f"the graph inputs are {names}"
        )
    dyn = _check_dynamic(dynamic, runtime_inputs, given, source)
    specs, unresolved = [], []
    for vi in runtime_inputs:
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedModelError(
                f"{source}: graph input '{vi.name}' is not a tensor "
                f"({vi.type.WhichOneof('value')}); onnx2max handles tensor inputs only"
            )
        elem, shape = _value_info_shape(vi)
        if not dtypes.is_supported(elem):
            raise UnsupportedModelError(
                f"{source}: graph input '{vi.name}' has element type "
                f"{dtypes.onnx_type_name(elem)}, {dtypes.unsupported_reason(elem)}"
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
            shape = tuple(
                dyn[vi.name][i] if i in dyn.get(vi.name, {})
                else d if isinstance(d, int)
                else dim_name(d) if d else f"{dim_name(vi.name)}_dim{i}"
                for i, d in enumerate(shape))
        specs.append(TensorSpec(vi.name, tuple(shape), elem))
    if unresolved:
        example = {
            vi.name: tuple(
                d if isinstance(d, int) else 1 for d in (_value_info_shape(vi)[1] or (1,))
            )
            for vi in runtime_inputs
        }
        raise InvalidModelError(
            f"{source}: these graph inputs have no declared shape:\n  - "
            + "\n  - ".join(unresolved)
            + f"\nPass input_shapes, for example input_shapes={example} "
            "(CLI: --input-shape NAME=D0,D1,...)."
        )
    return specs


#: ``(op type, first opset, last opset)`` that onnx's reference evaluator (onnx 1.23) computes
#: wrongly, found by comparing every op case with onnxruntime (tests/test_folding.py): Softmax,
#: LogSoftmax and Hardmax before opset 13 do not coerce the input to 2-D at ``axis``; LRN
#: differs for size 5; LpNormalization with p=1 divides by the plain sum; RNN, GRU and LSTM
#: differ with sequence_lens, clip or input_forget; Loop without a condition input or with scan
#: outputs is wrong; NegativeLogLikelihoodLoss with ignore_index averages over every element.
#: Such nodes are never
#: folded: MAX computes them at run time.
REFERENCE_WRONG = (
    ("Softmax", 1, 12),
    ("LogSoftmax", 1, 12),
    ("Hardmax", 1, 12),
    ("LRN", 1, 10**6),
    ("LpNormalization", 1, 10**6),
    # sequence_lens, clip and input_forget differ from onnxruntime (onnx 1.23's evaluator)
    ("RNN", 1, 10**6),
    ("GRU", 1, 10**6),
    ("LSTM", 1, 10**6),
    # no condition input runs no iteration, and scan outputs are concatenated, not stacked
    # (onnx 1.23's evaluator; found by tests/test_folding.py on the Loop op cases)
    ("Loop", 1, 10**6),
    # with ignore_index and reduction "mean", divides by every element instead of the summed
    # weights of the elements not ignored (found by tests/test_folding.py on the op cases)
    ("NegativeLogLikelihoodLoss", 1, 10**6),
)


#: numpy dtypes of float16 and bfloat16 (ml_dtypes, as onnx's numpy_helper gives it)
_HALF_NUMPY = tuple(dtypes.numpy_of_max(d) for d in dtypes.MAX_HALF_FLOATS)


def _reference_is_wrong(op_type: str, opset: int) -> bool:
    return any(op_type == op and lo <= opset <= hi for op, lo, hi in REFERENCE_WRONG)


def _fold_squeeze_attr(node: onnx.NodeProto, feeds) -> list[np.ndarray]:
    """Squeeze before opset 13 (``axes`` attribute): the reference evaluator ignores the
    attribute and squeezes every size-1 axis; fold it with numpy instead."""
    x = np.asarray(feeds[node.input[0]])
    axes = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "axes"),
                None)
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(int(a) % max(x.ndim, 1) for a in axes))]


def fold_node(
    node: onnx.NodeProto, feeds: dict[str, np.ndarray], opsets: Mapping[str, int]
) -> list[np.ndarray] | None:
    """Evaluate one node on known inputs with onnx's reference evaluator.

    Returns the outputs (one array per output of the node), or ``None`` when the node cannot
    be evaluated (the reference evaluator lacks it, fails, or is known to compute it wrongly:
    :data:`REFERENCE_WRONG`); the node then stays for lowering and MAX computes it.
    """
    from onnx.reference import ReferenceEvaluator

    ops = {("" if k == "ai.onnx" else k): v for k, v in opsets.items()}
    if node.domain in STANDARD_DOMAINS:
        opset = ops.get("", 0)
        if _reference_is_wrong(node.op_type, opset):
            return None
        if (node.op_type in ("Conv", "ConvTranspose", "Col2Im") and node.input and node.input[0] in feeds
                and np.asarray(feeds[node.input[0]]).dtype in _HALF_NUMPY):
            # the evaluator's float16 convolution (Col2Im: block sums) is up to 3 units (1 unit)
            # off onnxruntime's (found by tests/test_folding.py); MAX computes it in float32 and
            # rounds once
            return None
        if node.op_type == "Squeeze" and opset < 13:
            try:
                return _fold_squeeze_attr(node, feeds)
            except (ValueError, IndexError):  # numpy.exceptions.AxisError is a ValueError
                return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev = ReferenceEvaluator(node, opsets=ops)
            outs = ev.run(None, {k: v for k, v in feeds.items() if k in node.input})
    except Exception:
        return None
    outs = [np.asarray(o) for o in outs]
    if node.op_type == "ReduceMean" and node.input and np.asarray(feeds.get(node.input[0], 1)).size == 0:
        # the mean of an empty set is undefined in the operator text; the evaluator gives NaN,
        # onnxruntime and onnx2max's converter give 0
        outs = [np.zeros_like(o) for o in outs]
    return outs


def _inference_model(
    proto: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    inputs: list[TensorSpec],
    values: dict[str, np.ndarray],
    free_outputs: bool = False,
) -> onnx.ModelProto:
    """The model shape inference runs on: resolved inputs, small values as initializers.
    ``free_outputs`` drops the declared shapes of graph outputs (kept: element types), for
    when onnx2max sizes an op differently from the declaration (ceil-mode pools)."""
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
        [helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None)
         if free_outputs and o.type.HasField("tensor_type") else _negative_dims_unknown(o)
         for o in g.output],
        initializer=small,
    )
    m = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=max(proto.ir_version, 4))
    m.functions.extend(proto.functions)
    return m


def _negative_dims_unknown(vi: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    """``vi`` with each ``dim_value`` < 0 cleared to an unknown dim: exporters that write -1
    for "dynamic" (paddle2onnx) would otherwise make shape inference fail with "Inferred shape
    and existing shape differ"."""
    t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    if t is None or not any(d.HasField("dim_value") and d.dim_value < 0 for d in t.shape.dim):
        return vi
    vi = copy.deepcopy(vi)
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value < 0:
            d.ClearField("dim_value")
    return vi


def _check_opsets(opsets: Mapping[str, int], source: str) -> None:
    """Refuse opset versions that the installed onnx does not define (ONNX ``OperatorSetIdProto``)."""
    newest = onnx.defs.onnx_opset_version()
    for domain, version in opsets.items():
        name = domain or "ai.onnx"
        if version < 1:
            raise InvalidModelError(f"{source}: opset import {name} has version {version}; expected >= 1")
        if domain in STANDARD_DOMAINS and version > newest:
            raise InvalidModelError(
                f"{source}: the model imports {name} opset {version}, but the installed onnx "
                f"({onnx.__version__}) defines opsets up to {newest}: the file is damaged, or was "
                f"written for a newer onnx (upgrade onnx, or export with opset <= {newest})"
            )


def memory_limit_bytes() -> int:
    """Largest tensor onnx2max accepts, in bytes: ``$ONNX2MAX_MAX_TENSOR_BYTES``, else this
    machine's physical memory (``os.sysconf``), else 64 GiB."""
    env = os.environ.get("ONNX2MAX_MAX_TENSOR_BYTES")
    if env:
        return int(env)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 64 << 30


def _check_sizes(types, nodes: list[onnx.NodeProto], source: str) -> None:
    """Refuse any value whose declared or inferred size exceeds :func:`memory_limit_bytes`.

    Runs on shapes only, before anything of that size is allocated (folding, MAX buffers).
    """
    limit = memory_limit_bytes()
    producer = {o: n for n in nodes for o in n.output}
    for name in sorted(types, key=lambda n: n in producer):  # graph inputs first
        elem, shape = types[name]
        if not _is_static(shape):
            continue
        try:
            itemsize = dtypes.to_numpy(elem).itemsize
        except Exception:
            itemsize = 1
        nbytes = math.prod(shape) * itemsize
        if nbytes > limit:
            n = producer.get(name)
            made = f"made by node '{n.name or '?'}' ({n.op_type})" if n else "a graph input"
            raise InvalidModelError(
                f"{source}: value '{name}' ({made}) has shape {list(shape)} of "
                f"{dtypes.onnx_type_name(elem)}: {_human(nbytes)}, more than the {_human(limit)} "
                "this machine has (ONNX2MAX_MAX_TENSOR_BYTES sets the limit); refused before "
                "allocating it"
            )


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def _data_prop_safe(nodes: list[onnx.NodeProto], values) -> bool:
    """Whether ONNX shape inference may propagate values (``data_prop``).

    onnx's data propagation materialises a ``Range``'s values when a consumer asks for them
    (onnx 1.23: ``Range(0, 2**40, 1) -> Size`` does not return). It is allowed only when every
    ``Range`` has known, small bounds; folding then does the rest of the shape arithmetic.
    """
    for n in nodes:
        if n.op_type == "Range" and n.domain in STANDARD_DOMAINS:
            count = _output_elements(n, values)
            if count is None or count > _INFERENCE_VALUE_LIMIT:
                return False
    return True


#: a strict shape-inference error raised inside an op's function body: "(op_type:A, ...):
#: [ShapeInferenceError] Inference error(s): (op_type:B)" names the op, then a node of its body
_FUNCTION_BODY_ERROR = re.compile(r"\(op_type:[^)]*\): \[ShapeInferenceError\] Inference error\(s\): \(op_type:")


def _only_function_body_errors(e: Exception) -> bool:
    """Whether every error that strict shape inference listed lies inside a function body."""
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return bool(lines) and all(_FUNCTION_BODY_ERROR.search(ln) for ln in lines)


def _infer(
    model: onnx.ModelProto, source: str, data_prop: bool = True
) -> dict[str, tuple[int, tuple | None]]:
    standard = all(n.domain in STANDARD_DOMAINS for n in model.graph.node)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=standard, data_prop=data_prop
        )
    except Exception as e:
        inferred = None
        if standard and _only_function_body_errors(e):
            # the error lies inside the function body onnx expands for a standard op (onnx 1.23:
            # MeanVarianceNormalization-13's body has a Constant that strict inference rejects),
            # not in the model's own nodes: the op's shapes come from its schema without strict mode
            try:
                inferred = onnx.shape_inference.infer_shapes(
                    model, check_type=False, strict_mode=False, data_prop=data_prop
                )
            except Exception:  # noqa: BLE001  (the strict error below says more)
                inferred = None
        if inferred is None:
            msg = str(e).strip().splitlines()
            raise InvalidModelError(
                f"{source}: ONNX shape inference failed for the given input shapes and the types "
                "the model declares: "
                + (msg[0] if msg else repr(e))
            ) from e
    types = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = _value_info_shape(vi)
    return types


def ceil_pool_lengths(n: int, k: int, s: int, d: int, b: int, e: int) -> int:
    """Output length of a pool with ``ceil_mode=1`` over ``n`` cells, kernel ``k``, stride ``s``,
    dilation ``d``, pads ``b`` (begin) and ``e`` (end), by onnxruntime's rule (MaxPool-22 and
    AveragePool-22 state it; onnxruntime applies it at every opset): rounding up may add a
    window, but not one that would start inside the end padding."""
    span = n + b + e - ((k - 1) * d + 1)
    o = -(-span // s) + 1
    if (o - 1) * s >= n + b:
        o -= 1
    return o


def _pool_nodes_for_inference(nodes, types) -> list[onnx.NodeProto] | None:
    """Copies of ``nodes`` in which every MaxPool/AveragePool with ``ceil_mode=1`` whose
    output length by :func:`ceil_pool_lengths` differs from ONNX shape inference's (before
    opset 22 it keeps a window that starts in the end padding) is rewritten to ``ceil_mode=0``
    with end pads that give the same length. For shape inference only: lowering computes the
    pool from the original node. ``None`` when nothing needs it."""
    out, changed = [], False
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        t = types.get(node.input[0]) if node.input else None
        if (node.domain not in STANDARD_DOMAINS or node.op_type not in ("MaxPool", "AveragePool")
                or not attrs.get("ceil_mode") or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
                or not t or not _is_static(t[1]) or len(t[1]) < 3):
            out.append(node)
            continue
        spatial = list(t[1][2:])
        nd = len(spatial)
        kernel = list(attrs.get("kernel_shape", []))
        strides = list(attrs.get("strides", [1] * nd))
        dil = list(attrs.get("dilations", [1] * nd))
        pads = list(attrs.get("pads", [0] * (2 * nd)))
        if len(kernel) != nd or len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
            out.append(node)
            continue
        new_ends, differs = [], False
        for i, (n, k, s, d) in enumerate(zip(spatial, kernel, strides, dil)):
            b, e = pads[i], pads[nd + i]
            o = ceil_pool_lengths(n, k, s, d, b, e)
            if o != -(-(n + b + e - ((k - 1) * d + 1)) // s) + 1:
                differs = True
            new_ends.append(max((o - 1) * s + (k - 1) * d + 1 - n - b, 0))
        if not differs:
            out.append(node)
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.attribute[:]
        for a in node.attribute:
            if a.name not in ("ceil_mode", "pads"):
                copy.attribute.append(a)
        copy.attribute.append(helper.make_attribute("pads", pads[:nd] + new_ends))
        out.append(copy)
        changed = True
    return out if changed else None


def _infer_with_pool_rule(proto, nodes, inputs, values, source, data_prop, opset):
    """ONNX shape inference, with ceil-mode pools sized by onnxruntime's rule before opset 22
    (see :func:`_pool_nodes_for_inference`); repeated while a fix reveals the static input
    shape of a later pool."""
    types = _infer(_inference_model(proto, nodes, inputs, values), source, data_prop=data_prop)
    if opset >= 22:
        return types
    for _ in range(len(nodes)):
        fixed = _pool_nodes_for_inference(nodes, types)
        if fixed is None:
            break
        # a graph output may declare the length shape inference gave it (the window that
        # onnxruntime drops): onnxruntime computes its own and so does onnx2max
        new = _infer(_inference_model(proto, fixed, inputs, values, free_outputs=True), source,
                     data_prop=data_prop)
        if new == types:
            break
        types = new
    return types


#: attribute defaults that onnx's shape inference gets wrong, written out on the node before it
#: runs: onnx 1.23 reads an absent STFT ``onesided`` as 0 (the schema's default is 1), so it
#: sized the output's bins as frame_length, not frame_length // 2 + 1, and refused models that
#: declare the right shape (the backend tests test_stft and test_stft_with_window)
_DEFAULTS_FOR_INFERENCE = {("", "STFT"): ("onesided", 1)}


def _explicit_defaults(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``nodes``, with a copy of each node that leaves out an attribute of
    :data:`_DEFAULTS_FOR_INFERENCE` holding that attribute at its schema default."""
    out = []
    for n in nodes:
        spec = _DEFAULTS_FOR_INFERENCE.get(("" if n.domain == "ai.onnx" else n.domain, n.op_type))
        if spec is not None and all(a.name != spec[0] for a in n.attribute):
            n2 = onnx.NodeProto()
            n2.CopyFrom(n)
            n2.attribute.append(helper.make_attribute(*spec))
            n = n2
        out.append(n)
    return out


def prepare(
    proto: onnx.ModelProto,
    source: str,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    constant_inputs: Mapping[str, Any] | None = None,
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
) -> Prepared:
    """Fix input shapes, infer shapes and fold constant subgraphs.

    Args:
        proto: a checked ``ModelProto`` (see :func:`onnx2max.load.load_model`).
        source: file path or label used in messages.
        input_shapes: ``{input_name: shape}`` fixing symbolic dims of graph inputs.
        constant_inputs: ``{input_name: value}`` binding graph inputs to values at
            conversion (configuration inputs: a sample rate, a flag, a size). They stop being
            inputs of the compiled model and are folded like initializers.
        dynamic: ``{input_name: {axis: dim name}}`` making dims symbolic that the model fixes
            (dims the model leaves symbolic stay symbolic unless ``input_shapes`` fixes them).

    Returns:
        A :class:`Prepared` model.

    Raises:
        InvalidModelError: no default-domain opset import, a graph input of unknown rank,
            shape inference errors, unreadable initializers.
        InputError: ``input_shapes`` names an unknown input or contradicts the model;
            ``constant_inputs`` names an unknown input or gives a value of another dtype or
            shape than the input's declared type.
    """
    if proto.functions:  # model-local functions (the dynamo exporter emits them): inline them
        try:
            proto = inliner.inline_local_functions(proto)
        except Exception as e:
            raise InvalidModelError(f"{source}: cannot inline the model's local functions: {e}") from e
    g = proto.graph
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in proto.opset_import}
    if "" not in opsets:
        raise UnsupportedModelError(
            f"{source}: the model imports no opset of the default ONNX domain (ai.onnx)"
        )
    _check_opsets(opsets, source)
    init_names = {t.name for t in g.initializer}
    # IR >= 4: an initializer listed as a graph input is an overridable default (as in
    # onnxruntime). IR < 4 required every initializer to be listed, so there they are constants.
    overridable = proto.ir_version >= 4
    runtime_vis = [
        vi for vi in g.input if vi.name not in init_names or overridable
    ]
    bound = _constant_inputs(runtime_vis, constant_inputs, input_shapes, source)
    runtime_vis = [vi for vi in runtime_vis if vi.name not in bound]
    inputs = _resolve_inputs(g, runtime_vis, input_shapes, source, dynamic)
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
    values.update(bound)  # over an initializer default of the same name
    for s in inputs:
        if s.name in defaults and (defaults[s.name].ndim != len(s.shape) or any(
                isinstance(d, int) and d != v for d, v in zip(s.shape, defaults[s.name].shape))):
            raise InvalidModelError(
                f"{source}: graph input '{s.name}' has shape {s.shape} but its default "
                f"initializer has shape {defaults[s.name].shape}"
            )

    nodes = _explicit_defaults(list(g.node))
    folded: set[str] = set()
    types: dict = {}
    for _round in range(8):
        types = _infer_with_pool_rule(proto, nodes, inputs, values, source,
                                      _data_prop_safe(nodes, values), opsets.get("", 0))
        _check_sizes(types, nodes, source)
        remaining, changed = [], False
        for node in nodes:
            uid = len(remaining) + _round * 100000
            inlined = _inline_control_flow(node, values, uid, opsets.get("", 0), types)
            if inlined is None:
                inlined = expand_function(node, types, opsets, uid)
            if inlined is not None:
                remaining.extend(inlined)
                changed = True
                continue
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

    for o in g.output:
        elem = (types.get(o.name) or (None, None))[0]
        if o.name in values:
            continue
        if elem and not dtypes.is_supported(elem):
            raise UnsupportedModelError(
                f"{source}: graph output '{o.name}' has element type "
                f"{dtypes.onnx_type_name(elem)}, {dtypes.unsupported_reason(elem)}"
            )
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
        constants=bound,
    )


def _scalar(values, name) -> np.ndarray | None:
    if not name or name not in values:
        return None
    v = np.asarray(values[name])
    return v.reshape(-1)[0] if v.size == 1 else None


def _renamer(graph: onnx.GraphProto, prefix: str) -> dict[str, str]:
    """New names for the values a subgraph defines (its inputs, initializers, node outputs)."""
    names = [i.name for i in graph.input] + [t.name for t in graph.initializer]
    names += [o for n in graph.node for o in n.output if o]
    return {n: f"{prefix}{n}" for n in names}


def _copy_nodes(graph: onnx.GraphProto, rename: dict[str, str]) -> list[onnx.NodeProto]:
    """The subgraph's nodes with values renamed (outer-scope names are kept); initializers
    become Constant nodes."""
    out = []
    for t in graph.initializer:
        out.append(helper.make_node("Constant", [], [rename[t.name]], value=t))
    for n in graph.node:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        c.input[:] = [rename.get(i, i) for i in n.input]
        c.output[:] = [rename.get(o, o) for o in n.output]
        if c.name:
            c.name = rename.get(c.output[0], c.name) if c.output else c.name
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in n.attribute):
            _rename_captures(c, rename)
        out.append(c)
    return out


def _rename_captures(node: onnx.NodeProto, rename: dict[str, str]) -> None:
    """Rename outer-scope values that a nested subgraph of ``node`` reads."""
    for a in node.attribute:
        subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for sg in subs:
            local = set(_renamer(sg, "").keys())
            for n in sg.node:
                n.input[:] = [i if i in local else rename.get(i, i) for i in n.input]
                _rename_captures(n, {k: v for k, v in rename.items() if k not in local})
            for o in sg.output:
                if o.name not in local and o.name in rename:
                    o.name = rename[o.name]


def passes_condition_through(body: onnx.GraphProto) -> bool:
    """Whether a Loop body's ``cond`` output is its ``cond`` input (or an Identity of it), so
    the loop never exits early."""
    b_in, b_out = [i.name for i in body.input], [o.name for o in body.output]
    if len(b_in) < 2 or not b_out:
        return False
    return b_out[0] == b_in[1] or any(
        n.op_type == "Identity" and list(n.output) == [b_out[0]] and list(n.input) == [b_in[1]]
        for n in body.node)


def unroll_loop_trips() -> int:
    """The most trips of a ``Loop`` that prepare unrolls (default 64); longer loops, and
    every loop with ``ONNX2MAX_UNROLL_LOOP=0``, are lowered as one MAX while loop
    (``onnx2max/ops/control.py``). ``ONNX2MAX_UNROLL_LOOP=N`` sets the limit, for comparison."""
    raw = os.environ.get("ONNX2MAX_UNROLL_LOOP", "64")
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 0:
        raise InputError(f"ONNX2MAX_UNROLL_LOOP={raw!r}: expected a number of trips, 0 or more "
                         "(0 never unrolls)")
    return n


def _inline_control_flow(
    node: onnx.NodeProto, values, uid: int, opset: int, types=None
) -> list[onnx.NodeProto] | None:
    """``If`` with a condition known at conversion: the taken branch's nodes. ``Loop`` with a
    trip count known at conversion (at most :func:`unroll_loop_trips`), no runtime condition,
    and a body whose ``cond`` output is its ``cond`` input (or an Identity of it): the body
    unrolled, with scan outputs concatenated. ``Scan`` (opset 9 on) whose scan inputs have a
    static length along their scan axis (at most :func:`unroll_loop_trips`): see
    :func:`_unroll_scan`.
    ``None`` when none applies (the node stays)."""
    if node.domain not in STANDARD_DOMAINS:
        return None
    attrs = {a.name: a for a in node.attribute}
    if node.op_type == "Scan" and opset >= 9:
        return _unroll_scan(node, attrs, values, types or {}, uid, opset)
    if node.op_type == "If":
        cond = _scalar(values, node.input[0] if node.input else "")
        if cond is None:
            return None
        branch = attrs["then_branch" if bool(cond) else "else_branch"].g
        rename = _renamer(branch, f"__if{uid}_")
        nodes = _copy_nodes(branch, rename)
        for out_name, o in zip(node.output, branch.output):
            if out_name:
                nodes.append(helper.make_node("Identity", [rename.get(o.name, o.name)], [out_name]))
        return nodes
    if node.op_type == "Loop":
        body = attrs["body"].g
        trips = _scalar(values, node.input[0] if len(node.input) > 0 else "")
        cond_name = node.input[1] if len(node.input) > 1 else ""
        if trips is None or int(trips) > unroll_loop_trips() or int(trips) < 0:
            return None
        if cond_name and not (_scalar(values, cond_name) is not None and bool(_scalar(values, cond_name))):
            return None
        b_in = [i.name for i in body.input]
        b_out = [o.name for o in body.output]
        if len(b_in) < 2:
            return None
        if not passes_condition_through(body):  # the body decides its own condition: an early exit
            return None
        n_carried = len(node.input) - 2
        carried = list(node.input[2:])
        nodes: list[onnx.NodeProto] = []
        scans: list[list[str]] = [[] for _ in b_out[1 + n_carried:]]
        for it in range(int(trips)):
            rename = _renamer(body, f"__loop{uid}_{it}_")
            it_name = rename[b_in[0]]
            nodes.append(helper.make_node("Constant", [], [it_name],
                                          value=numpy_helper.from_array(np.array(it, np.int64))))
            cond_in = rename[b_in[1]]
            nodes.append(helper.make_node("Constant", [], [cond_in],
                                          value=numpy_helper.from_array(np.array(True))))
            for src, dst in zip(carried, b_in[2:]):
                nodes.append(helper.make_node("Identity", [src], [rename[dst]]))
            nodes.extend(_copy_nodes(body, rename))
            carried = [rename.get(o, o) for o in b_out[1:1 + n_carried]]
            for k, o in enumerate(b_out[1 + n_carried:]):
                u = f"__loop{uid}_{it}_scan{k}"
                nodes.extend(_unsqueeze_nodes(rename.get(o, o), u, 0, opset))
                scans[k].append(u)
        for src, dst in zip(carried, node.output[:n_carried]):
            if dst:
                nodes.append(helper.make_node("Identity", [src], [dst]))
        for k, dst in enumerate(node.output[n_carried:]):
            if not dst:
                continue
            if not scans[k]:
                return None  # zero iterations of a scan output: its shape is unknown
            nodes.append(helper.make_node("Concat", scans[k], [dst], axis=0))
        return nodes
    return None


def _unsqueeze_nodes(src: str, dst: str, axis: int, opset: int) -> list[onnx.NodeProto]:
    """``dst = Unsqueeze(src)`` at ``axis``, as the opset writes it (axes an input from 13)."""
    if opset < 13:
        return [helper.make_node("Unsqueeze", [src], [dst], axes=[axis])]
    return [helper.make_node("Constant", [], [f"{dst}_axes"],
                             value=numpy_helper.from_array(np.array([axis], np.int64))),
            helper.make_node("Unsqueeze", [src, f"{dst}_axes"], [dst])]


def _unroll_scan(node: onnx.NodeProto, attrs, values, types, uid: int,
                 opset: int) -> list[onnx.NodeProto] | None:
    """ONNX ``Scan`` (opset 9 on; the operator section "Scan") written out as its body once per
    step: step ``t`` reads element ``t`` (or ``T-1-t`` for a reverse direction) of each scan
    input along its scan axis (a ``Gather`` with a scalar index), carries the state variables
    from the previous step, and each scan output is the steps' values stacked along its scan
    output axis (``Unsqueeze`` + ``Concat``, in reverse step order for a reverse direction).

    ``None`` (the node stays, and is reported unsupported) when a scan input's length is not
    static, differs between scan inputs, is 0, or exceeds :func:`unroll_loop_trips`."""
    body = attrs["body"].g
    m = int(helper.get_attribute_value(attrs["num_scan_inputs"]))
    n_state = len(node.input) - m
    if m < 1 or n_state < 0:
        return None
    def ints(name, default):
        return [int(v) for v in helper.get_attribute_value(attrs[name])] if name in attrs else default
    in_axes = ints("scan_input_axes", [0] * m)
    in_dirs = ints("scan_input_directions", [0] * m)
    k = len(body.output) - n_state
    out_axes = ints("scan_output_axes", [0] * k)
    out_dirs = ints("scan_output_directions", [0] * k)
    lengths = set()
    for j, name in enumerate(node.input[n_state:]):
        shape = _static_shape(name, values, types)
        if shape is None:
            return None
        axis = in_axes[j] + len(shape) if in_axes[j] < 0 else in_axes[j]
        lengths.add(shape[axis])
    if len(lengths) != 1:
        return None
    trips = lengths.pop()
    if trips < 1 or trips > unroll_loop_trips():
        return None
    b_in = [i.name for i in body.input]
    b_out = [o.name for o in body.output]
    state = list(node.input[:n_state])
    nodes: list[onnx.NodeProto] = []
    steps: list[list[str]] = [[] for _ in range(k)]
    pre = f"__scan{uid}_"
    for t in range(trips):
        rename = _renamer(body, f"{pre}{t}_")
        for src, dst in zip(state, b_in[:n_state]):
            nodes.append(helper.make_node("Identity", [src], [rename[dst]]))
        for j, (src, dst) in enumerate(zip(node.input[n_state:], b_in[n_state:])):
            idx = f"{pre}{t}_idx{j}"
            nodes.append(helper.make_node("Constant", [], [idx], value=numpy_helper.from_array(
                np.array(trips - 1 - t if in_dirs[j] else t, np.int64))))
            nodes.append(helper.make_node("Gather", [src, idx], [rename[dst]], axis=in_axes[j]))
        nodes.extend(_copy_nodes(body, rename))
        state = [rename.get(o, o) for o in b_out[:n_state]]
        for j, o in enumerate(b_out[n_state:]):
            u = f"{pre}{t}_out{j}"
            nodes.extend(_unsqueeze_nodes(rename.get(o, o), u, out_axes[j], opset))
            steps[j].append(u)
    for src, dst in zip(state, node.output[:n_state]):
        if dst:
            nodes.append(helper.make_node("Identity", [src], [dst]))
    for j, dst in enumerate(node.output[n_state:]):
        if dst:
            parts = steps[j][::-1] if out_dirs[j] else steps[j]
            nodes.append(helper.make_node("Concat", parts, [dst], axis=out_axes[j]))
    return nodes


#: domains whose operator schemas onnx defines (their function bodies can be expanded)
_SCHEMA_DOMAINS = ("", "ai.onnx", "ai.onnx.preview", "ai.onnx.ml")


def expand_function(node: onnx.NodeProto, types, opsets, uid: int) -> list[onnx.NodeProto] | None:
    """An op that onnx2max has no converter for, but whose ONNX schema defines it as a function
    (``OpSchema.has_function`` or ``has_context_dependent_function``, e.g. CausalConvWithState,
    FlexAttention, LinearAttention, the window functions): the function body's nodes, with its
    values renamed apart and the node's attributes substituted, as onnx builds the
    ``_expanded`` backend test cases (``onnx.backend.test.case.node.function_testcase_helper``)
    and as onnxruntime runs such ops.

    ``None`` when the op has a converter, has no function body, or a context-dependent body
    needs input types that shape inference did not give."""
    from . import registry
    domain = "" if node.domain == "ai.onnx" else node.domain
    if domain not in _SCHEMA_DOMAINS or domain not in opsets:
        return None
    if registry.resolve(domain, node.op_type, opsets[domain]) is not None:
        return None
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets[domain], domain)
    except onnx.defs.SchemaError:
        return None
    if not (schema.has_function or schema.has_context_dependent_function):
        return None
    input_types = []
    for name in node.input:
        t = types.get(name) if name else None
        if t is None:
            if name and schema.has_context_dependent_function:
                return None
            input_types.append(onnx.TypeProto())
            continue
        elem, shape = t
        input_types.append(helper.make_tensor_type_proto(
            elem, [d if isinstance(d, int) else None for d in shape] if shape is not None else None))
    from onnx.backend.test.case.node import function_testcase_helper
    c = onnx.NodeProto()
    c.CopyFrom(node)
    imports = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expanded, _ = function_testcase_helper(c, input_types, f"n{uid}", imports)
    except Exception:
        return None
    if not expanded:
        return None
    versions = list(schema.function_opset_versions) + list(schema.context_dependent_function_opset_versions)
    if len(versions) != len(expanded):
        return None
    usable = [i for i, v in enumerate(versions) if v <= opsets[domain]] or [versions.index(min(versions))]
    body, fn_imports = expanded[max(usable, key=lambda i: versions[i])]  # newest body <= the opset
    for o in fn_imports:
        d = "" if o.domain == "ai.onnx" else o.domain
        if d not in opsets:
            return None  # the body uses a domain the model does not import
    for n in body:  # a body op onnx2max cannot run either (Bernoulli's RandomUniformLike):
        d = "" if n.domain == "ai.onnx" else n.domain  # keep the node, reported by its own name
        if n.op_type != "Scan" and registry.resolve(d, n.op_type, opsets.get(d, 0)) is None:
            try:
                sch = onnx.defs.get_schema(n.op_type, opsets.get(d, 0), d)
            except onnx.defs.SchemaError:
                return None
            if not (sch.has_function or sch.has_context_dependent_function):
                return None
    return list(body)


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


def upstream_graph_inputs(nodes: Sequence[onnx.NodeProto], graph_inputs: set[str], value: str) -> list[str]:
    """The names in ``graph_inputs`` that ``value`` is computed from through ``nodes``
    (inputs read by subgraphs included), sorted."""
    producer = {o: n for n in nodes for o in n.output if o}
    seen, stack, found = set(), [value], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in graph_inputs:
            found.add(v)
        elif v in producer:
            stack.extend(i for i in _all_inputs(producer[v]) if i)
    return sorted(found)


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
    if node.op_type == "EyeLike" and present:  # depends only on the shape
        shape = _static_shape(present[0], values, types)
        elem = (types.get(present[0]) or (None, None))[0]
        if shape is None or len(shape) != 2 or not elem:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        dt = dtypes.to_numpy(int(attrs["dtype"]) if "dtype" in attrs else elem)
        return [np.eye(shape[0], shape[1], k=int(attrs.get("k", 0))).astype(dt)]
    if not all(i in values for i in present):
        return None
    # guard the size of what folding would materialise
    t = [types.get(o) for o in node.output if o]
    for tt in t:
        if tt and _is_static(tt[1]) and math.prod(tt[1]) > MAX_FOLD_ELEMENTS:
            return None
    if node.op_type in _GROWING and not all(tt and _is_static(tt[1]) for tt in t):
        bound = _output_elements(node, values)
        if bound is None or bound > MAX_FOLD_ELEMENTS:
            return None
    feeds = {i: values[i] for i in present}
    return fold_node(node, feeds, opsets)


def _output_elements(node: onnx.NodeProto, values) -> int | None:
    """Number of elements a ``Range`` or ``ConstantOfShape`` would make, else ``None``."""
    try:
        if node.op_type == "ConstantOfShape":
            return math.prod(int(d) for d in np.ravel(values[node.input[0]]))
        if node.op_type == "Range":
            start, limit, delta = (float(np.ravel(values[i])[0]) for i in node.input[:3])
            if delta == 0 or not all(map(math.isfinite, (start, limit, delta))):
                return None
            return max(math.ceil((limit - start) / delta), 0)
    except (KeyError, IndexError, ValueError, OverflowError):
        return None
    return None


def shape_values(node: onnx.NodeProto, shape: Sequence[int]) -> np.ndarray:
    """Output of a ``Shape`` (with ``start``/``end``, opset 15) or ``Size`` node for ``shape``.

    Returns an int64 array; where ``shape`` holds symbolic MAX dims and they reach the output,
    an object array of ``int`` and ``Dim`` (see :mod:`onnx2max.symbolic`)."""
    if node.op_type == "Size":
        out = functools.reduce(lambda a, b: a * b, shape, 1)
        return np.array(out, dtype=np.int64 if isinstance(out, (int, np.integer)) else object)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rank = len(shape)
    start, end = int(attrs.get("start", 0)), int(attrs.get("end", rank))
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    dims = list(shape)[start:end]
    if all(isinstance(d, (int, np.integer)) for d in dims):
        return np.array(dims, dtype=np.int64)
    out = np.empty(len(dims), dtype=object)
    out[:] = dims
    return out
