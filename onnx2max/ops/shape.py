"""Shape, indexing and type ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat,
Split, Slice, Gather, Expand, Shape, Size, Cast, Constant, ConstantOfShape, Range."""

from __future__ import annotations

import numpy as np
import onnx
from max.dtype import DType
from max.graph import ops

from .. import dtypes
from ..layout import ChannelsLast, last_axis_of_first, to_first_perm, to_last_perm
from ..lower import SymbolicValue, format_dims, input_shapes_hint, is_static, wide_layout
from ..prepare import shape_values
from ..registry import converter
from . import float8


def _ints(v) -> list[int]:
    return [int(a) for a in np.asarray(v).reshape(-1)]


def reshape_target(ctx, in_shape, shape, allowzero) -> list[int]:
    """ONNX ``Reshape`` target: 0 copies the input dim (unless ``allowzero``), -1 is inferred.
    With symbolic dims in the input or the target, the list keeps MAX dims and a -1 is left
    for MAX's ``ops.reshape`` to infer."""
    if not (is_static(in_shape) and is_static(shape)):
        out = []
        for i, d in enumerate(shape):
            if isinstance(d, int) and d == 0 and not allowzero:
                if i >= len(in_shape):
                    raise ctx.error(f"shape {shape} has 0 at dim {i}, beyond the input rank {len(in_shape)}")
                out.append(in_shape[i])
            else:
                out.append(d)
        if sum(1 for d in out if isinstance(d, int) and d == -1) > 1:
            raise ctx.error(f"shape {shape} has more than one -1")
        return out
    out = []
    for i, d in enumerate(shape):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise ctx.error(f"shape {shape} has 0 at dim {i}, beyond the input rank {len(in_shape)}")
            out.append(in_shape[i])
        else:
            out.append(d)
    total = int(np.prod(in_shape, dtype=np.int64))
    if out.count(-1) > 1:
        raise ctx.error(f"shape {shape} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ctx.error(f"cannot reshape {tuple(in_shape)} to {shape}")
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=np.int64)) != total or any(d < 0 for d in out):
        raise ctx.error(f"cannot reshape {tuple(in_shape)} ({total} elements) to {shape}")
    return out


@converter("Reshape", since=1)
def reshape_v1(ctx):
    """ONNX ``Reshape`` before opset 5: target in the ``shape`` attribute."""
    return ops.reshape(ctx.input(0), reshape_target(ctx, ctx.shape(0), _ints(ctx.attr("shape")), False))


@converter("Reshape", since=5)
def reshape_v5(ctx):
    """ONNX ``Reshape`` from opset 5: target as input 1, known at conversion; ``allowzero``
    (opset 14) keeps 0 as a real zero dim. A target computed from symbolic dims (``Shape ->
    Gather -> Concat``) gives MAX dims. MAX ``ops.reshape``."""
    dims = ctx.dims(0)
    target = reshape_target(ctx, dims, ctx.shape_value(1), int(ctx.attr("allowzero", 0) or 0))
    if is_static(dims) and is_static(target):
        return ops.reshape(ctx.input(0), target)
    try:
        return ops.reshape(ctx.input(0), target)
    except ValueError:
        raise ctx.error(
            f"cannot reshape {format_dims(dims)} to {format_dims(target)} for every size of the "
            "symbolic dims (a size the exporter traced may be fixed in the target: the model "
            "then runs only that size, in onnxruntime too). " + input_shapes_hint(ctx._l.p)
        ) from None


def _prod(dims):
    """Product of dims (``int`` or MAX ``Dim``), an ``int`` where all are static."""
    out = 1
    for d in dims:
        out = out * d
    return int(out) if isinstance(out, (int, np.integer)) else out


