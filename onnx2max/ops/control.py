"""Control flow: ``If`` and ``Loop`` (ONNX sections of the same names).

Control flow known at conversion is resolved in ``prepare.py``: an ``If`` whose condition is
known there is replaced by the nodes of the branch it takes, and a ``Loop`` with a known trip
count (at most 64 trips, ``ONNX2MAX_UNROLL_LOOP``), no runtime condition and a body that passes
its condition through is unrolled. An ``If`` whose condition is only known at run time becomes MAX's conditional
(``ops.cond``); any other ``Loop`` becomes MAX's ``ops.while_loop`` (its body compiled once),
or is refused with the reason where a while loop cannot express it.
"""

from __future__ import annotations

import numpy as np
from max.dtype import DType
from max.graph import TensorType, TensorValue, ops

from .. import dtypes
from ..lower import lower_subgraph, make_constant
from ..prepare import passes_condition_through
from ..registry import converter


@converter("If", since=1)
def if_(ctx):
    """ONNX ``If`` whose condition is computed at run time: MAX ``ops.cond``, with both
    branches lowered (values of the outer graph are visible in them). Every output needs a
    shape that both branches agree on (from ONNX shape inference): static dims, or symbolic
    dims of the graph inputs."""
    if ctx.is_const(0):
        raise ctx.error("the taken branch could not be inlined (it uses ops or types onnx2max lacks)")
    attrs = {name: ctx.attr(name) for name in ("then_branch", "else_branch")}
    # symbolic dims of the graph inputs are declared; MAX 26.7 refuses a conditional whose
    # result has a symbolic dim no input declares ("invalid use of parameter with no declaration")
    named = {d for s in ctx._l.p.inputs for d in s.shape if isinstance(d, str)}
    types = []
    for k in range(ctx.num_outputs):
        t = ctx.expected_output(k)
        if t is None or t[1] is None or not all(isinstance(d, int) or d in named for d in t[1]):
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
            outs = [ops.cast(o, t.dtype) if o.dtype != t.dtype else o for o, t in zip(outs, types)]
            # a branch may give an equal dim another name ("batch * 1"): assert the If's shape
            return [o if list(o.shape) == list(t.shape) else ops.rebind(o, t.shape)
                    for o, t in zip(outs, types)]
        return fn

    return ops.cond(cond, types, branch(attrs["then_branch"]), branch(attrs["else_branch"]))


def _type(x: TensorValue) -> str:
    return f"{x.dtype.name} [{', '.join(str(d) for d in x.shape)}]"


def _scalar(x: TensorValue, dtype: DType) -> TensorValue:
    x = ops.reshape(x, []) if x.rank else x
    return ops.cast(x, dtype) if x.dtype != dtype else x


