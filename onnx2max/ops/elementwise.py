"""Elementwise ops: arithmetic, comparisons, logic and activations (ONNX "Operators" sections
of the same names). All broadcast numpy-style (multidirectional broadcasting), as MAX does."""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..registry import converter

_FLOATS = dtypes.MAX_FLOATS


def unary(op_type, fn, since=1, doc="elementwise."):
    """Register ``fn(x)`` as the converter of a one-input elementwise op."""
    @converter(op_type, since=since, layout_agnostic=True)
    def conv(ctx):
        return fn(ctx.input(0))

    conv.__name__ = f"convert_{op_type.lower()}"
    conv.__doc__ = f"ONNX ``{op_type}``: {doc}"
    return conv


_unary = unary


_unary("Relu", ops.relu)
_unary("Sigmoid", ops.sigmoid)
_unary("Tanh", ops.tanh)
_unary("Exp", ops.exp)
_unary("Log", ops.log)
_unary("Sqrt", ops.sqrt)
_unary("Neg", ops.negate)
_unary("Abs", ops.abs)
_unary("Erf", ops.erf)
_unary("Not", ops.logical_not)
_unary("Reciprocal", lambda x: 1.0 / x)
_unary("Floor", ops.floor)
_unary("Ceil", ops.ceil)
_unary("Sin", ops.sin)
_unary("Cos", ops.cos)


@converter("Identity", layout_agnostic=True)
def identity(ctx):
    """ONNX ``Identity``: the input itself (a known constant stays known)."""
    if ctx.is_const(0):
        return ctx.const(0)
    return ctx.input(0)


@converter("Dropout", layout_agnostic=True)
def dropout(ctx):
    """ONNX ``Dropout`` at inference: output = input; the optional mask is all true.

    Training mode (``is_test=0`` before opset 7, or a ``training_mode`` input that is true) is
    refused, as it is random, unless the ``ratio`` input is 0: then nothing is dropped and the
    output is the input, as in inference.
    """
    if ctx.opset < 7 and ctx.attr("is_test", 0) == 0 and ctx.has_attr("is_test"):
        raise ctx.error("is_test=0 (training dropout) is random; export the model in eval mode")
    if ctx.has_input(2) and bool(np.asarray(ctx.const(2)).item()):  # training mode
        ratio = np.asarray(ctx.const(1)).item() if ctx.has_input(1) else 0.5
        if ratio != 0:
            raise ctx.error(f"training_mode=true with ratio {ratio} is random; export the model in "
                            "eval mode")
    x = ctx.input(0)
    if ctx.output_used(1):
        mask = ops.broadcast_to(ctx.constant(np.array(True)), x.shape)
        return x, mask
    return x


@converter("LeakyRelu", layout_agnostic=True)
def leaky_relu(ctx):
    """ONNX ``LeakyRelu``: ``x if x >= 0 else alpha * x`` (alpha default 0.01)."""
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha"))
    return ops.where(x >= 0, x, x * alpha)


@converter("HardSigmoid", layout_agnostic=True)
def hard_sigmoid(ctx):
    """ONNX ``HardSigmoid``: ``max(0, min(1, alpha * x + beta))``."""
    x = ctx.input(0)
    y = x * float(ctx.attr("alpha")) + float(ctx.attr("beta"))
    return ops.min(ops.max(y, 0.0), 1.0)


@converter("HardSwish", layout_agnostic=True)
def hard_swish(ctx):
    """ONNX ``HardSwish``: ``x * max(0, min(1, x / 6 + 0.5))``."""
    x = ctx.input(0)
    return x * ops.min(ops.max(x * (1.0 / 6.0) + 0.5, 0.0), 1.0)


@converter("Gelu", since=20, layout_agnostic=True)
def gelu(ctx):
    """ONNX ``Gelu`` (opset 20): ``approximate`` = "none" (erf) or "tanh"; MAX ``ops.gelu``."""
    approx = ctx.attr("approximate") or "none"
    if approx not in ("none", "tanh"):
        raise ctx.error(f"approximate='{approx}'; expected 'none' or 'tanh'")
    return ops.gelu(ctx.input(0), approximate=approx)


def _bound(ctx, value, like: TensorValue):
    if isinstance(value, TensorValue):
        return value
    return ctx.constant(np.asarray(value).reshape(()).astype(np.float64), like.dtype)


