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


def onnx_type_name(elem_type: int) -> str:
    """Name of an ONNX element type, e.g. ``FLOAT``; ``type <n>`` when unknown."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"


def is_supported(elem_type: int) -> bool:
    """Whether MAX has an equivalent of this ONNX element type."""
    return elem_type in _ONNX_TO_MAX


def to_max(elem_type: int) -> DType:
    """MAX ``DType`` of an ONNX element type. Raises ``KeyError`` when MAX has none."""
    return _ONNX_TO_MAX[elem_type]


def to_numpy(elem_type: int) -> np.dtype:
    """numpy dtype of an ONNX element type (bfloat16 is not a numpy type: raises ``KeyError``)."""
    if elem_type == TensorProto.BFLOAT16:
        raise KeyError("bfloat16 has no numpy dtype")
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


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
