"""Stage 3: lower a prepared ONNX graph to a ``max.graph.Graph``, one converter per node.

Converters (``onnx2max/ops/*.py``) receive a :class:`NodeContext`, which binds inputs,
constant inputs and attributes (with the operator schema's defaults) so that a converter's body
reads like the operator's spec. Initializers and large folded tensors become MAX ``Weight``s
named ``g<k>_w<i>`` (never after the ONNX initializer name), so two models of one architecture
share a compiled artifact; their values are supplied at ``init`` time.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from max.dtype import DType
from max.graph import DeviceRef, Graph, StaticDim, TensorType, TensorValue, Weight, ops
from onnx import helper

from . import derive, dtypes, registry, symbolic
from .errors import ConversionError, InputError, Onnx2MaxError, UnsupportedNode, UnsupportedOpError
from .layout import ChannelsLast, channels_first, channels_last, first_shape_of_last
from .prepare import STANDARD_DOMAINS, Prepared, TensorSpec, _NO_FOLD, fold_node, unroll_loop_trips

#: folded tensors (not initializers from the file) up to this many elements become graph
#: constants; larger ones become weights.
SMALL_CONSTANT = 16

_MISSING = object()


#: ops whose output shape depends on input values (folded when those are known at conversion)
DATA_DEPENDENT_SHAPES = {"Unique"}


def check_supported(p: Prepared) -> None:
    """Raise :class:`UnsupportedOpError` listing every node (subgraphs included) with no converter."""
    bad: list[UnsupportedNode] = []

    def walk(nodes):
        for n in nodes:
            opset = p.opset(n.domain)
            r = registry.resolve(n.domain, n.op_type, opset)
            if r is None or isinstance(r, UnsupportedNode):
                reason = r.reason if isinstance(r, UnsupportedNode) else ""
                if n.domain in STANDARD_DOMAINS and n.op_type in DATA_DEPENDENT_SHAPES:
                    reason = ("its output shape depends on run-time values; MAX compiles static "
                              "shapes, so it works only when its inputs are known at conversion")
                if n.domain not in STANDARD_DOMAINS and n.domain not in p.opsets:
                    reason = f"the model imports no opset for domain '{n.domain}'"
                bad.append(UnsupportedNode(n.name or (n.output[0] if n.output else "?"),
                                           n.domain, n.op_type, opset, reason, p.source))
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g.node)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        walk(sg.node)

    walk(p.nodes)
    if bad:
        raise UnsupportedOpError(bad)


#: onnxruntime ops that take the attributes (and defaults) of an ONNX op: (domain, op) -> (op, opset)
#: (onnxruntime's LayerNormalization version 1 has the attributes of ONNX's version 17)
_SCHEMA_OF = {("com.microsoft", "FusedGemm"): ("Gemm", 13), ("com.microsoft", "FusedConv"): ("Conv", 11),
              ("", "LayerNormalization"): ("LayerNormalization", 17)}


@functools.lru_cache(maxsize=None)
def _schema(domain: str, op_type: str, opset: int):
    if (domain, op_type) in _SCHEMA_OF:
        op_type, opset = _SCHEMA_OF[(domain, op_type)]
        domain = ""
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain)
    except onnx.defs.SchemaError:
        return None


#: attributes that do not change what inference computes, by op type ("*": every op):
#: legacy bookkeeping (``consumed_inputs``, ``is_test``), training-only parameters, the seed of
#: random ops (onnxruntime's random streams cannot be reproduced anyway), and the ``saturate``
#: of Cast and QuantizeLinear, which only applies to float8 types (MAX has none on CPU)
INFERENCE_IRRELEVANT_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"consumed_inputs"}),
    "Cast": frozenset({"saturate"}),
    "CastLike": frozenset({"saturate"}),
    "QuantizeLinear": frozenset({"saturate"}),
    "BatchNormalization": frozenset({"momentum", "is_test"}),
    "Dropout": frozenset({"is_test", "ratio", "seed"}),
    "RandomNormal": frozenset({"seed"}),
    "RandomUniform": frozenset({"seed"}),
    "RandomNormalLike": frozenset({"seed"}),
    "RandomUniformLike": frozenset({"seed"}),
    "Bernoulli": frozenset({"seed"}),
    "Multinomial": frozenset({"seed"}),
}


def _same_value(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:  # noqa: BLE001  (graphs and other values that numpy cannot compare)
        return False


def _attr_value(a: onnx.AttributeProto) -> Any:
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8") for x in v]
    if isinstance(v, onnx.TensorProto):
        return onnx.numpy_helper.to_array(v)
    return v


class SymbolicDims(Exception):
    """Raised inside a converter that needs static dims when a shape has symbolic ones; the
    lowering turns it into a :class:`ConversionError` naming the node and the
    ``input_shapes`` that would fix the dims."""

    def __init__(self, dims):
        super().__init__(f"shape {format_dims(dims)} has symbolic dims")
        self.dims = tuple(dims)


def format_dims(dims) -> str:
    """``(batch, 3, 224, 224)``: a shape with symbolic dims by name."""
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def dims_of(x: TensorValue) -> tuple:
    """The dims of a MAX tensor value: ``int`` where static, a MAX ``Dim`` (``SymbolicDim``,
    ``AlgebraicDim``) where symbolic."""
    return tuple(int(d) if isinstance(d, StaticDim) else d for d in x.shape)


def is_static(dims) -> bool:
    """Whether every dim of ``dims`` is an ``int``."""
    return all(isinstance(d, (int, np.integer)) for d in dims)


def static_shape(x: TensorValue) -> tuple[int, ...]:
    """The static shape of a MAX tensor value as a tuple of ints.

    Raises:
        SymbolicDims: a dim is symbolic.
    """
    dims = dims_of(x)
    if not is_static(dims):
        raise SymbolicDims(dims)
    return dims


def as_dtype(v: TensorValue, dtype: DType) -> TensorValue:
    """``v`` as ``dtype`` (MAX ``ops.cast``; ``v`` itself when it has that dtype already)."""
    return v if v.dtype == dtype else ops.cast(v, dtype)


def make_constant(value, device: DeviceRef, dtype: DType | None = None) -> TensorValue:
    """``ops.constant`` of ``value`` (converted to ``dtype``), keeping 0-d values 0-d (MAX 26.7's
    ``ops.constant`` makes a 0-d array shape [1])."""
    arr = np.asarray(value)
    if dtypes.is_byte_float_dtype(arr.dtype):  # an 8-bit float: its bytes (dtypes.BYTE_FLOATS)
        arr = arr.view(np.uint8)
    if dtype is None:
        dtype = dtypes.max_from_numpy(arr.dtype)
    if dtype in dtypes.NARROW_FLOATS:
        # bfloat16: a float32 constant cast in the graph (exact: every bfloat16 is a float32)
        c = ops.cast(ops.constant(dtypes.c_contiguous(arr.astype(np.float32)), DType.float32,
                                  device=device), dtype)
        return ops.reshape(c, []) if arr.ndim == 0 else c
    arr = arr.astype(dtype.to_numpy(), copy=False)
    c = ops.constant(dtypes.c_contiguous(arr), dtype, device=device)
    return ops.reshape(c, []) if arr.ndim == 0 else c


@dataclass
class _Entry:
    first: TensorValue | None = None  # the ONNX (channels-first) layout
    last: TensorValue | None = None  # channels-last form, when a layout-aware op made one
    const: np.ndarray | None = None  # known at conversion time
    #: a 0-d or 1-d integer value known as an expression of symbolic dims (``Shape`` of a
    #: tensor with symbolic dims, and arithmetic on it): an object array of ``int`` and MAX
    #: ``Dim``, with the ONNX element type it has in the model
    sym: np.ndarray | None = None
    sym_elem: int = onnx.TensorProto.INT64


@dataclass
class SymbolicValue:
    """A converter result known as an expression of symbolic dims (``Shape`` of a tensor
    with symbolic dims): ``dims`` is an object array (0-d or 1-d) of ``int`` and MAX ``Dim``,
    ``elem`` its ONNX integer element type."""

    dims: np.ndarray
    elem: int = onnx.TensorProto.INT64


@dataclass(frozen=True)
class Derived:
    """A weight computed at load time by ``derive.RECIPES[recipe]`` from values ``names``."""

    recipe: str
    names: tuple[str, ...]
    params: tuple[tuple[str, Any], ...]
    shape: tuple[int, ...]
    dtype: str
    alias: bool = False  # declared to MAX with _has_alias (its value not known at compile time)


@dataclass
class LoweredGraph:
    """What lowering produced beside the MAX graph itself.

    Attributes:
        weights: ``(weight name in MAX, ONNX value name or Derived)`` for every ``Weight``.
        consumed: ONNX value names whose *values* shaped the graph (read as constants).
        outputs: the graph outputs with the dtypes and shapes MAX computes.
    """

    weights: list[tuple[str, "str | Derived"]] = field(default_factory=list)
    consumed: set[str] = field(default_factory=set)
    outputs: list[TensorSpec] = field(default_factory=list)


class NodeContext:
    """Binds one node's inputs and attributes for its converter.

    Inputs are addressed by position (``ctx.input(0)``). An absent optional input (missing or
    empty name) reads as ``None``.
    """

    def __init__(self, lowering: "_Lowering", node: onnx.NodeProto, opset: int):
        self._l = lowering
        self.node = node
        self.op_type = node.op_type
        self.domain = node.domain
        self.opset = opset
        self.name = node.name or (node.output[0] if node.output else "?")
        self._attrs = {a.name: a for a in node.attribute}
        self._read: set[str] = set()  # attributes the converter asked for (see unread_attributes)
        self.channels_last_mode = False
        self.device = lowering.device

    # ---- messages
    @property
    def where(self) -> str:
        return f"{self.op_type} node '{self.name}' (opset {self.opset})"

    def error(self, message: str) -> ConversionError:
        """A :class:`ConversionError` naming this node; ``raise ctx.error(...)``."""
        return ConversionError(f"{self._l.p.source}: {self.where}: {message}")

    # ---- attributes
    def attr(self, name: str, default: Any = _MISSING) -> Any:
        """Attribute ``name``; else ``default``; else the schema's default; else ``None``."""
        self._read.add(name)
        a = self._attrs.get(name)
        if a is not None:
            return _attr_value(a)
        if default is not _MISSING:
            return default
        schema = _schema(self.domain, self.op_type, self.opset)
        if schema is not None and name in schema.attributes:
            d = schema.attributes[name].default_value
            if d.type != onnx.AttributeProto.UNDEFINED:
                return _attr_value(d)
        return None

    def has_attr(self, name: str) -> bool:
        self._read.add(name)
        return name in self._attrs

    def not_applicable(self, *names: str) -> None:
        """Declare attributes that do not apply to this node's form (a quantization ``axis``
        with a per-tensor scale): read, so :meth:`unread_attributes` does not report them."""
        self._read.update(names)

    def attribute_names(self) -> list[str]:
        """Names of the attributes set on the node (read each with :meth:`attr`)."""
        return list(self._attrs)

    def unread_attributes(self) -> list[str]:
        """Attributes set on the node that its converter never read and whose value is not the
        schema's default, apart from those that do not change inference
        (:data:`INFERENCE_IRRELEVANT_ATTRIBUTES`): what the converter would silently ignore."""
        ignorable = INFERENCE_IRRELEVANT_ATTRIBUTES.get(self.op_type, frozenset()) \
            | INFERENCE_IRRELEVANT_ATTRIBUTES["*"]
        candidates = [n for n in self._attrs if n not in self._read and n not in ignorable]
        if not candidates:  # the common case: no schema lookup
            return []
        schema = _schema(self.domain, self.op_type, self.opset)
        out = []
        for name in candidates:
            a = self._attrs[name]
            if schema is not None and name in schema.attributes:
                d = schema.attributes[name].default_value
                if d.type != onnx.AttributeProto.UNDEFINED and _same_value(_attr_value(a), _attr_value(d)):
                    continue
            out.append(name)
        return sorted(out)

    # ---- inputs
    @property
    def num_inputs(self) -> int:
        return len(self.node.input)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def input_name(self, i: int) -> str:
        return self.node.input[i]

    def is_const(self, i: int) -> bool:
        return self.has_input(i) and self._l.env[self.node.input[i]].const is not None

    def input(self, i: int) -> TensorValue | None:
        """Input ``i`` as a MAX tensor (channels-last form in channels-last mode)."""
        if not self.has_input(i):
            return None
        name = self.node.input[i]
        if self.channels_last_mode:
            e = self._l.env[name]
            if e.last is not None:
                return e.last
            if e.const is not None and (e.const.size > 1 or e.const.ndim > 1):
                return self._l.const_last(name, self._out_rank())
            if e.const is None:  # a per-channel tensor (spatial dims 1): a cheap permute
                e.last = channels_last(self._l.tensor(name))
                return e.last
        return self._l.tensor(name)

    def _out_rank(self) -> int:
        return max(len(dims_of(e.last)) for n in self.node.input if n
                   for e in [self._l.env[n]] if e.last is not None)

    def inputs(self) -> list[TensorValue | None]:
        return [self.input(i) for i in range(self.num_inputs)]

    def const(self, i: int, required: bool = True) -> np.ndarray | None:
        """Input ``i``'s value, known at conversion time (an initializer, Constant or folded).

        Raises ConversionError when ``required`` and the value is only known at run time.
        """
        if not self.has_input(i):
            return None
        name = self.node.input[i]
        e = self._l.env[name]
        if e.const is None:
            if required:
                from_dims = self._from_shapes(name) and not is_static(
                    [d for s in self._l.p.inputs for d in s.shape])
                err = self.error(
                    f"input {i} ('{name}') must be known at conversion time (an initializer, a "
                    "Constant, or computed from static shapes), but it is computed at run time"
                    + (f" from symbolic dims in a way onnx2max does not evaluate. "
                       f"{input_shapes_hint(self._l.p)}" if from_dims
                       else self.constant_inputs_hint(name))
                )
                err.needs_value = name
                raise err
            return None
        self._l.lowered.consumed.add(name)
        return e.const

    def producer(self, name: str) -> onnx.NodeProto | None:
        """The node that outputs ``name``: of the prepared main graph, or of the subgraphs
        (``If`` branches, ``Loop`` bodies) being lowered around this node; ``None`` for a graph
        input, an initializer or a folded value."""
        return self._l.producers().get(name)

    def value_dims(self, name: str) -> tuple | None:
        """Shape (ONNX layout, as :meth:`dims`) of an already lowered value ``name``; ``None``
        when it is not lowered."""
        e = self._l.env.get(name)
        if e is None:
            return None
        if e.const is not None:
            return tuple(e.const.shape)
        if e.sym is not None:
            return tuple(e.sym.shape)
        if e.first is not None:
            return dims_of(e.first)
        return first_shape_of_last(dims_of(e.last))

    def _from_shapes(self, name: str) -> bool:
        """Whether ``name`` is computed from a ``Shape`` or ``Size`` node of the main graph."""
        producer = self._l.producers()
        seen, stack = set(), [name]
        while stack:
            v = stack.pop()
            if v in seen or v not in producer:
                continue
            seen.add(v)
            n = producer[v]
            if n.op_type in ("Shape", "Size"):
                return True
            stack.extend(i for i in n.input if i)
        return False

    def graph_inputs_behind(self, name: str) -> list[str]:
        """The runtime graph inputs whose values ``name`` depends on (through the prepared
        main graph), sorted."""
        from .prepare import upstream_graph_inputs

        p = self._l.p
        return upstream_graph_inputs(p.nodes, {s.name for s in p.inputs}, name)

    def constant_inputs_hint(self, name: str) -> str:
        """A sentence naming the graph inputs behind ``name`` and the ``constant_inputs`` that
        would fix them at conversion; empty when no graph input is behind it."""
        behind = self.graph_inputs_behind(name)
        if not behind:
            return ""
        example = ", ".join(f"'{n}': VALUE" for n in behind)
        return (f". It depends on graph input(s) {behind}: if they are configuration values, "
                f"fix them at conversion with constant_inputs={{{example}}} "
                f"(CLI: --const NAME=VALUE)")

    def dims(self, i: int) -> tuple:
        """Shape of input ``i`` in ONNX (channels-first) layout: ``int`` where static, a MAX
        ``Dim`` where symbolic (see :func:`dims_of`)."""
        name = self.node.input[i]
        if name not in self._l.env:
            raise KeyError(name)
        return self.value_dims(name)

    def shape(self, i: int) -> tuple[int, ...]:
        """Static shape of input ``i`` in ONNX (channels-first) layout.

        Raises:
            SymbolicDims: a dim is symbolic (the lowering reports it as a ConversionError that
                names the node; converters that handle symbolic dims read :meth:`dims`).
        """
        dims = self.dims(i)
        if not is_static(dims):
            raise SymbolicDims(dims)
        return dims

    def leading_dims(self, i: int, static_from: int = 1) -> tuple:
        """Shape of input ``i`` whose dims before ``static_from`` may be symbolic (a batch, a
        sequence length) and whose other dims must be static.

        Raises:
            SymbolicDims: a dim from ``static_from`` on is symbolic.
        """
        dims = self.dims(i)
        if not is_static(dims[static_from:]):
            raise SymbolicDims(dims)
        return dims

    def rank(self, i: int) -> int:
        return len(self.dims(i))

    def is_symbolic(self, i: int) -> bool:
        """Whether input ``i``'s shape has a symbolic dim."""
        return self.has_input(i) and not is_static(self.dims(i))

    def shape_value(self, i: int) -> list:
        """Input ``i``, a 0-d or 1-d integer value known at conversion, as a list of ``int``
        and, where it holds symbolic dims (``Shape`` of a tensor with symbolic dims and
        arithmetic on it), MAX ``Dim``: a target shape for Reshape, Expand, ConstantOfShape.

        Raises:
            ConversionError: the value is computed at run time from tensor data.
        """
        e = self._l.env[self.node.input[i]] if self.has_input(i) else None
        if e is not None and e.sym is not None:
            return list(e.sym.reshape(-1))
        return [int(v) for v in np.asarray(self.const(i)).reshape(-1)]

    def elem_type(self, i: int) -> int | None:
        """ONNX element type of input ``i`` (from shape inference, or a known value's dtype);
        tells the 8-bit floats (held as uint8, :data:`onnx2max.dtypes.BYTE_FLOATS`) from uint8."""
        name = self.input_name(i)
        t = self._l.p.types.get(name)
        if t is not None and t[0]:
            return int(t[0])
        if name in self._l.p.values:
            return dtypes.from_numpy(self._l.p.values[name].dtype)
        return None

    def dtype(self, i: int) -> DType:
        """MAX dtype of input ``i``."""
        e = self._l.env[self.node.input[i]]
        if e.const is not None:
            return dtypes.max_from_numpy(e.const.dtype)
        if e.sym is not None and e.first is None:
            return dtypes.to_max(e.sym_elem)
        return (e.first if e.first is not None else e.last).dtype

    def has_last(self, i: int) -> bool:
        """Whether input ``i`` already exists in channels-last form (no permute needed)."""
        return self.has_input(i) and self._l.env[self.node.input[i]].last is not None

    def only_last(self, i: int) -> bool:
        """Whether input ``i`` exists channels-last and not channels-first (so working on the
        channels-last form saves a permute); always ``False`` with ``ONNX2MAX_LAYOUT=basic``."""
        if not self.has_input(i) or not wide_layout():
            return False
        e = self._l.env[self.node.input[i]]
        return e.last is not None and e.first is None

    def input_last(self, i: int) -> TensorValue:
        """Input ``i`` in channels-last layout (N, spatial..., C); made once and remembered."""
        e = self._l.env[self.node.input[i]]
        if e.last is None:
            e.last = channels_last(self._l.tensor(self.node.input[i]))
        return e.last

    # ---- outputs
    @property
    def num_outputs(self) -> int:
        return len(self.node.output)

    def output_used(self, k: int) -> bool:
        return k < len(self.node.output) and self.node.output[k] != ""

    def expected_output(self, k: int) -> tuple[int, tuple | None] | None:
        """``(elem_type, shape)`` ONNX shape inference gave output ``k``, if any."""
        return self._l.p.types.get(self.node.output[k])

    def derived(self, recipe: str, inputs: list[int], shape, *, alias: bool = False,
                **params) -> TensorValue | None:
        """A weight computed once at load time from inputs ``inputs`` (see ``derive.py``), of
        ``shape``; ``None`` when an input is not an initializer (compute it in the graph then).

        The graph depends only on the recipe and shapes, so the values stay out of the cache key.
        ``alias=True`` declares the MAX ``Weight`` with ``_has_alias``, so MAX does not treat its
        value as known at compile time (needed where MAX 26.7's constant-operand path fails to
        compile, e.g. ``conv2d_transpose``'s filter).
        """
        names = tuple(self.node.input[i] if self.has_input(i) else "" for i in inputs)
        values = self._l.p.values
        if not all(n in values for n in names):
            return None
        spec = Derived(recipe, names, tuple(sorted(params.items())), tuple(int(d) for d in shape),
                       str(values[names[0]].dtype), alias)
        return self._l.derived_weight(spec)

    # ---- helpers
    def new_dim(self, prefix: str) -> str:
        """A new symbolic dim name (``prefix`` + a number unique in this lowering), for an output
        size known only at run time (NonZero's count)."""
        self._l.dims_made += 1
        return f"{prefix}_{self._l.dims_made}"

    def constant(self, value, dtype: DType | None = None) -> TensorValue:
        """A graph constant on this graph's device, converted to ``dtype`` when given."""
        return make_constant(value, self.device, dtype)


