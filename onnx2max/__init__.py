"""onnx2max: translate ONNX models into compiled Modular MAX graphs.

>>> import onnx2max
>>> model = onnx2max.from_onnx("model.onnx", input_shapes={"x": (1, 3, 224, 224)})
>>> (y,) = model.run(None, {"x": x})
"""

from .api import from_onnx, from_onnx_many
from .compare import Comparison, NodeDiff, compare
from .compiler import ConversionStats
from .errors import (
    CompileError,
    ConversionError,
    DeviceError,
    InputError,
    InvalidModelError,
    ModelLoadError,
    Onnx2MaxError,
    ReferenceRunError,
    UnsupportedModelError,
    UnsupportedOpError,
)
from .model import CompiledModel, IOSpec
from .registry import supported_ops

__version__ = "0.1.0"

__all__ = [
    "from_onnx",
    "from_onnx_many",
    "compare",
    "Comparison",
    "NodeDiff",
    "CompiledModel",
    "IOSpec",
    "ConversionStats",
    "supported_ops",
    "Onnx2MaxError",
    "ModelLoadError",
    "InvalidModelError",
    "ReferenceRunError",
    "UnsupportedOpError",
    "UnsupportedModelError",
    "ConversionError",
    "CompileError",
    "DeviceError",
    "InputError",
    "__version__",
]
