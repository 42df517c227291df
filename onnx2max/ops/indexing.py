"""Indexing and rearranging ops: ArgMax, ArgMin, TopK, Hardmax, CumSum, Trilu, Tile,
GatherElements, GatherND, OneHot, DepthToSpace, SpaceToDepth, Pad (ONNX "Operators"
sections of the same names). Indices, repeats, pads and ``k`` must be known at conversion.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops

from .. import dtypes
from ..lower import make_constant
from ..registry import converter
from .matmul import as_3d_matmul, batched_matmul


def _ints(v) -> list[int]:
    return [int(a) for a in np.asarray(v).reshape(-1)]


def _flip(x: TensorValue, axis: int) -> TensorValue:
    idx = [slice(None)] * x.rank
    idx[axis] = (slice(None, None, -1), int(x.shape[axis]))
    return ops.slice_tensor(x, idx)


def _arg(ctx, fn):
    x = ctx.input(0)
    r = ctx.rank(0)
    axis = int(ctx.attr("axis")) % r
    keep = int(ctx.attr("keepdims"))
    last = int(ctx.attr("select_last_index", 0) or 0)
    n = ctx.shape(0)[axis]
    if last:  # the last of equal extremes: search the reversed axis
        i = fn(_flip(x, axis), axis)
        i = make_constant(np.array(n - 1, np.int64), x.device, DType.int64) - i
    else:
        i = fn(x, axis)
    if not keep:
        i = ops.squeeze(i, axis)
    return i


@converter("ArgMax", since=1)
def argmax(ctx):
    """ONNX ``ArgMax``: int64 index of the first (or, with ``select_last_index``, the last)
    maximum along ``axis``; ``keepdims`` keeps the axis (MAX ``ops.argmax``)."""
    return _arg(ctx, lambda x, a: ops.argmax(x, axis=a))


@converter("ArgMin", since=1)
def argmin(ctx):
    """ONNX ``ArgMin``: as ArgMax, for the minimum (MAX ``ops.argmin``)."""
    return _arg(ctx, lambda x, a: ops.argmin(x, axis=a))


@converter("TopK", since=1)
def top_k(ctx):
    """ONNX ``TopK``: the ``k`` largest (``largest=1``) or smallest values along ``axis`` and
    their int64 indices, sorted (MAX ``ops.top_k``; the smallest as top-k of the negation).
    ``k`` is an attribute before opset 10, an input after."""
    x = ctx.input(0)
    axis = int(ctx.attr("axis")) % ctx.rank(0)
    k = int(ctx.attr("k")) if ctx.opset < 10 else int(np.asarray(ctx.const(1)).reshape(-1)[0])
    largest = int(ctx.attr("largest", 1) if ctx.opset >= 11 else 1)
    # sorted=0 allows any order, so the sorted output of ops.top_k is right for it too
    if largest:
        return ops.top_k(x, k, axis)
    if x.dtype in (DType.uint8, DType.uint16, DType.uint32, DType.uint64, DType.bool):
        raise ctx.error(f"largest=0 on {x.dtype} is not supported")
    v, i = ops.top_k(-x, k, axis)
    return -v, i


@converter("Hardmax", since=1)
def hardmax(ctx):
    """ONNX ``Hardmax``: 1 at the first maximum along ``axis`` (from opset 13; before, of the
    input flattened to 2-D at ``axis``), 0 elsewhere."""
    x = ctx.input(0)
    xs = ctx.shape(0)
    r = len(xs)
    axis = int(ctx.attr("axis")) % r
    if ctx.opset < 13:
        inner = int(np.prod(xs[axis:], dtype=np.int64))
        flat = ops.reshape(x, [int(np.prod(xs[:axis], dtype=np.int64)), inner])
        y = _one_hot_of_argmax(flat, 1, inner)
        return ops.reshape(y, list(xs))
    return _one_hot_of_argmax(x, axis, xs[axis])


def _one_hot_of_argmax(x, axis, n):
    i = ops.argmax(x, axis=axis)
    shape = [1] * x.rank
    shape[axis] = n
    pos = ops.reshape(make_constant(np.arange(n, dtype=np.int64), x.device, DType.int64), shape)
    return ops.cast(ops.equal(i, pos), x.dtype)


@converter("CumSum", since=11)
def cumsum(ctx):
    """ONNX ``CumSum`` along the axis given as input 1; ``exclusive`` and ``reverse``
    (MAX ``ops.cumsum``)."""
    axis = int(np.asarray(ctx.const(1)).reshape(-1)[0]) % ctx.rank(0)
    return ops.cumsum(ctx.input(0), axis=axis, exclusive=bool(ctx.attr("exclusive")),
                      reverse=bool(ctx.attr("reverse")))


@converter("Trilu", since=14)
def trilu(ctx):
    """ONNX ``Trilu``: keep the upper (``upper=1``) or lower triangle of the last two dims,
    shifted by ``k`` (input 1); the rest is 0. Built as a constant mask and ``ops.where``."""
    x = ctx.input(0)
    xs = ctx.shape(0)
    k = int(np.asarray(ctx.const(1)).reshape(-1)[0]) if ctx.has_input(1) else 0
    n, m = xs[-2], xs[-1]
    rows, cols = np.arange(n)[:, None], np.arange(m)[None, :]
    keep = (cols - rows >= k) if int(ctx.attr("upper")) else (cols - rows <= k)
    mask = make_constant(keep, x.device, DType.bool)
    return ops.where(mask, x, make_constant(np.zeros((), np.float64), x.device, x.dtype))


@converter("Tile", since=6)
def tile(ctx):
    """ONNX ``Tile``: repeat along each axis by ``repeats`` (input 1; MAX ``ops.tile``)."""
    reps = _ints(ctx.const(1))
    if all(r == 1 for r in reps):
        return ctx.input(0)
    return ops.tile(ctx.input(0), reps)


@converter("GatherElements", since=11)
def gather_elements(ctx):
    """ONNX ``GatherElements``: ``out[i][j][k] = data[index[i][j][k]][j][k]`` for ``axis=0``
    (and so on); negative indices count from the end. Built with ``ops.gather_nd`` over full
    coordinates."""
    data, idx = ctx.input(0), ctx.input(1)
    ds, ishape = ctx.shape(0), ctx.shape(1)
    r = len(ds)
    axis = int(ctx.attr("axis")) % r
    idx = ops.cast(idx, DType.int64)
    n = make_constant(np.array(ds[axis], np.int64), data.device, DType.int64)
    idx = ops.where(idx < make_constant(np.array(0, np.int64), data.device, DType.int64), idx + n, idx)
    coords = []
    for a in range(r):
        if a == axis:
            coords.append(ops.unsqueeze(idx, -1))
        else:
            grid = np.indices(ishape)[a].astype(np.int64)[..., None]
            coords.append(make_constant(grid, data.device, DType.int64))
    return ops.gather_nd(data, ops.concat(coords, axis=-1))


@converter("GatherND", since=11)
def gather_nd(ctx):
    """ONNX ``GatherND`` with ``batch_dims`` (opset 12); negative indices count from the end
    (MAX ``ops.gather_nd``)."""
    data, idx = ctx.input(0), ops.cast(ctx.input(1), DType.int64)
    b = int(ctx.attr("batch_dims", 0) or 0)
    ds, ishape = ctx.shape(0), ctx.shape(1)
    q = ishape[-1]
    dims = np.array(ds[b:b + q], np.int64)
    lim = make_constant(dims, data.device, DType.int64)
    idx = ops.where(idx < make_constant(np.array(0, np.int64), data.device, DType.int64), idx + lim, idx)
    return ops.gather_nd(data, idx, batch_dims=b)


@converter("OneHot", since=9)
def one_hot(ctx):
    """ONNX ``OneHot``: ``depth`` (input 1) known at conversion, ``values = [off, on]``
    (input 2); negative indices count from the end; a new axis at ``axis``."""
    idx = ctx.input(0)
    depth = int(np.asarray(ctx.const(1)).reshape(-1)[0])
    values = ctx.input(2)
    r = ctx.rank(0) + 1
    axis = int(ctx.attr("axis")) % r
    idx = ops.cast(idx, DType.int64) if idx.dtype != DType.int64 else idx
    if idx.dtype in (DType.float32, DType.float64, DType.float16):
        idx = ops.cast(ops.trunc(ctx.input(0)), DType.int64)
    d = make_constant(np.array(depth, np.int64), idx.device, DType.int64)
    idx = ops.where(idx < make_constant(np.array(0, np.int64), idx.device, DType.int64), idx + d, idx)
    shape = [1] * r
    shape[axis] = depth
    pos = ops.reshape(make_constant(np.arange(depth, dtype=np.int64), idx.device, DType.int64), shape)
    hit = ops.equal(ops.unsqueeze(idx, axis), pos)
    off, on = values[0], values[1]
    return ops.where(hit, on, off)


@converter("DepthToSpace", since=1)
def depth_to_space(ctx):
    """ONNX ``DepthToSpace``: NCHW, ``blocksize`` b, mode ``DCR`` (default) or ``CRD``;
    a reshape, a permute and a reshape."""
    n, c, h, w = ctx.shape(0)
    b = int(ctx.attr("blocksize"))
    mode = ctx.attr("mode", "DCR") if ctx.opset >= 11 else "DCR"
    x = ctx.input(0)
    if mode == "DCR":
        t = ops.reshape(x, [n, b, b, c // (b * b), h, w])
        t = ops.permute(t, [0, 3, 4, 1, 5, 2])
    else:
        t = ops.reshape(x, [n, c // (b * b), b, b, h, w])
        t = ops.permute(t, [0, 1, 4, 2, 5, 3])
    return ops.reshape(t, [n, c // (b * b), h * b, w * b])


@converter("SpaceToDepth", since=1)
def space_to_depth(ctx):
    """ONNX ``SpaceToDepth``: NCHW, ``blocksize`` b, mode ``DCR`` (the default) or ``CRD``
    (opset 28); the inverse of DepthToSpace of the same mode. A reshape, a permute and a
    reshape."""
    n, c, h, w = ctx.shape(0)
    b = int(ctx.attr("blocksize"))
    mode = ctx.attr("mode", "DCR") if ctx.opset >= 28 else "DCR"
    if mode not in ("DCR", "CRD"):
        raise ctx.error(f"mode {mode!r} is not one of DCR, CRD")
    t = ops.reshape(ctx.input(0), [n, c, h // b, b, w // b, b])
    t = ops.permute(t, [0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4])
    return ops.reshape(t, [n, c * b * b, h // b, w // b])


@converter("Pad", since=1)
def pad(ctx):
    """ONNX ``Pad``: ``pads = [x1_begin, x2_begin, ..., x1_end, x2_end, ...]`` (attribute before
    opset 11, input after), ``axes`` (opset 18), modes ``constant``, ``reflect``, ``edge`` and
    ``wrap``. Negative pads crop. MAX ``ops.pad`` takes per-axis (begin, end) pairs."""
    x = ctx.input(0)
    xs = ctx.shape(0)
    r = len(xs)
    mode = ctx.attr("mode") or "constant"
    if ctx.opset < 11:
        pads = _ints(ctx.attr("pads") if ctx.has_attr("pads") else ctx.attr("paddings"))
        value = float(ctx.attr("value", 0.0) or 0.0)
        axes = list(range(r))
    else:
        pads = _ints(ctx.const(1))
        value = np.asarray(ctx.const(2)).reshape(-1)[0] if ctx.has_input(2) else 0
        axes = [a % r for a in _ints(ctx.const(3))] if ctx.has_input(3) else list(range(r))
    k = len(axes)
    if len(pads) != 2 * k:
        raise ctx.error(f"pads has {len(pads)} values; expected {2 * k}")
    begin, end = [0] * r, [0] * r
    for j, a in enumerate(axes):
        begin[a], end[a] = pads[j], pads[j + k]
    # crop first (negative pads)
    if any(p < 0 for p in begin + end):
        idx = [slice(max(-b, 0), xs[a] - max(-e, 0)) for a, (b, e) in enumerate(zip(begin, end))]
        x = x[tuple(idx)]
        xs = [xs[a] - max(-begin[a], 0) - max(-end[a], 0) for a in range(r)]
        begin, end = [max(p, 0) for p in begin], [max(p, 0) for p in end]
    if not any(begin + end):
        return x
    if mode == "wrap":
        for a in range(r):
            if begin[a] or end[a]:
                n = xs[a]
                parts = []
                if begin[a]:
                    parts.append(_take(x, a, n - begin[a], n))
                parts.append(x)
                if end[a]:
                    parts.append(_take(x, a, 0, end[a]))
                x = ops.concat(parts, axis=a)
                xs = list(xs)
                xs[a] += begin[a] + end[a]
        return x
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.error(f"mode '{mode}'; expected constant, reflect, edge or wrap")
    flat = [p for a in range(r) for p in (begin[a], end[a])]
    if mode == "constant":
        v = make_constant(np.asarray(value, dtype=np.float64), x.device, x.dtype)
        return ops.pad(x, flat, mode="constant", value=v)
    return ops.pad(x, flat, mode=mode)


def _take(x, axis, start, stop):
    idx = [slice(None)] * x.rank
    idx[axis] = slice(start, stop)
    return x[tuple(idx)]


_SCATTER = {"none": ops.scatter, "add": ops.scatter_add, "mul": ops.scatter_mul,
            "max": ops.scatter_max, "min": ops.scatter_min}
_SCATTER_ND = {"none": ops.scatter_nd, "add": ops.scatter_nd_add, "mul": ops.scatter_nd_mul,
               "max": ops.scatter_nd_max, "min": ops.scatter_nd_min}


def _wrap_negative(idx: TensorValue, limit) -> TensorValue:
    idx = ops.cast(idx, DType.int64) if idx.dtype != DType.int64 else idx
    lim = make_constant(np.asarray(limit, np.int64), idx.device, DType.int64)
    zero = make_constant(np.array(0, np.int64), idx.device, DType.int64)
    return ops.where(idx < zero, idx + lim, idx)


@converter("ScatterElements", since=11)
def scatter_elements(ctx):
    """ONNX ``ScatterElements``: ``out[index[i][j]][j] = updates[i][j]`` for ``axis=0`` (and so
    on), with ``reduction`` none, add, mul, max or min (opsets 16 and 18); negative indices
    count from the end (MAX ``ops.scatter`` and ``ops.scatter_add`` ...)."""
    data = ctx.input(0)
    axis = int(ctx.attr("axis")) % ctx.rank(0)
    red = (ctx.attr("reduction") if ctx.opset >= 16 else None) or "none"
    if red not in _SCATTER:
        raise ctx.error(f"reduction '{red}'; expected none, add, mul, max or min")
    idx = _wrap_negative(ctx.input(1), ctx.shape(0)[axis])
    return _SCATTER[red](data, ctx.input(2), idx, axis=axis)


@converter("Scatter", since=9)
def scatter_v9(ctx):
    """ONNX ``Scatter`` (deprecated in opset 11): ScatterElements without reduction."""
    data = ctx.input(0)
    axis = int(ctx.attr("axis")) % ctx.rank(0)
    idx = _wrap_negative(ctx.input(1), ctx.shape(0)[axis])
    return ops.scatter(data, ctx.input(2), idx, axis=axis)


@converter("ScatterND", since=11)
def scatter_nd(ctx):
    """ONNX ``ScatterND``: write ``updates`` at the index tuples of ``indices`` (last dim q
    indexes the first q axes), with ``reduction`` none, add, mul, max or min (opsets 16 and 18;
    MAX ``ops.scatter_nd`` and ``ops.scatter_nd_add`` ...)."""
    red = (ctx.attr("reduction") if ctx.opset >= 16 else None) or "none"
    if red not in _SCATTER_ND:
        raise ctx.error(f"reduction '{red}'; expected none, add, mul, max or min")
    q = ctx.shape(1)[-1]
    idx = _wrap_negative(ctx.input(1), ctx.shape(0)[:q])
    return _SCATTER_ND[red](ctx.input(0), ctx.input(2), idx)


def _einsum_diagonal(ctx, x, t: str, s: list[int]):
    """Take the diagonal of every index that ``t`` repeats: returns ``(x, t, s)`` with each
    index once (a repeated index moves to the end)."""
    while True:
        dup = next((c for c in t if t.count(c) > 1), None)
        if dup is None:
            return x, t, tuple(s)
        i = t.index(dup)
        j = t.index(dup, i + 1)
        if s[i] != s[j]:
            raise ctx.error(f"index '{dup}' of term '{t}' has sizes {s[i]} and {s[j]}; a "
                            "repeated index needs equal sizes")
        n = s[i]
        rest = [k for k in range(len(t)) if k not in (i, j)]
        order = rest + [i, j]
        if order != list(range(len(t))):
            x = ops.permute(x, order)
        x = ops.reshape(x, [s[k] for k in rest] + [n * n])
        x = ops.gather(x, ctx.constant(np.arange(n, dtype=np.int64) * (n + 1)), axis=len(rest))
        t = "".join(t[k] for k in rest) + dup
        s = [s[k] for k in rest] + [n]


@converter("Einsum", since=12)
def einsum(ctx):
    """ONNX ``Einsum`` (explicit ``->`` or implicit output, ``...`` for broadcast dims). Two
    operands of static shape are one (batched) MAX ``ops.matmul`` between transposes and
    reshapes (:func:`_einsum_matmul`). Otherwise each operand is permuted and reshaped onto one
    shared index order, the operands are multiplied with broadcasting, and the contracted
    indices are summed (memory grows with the product of all index sizes). A repeated index inside one
    operand (``ii->i``, ``iij->ij``) first takes that operand's diagonal: the two axes are
    flattened into one and every ``n+1``-th element gathered (MAX ``ops.gather``)."""
    eq = str(ctx.attr("equation")).replace(" ", "")
    xs = [ctx.input(i) for i in range(ctx.num_inputs)]
    shapes = [ctx.shape(i) for i in range(ctx.num_inputs)]
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(xs):
        raise ctx.error(f"equation '{eq}' has {len(terms)} operands, the node {len(xs)}")
    ell_rank = max((len(s) - (len(t) - 3) for t, s in zip(terms, shapes) if "..." in t), default=0)
    ell = [chr(0x100 + i) for i in range(ell_rank)]  # stand-in letters for the "..." dims
    subs = []
    counts = {}  # occurrences of each index over all terms, repeats within a term included
    for k, (t, s) in enumerate(zip(terms, shapes)):
        if "..." in t:
            a, b = t.split("...")
            n_ell = len(s) - len(a) - len(b)
            t = a + "".join(ell[ell_rank - n_ell:]) + b
        if len(t) != len(s):
            raise ctx.error(f"term '{t}' does not match an operand of rank {len(s)}")
        for c in t:
            counts[c] = counts.get(c, 0) + 1
        xs[k], t, shapes[k] = _einsum_diagonal(ctx, xs[k], t, list(s))
        subs.append(t)
    if _ == "":  # implicit output: indices used once, in alphabetical order, after "..."
        out = "".join(ell) + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        if "..." in rhs:
            a, b = rhs.split("...")
            rhs = a + "".join(ell) + b
        out = rhs
    letters = list(out) + sorted({c for t in subs for c in t} - set(out))
    size = {}
    for t, s in zip(subs, shapes):
        for c, d in zip(t, s):
            if size.get(c, 1) == 1:
                size[c] = d
    if len(xs) == 2:
        y = _einsum_matmul(xs, subs, shapes, out)
        if y is not None:
            return y
    acc = None
    for x, t, s in zip(xs, subs, shapes):
        present = [c for c in letters if c in t]
        x = ops.permute(x, [t.index(c) for c in present]) if present != list(t) else x
        full = [(size[c] if c in t and s[t.index(c)] != 1 else 1) if c in t else 1 for c in letters]
        x = ops.reshape(x, full)
        acc = x if acc is None else acc * x
    for k in range(len(letters) - 1, len(out) - 1, -1):
        acc = ops.squeeze(ops.sum(acc, axis=k), k)
    target = [size[c] for c in out]
    if list(acc.shape) != target:
        acc = ops.broadcast_to(acc, target)
    return acc


def _einsum_matmul(xs, subs, shapes, out: str) -> TensorValue | None:
    """Two-operand Einsum as one batched MatMul, never materialising the product of all
    indices: indices of one operand only that the output lacks are summed first; the operands
    become ``[batch..., M, K]`` and ``[batch..., K, N]`` (batch: in both and in the output; K:
    in both, not in the output; M, N: in one operand and in the output); the product
    ``[batch..., M, N]`` is reshaped and permuted to ``out``. Batch dims of size 1 broadcast;
    two or more batch dims are flattened into one (:func:`~onnx2max.ops.matmul.as_3d_matmul`).
    ``None`` (the caller's general path) for symbolic dims or a contracted index whose sizes
    differ."""
    if not all(isinstance(d, int) for s in shapes for d in s):
        return None
    if any(x.dtype not in dtypes.MAX_FLOATS for x in xs):
        return None  # MAX's matmul is for floats; integer Einsum takes the general path
    xs, subs, shapes = list(xs), list(subs), [list(s) for s in shapes]
    for k in (0, 1):  # indices only this operand has and the output lacks: sum them now
        other = subs[1 - k]
        for c in [c for c in subs[k] if c not in other and c not in out]:
            ax = subs[k].index(c)
            xs[k] = ops.squeeze(ops.sum(xs[k], axis=ax), ax)
            subs[k] = subs[k].replace(c, "")
            del shapes[k][ax]
    (a, b), (ta, tb), (sa, sb) = xs, subs, shapes
    dim = lambda t, s, c: s[t.index(c)]  # noqa: E731
    batch = [c for c in out if c in ta and c in tb]
    contract = [c for c in ta if c in tb and c not in out]
    m_idx = [c for c in out if c in ta and c not in tb]
    n_idx = [c for c in out if c in tb and c not in ta]
    if any(dim(ta, sa, c) != dim(tb, sb, c) for c in contract):
        return None
    size = {c: max(dim(ta, sa, c), dim(tb, sb, c)) for c in batch}
    size.update({c: dim(ta, sa, c) for c in m_idx + contract})
    size.update({c: dim(tb, sb, c) for c in n_idx})
    k_size = int(np.prod([size[c] for c in contract], dtype=np.int64))

    def operand(x, t, s, free, free_last):
        order = batch + (free + contract if not free_last else contract + free)
        if order != list(t):
            x = ops.permute(x, [t.index(c) for c in order])
        f = int(np.prod([size[c] for c in free], dtype=np.int64))
        tail = [f, k_size] if not free_last else [k_size, f]
        return ops.reshape(x, [dim(t, s, c) for c in batch] + tail)

    a, b = operand(a, ta, sa, m_idx, False), operand(b, tb, sb, n_idx, True)
    # two or more batch dims: as a 3-D product, which MAX 26.7 does not fuse into its attention
    # kernel (wrong when the value head size differs; see matmul.attention_values_misfused)
    y = as_3d_matmul(a, b) if len(batch) >= 2 else batched_matmul(a, b)
    have = batch + m_idx + n_idx
    y = ops.reshape(y, [int(d) for d in y.shape[:len(batch)]] + [size[c] for c in m_idx + n_idx])
    if have != list(out):
        y = ops.permute(y, [have.index(c) for c in out])
    return y


def _shift(x: TensorValue, axis: int, k: int, fill) -> TensorValue:
    """``x`` shifted by ``k`` along ``axis`` (towards higher indices), ``fill`` coming in."""
    n = int(x.shape[axis])
    shape = [int(d) for d in x.shape]
    shape[axis] = min(k, n)
    pad = ops.broadcast_to(make_constant(fill, x.device, x.dtype), shape)
    if k >= n:
        return pad
    return ops.concat([pad, _take(x, axis, 0, n - k)], axis=axis)


@converter("CumProd", since=26)
def cumprod(ctx):
    """ONNX ``CumProd`` along the axis given as input 1, ``exclusive`` and ``reverse``: a
    log-depth scan (``ceil(log2 n)`` shifted multiplications)."""
    x = ctx.input(0)
    axis = int(np.asarray(ctx.const(1)).reshape(-1)[0]) % ctx.rank(0)
    if int(ctx.attr("reverse") or 0):
        x = _flip(x, axis)
    if int(ctx.attr("exclusive") or 0):
        x = _shift(x, axis, 1, 1)
    n, k = int(x.shape[axis]), 1
    while k < n:
        x = x * _shift(x, axis, k, 1)
        k *= 2
    if int(ctx.attr("reverse") or 0):
        x = _flip(x, axis)
    return x


def _nonzero_rows(ctx, x: TensorValue) -> TensorValue:
    """MAX ``ops.nonzero``: the ``(count, rank)`` int64 indices of ``x``'s nonzero elements in
    row-major order; ``count`` is a new symbolic dim, known only at run time."""
    if x.dtype != DType.bool:
        x = ops.not_equal(x, ctx.constant(np.zeros((), x.dtype.to_numpy()), x.dtype))
    return ops.nonzero(x, ctx.new_dim("nonzero"))


@converter("NonZero", since=9)
def nonzero(ctx):
    """ONNX ``NonZero``: the indices of the nonzero elements, shape ``(rank, count)``, row-major
    order. The count is a symbolic dim of the MAX graph (MAX ``ops.nonzero``), so the model
    compiles once for every input. (Folded instead when the input is known at conversion.)"""
    if ctx.rank(0) == 0:
        raise ctx.error("a 0-d input: MAX's nonzero needs rank >= 1")
    return ops.transpose(_nonzero_rows(ctx, ctx.input(0)), 0, 1)


@converter("Compress", since=9)
def compress(ctx):
    """ONNX ``Compress``: the slices of ``input`` along ``axis`` (the flattened input when no
    axis) where the 1-D bool ``condition`` is true; a condition shorter than the axis selects
    among its first elements. The selected count is a symbolic dim (MAX ``ops.nonzero`` of the
    condition, then ``ops.gather``)."""
    x = ctx.input(0)
    if ctx.rank(1) != 1:
        raise ctx.error(f"condition has rank {ctx.rank(1)}; expected 1-D")
    axis = ctx.attr("axis")
    if ctx.is_const(1):  # a condition known at conversion selects a static number of slices
        idx = ctx.constant(np.nonzero(ctx.const(1).astype(bool))[0].astype(np.int64))
    else:
        idx = ops.reshape(_nonzero_rows(ctx, ctx.input(1)), [-1])
    if axis is None:
        x = ops.reshape(x, [-1])
        axis = 0
    return ops.gather(x, idx, axis=int(axis) % ctx.rank(0))


@converter("ReverseSequence", since=10)
def reverse_sequence(ctx):
    """ONNX ``ReverseSequence``: along ``time_axis``, the first ``sequence_lens[b]`` elements of
    each batch entry (``batch_axis``) reversed, the rest copied. One MAX ``ops.gather`` over the
    flattened (batch, time) rows, with source rows computed from ``sequence_lens`` at run time."""
    x = ctx.input(0)
    xs = ctx.shape(0)
    ba, ta = int(ctx.attr("batch_axis")), int(ctx.attr("time_axis"))
    if sorted((ba, ta)) != [0, 1]:
        raise ctx.error(f"batch_axis {ba} and time_axis {ta}; they must be 0 and 1")
    r = len(xs)
    b, t = xs[ba], xs[ta]
    rest = list(xs[2:])
    if ba == 1:
        x = ops.permute(x, [1, 0, *range(2, r)])  # (B, T, ...)
    dev = x.device
    lens = ops.reshape(ops.cast(ctx.input(1), DType.int64), [b, 1])
    steps = make_constant(np.arange(t, dtype=np.int64).reshape(1, t), dev)
    src = ops.where(steps < lens, lens - make_constant(np.int64(1), dev) - steps,
                    ops.broadcast_to(steps, [b, t]))
    rows = src + make_constant((np.arange(b, dtype=np.int64) * t).reshape(b, 1), dev)
    y = ops.gather(ops.reshape(x, [b * t, *rest]), ops.reshape(rows, [b * t]), axis=0)
    y = ops.reshape(y, [b, t, *rest])
    if ba == 1:
        y = ops.permute(y, [1, 0, *range(2, r)])
    return y