@converter("Clip", since=1, layout_agnostic=True)
def clip_v1(ctx):
    """ONNX ``Clip`` before opset 11: ``min``/``max`` attributes (defaults -inf/+inf)."""
    x = ctx.input(0)
    lo, hi = ctx.attr("min", None), ctx.attr("max", None)
    if lo is not None:
        x = ops.max(x, _bound(ctx, lo, x))
    if hi is not None:
        x = ops.min(x, _bound(ctx, hi, x))
    return x


@converter("Clip", since=11, layout_agnostic=True)
def clip_v11(ctx):
    """ONNX ``Clip`` from opset 11: optional ``min`` and ``max`` inputs (scalars)."""
    x = ctx.input(0)
    for i, op in ((1, ops.max), (2, ops.min)):
        if ctx.has_input(i):
            b = ctx.const(i) if ctx.is_const(i) else ctx.input(i)
            if isinstance(b, np.ndarray):
                x = op(x, ctx.constant(b.reshape(()), x.dtype))
            else:
                x = op(x, ops.reshape(b, []) if b.rank else b)
    return x


def _binary(op_type, fn):
    @converter(op_type, layout_agnostic=True)
    def conv(ctx):
        return fn(ctx.input(0), ctx.input(1))

    conv.__name__ = f"convert_{op_type.lower()}"
    conv.__doc__ = f"ONNX ``{op_type}`` with multidirectional (numpy) broadcasting."
    return conv


_binary("Add", ops.add)
_binary("Sub", ops.sub)
_binary("Mul", ops.mul)
_binary("Equal", ops.equal)
_binary("Greater", ops.greater)
_binary("Less", lambda a, b: ops.greater(b, a))
_binary("GreaterOrEqual", ops.greater_equal)
_binary("LessOrEqual", lambda a, b: ops.greater_equal(b, a))
_binary("And", ops.logical_and)
_binary("Or", ops.logical_or)
_binary("Xor", ops.logical_xor)


@converter("Div", layout_agnostic=True)
def div(ctx):
    """ONNX ``Div``. Integer division truncates toward zero (as onnxruntime does); MAX's
    ``ops.div`` on integers returns float64, so integers go through float64 and ``trunc``."""
    a, b = ctx.input(0), ctx.input(1)
    if a.dtype in _FLOATS:
        return ops.div(a, b)
    q = ops.div(ops.cast(a, DType.float64), ops.cast(b, DType.float64))
    return ops.cast(ops.trunc(q), a.dtype)


@converter("Pow", layout_agnostic=True)
def pow_(ctx):
    """ONNX ``Pow``: ``x ** y``; the exponent is cast to the base's type (T1 may differ)."""
    x = ctx.input(0)
    if ctx.is_const(1):
        e = ctx.const(1)
        if e.size == 1:
            v = float(e.reshape(()))
            if v == 2.0:
                return x * x
            if v == 1.0:
                return x
            if v == 0.5 and x.dtype in _FLOATS:
                return ops.sqrt(x)
    y = ctx.input(1)
    if y.dtype != x.dtype:
        y = ops.cast(y, x.dtype)
    return ops.pow(x, y)


def _variadic(op_type, fn):
    @converter(op_type, layout_agnostic=True)
    def conv(ctx):
        xs = [t for t in ctx.inputs() if t is not None]
        acc = xs[0]
        for t in xs[1:]:
            acc = fn(acc, t)
        return acc

    conv.__name__ = f"convert_{op_type.lower()}"
    conv.__doc__ = f"ONNX ``{op_type}`` over any number of inputs, with broadcasting."
    return conv


def _nan_propagating(fn):
    """``fn`` (MAX ``ops.min``/``ops.max``), but NaN wherever either operand is NaN, as ONNX
    Min/Max in onnxruntime and numpy's ``minimum``/``maximum`` give (MAX's min/max return the
    other operand). Integer operands have no NaN and are passed through."""

    def f(a, b):
        r = fn(a, b)
        if a.dtype not in _FLOATS:
            return r
        # r + a + b is NaN where either operand is, and broadcasts like r
        nan = ops.logical_or(ops.is_nan(a), ops.is_nan(b))
        return ops.where(nan, r + a + b, r)

    return f


_variadic("Sum", ops.add)
_variadic("Min", _nan_propagating(ops.min))
_variadic("Max", _nan_propagating(ops.max))


@converter("Where")
def where(ctx):
    """ONNX ``Where``: ``condition ? X : Y`` with broadcasting (MAX ``ops.where``)."""
    return ops.where(ctx.input(0), ctx.input(1), ctx.input(2))
