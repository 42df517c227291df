"""Matrix products and the determinant: ONNX ``MatMul``, ``Gemm`` and ``Det``."""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import ops

from ..lower import dims_of, is_static
from ..registry import converter
from .shape import _prod


@converter("MatMul")
def matmul(ctx):
    """ONNX ``MatMul`` (numpy ``matmul`` semantics): 1-D operands are promoted and the added
    axis removed; batch dims broadcast. MAX ``ops.matmul`` (rank >= 4 with symbolic batch dims:
    as one 3-D batched product, see below)."""
    a, b = ctx.input(0), ctx.input(1)
    if a.rank == b.rank >= 4:
        da, db = dims_of(a), dims_of(b)
        batch = da[:-2]
        if batch == db[:-2] and not is_static(batch):
            # MAX 26.7 fuses softmax(q @ k^T) @ v of rank 4 into its attention kernel, and with
            # symbolic dims it then drops a following non-BSHD transpose ([b, s, h, d] comes
            # out where [s, b, h, d] was asked: a compile or run-time failure). The same
            # product as one 3-D batched MatMul is not fused (docs/performance.md).
            n = _prod(batch)
            y = ops.matmul(ops.reshape(a, [n, *da[-2:]]), ops.reshape(b, [n, *db[-2:]]))
            return ops.reshape(y, [*batch, da[-2], db[-1]])
    a1, b1 = a.rank == 1, b.rank == 1
    if a1:
        a = ops.unsqueeze(a, 0)
    if b1:
        b = ops.unsqueeze(b, -1)
    y = ops.matmul(a, b)
    if b1:
        y = ops.squeeze(y, -1)
    if a1:
        y = ops.squeeze(y, -2 if not b1 else -1) if y.rank >= 1 else y
    return y


@converter("Gemm")
def gemm(ctx):
    """ONNX ``Gemm``: ``Y = alpha * A' @ B' + beta * C`` with ``A' = A^T`` if ``transA`` and
    ``B' = B^T`` if ``transB``; ``C`` (optional from opset 11) broadcasts to ``[M, N]``."""
    a = ctx.input(0)
    if ctx.attr("transA"):
        a = ops.transpose(a, 0, 1)
    if ctx.attr("transB"):
        n, k = ctx.shape(1)
        # an initializer B is transposed once at load time, not at every run
        b = ctx.derived("transpose", [1], (k, n))
        if b is None:
            b = ops.transpose(ctx.input(1), 0, 1)
    else:
        b = ctx.input(1)
    y = ops.matmul(a, b)
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    if alpha != 1.0:
        y = y * alpha
    if ctx.has_input(2) and beta != 0.0:
        c = ctx.input(2)
        if beta != 1.0:
            c = c * beta
        y = y + c
    return y


@converter("Det", since=11)
def det(ctx):
    """ONNX ``Det``: the determinant of each square matrix in the last two dims ``[..., M, M]``,
    by Gaussian elimination with partial pivoting written out for the static ``M`` (each step:
    the row of largest magnitude in the column swapped up through a one-hot mix, which flips the
    sign, then the rows below eliminated); the product of the pivots times the sign. A zero
    pivot column (a singular matrix) gives 0. MAX has no determinant op."""

    xs = ctx.shape(0)
    if len(xs) < 2 or xs[-1] != xs[-2]:
        raise ctx.error(f"input shape {tuple(xs)}; Det needs square matrices in the last two dims")
    a = ctx.input(0)
    dt = a.dtype
    m = xs[-1]
    one = ctx.constant(np.array(1, dt.to_numpy()), dt)
    zero = ctx.constant(np.array(0, dt.to_numpy()), dt)
    sign = None
    pivots = []
    for k in range(m):
        rows = a[..., k:, :]  # [..., m-k, m]
        if k < m - 1:
            p = ops.argmax(ops.abs(rows[..., :, k]), axis=-1)  # [..., 1]
            ar = ctx.constant(np.arange(m - k, dtype=np.int64), DType.int64)
            e_p = ops.cast(ops.equal(p, ar), dt)  # [..., m-k] one-hot of the pivot row
            e_0 = ctx.constant(np.eye(1, m - k, dtype=dt.to_numpy()).reshape(m - k), dt)
            pivot_row = ops.sum(rows * ops.unsqueeze(e_p, -1), axis=-2)  # [..., 1, m]
            diff = pivot_row - rows[..., 0:1, :]
            rows = rows + ops.unsqueeze(e_0 - e_p, -1) * diff  # swap row 0 and the pivot row
            swapped = ops.where(ops.equal(p, ctx.constant(np.zeros(1, np.int64), DType.int64)), one, zero - one)
            sign = swapped if sign is None else sign * swapped
        piv = rows[..., 0, k]  # [...]
        pivots.append(piv)
        if k < m - 1:
            safe = ops.where(ops.equal(piv, zero), one, piv)
            f = rows[..., 1:, k] / ops.unsqueeze(safe, -1)  # [..., m-k-1]
            f = ops.where(ops.equal(ops.unsqueeze(piv, -1), zero), zero, f)
            below = rows[..., 1:, :] - ops.unsqueeze(f, -1) * rows[..., 0:1, :]
            a = ops.concat([a[..., :k, :], rows[..., 0:1, :], below], axis=-2) if k else \
                ops.concat([rows[..., 0:1, :], below], axis=-2)
    d = pivots[0]
    for p in pivots[1:]:
        d = d * p
    if sign is not None:
        d = d * ops.squeeze(sign, -1)
    return d
