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