@converter("Flatten")
def flatten(ctx):
    """ONNX ``Flatten``: ``(prod(shape[:axis]), prod(shape[axis:]))``; negative axis from opset 11."""
    xs = ctx.dims(0)
    axis = int(ctx.attr("axis"))
    if axis < 0:
        axis += len(xs)
    if not 0 <= axis <= len(xs):
        raise ctx.error(f"axis {ctx.attr('axis')} out of range for rank {len(xs)}")
    return ops.reshape(ctx.input(0), [_prod(xs[:axis]), _prod(xs[axis:])])


@converter("Transpose")
def transpose(ctx):
    """ONNX ``Transpose``: ``perm`` (default: reversed axes). MAX ``ops.permute``, composed with
    the permute that made an input's channels-last form; an NHWC -> NCHW transpose costs
    nothing (its input is the output's channels-last form)."""
    r = ctx.rank(0)
    perm = ctx.attr("perm")
    perm = list(range(r))[::-1] if perm is None else [int(p) % r for p in perm]
    if sorted(perm) != list(range(r)):
        raise ctx.error(f"perm {perm} is not a permutation of {r} axes")
    if perm == list(range(r)):
        return ctx.input(0)
    if r >= 3 and ctx.only_last(0):  # compose with the permute that made the NHWC form
        tf = to_first_perm(r)
        composed = [tf[p] for p in perm]
        x = ctx.input_last(0)
        return x if composed == list(range(r)) else ops.permute(x, composed)
    if r >= 3 and perm == to_first_perm(r) and wide_layout() and not ctx.is_const(0):
        # NHWC -> NCHW (a model converted from TensorFlow): the input is the output's
        # channels-last form, so a following Conv or pool needs no permute at all
        return ChannelsLast(ctx.input(0))
    return ops.permute(ctx.input(0), perm)


def _axes(ctx, since_input: int):
    if ctx.opset >= since_input:
        return None if not ctx.has_input(1) else _ints(ctx.const(1))
    a = ctx.attr("axes")
    return None if a is None else _ints(a)


