"""1x1 convolutions lowered as MatMul (``onnx2max.lower.pointwise_matmul``).

On CPU, MAX 26.7 compiles a kernel of about 10 s for each distinct convolution shape and one
of about 1.5 s for each distinct MatMul shape (``docs/performance.md``), so a 1x1 Conv with
group 1, no padding and an initializer filter becomes a MatMul over the channels-last pixels.
Here: which Convs take that path, in the lowered MAX graph (no compile), with the switch on and
off. The values are checked against onnxruntime by the ``Conv-pointwise-*`` op tests in
``tests/cases.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from max.graph import DeviceRef
from max.graph.graph import Module
from onnx import TensorProto, helper, numpy_helper

from onnx2max.errors import InputError
from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare


def _model(kernel, *, group=1, pads=None, runtime_filter=False, strides=(1, 1)):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 8 // group, *kernel)).astype(np.float32)
    attrs = {"group": group, "strides": list(strides)}
    if pads is not None:
        attrs["pads"] = pads
    node = helper.make_node("Conv", ["x", "w"], ["y"], **attrs)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])]
    inits = [numpy_helper.from_array(w, "w")]
    if runtime_filter:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)))
        inits = []
    g = helper.make_graph([node], "pw", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _ops(model, monkeypatch, switch: str) -> tuple[int, int]:
    """(convolutions, matmuls) in the lowered MAX graph with ``ONNX2MAX_POINTWISE=switch``."""
    monkeypatch.setenv("ONNX2MAX_POINTWISE", switch)
    module = Module()
    lower_graph(prepare(model, "pw"), DeviceRef.CPU(), "g0", "g0_", module=module)
    text = module._to_mlir_str()
    return len(re.findall(r"\.conv\b", text)), len(re.findall(r"\.matmul\b", text))


@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
def test_pointwise_conv_is_a_matmul_and_the_switch_restores_the_conv(monkeypatch, strides):
    m = _model((1, 1), strides=strides)
    assert _ops(m, monkeypatch, "matmul") == (0, 1)
    assert _ops(m, monkeypatch, "conv") == (1, 0)


@pytest.mark.parametrize("kw", [
    {"kernel": (3, 3)},
    {"kernel": (1, 1), "group": 2},
    {"kernel": (1, 1), "pads": [1, 1, 1, 1]},
    {"kernel": (1, 1), "runtime_filter": True},
], ids=["3x3", "grouped", "padded", "runtime-filter"])
def test_other_convs_stay_convolutions(monkeypatch, kw):
    kernel = kw.pop("kernel")
    assert _ops(_model(kernel, **kw), monkeypatch, "matmul") == (1, 0)


def test_the_switch_takes_matmul_or_conv_in_any_case(monkeypatch):
    m = _model((1, 1))
    assert _ops(m, monkeypatch, "Conv") == (1, 0)
    with pytest.raises(InputError, match="ONNX2MAX_POINTWISE='banana'"):
        _ops(m, monkeypatch, "banana")