class _Lowering:
    def __init__(self, p: Prepared, device: DeviceRef, prefix: str):
        self.p = p
        self.device = device
        self.prefix = prefix
        self.env: dict[str, _Entry] = {}
        self.lowered = LoweredGraph()
        self._weight_ids: dict[str, TensorValue] = {}
        self.dims_made = 0  # symbolic dims made by converters (NodeContext.new_dim)
        self._producers: dict[str, onnx.NodeProto] | None = None

    def producers(self) -> dict[str, onnx.NodeProto]:
        """``{output name: node}`` over the prepared main graph's nodes (built once)."""
        if self._producers is None:
            self._producers = {o: n for n in self.p.nodes for o in n.output if o}
        return self._producers

    def tensor(self, name: str) -> TensorValue:
        e = self.env.get(name)
        if e is None:
            raise ConversionError(f"{self.p.source}: value '{name}' is used but never produced")
        if e.first is not None:
            return e.first
        if e.last is not None:
            e.first = channels_first(e.last)
            return e.first
        if e.sym is not None:
            t = ops.shape_to_tensor(list(e.sym.reshape(-1)))
            if e.sym.ndim == 0:
                t = ops.reshape(t, [])
            target = dtypes.to_max(e.sym_elem)
            e.first = t if t.dtype == target else ops.cast(t, target)
            return e.first
        e.first = self._materialize(name, e.const)
        return e.first

    def _materialize(self, name: str, arr: np.ndarray) -> TensorValue:
        if arr.dtype == object or arr.dtype.kind in "USO":
            raise ConversionError(
                f"{self.p.source}: tensor '{name}' holds strings, which MAX cannot represent"
            )
        # Small folded values become graph constants, except non-finite floats: MAX 26.7 turns
        # Where(mask, <constant -inf>, x) into NaN (the GPT decoder's causal mask did this),
        # while the same value as a Weight computes correctly.
        if self._as_graph_constant(name, arr):
            self.lowered.consumed.add(name)
            return make_constant(arr, self.device)
        wname = f"{self.prefix}w{len(self.lowered.weights)}"
        w = Weight(wname, dtypes.max_from_numpy(arr.dtype), list(arr.shape), self.device)
        self.lowered.weights.append((wname, name))
        return TensorValue(w)

    def _as_graph_constant(self, name: str, arr: np.ndarray) -> bool:
        """Whether known value ``name`` becomes a graph constant rather than a ``Weight``:
        values made at lowering, and small finite folded ones (MAX 26.7 turns
        Where(mask, <constant -inf>, x) into NaN, while the same value as a Weight is right)."""
        finite = arr.dtype.kind != "f" or bool(np.all(np.isfinite(arr)))
        return name not in self.p.values or (name in self.p.folded and arr.size <= SMALL_CONSTANT and finite)

    def const_last(self, name: str, rank: int) -> TensorValue:
        """Constant ``name`` left-padded to ``rank`` dims and transposed channels-last, made at
        conversion: a graph constant when small and folded, else a derived weight."""
        arr = self.env[name].const
        last = np.ascontiguousarray(derive.RECIPES["channels_last"](arr, rank=rank))
        if self._as_graph_constant(name, arr):
            self.lowered.consumed.add(name)
            return make_constant(last, self.device)
        return self.derived_weight(Derived("channels_last", (name,), (("rank", rank),),
                                           tuple(last.shape), str(arr.dtype), False))

    def derived_weight(self, spec: Derived) -> TensorValue:
        if spec not in self._weight_ids:
            wname = f"{self.prefix}w{len(self.lowered.weights)}"
            dt = dtypes.max_from_numpy(np.dtype(spec.dtype))
            self._weight_ids[spec] = TensorValue(
                Weight(wname, dt, list(spec.shape), self.device, _has_alias=spec.alias))
            self.lowered.weights.append((wname, spec))
        return self._weight_ids[spec]

    def store(self, ctx: NodeContext, k: int, result) -> None:
        name = ctx.node.output[k]
        if not name:
            return
        if isinstance(result, ChannelsLast):
            e = _Entry(last=result.value)
            got = first_shape_of_last(dims_of(result.value))
            got_dtype = result.value.dtype
        elif isinstance(result, SymbolicValue):
            e = _Entry(sym=result.dims, sym_elem=result.elem)
            got, got_dtype = tuple(result.dims.shape), dtypes.to_max(result.elem)
        elif isinstance(result, np.ndarray) or np.isscalar(result):
            arr = np.asarray(result)
            e = _Entry(const=arr)
            got, got_dtype = tuple(arr.shape), dtypes.max_from_numpy(arr.dtype)
        elif isinstance(result, TensorValue):
            e = _Entry(first=result)
            got, got_dtype = dims_of(result), result.dtype
        elif result is None:
            raise ctx.error(f"output {k} ('{name}') is used but the converter does not produce it")
        else:
            e = _Entry(first=TensorValue(result))
            got, got_dtype = dims_of(e.first), e.first.dtype
        want = self.p.types.get(name)
        if want is not None:
            elem, shape = want
            if elem and dtypes.is_supported(elem) and dtypes.to_max(elem) != got_dtype:
                raise ctx.error(
                    f"output {k} ('{name}') came out as {got_dtype}, but ONNX shape inference "
                    f"says {dtypes.onnx_type_name(elem)} (a converter bug; please report it)"
                )
            if shape is not None and (len(shape) != len(got) or any(
                    isinstance(w, int) and isinstance(d, int) and w != d for w, d in zip(shape, got))):
                raise ctx.error(
                    f"output {k} ('{name}') came out with shape {got}, but ONNX shape "
                    f"inference says {tuple(shape)} (a converter bug; please report it)"
                )
        self.env[name] = e


