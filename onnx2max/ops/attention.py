"""ONNX ``Attention`` (opsets 23-25): scaled dot-product attention with 3-D or 4-D Q/K/V,
grouped-query heads, a boolean or additive ``attn_mask``, ``is_causal`` (offset-aligned when
a past cache is given), a sliding window (opset 25), ``past_key``/``past_value`` with the
``present_*`` outputs, ``nonpad_kv_seqlen`` (known at conversion), ``softcap``,
``softmax_precision`` and every ``qk_matmul_output_mode``. float16 and bfloat16 inputs are
computed in float32; the outputs are rounded to the input type once, at the end.

It follows the ONNX reference implementation (``onnx/reference/ops/op_attention.py``) step by
step. The causal, window and padding parts of the bias are static, so they are built in numpy;
a row that every key is masked out of gives zeros, as the spec says.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import make_constant
from ..registry import converter

def _heads_first(x: TensorValue, heads: int) -> TensorValue:
    b, s, h = (int(d) for d in x.shape)
    return ops.permute(ops.reshape(x, [b, s, heads, h // heads]), [0, 2, 1, 3])


def _static_bias(q_len, kv_len, batch, causal, offset, left, right, nonpad):
    """The static part of the additive bias (0 or -inf), shape (batch, 1, q, kv), or None."""
    if not causal and left < 0 and right < 0 and nonpad is None:
        return None
    i = np.arange(q_len).reshape(1, q_len, 1)
    j = np.arange(kv_len).reshape(1, 1, kv_len)
    off = np.reshape(offset, (-1, 1, 1))
    allowed = np.ones((off.shape[0], q_len, kv_len), bool)
    if causal:
        allowed &= j <= i + off
    diff = (i + off) - j
    if left >= 0:
        allowed &= diff <= left
    if right >= 0:
        allowed &= -diff <= right
    if nonpad is not None:
        allowed = allowed & (np.arange(kv_len).reshape(1, 1, kv_len) < np.reshape(nonpad, (-1, 1, 1)))
    allowed = np.broadcast_to(allowed, (max(allowed.shape[0], 1), q_len, kv_len))
    if allowed.shape[0] not in (1, batch):
        allowed = np.broadcast_to(allowed[:1], (batch, q_len, kv_len))
    return np.where(allowed, 0.0, -np.inf)[:, None, :, :]


def _attention(ctx):
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    qs = ctx.shape(0)
    out_dt = q.dtype
    # half inputs are computed in float32 and rounded once at the end, as onnxruntime's CPU
    # Attention does (the suite's float16 cases match that to 1e-3; in float16 they did not)
    dt = dtypes.compute_float(out_dt)
    rank = len(qs)
    qh, kvh = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    if rank == 3:
        if qh is None or kvh is None:
            raise ctx.error("3-D inputs need the q_num_heads and kv_num_heads attributes")
        q, k, v = _heads_first(q, int(qh)), _heads_first(k, int(kvh)), _heads_first(v, int(kvh))
    elif rank != 4:
        raise ctx.error(f"Q has rank {rank}; expected 3 or 4")
    batch, n_q, q_len, head = (int(d) for d in q.shape)
    if ctx.has_input(4):
        k = ops.concat([ctx.input(4), k], axis=2)
    if ctx.has_input(5):
        v = ops.concat([ctx.input(5), v], axis=2)
    present_k, present_v = k, v
    if dt != out_dt:
        q, k, v = ops.cast(q, dt), ops.cast(k, dt), ops.cast(v, dt)
    kv_len = int(k.shape[2])
    past = ctx.shape(4)[2] if ctx.has_input(4) else None
    nonpad = None
    if ctx.num_inputs > 6 and ctx.has_input(6):
        nonpad = np.asarray(ctx.const(6)).reshape(-1).astype(np.int64)
    scale = ctx.attr("scale")
    scale = 1.0 / np.sqrt(head) if scale is None else float(scale)
    root = make_constant(np.sqrt(scale), ctx.device, dt)
    causal = bool(ctx.attr("is_causal") or 0)
    left = int(ctx.attr("left_window_size", -1) if ctx.opset >= 25 else -1)
    right = int(ctx.attr("right_window_size", -1) if ctx.opset >= 25 else -1)
    if left is None:
        left = -1
    offset = 0
    if past is not None:
        offset = past
    elif nonpad is not None:
        offset = nonpad - q_len
    n_kv = int(k.shape[1])
    if n_q != n_kv and n_q % n_kv == 0:
        k = ops.repeat_interleave(k, n_q // n_kv, axis=1)
        v = ops.repeat_interleave(v, n_q // n_kv, axis=1)
    scores = ops.matmul(q * root, ops.permute(k * root, [0, 1, 3, 2]))
    softcap = ctx.attr("softcap")
    if softcap is not None and float(softcap) > 0:
        c = make_constant(float(softcap), ctx.device, dt)
        scores = ops.tanh(scores / c) * c
    qk_out = scores
    # the additive bias: the user's mask (bool: True attends), then the static parts
    bias = None
    allowed = None  # bool tensor: which keys a query may attend (for the fully-masked guard)
    if ctx.has_input(3):
        m = ctx.input(3)
        ms = ctx.shape(3)
        if ms[-1] < kv_len:  # padded with "masked" up to kv_len
            pad = [0, 0] * (len(ms) - 1) + [0, kv_len - ms[-1]]
            if m.dtype == DType.bool:
                m = ops.pad(ops.cast(m, DType.int32), pad, value=make_constant(0, ctx.device, DType.int32))
                m = ops.cast(m, DType.bool)
            else:
                m = ops.pad(m, pad, value=make_constant(-np.inf, ctx.device, m.dtype))
        if m.dtype == DType.bool:
            allowed = m
            m = ops.where(m, make_constant(0.0, ctx.device, dt), make_constant(-np.inf, ctx.device, dt))
        else:
            if m.dtype != dt:
                m = ops.cast(m, dt)
            allowed = ops.logical_not(ops.logical_and(ops.is_inf(m), m < make_constant(0.0, ctx.device, dt)))
        bias = m
    static = _static_bias(q_len, kv_len, batch, causal, offset, left, right, nonpad)
    if static is not None:
        sb = make_constant(static, ctx.device, dt)
        bias = sb if bias is None else bias + sb
        st_allowed = make_constant(np.isfinite(static), ctx.device, DType.bool)
        allowed = st_allowed if allowed is None else ops.logical_and(allowed, st_allowed)
    all_masked = None
    if allowed is not None:
        any_allowed = ops.max(ops.cast(allowed, DType.int32), axis=-1)
        all_masked = ops.equal(any_allowed, make_constant(0, ctx.device, DType.int32))
        if all_masked.rank < 4:
            all_masked = ops.reshape(all_masked, [1] * (4 - all_masked.rank) + [int(d) for d in all_masked.shape])
    if bias is not None:
        if bias.rank < 4:
            bias = ops.reshape(bias, [1] * (4 - bias.rank) + [int(d) for d in bias.shape])
        scores = scores + bias
    mode = int(ctx.attr("qk_matmul_output_mode") or 0)
    if mode == 2:
        qk_out = scores
    sp = ctx.attr("softmax_precision")
    work = scores
    if sp is not None:
        work = ops.cast(work, dtypes.to_max(int(sp)))
    probs = ops.softmax(work, axis=-1)
    if all_masked is not None:  # rows where every key is masked give 0, not NaN
        probs = ops.where(all_masked, make_constant(0.0, ctx.device, probs.dtype), probs)
    if mode == 3:
        qk_out = probs
    probs = ops.cast(probs, dt) if probs.dtype != dt else probs
    qk_out = ops.cast(qk_out, out_dt) if qk_out.dtype != out_dt else qk_out
    if int(v.shape[3]) != head:
        # MAX 26.7 computes softmax(...) @ V wrongly when V's head size differs from Q's
        # (errors of 0.05 on the suite's diff_heads_sizes cases); (V^T @ P^T)^T is exact.
        y = ops.permute(ops.matmul(ops.permute(v, [0, 1, 3, 2]), ops.permute(probs, [0, 1, 3, 2])),
                        [0, 1, 3, 2])
    else:
        y = ops.matmul(probs, v)
    if rank == 3:
        b, h, s, d = (int(x) for x in y.shape)
        y = ops.reshape(ops.permute(y, [0, 2, 1, 3]), [b, s, h * d])
    if y.dtype != out_dt:
        y = ops.cast(y, out_dt)
    return y, present_k, present_v, qk_out


@converter("Attention", since=23)
def attention(ctx):
    """ONNX ``Attention`` (see the module docstring)."""
    return _attention(ctx)


@converter("RotaryEmbedding", since=23)
def rotary_embedding(ctx):
    """ONNX ``RotaryEmbedding`` (opset 23): input ``(B, S, N*H)`` (``num_heads``) or
    ``(B, N, S, H)``, the first ``rotary_embedding_dim`` features (default all) rotated by the
    ``cos_cache``/``sin_cache`` rows of ``position_ids`` (or caches already ``(B, S, rot/2)``),
    in halves or ``interleaved`` pairs, as ``onnx/reference/ops/op_rotary_embedding.py``."""
    from .contrib import rotary

    return rotary(ctx, 0, 1, 2, 3, ms=False)
