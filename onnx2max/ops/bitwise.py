"""Bitwise ops on integers: BitShift, BitwiseNot, BitwiseAnd, BitwiseOr, BitwiseXor (ONNX
sections of the same names).

MAX 26.7's graph API has no bitwise integer ops, so these are written with integer
arithmetic, in two's complement: a shift by ``k`` is a multiplication or floor division by
``2**k`` (taken from a table, so ``k`` may be a run-time tensor); And, Or and Xor work bit by bit
on the unsigned view (``bits`` steps of floor division, modulo and multiply-add); Not is
``-x - 1``, or ``max - x`` for unsigned types.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from ..lower import make_constant
from ..registry import converter

_UNSIGNED = {DType.int8: DType.uint8, DType.int16: DType.uint16, DType.int32: DType.uint32,
             DType.int64: DType.uint64}
_INTS = set(_UNSIGNED) | set(_UNSIGNED.values())


def _np(dt: DType) -> np.dtype:
    return np.dtype(dt.to_numpy())


def _check(ctx, x: TensorValue):
    if x.dtype not in _INTS:
        raise ctx.error(f"{x.dtype} input; expected an integer type")


@converter("BitShift", since=11)
def bit_shift(ctx):
    """ONNX ``BitShift``: ``x << y`` or ``x >> y`` (``direction``), wrapping; shifts outside
    ``[0, bits)`` give 0 (or -1 for a negative signed value shifted right), as the reference."""
    x, y = ctx.input(0), ctx.input(1)
    _check(ctx, x)
    dt = _np(x.dtype)
    bits = dt.itemsize * 8
    signed = dt.kind == "i"
    table = np.array([1 << k for k in range(bits)], dtype=np.uint64).astype(dt)  # 2**(bits-1) wraps
    yi = ops.cast(y, DType.int64)
    lo = make_constant(0, ctx.device, DType.int64)
    hi = make_constant(bits - 1, ctx.device, DType.int64)
    valid = ops.logical_and(yi >= lo, yi <= hi)
    k = ops.min(ops.max(yi, lo), hi)
    p = _lookup(table, k, ctx)
    zero = make_constant(0, ctx.device, x.dtype)
    direction = ctx.attr("direction")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction == "LEFT":
        return ops.where(valid, x * p, zero)
    if not signed:
        return ops.where(valid, ops.floor_div(x, p), zero)
    neg = ops.where(x < zero, make_constant(-1, ctx.device, x.dtype), zero)
    top = ops.equal(k, hi)  # 2**(bits-1) is negative in this type: the sign fills the result
    safe = ops.where(top, make_constant(1, ctx.device, x.dtype), p)
    return ops.where(ops.logical_and(valid, ops.logical_not(top)), ops.floor_div(x, safe), neg)


def _lookup(table: np.ndarray, k: TensorValue, ctx) -> TensorValue:
    """``table[k]`` elementwise, for a tensor of indices ``k`` of any shape."""
    t = make_constant(table, ctx.device)
    flat = ops.reshape(k, [-1])
    return ops.reshape(ops.gather(t, flat, 0), [int(d) for d in k.shape])


@converter("BitwiseNot", since=18)
def bitwise_not(ctx):
    """ONNX ``BitwiseNot``: ``-x - 1`` for signed types, ``max - x`` for unsigned ones."""
    x = ctx.input(0)
    _check(ctx, x)
    dt = _np(x.dtype)
    if dt.kind == "i":
        return -x - make_constant(1, ctx.device, x.dtype)
    return make_constant(np.iinfo(dt).max, ctx.device, x.dtype) - x


def _bitwise(ctx, combine):
    a, b = ctx.input(0), ctx.input(1)
    _check(ctx, a)
    dt = a.dtype
    u = _UNSIGNED.get(dt, dt)
    ua, ub = (ops.cast(t, u) if t.dtype != u else t for t in (a, b))
    bits = _np(u).itemsize * 8
    two = make_constant(2, ctx.device, u)
    acc = None
    for k in range(bits):
        p = make_constant(np.array(1 << k, dtype=np.uint64).astype(_np(u)), ctx.device, u)
        bit = combine(ops.mod(ops.floor_div(ua, p), two), ops.mod(ops.floor_div(ub, p), two))
        term = bit * p
        acc = term if acc is None else acc + term
    return ops.cast(acc, dt) if dt != u else acc


@converter("BitwiseAnd", since=18)
def bitwise_and(ctx):
    """ONNX ``BitwiseAnd``, bit by bit on the unsigned view (see the module docstring)."""
    return _bitwise(ctx, lambda x, y: x * y)


@converter("BitwiseOr", since=18)
def bitwise_or(ctx):
    """ONNX ``BitwiseOr``: ``x + y - x * y`` per bit."""
    return _bitwise(ctx, lambda x, y: x + y - x * y)


@converter("BitwiseXor", since=18)
def bitwise_xor(ctx):
    """ONNX ``BitwiseXor``: ``(x + y) mod 2`` per bit."""
    return _bitwise(ctx, lambda x, y: ops.mod(x + y, make_constant(2, x.device, x.dtype)))