def _try_fold_at_lowering(lw: _Lowering, node: onnx.NodeProto) -> list[np.ndarray] | None:
    if node.domain not in STANDARD_DOMAINS or node.op_type in _NO_FOLD:
        return None
    present = [i for i in node.input if i]
    if not all(lw.env[i].const is not None for i in present):
        return None
    outs = fold_node(node, {i: lw.env[i].const for i in present}, lw.p.opsets)
    if outs is not None:
        lw.lowered.consumed.update(present)
    return outs


def _try_symbolic(lw: _Lowering, node: onnx.NodeProto) -> list | None:
    """Evaluate shape arithmetic on symbolic shape values at conversion
    (:func:`onnx2max.symbolic.evaluate`): a ``SymbolicValue``, or a numpy array where the result
    no longer depends on a symbolic dim, per output; ``None`` when the node is not such."""
    if node.domain not in STANDARD_DOMAINS:
        return None
    present = [i for i in node.input if i]
    entries = [lw.env[i] for i in present]
    if not any(e.sym is not None for e in entries) \
            or not all(e.sym is not None or e.const is not None for e in entries):
        return None
    xs = [None if not i else (lw.env[i].sym if lw.env[i].sym is not None else lw.env[i].const)
          for i in node.input]
    r = symbolic.evaluate(node, xs, lw.p.opset(""))
    if r is None:
        return None
    outs, elem = r
    result = []
    for name, a in zip(node.output, outs):
        t = lw.p.types.get(name)
        out_elem = t[0] if t and t[0] else elem
        if a.dtype == bool:
            result.append(a)
        elif symbolic.is_concrete(a):
            result.append(np.asarray(a.astype(np.int64)).astype(dtypes.to_numpy(out_elem)))
        else:
            result.append(SymbolicValue(a, out_elem))
    lw.lowered.consumed.update(n for n in present if lw.env[n].const is not None)
    return result