@converter("Loop", since=1)
def loop(ctx):
    """ONNX ``Loop`` that ``prepare`` did not unroll (more trips than
    :func:`onnx2max.prepare.unroll_loop_trips`, 64 by default; a trip count or a condition
    known only at run time; a body that decides its own condition): one MAX
    ``ops.while_loop`` whose body MAX compiles once, whatever the number of trips.

    The loop carries the iteration number, the condition, the loop-carried values and one
    buffer ``(trips, ...)`` per scan output, whose row ``i`` the body writes with a ``where``
    against an iota. The predicate follows the operator's table: ``i < M`` with a trip count,
    ``cond`` with a condition input, both with both (the body's condition output is ignored
    without a condition input).

    Raises ConversionError for what a MAX while loop cannot express: neither a trip count nor
    a condition (a loop that never ends), scan outputs without a trip count known at
    conversion or with a condition decided at run time (their length is unknown), zero trips
    with scan outputs, and loop-carried values that change shape or dtype across iterations.
    """
    body = ctx.attr("body")
    n_carried = ctx.num_inputs - 2
    if len(body.input) != n_carried + 2 or len(body.output) < n_carried + 1:
        raise ctx.error(f"the body has {len(body.input)} inputs and {len(body.output)} outputs; "
                        f"{n_carried} loop-carried values need {n_carried + 2} inputs and at "
                        f"least {n_carried + 1} outputs")
    n_scan = len(body.output) - 1 - n_carried
    has_m, has_cond = ctx.has_input(0), ctx.has_input(1)
    if not has_m and not has_cond:
        raise ctx.error("neither a trip count nor a condition: the loop never ends")
    m_value = ctx.const(0, required=False) if has_m else None
    trips = int(m_value.reshape(-1)[0]) if m_value is not None else None
    if n_scan:
        if trips is None:
            err = ctx.error("scan outputs need a trip count known at conversion (their length); "
                            "this one is computed at run time" + ctx.constant_inputs_hint(ctx.input_name(0)))
            err.needs_value = ctx.input_name(0)
            raise err
        cond_value = ctx.const(1, required=False) if has_cond else None
        if has_cond and (cond_value is None or not bool(cond_value.reshape(-1)[0])
                         or not passes_condition_through(body)):
            err = ctx.error("scan outputs with a condition decided at run time (an early exit): "
                            "their length is not known at conversion"
                            + ("" if cond_value is not None else ctx.constant_inputs_hint(ctx.input_name(1))))
            if cond_value is None and passes_condition_through(body):
                err.needs_value = ctx.input_name(1)  # fixed at conversion, the loop has a known length
            raise err
        if trips <= 0:
            raise ctx.error(f"a trip count of {trips} with scan outputs: they would be empty")
    dev = ctx.device
    i64 = DType.int64
    m = ops.constant(trips, i64, device=dev) if trips is not None else (
        _scalar(ctx.input(0), i64) if has_m else None)
    cond0 = _scalar(ctx.input(1), DType.bool) if has_cond else ops.constant(True, DType.bool, device=dev)
    carried0 = [ctx.input(2 + k) for k in range(n_carried)]
    scan_types = []
    for k in range(n_scan):
        # the per-iteration shape: from shape inference of the Loop's output (its first dim,
        # the trip count, is often left unknown), else from the body's declared output
        t = ctx.expected_output(n_carried + k)
        per = None
        if (t is not None and t[1] is not None and len(t[1]) >= 1
                and all(isinstance(d, int) for d in t[1][1:])
                and (not isinstance(t[1][0], int) or t[1][0] == trips)):
            elem, per = t[0], tuple(t[1][1:])
        else:
            bt = body.output[1 + n_carried + k].type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in bt.shape.dim]
            if bt.elem_type and bt.HasField("shape") and all(d is not None for d in dims):
                elem, per = bt.elem_type, tuple(dims)
        if per is None:
            raise ctx.error(f"scan output {k} has no static per-iteration shape (from shape "
                            "inference or the body's declared output)")
        scan_types.append((elem, (trips, *per)))
    bufs0 = [ops.broadcast_to(make_constant(np.zeros((), dtypes.to_numpy(t[0])), dev), list(t[1]))
             for t in scan_types]
    iotas = [ops.constant(np.arange(trips, dtype=np.int64).reshape((trips,) + (1,) * (len(t[1]) - 1)),
                          i64, device=dev) for t in scan_types]
    lw = ctx._l
    b_in = [i.name for i in body.input]

    def pred(i, cond, *_):
        if m is None:
            return cond
        more = ops.greater(m, i)
        return ops.logical_and(more, cond) if has_cond else more

    def step(i, cond, *vals):
        carried, bufs = vals[:n_carried], vals[n_carried:]
        outs = lower_subgraph(lw, body, bind=dict(zip(b_in, [i, cond, *carried])))
        new_cond = _scalar(outs[0], DType.bool) if has_cond else cond
        new_carried = []
        for k, (old, new) in enumerate(zip(carried, outs[1:1 + n_carried])):
            if new.dtype != old.dtype or list(new.shape) != list(old.shape):
                raise ctx.error(f"loop-carried value {k} ('{body.output[1 + k].name}') changes from "
                                f"{_type(old)} to {_type(new)} in an iteration; MAX's while loop "
                                "needs one type for every iteration")
            new_carried.append(new)
        new_bufs = []
        for k, (buf, iota, out) in enumerate(zip(bufs, iotas, outs[1 + n_carried:])):
            if list(out.shape) != list(buf.shape)[1:] or out.dtype != buf.dtype:
                raise ctx.error(f"scan output {k} is {_type(out)} in an iteration; its declared "
                                f"type is {buf.dtype.name} [{', '.join(str(d) for d in buf.shape[1:])}]")
            new_bufs.append(ops.where(ops.equal(iota, i), ops.unsqueeze(out, 0), buf))
        return [i + ops.constant(1, i64, device=dev), new_cond, *new_carried, *new_bufs]

    res = ops.while_loop([ops.constant(0, i64, device=dev), cond0, *carried0, *bufs0], pred, step)
    return res[2:]
