"""Graph passes over the prepared ONNX graph, run between :func:`~onnx2max.prepare.prepare` and lowering.

The importer (``lower.py`` and the converters) stays a literal, node-by-node translation; each
pass here rewrites a :class:`~onnx2max.prepare.Prepared` graph into an equivalent one that
lowers to less work, the way TVM keeps ``FoldBatchnormToConv2D`` apart from its ONNX frontend.
Every pass returns the number of rewrites it made, checks all of its preconditions (constant
operands, single consumers, dtypes) and leaves the graph unchanged where one fails.

Passes (names as in ``ONNX2MAX_PASSES``):

* ``fold_batchnorm``: ``BatchNormalization`` (inference form) after a ``Conv``,
  ``ConvTranspose`` or ``Gemm`` whose weights are initializers is folded into that node's
  weight and bias (ONNX operator sections BatchNormalization, Conv, ConvTranspose, Gemm).
* ``fuse_gelu``: ``0.5 * x * (1 + erf(x / sqrt 2))``, as exporters write GELU before opset 20,
  becomes one ``com.microsoft.Gelu`` node (lowered to MAX ``ops.gelu``).
* ``fuse_layer_norm``: ``ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div`` (+ ``Mul`` by a scale,
  ``Add`` of a bias) over the last axis, as exporters write LayerNorm before opset 17, becomes
  one ``LayerNormalization`` node (lowered to MAX ``ops.layer_norm``).

``ONNX2MAX_PASSES`` chooses them: unset or ``all`` runs every pass, ``none`` runs none, and a
comma-separated list of names runs those only. :func:`~onnx2max.from_onnx` runs them;
the conformance runner and the per-node bisect do not (they measure the literal translation).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Callable

import numpy as np
import onnx
from onnx import helper

from . import dtypes
from .errors import InputError
from .prepare import Prepared, _all_inputs

MS = "com.microsoft"
_FLOATS = ("float16", "float32", "float64")  # numpy weight dtypes the folds compute on
#: ONNX element types the fusions accept
_FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                          onnx.TensorProto.BFLOAT16})


class _Graph:
    """Producer and consumer tables of a prepared graph, rebuilt after each rewrite."""

    def __init__(self, p: Prepared):
        self.p = p
        self.producer = {o: n for n in p.nodes for o in n.output if o}
        self.uses = Counter(i for n in p.nodes for i in _all_inputs(n))
        self.uses.update(p.outputs)
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in p.nodes:
            for i in dict.fromkeys(n.input):
                self._consumers.setdefault(i, []).append(n)

    def const(self, name: str) -> np.ndarray | None:
        """The value of ``name`` when it is known at conversion (initializer or folded)."""
        return self.p.values.get(name) if name else None

    def scalar(self, name: str) -> float | None:
        v = self.const(name)
        if v is None or v.size != 1 or v.dtype.kind != "f":
            return None
        return float(v.reshape(()))

    def only_use(self, name: str) -> bool:
        """``name`` feeds exactly one node input and is not a graph output."""
        return self.uses[name] == 1 and name not in self.p.outputs

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        """The nodes that take ``name`` as a direct input (each once)."""
        return self._consumers.get(name, [])

    def new_value(self, hint: str, arr: np.ndarray) -> str:
        """Add ``arr`` as an initializer-like value (lowered as a MAX ``Weight``) under a fresh name."""
        k = 0
        while f"{hint}__pass{k}" in self.p.values or f"{hint}__pass{k}" in self.p.types:
            k += 1
        name = f"{hint}__pass{k}"
        arr = dtypes.c_contiguous(arr)
        self.p.values[name] = arr
        self.p.types[name] = (dtypes.from_numpy(arr.dtype), tuple(arr.shape))
        return name


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def _own(p: Prepared, node: onnx.NodeProto) -> onnx.NodeProto:
    """A copy of ``node`` put in its place in ``p.nodes``, to be changed: the prepared nodes
    are shared with the caller's ``ModelProto``, which a pass must never change."""
    mine = onnx.NodeProto()
    mine.CopyFrom(node)
    p.nodes[next(k for k, n in enumerate(p.nodes) if n is node)] = mine
    return mine


