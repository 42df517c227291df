"""PyTorch -> ONNX with fixed shapes, and PyTorch -> MAX through onnx2max.

Needs torch (``pip install 'onnx2max[torch]'``); the translator itself does not.
"""

from .onnx_export import from_torch, to_onnx
from .converter import PyTorchToMAXConverter, convert_pytorch_model

__all__ = ["to_onnx", "from_torch", "PyTorchToMAXConverter", "convert_pytorch_model"]