def _empty_outputs(lw: _Lowering, node: onnx.NodeProto) -> list[np.ndarray] | None:
    """Empty arrays for a node all of whose outputs have zero elements (a static shape with a
    0 dim, from shape inference): their value is known without computing anything. MAX 26.7
    fails to compile some ops on zero-size tensors (Reshape [0,8,2] -> [0,8,4]); such values
    become constants, and the nodes after them fold or see empty constants."""
    if node.domain not in STANDARD_DOMAINS or not node.output:
        return None
    out = []
    for name in node.output:
        if not name:
            out.append(None)
            continue
        t = lw.p.types.get(name)
        if t is None or t[1] is None or not all(isinstance(d, int) for d in t[1]):
            return None
        elem, shape = t
        if 0 not in shape or not elem or not dtypes.is_supported(elem):
            return None
        out.append(np.zeros(shape, dtype=dtypes.to_numpy(elem)))
    return out


#: elementwise ops whose converters read every input through ``ctx.input`` with numpy
#: broadcasting, so per-channel operands (``x * s[N,C,1,1]``, a bias ``[C,1,1]``) can be given
#: to them channels-last as well
_BROADCAST_LAST_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Equal", "Greater", "Less", "GreaterOrEqual",
                                 "LessOrEqual", "And", "Or", "Xor", "Sum", "Min", "Max", "Mean", "Pow"})


