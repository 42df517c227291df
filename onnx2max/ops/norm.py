"""Normalizations beyond batch and layer norm: InstanceNormalization, GroupNormalization,
RMSNormalization, LpNormalization, MeanVarianceNormalization (ONNX sections of the same
names), and ReduceLogSumExp. Statistics are computed with MAX reductions over a flattened axis;
those of float16 and bfloat16 inputs in float32 (:func:`stash_dtype`), the
result rounded once.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import as_dtype, make_constant
from ..registry import converter
from .reduce import reduction_setup


def stash_dtype(ctx) -> DType:
    """The dtype of a normalization's statistics outputs (Mean, InvStdDev): the node's
    ``stash_type`` (LayerNormalization, GroupNormalization-21, RMSNormalization-23,
    onnxruntime's SimplifiedLayerNormalization and its LayerNormalization-1), FLOAT when absent
    (those ops' default) or BFLOAT16, the spec's type constraint U.

    The statistics are computed in ``dtypes.compute_float`` of the input's dtype whatever the
    stash type: float32 for half-precision inputs (the default stash type; onnxruntime's CPU
    float16 results equal that, rounded once, in the suite's cases), the input's own dtype for float32 and float64 (never
    less precise than the stash type asks). Raises ``ConversionError`` for a stash type outside
    U."""
    stash = int(ctx.attr("stash_type", TensorProto.FLOAT))
    if stash not in (TensorProto.FLOAT, TensorProto.BFLOAT16):
        raise ctx.error(f"stash_type {dtypes.onnx_type_name(stash)}; the spec allows FLOAT or BFLOAT16")
    return dtypes.to_max(stash)


def _normalize_last(xf: TensorValue, eps: float) -> TensorValue:
    """``(x - mean) / sqrt(var + eps)`` over the last axis (kept)."""
    mean = ops.mean(xf, axis=-1)
    c = xf - mean
    var = ops.mean(c * c, axis=-1)
    return c * ops.rsqrt(var + eps)


@converter("InstanceNormalization", since=1)
def instance_norm(ctx):
    """ONNX ``InstanceNormalization``: per sample and channel over the spatial axes, then
    ``* scale + B`` per channel (axis 1). Half-precision inputs are computed in float32 and
    rounded once."""
    x = ctx.input(0)
    wide = dtypes.compute_float(x.dtype)
    xs = ctx.leading_dims(0)
    n, c = xs[0], xs[1]
    eps = float(ctx.attr("epsilon"))
    spatial = int(np.prod(xs[2:], dtype=np.int64))
    y = ops.reshape(_normalize_last(ops.reshape(as_dtype(x, wide), [n, c, spatial]), eps), list(xs))
    shape = [c] + [1] * (len(xs) - 2)
    y = y * ops.reshape(as_dtype(ctx.input(1), wide), shape) + ops.reshape(as_dtype(ctx.input(2), wide), shape)
    return as_dtype(y, x.dtype)


@converter("GroupNormalization", since=18)
def group_norm(ctx):
    """ONNX ``GroupNormalization``: ``num_groups`` groups of channels normalised together,
    then ``* scale + bias``: per group (opset 18, scale of size num_groups) or per channel
    (opset 21, scale of size C). Half-precision inputs are computed in float32 (opset 21's
    default ``stash_type``) and rounded once."""
    x = ctx.input(0)
    stash_dtype(ctx)  # only Y is an output: the stash type sets no output's dtype
    wide = dtypes.compute_float(x.dtype)
    xs = ctx.leading_dims(0)
    n, c = xs[0], xs[1]
    g = int(ctx.attr("num_groups"))
    eps = float(ctx.attr("epsilon"))
    if c % g:
        raise ctx.error(f"{c} channels do not divide into {g} groups")
    per = (c // g) * int(np.prod(xs[2:], dtype=np.int64))
    y = _normalize_last(ops.reshape(as_dtype(x, wide), [n, g, per]), eps)
    scale, bias = as_dtype(ctx.input(1), wide), as_dtype(ctx.input(2), wide)
    if ctx.shape(1)[0] == g and g != c:  # opset 18: per group
        y = y * ops.reshape(scale, [g, 1]) + ops.reshape(bias, [g, 1])
        return as_dtype(ops.reshape(y, list(xs)), x.dtype)
    shape = [c] + [1] * (len(xs) - 2)
    return as_dtype(ops.reshape(y, list(xs)) * ops.reshape(scale, shape) + ops.reshape(bias, shape), x.dtype)


@converter("RMSNormalization", since=23)
def rms_norm(ctx):
    """ONNX ``RMSNormalization`` (opset 23): ``x / sqrt(mean(x^2 over [axis, rank)) + eps)
    * scale``; half-precision inputs computed in float32 (the default ``stash_type``) and
    rounded once."""
    x = ctx.input(0)
    stash_dtype(ctx)  # only Y is an output: the stash type sets no output's dtype
    wide = dtypes.compute_float(x.dtype)
    r = ctx.rank(0)
    axis = int(ctx.attr("axis")) % r
    xs = ctx.leading_dims(0, axis)
    eps = float(ctx.attr("epsilon"))
    n = int(np.prod(xs[axis:], dtype=np.int64))
    xf = ops.reshape(as_dtype(x, wide), [*xs[:axis], n])
    ms = ops.mean(xf * xf, axis=-1)
    y = ops.reshape(xf * ops.rsqrt(ms + eps), list(xs))
    return as_dtype(y * as_dtype(ctx.input(1), wide), x.dtype)


@converter("LpNormalization", since=1)
def lp_norm(ctx):
    """ONNX ``LpNormalization``: ``x / ||x||_p`` along ``axis``, p = 1 or 2; 0 where the norm
    is 0 (as onnxruntime and the ONNX test data), not NaN."""
    x = ctx.input(0)
    axis = int(ctx.attr("axis")) % ctx.rank(0)
    p = int(ctx.attr("p"))
    if p == 1:
        norm = ops.sum(ops.abs(x), axis=axis)
    elif p == 2:
        norm = ops.sqrt(ops.sum(x * x, axis=axis))
    else:
        raise ctx.error(f"p={p}; expected 1 or 2")
    zero = make_constant(0.0, x.device, x.dtype)
    # a zero norm means every x along the axis is 0: dividing by 1 instead gives those 0s
    return x / ops.where(ops.equal(norm, zero), make_constant(1.0, x.device, x.dtype), norm)


@converter("MeanVarianceNormalization", since=9)
def mvn(ctx):
    """ONNX ``MeanVarianceNormalization``: ``(x - mean) / sqrt(var)`` over ``axes``
    (default [0, 2, 3]), with the spec's epsilon 1e-9 inside the square root. Half-precision
    inputs are computed in float32 and rounded once."""
    x = ctx.input(0)
    dt = x.dtype
    x = as_dtype(x, dtypes.compute_float(dt))
    r = ctx.rank(0)
    axes = sorted({int(a) % r for a in (ctx.attr("axes") or [0, 2, 3])})
    mean = x
    for a in axes:
        mean = ops.mean(mean, axis=a)
    c = x - mean
    var = c * c
    for a in axes:
        var = ops.mean(var, axis=a)
    return as_dtype(c / ops.sqrt(var + 1e-9), dt)


def _logsumexp(ctx, axes_input: bool):
    x, xs, keep, axes, done = reduction_setup(ctx, axes_input, -np.inf)  # empty: log(0)
    if done is not None:
        return done
    m = x
    for a in axes:
        m = ops.max(m, axis=a)
    s = ops.exp(x - m)
    for a in axes:
        s = ops.sum(s, axis=a)
    y = ops.log(s) + m
    if not keep:
        y = ops.reshape(y, [d for i, d in enumerate(xs) if i not in axes])
    return y


@converter("ReduceLogSumExp", since=1)
def reduce_log_sum_exp(ctx):
    """ONNX ``ReduceLogSumExp`` (axes attribute): ``log(sum(exp(x)))``, computed as
    ``log(sum(exp(x - max))) + max`` so large inputs do not overflow."""
    return _logsumexp(ctx, False)


@converter("ReduceLogSumExp", since=18)
def reduce_log_sum_exp_18(ctx):
    """ONNX ``ReduceLogSumExp`` from opset 18 (axes input)."""
    return _logsumexp(ctx, True)
