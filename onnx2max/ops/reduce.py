"""Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
ReduceSumSquare, ReduceLogSum (ONNX sections of the same names; ReduceLogSumExp is in norm.py).

``axes`` is an attribute until opset 13 (ReduceSum) or 18 (the others) and an input after;
``keepdims`` defaults to 1; with no axes every axis is reduced unless ``noop_with_empty_axes``,
which skips the reduction but keeps the op's elementwise parts (ReduceSumSquare -> x*x).
MAX reductions take one axis and keep it, so several axes are reduced one after another and
dropped with one reshape when ``keepdims=0``. Reducing over an empty axis gives the
reduction's identity (0, 1, -inf or +inf; 0 for ReduceMean, as onnxruntime does).

The sums (ReduceSum, ReduceMean, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum) of float16
and bfloat16 are computed in float32 and rounded once (numpy computes a float16 mean so too):
MAX 26.7 fused a float16 LayerNorm written out with ReduceMean into its LayerNorm kernel, whose
compile then failed (a float16 epsilon where the kernel takes a float32). MAX's own float16
sums were as close to the correctly rounded ones (4096 values).
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import as_dtype, make_constant
from ..registry import converter


def reduction_axes(ctx, axes_input: bool) -> list[int] | None:
    """The sorted, non-negative axes a Reduce* node reduces; ``None`` for no reduction (no axes
    and ``noop_with_empty_axes``)."""
    r = ctx.rank(0)
    noop = int(ctx.attr("noop_with_empty_axes") or 0)  # read always: it matters only without axes
    if axes_input:
        axes = ctx.const(1) if ctx.has_input(1) else None
    else:
        axes = ctx.attr("axes")
    axes = None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    if not axes:
        if noop:
            return None
        axes = list(range(r))
    return sorted({a % r for a in axes}) if r else []


def empty_reduction(x, xs, axes: list[int], keep: int, empty: float) -> np.ndarray:
    """The result of reducing over an empty axis: the reduction's identity (as onnxruntime),
    with infinities mapped to the integer type's limits and to False/True for bool."""
    shape = [1 if i in axes else d for i, d in enumerate(xs)] if keep else \
        [d for i, d in enumerate(xs) if i not in axes]
    dt = np.dtype(x.dtype.to_numpy())
    if np.isinf(empty) and dt.kind in "iu":
        empty = np.iinfo(dt).min if empty < 0 else np.iinfo(dt).max
    elif np.isinf(empty) and dt.kind == "b":  # max of nothing is False, min is True
        empty = empty > 0
    return np.full(shape, empty, dtype=dt)


def reduction_setup(ctx, axes_input: bool, empty: float):
    """``(x, shape, keepdims, axes, done)`` of a Reduce* node; ``done`` is the finished result
    when there is nothing to compute (a no-op, or an empty axis), else ``None``. ``shape`` may
    hold symbolic MAX dims (a symbolic axis is reduced by MAX at run time)."""
    x, xs, keep = ctx.input(0), ctx.dims(0), int(ctx.attr("keepdims"))
    axes = reduction_axes(ctx, axes_input)
    if axes is None:
        return x, xs, keep, axes, x
    if any(isinstance(xs[a], int) and xs[a] == 0 for a in axes):
        return x, xs, keep, axes, empty_reduction(x, xs, axes, keep, empty)
    return x, xs, keep, axes, None