@converter("Squeeze")
def squeeze(ctx):
    """ONNX ``Squeeze``: ``axes`` attribute before opset 13, input from 13; none given squeezes
    every size-1 dim. Implemented as one ``ops.reshape``."""
    xs = ctx.dims(0)
    axes = _axes(ctx, 13)
    if axes is None:
        axes = [i for i, d in enumerate(xs) if isinstance(d, int) and d == 1]
    axes = {a % len(xs) for a in axes}
    for a in axes:
        if not isinstance(xs[a], int):
            raise ctx.error(f"cannot squeeze axis {a} of shape {xs}: it is symbolic "
                            f"('{xs[a]}'); fix it with input_shapes")
        if xs[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of shape {xs}: its size is {xs[a]}, not 1")
    return ops.reshape(ctx.input(0), [d for i, d in enumerate(xs) if i not in axes])


@converter("Unsqueeze")
def unsqueeze(ctx):
    """ONNX ``Unsqueeze``: ``axes`` (attribute before opset 13, input from 13) index the output.
    Implemented as one ``ops.reshape``."""
    xs = list(ctx.dims(0))
    axes = _axes(ctx, 13)
    if axes is None:
        raise ctx.error("no axes given")
    r = len(xs) + len(axes)
    axes = sorted(a % r for a in axes)
    if len(set(axes)) != len(axes):
        raise ctx.error(f"repeated axes {axes}")
    out, it = [], iter(xs)
    for i in range(r):
        out.append(1 if i in axes else next(it))
    if ctx.is_const(0):
        return ctx.const(0).reshape(out)
    return ops.reshape(ctx.input(0), out)


@converter("Concat")
def concat(ctx):
    """ONNX ``Concat`` along ``axis`` (negative from opset 4). Runs channels-last when every
    input already is. MAX ``ops.concat``."""
    idx = [i for i in range(ctx.num_inputs)
           if ctx.has_input(i) and not any(isinstance(d, int) and d == 0 for d in ctx.dims(i))]
    r = ctx.rank(idx[0]) if idx else ctx.rank(0)
    axis = int(ctx.attr("axis")) % r
    if not idx:
        return ctx.input(0)
    if r >= 3 and all(ctx.has_last(i) for i in idx):
        return ChannelsLast(ops.concat([ctx.input_last(i) for i in idx], axis=last_axis_of_first(axis, r)))
    if len(idx) == 1:
        return ctx.input(idx[0])
    return ops.concat([ctx.input(i) for i in idx], axis=axis)


@converter("Split", since=1)
def split(ctx):
    """ONNX ``Split``: sizes from the ``split`` attribute (before 13) or input (from 13), else
    equal parts; ``num_outputs`` (opset 18) allows a smaller last part. Splits the channels-last
    form when the input has one. MAX ``ops.split``."""
    xs = ctx.dims(0)
    axis = int(ctx.attr("axis")) % len(xs)
    dim = xs[axis]
    if not isinstance(dim, int):
        raise ctx.error(f"splits axis {axis}, which is symbolic ('{dim}') in {xs}: the split "
                        "axis must be static; fix it with input_shapes")
    if ctx.opset >= 13:
        sizes = _ints(ctx.const(1)) if ctx.has_input(1) else None
    elif ctx.opset >= 2:
        sizes = ctx.attr("split")
    else:
        sizes = _ints(ctx.const(1)) if ctx.has_input(1) else ctx.attr("split")
    n = ctx.num_outputs
    if sizes is None or len(sizes) == 0:
        if ctx.opset >= 18 and ctx.has_attr("num_outputs"):
            n = int(ctx.attr("num_outputs"))
            part = -(-dim // n)
            sizes = [part] * (n - 1) + [dim - part * (n - 1)]
        else:
            if dim % n:
                raise ctx.error(f"cannot split dim {axis} of size {dim} into {n} equal parts")
            sizes = [dim // n] * n
    sizes = [int(s) for s in sizes]
    if sum(sizes) != dim or any(s < 0 for s in sizes):
        raise ctx.error(f"split sizes {sizes} do not add up to dim {axis} of size {dim}")
    if len(sizes) == 1:
        return [ctx.input(0)]
    if len(xs) >= 3 and ctx.only_last(0):  # stay channels-last (a YOLO head's channel split)
        parts = ops.split(ctx.input_last(0), sizes, last_axis_of_first(axis, len(xs)))
        return [ChannelsLast(t) for t in parts]
    return ops.split(ctx.input(0), sizes, axis)


def _slice_axes(ctx, xs, starts, ends, axes, steps):
    """Slice ``axes`` (default: the first ``len(starts)``, negatives normalised) and ``steps``
    (default 1s), checked to match ``starts`` and ``ends`` in length."""
    r = len(xs)
    axes = list(range(len(starts))) if axes is None else [int(a) % r for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise ctx.error("starts, ends, axes and steps differ in length")
    return axes, steps


def _slice_spec(ctx, xs, starts, ends, axes, steps):
    axes, steps = _slice_axes(ctx, xs, starts, ends, axes, steps)
    index = [slice(None)] * len(xs)
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise ctx.error("a step of 0")
        n = xs[a]
        # ONNX clamps like numpy: python's slice.indices does the same arithmetic
        s = max(min(s, 1 << 62), -(1 << 62))
        e = max(min(e, 1 << 62), -(1 << 62))
        start, stop, step = slice(s, e, st).indices(n)
        length = len(range(start, stop, step))
        if step > 0:
            index[a] = (slice(start, start + step * length if length else start, step), length)
        else:
            stop_i = start + step * length
            index[a] = (slice(start, stop_i if stop_i >= 0 else -n - 1, step), length)
    return index


def _slice_symbolic(ctx, xs, starts, ends, axes, steps):
    """Slice indices where a sliced dim or a bound is symbolic: bounds go to MAX as they are
    (ints, MAX dims), so ONNX's clamping of out-of-range bounds cannot apply; a bound at or
    beyond 2**62 means "to the end". Positive steps only."""
    axes, steps = _slice_axes(ctx, xs, starts, ends, axes, steps)
    index = [slice(None)] * len(xs)
    big = 1 << 62
    for s_, e, a, st in zip(starts, ends, axes, steps):
        if st != 1:
            raise ctx.error(f"a step of {st} on axis {a} with symbolic dims or bounds ({xs}); "
                            "only step 1 is supported there: fix the dims with input_shapes")
        start = None if isinstance(s_, int) and (s_ == 0 or s_ <= -big) else s_
        stop = None if isinstance(e, int) and e >= big else e
        if isinstance(start, int) and start >= big:
            start = xs[a]
        index[a] = slice(start, stop, None)
    return index


def _needs_symbolic(xs, *bounds) -> bool:
    return not is_static(xs) or any(not isinstance(v, int) for b in bounds if b for v in b)


@converter("Slice", since=1)
def slice_v1(ctx):
    """ONNX ``Slice`` before opset 10: ``starts``/``ends``/``axes`` attributes."""
    xs = ctx.shape(0)
    idx = _slice_spec(ctx, xs, _ints(ctx.attr("starts")), _ints(ctx.attr("ends")),
                      ctx.attr("axes"), None)
    return _apply_slice(ctx, idx)


@converter("Slice", since=10)
def slice_v10(ctx):
    """ONNX ``Slice`` from opset 10: starts, ends, axes, steps as inputs known at conversion;
    out-of-range values clamp as in numpy; negative steps. Where a sliced dim or a bound is
    symbolic, bounds go to MAX unclamped (step 1 only). MAX ``ops.slice_tensor``."""
    xs = ctx.dims(0)
    axes = _ints(ctx.const(3)) if ctx.has_input(3) else None
    steps = _ints(ctx.const(4)) if ctx.has_input(4) else None
    starts, ends = ctx.shape_value(1), ctx.shape_value(2)
    if _needs_symbolic(xs, starts, ends):
        return ops.slice_tensor(ctx.input(0), _slice_symbolic(ctx, xs, starts, ends, axes, steps))
    idx = _slice_spec(ctx, xs, starts, ends, axes, steps)
    return _apply_slice(ctx, idx)


def _apply_slice(ctx, idx):
    xs = ctx.dims(0)
    if all(i == slice(None) or (isinstance(i, tuple) and i[1] == xs[k] and (i[0].step or 1) > 0)
           for k, i in enumerate(idx)):
        return ctx.input(0)
    if len(xs) >= 3 and ctx.only_last(0):  # slice the channels-last form with permuted indices
        return ChannelsLast(ops.slice_tensor(ctx.input_last(0), [idx[a] for a in to_last_perm(len(xs))]))
    return ops.slice_tensor(ctx.input(0), idx)


@converter("Gather")
def gather(ctx):
    """ONNX ``Gather`` along ``axis`` (any axis; negative indices count from the end).
    Indices known at conversion are normalised (a scalar one becomes a slice); others go to
    MAX ``ops.gather`` (a 0-d index tensor is gathered as shape [1], then the axis dropped)."""
    xs = ctx.dims(0)
    axis = int(ctx.attr("axis")) % len(xs)
    x = ctx.input(0)
    if ctx.is_const(1) and not isinstance(xs[axis], int):
        idx = ctx.const(1).astype(np.int64)
        if np.any(idx < 0):
            raise ctx.error(f"negative indices {idx.tolist()} on axis {axis}, which is symbolic "
                            f"('{xs[axis]}'): fix it with input_shapes")
        if idx.ndim == 0:
            return ops.slice_tensor(x, [slice(None)] * axis + [int(idx)])
        return ops.gather(x, ctx.constant(idx), axis=axis)
    if ctx.is_const(1):
        idx = ctx.const(1).astype(np.int64)
        if np.any((idx < -xs[axis]) | (idx >= xs[axis])):
            raise ctx.error(f"indices {idx.tolist()} out of range for axis {axis} of size {xs[axis]}")
        idx = idx % xs[axis]
        if idx.ndim == 0:
            return ops.slice_tensor(x, [slice(None)] * axis + [int(idx)])
        return ops.gather(x, ctx.constant(idx), axis=axis)
    idx = ctx.input(1)
    if idx.dtype not in (DType.int32, DType.int64):
        raise ctx.error(f"indices of type {idx.dtype}; expected int32 or int64")
    if idx.rank == 0:
        y = ops.gather(x, ops.reshape(idx, [1]), axis=axis)
        return ops.reshape(y, [d for i, d in enumerate(xs) if i != axis])
    return ops.gather(x, idx, axis=axis)


def _broadcast_dims(ctx, a, b) -> list:
    """numpy broadcasting of two shapes holding MAX dims: 1 stretches; a symbolic dim meets
    only 1 or itself."""
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + list(a)
    b = [1] * (n - len(b)) + list(b)
    out = []
    for p, q in zip(a, b):
        if isinstance(p, int) and p == 1:
            out.append(q)
        elif isinstance(q, int) and q == 1:
            out.append(p)
        elif p == q:
            out.append(p)
        else:
            raise ctx.error(f"cannot broadcast {tuple(a)} to {tuple(b)} with symbolic dims "
                            f"(dim {p} against {q}): fix the dims with input_shapes")
    return out


@converter("Expand")
def expand(ctx):
    """ONNX ``Expand``: broadcast to ``broadcast(shape(input), shape)`` (bidirectional).
    MAX ``ops.broadcast_to``."""
    xs = ctx.dims(0)
    target = ctx.shape_value(1)
    if is_static(xs) and is_static(target):
        try:
            out = list(np.broadcast_shapes(tuple(xs), tuple(target)))
        except ValueError:
            raise ctx.error(f"cannot broadcast {tuple(xs)} to {tuple(target)}") from None
    else:
        out = _broadcast_dims(ctx, xs, target)
    x = ctx.input(0)
    if len(out) > len(xs):
        x = ops.reshape(x, [1] * (len(out) - len(xs)) + list(xs))
    if list(out) == list(xs):
        return x
    return ops.broadcast_to(x, out)


def _shape_value(ctx, v: np.ndarray):
    return SymbolicValue(v, onnx.TensorProto.INT64) if v.dtype == object else v


@converter("Shape")
def shape(ctx):
    """ONNX ``Shape`` (``start``/``end`` from opset 15): known at conversion; where the input
    has symbolic dims, a symbolic shape value (:mod:`onnx2max.symbolic`) that Reshape, Expand,
    ConstantOfShape and Range take as MAX dims."""
    ctx.attr("start"), ctx.attr("end")  # applied by shape_values, which reads the node itself
    return _shape_value(ctx, shape_values(ctx.node, ctx.dims(0)))


@converter("Size")
def size(ctx):
    """ONNX ``Size``: number of elements, known at conversion (an expression of the symbolic
    dims where the input has some)."""
    return _shape_value(ctx, shape_values(ctx.node, ctx.dims(0)))


def _cast(ctx, x, to: int, src: int | None = None):
    if not dtypes.is_supported(to):
        raise ctx.error(f"cast to {dtypes.onnx_type_name(to)}, which MAX does not have")
    saturate = bool(ctx.attr("saturate", 1)) if ctx.opset >= 19 else True
    if src is not None and dtypes.is_byte_float(src):  # 8-bit float bytes -> float32
        if to == src:
            return x
        x = float8.decode(x, src)
    if dtypes.is_byte_float(to):  # -> 8-bit float bytes
        try:
            return float8.encode(x, to, saturate)
        except ValueError as e:
            raise ctx.error(str(e)) from None
    target = dtypes.to_max(to)
    if x.dtype == target:
        return x
    if target == DType.bool:
        return ops.not_equal(x, ctx.constant(np.zeros((), dtype=dtypes.numpy_of_max(x.dtype)),
                                             x.dtype))
    return ops.cast(x, target)


@converter("Cast")
def cast(ctx):
    """ONNX ``Cast`` to the type ``to``; float -> int truncates toward zero; -> bool is
    ``x != 0``; to and from bfloat16 too. MAX ``ops.cast``. The 8-bit floats (held as bytes)
    through :mod:`onnx2max.ops.float8`, with ``saturate`` (opset 19); to FLOAT8E8M0 is not
    supported (``round_mode``), nor the 2- and 4-bit types."""
    if ctx.opset >= 25:
        ctx.not_applicable("round_mode")  # for FLOAT8E8M0 only, which is refused as a target
    return _cast(ctx, ctx.input(0), int(ctx.attr("to")), ctx.elem_type(0))


@converter("CastLike", since=15)
def cast_like(ctx):
    """ONNX ``CastLike``: cast input 0 to input 1's element type (``saturate``, opset 19, for
    the 8-bit floats)."""
    if ctx.opset >= 25:
        ctx.not_applicable("round_mode")
    to = ctx.elem_type(1) or dtypes.onnx_of_max(ctx.dtype(1))
    return _cast(ctx, ctx.input(0), to, ctx.elem_type(0))


@converter("Constant")
def constant(ctx):
    """ONNX ``Constant``: its value, known at conversion (normally folded before lowering)."""
    for name in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if ctx.has_attr(name):
            v = ctx.attr(name)
            if name.startswith("value_float"):
                return np.asarray(v, dtype=np.float32)
            if name.startswith("value_int"):
                return np.asarray(v, dtype=np.int64)
            return np.asarray(v)
    raise ctx.error("only tensor, float(s) and int(s) values are supported")


@converter("ConstantOfShape")
def constant_of_shape(ctx):
    """ONNX ``ConstantOfShape``: a tensor of ``shape`` (known at conversion) filled with
    ``value`` (default float32 0). MAX ``ops.broadcast_to`` of a scalar constant."""
    target = ctx.shape_value(0)
    value = ctx.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    scalar = ctx.constant(value.reshape(()))
    if not target:
        return scalar
    return ops.broadcast_to(scalar, target)


@converter("Range")
def range_(ctx):
    """ONNX ``Range``: ``start, start + delta, ...`` below ``limit``. Its length depends on the
    values, so all three must be known at conversion (they normally are, and it is folded),
    except that ``start`` and ``limit`` may be symbolic dims (``arange(seq)`` of a sequence
    length) with ``delta`` 1: MAX ``ops.range`` with the output dim ``limit - start``."""
    start, limit, delta = (ctx.shape_value(i) for i in range(3))
    if any(len(v) != 1 for v in (start, limit, delta)):
        raise ctx.error("start, limit and delta must be scalars")
    (start,), (limit,), (delta,) = start, limit, delta
    if isinstance(start, int) and isinstance(limit, int):
        return np.arange(start, limit, delta).astype(ctx.const(0).dtype)
    if delta != 1:
        raise ctx.error(f"a symbolic start or limit ({start}, {limit}) with delta {delta}; only "
                        "delta 1 is supported there: fix the dims with input_shapes")
    dt = ctx.dtype(0)
    length = limit - start
    return ops.range(ctx.input(0), ctx.input(1), ctx.constant(np.array(1), dt), out_dim=length,
                     dtype=dt, device=ctx.device)


@converter("EyeLike", since=9)
def eye_like(ctx):
    """ONNX ``EyeLike``: ones on diagonal ``k`` of a 2-D tensor of the input's shape, in
    ``dtype`` (default the input's). Depends only on the (static) shape: a constant."""
    shape = ctx.shape(0)
    if len(shape) != 2:
        raise ctx.error(f"input has rank {len(shape)}; EyeLike needs 2-D")
    dt = ctx.attr("dtype", None)
    target = dtypes.to_max(int(dt)) if dt is not None else ctx.dtype(0)
    eye = np.eye(shape[0], shape[1], k=int(ctx.attr("k")))
    return ctx.constant(eye.astype(dtypes.numpy_of_max(target)), target)
