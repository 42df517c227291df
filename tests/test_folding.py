"""Folding at conversion time computes what onnxruntime computes.

``prepare`` evaluates nodes whose inputs are all known with onnx's reference evaluator. Every
one-node op case of ``tests/cases.py`` (and the cases below, where the evaluator is known to be
wrong) is folded here with every input known, and the result is compared with onnxruntime. A
node the folder refuses (returns ``None``) is left to MAX, which the op tests check. No MAX
compile: these run in milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import GROUPS, _rnn_case, node
from conftest import assert_matches, ort_run

from onnx import numpy_helper

from onnx2max.prepare import fold_node


def _opsets(model):
    return {o.domain: o.version for o in model.opset_import}


def _known_wrong_cases():
    """Ops the reference evaluator of onnx 1.23 computes wrongly (issue 10): the folder must
    refuse them, and MAX computes them at run time."""
    c24 = (np.arange(24, dtype=np.float32) / 10).reshape(2, 3, 4)
    lp = np.array([[1, -1, 2], [3, -6, 0]], np.float32)
    return [
        node("fold-Softmax-11-axis1", "Softmax", [c24], {"axis": 1}, opset=11),
        node("fold-LogSoftmax-11-axis1", "LogSoftmax", [c24], {"axis": 1}, opset=11),
        node("fold-Hardmax-11-axis1", "Hardmax", [c24], {"axis": 1}, opset=11),
        node("fold-LpNormalization-p1", "LpNormalization", [lp], {"p": 1, "axis": 1}),
        node("fold-LpNormalization-p2", "LpNormalization", [lp], {"p": 2, "axis": 1}),
        _rnn_case("fold-RNN-clip", "RNN", 5, attrs={"clip": 0.5}),
        _rnn_case("fold-GRU-clip", "GRU", 5, attrs={"clip": 0.5}),
        _rnn_case("fold-LSTM-input-forget", "LSTM", 5, attrs={"input_forget": 1}),
        _rnn_case("fold-LSTM-lens", "LSTM", 5, lens=[5, 2]),
    ]


def _one_node_cases():
    out = []
    for group, make in GROUPS.items():
        for c in make():
            # cases checked against onnx's reference (onnxruntime cannot run them, or differs
            # from the reference onnx2max follows) are what the folder computes: nothing to check
            if len(c.model.graph.node) == 1 and c.reference == "onnxruntime":
                out.append(pytest.param(c, id=f"{group}:{c.id}"))
    out += [pytest.param(c, id=c.id) for c in _known_wrong_cases()]
    return out


@pytest.mark.parametrize("case", _one_node_cases())
def test_folding_matches_onnxruntime(case):
    n = case.model.graph.node[0]
    known = dict(case.feeds)
    known.update({t.name: numpy_helper.to_array(t) for t in case.model.graph.initializer})
    folded = fold_node(n, known, _opsets(case.model))
    if folded is None:
        return  # left to MAX at run time (the op tests compare that with onnxruntime)
    want = ort_run(case.model, case.feeds)
    outs = [o for o in n.output if o]
    assert len(folded) >= len(outs)
    for k, w in enumerate(want):
        got = np.asarray(folded[k])
        if got.dtype.kind == w.dtype.kind:  # the evaluator may widen (float64 for float32)
            got = got.astype(w.dtype)
        assert_matches(got, w, f"{case.id} folded output {k}")


def test_known_wrong_ops_are_not_folded():
    for c in _known_wrong_cases():
        n = c.model.graph.node[0]
        known = dict(c.feeds)
        known.update({t.name: numpy_helper.to_array(t) for t in c.model.graph.initializer})
        assert fold_node(n, known, _opsets(c.model)) is None, c.id


def test_min_with_nan_is_folded_with_nan():
    """Min/Max on known inputs propagate NaN (ONNX Min, numpy's minimum, onnxruntime)."""
    x = np.array([[np.nan], [1], [20]], np.float32)
    c = node("fold-Min-nan", "Min", [x, np.array([10], np.float32)], consts=(1,))
    (want,) = ort_run(c.model, c.feeds)
    got = fold_node(c.model.graph.node[0], {"in0": x, "in1": np.array([10], np.float32)},
                    _opsets(c.model))
    assert_matches(got[0], want, "Min")
    assert np.isnan(got[0][0, 0]) and got[0][2, 0] == 10


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceProd", "ReduceL2", "ReduceSumSquare"])
def test_reductions_over_an_empty_axis_fold_as_onnxruntime_computes_them(op):
    """Reducing over an axis of length 0 (found by the fuzz test: a zero-size graph input
    transposed, then reduced): the folded value equals onnxruntime's. The operator text leaves
    ReduceMean of nothing undefined; the evaluator gives NaN, onnxruntime and onnx2max 0."""
    x = np.zeros((4, 0, 3), np.float32)
    c = node(f"fold-{op}-empty-axis", op, [x, np.array([1], np.int64)], opset=18, consts=(1,))
    (want,) = ort_run(c.model, c.feeds)
    got = fold_node(c.model.graph.node[0], {"in0": x, "in1": np.array([1], np.int64)}, _opsets(c.model))
    assert got is not None and want.shape == (4, 1, 3)
    assert_matches(np.asarray(got[0]).astype(want.dtype), want, op)
