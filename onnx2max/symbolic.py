"""Shape arithmetic on symbolic dims, evaluated at conversion.

Exporters compute target shapes from the input's shape: ``Shape -> Gather -> Unsqueeze ->
Concat -> Reshape``, ``Shape -> Slice -> ConstantOfShape``, ``Shape -> Gather -> Range``. With
static shapes :mod:`onnx2max.prepare` folds these to constants. With symbolic dims (a batch or
sequence length left open) the values are expressions of MAX dims instead: this module
evaluates the integer ops of such chains on object arrays whose elements are ``int`` or a MAX
``Dim`` (``SymbolicDim("batch")``, ``AlgebraicDim`` such as ``batch * seq``), so the consumer
(Reshape, Expand, ConstantOfShape, Range, Slice) receives MAX dims and the graph keeps them
symbolic. A value whose elements all come out as ``int`` is an ordinary constant again.

Implements the integer forms of the ONNX operators Identity, Cast, Gather (axis 0), Slice,
Concat (axis 0), Unsqueeze, Squeeze, Reshape, Flatten, Add, Sub, Mul, Div (sizes are
non-negative, so ONNX's truncating integer division is floor division), Equal (decided only
where the answer does not depend on a symbolic dim's value: a size is never negative) and Where
with a condition known at conversion. Anything else returns ``None``: the value is then
computed in the graph (``ops.shape_to_tensor``).
"""

from __future__ import annotations

import numpy as np
import onnx
from max.graph import Dim, StaticDim

_INT_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}


def normalize(a: np.ndarray) -> np.ndarray:
    """An object array with ``StaticDim`` and numpy integers turned into ``int``."""
    out = np.empty(a.shape, dtype=object)
    for idx, v in np.ndenumerate(a):
        if isinstance(v, StaticDim):
            v = int(v)
        elif isinstance(v, (np.integer, bool, np.bool_)):
            v = int(v)
        out[idx] = v
    return out


def is_concrete(a: np.ndarray) -> bool:
    """Whether every element of object array ``a`` is an ``int``."""
    return all(isinstance(v, int) for v in a.reshape(-1))


def _ints(v) -> list[int]:
    return [int(x) for x in np.asarray(v).reshape(-1)]


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _floordiv(a, b):
    if isinstance(b, int) and b == 0:
        raise ZeroDivisionError
    return a // b


def _equal(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, Dim) and isinstance(b, Dim) and a == b:
        return True
    other = b if isinstance(a, Dim) else a
    if isinstance(other, int) and other < 0:  # a size is never negative (the -1 of Reshape)
        return False
    raise _Undecided


class _Undecided(Exception):
    pass


def evaluate(node: onnx.NodeProto, inputs: list, opset: int) -> tuple[list[np.ndarray], int] | None:
    """Evaluate ``node`` on shape values.

    Args:
        node: an ai.onnx node.
        inputs: per node input: an object array of ``int``/``Dim`` (a symbolic shape value), a
            numpy array (known at conversion) or ``None`` (absent).
        opset: the model's ai.onnx opset.

    Returns:
        ``(outputs, elem_type)``: the outputs as object arrays (numpy bool arrays for Equal)
        and the ONNX element type of integer outputs; ``None`` where the op or its form is not
        handled here (the caller computes it in the graph).
    """
    op = node.op_type
    try:
        r = _evaluate(op, node, inputs, opset)
        if r is None:
            return None
        outs, elem = r
        fixed = []
        for o in outs:
            if isinstance(o, np.ndarray) and o.dtype == bool:
                fixed.append(o)
            else:
                a = np.empty(np.shape(o), dtype=object)
                a[...] = o
                fixed.append(normalize(a))
        return fixed, elem
    except (_Undecided, ValueError, IndexError, TypeError, ZeroDivisionError):
        return None


