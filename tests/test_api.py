"""The model object: metadata, defaults of initializer-backed inputs, onnxruntime conventions."""

from __future__ import annotations

import numpy as np
from conftest import assert_matches, ort_run


def test_initializer_input_is_an_overridable_default(converted):
    group = converted("shape")
    case = group.cases["Initializer-as-input-default"]
    model = group.models[case.id]
    specs = {s.name: s for s in model.inputs}
    assert specs["b"].has_default and not specs["x"].has_default
    assert specs["b"].shape == (3,) and specs["b"].dtype == np.float32
    # not fed: the initializer's value is used, as onnxruntime does
    (got,) = model.run(None, case.feeds)
    assert_matches(got, ort_run(case.model, case.feeds)[0], "default")
    # fed: the given value replaces it
    feeds = dict(case.feeds, b=np.full(3, 10.0, np.float32))
    (got,) = model.run(["y"], feeds)
    assert_matches(got, ort_run(case.model, feeds)[0], "override")


def test_metadata_and_call_forms(converted):
    group = converted("matmul")
    case = group.cases["MatMul-batch-broadcast"]
    model = group.models[case.id]
    assert [s.name for s in model.get_inputs()] == ["in0", "in1"]
    assert model.outputs[0].shape == (2, 3, 3, 5) and model.outputs[0].type == "tensor(float)"
    a, b = case.feeds["in0"], case.feeds["in1"]
    want = ort_run(case.model, case.feeds)[0]
    assert_matches(model(a, b), want, "positional")
    assert_matches(model(a, in1=b), want, "mixed")
    assert "MatMul-batch-broadcast" in repr(model)


def test_outputs_of_one_run_survive_the_next(converted):
    group = converted("matmul")
    case = group.cases["MatMul-2d"]
    model = group.models[case.id]
    (first,) = model.run(None, case.feeds)
    kept = first.copy()
    other = {k: v * 3 for k, v in case.feeds.items()}
    (second,) = model.run(None, other)
    np.testing.assert_array_equal(first, kept)
    assert not np.allclose(first, second)


def test_bfloat16_in_and_out_as_ml_dtypes_and_torch(converted):
    """bfloat16 crosses the boundary as ml_dtypes arrays (numpy) or torch.bfloat16 tensors, the
    values computed against onnx's reference evaluator."""
    import ml_dtypes
    import pytest
    from onnx.reference import ReferenceEvaluator

    torch = pytest.importorskip("torch")
    group = converted("bfloat16")
    case = group.cases["bf16_add_mul"]
    model = group.models[case.id]
    assert model.inputs[0].dtype == np.dtype(ml_dtypes.bfloat16)
    assert model.inputs[0].type == "tensor(bfloat16)"
    want = ReferenceEvaluator(case.model).run(None, case.feeds)[0]
    x = torch.from_numpy(case.feeds["x"].astype(np.float32)).to(torch.bfloat16)
    y = model(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.bfloat16
    assert_matches(y.float().numpy().astype(ml_dtypes.bfloat16), want, "torch bfloat16")
