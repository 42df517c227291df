"""Linear quantization: QuantizeLinear and DequantizeLinear (ONNX sections of the same
names) for the integer types MAX has (int8, uint8, int16, uint16, int32) and the 8-bit floats
(held as bytes, :mod:`onnx2max.ops.float8`), per tensor, per axis or per block (``block_size``,
opset 21). 2- and 4-bit types are not MAX types. The integer ops on quantized data (MatMulInteger, ConvInteger,
QLinearMatMul, QLinearConv) are here too.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import make_constant
from ..registry import converter
from . import float8

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
    f8 = ctx.elem_type(0) if dtypes.is_byte_float(ctx.elem_type(0) or 0) else None
    if x.dtype not in _INT:
        raise ctx.error(f"{x.dtype} data; onnx2max dequantizes int8, uint8, int16, uint16, int32 "
                        "and the 8-bit floats")
    r = ctx.rank(0)
    scale = _param(ctx, 1, r)
    out = scale.dtype
    od = ctx.attr("output_dtype", 0) if ctx.opset >= 23 else 0
    if od:
        out = dtypes.to_max(int(od))
    xf = float8.decode(x, f8) if f8 else ops.cast(x, DType.float32)
    zp = _param(ctx, 2, r)
    if zp is not None:
        xf = xf - (float8.decode(zp, f8) if f8 else ops.cast(zp, DType.float32))
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
    od = int(ctx.attr("output_dtype", 0) or 0) if ctx.opset >= 21 else 0
    elem = ctx.elem_type(2) if zp is not None else od
    if elem and dtypes.is_byte_float(elem):  # 8-bit floats: y = round(x / scale + zero_point)
        saturate = bool(ctx.attr("saturate", 1)) if ctx.opset >= 19 else True
        y = ops.cast(x, DType.float32) / ops.cast(scale, DType.float32)
        if zp is not None:
            y = y + float8.decode(zp, elem)
        try:
            return float8.encode(y, elem, saturate)
        except ValueError as e:
            raise ctx.error(str(e)) from None
    if ctx.opset >= 19:
        ctx.not_applicable("saturate")  # for the 8-bit floats only
    if zp is not None:
        out = zp.dtype
    else:
        out = dtypes.to_max(od) if od else DType.uint8
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


def _centered(ctx, i: int, zp_i: int, dtype: DType, axis: int | None = None) -> TensorValue:
    """Input ``i`` minus its zero point (input ``zp_i``, scalar or 1-D along ``axis``), as
    ``dtype``."""
    v = ops.cast(ctx.input(i), dtype)
    if ctx.num_inputs > zp_i and ctx.has_input(zp_i):
        z = ops.cast(ctx.input(zp_i), dtype)
        zs = ctx.shape(zp_i)
        if len(zs) == 1 and zs[0] > 1 and axis is not None:
            r = ctx.rank(i)
            z = ops.reshape(z, [zs[0] if a == axis % r else 1 for a in range(r)])
        elif len(zs) == 1:
            z = ops.reshape(z, [])
        v = v - z
    return v


@converter("MatMulInteger", since=10)
def matmul_integer(ctx):
    """ONNX ``MatMulInteger``: ``(A - a_zero_point) @ (B - b_zero_point)`` in int32 (zero points
    per tensor, per row of A or per column of B). MAX ``ops.matmul`` on int32."""
    a = _centered(ctx, 0, 2, DType.int32, axis=-2)
    b = _centered(ctx, 1, 3, DType.int32, axis=-1)
    return ops.matmul(a, b)


def _requantize(ctx, y: TensorValue, scale_i: int, zp_i: int) -> TensorValue:
    """``saturate(round(y / y_scale) + y_zero_point)`` into the zero point's integer type."""
    out = ctx.dtype(zp_i)
    if out not in _INT:
        raise ctx.error(f"output zero point of type {out}; expected an 8-bit integer")
    info = np.iinfo(_INT[out])
    q = ops.round(y / ops.cast(ctx.input(scale_i), DType.float32)) + ops.cast(ctx.input(zp_i), DType.float32)
    lo = make_constant(float(info.min), ctx.device, DType.float32)
    hi = make_constant(float(info.max), ctx.device, DType.float32)
    return ops.cast(ops.min(ops.max(q, lo), hi), out)


