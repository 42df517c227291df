"""Channels-last broadcasting: per-channel operands after a convolution (an SE block's
``x * s[N,C,1,1]``, a bias ``[C,1,1]`` added after a Conv) stay channels-last, so no transpose
round trip is made between the convolutions; Split and Slice of a channels-last activation
stay channels-last. ``ONNX2MAX_LAYOUT=basic`` switches both off.

The transposes are counted in the lowered MAX graph (no compile); one compile of the three
test models checks their values against onnxruntime.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from conftest import assert_matches, ort_run
from max.graph import DeviceRef
from max.graph.graph import Module
from onnx import TensorProto, helper, numpy_helper

import onnx2max
from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare


def _weight(rng, name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def _se_model() -> onnx.ModelProto:
    """Conv -> SE block (GlobalAveragePool, 1x1 Convs, HardSigmoid, Mul) -> + bias[C,1,1] ->
    * scale[1,C,1,1] -> Relu -> Conv."""
    rng = np.random.default_rng(0)
    c = 8

    def w(name, *shape):
        return _weight(rng, name, *shape)

    inits = [w("w0", c, 3, 3, 3), w("w1", 2, c, 1, 1), w("w2", c, 2, 1, 1), w("w3", 4, c, 3, 3),
             w("bias", c, 1, 1), w("scale", 1, c, 1, 1)]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),
        helper.make_node("Conv", ["g", "w1"], ["g1"]),
        helper.make_node("Relu", ["g1"], ["g2"]),
        helper.make_node("Conv", ["g2", "w2"], ["g3"]),
        helper.make_node("HardSigmoid", ["g3"], ["s"], alpha=0.2, beta=0.5),
        helper.make_node("Mul", ["a", "s"], ["se"], name="se_mul"),
        helper.make_node("Add", ["se", "bias"], ["b"], name="bias_add"),
        helper.make_node("Mul", ["b", "scale"], ["m"], name="scale_mul"),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("Conv", ["r", "w3"], ["y"]),
    ]
    g = helper.make_graph(nodes, "se", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 10, 10])],
                          initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _transposes(model, monkeypatch, on: bool) -> int:
    monkeypatch.setenv("ONNX2MAX_LAYOUT", "wide" if on else "basic")
    module = Module()
    lower_graph(prepare(model, "se"), DeviceRef.CPU(), "g0", "g0_", module=module)
    return len(re.findall(r"\btranspose\b", module._to_mlir_str()))


def test_se_block_and_channel_bias_stay_channels_last(monkeypatch):
    m = _se_model()
    on, off = _transposes(m, monkeypatch, True), _transposes(m, monkeypatch, False)
    # on: the input into the first Conv, the pooled SE vector [1,8,1,1] into its 1x1 Conv, the
    # output back to NCHW; off: also the activation [1,8,12,12] to NCHW for the SE Mul and back
    # to NHWC for the last Conv, and the SE gate to NCHW
    assert (on, off) == (3, 6)


@pytest.fixture(scope="module")
def converted():
    """The three test models, lowered wide (the default), converted in one MAX compile."""
    models = {"se": _se_model(), "split_slice": _split_slice_model(), "nhwc": _nhwc_model()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONNX2MAX_LAYOUT", "wide")
        compiled = onnx2max.from_onnx_many(list(models.values()), progress=False)
    return {k: (m, c) for (k, m), c in zip(models.items(), compiled)}


def _check(converted, name, feeds):
    m, c = converted[name]
    for out, g, w in zip([o.name for o in m.graph.output], c.run(None, feeds), ort_run(m, feeds)):
        assert_matches(g, w, f"{name}: {out}")


def test_channels_last_broadcasting_matches_onnxruntime(converted):
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    _check(converted, "se", {"x": x})


@pytest.mark.parametrize("shape", [(8, 1, 1), (1, 8, 1, 1), (8, 1, 12), (12,)])
def test_constant_operands_are_transposed_at_conversion(shape):
    """Constants of any broadcastable shape are padded and transposed like the activation."""
    from onnx2max import derive

    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    x = np.random.default_rng(2).standard_normal((2, 8, 12, 12)).astype(np.float32)
    padded = a.reshape((1,) * (4 - a.ndim) + a.shape)
    last = derive.compute("channels_last", [a], {"rank": 4}, list(np.moveaxis(padded, 1, -1).shape))
    x_last = np.moveaxis(x, 1, -1)
    np.testing.assert_array_equal(np.moveaxis(x_last + last, -1, 1), x + a)


def _split_slice_model() -> onnx.ModelProto:
    """Conv -> Split on channels [3, 5] -> (Conv, Slice over channels and a strided spatial
    axis -> Conv): a YOLO head's channel split and a Focus-style strided slice."""
    rng = np.random.default_rng(3)

    def w(name, *shape):
        return _weight(rng, name, *shape)

    consts = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              [("starts", [1, 0]), ("ends", [4, 12]), ("axes", [1, 3]), ("steps", [1, 2])]]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Split", ["a"], ["p", "q"], axis=1, num_outputs=2),
        helper.make_node("Conv", ["p", "w1"], ["y1"]),
        helper.make_node("Slice", ["q", "starts", "ends", "axes", "steps"], ["qs"]),
        helper.make_node("Conv", ["qs", "w2"], ["y2"]),
    ]
    g = helper.make_graph(nodes, "split_slice",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                          [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [1, 2, 10, 10]),
                           helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 2, 10, 4])],
                          initializer=[w("w0", 8, 3, 3, 3), w("w1", 2, 4, 3, 3), w("w2", 2, 3, 3, 3), *consts])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_split_and_slice_stay_channels_last_and_match_onnxruntime(converted, monkeypatch):
    m = _split_slice_model()
    # on: only the input into the first Conv and the two outputs back to NCHW; off: the Conv
    # output back to NCHW for the Split, and the two parts to NHWC for their Convs
    assert (_transposes(m, monkeypatch, True), _transposes(m, monkeypatch, False)) == (3, 6)
    x = np.random.default_rng(4).standard_normal((1, 3, 12, 12)).astype(np.float32)
    _check(converted, "split_slice", {"x": x})


def _nhwc_model() -> onnx.ModelProto:
    """A TensorFlow-style model: NHWC input, Transpose to NCHW, Conv, MaxPool, Transpose back."""
    rng = np.random.default_rng(5)
    w = _weight(rng, "w", 6, 3, 3, 3)
    nodes = [helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xc", "w"], ["c"]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Transpose", ["p"], ["y"], perm=[0, 2, 3, 1])]
    g = helper.make_graph(nodes, "nhwc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 10, 10, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 4, 6])], initializer=[w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_nhwc_model_needs_no_transpose_and_matches_onnxruntime(converted, monkeypatch):
    m = _nhwc_model()
    # wide: the model's two Transposes cancel the layout permutes; basic: both Transposes and
    # the permutes into and out of the Conv
    assert (_transposes(m, monkeypatch, True), _transposes(m, monkeypatch, False)) == (0, 4)
    x = np.random.default_rng(6).standard_normal((2, 10, 10, 3)).astype(np.float32)
    _check(converted, "nhwc", {"x": x})
