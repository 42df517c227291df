"""Export a torch module to ONNX with fixed shapes, and convert it with onnx2max."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Mapping, Sequence

import onnx

from onnx2max.errors import ConversionError

#: opset used when none is asked for (LayerNormalization, Gelu-free decompositions, Split v18).
DEFAULT_OPSET = 18


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "exporting from PyTorch needs torch: pip install 'onnx2max[torch]' (torch==2.13.0)"
        ) from e
    return torch


def example_inputs_from_shapes(input_shapes: Sequence[Any], seed: int = 0) -> tuple:
    """Example tensors for ``input_shapes``: a list of shapes (float32, standard normal) or of
    ``(shape, dtype)`` pairs (integer dtypes get zeros, e.g. token ids)."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    out = []
    for item in input_shapes:
        if (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], (tuple, list))):
            shape, dtype = tuple(item[0]), item[1]
        else:
            shape, dtype = tuple(item), torch.float32
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        if dtype.is_floating_point:
            out.append(torch.randn(shape, generator=g).to(dtype))
        elif dtype == torch.bool:
            out.append(torch.zeros(shape, dtype=torch.bool))
        else:
            out.append(torch.zeros(shape, dtype=dtype))
    return tuple(out)


def _as_inputs(example_inputs=None, input_shapes=None) -> tuple:
    torch = _torch()
    if example_inputs is not None and input_shapes is not None:
        raise ValueError("give example_inputs or input_shapes, not both")
    if example_inputs is None:
        if input_shapes is None:
            raise ValueError("give example_inputs (tensors) or input_shapes (shapes)")
        return example_inputs_from_shapes(input_shapes)
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    items = tuple(example_inputs)
    if items and not isinstance(items[0], torch.Tensor):
        return example_inputs_from_shapes(items)
    return items


def to_onnx(
    module,
    example_inputs=None,
    path: str | os.PathLike | None = None,
    *,
    input_shapes: Sequence[Any] | None = None,
    opset: int | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic: Mapping[int, Mapping[int, str]] | None = None,
) -> Path:
    """Export ``module`` (in eval mode) to an ONNX file with fixed shapes, or with the axes
    ``dynamic`` names left symbolic.

    Uses ``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``), which gives the
    most compact graphs on torch 2.13; when it fails, the dynamo exporter is tried, and the
    first failure is reported if both fail. With ``dynamic``, only the dynamo exporter is used
    (``dynamic_shapes`` of ``torch.export.Dim``): the TorchScript exporter's ``dynamic_axes``
    keeps sizes it traced in some reshapes (``nn.MultiheadAttention``'s sequence length), so
    its models run other sizes in neither onnxruntime nor MAX. The result is checked with the
    ONNX checker.

    Args:
        module: a ``torch.nn.Module``.
        example_inputs: a tensor, a tuple of tensors, or a list of shapes (then as input_shapes).
        path: where to write the ``.onnx`` file.
        input_shapes: shapes (float32) or ``(shape, dtype)`` pairs, instead of example_inputs.
        opset: ONNX opset (default 18).
        input_names / output_names: graph input and output names (default ``input_0``...).
        dynamic: ``{input index: {axis: dim name}}``, e.g. ``{0: {0: "batch", 1: "seq"}}``:
            those axes become ``dim_param`` dims of the ONNX inputs (a size of 1 in the example
            input may be specialised by torch.export; give examples of size 2 or more).

    Returns:
        The path written.

    Raises:
        ConversionError: both exporters failed, or the checker rejects the result.
    """
    torch = _torch()
    if path is None:
        raise ValueError("path is required")
    args = _as_inputs(example_inputs, input_shapes)
    path = Path(path)
    module.eval()
    opset = opset or DEFAULT_OPSET
    names_in = list(input_names) if input_names else [f"input_{i}" for i in range(len(args))]
    kw = {"input_names": names_in, "opset_version": opset}
    if output_names:
        kw["output_names"] = list(output_names)
    errors = []
    if dynamic:
        dims: dict[str, Any] = {}
        shapes = []
        for i in range(len(args)):
            axes = dict(dynamic.get(i, {}))
            shapes.append({a: dims.setdefault(n, torch.export.Dim(n)) for a, n in axes.items()} or None)
        kw["dynamic_shapes"] = tuple(shapes)
    for dynamo in ((True,) if dynamic else (False, True)):
        try:
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                # not under no_grad: there eval-mode encoder layers take a fused fast path
                # that the TorchScript exporter cannot export
                extra = {}
                if dynamo:  # one self-contained file below protobuf's 2 GB limit
                    size = sum(t.numel() * t.element_size() for t in module.state_dict().values())
                    extra["external_data"] = size > 1_500_000_000
                torch.onnx.export(module, args, str(path), dynamo=dynamo, **kw, **extra)
            break
        except Exception as e:  # try the other exporter
            errors.append(f"{'dynamo' if dynamo else 'TorchScript'} exporter: {type(e).__name__}: {e}")
            if not dynamo:
                warnings.warn(f"onnx2max: the TorchScript exporter failed ({e}); trying the dynamo "
                              "exporter", RuntimeWarning, stacklevel=2)
    else:
        raise ConversionError(f"torch.onnx.export failed for {type(module).__name__}:\n  "
                              + "\n  ".join(errors))
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as e:
        raise ConversionError(f"{path}: the exported model fails the ONNX checker: {e}") from e
    return path


def from_torch(module, example_inputs=None, *, input_shapes=None, opset=None, **from_onnx_options):
    """Export ``module`` to ONNX (a temporary file, removed afterwards) and convert it.

    Args:
        module, example_inputs, input_shapes, opset: as for :func:`to_onnx`.
        **from_onnx_options: passed to :func:`onnx2max.from_onnx` (device, cache_dir, ...).

    Returns:
        An :class:`onnx2max.CompiledModel`.
    """
    from onnx2max import from_onnx

    with tempfile.TemporaryDirectory(prefix="onnx2max-") as d:
        path = to_onnx(module, example_inputs, Path(d) / "model.onnx",
                       input_shapes=input_shapes, opset=opset)
        return from_onnx(path, **from_onnx_options)
