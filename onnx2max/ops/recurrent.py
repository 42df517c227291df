"""Recurrent layers: RNN, GRU and LSTM (ONNX sections of the same names).

The input projection ``X W^T + Wb`` of every time step is one matmul; the recurrence then runs
as one MAX ``ops.while_loop`` per direction, whose body (one cell step) MAX compiles once
whatever the sequence length. A one-step sequence is computed directly. Supported: ``layout`` 0
and 1, ``initial_h`` (and ``initial_c``, peepholes ``P`` for LSTM), ``activations`` with their
``activation_alpha``/``activation_beta``, ``clip``, ``input_forget`` (LSTM),
``linear_before_reset`` (GRU), and ``sequence_lens`` known at conversion (steps past a
sequence's length keep its state and output zeros, as onnxruntime does).

Gate order in ``W``, ``R`` and ``B``: RNN ``i``; GRU ``z, r, h``; LSTM ``i, o, f, c``.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from ..lower import make_constant, unroll_rnn
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


#: gates per cell (ONNX RNN, GRU, LSTM sections)
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _check_shapes(ctx, kind, ndir, hidden, batch, layout) -> None:
    """The input shapes the ONNX sections require, checked before anything reaches MAX (which
    does not check them): W ``[dirs, G*hidden, in]``, R ``[dirs, G*hidden, hidden]``, B
    ``[dirs, 2*G*hidden]``, sequence_lens ``[batch]``, initial_h/initial_c ``[dirs, batch,
    hidden]`` (``[batch, dirs, hidden]`` with layout 1), P ``[dirs, 3*hidden]``."""
    g = _GATES[kind] * hidden
    n_in = ctx.shape(0)[2]
    state = (batch, ndir, hidden) if layout == 1 else (ndir, batch, hidden)
    want = {1: ("W", (ndir, g, n_in)), 2: ("R", (ndir, g, hidden)), 3: ("B", (ndir, 2 * g)),
            4: ("sequence_lens", (batch,)), 5: ("initial_h", state)}
    if kind == "LSTM":
        want.update({6: ("initial_c", state), 7: ("P", (ndir, 3 * hidden))})
    for i, (name, shape) in want.items():
        if ctx.has_input(i) and tuple(ctx.shape(i)) != shape:
            raise ctx.error(f"input {i} ({name}) has shape {list(ctx.shape(i))}; expected "
                            f"{list(shape)} for {ndir} direction(s), hidden_size {hidden}, "
                            f"batch {batch} and input size {n_in}")


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
    _check_shapes(ctx, kind, ndir, hidden, batch, layout)
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

    one = make_constant(1.0, x.device, x.dtype)
    # W and R transposed to (dirs, in|hidden, gates*hidden): once at load when they are
    # initializers, else once per call in the graph (never per time step)
    n_in = int(x.shape[2])
    w_t = ctx.derived("swap_last2", [1], (ndir, n_in, gh))
    r_t = ctx.derived("swap_last2", [2], (ndir, hidden, gh))
    w_t = w_t if w_t is not None else ops.permute(w, [0, 2, 1])
    r_t = r_t if r_t is not None else ops.permute(r, [0, 2, 1])
    ys, hs, cs = [], [], []
    for d, dname in enumerate(dirs):
        f, g, hact = (acts[d * per:(d + 1) * per] + [None, None])[:3]
        wd = w_t[d]  # (in, gates*hidden)
        rt = r_t[d]  # (hidden, gates*hidden)
        wb = b[d][: ngates * hidden] if b is not None else None
        rb = b[d][ngates * hidden:] if b is not None else None
        peep = [p[d][k * hidden:(k + 1) * hidden] for k in range(3)] if p is not None else None
        h = h0[d] if h0 is not None else zeros
        c = (c0[d] if c0 is not None else zeros) if kind == "LSTM" else None
        xw = ops.matmul(ops.reshape(x, [seq * batch, n_in]), wd)
        if wb is not None:
            xw = xw + wb
        xw = ops.reshape(xw, [seq, batch, ngates * hidden])

        def step(xt, h, c, live, f=f, g=g, hact=hact, rt=rt, rb=rb, peep=peep):
            """One time step: ``(output, h, c)`` from the input projection ``xt``."""
            if kind == "RNN":
                hr = ops.matmul(h, rt)
                if rb is not None:
                    hr = hr + rb
                h_new, c_new = f(cl(xt + hr)), None
            elif kind == "GRU":
                hz = ops.matmul(h, rt[:, : 2 * hidden])
                if rb is not None:
                    hz = hz + rb[: 2 * hidden]
                gates = xt[:, : 2 * hidden] + hz
                z = f(cl(gates[:, :hidden]))
                rr = f(cl(gates[:, hidden:]))
                rh = rt[:, 2 * hidden:]
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
                h_new, c_new = (one - z) * cand + z * h, None
            else:  # LSTM: gates i, o, f, c
                gates = xt + ops.matmul(h, rt)
                if rb is not None:
                    gates = gates + rb
                gi, go, gf, gc = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
                if peep is not None:
                    gi = gi + peep[0] * c
                    gf = gf + peep[2] * c
                i_t = f(cl(gi))
                f_t = (one - i_t) if input_forget else f(cl(gf))
                c_new = f_t * c + i_t * g(cl(gc))
                if peep is not None:
                    go = go + peep[1] * c_new
                o_t = f(cl(go))
                h_new = o_t * hact(c_new)
            if live is None:
                return h_new, h_new, c_new
            # steps past a sequence's end keep its state and output zeros
            return (ops.where(live, h_new, zeros), ops.where(live, h_new, h),
                    None if c_new is None else ops.where(live, c_new, c))

        if seq <= _UNROLL_MAX_STEPS or unroll_rnn():
            y, h, c = _unrolled(step, xw, h, c, seq, batch, lens, dname == "reverse", x)
        else:
            y, h, c = _looped(step, xw, h, c, seq, batch, hidden, lens, dname == "reverse", x)
        ys.append(y)  # (seq, batch, hidden)
        hs.append(h)
        cs.append(c)
    y = ops.stack(ys, axis=1)  # (seq, dirs, batch, hidden)
    yh = ops.stack(hs, axis=0)
    yc = ops.stack(cs, axis=0) if kind == "LSTM" else None
    if layout == 1:
        y = ops.permute(y, [2, 0, 1, 3])
        yh = ops.permute(yh, [1, 0, 2])
        yc = ops.permute(yc, [1, 0, 2]) if yc is not None else None
    return (y, yh, yc) if kind == "LSTM" else (y, yh)


#: sequences of at most this many steps are unrolled; longer ones run as one ``ops.while_loop``
#: whose body MAX compiles once (see docs/performance.md for the compile times of both)
_UNROLL_MAX_STEPS = 1


def _unrolled(step, xw, h, c, seq, batch, lens, reverse, like):
    outs = [None] * seq
    for t in (range(seq - 1, -1, -1) if reverse else range(seq)):
        live = None if lens is None else make_constant((t < lens).reshape(batch, 1), like.device)
        outs[t], h, c = step(xw[t], h, c, live)
    return ops.stack(outs, axis=0), h, c


def _looped(step, xw, h, c, seq, batch, hidden, lens, reverse, like):
    """The recurrence as ``ops.while_loop`` over ``t = 0 .. seq-1``: the carried values are
    ``t``, ``h``, (``c``) and the output ``Y`` (seq, batch, hidden), whose row ``t`` (or
    ``seq-1-t`` in reverse) each step writes with a ``where`` against an iota."""
    dev = like.device
    i64 = DType.int64
    last = ops.constant(seq - 1, i64, device=dev)
    iota = ops.constant(np.arange(seq, dtype=np.int64).reshape(seq, 1, 1), i64, device=dev)
    lens_c = None if lens is None else ops.constant(lens.reshape(batch, 1), i64, device=dev)
    y0 = make_constant(np.zeros((seq, batch, hidden)), dev, like.dtype)
    has_c = c is not None

    def pred(t, *_):
        return t <= last

    def body(t, *vals):
        h, y = vals[0], vals[-1]
        cc = vals[1] if has_c else None
        idx = last - t if reverse else t
        xt = ops.squeeze(ops.gather(xw, ops.reshape(idx, [1]), axis=0), 0)
        live = None if lens_c is None else ops.greater(lens_c, idx)
        out, h, cc = step(xt, h, cc, live)
        y = ops.where(ops.equal(iota, idx), ops.unsqueeze(out, 0), y)
        return [t + ops.constant(1, i64, device=dev), h] + ([cc] if has_c else []) + [y]

    res = ops.while_loop([ops.constant(0, i64, device=dev), h] + ([c] if has_c else []) + [y0], pred, body)
    return res[-1], res[1], (res[2] if has_c else None)


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
