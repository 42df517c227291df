"""Attributes a converter does not implement are errors, not silently ignored.

``NodeContext`` records which attributes a converter read; after the converter ran, an
attribute set on the node that it never read raises ``ConversionError`` naming it, unless its
value is the schema's default (the converter implements the default) or it does not change
inference (``lower.INFERENCE_IRRELEVANT_ATTRIBUTES``: ``momentum``, ``is_test``, a random op's
``seed``, ...). Lowering only, no MAX compile.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from max.graph import DeviceRef, ops
from max.graph.graph import Module
from onnx import TensorProto, helper, numpy_helper

from onnx2max import registry
from onnx2max.errors import ConversionError
from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare


def _model(node, inits=()):
    g = helper.make_graph([node], "attrs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4, 4])],
                          initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _lower(model):
    lower_graph(prepare(model, "attrs"), DeviceRef.CPU(), "g0", "g0_", module=Module())


@pytest.fixture
def leaky_relu_ignoring_alpha(monkeypatch):
    """A LeakyRelu converter that never reads ``alpha`` (it computes the default slope)."""
    real = registry.resolve

    def fn(ctx):
        x = ctx.input(0)
        return ops.max(x, x * 0.01)

    def resolve(domain, op_type, opset):
        conv = real(domain, op_type, opset)
        return dataclasses.replace(conv, fn=fn) if op_type == "LeakyRelu" else conv

    monkeypatch.setattr(registry, "resolve", resolve)


def test_an_attribute_the_converter_never_reads_is_an_error(leaky_relu_ignoring_alpha):
    m = _model(helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.3, name="act"))
    with pytest.raises(ConversionError, match=r"LeakyRelu node 'act' .*attribute\(s\) 'alpha' set to a "
                                              r"value other than the default"):
        _lower(m)


def test_an_unread_attribute_at_its_default_value_is_accepted(leaky_relu_ignoring_alpha):
    _lower(_model(helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.01)))


def test_attributes_that_do_not_change_inference_are_accepted():
    rng = np.random.default_rng(0)
    bn = [numpy_helper.from_array(rng.uniform(0.5, 1.5, 3).astype(np.float32), n) for n in "sbmv"]
    _lower(_model(helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                   epsilon=1e-3, momentum=0.5), bn))


def test_training_outputs_of_batch_norm_before_opset_14_are_refused():
    """Before opset 14, the running and saved statistics outputs are training outputs, which
    the converter does not compute (``training_mode=1`` of opset 14 on is translated; its
    values are checked by the ``numerics`` op tests)."""
    rng = np.random.default_rng(0)
    bn = [numpy_helper.from_array(rng.uniform(0.5, 1.5, 3).astype(np.float32), n) for n in "sbmv"]
    m = _model(helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"],
                                ["y", "running_mean", "running_var"]), bn)
    m.opset_import[0].version = 9
    m.graph.output.extend([helper.make_tensor_value_info(n, TensorProto.FLOAT, [3])
                           for n in ("running_mean", "running_var")])
    with pytest.raises(ConversionError, match="training outputs"):
        _lower(m)


def test_an_attribute_that_matters_only_without_axes_is_read():
    """Found on a real model (magika, by a fresh-venv trial): ReduceSum with ``axes`` given and
    ``noop_with_empty_axes=1``, which matters only without axes."""
    g = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"], noop_with_empty_axes=1, keepdims=1)], "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 4, 4])],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "axes")])
    _lower(helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)]))


@pytest.mark.parametrize("op", ["DequantizeLinear", "QuantizeLinear"])
def test_axis_of_a_per_tensor_scale_is_accepted(op):
    """``axis`` has no effect on a per-tensor scale (found by a fresh-venv trial)."""
    x = np.zeros((2, 3, 4), np.uint8 if op == "DequantizeLinear" else np.float32)
    out = TensorProto.FLOAT if op == "DequantizeLinear" else TensorProto.UINT8
    g = helper.make_graph(
        [helper.make_node(op, ["x", "s", "z"], ["y"], axis=0)], "q",
        [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(x.dtype), [2, 3, 4])],
        [helper.make_tensor_value_info("y", out, [2, 3, 4])],
        initializer=[numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                     numpy_helper.from_array(np.array(3, np.uint8), "z")])
    _lower(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def _ms_model(op, attrs, opset_ms=True):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 8])
    node = helper.make_node(op, ["x"], ["y"], domain="com.microsoft", **attrs)
    g = helper.make_graph([node], "ms", [x], [y])
    imports = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] if opset_ms else [])
    return helper.make_model(g, opset_imports=imports)


def test_onnxruntime_op_with_an_attribute_its_converter_ignores_raises():
    """com.microsoft ops have no onnx schema, so every set attribute their converter does not
    read is reported (there is no schema default to compare with)."""
    _lower(_ms_model("QuickGelu", {"alpha": 1.5}))  # read: fine
    with pytest.raises(ConversionError, match="'approximate'"):
        _lower(_ms_model("QuickGelu", {"approximate": "tanh"}))


def test_onnxruntime_op_without_its_domain_imported_is_refused():
    from onnx2max.errors import InvalidModelError
    from onnx2max.load import load_model

    with pytest.raises(InvalidModelError, match="com.microsoft"):
        load_model(_ms_model("QuickGelu", {}, opset_ms=False))


def _half_layer_norm(**attrs):
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "inv"], name="ln", **attrs)], "ln",
        [vi("x", TensorProto.FLOAT16, [2, 3, 8])], [vi("y", TensorProto.FLOAT16, None), vi("mean", 0, None),
                                                    vi("inv", 0, None)],
        initializer=[numpy_helper.from_array(np.ones(8, np.float16), n) for n in "sb"])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("stash", [None, TensorProto.FLOAT, TensorProto.BFLOAT16])
def test_layer_norm_statistics_have_the_stash_type(stash):
    """LayerNormalization's Mean and InvStdDev are of its ``stash_type`` (FLOAT by default), not
    of the float16 input: the lowering checks each output's dtype against shape inference."""
    m = _half_layer_norm(**({} if stash is None else {"stash_type": stash}))
    p = prepare(m, "ln")
    assert p.types["mean"][0] == p.types["inv"][0] == (stash or TensorProto.FLOAT)
    lower_graph(p, DeviceRef.CPU(), "g0", "g0_", module=Module())


def test_layer_norm_stash_type_outside_the_spec_is_refused():
    with pytest.raises(ConversionError, match=r"LayerNormalization node 'ln' .*stash_type FLOAT16; the spec "
                                              r"allows FLOAT or BFLOAT16"):
        _lower(_half_layer_norm(stash_type=TensorProto.FLOAT16))
