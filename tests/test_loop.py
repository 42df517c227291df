"""``Loop`` as one MAX while loop (``onnx2max/ops/control.py``): what prepare does not unroll
(more than 64 trips, a trip count or condition fed at run time, an early exit decided by the
body). The values of the ``Loop-*`` cases of ``tests/cases.py`` are checked against
onnxruntime by the op tests; here: one compile serves other trip counts and conditions, the
graph does not grow with the number of trips, and what a while loop cannot express is refused
with a message naming the node.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from cases import _loop_model, loop_body_doubling, loop_body_scan
from conftest import assert_matches, ort_run
from max.graph import DeviceRef
from max.graph.graph import Module
from onnx import TensorProto, helper

from onnx2max.errors import ConversionError, InputError
from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare


def _lower(model) -> str:
    module = Module()
    lower_graph(prepare(model, "loop"), DeviceRef.CPU(), "g0", "g0_", module=module)
    return module._to_mlir_str()


@pytest.mark.parametrize("trips", [0, 1, 30])
def test_a_trip_count_fed_at_run_time_needs_no_new_compile(converted, trips):
    group = converted("loop")
    case = group.cases["Loop-runtime-trip-count"]
    feeds = dict(case.feeds, M=np.array(trips, np.int64))
    (got,) = group.models[case.id].run(None, feeds)
    (want,) = ort_run(case.model, feeds)
    assert_matches(got, want, f"{trips} trips")
    np.testing.assert_allclose(got, case.feeds["x"] * 2.0 ** trips, rtol=1e-6)


def test_a_false_condition_runs_no_iteration(converted):
    group = converted("loop")
    case = group.cases["Loop-while-condition-input"]
    feeds = dict(case.feeds, cond=np.array(False))
    (got,) = group.models[case.id].run(None, feeds)
    assert_matches(got, ort_run(case.model, feeds)[0], "cond=False")
    np.testing.assert_array_equal(got, case.feeds["x"])


def test_the_graph_does_not_grow_with_the_trip_count():
    x, a = np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)
    sizes = []
    for trips in (100, 1000):
        m = _loop_model({"x": x, "a": a}, {"M": np.array(trips, np.int64), "cond": np.array(True)},
                        ["M", "cond", "x"], loop_body_scan(), {"x_final": [2, 3], "scan": [trips, 2, 3]})
        text = _lower(m)
        assert len(re.findall(r"= mo\.while ", text)) == 1
        sizes.append(len(re.findall(r" = ", text)))
    assert sizes[0] == sizes[1]


def test_scan_outputs_need_a_trip_count_known_at_conversion():
    x = np.ones((2, 3), np.float32)
    m = _loop_model({"M": np.array(5, np.int64), "x": x, "a": x}, {"cond": np.array(True)},
                    ["M", "cond", "x"], loop_body_scan(), {"x_final": [2, 3], "scan": [5, 2, 3]})
    m.graph.output[1].type.tensor_type.shape.dim[0].dim_param = "n"
    with pytest.raises(ConversionError, match=r"Loop node .*scan outputs need a trip count known at "
                                              r"conversion.*constant_inputs=\{'M'") as err:
        _lower(m)
    assert err.value.needs_value == "M"  # what the conformance runner binds


def test_scan_outputs_with_an_early_exit_are_refused():
    x = np.ones((2, 3), np.float32)
    body = loop_body_doubling(10.0)
    body.output.append(helper.make_tensor_value_info("x_next", TensorProto.FLOAT, [2, 3]))
    m = _loop_model({"x": x}, {"M": np.array(100, np.int64), "cond": np.array(True)},
                    ["M", "cond", "x"], body, {"x_final": [2, 3], "scan": [100, 2, 3]})
    with pytest.raises(ConversionError, match="scan outputs with a condition decided at run time"):
        _lower(m)


def test_a_loop_without_trip_count_or_condition_is_refused():
    x = np.ones((2, 3), np.float32)
    m = _loop_model({"x": x}, {}, ["", "", "x"], loop_body_doubling(10.0), {"x_final": [2, 3]})
    with pytest.raises(ConversionError, match="neither a trip count nor a condition"):
        _lower(m)


def test_a_carried_value_that_changes_shape_is_refused():
    x = np.ones((2, 3), np.float32)
    body = helper.make_graph(
        [helper.make_node("Concat", ["x", "x"], ["x_next"], axis=0)], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_next", TensorProto.FLOAT, None)])
    m = _loop_model({"x": x}, {"M": np.array(100, np.int64)}, ["M", "", "x"], body, {"x_final": [2, 3]})
    with pytest.raises(ConversionError, match=r"loop-carried value 0 \('x_next'\) changes from "
                                              r"float32 \[2, 3\] to float32 \[4, 3\]"):
        _lower(m)


def test_the_unroll_limit_switch(monkeypatch):
    """Up to ``ONNX2MAX_UNROLL_LOOP`` trips (64 by default) prepare unrolls the loop; 0 keeps
    every loop a MAX while loop; a value that is not a number is refused."""
    x = np.ones((2, 3), np.float32)
    m = _loop_model({"x": x, "a": x}, {"M": np.array(5, np.int64), "cond": np.array(True)},
                    ["M", "cond", "x"], loop_body_scan(), {"x_final": [2, 3], "scan": [5, 2, 3]})
    assert "Loop" not in [n.op_type for n in prepare(m, "loop").nodes]
    monkeypatch.setenv("ONNX2MAX_UNROLL_LOOP", "0")
    assert [n.op_type for n in prepare(m, "loop").nodes] == ["Loop"]
    assert len(re.findall(r"= mo\.while ", _lower(m))) == 1
    monkeypatch.setenv("ONNX2MAX_UNROLL_LOOP", "many")
    with pytest.raises(InputError, match="ONNX2MAX_UNROLL_LOOP='many'"):
        prepare(m, "loop")


def test_a_negative_unroll_limit_is_refused(monkeypatch):
    x = np.ones((2, 3), np.float32)
    m = _loop_model({"x": x, "a": x}, {"M": np.array(5, np.int64), "cond": np.array(True)},
                    ["M", "cond", "x"], loop_body_scan(), {"x_final": [2, 3], "scan": [5, 2, 3]})
    monkeypatch.setenv("ONNX2MAX_UNROLL_LOOP", "-1")
    with pytest.raises(InputError, match="ONNX2MAX_UNROLL_LOOP='-1'"):
        _lower(m)
