"""Neural-network ops: Conv, pooling, normalizations, LRN, Softmax (ONNX sections of the same
names). Convolutions and pools run channels-last on MAX (see ``onnx2max/layout.py``)."""

from __future__ import annotations


import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops
from max.graph.type import FilterLayout

from .. import dtypes
from ..errors import RUN_CHECK
from ..layout import ChannelsLast
from ..lower import as_dtype, dims_of, pointwise_matmul
from .matmul import matmul_by_constant
from .norm import stash_dtype
from .shape import _prod
from ..prepare import ceil_pool_lengths
from ..registry import converter


def window_pads(ctx, spatial, kernel, strides, dilations) -> tuple[list[int], list[int]]:
    """Begin and end pads per spatial dim from ``pads`` / ``auto_pad`` (Conv and pool sections).

    SAME_UPPER / SAME_LOWER give ``ceil(in / stride)`` outputs, the odd pad going at the end /
    at the beginning; VALID pads nothing.
    """
    nd = len(spatial)
    auto = ctx.attr("auto_pad") or "NOTSET"
    if auto == "NOTSET":
        pads = list(ctx.attr("pads") or [0] * (2 * nd))
        if len(pads) != 2 * nd:
            raise ctx.error(f"pads has {len(pads)} values; expected {2 * nd}")
        return pads[:nd], pads[nd:]
    if auto == "VALID":
        return [0] * nd, [0] * nd
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"auto_pad='{auto}'; expected NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    begins, ends = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if auto == "SAME_UPPER" else big)
        ends.append(big if auto == "SAME_UPPER" else small)
    return begins, ends


def _window_attrs(ctx, spatial, kernel=None):
    nd = len(spatial)
    kernel = list(kernel if kernel is not None else ctx.attr("kernel_shape"))
    strides = list(ctx.attr("strides") or [1] * nd)
    dilations = list(ctx.attr("dilations") or [1] * nd)
    if len(kernel) != nd or len(strides) != nd or len(dilations) != nd:
        raise ctx.error(
            f"kernel_shape {kernel}, strides {strides}, dilations {dilations} do not all have "
            f"{nd} values (the input has {nd} spatial dims)"
        )
    begins, ends = window_pads(ctx, spatial, kernel, strides, dilations)
    return kernel, strides, dilations, begins, ends


def _as_2d_last(x: TensorValue) -> TensorValue:
    """Channels-last rank-3 (N, L, C) -> (N, 1, L, C)."""
    return ops.unsqueeze(x, 1)


def _pointwise_as_matmul(ctx, xs, ws, strides) -> ChannelsLast | None:
    """A 1x1 Conv (group 1, no pads, a filter from an initializer) as one MatMul: the
    channels-last pixels ``(N * H' * W', Cin)`` (every ``stride``-th pixel) times the filter as
    a ``(Cin, Cout)`` matrix computed at load, plus the bias. ``None`` where it does not apply."""
    cout, cin = ws[0], ws[1]
    w = ctx.derived("pointwise_matrix", [1], (cin, cout))
    if w is None:
        return None
    x = ctx.input_last(0)  # (N, spatial..., C)
    if any(s != 1 for s in strides):
        x = x[(slice(None), *(slice(None, None, s) for s in strides), slice(None))]
    out_shape = [*dims_of(x)[:-1], cout]
    y = ops.matmul(ops.reshape(x, [-1, cin]), w)
    if ctx.has_input(2):
        y = y + ctx.input(2)
    return ChannelsLast(ops.reshape(y, out_shape))


def conv_geometry(ctx, xs, ws):
    """The checked geometry of an ONNX Conv node of input shape ``xs`` ``(N, C, spatial...)``
    and filter shape ``ws`` ``(M, C / group, kernel...)``, from the node's attributes:
    ``(kernel, strides, dilations, pads_begin, pads_end, group)``, lists of one int per
    spatial axis (group an int). Raises ``ConversionError`` for 3-D or more, a kernel_shape
    that disagrees with the filter, or channel counts that disagree with ``group``."""
    nd = len(xs) - 2
    if nd not in (1, 2):
        raise ctx.error(f"{nd}-D convolution is not supported (1-D and 2-D are)")
    kernel, strides, dil, begins, ends = _window_attrs(ctx, xs[2:], ctx.attr("kernel_shape") or ws[2:])
    if list(ws[2:]) != list(kernel):
        raise ctx.error(f"kernel_shape {kernel} does not match the weight's shape {ws}")
    group = int(ctx.attr("group"))
    if xs[1] != ws[1] * group:
        raise ctx.error(
            f"input has {xs[1]} channels but the weight {ws} with group={group} expects {ws[1] * group}"
        )
    return kernel, strides, dil, begins, ends, group


def conv_channels_last(x, w, bias, geometry, runtime_filter: bool) -> ChannelsLast:
    """A convolution of channels-last ``x`` ``(N, spatial..., C)`` with the ONNX (OIHW) filter
    ``w`` and optional ``bias`` ``(M,)``, 1-D or 2-D, by MAX ``ops.conv2d`` (the filter as
    ``FilterLayout.FCRS``, or permuted to RSCF when ``runtime_filter``: MAX 26.7 fails to
    compile FCRS for a filter that is not a weight). ``geometry`` is :func:`conv_geometry`'s.
    float16 and bfloat16 are computed in float32 and rounded once.
    Returns the channels-last result ``(N, spatial'..., M)``."""
    kernel, strides, dil, begins, ends, group = geometry
    nd = len(kernel)
    half = x.dtype if x.dtype in dtypes.MAX_HALF_FLOATS else None
    if half is not None:
        # MAX 26.7's CPU conv2d accumulates float16 in float16 (errors of 0.4 over 576 products,
        # 20 times those of the correctly rounded result): computed in float32, rounded once. The
        # cast filter is no longer a weight, so it goes in as RSCF (FCRS needs a weight)
        x, w = ops.cast(x, DType.float32), ops.cast(w, DType.float32)
        bias = None if bias is None else ops.cast(bias, DType.float32)
        runtime_filter = True
    if nd == 1:
        x = _as_2d_last(x)
        w = ops.unsqueeze(w, 2)
        kernel, strides, dil = [1, *kernel], [1, *strides], [1, *dil]
        begins, ends = [0, *begins], [0, *ends]
    layout = FilterLayout.FCRS
    if runtime_filter:
        w = ops.permute(w, [2, 3, 1, 0])
        layout = FilterLayout.RSCF
    y = ops.conv2d(
        x, w, stride=tuple(strides), dilation=tuple(dil),
        padding=(begins[0], ends[0], begins[1], ends[1]), groups=group, bias=bias,
        filter_layout=layout,
    )
    if nd == 1:
        y = ops.squeeze(y, 1)
    if half is not None:
        y = ops.cast(y, half)
    return ChannelsLast(y)