def _scale(ctx, i: int, rank: int, axis: int) -> TensorValue:
    s = ops.cast(ctx.input(i), DType.float32)
    shape = ctx.shape(i)
    if len(shape) == 1 and shape[0] > 1:
        return ops.reshape(s, [shape[0] if a == axis % rank else 1 for a in range(rank)])
    return ops.reshape(s, []) if len(shape) else s


@converter("QLinearMatMul", since=10)
def qlinear_matmul(ctx):
    """ONNX ``QLinearMatMul``: ``a`` and ``b`` dequantized (scales and zero points per tensor,
    per row of a, per column of b), multiplied in float32, requantized with ``y_scale`` and
    ``y_zero_point`` (rounding halves to even, saturating)."""
    a = _centered(ctx, 0, 2, DType.float32, axis=-2) * _scale(ctx, 1, ctx.rank(0), -2)
    b = _centered(ctx, 3, 5, DType.float32, axis=-1) * _scale(ctx, 4, ctx.rank(3), -1)
    return _requantize(ctx, ops.matmul(a, b), 6, 7)


def _integer_conv(ctx, x: TensorValue, w: TensorValue, bias: TensorValue | None) -> TensorValue:
    """ONNX Conv of float32 ``x`` and ``w`` (the integer values, exact in float32 while every
    sum stays below 2^24), with the node's own Conv attributes (:func:`.nn.conv_geometry`,
    :func:`.nn.conv_channels_last`). Returns the channels-last result."""
    from .nn import conv_channels_last, conv_geometry

    xs, ws = tuple(int(d) for d in x.shape), tuple(int(d) for d in w.shape)
    geometry = conv_geometry(ctx, xs, ws)
    x_last = ops.permute(x, [0, *range(2, x.rank), 1])
    return conv_channels_last(x_last, w, bias, geometry, runtime_filter=True)


@converter("ConvInteger", since=10)
def conv_integer(ctx):
    """ONNX ``ConvInteger``: Conv of ``x - x_zero_point`` and ``w - w_zero_point`` (per tensor,
    or per output channel for w), int32 result. Computed by MAX ``ops.conv2d`` in float32, which
    is exact while every sum stays below 2^24 (e.g. 8-bit data with up to 258 products per
    output)."""
    x = _centered(ctx, 0, 2, DType.float32)
    w = _centered(ctx, 1, 3, DType.float32, axis=0)
    y = _integer_conv(ctx, x, w, None)
    return _cast_result(y, DType.int32, round_first=True)


def _cast_result(y, dtype, round_first=False):
    from ..layout import ChannelsLast

    last = isinstance(y, ChannelsLast)
    v = y.value if last else y
    if round_first:
        v = ops.round(v)
    v = ops.cast(v, dtype)
    return ChannelsLast(v) if last else v


@converter("QLinearConv", since=10)
def qlinear_conv(ctx):
    """ONNX ``QLinearConv``: ``x`` and ``w`` dequantized (w per tensor or per output channel),
    Conv in float32 with the int32 bias ``B`` scaled by ``x_scale * w_scale``, requantized with
    ``y_scale`` and ``y_zero_point``."""
    x = _centered(ctx, 0, 2, DType.float32) * _scale(ctx, 1, ctx.rank(0), 1)
    w = _centered(ctx, 3, 5, DType.float32, axis=0) * _scale(ctx, 4, ctx.rank(3), 0)
    bias = None
    if ctx.num_inputs > 8 and ctx.has_input(8):
        ws = ops.reshape(ops.cast(ctx.input(4), DType.float32), [-1])
        bias = ops.cast(ctx.input(8), DType.float32) * ws * ops.reshape(
            ops.cast(ctx.input(1), DType.float32), [])
    y = _integer_conv(ctx, x, w, bias)
    from ..layout import ChannelsLast

    last = isinstance(y, ChannelsLast)
    v = _requantize(ctx, y.value if last else y, 6, 7)
    return ChannelsLast(v) if last else v
