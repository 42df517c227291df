"""Stage 5: the compiled model, run with onnxruntime's conventions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import ml_dtypes
import numpy as np

from max.driver import Buffer as _Buffer

from . import dtypes
from .compiler import Built, Device
from .errors import RUN_CHECK, InputError


@dataclass(frozen=True)
class IOSpec:
    """A graph input or output: ``name``, ``shape`` (a tuple of ``int`` for static dims and
    ``str`` for symbolic ones, e.g. ``("batch", 3, 224, 224)``, as onnxruntime shows them),
    numpy ``dtype``, and for inputs whether the model has a ``default`` (an initializer,
    IR >= 4)."""

    name: str
    shape: tuple[int | str, ...]
    dtype: np.dtype
    has_default: bool = False

    @property
    def type(self) -> str:
        """onnxruntime-style type string, e.g. ``tensor(float)``."""
        names = {"float32": "float", "float64": "double"}
        return f"tensor({names.get(self.dtype.name, self.dtype.name)})"


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "__dlpack__")


def _scalar_bool(a: np.ndarray):
    """MAX 26.7 cannot take a 0-d bool array (``Buffer.from_dlpack`` fails viewing it as bool):
    pass it as a 1-byte buffer viewed as a 0-d bool ``Buffer`` instead."""
    if a.ndim == 0 and a.dtype == np.bool_:
        from max import driver
        from max.dtype import DType

        return driver.Buffer.from_numpy(a.reshape(1).view(np.uint8).copy()).view(DType.bool, ())
    return a


# torch dtypes (``torch.<name>``) that numpy holds only as the ml_dtypes type of the same name
_NARROW_NAMES = ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
                 "float8_e8m0fnu")


def _to_torch(torch, a: np.ndarray):
    """A numpy output as a torch tensor; ml_dtypes arrays (bfloat16) through their bytes,
    reinterpreted as the torch dtype of the same name."""
    a = dtypes.c_contiguous(a)
    if a.dtype.name in _NARROW_NAMES:
        wire = np.int16 if a.dtype.itemsize == 2 else np.uint8
        return torch.from_numpy(a.view(wire)).view(getattr(torch, a.dtype.name))
    return torch.from_numpy(a)


class CompiledModel:
    """An ONNX model compiled by MAX, ready to run.

    Created by :func:`onnx2max.from_onnx`. Inputs and outputs follow onnxruntime's
    ``InferenceSession``: :meth:`run` takes ``{input name: array}`` and returns a list of numpy
    arrays. numpy arrays are taken as they are (non-contiguous ones are copied); torch tensors
    on the CPU are taken through DLPack and, when any input is a torch tensor, :meth:`__call__`
    returns torch tensors. Arrays and tensors must match the input's dtype and shape exactly:
    they are never cast. Python lists and scalars are converted to the input's dtype.
    Refused with :class:`~onnx2max.errors.InputError` before anything reaches MAX: unknown or
    missing names, another dtype or shape, object arrays, lists that do not convert, torch
    tensors or MAX buffers on another device than a CPU model's, torch dtypes numpy lacks.

    Attributes:
        inputs / outputs: lists of :class:`IOSpec`.
        source: the model file, or ``"<ModelProto>"``.
        device: ``"cpu"`` or ``"gpu:N"``.
        cache_hit: whether the compiled graph came from the compile cache.
        compile_seconds: wall time of the compile or the cache load, in seconds.
        stats: a :class:`~onnx2max.compiler.ConversionStats`: seconds spent in load, prepare,
            lower, MAX compile and the cache, node and MAX op counts, and how the cache served
            the model (shared by the models of one ``from_onnx_many`` call).
    """

    def __init__(self, built: Built, device: Device):
        p = built.prepared
        self._built = built
        self._model = built.model
        self._device = device
        self._accelerator = None  # the driver.Accelerator of a GPU model, made on first use
        self._defaults = {k: dtypes.c_contiguous(v) for k, v in p.defaults.items()}
        self.inputs = [IOSpec(s.name, s.shape, s.dtype, s.name in p.defaults) for s in p.inputs]
        self.outputs = [IOSpec(s.name, s.shape, s.dtype) for s in built.outputs]
        self.source = p.source
        self.device = device.label
        self.cache_hit = built.cache_hit
        self.compile_seconds = built.compile_seconds
        self.stats = built.stats
        self._out_index = {s.name: i for i, s in enumerate(self.outputs)}

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}: {s.dtype}{list(s.shape)}" for s in self.inputs)
        outs = ", ".join(f"{s.name}: {s.dtype}{list(s.shape)}" for s in self.outputs)
        return f"CompiledModel({self.source!r}, device={self.device!r}, inputs=[{ins}], outputs=[{outs}])"

    def get_inputs(self) -> list[IOSpec]:
        """The graph inputs (as onnxruntime's ``InferenceSession.get_inputs``)."""
        return list(self.inputs)

    def get_outputs(self) -> list[IOSpec]:
        """The graph outputs (as onnxruntime's ``InferenceSession.get_outputs``)."""
        return list(self.outputs)

    # ---- inputs
    def _to_numpy(self, spec: IOSpec, value: Any) -> np.ndarray:
        if _is_torch(value):
            dev = getattr(value, "device", None)
            if dev is not None and getattr(dev, "type", "cpu") != "cpu":
                raise InputError(
                    f"input '{spec.name}' is a torch tensor on {dev}; this model runs on "
                    f"{self.device}: pass value.cpu()"
                )
            value = value.detach()
            if getattr(value, "is_conj", lambda: False)():
                value = value.resolve_conj()
            narrow = str(value.dtype).removeprefix("torch.")
            if narrow in _NARROW_NAMES:  # numpy has no bfloat16: read the bytes
                import torch

                bits = value.contiguous().view(torch.int16 if value.element_size() == 2 else torch.uint8)
                return np.from_dlpack(bits).view(np.dtype(getattr(ml_dtypes, narrow)))
            try:
                return np.from_dlpack(value.contiguous())
            except (TypeError, RuntimeError, BufferError) as e:
                raise InputError(
                    f"input '{spec.name}' is a torch tensor of dtype {value.dtype}, which numpy "
                    f"cannot take ({e}); the model expects {spec.dtype}"
                ) from e
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise InputError(
                    f"input '{spec.name}' is a numpy array of Python objects; the model expects "
                    f"{spec.dtype} with shape {spec.shape}"
                )
            return value
        if hasattr(value, "to_numpy") and type(value).__module__.startswith("max"):
            dev = getattr(value, "device", None)
            if dev is not None and not getattr(dev, "is_host", True) and self._device.is_cpu:
                raise InputError(
                    f"input '{spec.name}' is a MAX buffer on {dev}; this model runs on "
                    f"{self.device}: copy it to the CPU first (buffer.to(CPU()))"
                )
            return dtypes.from_buffer(value)
        if isinstance(value, (list, tuple, int, float, bool, np.generic)):
            try:
                return np.asarray(value, dtype=spec.dtype)
            except (ValueError, TypeError, OverflowError) as e:
                raise InputError(
                    f"input '{spec.name}' is a {type(value).__name__} that cannot be converted to "
                    f"{spec.dtype} with shape {spec.shape}: {e}"
                ) from e
        raise InputError(
            f"input '{spec.name}' is a {type(value).__name__}; expected a numpy array, a torch "
            "tensor or a max.driver.Buffer"
        )

    def _check(self, spec: IOSpec, arr: np.ndarray, bound: dict[str, tuple[int, str]]) -> np.ndarray:
        """``arr`` checked against ``spec``: dtype, rank, static dims, and symbolic dims against
        the sizes other inputs gave the same dim name (``bound``: name -> (size, input))."""
        if arr.dtype != spec.dtype:
            raise InputError(
                f"input '{spec.name}' has dtype {arr.dtype}; the model expects {spec.dtype} "
                f"with shape {spec.shape}: convert it to {spec.dtype.name} first"
            )
        shape = tuple(arr.shape)
        if len(shape) != len(spec.shape) or any(
                isinstance(d, int) and d != a for d, a in zip(spec.shape, shape)):
            fixed = all(isinstance(d, int) for d in spec.shape)
            raise InputError(
                f"input '{spec.name}' has shape {shape}; the model was compiled for "
                f"{_fmt(spec.shape)}: pass an array of that shape"
                + (". (MAX runs static shapes; where the ONNX model leaves dims symbolic, "
                   "another conversion with from_onnx(..., input_shapes=...) or the CLI's "
                   "--input-shape fixes other sizes, and from_onnx(..., dynamic=...) keeps "
                   "them symbolic)" if fixed else "")
            )
        for d, a in zip(spec.shape, shape):
            if isinstance(d, str):
                if d in bound and bound[d][0] != a:
                    size, other = bound[d]
                    raise InputError(
                        f"input '{spec.name}' has shape {shape}: its dim '{d}' is {a}, but input "
                        f"'{other}' gave '{d}' the size {size}; inputs that share a symbolic dim "
                        f"must agree on it (the model expects {_fmt(spec.shape)})"
                    )
                bound.setdefault(d, (a, spec.name))
        return dtypes.c_contiguous(arr)

    def _feed(self, feed: Mapping[str, Any]) -> tuple[list[np.ndarray], bool]:
        if not isinstance(feed, Mapping):
            raise InputError(
                f"inputs must be a mapping {{input name: array}}, not {type(feed).__name__}"
            )
        names = [s.name for s in self.inputs]
        unknown = [k for k in feed if k not in names]
        if unknown:
            raise InputError(f"unknown input name(s) {unknown}; the model's inputs are {names}")
        arrays, missing, any_torch = [], [], False
        bound: dict[str, tuple[int, str]] = {}
        for spec in self.inputs:
            if spec.name in feed:
                v = feed[spec.name]
                any_torch |= _is_torch(v)
                arrays.append(self._check(spec, self._to_numpy(spec, v), bound))
            elif spec.name in self._defaults:
                arrays.append(self._check(spec, self._defaults[spec.name], bound))
            else:
                missing.append(spec.name)
        if missing:
            raise InputError(
                f"missing input(s) {missing}; expected "
                + ", ".join(f"{s.name}: {s.dtype}{list(s.shape)}" for s in self.inputs)
            )
        return arrays, any_torch

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        # bfloat16 arrays (ml_dtypes) go in as MAX buffers (dtypes.to_buffer)
        arrays = [dtypes.to_buffer(a) if dtypes.is_narrow(a.dtype) or dtypes.is_byte_float_dtype(a.dtype)
                  else _scalar_bool(a) for a in arrays]
        if self._device.is_cpu:
            # numpy arrays (C-contiguous: _check) handed over as Buffers sharing their memory:
            # MAX's execute takes a Buffer at once, while a numpy argument goes through
            # isinstance checks against a runtime Protocol that cost more than the call itself
            # on a small model (docs/performance.md, per-call overhead)
            args = [_Buffer.from_dlpack(a) if type(a) is np.ndarray else a for a in arrays]
        else:
            if self._accelerator is None:  # one per model, not one per call
                from max import driver

                self._accelerator = driver.Accelerator(int(self.device.split(":")[1]))
            acc = self._accelerator
            args = [(a if hasattr(a, "to") and not isinstance(a, np.ndarray)
                     else _Buffer.from_numpy(a)).to(acc) for a in arrays]
        try:
            results = self._model.execute(*args)
        except ValueError as e:  # a run-time check of the graph (errors.RUN_CHECK) failed
            # MAX prints the message between control characters: take the printable run after it
            check = re.search(re.escape(RUN_CHECK) + r"([^\x00-\x1f]*)", str(e))
            if check is None:
                raise
            raise InputError(check.group(1)) from None
        outs = [dtypes.from_buffer(r) if hasattr(r, "to_numpy") else np.asarray(r) for r in results]
        # 8-bit float outputs come back as their bytes (uint8): viewed as the ml_dtypes type
        return [o.view(s.dtype) if o.dtype == np.uint8 and s.dtype != o.dtype and s.dtype.itemsize == 1
                else o for o, s in zip(outs, self.outputs)]

    # ---- public
    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: Any = None,
    ) -> list[np.ndarray]:
        """Run the model, as onnxruntime's ``InferenceSession.run``.

        Args:
            output_names: names of the outputs wanted, in order; ``None`` for all.
            input_feed: ``{input name: array}``; inputs with a default may be left out.
                Arrays must have the input's exact dtype and shape (see :attr:`inputs`).
            run_options: accepted for compatibility with onnxruntime; ignored.

        Returns:
            A list of numpy arrays, one per requested output.

        Raises:
            InputError: unknown, missing, wrongly typed or shaped inputs; unknown output names;
                a size the graph checks when it runs (a symbolic dim that an op needs equal to
                another, as BatchNormalization's parameters to X's channel count).
        """
        if output_names is not None:
            bad = [n for n in output_names if n not in self._out_index]
            if bad:
                raise InputError(
                    f"unknown output name(s) {bad}; the model's outputs are {list(self._out_index)}"
                )
        arrays, _ = self._feed(input_feed)
        outs = self._execute(arrays)
        if output_names is None:
            return outs
        return [outs[self._out_index[n]] for n in output_names]

    def __call__(self, *args, **kwargs):
        """Run with inputs by position (in :attr:`inputs` order) and/or by name.

        Returns the output itself when the model has one output, else a list. When any input
        is a torch tensor, outputs are torch tensors (CPU), else numpy arrays.
        """
        names = [s.name for s in self.inputs]
        if len(args) > len(names):
            raise InputError(f"{len(args)} positional inputs given; the model has {len(names)}: {names}")
        feed = dict(zip(names, args))
        dup = [k for k in kwargs if k in feed]
        if dup:
            raise InputError(f"input(s) {dup} given both by position and by name")
        feed.update(kwargs)
        arrays, any_torch = self._feed(feed)
        outs = self._execute(arrays)
        if any_torch:
            import torch

            outs = [_to_torch(torch, o) for o in outs]
        return outs[0] if len(outs) == 1 else outs
