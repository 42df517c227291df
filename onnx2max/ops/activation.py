"""More elementwise ops: activations, trigonometric and hyperbolic functions, rounding, tests
for NaN and infinity, Mod and Mean (ONNX "Operators" sections of the same names).

Where MAX has the function (``ops.round``, ``ops.acos``, ``ops.atanh``, ``ops.is_nan``, ...)
it is used; the rest are written with the identities given in each docstring.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import as_dtype, make_constant
from ..registry import converter
from .elementwise import unary

_FLOATS = dtypes.MAX_FLOATS


def _c(x: TensorValue, v) -> TensorValue:
    """Scalar ``v`` as a constant of ``x``'s dtype and device (rank 0)."""
    return make_constant(np.asarray(v, dtype=np.float64), x.device, x.dtype)


def _act(op_type, since=1):
    def wrap(fn):
        @converter(op_type, since=since, layout_agnostic=True)
        def conv(ctx):
            return fn(ctx, ctx.input(0))

        conv.__name__ = f"convert_{op_type.lower()}"
        conv.__doc__ = fn.__doc__
        return conv

    return wrap


def _softplus(x):
    # log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))
    return ops.max(x, _c(x, 0.0)) + ops.log1p(ops.exp(-ops.abs(x)))


@_act("Softplus")
def softplus(ctx, x):
    """ONNX ``Softplus``: ``log(1 + exp(x))``, as ``max(x, 0) + log1p(exp(-|x|))``."""
    return _softplus(x)


@_act("Softsign")
def softsign(ctx, x):
    """ONNX ``Softsign``: ``x / (1 + |x|)``."""
    return x / (ops.abs(x) + _c(x, 1.0))


@_act("Elu", since=6)
def elu(ctx, x):
    """ONNX ``Elu``: ``x`` if ``x > 0``, else ``alpha * (exp(x) - 1)`` (alpha default 1)."""
    a = float(ctx.attr("alpha"))
    return ops.where(x > _c(x, 0.0), x, (ops.exp(x) - _c(x, 1.0)) * _c(x, a))


@_act("Selu", since=6)
def selu(ctx, x):
    """ONNX ``Selu``: ``gamma * (x if x > 0 else alpha * (exp(x) - 1))``."""
    a, g = float(ctx.attr("alpha")), float(ctx.attr("gamma"))
    neg = (ops.exp(x) - _c(x, 1.0)) * _c(x, a)
    return ops.where(x > _c(x, 0.0), x, neg) * _c(x, g)


@_act("Celu", since=12)
def celu(ctx, x):
    """ONNX ``Celu``: ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    a = float(ctx.attr("alpha"))
    zero = _c(x, 0.0)
    return ops.max(x, zero) + ops.min(zero, (ops.exp(x / _c(x, a)) - _c(x, 1.0)) * _c(x, a))


@_act("Mish", since=18)
def mish(ctx, x):
    """ONNX ``Mish``: ``x * tanh(softplus(x))``."""
    return x * ops.tanh(_softplus(x))


@_act("ThresholdedRelu", since=10)
def thresholded_relu(ctx, x):
    """ONNX ``ThresholdedRelu``: ``x`` if ``x > alpha`` else 0 (alpha default 1)."""
    a = float(ctx.attr("alpha"))
    return ops.where(x > _c(x, a), x, _c(x, 0.0))


@_act("Shrink", since=9)
def shrink(ctx, x):
    """ONNX ``Shrink``: ``x + bias`` if ``x < -lambd``, ``x - bias`` if ``x > lambd``, else 0."""
    lambd, bias = float(ctx.attr("lambd")), float(ctx.attr("bias"))
    zero = _c(x, 0)
    return ops.where(x < _c(x, -lambd), x + _c(x, bias),
                     ops.where(x > _c(x, lambd), x - _c(x, bias), zero))


@converter("PRelu", since=1, layout_agnostic=False)
def prelu(ctx):
    """ONNX ``PRelu``: ``x`` if ``x >= 0`` else ``slope * x``; slope broadcasts to x
    (unidirectionally; before opset 7 a 1-D slope of size C applies per channel)."""
    x, slope = ctx.input(0), ctx.input(1)
    if ctx.opset < 7 and ctx.rank(1) == 1 and ctx.rank(0) > 2 and ctx.shape(1)[0] == ctx.shape(0)[1]:
        slope = ops.reshape(slope, [ctx.shape(1)[0]] + [1] * (ctx.rank(0) - 2))
    return ops.where(x < _c(x, 0), x * slope, x)


@_act("Sign", since=9)
def sign(ctx, x):
    """ONNX ``Sign``: -1, 0 or 1 in the input's dtype."""
    zero = _c(x, 0)
    return ops.where(x > zero, _c(x, 1), ops.where(x < zero, _c(x, -1), zero))


@_act("Round", since=11)
def round_(ctx, x):
    """ONNX ``Round``: to the nearest integer, halves to even (MAX ``ops.round``)."""
    return ops.round(x)


def _fn7(op_type, fn, since=7, doc=""):
    return unary(op_type, fn, since=since, doc=doc)


def _one(x):
    return _c(x, 1.0)