def wide_layout() -> bool:
    """Whether channels-last reaches past the layout-aware ops (the default, ``wide``):
    broadcasting elementwise ops with per-channel operands, Split and Slice run on
    channels-last forms. ``ONNX2MAX_LAYOUT=basic`` keeps only same-shape elementwise ops
    channels-last (the lowering before, for comparison)."""
    return os.environ.get("ONNX2MAX_LAYOUT", "wide") != "basic"


def unroll_rnn() -> bool:
    """``ONNX2MAX_UNROLL_RNN=1`` unrolls every RNN/GRU/LSTM sequence instead of a MAX while
    loop (the lowering before, for comparison)."""
    return os.environ.get("ONNX2MAX_UNROLL_RNN", "") not in ("", "0")


def pointwise_matmul() -> bool:
    """Whether a 1x1 ``Conv`` (group 1, no padding, an initializer filter) is lowered as a
    MatMul over the channels-last pixels (the default). ``ONNX2MAX_POINTWISE=conv`` lowers it
    with ``ops.conv2d`` like every other Conv (the lowering before, for comparison). On CPU each
    distinct convolution shape costs MAX about 10 s of compile, a distinct MatMul shape about
    1.5 s (``docs/performance.md``)."""
    raw = os.environ.get("ONNX2MAX_POINTWISE", "matmul")
    if raw.strip().lower() not in ("matmul", "conv"):
        raise InputError(f"ONNX2MAX_POINTWISE={raw!r}: expected matmul (the default) or conv")
    return raw.strip().lower() == "matmul"