def _reduce(ctx, axes_input: bool, pre=None, reduce=ops.sum, post=None, empty=0.0, wide=False):
    """``post(reduce(pre(x)))`` over the node's axes; with ``wide``, float16 and bfloat16 ``x``
    in float32, rounded once at the end."""
    x, xs, keep, axes, done = reduction_setup(ctx, axes_input, empty)
    if axes is None:
        # noop_with_empty_axes with no axes: only the reduction is skipped; the elementwise
        # parts stay (ReduceSumSquare gives x*x, ReduceL1 |x|, ReduceL2 sqrt(x*x),
        # ReduceLogSum log(x)), as the current operator text says and onnxruntime computes
        if pre is not None:
            x = pre(x)
        return post(x) if post is not None else x
    if done is not None:
        return done
    dt = x.dtype
    if wide:
        x = as_dtype(x, dtypes.compute_float(dt))
    if pre is not None:
        x = pre(x)
    for a in axes:
        x = reduce(x, a)
    if post is not None:
        x = post(x)
    x = as_dtype(x, dt)
    if not keep:
        x = ops.reshape(x, [d for i, d in enumerate(xs) if i not in axes])
    return x


def _register(op_type, input_since, doc, **kw):
    @converter(op_type, since=1)
    def attr_form(ctx):
        return _reduce(ctx, False, **kw)

    @converter(op_type, since=input_since)
    def input_form(ctx):
        return _reduce(ctx, True, **kw)

    attr_form.__doc__ = f"ONNX ``{op_type}`` with ``axes`` as an attribute: {doc}"
    input_form.__doc__ = f"ONNX ``{op_type}`` with ``axes`` as an input (opset {input_since}): {doc}"


def _sum(x, a):
    return ops.sum(x, axis=a)


def _mean(x, a):
    return ops.mean(x, axis=a)


_FLOAT_DTYPES = dtypes.MAX_FLOATS


def _extreme(fn, x: TensorValue, axis: int, inf: float) -> TensorValue:
    """``fn`` (MAX ``ops.max`` or ``ops.min``) over ``axis``, kept; ``inf`` where every value
    is ``inf``. MAX 26.7 gives the lowest (highest) finite value, not -inf (+inf), for the max
    (min) of values that are all -inf (+inf), as a fully masked row of attention scores."""
    y = fn(x, axis=axis)
    if x.dtype not in _FLOAT_DTYPES:
        return y
    inf_c = make_constant(inf, x.device, x.dtype)
    other = ops.max(ops.cast(ops.not_equal(x, inf_c), DType.int32), axis=axis)  # 1: a value is not inf
    return ops.where(ops.equal(other, make_constant(0, x.device, DType.int32)), inf_c, y)


def max_kept(x: TensorValue, axis: int) -> TensorValue:
    """The max of ``x`` over ``axis`` (kept as size 1), -inf where every value is -inf."""
    return _extreme(ops.max, x, axis, -np.inf)


def min_kept(x: TensorValue, axis: int) -> TensorValue:
    """The min of ``x`` over ``axis`` (kept as size 1), +inf where every value is +inf."""
    return _extreme(ops.min, x, axis, np.inf)


def _max(x, a):
    return max_kept(x, a)


def _min(x, a):
    return min_kept(x, a)


def _prod(x, a):
    return ops.prod(x, axis=a)


_register("ReduceSum", 13, "sum (MAX ops.sum)", reduce=_sum, wide=True)
_register("ReduceMean", 18, "mean (MAX ops.mean)", reduce=_mean, wide=True)
_register("ReduceMax", 18, "max (MAX ops.max; -inf where all values are -inf)", reduce=_max, empty=-np.inf)
_register("ReduceMin", 18, "min (MAX ops.min; +inf where all values are +inf)", reduce=_min, empty=np.inf)
_register("ReduceProd", 18, "product (MAX ops.prod)", reduce=_prod, empty=1.0)
_register("ReduceL1", 18, "sum of |x|", pre=ops.abs, reduce=_sum, wide=True)
_register("ReduceL2", 18, "sqrt of the sum of squares", pre=lambda x: x * x, reduce=_sum, post=ops.sqrt, wide=True)
_register("ReduceSumSquare", 18, "sum of squares", pre=lambda x: x * x, reduce=_sum, wide=True)
_register("ReduceLogSum", 18, "log of the sum", reduce=_sum, post=ops.log, empty=-np.inf, wide=True)
