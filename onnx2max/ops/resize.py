"""Resize and Upsample (ONNX sections of the same names), for every mode,
coordinate_transformation_mode, nearest_mode, antialias, cubic_coeff_a, exclude_outside,
keep_aspect_ratio_policy and extrapolation_value.

Resize is separable: each resized axis is an independent 1-D interpolation. With static
shapes, the 1-D interpolation of axis ``a`` is a fixed matrix ``W_a`` (out x in), so this
converter does not re-implement ONNX's coordinate rules: it asks onnx's reference evaluator
to resize the identity matrix along that axis with the node's own attributes, which gives
``W_a`` column by column. In the graph, ``nearest`` becomes an ``ops.gather`` of the chosen
indices (exact for any dtype) and the other modes a matmul with ``W_a`` (floats).
``tf_crop_and_resize`` adds the extrapolation value where the ROI leaves the input.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnx
from max.dtype import DType
from max.graph import TensorValue, ops
from onnx import helper, numpy_helper

from .. import dtypes
from ..layout import ChannelsLast
from ..lower import make_constant
from ..registry import converter
from .matmul import matmul_by_constant

_FLOATS = dtypes.MAX_FLOATS


def _reference_resize(attrs: dict, opset: int, x: np.ndarray, roi, scales, sizes) -> np.ndarray:
    """Run onnx's reference ``Resize`` on ``x`` (2-D, resized along axis 0)."""
    from onnx.reference import ReferenceEvaluator

    names, inits = ["X"], []
    for name, v in (("roi", roi), ("scales", scales), ("sizes", sizes)):
        if v is None:
            names.append("")
        else:
            names.append(name)
            dt = np.int64 if name == "sizes" else np.float32
            inits.append(numpy_helper.from_array(np.asarray(v, dt), name))
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node("Resize", names, ["Y"], **attrs)
    g = helper.make_graph([node], "r", [helper.make_tensor_value_info("X", onnx.TensorProto.DOUBLE, x.shape)],
                          [helper.make_empty_tensor_value_info("Y")], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return np.asarray(ReferenceEvaluator(m).run(None, {"X": x.astype(np.float64)})[0])


#: most elements of the basis tensor that builds one axis's weights under keep_aspect_ratio_policy
_ASPECT_BASIS_LIMIT = 2 ** 25


def _axis_matrix(attrs, opset, n, m, scale, roi_pair, use_sizes, extrapolation, aspect=None):
    """``(W, b)`` with ``resize_1d(v) = W @ v + b`` for one axis of length n -> m.

    ``aspect`` is ``(policy, size, p, q)`` for ``keep_aspect_ratio_policy`` other than
    ``stretch``: ``size`` is this axis's requested size and ``p / q`` (in lowest terms) the
    requested-to-input ratio of the axis that sets the common scale. The reference then sees
    both axes, so it takes the common scale and rounds the output size as the spec says.
    """
    a = dict(attrs)
    a.pop("axes", None)
    a.pop("keep_aspect_ratio_policy", None)
    if aspect is not None:
        policy, size, p, q = aspect
        if n * n * q > _ASPECT_BASIS_LIMIT:
            raise ValueError(f"keep_aspect_ratio_policy={policy!r} with a common scale of {p}/{q} "
                             f"would need a {n}x{n}x{q} basis tensor to build the weights")
        a.update(axes=[0, 2], keep_aspect_ratio_policy=policy)
        roi = None if roi_pair is None else [roi_pair[0], 0.0, roi_pair[1], 1.0]
        basis = np.zeros((n, n, q))
        basis[np.arange(n), np.arange(n), :] = 1.0  # constant along the third axis: its resize
        # (weights summing to 1) leaves the value, so [:, :, 0] is this axis's matrix
        aw = {k: v for k, v in a.items() if k != "extrapolation_value"}
        w = _reference_resize(aw, max(opset, 18), basis, roi, None, [size, p])[:, :, 0]
        b = np.zeros(m)
        if extrapolation:
            b = _reference_resize(a, max(opset, 18), np.zeros((n, 1, q)), roi, None, [size, p])[:, 0, 0]
        if w.shape[0] != m:
            raise ValueError(f"the reference resize gave {w.shape[0]} outputs for an axis of size {m}")
        return w, b
    eye = np.eye(n, dtype=np.float64)
    roi = None if roi_pair is None else [roi_pair[0], 0.0, roi_pair[1], 1.0]
    scales = None if use_sizes else [scale, 1.0]
    sizes = [m, n] if use_sizes else None
    # the weights without the extrapolation value (a row outside the ROI is zero, not the value
    # times every input); the value goes into b
    aw = {k: v for k, v in a.items() if k != "extrapolation_value"}
    w = _reference_resize(aw, max(opset, 11), eye, roi if roi is not None else (None if opset >= 13 else [0.0, 0.0, 1.0, 1.0]),
                          scales, sizes)
    b = np.zeros(m)
    if extrapolation:
        b = _reference_resize(a, max(opset, 11), np.zeros((n, 1)), roi, [scale, 1.0] if not use_sizes else None,
                              [m, 1] if use_sizes else None)[:, 0]
    if w.shape[0] != m:
        raise ValueError(f"the reference resize gave {w.shape[0]} outputs for an axis of size {m}")
    return w, b


def _apply(x: TensorValue, axis: int, w: np.ndarray, b: np.ndarray, nearest: bool) -> TensorValue:
    m, n = w.shape
    if nearest and np.all(np.isin(w, (0.0, 1.0))) and np.all(w.sum(axis=1) == 1) and not b.any():
        idx = w.argmax(axis=1).astype(np.int64)
        if np.array_equal(idx, np.arange(n)) and m == n:
            return x
        return ops.gather(x, make_constant(idx, x.device), axis)
    if x.dtype not in _FLOATS:
        raise ValueError(f"{x.dtype} input with a non-nearest mode")
    r = x.rank
    perm = [d for d in range(r) if d != axis] + [axis]
    t = ops.permute(x, perm) if axis != r - 1 else x
    t = matmul_by_constant(t, w.T)
    if b.any():
        t = t + make_constant(b, x.device, x.dtype)
    if axis != r - 1:
        inv = list(np.argsort(perm))
        t = ops.permute(t, inv)
    return t


def _resize(ctx, opset_semantics: int, roi, scales, sizes):
    x = ctx.input(0)
    xs = ctx.shape(0)
    r = len(xs)
    out = ctx.expected_output(0)
    if out is None or out[1] is None or not all(isinstance(d, int) for d in out[1]):
        raise ctx.error("the output shape is not static")
    ys = list(out[1])
    # every attribute reaches onnx's reference Resize, which builds the per-axis matrices
    attrs = {name: ctx.attr(name) for name in ctx.attribute_names()}
    mode = attrs.get("mode", "nearest")
    axes = [a % r for a in attrs.get("axes", range(r))]
    policy = attrs.get("keep_aspect_ratio_policy", "stretch")
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel" if opset_semantics >= 11 else "asymmetric")
    if opset_semantics < 11:
        attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    full_scales = [1.0] * r
    if scales is not None and len(scales):
        for a, s in zip(axes, scales):
            full_scales[a] = float(s)
    use_sizes = sizes is not None and len(sizes) > 0
    aspect = {}
    if use_sizes and policy != "stretch":
        sizes_given = dict(zip(axes, [int(v) for v in sizes]))
        f = min if policy == "not_larger" else max
        setter = f(sizes_given, key=lambda a: sizes_given[a] / xs[a])
        common = Fraction(sizes_given[setter], xs[setter])
        for a in axes:
            full_scales[a] = float(common)
            aspect[a] = (policy, sizes_given[a], common.numerator, common.denominator)
        use_sizes = False
    elif use_sizes:
        for a in axes:
            full_scales[a] = ys[a] / xs[a]
    rois = None
    if ctm == "tf_crop_and_resize":
        rv = [float(v) for v in np.asarray(roi).reshape(-1)]
        k = len(rv) // 2
        ra = axes if k == len(axes) else list(range(r))
        rois = {a: (rv[j], rv[j + k]) for j, a in enumerate(ra)}
    extrap = ctm == "tf_crop_and_resize" and float(attrs.get("extrapolation_value", 0.0)) != 0.0
    # float16/bfloat16 interpolation in float32, rounded once at the end (as onnxruntime): one
    # rounding per resized axis put 823 of 18432 float16 outputs of a 64x64 linear resize a
    # unit off the correctly rounded value
    half = x.dtype if x.dtype in dtypes.MAX_HALF_FLOATS and mode != "nearest" else None
    if half is not None:
        x = ops.cast(x, DType.float32)
    for a in range(r):
        roi_pair = rois.get(a, (0.0, 1.0)) if rois is not None else None
        if xs[a] == ys[a] and full_scales[a] == 1.0 and roi_pair in (None, (0.0, 1.0)):
            continue
        try:
            w, b = _axis_matrix(attrs, ctx.opset, xs[a], ys[a], full_scales[a], roi_pair,
                                use_sizes and a in axes, extrap, aspect.get(a))
            x = _apply(x, a, w, b, mode == "nearest")
        except Exception as e:
            raise ctx.error(f"axis {a}: {type(e).__name__}: {e}") from e
    return x if half is None else ops.cast(x, half)


def _opt_const(ctx, i):
    if not ctx.has_input(i):
        return None
    v = ctx.const(i)
    return None if v is None or np.asarray(v).size == 0 else np.asarray(v)


@converter("Resize", since=10)
def resize_v10(ctx):
    """ONNX ``Resize`` opset 10: ``scales`` (input 1), modes nearest and linear, asymmetric
    coordinates, floor rounding."""
    return _resize(ctx, 10, None, _opt_const(ctx, 1), None)


@converter("Resize", since=11)
def resize(ctx):
    """ONNX ``Resize`` from opset 11: ``roi``, ``scales`` or ``sizes`` (inputs 1-3, known at
    conversion), and every attribute (see the module docstring)."""
    return _resize(ctx, 11, _opt_const(ctx, 1), _opt_const(ctx, 2), _opt_const(ctx, 3))


@converter("Upsample", since=7)
def upsample(ctx):
    """ONNX ``Upsample`` (deprecated): ``scales`` (attribute in opset 7, input from 9), nearest
    or linear, asymmetric coordinates."""
    scales = ctx.attr("scales") if ctx.opset < 9 else _opt_const(ctx, 1)
    return _resize(ctx, 10, None, np.asarray(scales, np.float32), None)


def _gs_reflect(ctx, x: TensorValue, lo: float, hi: float) -> TensorValue:
    """Reflect coordinates by the near border until they lie in ``[lo, hi]`` (the ONNX
    reference's ``_gs_reflect``)."""
    def c(v):
        return ctx.constant(np.array(v, np.float32), DType.float32)

    rng = hi - lo
    if rng <= 0:
        return ops.broadcast_to(c(lo), [int(d) for d in x.shape])
    below = c(lo) - x
    above = x - c(hi)
    dx = ops.where(x < c(lo), below, above)
    n = ops.floor(dx / c(rng))
    r = dx - n * c(rng)
    even = ops.equal(ops.floor(n / c(2.0)) * c(2.0), n)
    low_side = ops.where(even, c(lo) + r, c(hi) - r)
    high_side = ops.where(even, c(hi) - r, c(lo) + r)
    out = ops.where(x < c(lo), low_side, ops.where(x > c(hi), high_side, x))
    return out


@converter("GridSample", since=16)
def grid_sample(ctx):
    """ONNX ``GridSample``, 2-D (``X (N, C, H, W)``, ``grid (N, H', W', 2)`` of (x, y) in
    [-1, 1]): ``mode`` nearest (halves to even), linear / bilinear (4 taps) or cubic / bicubic
    (16 taps, Keys' kernel with a = -0.75), ``padding_mode`` zeros, border or reflection,
    ``align_corners``, step by step as the ONNX reference (``op_grid_sample.py``): grid values
    denormalised, out-of-range coordinates clamped or reflected, each tap read with the padding
    rule. Every tap is one MAX ``ops.gather`` of channels-last pixel rows."""
    mode = ctx.attr("mode")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    pad = ctx.attr("padding_mode")
    pad = pad.decode() if isinstance(pad, bytes) else pad
    align = bool(ctx.attr("align_corners"))
    xs = ctx.shape(0)
    if len(xs) != 4:
        raise ctx.error(f"X has rank {len(xs)}; only 2-D GridSample (N, C, H, W) is supported")
    if mode not in ("nearest", "linear", "cubic") or pad not in ("zeros", "border", "reflection"):
        raise ctx.error(f"mode '{mode}' / padding_mode '{pad}' not supported")
    n, ch, h, w = xs
    gs = ctx.shape(1)
    ho, wo = gs[1], gs[2]

    def c(v, dt=DType.float32):
        return ctx.constant(np.array(v, dtypes.numpy_of_max(dt)), dt)

    grid = ops.cast(ctx.input(1), DType.float32)
    dims = {0: w, 1: h}  # grid's last axis: x (width) then y (height)
    coords, borders = [], []
    for k in (0, 1):
        length = dims[k]
        g = ops.squeeze(grid[:, :, :, k:k + 1], -1)  # (N, H', W')
        if align:
            x = (g + c(1.0)) / c(2.0) * c(float(length - 1))
        else:
            x = ((g + c(1.0)) * c(float(length)) - c(1.0)) / c(2.0)
        lo, hi = (0.0, length - 1.0) if align else (-0.5, length - 0.5)
        if mode == "nearest":
            x = ops.round(x)  # MAX rounds halves to even, as numpy's rint
        if pad == "border":  # only coordinates outside [lo, hi] move
            outside = ops.logical_or(x < c(lo), x > c(hi))
            x = ops.where(outside, ops.min(ops.max(x, c(0.0)), c(float(length - 1))), x)
        elif pad == "reflection":
            x = _gs_reflect(ctx, x, lo, hi)
        coords.append(x)
        borders.append((lo, hi))

    def tap(k, i):
        """Index (float, integral) ``i`` on axis k -> (clamped int64 index, weight mask)."""
        length = dims[k]
        mask = None
        if pad == "zeros":
            mask = ops.logical_and(i >= c(0.0), i <= c(float(length - 1)))
        elif pad == "reflection":
            i = ops.trunc(_gs_reflect(ctx, i, *borders[k]))
        i = ops.min(ops.max(i, c(0.0)), c(float(length - 1)))
        return ops.cast(i, DType.int64), mask

    x_last = ctx.input_last(0)  # (N, H, W, C)
    dt = x_last.dtype
    rows = ops.reshape(x_last, [n * h * w, ch])
    base = c((np.arange(n, dtype=np.int64) * (h * w)).reshape(n, 1, 1), DType.int64)

    def pixel(iy, ix):
        (yi, ym), (xi, xm) = tap(1, iy), tap(0, ix)
        idx = ops.reshape(base + yi * c(np.int64(w), DType.int64) + xi, [n * ho * wo])
        v = ops.reshape(ops.gather(rows, idx, axis=0), [n, ho, wo, ch])
        mask = ym if xm is None else (xm if ym is None else ops.logical_and(ym, xm))
        if mask is not None:
            v = v * ops.unsqueeze(ops.cast(mask, dt), -1)
        return v

    def weights(f, taps):
        """Interpolation weights of the fractional part ``f`` (N, H', W') for 2 or 4 taps."""
        if taps == 2:
            return [c(1.0) - f, f]
        a = -0.75
        t0, t1, t2, t3 = f + c(1.0), f, c(1.0) - f, c(2.0) - f
        w0 = ((c(a) * t0 - c(5 * a)) * t0 + c(8 * a)) * t0 - c(4 * a)
        w1 = (c(a + 2) * t1 - c(a + 3)) * t1 * t1 + c(1.0)
        w2 = (c(a + 2) * t2 - c(a + 3)) * t2 * t2 + c(1.0)
        w3 = ((c(a) * t3 - c(5 * a)) * t3 + c(8 * a)) * t3 - c(4 * a)
        return [w0, w1, w2, w3]

    if mode == "nearest":
        y = pixel(coords[1], coords[0])
    else:
        taps = 2 if mode == "linear" else 4
        first = 0 if taps == 2 else -1
        fx, fy = ops.floor(coords[0]), ops.floor(coords[1])
        wx, wy = weights(coords[0] - fx, taps), weights(coords[1] - fy, taps)
        y = None
        for a in range(taps):
            row = None
            for b in range(taps):
                v = pixel(fy + c(float(first + a)), fx + c(float(first + b)))
                v = v * ops.unsqueeze(ops.cast(wx[b], dt), -1)
                row = v if row is None else row + v
            row = row * ops.unsqueeze(ops.cast(wy[a], dt), -1)
            y = row if y is None else y + row
    return ChannelsLast(y)