_fn7("Tan", lambda x: ops.sin(x) / ops.cos(x), doc="``sin(x) / cos(x)``.")
_fn7("Acos", ops.acos, doc="MAX ``ops.acos``.")
_fn7("Asin", lambda x: _c(x, np.pi / 2) - ops.acos(x), doc="``pi/2 - acos(x)``.")
_fn7("Atan", lambda x: _atan(x), doc="``pi/2 - acos(x / sqrt(1 + x^2))``.")
_fn7("Sinh", lambda x: (ops.exp(x) - ops.exp(-x)) * _c(x, 0.5), since=9,
    doc="``(exp(x) - exp(-x)) / 2``.")
_fn7("Cosh", lambda x: (ops.exp(x) + ops.exp(-x)) * _c(x, 0.5), since=9,
    doc="``(exp(x) + exp(-x)) / 2``.")
_fn7("Asinh", lambda x: ops.log(x + ops.sqrt(x * x + _one(x))), since=9,
    doc="``log(x + sqrt(x^2 + 1))``.")
_fn7("Acosh", lambda x: ops.log(x + ops.sqrt(x * x - _one(x))), since=9,
    doc="``log(x + sqrt(x^2 - 1))``.")
_fn7("Atanh", ops.atanh, since=9, doc="MAX ``ops.atanh``.")


def _atan(x):
    # atan(x) = asin(x / sqrt(1 + x^2)) = pi/2 - acos(x / sqrt(1 + x^2))
    return _c(x, np.pi / 2) - ops.acos(x / ops.sqrt(x * x + _one(x)))


@converter("IsNaN", since=9, layout_agnostic=True)
def is_nan(ctx):
    """ONNX ``IsNaN`` (MAX ``ops.is_nan``)."""
    return ops.is_nan(ctx.input(0))


@converter("IsInf", since=10, layout_agnostic=True)
def is_inf(ctx):
    """ONNX ``IsInf``: ``detect_positive`` and ``detect_negative`` choose the signs (MAX
    ``ops.is_inf``)."""
    x = ctx.input(0)
    inf = ops.is_inf(x)
    pos, neg = int(ctx.attr("detect_positive")), int(ctx.attr("detect_negative"))
    if pos and neg:
        return inf
    zero = _c(x, 0)
    if pos:
        return ops.logical_and(inf, x > zero)
    if neg:
        return ops.logical_and(inf, x < zero)
    return ops.logical_and(inf, ops.logical_not(inf))


@converter("Mod", since=10, layout_agnostic=True)
def mod(ctx):
    """ONNX ``Mod``: ``fmod=0`` takes the divisor's sign (integers: MAX ``ops.mod``; floats:
    ``a - floor(a / b) * b``), ``fmod=1`` the dividend's sign, as C ``fmod``:
    ``a - trunc(a / b) * b``. An infinite divisor with a finite dividend (where those formulas
    give NaN) gives, as numpy: ``a`` for ``fmod=1``; for ``fmod=0``, ``a`` when ``a`` is 0 or
    has ``b``'s sign, else ``b``."""
    a, b = ctx.input(0), ctx.input(1)
    fmod = int(ctx.attr("fmod"))
    if a.dtype in _FLOATS:
        r = a - (ops.trunc(a / b) if fmod else ops.floor(a / b)) * b  # numpy.mod / C fmod
        zero = _c(a, 0.0)
        keep_a = ops.logical_or(ops.equal(a, zero),
                                ops.logical_not(ops.logical_xor(ops.greater(a, zero), ops.greater(b, zero))))
        at_inf = a if fmod else ops.where(keep_a, a, b)
        return ops.where(ops.logical_and(ops.is_inf(b), ops.logical_not(ops.logical_or(ops.is_inf(a), ops.is_nan(a)))),
                         at_inf, r)
    if fmod:
        q = ops.trunc(ops.cast(a, DType.float64) / ops.cast(b, DType.float64))
        return a - ops.cast(q, a.dtype) * b
    return ops.mod(a, b)


@converter("Mean", since=1, layout_agnostic=True)
def mean(ctx):
    """ONNX ``Mean``: the elementwise mean of all inputs, with broadcasting. float16 and
    bfloat16 inputs are summed in float32 and the mean rounded once (a sum in the half type
    rounds at every input)."""
    xs = [t for t in ctx.inputs() if t is not None]
    dt = xs[0].dtype
    wide = dtypes.compute_float(dt)
    acc = as_dtype(xs[0], wide)
    for t in xs[1:]:
        acc = acc + as_dtype(t, wide)
    return as_dtype(acc / _c(acc, float(len(xs))), dt)


@_act("Swish", since=24)
def swish(ctx, x):
    """ONNX ``Swish``: ``x * sigmoid(alpha * x)`` (alpha default 1)."""
    return x * ops.sigmoid(x * _c(x, float(ctx.attr("alpha"))))


@converter("SwiGLU", since=28, layout_agnostic=True)
def swiglu(ctx):
    """ONNX ``SwiGLU`` (opset 28): ``Swish_alpha(A) * B`` with ``Swish_alpha(a) = a *
    sigmoid(alpha * a)``; A and B of one shape."""
    a, b = ctx.input(0), ctx.input(1)
    if ctx.dims(0) != ctx.dims(1):
        raise ctx.error(f"A has shape {ctx.dims(0)} and B {ctx.dims(1)}; SwiGLU needs one shape")
    return a * ops.sigmoid(a * _c(a, float(ctx.attr("alpha")))) * b
