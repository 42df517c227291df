"""The 8-bit float types (ONNX FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ and
FLOAT8E8M0) held as their bytes.

MAX 26.7 has 8-bit float types but refuses them on CPU ("The f8e4m3fn data type is not supported
on device 'cpu:0'"), so onnx2max holds such tensors in MAX as ``uint8`` bit patterns
(:data:`onnx2max.dtypes.BYTE_FLOATS`) and converts in the graph: :func:`decode` (bits -> float32,
a gather from the 256 values of the type) and :func:`encode` (float32 -> bits, rounding to the
nearest value, ties to even, as ``ml_dtypes`` and onnx's reference do). Only Cast, CastLike,
QuantizeLinear, DequantizeLinear and the ops that move bytes unchanged take them
(:data:`onnx2max.dtypes.BYTE_FLOAT_OPS`).
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import make_constant


def _values(elem: int) -> np.ndarray:
    """The float32 value of each of the 256 bit patterns of 8-bit float type ``elem``."""
    return np.arange(256, dtype=np.uint8).view(dtypes.to_numpy(elem)).astype(np.float32)


def decode(x: TensorValue, elem: int) -> TensorValue:
    """float32 values of ``x``, a uint8 tensor of ``elem`` bit patterns (every 8-bit float is a
    float32, so this is exact; NaN patterns give NaN)."""
    table = make_constant(_values(elem), x.device, DType.float32)
    return ops.gather(table, ops.cast(x, DType.int64), axis=0)


def encode(x: TensorValue, elem: int, saturate: bool) -> TensorValue:
    """uint8 bit patterns of ``x`` (any float dtype) rounded to 8-bit float type ``elem``.

    Rounds to the nearest value, ties to the even pattern (``ml_dtypes``' ``astype``, which
    onnx's reference uses). ``saturate`` (Cast's attribute, opset 19) clamps to the largest
    finite value first, as ``onnx.numpy_helper.saturate_cast``; without it, values beyond the
    largest finite one become inf (E5M2) or NaN (E4M3FN, the FNUZ types). NaN stays NaN; -0
    keeps its sign where the type has one (not the FNUZ types).

    Raises:
        ValueError: ``elem`` is FLOAT8E8M0 (its rounding modes are not implemented).
    """
    from onnx import TensorProto

    if elem == TensorProto.FLOAT8E8M0:
        raise ValueError("casting to FLOAT8E8M0 is not supported (only from it)")
    dev = x.device
    v = _values(elem)[:128]  # the non-negative patterns, increasing with the pattern
    top = int(np.flatnonzero(np.isfinite(v)).max())  # the largest finite pattern
    fnuz = elem in (TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2FNUZ)
    finite = v[:top + 1].astype(np.float64)
    # midpoints between neighbours; past the largest finite value, the midpoint towards the
    # next power of the format's step (where rounding overflows to the next pattern)
    step = finite[top] - finite[top - 1]
    mids = np.concatenate([(finite[:-1] + finite[1:]) / 2, [finite[top] + step / 2]]).astype(np.float32)
    odd = (np.arange(len(mids)) % 2 == 1)  # a tie at midpoint j rounds up only when j is odd
    xf = ops.cast(x, DType.float32) if x.dtype != DType.float32 else x
    a = ops.abs(xf)
    if saturate:
        a = ops.min(a, make_constant(np.float32(finite[top]), dev, DType.float32))
    a1 = ops.unsqueeze(a, -1)
    m = make_constant(mids, dev, DType.float32)
    above = ops.cast(ops.greater(a1, m), DType.int32)
    tie = ops.cast(ops.equal(a1, m), DType.int32) * make_constant(odd.astype(np.int32), dev, DType.int32)
    code = ops.sum(above + tie, axis=-1)
    code = ops.squeeze(code, -1)
    zero = make_constant(np.float32(0), dev, DType.float32)
    neg = ops.cast(ops.greater(zero, xf), DType.int32)
    # -0.0: the sign bit of a zero (1/x is -inf)
    neg_zero = ops.logical_and(ops.equal(xf, zero), ops.greater(
        zero, make_constant(np.float32(1), dev, DType.float32) / xf))
    neg = ops.max(neg, ops.cast(neg_zero, DType.int32))
    if fnuz:  # no negative zero: a value that rounds to 0 has no sign
        neg = neg * ops.cast(ops.greater(code, make_constant(np.int32(0), dev, DType.int32)), DType.int32)
    bits = code + neg * make_constant(np.int32(128), dev, DType.int32)
    nan_bits = 0x80 if fnuz else int(np.flatnonzero(np.isnan(v))[0])
    isnan = ops.is_nan(xf)
    bits = ops.where(isnan, make_constant(np.int32(nan_bits), dev, DType.int32), bits)
    # past the largest finite value without saturate: the next pattern is inf (E5M2) or NaN
    # (E4M3FN: 0x7F); for the FNUZ types it would be 0x80 (NaN) once the sign bit is added
    if fnuz:
        over = ops.greater(code, make_constant(np.int32(top), dev, DType.int32))
        bits = ops.where(over, make_constant(np.int32(0x80), dev, DType.int32), bits)
    return ops.cast(bits, DType.uint8)