def _evaluate(op, node, x, opset):
    elem = onnx.TensorProto.INT64

    def obj(i):
        return normalize(np.asarray(x[i], dtype=object)) if x[i] is not None else None

    if op == "Identity":
        return [obj(0)], elem
    if op == "Cast":
        to = int(_attr(node, "to"))
        return ([obj(0)], to) if to in _INT_TYPES else None
    if op == "Gather":
        if int(_attr(node, "axis", 0)) != 0 or x[0].ndim != 1:
            return None
        idx = np.asarray(x[1])
        if idx.dtype == object:
            return None
        return [np.take(obj(0), idx.astype(np.int64))], elem
    if op == "Slice" and opset >= 10:
        if any(v is not None and np.asarray(v).dtype == object for v in x[1:]) or x[0].ndim != 1:
            return None
        starts, ends = _ints(x[1]), _ints(x[2])
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else [0]
        steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1]
        if axes not in ([0], [-1]) or len(starts) != 1 or steps[0] == 0:
            return None
        clamp = lambda v: max(min(v, 1 << 62), -(1 << 62))  # noqa: E731
        return [obj(0)[clamp(starts[0]):clamp(ends[0]):steps[0]]], elem
    if op == "Concat":
        if int(_attr(node, "axis", 0)) not in (0, -1):
            return None
        parts = [obj(i).reshape(-1) for i in range(len(x)) if x[i] is not None]
        return [np.concatenate(parts)], elem
    if op in ("Unsqueeze", "Squeeze"):
        a = obj(0)
        axes = _ints(x[1]) if opset >= 13 and len(x) > 1 and x[1] is not None else _attr(node, "axes")
        if op == "Unsqueeze":
            r = a.ndim + len(axes)
            axes = sorted(int(v) % r for v in axes)
            shape, it = [], iter(a.shape)
            for i in range(r):
                shape.append(1 if i in axes else next(it))
            return [a.reshape(shape)], elem
        if axes is None:
            return [a.reshape([d for d in a.shape if d != 1])], elem
        axes = {int(v) % max(a.ndim, 1) for v in axes}
        return [a.reshape([d for i, d in enumerate(a.shape) if i not in axes])], elem
    if op == "Reshape" and opset >= 5:
        shape = _ints(x[1])
        a = obj(0)
        shape = [a.shape[i] if d == 0 and i < a.ndim else d for i, d in enumerate(shape)]
        return [a.reshape(shape)], elem
    if op in ("Add", "Sub", "Mul", "Div"):
        a, b = obj(0), obj(1)
        fn = {"Add": lambda p, q: p + q, "Sub": lambda p, q: p - q,
              "Mul": lambda p, q: p * q, "Div": _floordiv}[op]
        out = np.frompyfunc(fn, 2, 1)(a, b)
        return [normalize(np.asarray(out, dtype=object))], elem
    if op == "Equal":
        a, b = obj(0), obj(1)
        out = np.frompyfunc(_equal, 2, 1)(a, b)
        return [np.asarray(out, dtype=bool)], onnx.TensorProto.BOOL
    if op == "Where":
        cond = np.asarray(x[0])
        if cond.dtype != bool:
            return None
        return [np.where(cond, obj(1), obj(2))], elem
    return None


#: ai.onnx op types that run in a model with symbolic dims which ``tests/test_dynamic.py``
#: compares with onnxruntime at several sizes from one compile (a test keeps this set equal to
#: the op types of those models). ``onnx2max ops`` marks them; other converters may work with
#: symbolic dims too, or say which dims they need static.
TESTED_WITH_SYMBOLIC_DIMS = frozenset({
    "Add", "Compress", "Concat", "ConstantOfShape", "Conv", "Div", "Erf", "Expand", "Flatten",
    "Gather", "Gemm", "GlobalAveragePool", "Greater", "If", "LayerNormalization", "MatMul", "MaxPool",
    "Mul", "NonZero", "Not", "Range", "Relu", "Reshape", "Shape", "Slice", "Softmax", "Split",
    "Squeeze", "Transpose", "Unsqueeze", "Where",
})
