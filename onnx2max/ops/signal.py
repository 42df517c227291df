"""Signal processing: ONNX ``DFT`` (opsets 17 and 20).

The transform along one axis is real matrix products with cosine and sine matrices built at
conversion from the static lengths (what ``numpy.fft`` computes, as the ONNX reference does):
``O(n^2)`` work per signal, fine for the short transforms of audio front ends. Sums are in the
input's dtype (float32 for float16 and bfloat16 inputs, rounded once: ``matmul_by_constant``),
so outputs that are exactly 0 come out as rounding noise (about 1e-6 for float32 sums of
magnitude 50).
"""

from __future__ import annotations

import numpy as np
from max.graph import TensorValue, ops

from ..registry import converter
from .matmul import matmul_by_constant


def _move_last(x: TensorValue, axis: int) -> tuple[TensorValue, list[int] | None]:
    r = x.rank
    if axis == r - 1:
        return x, None
    perm = [a for a in range(r) if a != axis] + [axis]
    return ops.permute(x, perm), [perm.index(a) for a in range(r)]


def _dft(ctx, axis_value: int):
    x = ctx.input(0)
    xs = ctx.shape(0)
    r = len(xs)
    if xs[-1] not in (1, 2):
        raise ctx.error(f"the last dim is {xs[-1]}; DFT needs 1 (real) or 2 (complex)")
    axis = axis_value % r
    if axis == r - 1:
        raise ctx.error("axis is the last (real/imaginary) dim")
    inverse, onesided = bool(ctx.attr("inverse")), bool(ctx.attr("onesided"))
    length = xs[axis]
    if ctx.has_input(1):
        n = int(np.asarray(ctx.const(1)).reshape(()))
    else:
        n = 2 * (length - 1) if inverse and onesided else length
    if n < 1:
        raise ctx.error(f"dft_length {n}; expected at least 1")
    re = ops.squeeze(x[..., 0:1], -1)
    im = ops.squeeze(x[..., 1:2], -1) if xs[-1] == 2 else None
    re, back = _move_last(re, axis)
    if im is not None:
        im, _ = _move_last(im, axis)
    if inverse and onesided:  # numpy irfft: Hermitian half spectrum -> real signal of n
        m = n // 2 + 1
        used = min(length, m)
        k = np.arange(used).reshape(-1, 1)
        t = np.arange(n).reshape(1, -1)
        w = np.full((used, 1), 2.0)
        w[0] = 1.0
        if n % 2 == 0 and used > n // 2:
            w[n // 2] = 1.0
        theta = 2 * np.pi * k * t / n
        a, b = w * np.cos(theta) / n, -w * np.sin(theta) / n
        out_re = matmul_by_constant(re[..., 0:used], a)
        if im is not None:
            out_re = out_re + matmul_by_constant(im[..., 0:used], b)
        y = ops.unsqueeze(out_re, -1)
    else:
        used = min(length, n)
        k_out = n // 2 + 1 if onesided and not inverse else n
        j = np.arange(used).reshape(-1, 1)
        k = np.arange(k_out).reshape(1, -1)
        theta = 2 * np.pi * j * k / n
        c, s = np.cos(theta), np.sin(theta)
        sign, scale = (1.0, 1.0 / n) if inverse else (-1.0, 1.0)
        # (a + ib)(cos + i*sign*sin) = a cos - sign*b sin + i(sign*a sin + b cos)
        a_re, a_im = c * scale, sign * s * scale
        re_u = re[..., 0:used]
        y_re = matmul_by_constant(re_u, a_re)
        y_im = matmul_by_constant(re_u, a_im)
        if im is not None:
            im_u = im[..., 0:used]
            y_re = y_re - matmul_by_constant(im_u, a_im)
            y_im = y_im + matmul_by_constant(im_u, a_re)
        y = ops.stack([y_re, y_im], axis=-1)
    if back is not None:
        y = ops.permute(y, [*back, r - 1])
    return y


@converter("DFT", since=17)
def dft_17(ctx):
    """ONNX ``DFT``-17: the discrete Fourier transform of a real (last dim 1) or complex (last dim
    2) signal along attribute ``axis`` (default 1), ``inverse`` (scaled by 1/n), ``onesided``
    (forward: the first n/2+1 outputs; inverse: a Hermitian half spectrum to a real signal, as
    ``numpy.fft.irfft``), ``dft_length`` (input 1, known at conversion) pads or truncates."""
    return _dft(ctx, int(ctx.attr("axis")))


@converter("DFT", since=20)
def dft_20(ctx):
    """ONNX ``DFT``-20: as DFT-17, with ``axis`` an input (known at conversion, default -2)."""
    axis = int(np.asarray(ctx.const(2)).reshape(())) if ctx.num_inputs > 2 and ctx.has_input(2) else -2
    return _dft(ctx, axis)


@converter("STFT", since=17)
def stft(ctx):
    """ONNX ``STFT``: the short-time Fourier transform of ``signal [batch, length, 1 or 2]``:
    frames of ``frame_length`` (input 3, else the window's length) every ``frame_step`` (input 1)
    samples, ``1 + (length - frame_length) // frame_step`` of them (a Gather with a constant index
    matrix), each multiplied by ``window`` (input 2, else ones) and transformed as DFT does
    (``onesided``: the first ``frame_length // 2 + 1`` bins). Output ``[batch, frames, bins, 2]``.
    ``frame_step`` and ``frame_length`` are known at conversion."""
    x = ctx.input(0)
    xs = ctx.shape(0)
    if len(xs) != 3 or xs[-1] not in (1, 2):
        raise ctx.error(f"signal shape {tuple(xs)}; expected [batch, length, 1 or 2]")
    step = int(np.asarray(ctx.const(1)).reshape(()))
    has_window = ctx.num_inputs > 2 and ctx.has_input(2)
    if ctx.num_inputs > 3 and ctx.has_input(3):
        n = int(np.asarray(ctx.const(3)).reshape(()))
    elif has_window:
        n = ctx.shape(2)[0]
    else:
        n = xs[1]
    if step < 1 or n < 1 or n > xs[1]:
        raise ctx.error(f"frame_step {step}, frame_length {n} for a signal of length {xs[1]}")
    frames = 1 + (xs[1] - n) // step
    idx = (np.arange(frames)[:, None] * step + np.arange(n)[None, :]).astype(np.int64)
    f = ops.gather(x, ctx.constant(idx), axis=1)  # [batch, frames, n, c]
    if has_window:
        f = f * ops.reshape(ctx.input(2), [1, 1, n, 1])
    re = ops.squeeze(f[..., 0:1], -1)
    bins = n // 2 + 1 if bool(ctx.attr("onesided")) else n
    theta = 2 * np.pi * np.arange(n).reshape(-1, 1) * np.arange(bins).reshape(1, -1) / n
    cos, msin = np.cos(theta), -np.sin(theta)
    y_re = matmul_by_constant(re, cos)
    y_im = matmul_by_constant(re, msin)
    if xs[-1] == 2:  # (a + ib)(cos - i sin) = a cos + b sin + i(b cos - a sin)
        im = ops.squeeze(f[..., 1:2], -1)
        y_re = y_re - matmul_by_constant(im, msin)
        y_im = y_im + matmul_by_constant(im, cos)
    return ops.stack([y_re, y_im], axis=-1)
