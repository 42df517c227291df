"""Typed errors with messages that name the node, op or input concerned (no compile needed)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from cases import f32, node
from onnx import TensorProto, helper

import onnx2max
from onnx2max import errors


def _model(nodes, inputs, outputs, opset=17, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_input_without_a_declared_shape_asks_for_input_shapes():
    # the ONNX checker refuses such a model first; prepare, which lowering starts from, says more
    from onnx2max.prepare import prepare

    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(errors.InvalidModelError) as e:
        prepare(m, "m")
    msg = str(e.value)
    assert "'x' has no declared shape" in msg and "input_shapes" in msg


def test_input_shapes_for_unknown_input():
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(errors.InputError, match="'nope'|nope"):
        onnx2max.from_onnx(m, input_shapes={"nope": (1,)})


def test_unsupported_ops_are_all_listed_before_compiling():
    m = _model(
        [helper.make_node("Relu", ["x"], ["a"]),
         helper.make_node("Unique", ["a"], ["b"], name="nz"),
         helper.make_node("Foo", ["x"], ["c"], domain="com.example", name="custom")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [None]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])],
    )
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(errors.UnsupportedOpError) as e:
        onnx2max.from_onnx(m)
    assert {n.op_type for n in e.value.nodes} == {"Unique", "Foo"}
    assert "depends on run-time values" in str(e.value)
    assert "nz" in str(e.value) and "custom" in str(e.value) and "com.example" in str(e.value)


def test_unsupported_ops_name_the_file_they_are_in(tmp_path):
    good = _model([helper.make_node("Relu", ["x"], ["y"])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    bad = _model([helper.make_node("Foo", ["x"], ["y"], domain="com.example", name="custom")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    bad.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(good, tmp_path / "good.onnx")
    onnx.save(bad, tmp_path / "second.onnx")
    with pytest.raises(errors.UnsupportedOpError) as e:
        onnx2max.from_onnx_many([tmp_path / "good.onnx", tmp_path / "second.onnx"], cache_dir=False)
    (node,) = e.value.nodes
    assert node.source.endswith("second.onnx")
    assert "node 'custom' of " in str(e.value) and "second.onnx" in str(e.value)


def test_missing_default_opset_import():
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    del m.opset_import[:]
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises((errors.InvalidModelError,)):
        onnx2max.from_onnx(m)


def test_dynamic_reshape_target_names_the_node():
    m = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r1")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])])
    with pytest.raises(errors.ConversionError) as e:
        onnx2max.from_onnx(m)
    assert "Reshape node 'r1'" in str(e.value) and "conversion time" in str(e.value)


def test_gpu_on_a_machine_without_one():
    from max import driver

    if driver.accelerator_count() > 0:
        pytest.skip("this machine has a GPU")
    with pytest.raises(errors.DeviceError, match="cpu"):
        onnx2max.from_onnx(node("x", "Relu", [f32(2)]).model, device="gpu")


def test_unknown_device_name():
    with pytest.raises(errors.DeviceError, match="tpu"):
        onnx2max.from_onnx(node("x", "Relu", [f32(2)]).model, device="tpu")


def test_missing_file_and_garbage_file(tmp_path):
    with pytest.raises(errors.ModelLoadError, match="no such file"):
        onnx2max.from_onnx(tmp_path / "absent.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xff this is not protobuf \x12\x34" * 10)
    with pytest.raises(errors.ModelLoadError):
        onnx2max.from_onnx(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(errors.ModelLoadError, match="empty"):
        onnx2max.from_onnx(empty)


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    w = np.ones((4, 4), np.float32)
    t = onnx.numpy_helper.from_array(w, "w")
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], inits=[t])
    sub = tmp_path / "model"
    sub.mkdir()
    (tmp_path / "secret.bin").write_bytes(w.tobytes())
    onnx.save_model(m, str(sub / "m.onnx"), save_as_external_data=True, location="w.bin",
                    size_threshold=0)
    proto = onnx.load(sub / "m.onnx", load_external_data=False)
    for tensor in proto.graph.initializer:
        for e in tensor.external_data:
            if e.key == "location":
                e.value = "../secret.bin"
    onnx.save(proto, sub / "evil.onnx")
    with pytest.raises(errors.ModelLoadError, match="outside"):
        onnx2max.from_onnx(sub / "evil.onnx")


def test_run_input_errors(converted):
    group = converted("matmul")
    model = group.models["MatMul-2d"]
    case = group.cases["MatMul-2d"]
    a, b = case.feeds["in0"], case.feeds["in1"]
    with pytest.raises(errors.InputError, match="missing input.*in1"):
        model.run(None, {"in0": a})
    with pytest.raises(errors.InputError, match="unknown input.*bogus"):
        model.run(None, {"in0": a, "in1": b, "bogus": a})
    with pytest.raises(errors.InputError, match="float64.*float32"):
        model.run(None, {"in0": a.astype(np.float64), "in1": b})
    with pytest.raises(errors.InputError, match=r"shape \(4, 3\).*\(3, 4\)"):
        model.run(None, {"in0": a.T.copy(), "in1": b})
    with pytest.raises(errors.InputError, match="unknown output"):
        model.run(["nope"], {"in0": a, "in1": b})
    # non-contiguous arrays are copied, not refused
    wide = np.zeros((3, 8), np.float32)
    wide[:, ::2] = a
    (got,) = model.run(None, {"in0": wide[:, ::2], "in1": b})
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-5)


def test_run_refuses_what_cannot_be_an_input(converted):
    group = converted("matmul")
    model = group.models["MatMul-2d"]
    case = group.cases["MatMul-2d"]
    a, b = case.feeds["in0"], case.feeds["in1"]
    with pytest.raises(errors.InputError, match="in0.*objects"):
        model.run(None, {"in0": a.astype(object), "in1": b})
    with pytest.raises(errors.InputError, match="in0.*cannot be converted"):
        model.run(None, {"in0": [[1.0, 2.0], [3.0]], "in1": b})
    with pytest.raises(errors.InputError, match="in0.*cannot be converted"):
        model.run(None, {"in0": [["a"] * a.shape[1]] * a.shape[0], "in1": b})
    with pytest.raises(errors.InputError, match="in0.*dict"):
        model.run(None, {"in0": {"x": 1}, "in1": b})
    # lists of numbers are converted to the input's dtype
    (got,) = model.run(None, {"in0": a.tolist(), "in1": b})
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-5)


def test_run_refuses_torch_tensors_it_cannot_take(converted):
    torch = pytest.importorskip("torch")
    group = converted("matmul")
    model = group.models["MatMul-2d"]
    a, b = (group.cases["MatMul-2d"].feeds[k] for k in ("in0", "in1"))
    with pytest.raises(errors.InputError, match="in0.*meta"):
        model(torch.empty(a.shape, device="meta"), b)
    with pytest.raises(errors.InputError, match="in0.*bfloat16"):
        model(torch.from_numpy(a).to(torch.bfloat16), b)
    with pytest.raises(errors.InputError, match="in0.*float64.*float32"):
        model(torch.from_numpy(a).double(), b)
    got = model(torch.from_numpy(a).t().contiguous().t(), torch.from_numpy(b))  # strided view
    np.testing.assert_allclose(got.numpy(), a @ b, rtol=1e-5, atol=1e-5)


def test_data_dependent_op_on_known_inputs_is_folded():
    from onnx2max.load import load_model
    from onnx2max.prepare import prepare

    c = np.array([[0, 3, 0], [5, 0, 7]], np.int64)
    m = _model([helper.make_node("NonZero", ["c"], ["nz"]),
                helper.make_node("Cast", ["nz"], ["f"], to=TensorProto.FLOAT),
                helper.make_node("ReduceSum", ["f"], ["s"], keepdims=0),
                helper.make_node("Add", ["x", "s"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
               inits=[onnx.numpy_helper.from_array(c, "c")])
    p = prepare(*load_model(m))
    assert [n.op_type for n in p.nodes] == ["Add"]
    assert p.values["s"] == np.float32(np.sum(np.nonzero(c)))  # folded by onnx's evaluator


def test_a_second_converter_for_the_same_op_version_is_refused(monkeypatch):
    from onnx2max import registry

    monkeypatch.setattr(registry, "_REGISTRY", {k: list(v) for k, v in registry._REGISTRY.items()})
    with pytest.raises(RuntimeError, match=r"two converters for ai.onnx::Relu since opset 1"):
        registry.converter("Relu", since=1)(lambda ctx: None)


def test_a_model_onnxruntime_cannot_run_gives_a_typed_reference_error():
    """onnxruntime has no CPU bfloat16 Add: compare() has no reference and says so (typed),
    before anything is compiled, instead of onnxruntime's own traceback."""
    import ml_dtypes

    m = _model([helper.make_node("Add", ["a", "b"], ["y"])],
               [helper.make_tensor_value_info(n, TensorProto.BFLOAT16, [2, 3]) for n in "ab"],
               [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [2, 3])], opset=21)
    x = f32(2, 3).astype(ml_dtypes.bfloat16)
    with pytest.raises(errors.ReferenceRunError, match="onnxruntime .* cannot run this model"):
        onnx2max.compare(m, {"a": x, "b": x})


