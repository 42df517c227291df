"""Recurrent layers: RNN, GRU and LSTM (ONNX sections of the same names).

The sequence length is static, so the recurrence is unrolled: one step of matmuls and
activations per time step, in both directions for ``bidirectional``. Supported: ``layout`` 0
and 1, ``initial_h`` (and ``initial_c``, peepholes ``P`` for LSTM), ``activations`` with their
``activation_alpha``/``activation_beta``, ``clip``, ``input_forget`` (LSTM),
``linear_before_reset`` (GRU), and ``sequence_lens`` known at conversion (steps past a
sequence's length keep its state and output zeros, as onnxruntime does).

Gate order in ``W``, ``R`` and ``B``: RNN ``i``; GRU ``z, r, h``; LSTM ``i, o, f, c``.
"""

from __future__ import annotations

import numpy as np
from max.graph import TensorValue, ops

from ..lower import make_constant
from ..registry import converter

_DEFAULTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def _activation(name: str, alpha, beta, like: TensorValue):
    def c(v):
        return make_constant(float(v), like.device, like.dtype)

    n = name.lower()
    if n == "sigmoid":
        return ops.sigmoid
    if n == "tanh":
        return ops.tanh
    if n == "relu":
        return ops.relu
    if n == "hardsigmoid":
        a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        return lambda x: ops.min(ops.max(x * c(a) + c(b), c(0)), c(1))
    if n == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: ops.where(x >= c(0), x, x * c(a))
    if n == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return lambda x: ops.where(x > c(a), x, c(0))
    if n == "scaledtanh":
        return lambda x: ops.tanh(x * c(beta)) * c(alpha)
    if n == "affine":
        return lambda x: x * c(alpha) + c(beta)
    if n == "elu":
        a = 1.0 if alpha is None else alpha
        return lambda x: ops.where(x > c(0), x, (ops.exp(x) - c(1)) * c(a))
    if n == "softsign":
        return lambda x: x / (ops.abs(x) + c(1))
    if n == "softplus":
        return lambda x: ops.log1p(ops.exp(x))
    raise ValueError(f"activation '{name}'")


