"""onnxruntime's own operators (the ``com.microsoft`` domain, and the two it defines in the
ONNX domain at version 1), as onnxruntime's transformer optimizer and quantization tools write
them into exported models.

The semantics follow onnxruntime's operator documentation (``docs/ContribOperators.md``) and its
CPU kernels, and each converter is tested against onnxruntime (``tests/cases.py``,
``contrib_cases``). The forms that need run-time sequence bookkeeping (a past key/value cache,
packed QKV, rotary embedding inside Attention) raise ``ConversionError`` naming what is missing.

- Activations: ``Gelu`` and ``BiasGelu`` (erf), ``FastGelu`` (tanh approximation, optional
  bias), ``QuickGelu`` (``x * sigmoid(alpha x)``).
- ``FusedGemm`` and ``FusedConv``: Gemm / Conv followed by the activation the optimizer fused
  into them (``activation`` and its parameters).
- Normalizations: ``SkipLayerNormalization`` and ``SkipSimplifiedLayerNormalization``
  (``input + skip + bias``, then LayerNorm / RMSNorm), ``SimplifiedLayerNormalization``
  (RMSNorm, in the ONNX domain), ``LayerNormalization`` before opset 17 (onnxruntime's version 1
  in the ONNX domain, the meaning opset 17 adopted).
- Attention: ``Attention`` (one input projected by packed QKV weights), ``MultiHeadAttention``
  (separate Q, K, V), ``GroupQueryAttention`` (no past cache), ``RotaryEmbedding``.
- ``MatMulNBits``: MatMul by a block-quantized weight (2, 4 or 8 bits), dequantized in the
  graph from the packed initializer.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..layout import ChannelsLast
from ..lower import as_dtype
from ..registry import converter
from .activation import _c
from .matmul import batched_matmul, gemm
from .nn import conv, layer_norm
from .norm import stash_dtype

MS = "com.microsoft"

_SQRT_2_OVER_PI = 0.7978845608028654


def _gelu_erf(x: TensorValue) -> TensorValue:
    return ops.gelu(x)


def _gelu_tanh(x: TensorValue) -> TensorValue:
    inner = (x + x * x * x * _c(x, 0.044715)) * _c(x, _SQRT_2_OVER_PI)
    return x * _c(x, 0.5) * (ops.tanh(inner) + _c(x, 1.0))


# ------------------------------------------------------------------ activations
@converter("Gelu", domain=MS)
def ms_gelu(ctx):
    """``com.microsoft.Gelu``: ``0.5 x (1 + erf(x / sqrt 2))``. MAX ``ops.gelu``."""
    return _gelu_erf(ctx.input(0))


@converter("BiasGelu", domain=MS)
def bias_gelu(ctx):
    """``com.microsoft.BiasGelu``: ``Gelu(A + B)`` (erf form); B is the bias of the last axis."""
    return _gelu_erf(ctx.input(0) + ctx.input(1))


@converter("FastGelu", domain=MS)
def fast_gelu(ctx):
    """``com.microsoft.FastGelu``: the tanh approximation
    ``0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3)))`` of ``y = X + bias`` (bias optional)."""
    x = ctx.input(0)
    if ctx.has_input(1):
        x = x + ctx.input(1)
    return _gelu_tanh(x)


@converter("QuickGelu", domain=MS)
def quick_gelu(ctx):
    """``com.microsoft.QuickGelu``: ``x * sigmoid(alpha * x)`` (alpha default 1.702)."""
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha", 1.702))
    return x * ops.sigmoid(x * _c(x, alpha))


def _activation(ctx, x: TensorValue, name, params: dict) -> TensorValue:
    """The activation onnxruntime fused into FusedGemm / FusedConv (its ``activation``
    attribute), with the ONNX defaults of the op of that name for parameters not given."""
    name = name.decode() if isinstance(name, bytes) else (name or "")

    def p(key, default):
        v = params.get(key)
        return float(default if v is None else v)

    if name in ("", "Identity"):
        return x
    if name == "Relu":
        return ops.relu(x)
    if name == "Tanh":
        return ops.tanh(x)
    if name == "Sigmoid":
        return ops.sigmoid(x)
    if name == "LeakyRelu":
        a = p("alpha", 0.01)
        return ops.where(x >= _c(x, 0.0), x, x * _c(x, a))
    if name == "HardSigmoid":
        y = x * _c(x, p("alpha", 0.2)) + _c(x, p("beta", 0.5))
        return ops.min(ops.max(y, _c(x, 0.0)), _c(x, 1.0))
    if name == "Clip":
        lo, hi = params.get("min"), params.get("max")
        if lo is not None:
            x = ops.max(x, _c(x, float(lo)))
        if hi is not None:
            x = ops.min(x, _c(x, float(hi)))
        return x
    if name == "Elu":
        a = p("alpha", 1.0)
        return ops.where(x >= _c(x, 0.0), x, (ops.exp(x) - _c(x, 1.0)) * _c(x, a))
    if name == "Selu":
        a, g = p("alpha", 1.67326319217681884765625), p("gamma", 1.05070102214813232421875)
        return ops.where(x > _c(x, 0.0), x, (ops.exp(x) - _c(x, 1.0)) * _c(x, a)) * _c(x, g)
    if name == "Softsign":
        return x / (ops.abs(x) + _c(x, 1.0))
    if name == "Softplus":
        return ops.log(ops.exp(x) + _c(x, 1.0))
    if name == "ThresholdedRelu":
        return ops.where(x > _c(x, p("alpha", 1.0)), x, _c(x, 0.0))
    if name == "ScaledTanh":
        return ops.tanh(x * _c(x, p("beta", 1.0))) * _c(x, p("alpha", 1.0))
    if name == "ParametricSoftplus":
        a, b = p("alpha", 1.0), p("beta", 1.0)
        return ops.log(ops.exp(x * _c(x, b)) + _c(x, 1.0)) * _c(x, a)
    raise ctx.error(f"fused activation '{name}' is not supported (Relu, Tanh, Sigmoid, LeakyRelu, "
                    "HardSigmoid, Clip, Elu, Selu, Softsign, Softplus, ThresholdedRelu, "
                    "ScaledTanh, ParametricSoftplus are)")


@converter("FusedGemm", domain=MS)
def fused_gemm(ctx):
    """``com.microsoft.FusedGemm``: ONNX Gemm (``alpha``, ``beta``, ``transA``, ``transB``)
    followed by ``activation`` with ``activation_alpha`` / ``activation_beta`` /
    ``activation_gamma`` (``leaky_relu_alpha`` in older models)."""
    y = gemm(ctx)
    params = {k: ctx.attr(f"activation_{k}", None) for k in ("alpha", "beta", "gamma")}
    if params["alpha"] is None and ctx.has_attr("leaky_relu_alpha"):
        params["alpha"] = ctx.attr("leaky_relu_alpha")
    return _activation(ctx, y, ctx.attr("activation", ""), params)


_CONV_PARAMS = {"LeakyRelu": ("alpha",), "HardSigmoid": ("alpha", "beta"), "Clip": ("min", "max"),
                "Elu": ("alpha",), "ThresholdedRelu": ("alpha",), "Selu": ("alpha", "gamma"),
                "ScaledTanh": ("alpha", "beta"), "ParametricSoftplus": ("alpha", "beta")}


@converter("FusedConv", domain=MS)
def fused_conv(ctx):
    """``com.microsoft.FusedConv``: ONNX Conv (1-D and 2-D), plus the optional input ``Z``
    (added before the activation), then ``activation`` with ``activation_params`` in the order
    onnxruntime reads them (LeakyRelu: alpha; HardSigmoid: alpha, beta; Clip: min, max)."""
    y = conv(ctx)
    name = ctx.attr("activation", "")
    name = name.decode() if isinstance(name, bytes) else (name or "")
    values = list(ctx.attr("activation_params", None) or [])
    params = dict(zip(_CONV_PARAMS.get(name, ()), values))
    last = isinstance(y, ChannelsLast)
    v = y.value if last else y
    if ctx.num_inputs > 3 and ctx.has_input(3):
        v = v + (ctx.input_last(3) if last else ctx.input(3))
    v = _activation(ctx, v, name, params)
    return ChannelsLast(v) if last else v


# ------------------------------------------------------------------ normalizations
def _skip_sum(ctx, bias_input: int) -> tuple[TensorValue, DType]:
    """``input + skip (+ bias)`` of the Skip*LayerNormalization ops, in
    ``dtypes.compute_float`` of the input's dtype (float32 for half precision, unrounded, as
    onnxruntime's CPU float16 results match), and the input's dtype."""
    dt = ctx.input(0).dtype
    wide = dtypes.compute_float(dt)
    s = as_dtype(ctx.input(0), wide) + as_dtype(ctx.input(1), wide)
    if ctx.num_inputs > bias_input and ctx.has_input(bias_input):
        s = s + as_dtype(ctx.input(bias_input), wide)
    return s, dt


@converter("SkipLayerNormalization", domain=MS)
def skip_layer_norm(ctx):
    """``com.microsoft.SkipLayerNormalization``: ``s = input + skip (+ bias)``, then LayerNorm
    over the last axis with ``gamma`` (and ``beta``), ``epsilon``. Outputs: the result, the mean
    and inverse standard deviation (shape ``(..., 1)``, float32: the schema's type U), and
    ``s``. Half-precision inputs are summed and normalised in float32 and rounded once
    (onnxruntime's CPU float16 result is the same in the suite's case)."""
    sf, dt = _skip_sum(ctx, 4)
    wide = sf.dtype
    eps = float(ctx.attr("epsilon", 1e-12))
    mean = ops.mean(sf, axis=-1)
    centered = sf - mean
    inv = ops.rsqrt(ops.mean(centered * centered, axis=-1) + _c(sf, eps))
    y = centered * inv * as_dtype(ctx.input(2), wide)
    if ctx.has_input(3):
        y = y + as_dtype(ctx.input(3), wide)
    return as_dtype(y, dt), as_dtype(mean, DType.float32), as_dtype(inv, DType.float32), as_dtype(sf, dt)


@converter("SkipSimplifiedLayerNormalization", domain=MS)
def skip_simplified_layer_norm(ctx):
    """``com.microsoft.SkipSimplifiedLayerNormalization``: ``s = input + skip (+ bias)``, then
    RMSNorm over the last axis (``s / sqrt(mean(s^2) + epsilon) * gamma``). Outputs: the
    result, mean (unused by onnxruntime: not produced), inverse RMS (float32: the schema's type
    U), and ``s``. Half-precision inputs are summed and normalised in float32 and rounded once."""
    if ctx.output_used(1):
        raise ctx.error("output 1 (mean) is not computed by RMS normalization")
    sf, dt = _skip_sum(ctx, 3)
    eps = float(ctx.attr("epsilon", 1e-12))
    inv = ops.rsqrt(ops.mean(sf * sf, axis=-1) + _c(sf, eps))
    y = sf * inv * as_dtype(ctx.input(2), sf.dtype)
    return as_dtype(y, dt), None, as_dtype(inv, DType.float32), as_dtype(sf, dt)


@converter("SimplifiedLayerNormalization")
def simplified_layer_norm(ctx):
    """onnxruntime's ``SimplifiedLayerNormalization`` (ONNX domain, version 1): RMSNorm over
    axes ``[axis, rank)``: ``x / sqrt(mean(x^2) + epsilon) * scale``; output 1 is the inverse
    RMS, of the ``stash_type`` dtype (float32 by default). Half-precision inputs are computed in
    float32 and rounded once."""
    x = ctx.input(0)
    r = ctx.rank(0)
    axis = int(ctx.attr("axis", -1)) % r
    stash = stash_dtype(ctx)
    wide = dtypes.compute_float(x.dtype)
    eps = float(ctx.attr("epsilon", 1e-5))
    xs = ctx.shape(0)
    n = int(np.prod(xs[axis:], dtype=np.int64))
    xf = ops.reshape(as_dtype(x, wide), [*xs[:axis], n])
    inv = ops.rsqrt(ops.mean(xf * xf, axis=-1) + _c(xf, eps))
    y = ops.reshape(xf * inv, list(xs)) * as_dtype(ctx.input(1), wide)
    return as_dtype(y, x.dtype), as_dtype(ops.reshape(inv, [*xs[:axis], *([1] * (r - axis))]), stash)


@converter("LayerNormalization", since=1)
def layer_norm_v1(ctx):
    """onnxruntime's ``LayerNormalization`` version 1 in the ONNX domain (models of opset < 17):
    the meaning ONNX adopted at opset 17 (see :func:`onnx2max.ops.nn.layer_norm`)."""
    return layer_norm(ctx)


# ------------------------------------------------------------------ attention
def _heads(x: TensorValue, b: int, s: int, n: int) -> TensorValue:
    """``(B, S, N*H)`` -> ``(B, N, S, H)``."""
    h = int(x.shape[-1]) // n
    return ops.permute(ops.reshape(x, [b, s, n, h]), [0, 2, 1, 3])


def _merge(y: TensorValue) -> TensorValue:
    """``(B, N, S, H)`` -> ``(B, S, N*H)``."""
    b, n, s, h = (int(d) for d in y.shape)
    return ops.reshape(ops.permute(y, [0, 2, 1, 3]), [b, s, n * h])


def _sdpa(q, k, v, scale: float, bias: TensorValue | None) -> TensorValue:
    """``softmax(q k^T * scale + bias) v`` on ``(B, N, S, H)`` values."""
    scores = batched_matmul(q, ops.permute(k, [0, 1, 3, 2])) * _c(q, scale)
    if bias is not None:
        scores = scores + bias
    probs = ops.softmax(scores, axis=-1)
    if int(v.shape[-1]) != int(q.shape[-1]):
        # MAX 26.7 computes P @ V wrongly when V's head size differs from Q's (see attention.py)
        return ops.permute(batched_matmul(ops.permute(v, [0, 1, 3, 2]), ops.permute(probs, [0, 1, 3, 2])),
                           [0, 1, 3, 2])
    return batched_matmul(probs, v)


def _key_mask_bias(ctx, i: int, b: int, s: int, t: int, filler: float, dt) -> TensorValue | None:
    """The additive bias ``(B, 1, S or 1, T)`` of an onnxruntime ``mask_index`` /
    ``key_padding_mask`` input: 1-D key lengths (right padding), or a 2-D / 3-D 0-1 mask
    (0 masks the key). Masked keys get ``filler`` (``mask_filter_value``), as onnxruntime adds."""
    m = ctx.input(i)
    ms = ctx.shape(i)
    filler_c = ops.constant(np.array(filler, np.float32), DType.float32, device=m.device)
    zero = ops.constant(np.array(0.0, np.float32), DType.float32, device=m.device)
    if ms == (b,):
        pos = ops.constant(np.arange(t, dtype=np.int64).reshape(1, t), DType.int64, device=m.device)
        keep = pos < ops.reshape(ops.cast(m, DType.int64), [b, 1])
        bias = ops.reshape(ops.where(keep, zero, filler_c), [b, 1, 1, t])
    elif ms in ((b, t), (b, s, t)):
        masked = ops.equal(ops.cast(m, DType.int32),
                           ops.constant(np.array(0, np.int32), DType.int32, device=m.device))
        bias = ops.reshape(ops.where(masked, filler_c, zero), [b, 1, s if len(ms) == 3 else 1, t])
    else:
        raise ctx.error(f"mask input {i} has shape {ms}; supported are ({b},) key lengths and "
                        f"({b}, {t}) or ({b}, {s}, {t}) 0/1 masks")
    return bias if dt == DType.float32 else ops.cast(bias, dt)


def _causal_bias(s: int, t: int, filler: float, dt, device) -> TensorValue:
    """0 where key ``j <= i + (t - s)``, ``filler`` elsewhere, shape ``(1, 1, S, T)``."""
    i = np.arange(s).reshape(s, 1)
    j = np.arange(t).reshape(1, t)
    arr = np.where(j <= i + (t - s), 0.0, filler).astype(np.float32).reshape(1, 1, s, t)
    c = ops.constant(arr, DType.float32, device=device)
    return c if dt == DType.float32 else ops.cast(c, dt)


def _f32_constant(arr: np.ndarray, like: TensorValue) -> TensorValue:
    c = ops.constant(arr.astype(np.float32), DType.float32, device=like.device)
    return c if like.dtype == DType.float32 else ops.cast(c, like.dtype)


def _add(a, b):
    return b if a is None else (a if b is None else a + b)


@converter("Attention", domain=MS)
def ms_attention(ctx):
    """``com.microsoft.Attention``: ``input (B, S, D) @ weights (D, Dq+Dk+Dv) + bias`` split
    into Q, K, V (``qkv_hidden_sizes``, default three equal parts), ``num_heads`` heads,
    ``softmax(Q K^T * scale + masks) V`` with ``scale`` default ``1/sqrt(head size)``. Masks:
    ``mask_index`` (key lengths, or a 2-D / 3-D 0/1 mask; masked keys get
    ``mask_filter_value``, default -10000), ``unidirectional`` (causal), ``attention_bias``
    (input 5). Not supported: ``past`` / ``present``, ``do_rotary``, 4-D masks."""
    x = ctx.input(0)
    b, s, _ = ctx.shape(0)
    n = int(ctx.attr("num_heads"))
    sizes = ctx.attr("qkv_hidden_sizes", None)
    total = ctx.shape(1)[1]
    sizes = [int(v) for v in sizes] if sizes else [total // 3] * 3
    if sum(sizes) != total:
        raise ctx.error(f"qkv_hidden_sizes {sizes} do not add up to the weights' {total} columns")
    if ctx.num_inputs > 4 and ctx.has_input(4) or ctx.output_used(1):
        raise ctx.error("a past key/value cache ('past' input, 'present' output) is not supported")
    if ctx.num_inputs > 6 and ctx.has_input(6):
        raise ctx.error("past_sequence_length is not supported")
    if int(ctx.attr("do_rotary", 0)):
        raise ctx.error("do_rotary=1 is not supported")
    ctx.attr("rotary_embedding_dim", 0)
    ctx.attr("past_present_share_buffer", 0)
    qkv = ops.matmul(x, ctx.input(1))
    if ctx.has_input(2):
        qkv = qkv + ctx.input(2)
    q = qkv[:, :, 0:sizes[0]]
    k = qkv[:, :, sizes[0]:sizes[0] + sizes[1]]
    v = qkv[:, :, sizes[0] + sizes[1]:total]
    q, k, v = _heads(q, b, s, n), _heads(k, b, s, n), _heads(v, b, s, n)
    head = sizes[0] // n
    scale = float(ctx.attr("scale", 0.0)) or 1.0 / np.sqrt(head)
    filler = float(ctx.attr("mask_filter_value", -10000.0))
    bias = None
    if ctx.has_input(3):
        bias = _key_mask_bias(ctx, 3, b, s, s, filler, x.dtype)
    if int(ctx.attr("unidirectional", 0)):
        bias = _add(bias, _causal_bias(s, s, filler, x.dtype, x.device))
    if ctx.num_inputs > 5 and ctx.has_input(5):
        bias = _add(bias, ctx.input(5))
    return _merge(_sdpa(q, k, v, scale, bias)), None


@converter("MultiHeadAttention", domain=MS)
def multi_head_attention(ctx):
    """``com.microsoft.MultiHeadAttention`` with separate 3-D ``query (B, S, D)``, ``key``
    ``(B, L, D)`` and ``value (B, L, Dv)``: the optional ``bias (D + D + Dv)`` added to each,
    ``num_heads`` heads, ``softmax(Q K^T * scale + masks) V``. Masks: ``key_padding_mask``
    (key lengths, or a 2-D / 3-D 0/1 mask, masked keys get ``mask_filter_value``),
    ``unidirectional``, ``attention_bias``. ``present_key`` / ``present_value`` are K and V in
    ``(B, N, L, H)``. Not supported: packed QKV or KV, a past cache, the ``qk`` output."""
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    if ctx.rank(0) != 3 or not ctx.has_input(1) or ctx.rank(1) != 3 or not ctx.has_input(2):
        raise ctx.error("only separate 3-D query, key and value are supported (not packed QKV/KV "
                        "or key/value already split into heads)")
    for i, what in ((6, "past_key"), (7, "past_value"), (8, "past_sequence_length"),
                    (9, "cache_indirection")):
        if ctx.num_inputs > i and ctx.has_input(i):
            raise ctx.error(f"input {what} is not supported")
    if ctx.output_used(3):
        raise ctx.error("the qk output is not supported")
    b, s, d = ctx.shape(0)
    t = ctx.shape(1)[1]
    dv = ctx.shape(2)[2]
    n = int(ctx.attr("num_heads"))
    if ctx.has_input(3):
        bias = ctx.input(3)
        q = q + bias[0:d]
        k = k + bias[d:2 * d]
        v = v + bias[2 * d:2 * d + dv]
    qh, kh, vh = _heads(q, b, s, n), _heads(k, b, t, n), _heads(v, b, t, n)
    scale = float(ctx.attr("scale", 0.0)) or 1.0 / np.sqrt(d // n)
    filler = float(ctx.attr("mask_filter_value", -10000.0))
    mask = None
    if ctx.num_inputs > 4 and ctx.has_input(4):
        mask = _key_mask_bias(ctx, 4, b, s, t, filler, q.dtype)
    if int(ctx.attr("unidirectional", 0)):
        mask = _add(mask, _causal_bias(s, t, filler, q.dtype, q.device))
    if ctx.num_inputs > 5 and ctx.has_input(5):
        mask = _add(mask, ctx.input(5))
    return _merge(_sdpa(qh, kh, vh, scale, mask)), kh, vh, None


@converter("GroupQueryAttention", domain=MS)
def group_query_attention(ctx):
    """``com.microsoft.GroupQueryAttention`` for a prompt without a past cache: 3-D
    ``query (B, S, N*H)``, ``key``/``value (B, S, Nkv*H)``, each KV head shared by
    ``num_heads / kv_num_heads`` query heads, causal, keys beyond ``seqlens_k[b]`` (total
    length - 1, input 5) masked; ``scale``, ``softcap``, ``local_window_size``. ``present_key``
    / ``present_value`` are K and V in ``(B, Nkv, S, H)``. Not supported: ``past_key`` /
    ``past_value`` holding tokens, packed QKV, ``do_rotary``, smooth softmax, head sinks."""
    q = ctx.input(0)
    if not (ctx.has_input(1) and ctx.has_input(2)):
        raise ctx.error("packed QKV (no key and value inputs) is not supported")
    for i in (3, 4):
        if ctx.has_input(i) and int(np.prod(ctx.shape(i), dtype=np.int64)) != 0:
            raise ctx.error("a past key/value cache holding tokens is not supported")
    for i, what in ((7, "cos_cache"), (8, "sin_cache"), (9, "position_ids"), (10, "attention_bias"),
                    (11, "head_sink")):
        if ctx.num_inputs > i and ctx.has_input(i):
            raise ctx.error(f"input {what} is not supported")
    if int(ctx.attr("do_rotary", 0)) or int(ctx.attr("smooth_softmax", 0)):
        raise ctx.error("do_rotary and smooth_softmax are not supported")
    ctx.attr("rotary_interleaved", 0)
    b, s, _ = ctx.shape(0)
    n, nkv = int(ctx.attr("num_heads")), int(ctx.attr("kv_num_heads"))
    qh = _heads(q, b, s, n)
    kh, vh = _heads(ctx.input(1), b, s, nkv), _heads(ctx.input(2), b, s, nkv)
    head = int(qh.shape[-1])
    scale = float(ctx.attr("scale", 0.0)) or 1.0 / np.sqrt(head)
    k_rep = ops.repeat_interleave(kh, n // nkv, axis=1) if n != nkv else kh
    v_rep = ops.repeat_interleave(vh, n // nkv, axis=1) if n != nkv else vh
    # causal (and local window) by position, keys past seqlens_k[b] masked
    i = np.arange(s).reshape(s, 1)
    j = np.arange(s).reshape(1, s)
    allowed = j <= i
    window = int(ctx.attr("local_window_size", -1))
    if window > 0:
        allowed &= j > i - window
    lowest = float(np.finfo(np.float32).min)
    static = _f32_constant(np.where(allowed, 0.0, lowest).reshape(1, 1, s, s), q)
    lens = ops.reshape(ops.cast(ctx.input(5), DType.int64), [b, 1, 1, 1])
    pos = ops.constant(np.arange(s, dtype=np.int64).reshape(1, 1, 1, s), DType.int64, device=q.device)
    padding = ops.where(pos <= lens, _c(q, 0.0), _c(q, lowest))  # keys past seqlens_k[b]
    scores = ops.matmul(qh, ops.permute(k_rep, [0, 1, 3, 2])) * _c(q, scale)
    softcap = float(ctx.attr("softcap", 0.0))
    if softcap > 0:
        scores = ops.tanh(scores / _c(q, softcap)) * _c(q, softcap)
    # additive masks, as for the other attention ops (a boolean where() mask gave wrong rows
    # after the first in MAX 26.7); two lowest values add up to -inf, still 0 after softmax
    probs = ops.softmax(scores + static + padding, axis=-1)
    ctx.attr("qk_output", 0)
    return _merge(ops.matmul(probs, v_rep)), kh, vh


def _rotate(x: TensorValue, cos: TensorValue, sin: TensorValue, rot: int, interleaved: bool):
    """Rotary embedding of ``x (B, S, N, H)`` with ``cos``/``sin`` ``(B, S, 1, rot/2)``: the
    first ``rot`` features rotated in halves or interleaved pairs, the rest unchanged."""
    b, s, n, h = (int(d) for d in x.shape)
    half = rot // 2
    xr = x[:, :, :, 0:rot]
    if interleaved:
        pairs = ops.reshape(xr, [b, s, n, half, 2])
        x1 = ops.squeeze(pairs[:, :, :, :, 0:1], -1)
        x2 = ops.squeeze(pairs[:, :, :, :, 1:2], -1)
    else:
        x1, x2 = xr[:, :, :, 0:half], xr[:, :, :, half:rot]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        out = ops.reshape(ops.stack([real, imag], axis=-1), [b, s, n, rot])
    else:
        out = ops.concat([real, imag], axis=-1)
    if rot < h:
        out = ops.concat([out, x[:, :, :, rot:h]], axis=-1)
    return out


def rotary(ctx, x_i: int, cos_i: int, sin_i: int, pos_i: int | None, ms: bool):
    """Rotary embedding shared by ONNX ``RotaryEmbedding`` (opset 23) and onnxruntime's: input
    ``(B, S, N*H)`` (``num_heads``) or ``(B, N, S, H)``; ``cos``/``sin`` caches indexed by
    ``position_ids`` (``(B, S)``; onnxruntime also takes ``(1,)``, a start offset), or, without
    position ids (ONNX), already ``(B, S, rot/2)``."""
    x = ctx.input(x_i)
    xs = ctx.shape(x_i)
    interleaved = bool(int(ctx.attr("interleaved", 0)))
    rot = int(ctx.attr("rotary_embedding_dim", 0) or 0)
    heads = ctx.attr("num_heads", 0)
    if ms:
        if float(ctx.attr("scale", 1.0)) != 1.0:
            raise ctx.error("scale other than 1.0 is not supported")
        if int(ctx.attr("is_packed_batching", 0)):
            raise ctx.error("is_packed_batching=1 is not supported")
    if len(xs) == 4:
        b, n, s, h = xs
        x4 = ops.permute(x, [0, 2, 1, 3])
    elif len(xs) == 3:
        b, s, hidden = xs
        if not heads:
            if not rot:
                raise ctx.error("a 3-D input needs num_heads (or rotary_embedding_dim)")
            heads = hidden // (2 * (ctx.shape(cos_i)[-1]))
        n = int(heads)
        h = hidden // n
        x4 = ops.reshape(x, [b, s, n, h])
    else:
        raise ctx.error(f"input has rank {len(xs)}; expected 3 or 4")
    rot = rot or h
    cos, sin = ctx.input(cos_i), ctx.input(sin_i)
    if pos_i is not None and ctx.has_input(pos_i):
        ps = ctx.shape(pos_i)
        pos = ops.cast(ctx.input(pos_i), DType.int64)
        if ps == (1,) or ps == ():
            pos = ops.reshape(pos, [1, 1]) + ops.constant(
                np.arange(s, dtype=np.int64).reshape(1, s), DType.int64, device=x.device)
            pos = ops.broadcast_to(pos, [b, s])
        cos, sin = ops.gather(cos, pos, axis=0), ops.gather(sin, pos, axis=0)
    if int(cos.shape[-1]) != rot // 2:
        raise ctx.error(f"the cos cache has {int(cos.shape[-1])} columns; rotary_embedding_dim "
                        f"{rot} needs {rot // 2}")
    cos = ops.reshape(cos, [int(cos.shape[0]), s, 1, rot // 2])
    sin = ops.reshape(sin, [int(sin.shape[0]), s, 1, rot // 2])
    y = _rotate(x4, cos, sin, rot, interleaved)
    if len(xs) == 4:
        return ops.permute(y, [0, 2, 1, 3])
    return ops.reshape(y, list(xs))


@converter("RotaryEmbedding", domain=MS)
def ms_rotary_embedding(ctx):
    """``com.microsoft.RotaryEmbedding(input, position_ids, cos_cache, sin_cache)`` (see
    :func:`rotary`)."""
    return rotary(ctx, 0, 2, 3, 1, ms=True)


# ------------------------------------------------------------------ quantized weights
@converter("MatMulNBits", domain=MS)
def matmul_nbits(ctx):
    """``com.microsoft.MatMulNBits``: ``Y = A @ W^T (+ bias)``, ``W (N, K)`` stored as ``bits``-bit
    unsigned integers packed little-end first in ``B (N, blocks, block_size * bits / 8)``,
    dequantized per block as ``(q - zero_point) * scale``; zero points packed like B (default
    ``2^(bits-1)``) or given as floats. Unpacked in the graph with integer arithmetic (MAX has
    no bitwise ops), so the weight stays packed in memory. Not supported: ``g_idx``."""
    K, N = int(ctx.attr("K")), int(ctx.attr("N"))
    bits, block = int(ctx.attr("bits", 4)), int(ctx.attr("block_size"))
    ctx.attr("accuracy_level", 0)
    if bits not in (2, 4, 8):
        raise ctx.error(f"bits={bits}; supported are 2, 4 and 8")
    if ctx.num_inputs > 4 and ctx.has_input(4):
        raise ctx.error("g_idx is not supported")
    a = ctx.input(0)
    blocks = (K + block - 1) // block
    per = 8 // bits
    bs = ctx.shape(1)
    if tuple(bs) != (N, blocks, block * bits // 8):
        raise ctx.error(f"B has shape {bs}; K={K}, N={N}, bits={bits}, block_size={block} need "
                        f"{(N, blocks, block * bits // 8)}")
    dev = a.device

    def unpack(packed: TensorValue) -> TensorValue:
        """uint8 ``(..., m)`` -> int32 ``(..., m * per)`` values, low bits first."""
        p = ops.cast(packed, DType.int32)
        if per == 1:
            return p
        shifts = ops.constant(np.array([1 << (bits * i) for i in range(per)], np.int32),
                              DType.int32, device=dev)
        mod = ops.constant(np.array(1 << bits, np.int32), DType.int32, device=dev)
        vals = ops.floor_div(ops.unsqueeze(p, -1), shifts) % mod
        shape = [int(d) for d in packed.shape]
        return ops.reshape(vals, [*shape[:-1], shape[-1] * per])

    q = unpack(ctx.input(1))  # (N, blocks, block)
    scales = ops.reshape(ctx.input(2), [N, blocks, 1])
    if ctx.has_input(3):
        zs = ctx.shape(3)
        z = ctx.input(3)
        if z.dtype == DType.uint8:
            z = unpack(ops.reshape(z, [N, int(np.prod(zs)) // N]))
            z = ops.reshape(z[:, 0:blocks], [N, blocks, 1])
            w = ops.cast(q - z, a.dtype) * scales
        else:
            w = (ops.cast(q, a.dtype) - ops.reshape(z, [N, blocks, 1])) * scales
    else:
        mid = ops.constant(np.array(1 << (bits - 1), np.int32), DType.int32, device=dev)
        w = ops.cast(q - mid, a.dtype) * scales
    w = ops.reshape(w, [N, blocks * block])
    if blocks * block != K:
        w = w[:, 0:K]
    y = ops.matmul(a, ops.permute(w, [1, 0]))
    if ctx.num_inputs > 5 and ctx.has_input(5):
        y = y + ctx.input(5)
    return y
