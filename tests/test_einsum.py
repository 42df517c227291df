"""Two-operand Einsum is lowered to one batched MatMul, never to the product of all indices
(``onnx2max.ops.indexing._einsum_matmul``). Values are checked against onnxruntime by the
``Einsum-matmul-*`` op tests in ``tests/cases.py``; here, without a compile, what the lowered
MAX graph holds."""

from __future__ import annotations

import re

import pytest
from max.graph import DeviceRef
from max.graph.graph import Module
from onnx import TensorProto, helper

from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare


def _lowered(eq, shapes, elem=TensorProto.FLOAT) -> str:
    names = [f"x{k}" for k in range(len(shapes))]
    g = helper.make_graph([helper.make_node("Einsum", names, ["y"], equation=eq)], "e",
                          [helper.make_tensor_value_info(n, elem, list(s)) for n, s in zip(names, shapes)],
                          [helper.make_tensor_value_info("y", elem, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    module = Module()
    lower_graph(prepare(m, "e"), DeviceRef.CPU(), "g0", "g0_", module=module)
    return module._to_mlir_str()


def _has_shape(text: str, shape) -> bool:
    return re.search(r"\[" + r",\s*".join(str(d) for d in shape) + r"\]", text) is not None


@pytest.mark.parametrize("eq, shapes, product", [
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)], (2, 3, 4, 6, 5)),
    ("ij,jk->ki", [(3, 4), (4, 5)], (5, 3, 4)),
    ("...ij,...jk->...ik", [(1, 4, 5), (3, 5, 2)], (3, 4, 2, 5)),
])
def test_two_operand_einsum_is_one_matmul(eq, shapes, product):
    text = _lowered(eq, shapes)
    assert len(re.findall(r"\.matmul\b", text)) == 1
    assert not _has_shape(text, product), f"{eq}: the full product {product} is materialised"


def test_integer_einsum_takes_the_general_path():
    text = _lowered("ij,jk->ik", [(2, 3), (3, 4)], TensorProto.INT64)
    assert not re.findall(r"\.matmul\b", text)
    assert _has_shape(text, (2, 4, 3))


def test_three_operand_einsum_takes_the_general_path():
    text = _lowered("i,j,k->ijk", [(2,), (3,), (4,)])
    assert not re.findall(r"\.matmul\b", text)
