"""Linear quantization: QuantizeLinear and DequantizeLinear (ONNX sections of the same
names) for the integer types MAX has (int8, uint8, int16, uint16, int32), per tensor, per axis
or per block (``block_size``, opset 21). 2-, 4- and 8-bit float types are not MAX types.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import make_constant
from ..registry import converter

_INT = {DType.int8: np.int8, DType.uint8: np.uint8, DType.int16: np.int16,
        DType.uint16: np.uint16, DType.int32: np.int32}


def _param(ctx, i: int, like_rank: int) -> TensorValue | None:
    """Scale or zero point broadcast to the data: per tensor, per axis, or per block."""
    if not ctx.has_input(i):
        return None
    t = ctx.input(i)
    shape = ctx.shape(i)
    xs = ctx.shape(0)
    if len(shape) == 0 or (len(shape) == 1 and shape[0] == 1 and like_rank != 1):
        ctx.not_applicable("axis", "block_size")  # a per-tensor parameter: they do not apply
        return ops.reshape(t, []) if len(shape) else t
    axis = int(ctx.attr("axis", 1) if ctx.has_attr("axis") or ctx.opset >= 13 else 1) % like_rank
    block = int(ctx.attr("block_size", 0) or 0) if ctx.opset >= 21 else 0
    if block > 0:  # same rank as x, blocks along axis
        return ops.repeat_interleave(t, block, axis=axis, out_dim=xs[axis])[
            tuple(slice(0, xs[a]) if a == axis else slice(None) for a in range(like_rank))]
    if len(shape) == 1:
        return ops.reshape(t, [shape[0] if a == axis else 1 for a in range(like_rank)])
    return t


@converter("DequantizeLinear", since=10)
def dequantize(ctx):
    """ONNX ``DequantizeLinear``: ``y = (x - zero_point) * scale`` in the scale's dtype (or
    ``output_dtype``, opset 23)."""
    x = ctx.input(0)
    if x.dtype not in _INT:
        raise ctx.error(f"{x.dtype} data; onnx2max dequantizes int8, uint8, int16, uint16, int32")
    r = ctx.rank(0)
    scale = _param(ctx, 1, r)
    out = scale.dtype
    od = ctx.attr("output_dtype", 0) if ctx.opset >= 23 else 0
    if od:
        out = dtypes.to_max(int(od))
    xf = ops.cast(x, DType.float32)
    zp = _param(ctx, 2, r)
    if zp is not None:
        xf = xf - ops.cast(zp, DType.float32)
    y = xf * ops.cast(scale, DType.float32)
    return ops.cast(y, out) if out != DType.float32 else y


@converter("QuantizeLinear", since=10)
def quantize(ctx):
    """ONNX ``QuantizeLinear``: ``y = saturate(round(x / scale) + zero_point)``, rounding halves
    to even, into the zero point's type (uint8 without one; ``output_dtype`` from opset 21)."""
    x = ctx.input(0)
    r = ctx.rank(0)
    scale = _param(ctx, 1, r)
    zp = _param(ctx, 2, r)
    if zp is not None:
        out = zp.dtype
    else:
        od = ctx.attr("output_dtype", 0) if ctx.opset >= 21 else 0
        out = dtypes.to_max(int(od)) if od else DType.uint8
    if out not in _INT:
        raise ctx.error(f"quantizing to {out}; onnx2max quantizes to int8, uint8, int16, uint16, int32")
    info = np.iinfo(_INT[out])
    q = ops.round(ops.cast(x, DType.float32) / ops.cast(scale, DType.float32))
    if zp is not None:
        q = q + ops.cast(zp, DType.float32)
    lo = make_constant(float(info.min), ctx.device, DType.float32)
    hi = make_constant(float(info.max), ctx.device, DType.float32)
    return ops.cast(ops.min(ops.max(q, lo), hi), out)


@converter("CenterCropPad", since=18)
def center_crop_pad(ctx):
    """ONNX ``CenterCropPad``: crop or zero-pad each of ``axes`` (default all) to ``shape``
    (input 1), centred; a crop takes ``(dim - target) // 2`` from the start, a pad puts
    ``(target - dim) // 2`` before."""
    x = ctx.input(0)
    xs = list(ctx.shape(0))
    r = len(xs)
    target = [int(v) for v in np.asarray(ctx.const(1)).reshape(-1)]
    axes = [int(a) % r for a in (ctx.attr("axes") or range(r))]
    idx, pads = [slice(None)] * r, [0] * (2 * r)
    for a, t in zip(axes, target):
        if t < xs[a]:
            s = (xs[a] - t) // 2
            idx[a] = slice(s, s + t)
        elif t > xs[a]:
            before = (t - xs[a]) // 2
            pads[2 * a], pads[2 * a + 1] = before, t - xs[a] - before
    x = x[tuple(idx)]
    if any(pads):
        x = ops.pad(x, pads, value=make_constant(0, ctx.device, x.dtype))
    return x


@converter("DynamicQuantizeLinear", since=11)
def dynamic_quantize(ctx):
    """ONNX ``DynamicQuantizeLinear``: uint8 quantization with the scale and zero point computed
    from the data: ``scale = (max(0, max(x)) - min(0, min(x))) / 255``,
    ``zero_point = saturate(round(-min(0, min(x)) / scale))``."""
    x = ops.cast(ctx.input(0), DType.float32)
    flat = ops.reshape(x, [-1])
    zero = make_constant(0.0, ctx.device, DType.float32)
    hi = ops.max(ops.squeeze(ops.max(flat, axis=0), 0), zero)
    lo = ops.min(ops.squeeze(ops.min(flat, axis=0), 0), zero)
    scale = (hi - lo) / make_constant(255.0, ctx.device, DType.float32)
    top = make_constant(255.0, ctx.device, DType.float32)
    zp = ops.min(ops.max(ops.round(-lo / scale), zero), top)
    y = ops.min(ops.max(ops.round(x / scale) + zp, zero), top)
    return ops.cast(y, DType.uint8), scale, ops.cast(zp, DType.uint8)
