"""The PyTorch-to-MAX converter API of onnx2max's predecessor, on top of the ONNX path.

Code written for the predecessor keeps working after one import change::

    from export import convert_pytorch_model, PyTorchToMAXConverter

The module is exported to ONNX with fixed shapes (:func:`export.to_onnx`) and translated by
:func:`onnx2max.from_onnx`; there is no layer-by-layer mapping, so every layer torch can export
is covered, ``nn.MultiheadAttention`` included.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from max.dtype import DType

from onnx2max.dtypes import c_contiguous, from_buffer, to_buffer
from onnx2max.errors import ConversionError

from .onnx_export import from_torch

_TORCH_DTYPES = {
    DType.float32: "float32",
    DType.float64: "float64",
    DType.float16: "float16",
    DType.bfloat16: "bfloat16",
}


class MAXModel:
    """A converted model with the predecessor's ``execute(*inputs) -> list[Buffer]``.

    Attributes:
        name: the ``model_name`` given at conversion.
        model: the underlying :class:`onnx2max.CompiledModel` (``run``/``__call__`` as onnxruntime).
    """

    def __init__(self, model, name: str, device_label: str):
        self.model = model
        self.name = name
        self._device = device_label

    def __repr__(self) -> str:
        return f"MAXModel({self.name!r}, {self.model!r})"

    def execute(self, *inputs) -> list:
        """Run with positional inputs: ``max.driver.Buffer`` (or the older ``Tensor``), numpy
        arrays or torch tensors. Returns a list of ``max.driver.Buffer`` (on the model's device).
        """
        from max import driver

        arrays = []
        for x in inputs:
            if hasattr(x, "to_numpy") and type(x).__module__.startswith("max"):
                x = from_buffer(x)  # bfloat16 buffers too
            arrays.append(x)
        outs = self.model.run(None, dict(zip([s.name for s in self.model.inputs], arrays)))
        bufs = [to_buffer(c_contiguous(o)) for o in outs]
        if self._device != "cpu":
            acc = driver.Accelerator(int(self._device.split(":")[1]))
            bufs = [b.to(acc) for b in bufs]
        return bufs

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)


class PyTorchToMAXConverter:
    """Converts ``torch.nn.Module``s to MAX models through ONNX.

    Args:
        device: a MAX ``DeviceRef`` (``DeviceRef.CPU()`` or ``DeviceRef.GPU()``) or a name
            ("cpu", "gpu"). Default: CPU.
        dtype: the model's floating-point ``DType``. float32 is the default; float64, float16
            and bfloat16 convert the module's parameters first and work where MAX has kernels
            for them on that device (otherwise a :class:`onnx2max.ConversionError` or
            :class:`onnx2max.CompileError` says what failed).
        cache_dir: passed to :func:`onnx2max.from_onnx`.

    Raises:
        DeviceError (at conversion): a GPU asked for on a machine without one.
    """

    def __init__(self, device=None, dtype: DType = DType.float32, cache_dir=None):
        self.device = device if device is not None else "cpu"
        if dtype not in _TORCH_DTYPES:
            raise ConversionError(
                f"dtype {dtype} is not a floating-point type onnx2max can convert a torch model to; "
                f"use one of {', '.join(str(d) for d in _TORCH_DTYPES)}"
            )
        self.dtype = dtype
        self.cache_dir = cache_dir

    def convert_model(
        self,
        pytorch_model,
        input_shapes: Sequence[Any],
        model_name: str = "model",
    ) -> MAXModel:
        """Export ``pytorch_model`` with fixed ``input_shapes`` and compile it with MAX.

        Args:
            pytorch_model: a ``torch.nn.Module`` (put in eval mode).
            input_shapes: one entry per input: a shape (a float input of the converter's dtype)
                or a ``(shape, torch dtype)`` pair for integer inputs such as token ids.
            model_name: a name for the model (``MAXModel.name``).

        Returns:
            A :class:`MAXModel`.
        """
        import torch

        tdtype = getattr(torch, _TORCH_DTYPES[self.dtype])
        module = pytorch_model.eval()
        if self.dtype != DType.float32:
            # a converted copy: nn.Module.to() would change the caller's module in place
            module = copy.deepcopy(module).to(tdtype)
        shapes = []
        for item in input_shapes:
            pair = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], (tuple, list))
            shapes.append(item if pair else (tuple(item), tdtype))
        model = from_torch(module, input_shapes=shapes, device=self.device, cache_dir=self.cache_dir)
        return MAXModel(model, model_name, model.device)


def convert_pytorch_model(
    model,
    input_shapes: Sequence[Any],
    model_name: str = "model",
    device=None,
    dtype: DType = DType.float32,
) -> MAXModel:
    """Convert a torch module to MAX in one call (the predecessor's ``convert_pytorch_model``).

    See :meth:`PyTorchToMAXConverter.convert_model` for the arguments.
    """
    return PyTorchToMAXConverter(device=device, dtype=dtype).convert_model(
        pytorch_model=model, input_shapes=input_shapes, model_name=model_name
    )