def _rewrite_all(p: Prepared, op_type: str, rewrite: Callable[[_Graph, onnx.NodeProto], bool]) -> int:
    """Call ``rewrite(graph, node)`` on the nodes of ``op_type`` until none rewrites (tables
    are rebuilt after each rewrite); returns the number of rewrites."""
    count = 0
    while True:
        g = _Graph(p)
        if not any(n.op_type == op_type and rewrite(g, n) for n in list(p.nodes)):
            return count
        count += 1


def _replace(p: Prepared, nodes: list[onnx.NodeProto], fused: onnx.NodeProto) -> None:
    """Put ``fused`` where the first of ``nodes`` was and remove ``nodes``."""
    drop = {id(n) for n in nodes}
    at = min(k for k, n in enumerate(p.nodes) if id(n) in drop)
    p.nodes.insert(at, fused)
    _finish(p, drop)


def _finish(p: Prepared, drop: set[int]) -> None:
    """Remove the nodes whose ids are in ``drop`` and the values no node uses any more."""
    p.nodes = [n for n in p.nodes if id(n) not in drop]
    used = {i for n in p.nodes for i in _all_inputs(n)} | set(p.outputs)
    for k in [k for k in p.values if k not in used]:
        del p.values[k]
    p.folded &= set(p.values)


# ---------------------------------------------------------------- BatchNormalization folding
def _bn_scale_shift(g: _Graph, bn: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
    """``(s, t)`` with ``BN(y) = y * s + t`` per channel, in float64; None when BN is not a
    foldable inference-mode node (ONNX BatchNormalization: ``(y - mean) / sqrt(var + eps) *
    scale + B``)."""
    if bn.domain not in ("", "ai.onnx") or len(bn.input) != 5 or len([o for o in bn.output if o]) != 1:
        return None
    if _attr(bn, "training_mode", 0) or _attr(bn, "spatial", 1) != 1:
        return None
    params = [g.const(n) for n in bn.input[1:]]
    if any(v is None or v.ndim != 1 or v.dtype.kind != "f" for v in params):
        return None
    scale, bias, mean, var = (v.astype(np.float64) for v in params)
    if len({scale.size, bias.size, mean.size, var.size}) != 1:
        return None
    eps = float(_attr(bn, "epsilon", 1e-5))
    s = scale / np.sqrt(var + eps)
    return s, bias - mean * s


def fold_batchnorm(p: Prepared) -> int:
    """Fold each inference ``BatchNormalization`` into the ``Conv``, ``ConvTranspose`` or
    ``Gemm`` that feeds it alone.

    With ``s = scale / sqrt(var + epsilon)`` and ``t = B - mean * s`` per output channel ``c``:
    Conv ``W'[c] = W[c] * s[c]``, ``b'[c] = b[c] * s[c] + t[c]``; ConvTranspose the same over
    its output-channel axis (``W`` is ``(C_in, C_out / group, k...)``); Gemm (``Y = alpha A B' +
    beta C``, BN over ``Y``'s axis 1) scales the columns of ``B'`` and replaces ``C`` by
    ``beta * C * s + t`` with ``beta = 1``. Arithmetic is float64, cast back to the weight's
    dtype. Skipped when a weight or BN parameter is not an initializer (or folded constant), the
    producer's output has another consumer or is a graph output, or dtypes are not float.

    Returns:
        The number of BatchNormalization nodes removed.
    """
    def rewrite(g: _Graph, bn: onnx.NodeProto) -> bool:
        prod = g.producer.get(bn.input[0])
        if prod is None or prod.domain not in ("", "ai.onnx") or not g.only_use(bn.input[0]):
            return False
        st = _bn_scale_shift(g, bn)
        fold = {"Conv": _fold_into_conv, "ConvTranspose": _fold_into_conv_transpose,
                "Gemm": _fold_into_gemm}.get(prod.op_type)
        if st is None or fold is None:
            return False
        prod = _own(p, prod)
        if not fold(g, prod, *st):
            return False
        prod.output[0] = bn.output[0]
        _finish(p, {id(bn)})
        return True

    return _rewrite_all(p, "BatchNormalization", rewrite)


def _weights(g: _Graph, node: onnx.NodeProto, w_index: int, b_index: int):
    w = g.const(node.input[w_index]) if len(node.input) > w_index else None
    if w is None or str(w.dtype) not in _FLOATS:
        return None
    b = None
    if len(node.input) > b_index and node.input[b_index]:
        b = g.const(node.input[b_index])
        if b is None or b.dtype != w.dtype:
            return None
    return w, b


def _set_weights(g: _Graph, node: onnx.NodeProto, w_index: int, b_index: int, w, b, dtype) -> None:
    node.input[w_index] = g.new_value(node.input[w_index] or "W", w.astype(dtype))
    name = g.new_value((node.input[b_index] if len(node.input) > b_index else "") or
                       f"{node.output[0]}_bias", b.astype(dtype))
    while len(node.input) <= b_index:
        node.input.append("")
    node.input[b_index] = name


def _fold_into_conv(g: _Graph, conv, s, t) -> bool:
    wb = _weights(g, conv, 1, 2)
    if wb is None or wb[0].ndim < 3 or wb[0].shape[0] != s.size:
        return False
    w, b = wb
    b64 = np.zeros(s.size) if b is None else b.astype(np.float64)
    w2 = w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))
    _set_weights(g, conv, 1, 2, w2, b64 * s + t, w.dtype)
    return True