def lowering_switches() -> str:
    """The environment switches that change what the lowering emits (part of cache keys)."""
    return (f"unroll_rnn={int(unroll_rnn())}|wide_layout={int(wide_layout())}"
            f"|pointwise_matmul={int(pointwise_matmul())}|unroll_loop={unroll_loop_trips()}")


def _use_channels_last(ctx: NodeContext, lw: _Lowering) -> bool:
    """Run a layout-agnostic elementwise op on channels-last forms when that saves permutes.

    Always when every input is channels-last of one shape (scalar constants aside). For the
    broadcasting ops of ``_BROADCAST_LAST_OPS`` also when the other operands are constants of any
    shape (padded to the output rank and transposed at conversion) or tensors of the output
    rank whose spatial dims are all 1 (a cheap permute): the SE block's ``x * s``, a bias
    ``[C, 1, 1]`` added after a Conv."""
    names = [n for n in ctx.node.input if n]
    entries = [lw.env[n] for n in names]
    tensors = [e for e in entries if e.const is None]
    if not tensors or not any(e.first is None and e.last is not None for e in tensors):
        return False
    if all(e.last is not None for e in tensors):
        shapes = {dims_of(e.last) for e in tensors}
        if len(shapes) == 1 and all(e.const.size == 1 and e.const.ndim <= 1
                                    for e in entries if e.const is not None):
            return True
    if ctx.op_type not in _BROADCAST_LAST_OPS or ctx.domain not in ("", "ai.onnx") \
            or not wide_layout():
        return False
    r = max(len(dims_of(e.last)) for e in tensors if e.last is not None)
    if r < 3:
        return False
    for e in tensors:
        if e.last is not None:
            if len(dims_of(e.last)) != r:
                return False
        else:
            shp = dims_of(e.first)
            if len(shp) != r or any(d != 1 for d in shp[2:]):
                return False
    return all(e.const.ndim <= r for e in entries if e.const is not None)


