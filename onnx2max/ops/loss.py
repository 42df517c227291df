"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (ONNX sections of the same
names), with class weights, ``ignore_index`` and ``reduction`` none, sum or mean.

The target class is picked with a one-hot comparison against ``range(C)`` on the class axis
(axis 1), so a target equal to ``ignore_index`` (even outside ``[0, C)``) contributes 0 and
weighs 0 in the mean.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from ..lower import make_constant
from ..registry import converter


def _nll(ctx, logp: TensorValue, target: TensorValue, weight: TensorValue | None) -> TensorValue:
    xs = [int(d) for d in logp.shape]
    c = xs[1]
    r = len(xs)
    dt = logp.dtype
    target = ops.cast(target, DType.int64) if target.dtype != DType.int64 else target
    classes = make_constant(np.arange(c, dtype=np.int64).reshape([1, c] + [1] * (r - 2)), ctx.device)
    hot = ops.equal(ops.unsqueeze(target, 1), classes)  # (N, C, d...)
    zero = make_constant(0.0, ctx.device, dt)
    picked = ops.squeeze(ops.sum(ops.where(hot, logp, zero), axis=1), 1)
    if weight is not None:
        w = ops.reshape(weight, [1, c] + [1] * (r - 2))
        wt = ops.squeeze(ops.sum(ops.where(hot, ops.broadcast_to(w, xs), zero), axis=1), 1)
    else:
        wt = ops.cast(ops.squeeze(ops.max(ops.cast(hot, DType.int32), axis=1), 1), dt)
    ignore = ctx.attr("ignore_index")
    if ignore is not None:
        valid = ops.logical_not(ops.equal(target, make_constant(int(ignore), ctx.device, DType.int64)))
        wt = ops.where(valid, wt, zero)
    loss = -picked * wt
    red = ctx.attr("reduction") or "mean"
    if isinstance(red, bytes):
        red = red.decode()
    if red == "none":
        return loss
    flat = ops.reshape(loss, [-1])
    total = ops.squeeze(ops.sum(flat, axis=0), 0)
    if red == "sum":
        return total
    if red != "mean":
        raise ctx.error(f"reduction '{red}'; expected none, sum or mean")
    return total / ops.squeeze(ops.sum(ops.reshape(wt, [-1]), axis=0), 0)


@converter("NegativeLogLikelihoodLoss", since=12)
def nll_loss(ctx):
    """ONNX ``NegativeLogLikelihoodLoss``: ``-input[n, target[n, d...], d...] * weight[target]``,
    reduced (see the module docstring)."""
    return _nll(ctx, ctx.input(0), ctx.input(1), ctx.input(2) if ctx.has_input(2) else None)


@converter("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy(ctx):
    """ONNX ``SoftmaxCrossEntropyLoss``: ``log_softmax`` over the class axis (1), then the
    negative log-likelihood; the optional second output is the log-probabilities."""
    logp = ops.logsoftmax(ctx.input(0), axis=1)
    loss = _nll(ctx, logp, ctx.input(1), ctx.input(2) if ctx.has_input(2) else None)
    return (loss, logp) if ctx.output_used(1) else loss
