"""Matrix products and the determinant: ONNX ``MatMul``, ``Gemm`` and ``Det``."""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import ops

from .. import dtypes
from ..lower import dims_of, is_static, make_constant
from ..registry import converter
from .shape import _prod


#: ops that may sit between the two products and the Softmax of an attention block
_ATTENTION_PASS = frozenset({"Identity", "Cast", "CastLike", "Dropout", "Where", "Add", "Sub",
                             "Mul", "Div", "Neg", "Tanh", "Clip"})


def _behind(ctx, name: str, op_type: str, depth: int = 6) -> list:
    """The ``op_type`` nodes (default domain) that ``name`` is computed from through at most
    ``depth`` nodes of :data:`_ATTENTION_PASS`, nearest first (the search stops at them)."""
    found, frontier, seen = [], [name], set()
    for _ in range(depth):
        nxt = []
        for v in frontier:
            n = ctx.producer(v)
            if n is None or v in seen:
                continue
            seen.add(v)
            if n.op_type == op_type and n.domain in ("", "ai.onnx"):
                found.append(n)
            elif n.op_type in _ATTENTION_PASS and n.domain in ("", "ai.onnx"):
                nxt.extend(i for i in n.input if i)
        frontier = nxt
    return found


def attention_values_misfused(ctx, v_head) -> bool:
    """Whether ``ctx``'s input 0 is a ``Softmax`` of ``q @ k^T`` (through scaling, masking,
    casts) whose head size is not known to equal ``v_head``, the last dim of the values it is
    multiplied with.

    MAX 26.7 fuses a rank-4 ``softmax(q @ k^T ...) @ v`` into its attention kernel, which
    computes a wrong result when v's head size differs from q's (errors of 2-4 on unit-normal
    inputs; rank 2 and 3 products, and ``softmax`` written out, are exact). Measured on CPU."""
    softmaxes = [n for n in _behind(ctx, ctx.input_name(0), "Softmax") if n.input]
    if not softmaxes:
        return False
    for sm in softmaxes:
        products = _behind(ctx, sm.input[0], "MatMul")
        if not products:
            return True  # scores from elsewhere (an Einsum, a contrib op): head size unknown
        for qk in products:
            q_dims = ctx.value_dims(qk.input[0])
            if not q_dims or not isinstance(q_dims[-1], int) or q_dims[-1] != v_head:
                return True
    return False


def matmul_by_constant(x, m: np.ndarray):
    """``x @ m`` for a matrix ``m`` built at conversion (a MAX graph constant), in ``x``'s dtype.

    For float16 and bfloat16 ``x`` the product is computed in float32 (``m`` a float32
    constant) and rounded once: MAX 26.7's CPU product of a half-precision value and a
    half-precision graph constant of 64 or more rows (float16; 128 for bfloat16) is wrong, with
    errors larger than the values (x [1, 256] @ [256, 256]: error 23 for values up to 18), while
    the same matrix as a graph input or a Weight gives the right product
    (``benchmarks/max_half_constant_matmul.py`` reproduces it in plain MAX).
    """
    if x.dtype in dtypes.MAX_HALF_FLOATS:
        c = make_constant(np.ascontiguousarray(m, np.float32), x.device, DType.float32)
        return ops.cast(ops.matmul(ops.cast(x, DType.float32), c), x.dtype)
    return ops.matmul(x, make_constant(np.ascontiguousarray(m), x.device, x.dtype))


def batched_matmul(a, b):
    """MAX ``ops.matmul(a, b)``, except that a product of two batched (rank >= 3) float16 or
    bfloat16 operands is computed in float32 and rounded once. MAX 26.7's CPU kernel for those
    accumulates in the half type: at K = 512 its errors were 0.3 (float16) and 1.8 (bfloat16)
    against 0.01 and 0.16 for the exactly rounded product, which MAX's 2-D half product gives."""
    if a.dtype in dtypes.MAX_HALF_FLOATS and a.dtype == b.dtype and a.rank >= 3 and b.rank >= 3:
        return ops.cast(ops.matmul(ops.cast(a, DType.float32), ops.cast(b, DType.float32)), a.dtype)
    return ops.matmul(a, b)


def as_3d_matmul(a, b):
    """``a @ b`` for operands of rank >= 3 as one 3-D batched MAX ``ops.matmul`` over their
    flattened batch dims (broadcast first where they differ), reshaped back. MAX does not fuse
    a 3-D product into its attention kernel; ``None`` when batch dims are symbolic and differ."""
    da, db = dims_of(a), dims_of(b)
    ba, bb = tuple(da[:-2]), tuple(db[:-2])
    if ba == bb:
        batch = ba
    elif is_static(ba) and is_static(bb):
        batch = tuple(int(d) for d in np.broadcast_shapes(ba, bb))
        if ba != batch:
            a = ops.broadcast_to(a, [*batch, *da[-2:]])
        if bb != batch:
            b = ops.broadcast_to(b, [*batch, *db[-2:]])
    else:
        return None
    n = _prod(batch)
    y = batched_matmul(ops.reshape(a, [n, *da[-2:]]), ops.reshape(b, [n, *db[-2:]]))
    return ops.reshape(y, [*batch, da[-2], db[-1]])


@converter("MatMul")
def matmul(ctx):
    """ONNX ``MatMul`` (numpy ``matmul`` semantics): 1-D operands are promoted and the added
    axis removed; batch dims broadcast. MAX ``ops.matmul``; rank >= 4 products with symbolic
    batch dims, and those that MAX 26.7 would fuse wrongly into its attention kernel (see
    :func:`attention_values_misfused`), as one 3-D batched product; batched float16/bfloat16
    products in float32 (:func:`batched_matmul`)."""
    a, b = ctx.input(0), ctx.input(1)
    if a.rank == b.rank >= 4:
        da, db = dims_of(a), dims_of(b)
        batch = da[:-2]
        if batch == db[:-2] and not is_static(batch):
            # MAX 26.7 fuses softmax(q @ k^T) @ v of rank 4 into its attention kernel, and with
            # symbolic dims it then drops a following non-BSHD transpose ([b, s, h, d] comes
            # out where [s, b, h, d] was asked: a compile or run-time failure). The same
            # product as one 3-D batched MatMul is not fused (docs/performance.md).
            return as_3d_matmul(a, b)
    if max(a.rank, b.rank) >= 4 and min(a.rank, b.rank) >= 2 and attention_values_misfused(ctx, dims_of(b)[-1]):
        if b.rank == 2:  # one matrix for every batch: a 2-D product, no broadcast copy of b
            da = dims_of(a)
            y = ops.matmul(ops.reshape(a, [-1, da[-1]]), b)
            return ops.reshape(y, [*da[:-1], dims_of(b)[-1]])
        if a.rank != b.rank:  # align ranks so the batch dims broadcast as numpy's
            r = max(a.rank, b.rank)
            a = ops.reshape(a, [1] * (r - a.rank) + list(dims_of(a))) if a.rank < r else a
            b = ops.reshape(b, [1] * (r - b.rank) + list(dims_of(b))) if b.rank < r else b
        y = as_3d_matmul(a, b)
        if y is not None:
            return y
    a1, b1 = a.rank == 1, b.rank == 1
    if a1:
        a = ops.unsqueeze(a, 0)
    if b1:
        b = ops.unsqueeze(b, -1)
    y = batched_matmul(a, b)
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