def input_shapes_hint(p: Prepared) -> str:
    """A sentence giving the ``input_shapes`` that would fix the model's symbolic input dims
    (each shown as 1: the user puts the sizes they run)."""
    sym = {s.name: s.shape for s in p.inputs if not is_static(s.shape)}
    if not sym:
        return ""
    example = ", ".join(f"'{n}': {tuple(d if isinstance(d, int) else 1 for d in shp)}"
                        for n, shp in sym.items())
    names = sorted({str(d) for shp in sym.values() for d in shp if not isinstance(d, int)})
    return (f"Fix the symbolic dims ({', '.join(names)}) at conversion with input_shapes="
            f"{{{example}}} (with your sizes; CLI: --input-shape NAME=D0,D1,...)")


def lower_nodes(lw: "_Lowering", nodes) -> None:
    """Lower ``nodes`` in order into the current MAX graph (or a branch of ``ops.cond``),
    reading and writing the values of ``lw.env``."""
    for node in nodes:
        for i in node.input:
            if i and i not in lw.env:
                raise ConversionError(
                    f"{lw.p.source}: {node.op_type} node '{node.name}' reads '{i}', which no "
                    "node, input or initializer produces before it"
                )
        folded = _try_fold_at_lowering(lw, node)
        if folded is None:
            folded = _empty_outputs(lw, node)
        if folded is None:
            sym = _try_symbolic(lw, node)
            if sym is not None:
                for name, v in zip(node.output, sym):
                    if name:
                        lw.env[name] = (_Entry(sym=v.dims, sym_elem=v.elem)
                                        if isinstance(v, SymbolicValue) else _Entry(const=v))
                continue
        if folded is not None:
            for name, arr in zip(node.output, folded):
                if name:
                    lw.env[name] = _Entry(const=arr)
            continue
        opset = lw.p.opset(node.domain)
        conv = registry.resolve(node.domain, node.op_type, opset)
        ctx = NodeContext(lw, node, opset)
        if node.op_type not in dtypes.BYTE_FLOAT_OPS or node.domain not in STANDARD_DOMAINS:
            f8 = [n for n in list(node.input) + list(node.output) if n and dtypes.is_byte_float(
                (lw.p.types.get(n) or (0, None))[0])]
            if f8:
                t = dtypes.onnx_type_name(lw.p.types[f8[0]][0])
                raise ctx.error(
                    f"'{f8[0]}' is {t}: onnx2max holds 8-bit floats as bytes (MAX 26.7 has no "
                    f"8-bit floats on CPU), and only {', '.join(sorted(dtypes.BYTE_FLOAT_OPS))} "
                    "take them; cast to FLOAT16 or FLOAT first")
        if conv.layout_agnostic and _use_channels_last(ctx, lw):
            ctx.channels_last_mode = True
        try:
            result = conv.fn(ctx)
        except Onnx2MaxError:
            raise
        except SymbolicDims as e:
            raise ctx.error(
                f"this converter needs static dims, but {e}. {input_shapes_hint(lw.p)}") from None
        except Exception as e:
            raise ctx.error(f"{type(e).__name__}: {e}") from e
        unread = ctx.unread_attributes()
        if unread:
            raise ctx.error(
                f"attribute(s) {', '.join(repr(n) for n in unread)} set to a value other than the "
                "default, which onnx2max's converter for this op does not implement (it would "
                "compute the default's result)")
        results = list(result) if isinstance(result, (list, tuple)) else [result]
        if ctx.channels_last_mode:
            results = [ChannelsLast(r) if isinstance(r, TensorValue) else r for r in results]
        for k in range(len(node.output)):
            if not node.output[k]:
                continue
            if k >= len(results):
                raise ctx.error(f"output {k} ('{node.output[k]}') is not produced")
            lw.store(ctx, k, results[k])


