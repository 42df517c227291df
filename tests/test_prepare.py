"""Shapes that ``prepare`` gives values, checked against what onnxruntime computes (no MAX)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ort_run
from onnx import TensorProto, helper

from onnx2max.errors import InputError
from onnx2max.prepare import prepare


@pytest.mark.parametrize("opset", [11, 13, 18, 22])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("n, k, s, pads", [(5, 2, 2, (1, 1)), (6, 3, 2, (1, 1)), (7, 3, 3, (0, 2)),
                                            (4, 2, 2, (0, 0)), (9, 3, 3, (2, 2))])
def test_ceil_mode_pool_lengths_follow_onnxruntime(op, opset, n, k, s, pads):
    """Two chained ceil-mode pools and a Flatten: every inferred shape is the shape
    onnxruntime produces (before opset 22 ONNX shape inference keeps a window that starts in
    the end padding; onnxruntime drops it)."""
    attrs = {"kernel_shape": [k], "strides": [s], "pads": list(pads), "ceil_mode": 1}
    nodes = [helper.make_node(op, ["x"], ["p"], **attrs), helper.make_node(op, ["p"], ["q"], **attrs),
             helper.make_node("Flatten", ["q"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, n])],
                          [helper.make_tensor_value_info(v, TensorProto.FLOAT, None) for v in "pqy"])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    x = np.random.default_rng(0).standard_normal((1, 2, n)).astype(np.float32)
    want = ort_run(m, {"x": x})
    p = prepare(m, "ceil-pools")
    for name, w in zip("pqy", want):
        assert p.types[name][1] == w.shape, f"{name}: prepared {p.types[name][1]}, onnxruntime {w.shape}"


def test_negative_dim_value_is_dynamic_as_in_onnxruntime():
    """Older exporters (paddle2onnx) declare a dynamic dim as ``dim_value: -1``; onnxruntime
    takes any size there, so ``input_shapes`` may fix it, and without it the dim is symbolic."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    for n in (2, 5):  # onnxruntime runs both sizes
        (y,) = ort_run(m, {"x": np.ones((n, 3), np.float32)})
        p = prepare(m, "minus-one", {"x": (n, 3)})
        assert p.inputs[0].shape == y.shape == (n, 3)
        assert p.types["y"][1] == y.shape
    # without input_shapes the dim stays symbolic, named after the input
    assert prepare(m, "minus-one").inputs[0].shape == ("x_dim0", 3)
    # a declared 0 is a fixed zero-size dim, as onnxruntime takes it
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 0
    with pytest.raises(InputError, match="fixes it at 0"):
        prepare(m, "zero", {"x": (2, 3)})


def test_output_declared_with_negative_dim_is_inferred():
    """paddle2onnx declares outputs as [-1, ...]; shape inference must not take -1 as a
    fixed size that contradicts the inferred one (ppocr's classifier failed so)."""
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
    (y,) = ort_run(m, {"x": np.ones((2, 3), np.float32)})
    assert prepare(m, "minus-one-out", {"x": (2, 3)}).types["y"][1] == y.shape


def test_ops_without_converter_defined_as_onnx_functions_are_expanded():
    import onnx

    """CausalConvWithState (opset 27) has no converter; onnx defines it as a function, so
    prepare writes out its body (its numbers are checked in tests/cases.py). An op with a
    converter (Conv) is never expanded."""
    from onnx import helper

    from onnx2max.prepare import prepare

    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 5])
    w = helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [2, 1, 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    st = helper.make_tensor_value_info("st", onnx.TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("CausalConvWithState", ["x", "w"], ["y", "st"])], "g", [x, w], [y, st])
    p = prepare(helper.make_model(g, opset_imports=[helper.make_opsetid("", 27)]), "m")
    ops = {n.op_type for n in p.nodes}
    assert "CausalConvWithState" not in ops and "Conv" in ops
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], group=2)], "g", [x, w], [y])
    p = prepare(helper.make_model(g, opset_imports=[helper.make_opsetid("", 27)]), "m")
    assert [n.op_type for n in p.nodes] == ["Conv"]


def test_scan_is_unrolled_only_when_its_length_is_static():
    import onnx

    from onnx import helper

    from onnx2max.prepare import prepare

    T = onnx.TensorProto.FLOAT
    body = helper.make_graph([helper.make_node("Add", ["s", "xt"], ["s2"]),
                              helper.make_node("Identity", ["s2"], ["o"])], "b",
                             [helper.make_tensor_value_info("s", T, [2]), helper.make_tensor_value_info("xt", T, [2])],
                             [helper.make_tensor_value_info("s2", T, [2]), helper.make_tensor_value_info("o", T, [2])])

    def model(length):
        g = helper.make_graph(
            [helper.make_node("Scan", ["s0", "x"], ["s", "ys"], body=body, num_scan_inputs=1)], "g",
            [helper.make_tensor_value_info("s0", T, [2]), helper.make_tensor_value_info("x", T, [length, 2])],
            [helper.make_tensor_value_info("s", T, [2]), helper.make_tensor_value_info("ys", T, [length, 2])])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    steps = prepare(model(4), "m").nodes
    assert "Scan" not in {n.op_type for n in steps}
    assert sum(n.op_type == "Add" for n in steps) == 4
    assert [n.op_type for n in prepare(model("T"), "m").nodes] == ["Scan"]
