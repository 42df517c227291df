"""The workaround for MAX 26.7's attention fusion (``onnx2max.ops.matmul``): a rank-4
``softmax(q @ k^T ...) @ v`` whose v head size differs from q's is fused by MAX into a kernel
that computes it wrongly, so that product is lowered as a 3-D batched matmul; with equal head
sizes the rank-4 product (and MAX's fused kernel) is kept. Values are checked against
onnxruntime by the ``numerics`` op tests in ``tests/cases.py``; here, without a compile, which
form of matmul the lowered MAX graph holds."""

from __future__ import annotations

import re

import numpy as np
import pytest
from cases import numerics_cases
from max.graph import DeviceRef
from max.graph.graph import Module
from onnx import TensorProto, helper

from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare


def _matmul_ranks(model) -> list[tuple[int, int]]:
    """``(rank of the left operand, rank of the result)`` of each matmul, in graph order."""
    module = Module()
    lower_graph(prepare(model, "m"), DeviceRef.CPU(), "g0", "g0_", module=module)
    out = []
    for line in module._to_mlir_str().splitlines():
        if re.search(r"\.matmul\(", line):
            shapes = re.findall(r"tensor<\[([^\]]*)\]", line)
            out.append((len(shapes[0].split(",")), len(shapes[-1].split(","))))
    return out


def _case(cid):
    return next(c for c in numerics_cases() if c.id == cid)


@pytest.mark.parametrize("cid", ["Attention-pattern-diff-head-sizes", "Attention-pattern-einsum-diff-head-sizes",
                                 "Attention-pattern-broadcast-values"])
def test_values_product_with_another_head_size_is_3d(cid):
    ranks = _matmul_ranks(_case(cid).model)
    assert len(ranks) == 2
    assert ranks[-1] == (3, 3), f"{cid}: the probabilities @ values product is {ranks[-1]}"


def test_same_head_sizes_keep_the_rank_4_product():
    assert _matmul_ranks(_case("Attention-pattern-same-head-sizes").model) == [(4, 4), (4, 4)]


def test_softmax_times_a_matrix_is_2d():
    """A 2-D right operand after a Softmax: one 2-D product, not a broadcast copy per batch."""
    nodes = [helper.make_node("Softmax", ["x"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "w"], ["y"])]
    g = helper.make_graph(nodes, "s", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[helper.make_tensor("w", TensorProto.FLOAT, [6, 5],
                                                          np.ones(30, np.float32))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert _matmul_ranks(m) == [(2, 2)]


def test_values_product_inside_an_if_branch_is_3d():
    """The pattern inside both branches of an If with a runtime condition: the producers of a
    branch's values are its own nodes, which the workaround must see."""
    def branch(name, scale):
        nodes = [helper.make_node("Transpose", ["k"], [f"{name}_kt"], perm=[0, 1, 3, 2]),
                 helper.make_node("MatMul", ["q", f"{name}_kt"], [f"{name}_s"]),
                 helper.make_node("Mul", [f"{name}_s", f"{name}_c"], [f"{name}_s2"]),
                 helper.make_node("Softmax", [f"{name}_s2"], [f"{name}_p"], axis=-1),
                 helper.make_node("MatMul", [f"{name}_p", "v"], [f"{name}_y"])]
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)],
                                 initializer=[helper.make_tensor(f"{name}_c", TensorProto.FLOAT, [], [scale])])
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=branch("a", 0.5), else_branch=branch("b", 2.0))], "m",
        [vi("cond", TensorProto.BOOL, []), vi("q", TensorProto.FLOAT, [2, 3, 5, 4]),
         vi("k", TensorProto.FLOAT, [2, 3, 6, 4]), vi("v", TensorProto.FLOAT, [2, 3, 6, 12])],
        [vi("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    ranks = _matmul_ranks(m)
    assert len(ranks) == 4, ranks
    assert ranks[1] == ranks[3] == (3, 3), f"the probabilities @ values products are {ranks[1]}, {ranks[3]}"