def test_non_max_suppression_with_disagreeing_box_counts_names_the_node():
    """onnxruntime refuses this at run time; MAX would silently use the first 5 scores."""
    from max.graph import DeviceRef
    from max.graph.graph import Module

    from onnx2max.lower import lower_graph
    from onnx2max.prepare import prepare

    nms = helper.make_node("NonMaxSuppression", ["boxes", "scores", "k"], ["sel"], name="nms0")
    m = _model([nms], [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 5, 4]),
                       helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 6])],
               [helper.make_tensor_value_info("sel", TensorProto.INT64, None)], opset=11,
               inits=[onnx.numpy_helper.from_array(np.array([3], np.int64), "k")])
    with pytest.raises(errors.ConversionError, match=r"nms0.*box count \(5 and 6\)"):
        lower_graph(prepare(m, "m"), DeviceRef.CPU(), "g0", "g0_", module=Module())


def test_an_op_other_than_a_conversion_on_an_8_bit_float_is_refused_by_name():
    """8-bit floats are held as bytes: Add on them would add bit patterns, so it is refused
    (the conversions are checked in tests/cases.py float8_cases)."""
    from max.graph import DeviceRef
    from max.graph.graph import Module

    from onnx2max.lower import lower_graph
    from onnx2max.prepare import prepare

    T = TensorProto.FLOAT8E4M3FN
    m = _model([helper.make_node("Add", ["x", "x"], ["y"], name="add0")],
               [helper.make_tensor_value_info("x", T, [2])],
               [helper.make_tensor_value_info("y", T, [2])], opset=21)
    with pytest.raises(errors.ConversionError, match=r"add0.*'x' is FLOAT8E4M3FN.*only Cast, CastLike"):
        lower_graph(prepare(m, "m"), DeviceRef.CPU(), "g0", "g0_", module=Module())
