"""Control flow: ``If`` and ``Loop`` (ONNX sections of the same names).

MAX compiles static graphs, so control flow is resolved at conversion time, in
``prepare.py``: an ``If`` whose condition is known there is replaced by the nodes of the branch
it takes, and a ``Loop`` with a known trip count (at most 64), no runtime condition and a body
that passes its condition through is unrolled. An ``If`` whose condition is only known at run
time becomes MAX's conditional (``ops.cond``); a ``Loop`` that cannot be unrolled is refused
with the reason.
"""

from __future__ import annotations

from max.dtype import DType
from max.graph import TensorType, ops

from .. import dtypes
from ..lower import lower_subgraph
from ..registry import converter


@converter("If", since=1)
def if_(ctx):
    """ONNX ``If`` whose condition is computed at run time: MAX ``ops.cond``, with both
    branches lowered (values of the outer graph are visible in them). Every output needs a
    static shape that both branches agree on (from ONNX shape inference)."""
    if ctx.is_const(0):
        raise ctx.error("the taken branch could not be inlined (it uses ops or types onnx2max lacks)")
    attrs = {a.name: a.g for a in ctx.node.attribute if a.name in ("then_branch", "else_branch")}
    types = []
    for k in range(ctx.num_outputs):
        t = ctx.expected_output(k)
        if t is None or t[1] is None or not all(isinstance(d, int) for d in t[1]):
            raise ctx.error(f"output {k} has no static shape (the branches may differ); MAX's "
                            "conditional needs one shape for both branches"
                            + ctx.constant_inputs_hint(ctx.input_name(0)))
        types.append(TensorType(dtypes.to_max(t[0]), list(t[1]), ctx.device))
    cond = ctx.input(0)
    if cond.rank:
        cond = ops.reshape(cond, [])
    if cond.dtype != DType.bool:
        cond = ops.cast(cond, DType.bool)
    lw = ctx._l

    def branch(g):
        def fn():
            outs = lower_subgraph(lw, g)
            return [ops.cast(o, t.dtype) if o.dtype != t.dtype else o for o, t in zip(outs, types)]
        return fn

    return ops.cond(cond, types, branch(attrs["then_branch"]), branch(attrs["else_branch"]))


@converter("Loop", since=1)
def loop(ctx):
    """ONNX ``Loop`` that could not be unrolled at conversion: refused, with the reason."""
    if ctx.has_input(0):
        trips = int(ctx.const(0).reshape(-1)[0])
        if trips > 64:
            raise ctx.error(f"a trip count of {trips}; onnx2max unrolls loops of at most 64 trips")
    else:
        raise ctx.error("no trip count: the number of iterations is decided at run time")
    if ctx.has_input(1):
        ctx.const(1)
    raise ctx.error("the body computes its own condition (an early exit decided at run time), "
                    "or it has zero iterations with scan outputs")