@converter("Conv")
def conv(ctx):
    """ONNX ``Conv``, 1-D and 2-D: groups (depthwise too), dilations, strides, explicit pads and
    ``auto_pad``. MAX ``ops.conv2d`` on NHWC input with the OIHW filter as ``FilterLayout.FCRS``
    (:func:`conv_channels_last`); a 1x1 Conv with group 1, no padding and an initializer filter
    as MAX ``ops.matmul`` on the channels-last pixels (``ONNX2MAX_POINTWISE=conv`` turns that
    off; see :func:`onnx2max.lower.pointwise_matmul`)."""
    xs, ws = ctx.leading_dims(0), ctx.shape(1)
    geometry = conv_geometry(ctx, xs, ws)
    kernel, strides, _, begins, ends, group = geometry
    if (group == 1 and all(k == 1 for k in kernel) and not any(begins) and not any(ends)
            and pointwise_matmul()):
        y = _pointwise_as_matmul(ctx, xs, ws, strides)
        if y is not None:
            return y
    x = ctx.input_last(0)
    w = ctx.input(1)
    bias = ctx.input(2) if ctx.has_input(2) else None
    return conv_channels_last(x, w, bias, geometry, ctx.input_name(1) not in ctx._l.p.values)


@converter("ConvTranspose")
def conv_transpose(ctx):
    """ONNX ``ConvTranspose``, 1-D and 2-D: groups, strides, dilations, pads, output_padding,
    output_shape and auto_pad, with the ONNX reference's placement rule: the full transposed
    convolution (length ``(in - 1) * stride + (k - 1) * dilation + 1``) is cropped from
    ``pads_begin`` to the output size, and zero-filled past its end (output_padding).

    MAX ``ops.conv2d_transpose`` on NHWC input with the filter as RSCF
    (``W.transpose(2, 3, 1, 0)``), one call per group; its ``bias`` argument is not used
    (it permutes as if NCHW in MAX 26.7), the bias is added afterwards. float16 and bfloat16
    are computed in float32 and rounded once.
    """
    xs, ws = ctx.shape(0), ctx.shape(1)
    nd = len(xs) - 2
    if nd not in (1, 2):
        raise ctx.error(f"{nd}-D transposed convolution is not supported (1-D and 2-D are)")
    group = int(ctx.attr("group"))
    cin, cout_g = ws[0], ws[1]
    if xs[1] != cin or cin % group:
        raise ctx.error(f"input has {xs[1]} channels; the weight {ws} with group={group} does not fit")
    kernel = list(ctx.attr("kernel_shape") or ws[2:])
    strides = list(ctx.attr("strides") or [1] * nd)
    dil = list(ctx.attr("dilations") or [1] * nd)
    out_pad = list(ctx.attr("output_padding") or [0] * nd)
    pads = ctx.attr("pads")
    auto_pad = ctx.attr("auto_pad") or "NOTSET"
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    out_shape = ctx.attr("output_shape")
    if out_shape is not None and len(out_shape) > nd:
        out_shape = list(out_shape)[-nd:]
    full = [(xs[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 for i in range(nd)]
    if pads is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = list(out_shape) if out_shape is not None else [xs[2 + i] * strides[i] for i in range(nd)]
        total = [full[i] + out_pad[i] - target[i] for i in range(nd)]
        if auto_pad == "SAME_UPPER":
            begins = [t // 2 for t in total]
        else:
            begins = [t - t // 2 for t in total]
        size = target
    else:
        p = list(pads) if pads is not None else [0] * (2 * nd)
        begins = p[:nd]
        if out_shape is not None:
            size = list(out_shape)
        else:
            size = [full[i] + out_pad[i] - p[i] - p[i + nd] for i in range(nd)]
    x = ctx.input_last(0)
    # (kh, kw, Cout/g, Cin); an initializer filter is permuted once at load time, and declared
    # as an aliased weight: MAX 26.7 fails to compile conv2d_transpose whose filter it can
    # compute at compile time (a plain Weight, permuted or not)
    kshape = [1, ws[2]] if nd == 1 else list(ws[2:])
    rscf = ctx.derived("conv_transpose_rscf", [1], (*kshape, cout_g, cin), alias=True)
    if rscf is None:
        w = ctx.input(1)
        rscf = ops.permute(ops.unsqueeze(w, 2) if nd == 1 else w, [2, 3, 1, 0])
    half = x.dtype if x.dtype in dtypes.MAX_HALF_FLOATS else None
    if half is not None:
        # MAX 26.7's CPU conv2d_transpose accumulates float16 in float16 (errors of 0.34 against
        # 0.016 for the correctly rounded result, 64 input channels, 3x3): float32, rounded once.
        # The aliased filter weight stays a weight; the cast is computed at run time
        x, rscf = ops.cast(x, DType.float32), ops.cast(rscf, DType.float32)
    if nd == 1:
        x = _as_2d_last(x)
        strides, dil, begins, size, full = [1, *strides], [1, *dil], [0, *begins], [1, *size], [1, *full]
    k = cin // group
    ys = []
    for g in range(group):
        xg = x[..., g * k:(g + 1) * k] if group > 1 else x
        wg = rscf[..., g * k:(g + 1) * k] if group > 1 else rscf
        ys.append(ops.conv2d_transpose(xg, wg, stride=tuple(strides), dilation=tuple(dil),
                                       padding=(0, 0, 0, 0), output_paddings=(0, 0)))
    y = ops.concat(ys, axis=-1) if group > 1 else ys[0]
    # crop [begin, begin + size) of the full output; zero-fill what lies past its end
    idx = [slice(None)]
    extra = []
    for i in range(2):
        b = max(begins[i], 0)
        e = min(begins[i] + size[i], full[i])
        idx.append(slice(b, e))
        extra += [max(-begins[i], 0), max(begins[i] + size[i] - full[i], 0)]
    idx.append(slice(None))
    y = y[tuple(idx)]
    if any(extra):
        y = ops.pad(y, [0, 0, *extra, 0, 0])
    if ctx.has_input(2):
        y = y + (ops.cast(ctx.input(2), DType.float32) if half is not None else ctx.input(2))
    if nd == 1:
        y = ops.squeeze(y, 1)
    if half is not None:
        y = ops.cast(y, half)
    return ChannelsLast(y)


def _pool_geometry(ctx, xs):
    nd = len(xs) - 2
    if nd not in (1, 2, 3):
        raise ctx.error(f"{nd}-D pooling is not supported (1-D, 2-D and 3-D are)")
    kernel, strides, dil, begins, ends = _window_attrs(ctx, xs[2:])
    ceil_mode = bool(ctx.attr("ceil_mode") or 0)
    outs = []
    for n, k, s, d, b, e in zip(xs[2:], kernel, strides, dil, begins, ends):
        if ceil_mode:  # onnxruntime's rule: no window may start in the end padding
            outs.append(ceil_pool_lengths(n, k, s, d, b, e))
        else:
            outs.append((n + b + e - ((k - 1) * d + 1)) // s + 1)
    want = ctx.expected_output(0)
    if want and want[1] and all(isinstance(v, int) for v in want[1]):
        outs = list(want[1][2:])
    return nd, kernel, strides, dil, begins, ends, outs


def _pad_to_windows(x, kernel, strides, dil, begins, ends, outs, value):
    """Pad (or crop) channels-last ``x`` so that plain windows give exactly ``outs`` outputs."""
    paddings, crop = [0, 0], []
    for axis, (k, s, d, b, e, o) in enumerate(zip(kernel, strides, dil, begins, ends, outs)):
        need = (o - 1) * s + (k - 1) * d + 1
        n = int(x.shape[axis + 1])
        extra = need - (n + b + e)
        paddings += [b, e + max(extra, 0)]
        crop.append(n + b + e + max(extra, 0) - need)
    paddings += [0, 0]
    if any(paddings):
        x = ops.pad(x, paddings, mode="constant", value=value)
    if any(crop):
        x = x[(slice(None), *(slice(0, int(x.shape[a + 1]) - c) for a, c in enumerate(crop)),
               slice(None))]
    return x


def _lowest(dtype: DType):
    if dtype in dtypes.MAX_FLOATS:
        return float("-inf")
    return int(np.iinfo(dtype.to_numpy()).min)


def _pool3d(x, xs, geometry, value, pool2d):
    """3-D pooling as two MAX 2-D poolings, which is exact because max and sum are separable:
    ``pool2d`` over (H, W) of the explicitly padded ``(N*D, H, W, C)``, then over D of
    ``(N, D, H'*W', C)``. Returns the channels-last ``(N, D', H', W', C)`` window result."""
    _, kernel, strides, dil, begins, ends, outs = geometry
    x = ops.permute(x, [0, 2, 3, 4, 1])  # (N, C, D, H, W) -> (N, D, H, W, C)
    x = _pad_to_windows(x, kernel, strides, dil, begins, ends, outs, value)
    n, c = xs[0], xs[1]
    dd, hh, ww = (int(v) for v in x.shape[1:4])
    y = pool2d(ops.reshape(x, [n * dd, hh, ww, c]), tuple(kernel[1:]), tuple(strides[1:]), tuple(dil[1:]))
    ho, wo = int(y.shape[1]), int(y.shape[2])
    y = pool2d(ops.reshape(y, [n, dd, ho * wo, c]), (kernel[0], 1), (strides[0], 1), (dil[0], 1))
    return ops.reshape(y, [n, int(y.shape[1]), ho, wo, c])


@converter("MaxPool")
def max_pool(ctx):
    """ONNX ``MaxPool``, 1-D, 2-D and 3-D: pads (asymmetric too), auto_pad, dilations,
    ceil_mode. Pads become explicit ``-inf`` cells, then MAX ``ops.max_pool2d`` (NHWC) with no
    padding (3-D: over (H, W), then over D). The optional ``Indices`` output is not supported."""
    if ctx.output_used(1):
        raise ctx.error("the Indices output of MaxPool is not supported")
    ctx.not_applicable("storage_order")  # the layout of the Indices output, which is not made
    xs = ctx.leading_dims(0)
    geometry = _pool_geometry(ctx, xs)
    nd, kernel, strides, dil, begins, ends, outs = geometry
    if nd == 3:
        y = _pool3d(ctx.input(0), xs, geometry, _lowest(ctx.dtype(0)),
                    lambda v, k, s, d: ops.max_pool2d(v, k, stride=s, dilation=d, padding=0))
        return ops.permute(y, [0, 4, 1, 2, 3])
    x = ctx.input_last(0)
    if nd == 1:
        x = _as_2d_last(x)
        kernel, strides, dil = [1, *kernel], [1, *strides], [1, *dil]
        begins, ends, outs = [0, *begins], [0, *ends], [1, *outs]
    x = _pad_to_windows(x, kernel, strides, dil, begins, ends, outs, _lowest(x.dtype))
    y = ops.max_pool2d(x, tuple(kernel), stride=tuple(strides), dilation=tuple(dil), padding=0)
    if nd == 1:
        y = ops.squeeze(y, 1)
    return ChannelsLast(y)


def _window_counts(n, k, s, d, b, e, o, include_pad):
    lo, hi = (-b, n + e) if include_pad else (0, n)
    pos = np.arange(o)[:, None] * s - b + np.arange(k)[None, :] * d
    return ((pos >= lo) & (pos < hi)).sum(axis=1).astype(np.float64)


@converter("AveragePool")
def average_pool(ctx):
    """ONNX ``AveragePool``, 1-D, 2-D and 3-D: pads (asymmetric too), auto_pad, ceil_mode,
    count_include_pad, dilations (opset 19). The window sums come from MAX ``ops.avg_pool2d``
    over an explicitly zero-padded input; the divisor per output cell is computed at conversion
    from the static geometry. float16 and bfloat16 are computed in float32 and rounded once."""
    xs = ctx.leading_dims(0)
    geometry = _pool_geometry(ctx, xs)
    nd, kernel, strides, dil, begins, ends, outs = geometry
    include = bool(ctx.attr("count_include_pad") or 0)
    counts = [
        _window_counts(n, k, s, d, b, e, o, include)
        for n, k, s, d, b, e, o in zip(xs[2:], kernel, strides, dil, begins, ends, outs)
    ]
    # MAX 26.7's float16 window sums lose precision (5 units on a 16x16 window): float32 inside
    half = ctx.input(0).dtype if ctx.input(0).dtype in dtypes.MAX_HALF_FLOATS else None
    if nd == 3:  # window sums over (H, W) then D; the divisor per axis (separable too)
        x3 = ctx.input(0) if half is None else ops.cast(ctx.input(0), DType.float32)
        y = _pool3d(x3, xs, geometry, 0.0,
                    lambda v, k, s, d: ops.avg_pool2d(v, k, stride=s, dilation=d, padding=0))
        np_dt = y.dtype.to_numpy()
        for axis, (k, cnt) in enumerate(zip(kernel, counts)):
            shape = [-1 if a == axis else 1 for a in range(3)] + [1]
            y = y * ctx.constant((k / cnt).astype(np_dt).reshape(shape), y.dtype)
        y = ops.permute(y, [0, 4, 1, 2, 3])
        return y if half is None else ops.cast(y, half)
    x = ctx.input_last(0)
    if half is not None:
        x = ops.cast(x, DType.float32)
    if nd == 1:
        x = _as_2d_last(x)
        kernel, strides, dil = [1, *kernel], [1, *strides], [1, *dil]
        begins, ends, outs = [0, *begins], [0, *ends], [1, *outs]
        counts = [np.ones(1), counts[0]]
    x = _pad_to_windows(x, kernel, strides, dil, begins, ends, outs, 0.0)
    y = ops.avg_pool2d(x, tuple(kernel), stride=tuple(strides), dilation=tuple(dil), padding=0)
    area = float(kernel[0] * kernel[1])
    ch, cw = counts
    if np.all(ch == ch[0]) and np.all(cw == cw[0]):
        factor = area / float(ch[0] * cw[0])
        if factor != 1.0:
            y = y * factor
    else:
        np_dt = y.dtype.to_numpy()
        y = y * ctx.constant((area / ch).astype(np_dt).reshape(-1, 1, 1), y.dtype)
        y = y * ctx.constant((1.0 / cw).astype(np_dt).reshape(-1, 1), y.dtype)
    if nd == 1:
        y = ops.squeeze(y, 1)
    if half is not None:
        y = ops.cast(y, half)
    return ChannelsLast(y)


@converter("LpPool")
def lp_pool(ctx):
    """ONNX ``LpPool``, 1-D, 2-D and 3-D: ``(sum over the window of |x|^p)^(1/p)``, with pads,
    auto_pad, strides, and from opset 18 dilations and ceil_mode (padding cells count as 0).
    The window sums of the explicitly zero-padded ``|x|^p`` are a depthwise MAX ``ops.conv2d``
    with a ones filter (3-D: ``ops.avg_pool2d`` twice, times the window volume). float16 and
    bfloat16 are computed in float32 and rounded once (MAX 26.7's CPU conv2d accumulates them
    in the half type)."""
    xs = ctx.leading_dims(0)
    geometry = _pool_geometry(ctx, xs)
    nd, kernel, strides, dil, begins, ends, outs = geometry
    p = float(ctx.attr("p"))
    dt = ctx.input(0).dtype
    wide = dtypes.compute_float(dt)

    # p != 2 as exp(p * log|x|) and exp(log(s) / p) (0 stays 0 through log -> -inf -> exp):
    # ops.pow here failed MAX 26.7's verifier ("'map.load' op failed to verify that result type
    # matches tensor element type")
    def power(v):
        a = ops.abs(v)
        return a * a if p == 2.0 else ops.exp(ops.log(a) * p)

    def root(v):
        return ops.sqrt(v) if p == 2.0 else ops.exp(ops.log(v) * (1.0 / p))

    if nd == 3:
        y = _pool3d(power(as_dtype(ctx.input(0), wide)), xs, geometry, 0.0,
                    lambda v, k, s, d: ops.avg_pool2d(v, k, stride=s, dilation=d, padding=0))
        y = root(y * float(kernel[0] * kernel[1] * kernel[2]))
        return as_dtype(ops.permute(y, [0, 4, 1, 2, 3]), dt)
    x = power(as_dtype(ctx.input_last(0), wide))
    if nd == 1:
        x = _as_2d_last(x)
        kernel, strides, dil = [1, *kernel], [1, *strides], [1, *dil]
        begins, ends, outs = [0, *begins], [0, *ends], [1, *outs]
    x = _pad_to_windows(x, kernel, strides, dil, begins, ends, outs, 0.0)
    # window sums: a depthwise convolution with a ones filter (ops.avg_pool2d over |x|^p failed
    # MAX 26.7's verifier for several geometries: "'map.load' op failed to verify that result
    # type matches tensor element type")
    c = int(x.shape[-1])
    ones = ctx.constant(np.ones((kernel[0], kernel[1], 1, c), dtypes.numpy_of_max(x.dtype)), x.dtype)
    y = ops.conv2d(x, ones, stride=tuple(strides), dilation=tuple(dil), padding=(0, 0, 0, 0),
                   groups=c, filter_layout=FilterLayout.RSCF)
    y = root(y)
    if nd == 1:
        y = ops.squeeze(y, 1)
    return ChannelsLast(as_dtype(y, dt))


def _global_pool(ctx, reduce):
    """Reduce every spatial axis with one reduction over the flattened spatial dims."""
    xs = ctx.leading_dims(0)
    n, c = xs[0], xs[1]
    hw = int(np.prod(xs[2:], dtype=np.int64))
    out_shape = [n, c] + [1] * (len(xs) - 2)
    if ctx.has_last(0) and len(xs) >= 3:
        # (N, spatial..., C) -> (N, HW, C) -> (N, 1, C): same bytes as (N, C, 1, ..., 1)
        y = reduce(ops.reshape(ctx.input_last(0), [n, hw, c]), 1)
    else:
        y = reduce(ops.reshape(ctx.input(0), [n, c, hw]), 2)
    return ops.reshape(y, out_shape)


@converter("GlobalAveragePool")
def global_average_pool(ctx):
    """ONNX ``GlobalAveragePool``: mean over every spatial axis (MAX ``ops.mean``, kept dims)."""
    return _global_pool(ctx, lambda x, a: ops.mean(x, axis=a))


@converter("GlobalMaxPool")
def global_max_pool(ctx):
    """ONNX ``GlobalMaxPool``: max over every spatial axis (MAX ``ops.max``, kept dims)."""
    return _global_pool(ctx, lambda x, a: ops.max(x, axis=a))


def _per_channel(ctx, i: int, c) -> TensorValue:
    """BatchNormalization input ``i`` (scale, B, mean or var) as a ``(C,)`` tensor: one of
    symbolic length is rebound to ``C`` (MAX ``ops.rebind``: checked when the model runs).

    Raises:
        ConversionError: the input is not 1-D, or its static length is not ``C``.
    """
    dims = ctx.dims(i)
    if len(dims) != 1 or (isinstance(dims[0], int) and dims[0] != c):
        raise ctx.error(f"input {i} ('{ctx.input_name(i)}') has shape {list(dims)}; expected [{c}], "
                        "one value per channel of X (axis 1)")
    x = ctx.input(i)
    if not isinstance(dims[0], int):
        x = ops.rebind(x, [c], message=f"{RUN_CHECK}{ctx.where}: input {i} ('{ctx.input_name(i)}') "
                                       f"must have {c} values, one per channel of X (axis 1)")
    return x


def _batch_norm_training(ctx):
    """``training_mode=1`` (opset 14 on): normalised with the batch's own statistics, the
    mean and population variance over every axis but the channel axis (1); the running
    statistics come out as ``mean * momentum + batch_mean * (1 - momentum)`` (likewise var)."""
    x = ctx.input(0)
    xs = ctx.leading_dims(0)
    if len(xs) < 2:
        raise ctx.error(f"X has rank {len(xs)}; expected (N, C, ...)")
    c = xs[1]
    eps = float(ctx.attr("epsilon"))
    momentum = ctx.attr("momentum")
    momentum = 0.9 if momentum is None else float(momentum)
    shape = [1, c] + [1] * (len(xs) - 2)

    def over_batch(v):
        for a in reversed([0, *range(2, len(xs))]):
            v = ops.mean(v, axis=a)
        return v

    mean = over_batch(x)
    d = x - mean
    var = over_batch(d * d)
    scale, bias = (ops.reshape(_per_channel(ctx, i, c), shape) for i in (1, 2))
    y = d * ops.rsqrt(var + ctx.constant(np.array(eps), x.dtype)) * scale + bias
    m = ctx.constant(np.array(momentum), x.dtype)
    keep = ctx.constant(np.array(1.0 - momentum), x.dtype)
    running_mean = _per_channel(ctx, 3, c) * m + ops.reshape(mean, [c]) * keep
    running_var = _per_channel(ctx, 4, c) * m + ops.reshape(var, [c]) * keep
    return y, running_mean, running_var


@converter("BatchNormalization")
def batch_norm(ctx):
    """ONNX ``BatchNormalization``. Inference mode:
    ``Y = (X - mean) / sqrt(var + epsilon) * scale + B`` per channel (axis 1). Training mode
    (``training_mode=1``, opset 14 on) normalises with the batch's statistics and gives the
    running mean and variance (see ``_batch_norm_training``). The training outputs of opsets
    before 14 (running and saved statistics) are not supported."""
    if ctx.opset >= 14 and ctx.attr("training_mode"):
        return _batch_norm_training(ctx)
    if any(ctx.output_used(k) for k in range(1, ctx.num_outputs)):
        raise ctx.error("the training outputs (running mean/var, saved stats) are not supported")
    if ctx.opset < 9 and ctx.has_attr("spatial") and ctx.attr("spatial") == 0:
        raise ctx.error("spatial=0 (per-activation statistics) is not supported")
    xs = ctx.leading_dims(0)
    eps = float(ctx.attr("epsilon"))
    c = xs[1]
    last = ctx.has_last(0) and len(xs) >= 3
    shape = [c] if last else [c] + [1] * (len(xs) - 2)
    # scale and shift computed once at load time when the parameters are initializers
    a = ctx.derived("bn_scale", [1, 4], shape, eps=eps)
    b = ctx.derived("bn_shift", [1, 2, 3, 4], shape, eps=eps)
    if a is None or b is None:
        scale, bias, mean, var = (_per_channel(ctx, i, c) for i in range(1, 5))
        a = scale * ops.rsqrt(var + eps)
        b = bias - mean * a
        a, b = ops.reshape(a, shape), ops.reshape(b, shape)
    if last:
        return ChannelsLast(ctx.input_last(0) * a + b)
    return ctx.input(0) * a + b


@converter("LayerNormalization", since=17)
def layer_norm(ctx):
    """ONNX ``LayerNormalization``: normalise over axes ``[axis, rank)``, then ``* Scale + B``
    (broadcast). The last-axis case of float32 with 1-D Scale/B is MAX ``ops.layer_norm``;
    other forms and the optional Mean / InvStdDev outputs (of the ``stash_type`` dtype, float32
    by default) are computed with reductions, half-precision inputs in float32 and rounded once
    (:func:`onnx2max.ops.norm.stash_dtype`)."""
    x = ctx.input(0)
    stash = stash_dtype(ctx)
    wide = dtypes.compute_float(x.dtype)
    r = ctx.rank(0)
    axis = int(ctx.attr("axis")) % r
    xs = ctx.leading_dims(0, axis)
    eps = float(ctx.attr("epsilon"))
    scale = ctx.input(1)
    bias = ctx.input(2) if ctx.has_input(2) else None
    d = xs[-1]
    simple = (
        axis == r - 1
        and ctx.shape(1) == (d,)
        and (bias is None or ctx.shape(2) == (d,))
        and not ctx.output_used(1)
        and not ctx.output_used(2)
        and x.dtype == DType.float32
    )
    if simple:
        beta = bias if bias is not None else ctx.constant(np.zeros(d, np.float32))
        return ops.layer_norm(x, scale, beta, eps)
    n = int(np.prod(xs[axis:], dtype=np.int64))
    xf = ops.reshape(as_dtype(x, wide), [*xs[:axis], n])
    mean = ops.mean(xf, axis=-1)
    centered = xf - mean
    var = ops.mean(centered * centered, axis=-1)
    inv = ops.rsqrt(var + eps)
    y = ops.reshape(centered * inv, list(xs)) * as_dtype(scale, wide)
    if bias is not None:
        y = y + as_dtype(bias, wide)
    stat_shape = [*xs[:axis], *([1] * (r - axis))]
    return (as_dtype(y, x.dtype), as_dtype(ops.reshape(mean, stat_shape), stash),
            as_dtype(ops.reshape(inv, stat_shape), stash))


@converter("LRN")
def lrn(ctx):
    """ONNX ``LRN``: ``y = x / (bias + alpha / size * sum(x^2 over a channel window))^beta``,
    the window ``[c - floor((size-1)/2), c + ceil((size-1)/2)]``. The window sum is a MAX
    ``ops.avg_pool2d`` along the channel axis of the channels-last form."""
    size = int(ctx.attr("size"))
    alpha, beta, bias = float(ctx.attr("alpha")), float(ctx.attr("beta")), float(ctx.attr("bias"))
    xs = ctx.shape(0)
    if len(xs) < 3:
        raise ctx.error(f"input rank {len(xs)}; LRN needs (N, C, spatial...)")
    x = ctx.input_last(0)  # (N, spatial..., C)
    n, c = xs[0], xs[1]
    hw = int(np.prod(xs[2:], dtype=np.int64))
    sq = ops.reshape(x * x, [n, hw, c, 1])
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = ops.pad(sq, [0, 0, 0, 0, lo, hi, 0, 0])
    window_mean = ops.avg_pool2d(sq, (1, size), stride=1, padding=0)
    denom = ops.pow(window_mean * alpha + bias, beta) if beta != 1.0 else window_mean * alpha + bias
    y = x / ops.reshape(denom, [n, *xs[2:], c])
    return ChannelsLast(y)


def _softmax_v1(ctx, fn):
    x = ctx.input(0)
    axis = int(ctx.attr("axis")) % max(ctx.rank(0), 1)
    xs = ctx.leading_dims(0, axis)
    rows = _prod(xs[:axis])
    y = fn(ops.reshape(x, [rows, int(np.prod(xs[axis:], dtype=np.int64))]), axis=-1)
    return ops.reshape(y, list(xs))


def _softmax_v13(ctx, fn):
    x = ctx.input(0)
    return fn(x, axis=int(ctx.attr("axis")) % x.rank)


@converter("Softmax", since=1)
def softmax_v1(ctx):
    """ONNX ``Softmax`` before opset 13: the input is flattened to 2-D at ``axis`` (default 1)
    and normalised over the second dim. MAX ``ops.softmax``."""
    return _softmax_v1(ctx, ops.softmax)


@converter("Softmax", since=13)
def softmax_v13(ctx):
    """ONNX ``Softmax`` from opset 13: normalised along ``axis`` (default -1). MAX ``ops.softmax``."""
    return _softmax_v13(ctx, ops.softmax)


@converter("LogSoftmax", since=1)
def log_softmax_v1(ctx):
    """ONNX ``LogSoftmax`` before opset 13 (2-D flattening at ``axis``). MAX ``ops.logsoftmax``."""
    return _softmax_v1(ctx, ops.logsoftmax)


@converter("LogSoftmax", since=13)
def log_softmax_v13(ctx):
    """ONNX ``LogSoftmax`` from opset 13, along ``axis``. MAX ``ops.logsoftmax``."""
    return _softmax_v13(ctx, ops.logsoftmax)


@converter("NonMaxSuppression", since=10)
def non_max_suppression(ctx):
    """ONNX ``NonMaxSuppression``: per (batch, class), boxes scoring above ``score_threshold``
    taken greedily by score, suppressing those whose IoU with a taken box exceeds
    ``iou_threshold``, at most ``max_output_boxes_per_class`` each (default 0: none). Output
    ``(count, 3)`` int64 rows ``(batch, class, box)``; ``count`` is a symbolic dim known only at
    run time. MAX ``ops.non_maximum_suppression``, on corners reordered to ``(min y, min x,
    max y, max x)`` (ONNX allows any diagonal pair), or converted from ``center_point_box=1``'s
    ``(x center, y center, width, height)``."""
    boxes, scores = ctx.input(0), ctx.input(1)
    bd, sd = ctx.dims(0), ctx.dims(1)
    if len(bd) != 3 or bd[2] != 4 or len(sd) != 3:
        raise ctx.error(f"boxes {bd} and scores {sd}; expected (batch, boxes, 4) and "
                        "(batch, classes, boxes)")
    for what, a, b in (("batch", bd[0], sd[0]), ("box count", bd[1], sd[2])):
        if isinstance(a, int) and isinstance(b, int) and a != b:
            raise ctx.error(f"boxes {bd} and scores {sd} disagree on the {what} ({a} and {b})")
    dt = boxes.dtype
    if int(ctx.attr("center_point_box") or 0):
        xc, yc, w, h = (boxes[:, :, i:i + 1] for i in range(4))
        half = ctx.constant(np.array(0.5), dt)
        boxes = ops.concat([yc - h * half, xc - w * half, yc + h * half, xc + w * half], axis=-1)
    else:
        y1, x1, y2, x2 = (boxes[:, :, i:i + 1] for i in range(4))
        boxes = ops.concat([ops.min(y1, y2), ops.min(x1, x2), ops.max(y1, y2), ops.max(x1, x2)],
                           axis=-1)

    def scalar(i, default, dtype):
        if ctx.num_inputs > i and ctx.has_input(i):
            return ops.cast(ops.reshape(ctx.input(i), []), dtype)
        return ctx.constant(np.array(default), dtype)

    return ops.non_maximum_suppression(
        boxes, scores,
        max_output_boxes_per_class=scalar(2, 0, DType.int64),
        iou_threshold=scalar(3, 0.0, dt),
        score_threshold=scalar(4, -np.inf, dt),
        out_dim=ctx.new_dim("selected"))


@converter("RoiAlign", since=10)
def roi_align(ctx):
    """ONNX ``RoiAlign``: for each ROI ``(x1, y1, x2, y2)`` of image ``batch_indices[r]``, an
    ``output_height x output_width`` grid of bins, each the average (``mode='avg'``) or maximum
    of ``sampling_ratio`` bilinear samples per axis (0: adaptive), coordinates scaled by
    ``spatial_scale`` and shifted by half a pixel for ``coordinate_transformation_mode=
    'half_pixel'`` (the opset 16 default). MAX ``ops.roi_align`` on the channels-last input."""
    mode = ctx.attr("mode") or "avg"
    mode = mode.decode() if isinstance(mode, bytes) else mode
    ctm = ctx.attr("coordinate_transformation_mode") if ctx.opset >= 16 else "output_half_pixel"
    ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
    if ctm not in ("half_pixel", "output_half_pixel"):
        raise ctx.error(f"coordinate_transformation_mode '{ctm}' is not supported")
    if ctx.rank(0) != 4:
        raise ctx.error(f"X has rank {ctx.rank(0)}; RoiAlign needs (N, C, H, W)")
    x = ctx.input_last(0)
    rois = ctx.input(1)
    idx = ops.cast(ops.reshape(ctx.input(2), [-1, 1]), rois.dtype)
    y = ops.roi_align(
        x, ops.concat([idx, rois], axis=1),
        output_height=int(ctx.attr("output_height")), output_width=int(ctx.attr("output_width")),
        spatial_scale=float(ctx.attr("spatial_scale")), sampling_ratio=float(ctx.attr("sampling_ratio")),
        aligned=ctm == "half_pixel", mode=mode.upper())
    return ChannelsLast(y)


@converter("AffineGrid", since=20)
def affine_grid(ctx):
    """ONNX ``AffineGrid``: the sampling grid ``theta @ [x, y, (z,) 1]`` over the normalised
    coordinates of ``size`` (input 1, known at conversion: ``(N, C, H, W)`` or
    ``(N, C, D, H, W)``), ``align_corners`` placing them at pixel corners or centres. Output
    ``(N, H, W, 2)`` or ``(N, D, H, W, 3)``, coordinates in (x, y, z) order. The base grid is
    built at conversion; the product with ``theta`` is a MAX ``ops.matmul``."""
    size = [int(v) for v in np.asarray(ctx.const(1)).reshape(-1)]
    if len(size) not in (4, 5):
        raise ctx.error(f"size {size}; expected (N, C, H, W) or (N, C, D, H, W)")
    spatial = size[2:]
    align = bool(ctx.attr("align_corners"))

    def axis(n):
        if align:
            return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
        return (np.arange(n) * 2.0 + 1.0) / n - 1.0

    mesh = np.meshgrid(*[axis(n) for n in spatial], indexing="ij")  # (D,) H, W order
    coords = [m.reshape(-1) for m in reversed(mesh)]  # x (W) first, then y, z
    base = np.stack([*coords, np.ones_like(coords[0])], axis=0)  # (nd + 1, points)
    theta = ctx.input(0)  # (N, nd, nd + 1)
    grid = matmul_by_constant(theta, base)  # (N, nd, points)
    nd = len(spatial)
    return ops.reshape(ops.permute(grid, [0, 2, 1]), [size[0], *spatial, nd])


@converter("Col2Im", since=18)
def col2im(ctx):
    """ONNX ``Col2Im``: sums the sliding blocks of input ``[N, C*prod(block_shape), L]`` back into
    images ``[N, C, *image_shape]`` (any number of spatial dims; ``dilations``, ``pads``,
    ``strides``). ``image_shape`` and ``block_shape`` are known at conversion; the block-to-pixel
    map is a 0/1 matrix built then, so MAX computes one MatMul ``[N, C, K*L] @ [K*L, prod(image)]``
    (cells that fall in the padding are dropped)."""
    image = [int(v) for v in np.asarray(ctx.const(1)).reshape(-1)]
    block = [int(v) for v in np.asarray(ctx.const(2)).reshape(-1)]
    n_sp = len(image)
    if len(block) != n_sp:
        raise ctx.error(f"image_shape {image} and block_shape {block} differ in length")
    dil = [int(v) for v in (ctx.attr("dilations") or [1] * n_sp)]
    strides = [int(v) for v in (ctx.attr("strides") or [1] * n_sp)]
    pads = [int(v) for v in (ctx.attr("pads") or [0] * (2 * n_sp))]
    xs = ctx.shape(0)
    k = _prod(block)
    if len(xs) != 3 or xs[1] % k:
        raise ctx.error(f"input shape {tuple(xs)}; expected [N, C*{k}, L]")
    blocks = [(image[d] + pads[d] + pads[d + n_sp] - dil[d] * (block[d] - 1) - 1) // strides[d] + 1
              for d in range(n_sp)]
    if _prod(blocks) != xs[2] or min(blocks) < 1:
        raise ctx.error(f"input has {xs[2]} blocks; image_shape {image}, block_shape {block}, pads, "
                        f"strides and dilations give {blocks}")
    c = xs[1] // k
    n_l = _prod(blocks)
    m = np.zeros((k * n_l, _prod(image)), np.float32)
    for ki, kpos in enumerate(np.ndindex(*block)):
        for li, bpos in enumerate(np.ndindex(*blocks)):
            pix = [bpos[d] * strides[d] + kpos[d] * dil[d] - pads[d] for d in range(n_sp)]
            if all(0 <= pix[d] < image[d] for d in range(n_sp)):
                m[ki * n_l + li, np.ravel_multi_index(pix, image)] += 1
    x = ops.reshape(ctx.input(0), [xs[0], c, k * n_l])
    y = matmul_by_constant(x, m)
    return ops.reshape(y, [xs[0], c, *image])


@converter("MaxUnpool", since=9)
def max_unpool(ctx):
    """ONNX ``MaxUnpool``: writes each value of X at its index (input 1, flat over the whole
    unpooled tensor, as MaxPool's Indices) in zeros of the unpooled shape
    ``(in - 1) * stride + kernel - pads`` per spatial dim (MAX ``ops.scatter_nd``); with
    ``output_shape`` (input 2, known at conversion) that result is zero-padded at the end to it,
    as onnx's reference does."""
    xs = ctx.shape(0)
    n_sp = len(xs) - 2
    kernel = [int(v) for v in ctx.attr("kernel_shape")]
    strides = [int(v) for v in (ctx.attr("strides") or [1] * n_sp)]
    pads = [int(v) for v in (ctx.attr("pads") or [0] * (2 * n_sp))]
    inferred = list(xs[:2]) + [(xs[2 + d] - 1) * strides[d] - pads[d] - pads[d + n_sp] + kernel[d]
                               for d in range(n_sp)]
    x = ctx.input(0)
    idx = ops.reshape(ops.cast(ctx.input(1), DType.int64), [_prod(xs), 1])
    zeros = ctx.constant(np.zeros(_prod(inferred), dtypes.numpy_of_max(x.dtype)), x.dtype)
    y = ops.reshape(ops.scatter_nd(zeros, ops.reshape(x, [_prod(xs)]), idx), inferred)
    if ctx.num_inputs > 2 and ctx.has_input(2):
        out = [int(v) for v in np.asarray(ctx.const(2)).reshape(-1)]
        if len(out) != len(inferred) or any(o < i for o, i in zip(out, inferred)):
            raise ctx.error(f"output_shape {out} is smaller than the unpooled shape {inferred}")
        extra = [e for o, i in zip(out, inferred) for e in (0, o - i)]
        if any(extra):
            y = ops.pad(y, extra, value=ctx.constant(np.array(0, dtypes.numpy_of_max(x.dtype)), x.dtype))
    return y


@converter("DeformConv", since=19)
def deform_conv(ctx):
    """ONNX ``DeformConv`` (2-D): each kernel tap of each output position samples X at its regular
    position plus its learned ``offset`` (input 2, ``[N, offset_group*kH*kW*2, oH, oW]``, (y, x)
    pairs), bilinearly with zeros outside (as onnx's reference, through GridSample with
    align_corners), times ``mask`` (input 4) if given; then the taps are a grouped convolution
    with W as one batched MatMul, plus ``B`` (input 3). The four neighbours of every sample
    are gathered with MAX ``ops.gather_nd`` from the channels-last image of its offset group."""
    xs, ws = ctx.shape(0), ctx.shape(1)
    if len(xs) != 4:
        raise ctx.error(f"input of rank {len(xs)}; DeformConv is supported in 2-D")
    n, c, h, w = xs
    oc = ws[0]
    kh, kw = [int(v) for v in (ctx.attr("kernel_shape") or ws[2:])]
    sh, sw = [int(v) for v in (ctx.attr("strides") or [1, 1])]
    dh, dw = [int(v) for v in (ctx.attr("dilations") or [1, 1])]
    pt, pl, _, _ = [int(v) for v in (ctx.attr("pads") or [0, 0, 0, 0])]
    group = int(ctx.attr("group") or 1)
    og = int(ctx.attr("offset_group") or 1)
    offs = ctx.shape(2)
    oh, ow = offs[2], offs[3]
    k, p = kh * kw, oh * ow
    if c % og or c != ws[1] * group or oc % group or offs[1] != og * k * 2:
        raise ctx.error(f"X {tuple(xs)}, W {tuple(ws)}, offset {tuple(offs)} do not fit group {group} "
                        f"and offset_group {og}")
    dt = ctx.dtype(0)
    np_dt = dtypes.numpy_of_max(dt)
    cg = c // og
    # regular sampling positions [K, P]
    ki, kj = np.meshgrid(np.arange(kh) * dh, np.arange(kw) * dw, indexing="ij")
    oi, oj = np.meshgrid(np.arange(oh) * sh - pt, np.arange(ow) * sw - pl, indexing="ij")
    base_y = (ki.reshape(k, 1) + oi.reshape(1, p)).astype(np_dt)
    base_x = (kj.reshape(k, 1) + oj.reshape(1, p)).astype(np_dt)
    off = ops.reshape(ctx.input(2), [n, og, k, 2, p])
    py = off[:, :, :, 0, :] + ctx.constant(base_y, dt)  # [N, og, K, P]
    px = off[:, :, :, 1, :] + ctx.constant(base_x, dt)
    y0, x0 = ops.floor(py), ops.floor(px)
    fy, fx = py - y0, px - x0
    img = ops.permute(ops.reshape(ctx.input(0), [n, og, cg, h * w]), [0, 1, 3, 2])  # [N, og, HW, cg]
    one = ctx.constant(np.array(1, np_dt), dt)
    zero = ctx.constant(np.array(0, np_dt), dt)
    sample = None
    for yy, xx, wt in ((y0, x0, (one - fy) * (one - fx)), (y0, x0 + one, (one - fy) * fx),
                       (y0 + one, x0, fy * (one - fx)), (y0 + one, x0 + one, fy * fx)):
        inside = ops.logical_and(
            ops.logical_and(ops.greater_equal(yy, zero), ops.greater(ctx.constant(np.array(h, np_dt), dt), yy)),
            ops.logical_and(ops.greater_equal(xx, zero), ops.greater(ctx.constant(np.array(w, np_dt), dt), xx)))
        yc = ops.min(ops.max(yy, zero), ctx.constant(np.array(h - 1, np_dt), dt))
        xc = ops.min(ops.max(xx, zero), ctx.constant(np.array(w - 1, np_dt), dt))
        flat = ops.cast(yc * ctx.constant(np.array(w, np_dt), dt) + xc, DType.int64)  # [N, og, K, P]
        got = ops.gather_nd(img, ops.reshape(flat, [n, og, k * p, 1]), batch_dims=2)  # [N, og, KP, cg]
        wt = ops.where(inside, wt, zero)
        term = got * ops.reshape(wt, [n, og, k * p, 1])
        sample = term if sample is None else sample + term
    if ctx.num_inputs > 4 and ctx.has_input(4):
        sample = sample * ops.reshape(ctx.input(4), [n, og, k * p, 1])
    cols = ops.permute(ops.reshape(sample, [n, og, k, p, cg]), [0, 1, 4, 2, 3])  # [N, og, cg, K, P]
    cols = ops.reshape(cols, [n, group, (c // group) * k, p])
    wm = ops.reshape(ctx.input(1), [1, group, oc // group, (c // group) * k])
    y = ops.reshape(ops.matmul(wm, cols), [n, oc, oh, ow])
    if ctx.num_inputs > 3 and ctx.has_input(3):
        y = y + ops.reshape(ctx.input(3), [1, oc, 1, 1])
    return y
