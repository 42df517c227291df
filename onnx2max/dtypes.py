"""Element types: ONNX ``TensorProto.DataType`` <-> numpy dtype <-> MAX ``DType``."""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from onnx import TensorProto, helper

# ONNX element types that MAX can hold, with their numpy and MAX equivalents.
_ONNX_TO_MAX = {
    TensorProto.FLOAT: DType.float32,
    TensorProto.DOUBLE: DType.float64,
    TensorProto.FLOAT16: DType.float16,
    TensorProto.BFLOAT16: DType.bfloat16,
    TensorProto.INT8: DType.int8,
    TensorProto.INT16: DType.int16,
    TensorProto.INT32: DType.int32,
    TensorProto.INT64: DType.int64,
    TensorProto.UINT8: DType.uint8,
    TensorProto.UINT16: DType.uint16,
    TensorProto.UINT32: DType.uint32,
    TensorProto.UINT64: DType.uint64,
    TensorProto.BOOL: DType.bool,
}
# MAX 26.7 has the 8-bit float types, but refuses them on CPU ("The f8e4m3fn data type is not
# supported on device 'cpu:0'"): onnx2max holds them in MAX as their bytes (uint8), and only the
# ops of BYTE_FLOAT_OPS take them (onnx2max/ops/float8.py converts).
BYTE_FLOATS = (TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2,
               TensorProto.FLOAT8E5M2FNUZ, TensorProto.FLOAT8E8M0)
_ONNX_TO_MAX.update({t: DType.uint8 for t in BYTE_FLOATS})
#: the ops that take 8-bit float tensors (held as bytes): the conversions, and ops that move
#: bytes unchanged
BYTE_FLOAT_OPS = frozenset({"Cast", "CastLike", "QuantizeLinear", "DequantizeLinear", "Identity",
                            "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"})

# Element types whose numpy form is an ``ml_dtypes`` type (as onnx's ``numpy_helper`` gives them):
# bfloat16. numpy cannot hand it to MAX (no DLPack code), so it crosses the boundary as unsigned
# integers of the same width, reinterpreted as the MAX type (``Buffer.view``): see :func:`to_buffer`.
#: MAX's float dtypes that its arithmetic ops take (not the 8-bit floats, which are bytes here)
MAX_FLOATS = (DType.float16, DType.bfloat16, DType.float32, DType.float64)
#: the half-precision ones, which MAX 26.7's CPU matmul, conv and pool kernels accumulate in
#: the half type: converters compute them in float32 and round once
MAX_HALF_FLOATS = (DType.float16, DType.bfloat16)


def compute_float(dtype: DType) -> DType:
    """The dtype a converter computes a float ``dtype`` in when its kernels or its statistics
    lose precision in half precision: float32 for :data:`MAX_HALF_FLOATS` (the result is
    rounded to ``dtype`` once, at the end), ``dtype`` itself otherwise."""
    return DType.float32 if dtype in MAX_HALF_FLOATS else dtype


NARROW_FLOATS = {
    DType.bfloat16: np.uint16,
}


def onnx_type_name(elem_type: int) -> str:
    """Name of an ONNX element type, e.g. ``FLOAT``; ``type <n>`` when unknown."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"


def is_supported(elem_type: int) -> bool:
    """Whether MAX has an equivalent of this ONNX element type (for the 8-bit floats: holds
    them as bytes, see :data:`BYTE_FLOATS`)."""
    return elem_type in _ONNX_TO_MAX


def is_byte_float(elem_type: int) -> bool:
    """Whether an ONNX element type is an 8-bit float, held in MAX as uint8 bit patterns."""
    return elem_type in BYTE_FLOATS


def is_byte_float_dtype(dtype) -> bool:
    """Whether a numpy dtype is an ``ml_dtypes`` 8-bit float (see :data:`BYTE_FLOATS`)."""
    try:
        return from_numpy(dtype) in BYTE_FLOATS
    except (KeyError, TypeError, ValueError):
        return False


def unsupported_reason(elem_type: int) -> str:
    """Why an element type that :func:`is_supported` refuses is refused (a clause)."""
    if elem_type == TensorProto.STRING:
        return "which MAX cannot represent (no string tensors)"
    return "which MAX does not have"


def to_max(elem_type: int) -> DType:
    """MAX ``DType`` of an ONNX element type. Raises ``KeyError`` when MAX has none."""
    return _ONNX_TO_MAX[elem_type]


def to_numpy(elem_type: int) -> np.dtype:
    """numpy dtype of an ONNX element type (bfloat16: the ``ml_dtypes`` type that onnx's
    ``numpy_helper`` uses)."""
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def onnx_of_max(dtype: DType) -> int:
    """The ONNX element type of a MAX ``DType`` (``DType.uint8`` gives ``UINT8``, not an 8-bit
    float held as bytes). Raises ``KeyError`` for a ``DType`` ONNX has no type for."""
    for elem, dt in _ONNX_TO_MAX.items():
        if dt == dtype:
            return elem
    raise KeyError(f"no ONNX element type for MAX {dtype}")


def numpy_of_max(dtype: DType) -> np.dtype:
    """numpy dtype of a MAX ``DType``, ``ml_dtypes.bfloat16`` included (``DType.to_numpy`` knows
    no bfloat16)."""
    if dtype in NARROW_FLOATS:
        return to_numpy(onnx_of_max(dtype))
    return np.dtype(dtype.to_numpy())


def is_narrow(dtype) -> bool:
    """Whether a numpy dtype is one of the ``ml_dtypes`` types of :data:`NARROW_FLOATS`."""
    try:
        return max_from_numpy(dtype) in NARROW_FLOATS
    except (KeyError, TypeError, ValueError):
        return False


def to_buffer(arr: np.ndarray):
    """A MAX ``Buffer`` on the host holding ``arr``: for bfloat16, its bytes as a same-width
    unsigned integer array reinterpreted as the MAX type (MAX 26.7's ``Buffer.from_numpy``
    cannot read ``ml_dtypes`` arrays); for the 8-bit floats, their bytes as uint8 (how onnx2max
    holds them, :data:`BYTE_FLOATS`); other arrays as they are."""
    from max import driver

    arr = c_contiguous(arr)
    if is_byte_float_dtype(arr.dtype):  # an 8-bit float: its bytes (BYTE_FLOATS)
        return driver.Buffer.from_numpy(arr.view(np.uint8))
    if not is_narrow(arr.dtype):
        return driver.Buffer.from_numpy(arr)
    dt = max_from_numpy(arr.dtype)
    return driver.Buffer.from_numpy(arr.view(NARROW_FLOATS[dt])).view(dt, list(arr.shape))


def from_buffer(buf) -> np.ndarray:
    """A host MAX ``Buffer`` as a numpy array: bfloat16 comes back as an ``ml_dtypes`` array
    (read through a same-width unsigned integer view)."""
    if buf.dtype in NARROW_FLOATS:
        wire = NARROW_FLOATS[buf.dtype]
        return buf.view(max_from_numpy(np.dtype(wire))).to_numpy().view(numpy_of_max(buf.dtype))
    return buf.to_numpy()


def from_numpy(dtype: np.dtype) -> int:
    """ONNX element type of a numpy dtype."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def max_from_numpy(dtype: np.dtype) -> DType:
    """MAX ``DType`` of a numpy dtype."""
    return to_max(from_numpy(dtype))


def c_contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` itself when C-contiguous, else a C-ordered copy (keeps 0-d arrays 0-d, unlike
    ``np.ascontiguousarray``)."""
    a = np.asarray(a)
    return a if a.flags.c_contiguous else np.array(a, order="C", copy=True)
