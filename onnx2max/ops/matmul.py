"""Matrix products: ONNX ``MatMul`` and ``Gemm``."""

from __future__ import annotations

from max.graph import ops

from ..registry import converter


@converter("MatMul")
def matmul(ctx):
    """ONNX ``MatMul`` (numpy ``matmul`` semantics): 1-D operands are promoted and the added
    axis removed; batch dims broadcast. MAX ``ops.matmul``."""
    a, b = ctx.input(0), ctx.input(1)
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