def lower_subgraph(lw: "_Lowering", graph: onnx.GraphProto,
                   bind: dict[str, TensorValue] | None = None) -> list[TensorValue]:
    """Lower an ONNX subgraph (an ``If`` branch, a ``Loop`` body) where outer-scope values are
    visible, and return its outputs; the subgraph's own values do not leak into the outer scope.
    ``bind`` gives the subgraph's graph inputs (a loop body's iteration number, condition and
    carried values) as MAX values of the enclosing block."""
    # values made inside the branch live in its block: work on copies of the entries, so
    # nothing the branch creates (a materialised constant, a layout permute) is seen outside
    saved_env, saved_ids, saved_producers = lw.env, lw._weight_ids, lw._producers
    lw.env = {k: copy.copy(v) for k, v in saved_env.items()}
    lw._weight_ids = dict(saved_ids)
    # NodeContext.producer sees the subgraph's nodes as well as the enclosing graphs'
    lw._producers = {**lw.producers(), **{o: n for n in graph.node for o in n.output if o}}
    try:
        for name, value in (bind or {}).items():
            lw.env[name] = _Entry(first=value)
        for t in graph.initializer:
            lw.env[t.name] = _Entry(const=onnx.numpy_helper.to_array(t))
        lower_nodes(lw, list(graph.node))
        return [lw.tensor(o.name) for o in graph.output]
    finally:
        lw.env, lw._weight_ids, lw._producers = saved_env, saved_ids, saved_producers


def lower_graph(
    p: Prepared, device: DeviceRef, graph_name: str, prefix: str, module=None
) -> tuple[Graph, LoweredGraph]:
    """Build the MAX graph of a prepared model.

    Args:
        p: the prepared model.
        device: MAX ``DeviceRef`` for inputs, weights and computation.
        graph_name: name of the MAX graph (canonical, e.g. ``g0``).
        prefix: prefix of weight names (canonical, e.g. ``g0_``).
        module: a ``max.graph.Module`` to add the graph to (several graphs, one compile).

    Raises:
        UnsupportedOpError: see :func:`check_supported`.
        ConversionError: a node cannot be translated; the message names node and op.
    """
    check_supported(p)
    lw = _Lowering(p, device, prefix)
    input_types = [TensorType(dtypes.to_max(s.elem_type), list(s.shape), device) for s in p.inputs]
    kwargs = {"module": module} if module is not None else {}
    with Graph(graph_name, input_types=input_types, **kwargs) as g:
        for s, v in zip(p.inputs, g.inputs):
            lw.env[s.name] = _Entry(first=v.tensor)
        for name, arr in p.values.items():
            lw.env.setdefault(name, _Entry(const=arr))
        lower_nodes(lw, p.nodes)
        outs = []
        for name in p.outputs:
            if name not in lw.env:
                raise ConversionError(f"{p.source}: graph output '{name}' is never produced")
            outs.append(lw.tensor(name))
        g.output(*outs)
        for name, t in zip(p.outputs, outs):
            dt = t.dtype
            elem = dtypes.onnx_of_max(dt)
            declared = (p.types.get(name) or (0, None))[0]
            if dtypes.is_byte_float(declared) and dt == DType.uint8:  # 8-bit float bytes
                elem = declared
            lw.lowered.outputs.append(TensorSpec(
                name, tuple(d if isinstance(d, int) else str(d) for d in dims_of(t)), elem))
    return g, lw.lowered