def _fold_into_conv_transpose(g: _Graph, conv, s, t) -> bool:
    wb = _weights(g, conv, 1, 2)
    if wb is None or wb[0].ndim < 3:
        return False
    w, b = wb
    group = int(_attr(conv, "group", 1))
    c_in, per = w.shape[0], w.shape[1]
    if c_in % group or per * group != s.size:
        return False
    b64 = np.zeros(s.size) if b is None else b.astype(np.float64)
    ws = w.astype(np.float64).reshape(group, c_in // group, per, *w.shape[2:])
    ws = ws * s.reshape(group, 1, per, *([1] * (w.ndim - 2)))
    _set_weights(g, conv, 1, 2, ws.reshape(w.shape), b64 * s + t, w.dtype)
    return True


def _fold_into_gemm(g: _Graph, gemm, s, t) -> bool:
    wb = _weights(g, gemm, 1, 2)
    if wb is None or wb[0].ndim != 2:
        return False
    w, c = wb
    trans_b = int(_attr(gemm, "transB", 0))
    m = w.shape[0] if trans_b else w.shape[1]
    if m != s.size:
        return False
    w2 = w.astype(np.float64) * (s[:, None] if trans_b else s[None, :])
    beta = float(_attr(gemm, "beta", 1.0))
    if c is None:
        c2 = t
    else:
        try:  # C broadcasts to (N, M) per ONNX Gemm; s and t run along M
            c2 = beta * c.astype(np.float64) * s + t
        except ValueError:
            return False
        if c2.ndim > 2:
            return False
    _set_weights(g, gemm, 1, 2, w2, c2, w.dtype)
    _set_attr(gemm, "beta", 1.0)
    return True


# ---------------------------------------------------------------- GELU
def _other(node: onnx.NodeProto, name: str) -> str | None:
    """The other input of a two-input node one of whose inputs is ``name``."""
    if len(node.input) != 2:
        return None
    if node.input[0] == name:
        return node.input[1]
    if node.input[1] == name:
        return node.input[0]
    return None


def _single_consumer(g: _Graph, name: str, op_type: str) -> onnx.NodeProto | None:
    if not g.only_use(name):
        return None
    cs = g.consumers(name)
    if len(cs) != 1 or cs[0].op_type != op_type or cs[0].domain not in ("", "ai.onnx"):
        return None
    return cs[0]


def _near(v: float | None, want: float, rtol: float = 1e-3) -> bool:
    return v is not None and abs(v - want) <= rtol * abs(want)


def _match_gelu(g: _Graph, erf: onnx.NodeProto) -> tuple[str, str, list[onnx.NodeProto]] | None:
    """``(x, y, nodes)`` when ``erf`` is the centre of ``y = 0.5 * x * (1 + erf(x / sqrt 2))``
    (operands in either order, ``x * (1 / sqrt 2)`` for the division, the 0.5 applied to ``x``
    first or to the product last)."""
    if erf.domain not in ("", "ai.onnx") or erf.output[0] == "":
        return None
    scaled = g.producer.get(erf.input[0])
    if scaled is None or scaled.domain not in ("", "ai.onnx") or not g.only_use(erf.input[0]):
        return None
    x = None
    if scaled.op_type == "Div" and _near(g.scalar(scaled.input[1]), 2 ** 0.5):
        x = scaled.input[0]
    elif scaled.op_type == "Mul":
        for a, b in (scaled.input, reversed(scaled.input)):
            if _near(g.scalar(b), 2 ** -0.5):
                x = a
    if x is None or g.const(x) is not None:
        return None
    add = _single_consumer(g, erf.output[0], "Add")
    if add is None or not _near(g.scalar(_other(add, erf.output[0])), 1.0):
        return None
    mul = _single_consumer(g, add.output[0], "Mul")
    if mul is None:
        return None
    factor = _other(mul, add.output[0])
    if factor == x:  # x * (1 + erf) then * 0.5
        last = _single_consumer(g, mul.output[0], "Mul")
        if last is None or not _near(g.scalar(_other(last, mul.output[0])), 0.5):
            return None
        return x, last.output[0], [scaled, erf, add, mul, last]
    half = g.producer.get(factor)  # (0.5 * x) * (1 + erf)
    if half is None or half.op_type != "Mul" or not g.only_use(factor) or x not in half.input:
        return None
    if not _near(g.scalar(_other(half, x)), 0.5):
        return None
    return x, mul.output[0], [scaled, erf, add, half, mul]


def fuse_gelu(p: Prepared) -> int:
    """Replace each exact-GELU subgraph ``0.5 * x * (1 + erf(x / sqrt 2))`` by one
    ``com.microsoft.Gelu`` node (the op onnxruntime's transformer optimizer writes), lowered to
    MAX ``ops.gelu``. Only float inputs; every intermediate must have the pattern as its only
    consumer.

    Returns:
        The number of GELU subgraphs fused.
    """
    def rewrite(g: _Graph, erf: onnx.NodeProto) -> bool:
        m = _match_gelu(g, erf)
        if m is None or (p.types.get(m[0]) or (0,))[0] not in _FLOAT_TYPES:
            return False
        x, y, nodes = m
        _replace(p, nodes, helper.make_node("Gelu", [x], [y], name=f"{erf.name or y}_fused_gelu", domain=MS))
        p.opsets.setdefault(MS, 1)
        return True

    return _rewrite_all(p, "Erf", rewrite)


# ---------------------------------------------------------------- LayerNorm
def _reduce_axes(g: _Graph, node: onnx.NodeProto, opset: int) -> list[int] | None:
    if node.op_type != "ReduceMean" or node.domain not in ("", "ai.onnx"):
        return None
    if int(_attr(node, "keepdims", 1)) != 1:
        return None
    if opset >= 18:
        if len(node.input) < 2 or not node.input[1]:
            return None
        v = g.const(node.input[1])
        return None if v is None else [int(a) for a in v.reshape(-1)]
    axes = _attr(node, "axes")
    return None if axes is None else [int(a) for a in axes]


def _last_axis(axes: list[int] | None, rank: int) -> bool:
    return axes is not None and len(axes) == 1 and axes[0] in (-1, rank - 1)


def _match_layer_norm(g: _Graph, mean: onnx.NodeProto, opset: int):
    x = mean.input[0]
    shape = (g.p.types.get(x) or (None, None))[1]
    if shape is None or not _last_axis(_reduce_axes(g, mean, opset), len(shape)):
        return None
    if not isinstance(shape[-1], int):
        return None
    sub = _single_consumer(g, mean.output[0], "Sub")
    if sub is None or list(sub.input) != [x, mean.output[0]]:
        return None
    d = sub.output[0]
    users = g.consumers(d)
    if g.uses[d] != 2 or d in g.p.outputs or len(users) != 2:
        return None
    pw = next((n for n in users if n.op_type == "Pow"), None)
    div = next((n for n in users if n.op_type == "Div"), None)
    if pw is None or div is None or pw.input[0] != d or div.input[0] != d:
        return None
    if not _near(g.scalar(pw.input[1]), 2.0, 1e-6):
        return None
    var = _single_consumer(g, pw.output[0], "ReduceMean")
    if var is None or not _last_axis(_reduce_axes(g, var, opset), len(shape)):
        return None
    add = _single_consumer(g, var.output[0], "Add")
    eps = g.scalar(_other(add, var.output[0])) if add is not None else None
    if eps is None or eps < 0:
        return None
    sqrt = _single_consumer(g, add.output[0], "Sqrt")
    if sqrt is None or not g.only_use(sqrt.output[0]) or div.input[1] != sqrt.output[0]:
        return None
    nodes = [mean, sub, pw, var, add, sqrt, div]
    y, gamma, beta = div.output[0], None, None
    mul = _single_consumer(g, y, "Mul")
    width = shape[-1]
    if mul is not None:
        gv = g.const(_other(mul, y))
        if gv is not None and gv.ndim == 1 and gv.size == width:
            gamma, y = _other(mul, y), mul.output[0]
            nodes.append(mul)
    if gamma is not None:
        badd = _single_consumer(g, y, "Add")
        if badd is not None:
            bv = g.const(_other(badd, y))
            if bv is not None and bv.ndim == 1 and bv.size == width:
                beta, y = _other(badd, y), badd.output[0]
                nodes.append(badd)
    return x, y, gamma, beta, eps, nodes


def fuse_layer_norm(p: Prepared) -> int:
    """Replace each LayerNorm written out over the last axis, ``d = x - mean(x)``,
    ``d / sqrt(mean(d^2) + eps)`` (then ``* gamma`` and ``+ beta`` when they are constants of
    the last dim's size), by one ``LayerNormalization`` node (axis -1, that epsilon), lowered to
    MAX ``ops.layer_norm``. Missing gamma becomes ones; missing beta zeros.

    Returns:
        The number of LayerNorm subgraphs fused.
    """
    opset = p.opset("")

    def rewrite(g: _Graph, mean: onnx.NodeProto) -> bool:
        m = _match_layer_norm(g, mean, opset)
        if m is None:
            return False
        x, y, gamma, beta, eps, nodes = m
        elem = (p.types.get(x) or (0,))[0]
        if elem not in _FLOAT_TYPES or elem == onnx.TensorProto.BFLOAT16:
            return False
        dt = dtypes.to_numpy(elem)
        if any(v is not None and p.values[v].dtype != dt for v in (gamma, beta)):
            return False
        width = p.types[x][1][-1]
        if gamma is None:
            gamma = g.new_value(f"{y}_scale", np.ones(width, dt))
        if beta is None:
            beta = g.new_value(f"{y}_bias", np.zeros(width, dt))
        _replace(p, nodes, helper.make_node("LayerNormalization", [x, gamma, beta], [y], axis=-1, epsilon=eps,
                                            name=f"{mean.name or y}_fused_layer_norm"))
        return True

    return _rewrite_all(p, "ReduceMean", rewrite)


#: every pass, in the order they run
PASSES: dict[str, Callable[[Prepared], int]] = {
    "fold_batchnorm": fold_batchnorm,
    "fuse_gelu": fuse_gelu,
    "fuse_layer_norm": fuse_layer_norm,
}


def enabled_passes(spec: str | None = None) -> list[str]:
    """The pass names ``ONNX2MAX_PASSES`` (or ``spec``) selects: ``all`` (the default),
    ``none``, or a comma-separated list of names from :data:`PASSES`.

    Raises:
        InputError: an unknown pass name.
    """
    raw = (os.environ.get("ONNX2MAX_PASSES", "all") if spec is None else spec).strip()
    if raw in ("", "all"):
        return list(PASSES)
    if raw == "none":
        return []
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        raise InputError(f"ONNX2MAX_PASSES={raw!r} names no pass; expected all, none or a "
                         f"comma-separated list of {', '.join(PASSES)}")
    bad = [n for n in names if n not in PASSES]
    if bad:
        raise InputError(f"ONNX2MAX_PASSES={raw!r}: unknown pass {', '.join(bad)}; "
                         f"expected all, none or a comma-separated list of {', '.join(PASSES)}")
    return [n for n in PASSES if n in names]


def optimize(p: Prepared, passes: list[str] | None = None) -> dict[str, int]:
    """Run the selected passes over ``p`` in place.

    Args:
        p: a prepared model (rewritten in place: nodes, values, types, opsets).
        passes: pass names; default :func:`enabled_passes` (from ``ONNX2MAX_PASSES``).

    Returns:
        ``{pass name: rewrites made}`` for each pass that ran.
    """
    names = enabled_passes() if passes is None else passes
    return {n: PASSES[n](p) for n in names}