def _recurrent(ctx, kind: str):
    x, w, r = ctx.input(0), ctx.input(1), ctx.input(2)
    layout = int(ctx.attr("layout", 0) or 0) if ctx.opset >= 14 else 0
    if layout == 1:  # (batch, seq, in) -> (seq, batch, in)
        x = ops.permute(x, [1, 0, 2])
    seq, batch, _ = (int(d) for d in x.shape)
    ndir, gh, _ = ctx.shape(1)
    hidden = int(ctx.attr("hidden_size") or r.shape[-1])
    ngates = gh // hidden
    direction = ctx.attr("direction") or "forward"
    if isinstance(direction, bytes):
        direction = direction.decode()
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    if len(dirs) != ndir:
        raise ctx.error(f"direction '{direction}' but W has {ndir} directions")
    names = [a.decode() if isinstance(a, bytes) else a for a in (ctx.attr("activations") or [])]
    per = len(_DEFAULTS[kind])
    names = names or _DEFAULTS[kind] * ndir
    if len(names) == per:
        names = names * ndir
    alphas = list(ctx.attr("activation_alpha") or [])
    betas = list(ctx.attr("activation_beta") or [])
    try:
        acts = [_activation(n, alphas[i] if i < len(alphas) else None,
                            betas[i] if i < len(betas) else None, x) for i, n in enumerate(names)]
    except ValueError as e:
        raise ctx.error(f"unsupported {e}") from None
    clip = ctx.attr("clip")
    lens = None
    if ctx.has_input(4):
        lens = np.asarray(ctx.const(4)).reshape(-1).astype(np.int64)
        if np.all(lens == seq):
            lens = None
    b = ctx.input(3) if ctx.has_input(3) else None
    h0 = ctx.input(5) if ctx.has_input(5) else None
    c0 = ctx.input(6) if kind == "LSTM" and ctx.has_input(6) else None
    p = ctx.input(7) if kind == "LSTM" and ctx.has_input(7) else None
    if layout == 1:
        h0 = ops.permute(h0, [1, 0, 2]) if h0 is not None else None
        c0 = ops.permute(c0, [1, 0, 2]) if c0 is not None else None
    zeros = make_constant(np.zeros((batch, hidden)), x.device, x.dtype)
    lbr = int(ctx.attr("linear_before_reset", 0) or 0) if kind == "GRU" else 0
    input_forget = int(ctx.attr("input_forget", 0) or 0) if kind == "LSTM" else 0

    def cl(v):
        if clip is None:
            return v
        cv = make_constant(float(clip), x.device, x.dtype)
        return ops.min(ops.max(v, -cv), cv)

    ys, hs, cs = [], [], []
    for d, dname in enumerate(dirs):
        f, g, hact = (acts[d * per:(d + 1) * per] + [None, None])[:3]
        wd = ops.permute(w[d], [1, 0])  # (in, gates*hidden)
        rd = r[d]  # (gates*hidden, hidden)
        wb = b[d][: ngates * hidden] if b is not None else None
        rb = b[d][ngates * hidden:] if b is not None else None
        h = h0[d] if h0 is not None else zeros
        c = c0[d] if c0 is not None else zeros
        xw = ops.matmul(ops.reshape(x, [seq * batch, int(x.shape[2])]), wd)
        if wb is not None:
            xw = xw + wb
        xw = ops.reshape(xw, [seq, batch, ngates * hidden])
        steps = range(seq) if dname == "forward" else range(seq - 1, -1, -1)
        outs = [None] * seq
        for t in steps:
            xt = xw[t]
            if kind == "RNN":
                hr = ops.matmul(h, ops.permute(rd, [1, 0]))
                if rb is not None:
                    hr = hr + rb
                h_new, c_new = f(cl(xt + hr)), None
            elif kind == "GRU":
                rz = ops.permute(rd[: 2 * hidden], [1, 0])
                hz = ops.matmul(h, rz)
                if rb is not None:
                    hz = hz + rb[: 2 * hidden]
                gates = xt[:, : 2 * hidden] + hz
                z = f(cl(gates[:, :hidden]))
                rr = f(cl(gates[:, hidden:]))
                rh = ops.permute(rd[2 * hidden:], [1, 0])
                rbh = rb[2 * hidden:] if rb is not None else None
                if lbr:
                    hh = ops.matmul(h, rh)
                    if rbh is not None:
                        hh = hh + rbh
                    cand = g(cl(xt[:, 2 * hidden:] + rr * hh))
                else:
                    hh = ops.matmul(rr * h, rh)
                    if rbh is not None:
                        hh = hh + rbh
                    cand = g(cl(xt[:, 2 * hidden:] + hh))
                one = make_constant(1.0, x.device, x.dtype)
                h_new, c_new = (one - z) * cand + z * h, None
            else:  # LSTM: gates i, o, f, c
                gates = xt + ops.matmul(h, ops.permute(rd, [1, 0]))
                if rb is not None:
                    gates = gates + rb
                gi, go, gf, gc = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
                if p is not None:
                    pi, po, pf = (p[d][k * hidden:(k + 1) * hidden] for k in range(3))
                    gi = gi + pi * c
                    gf = gf + pf * c
                i_t = f(cl(gi))
                f_t = (make_constant(1.0, x.device, x.dtype) - i_t) if input_forget else f(cl(gf))
                c_new = f_t * c + i_t * g(cl(gc))
                if p is not None:
                    go = go + po * c_new
                o_t = f(cl(go))
                h_new = o_t * hact(c_new)
            if lens is not None:  # steps past a sequence's end keep its state, output zeros
                live = make_constant((t < lens).reshape(batch, 1), x.device)
                out = ops.where(live, h_new, zeros)
                h_new = ops.where(live, h_new, h)
                if c_new is not None:
                    c_new = ops.where(live, c_new, c)
            else:
                out = h_new
            outs[t] = out
            h = h_new
            if c_new is not None:
                c = c_new
        ys.append(ops.stack(outs, axis=0))  # (seq, batch, hidden)
        hs.append(h)
        cs.append(c)
    y = ops.stack(ys, axis=1)  # (seq, dirs, batch, hidden)
    yh = ops.stack(hs, axis=0)
    yc = ops.stack(cs, axis=0)
    if layout == 1:
        y = ops.permute(y, [2, 0, 1, 3])
        yh = ops.permute(yh, [1, 0, 2])
        yc = ops.permute(yc, [1, 0, 2])
    return (y, yh, yc) if kind == "LSTM" else (y, yh)


@converter("RNN", since=1)
def rnn(ctx):
    """ONNX ``RNN``: ``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)`` (see the module docstring)."""
    return _recurrent(ctx, "RNN")


@converter("GRU", since=1)
def gru(ctx):
    """ONNX ``GRU`` with ``linear_before_reset`` (see the module docstring)."""
    return _recurrent(ctx, "GRU")


@converter("LSTM", since=1)
def lstm(ctx):
    """ONNX ``LSTM`` with peepholes and ``input_forget`` (see the module docstring)."""
    return _recurrent(ctx, "LSTM")
