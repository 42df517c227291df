"""Control flow: ``If`` and ``Loop`` (ONNX sections of the same names).

MAX compiles static graphs, so control flow is resolved at conversion time, in
``prepare.py``: an ``If`` whose condition is known there is replaced by the nodes of the branch
it takes, and a ``Loop`` with a known trip count (at most 64), no runtime condition and a body
that passes its condition through is unrolled. These converters only run when that was not
possible, and say why.
"""

from __future__ import annotations

from ..registry import converter


@converter("If", since=1)
def if_(ctx):
    """ONNX ``If`` whose condition is computed at run time: refused (names the condition)."""
    ctx.const(0)  # raises, naming the condition input, when it is only known at run time
    raise ctx.error("the taken branch could not be inlined (it uses ops or types onnx2max lacks)")


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
