"""Models exported from torch with fixed shapes: MAX matches torch and onnxruntime.

The three models are converted together (one MAX compile).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from conftest import assert_matches, ort_run  # noqa: E402

import onnx2max  # noqa: E402


def _mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)), (torch.randn(4, 784),)


def _cnn():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, 10),
    )
    with torch.no_grad():  # non-trivial running statistics
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net, (torch.randn(2, 3, 16, 16),)


def _encoder():
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True, activation="gelu")
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), (torch.randn(2, 8, 32),)


BUILDERS = {"mlp": _mlp, "cnn": _cnn, "transformer_encoder": _encoder}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("torch_models")
    out = {}
    for name, build in BUILDERS.items():
        torch.manual_seed(0)
        module, args = build()
        module.eval()
        path = d / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17)
        with torch.no_grad():
            ref = module(*args).numpy()
        out[name] = (path, [a.numpy() for a in args], ref)
    models = onnx2max.from_onnx_many([p for p, _, _ in out.values()], progress=False)
    return {name: (*out[name], m) for name, m in zip(out, models)}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_torch_model_matches_torch_and_onnxruntime(exported, name):
    path, args, torch_out, model = exported[name]
    feeds = {spec.name: a for spec, a in zip(model.inputs, args)}
    (got,) = model.run(None, feeds)
    (ort_out,) = ort_run(path.read_bytes(), feeds)
    assert_matches(got, ort_out, f"{name} vs onnxruntime")
    assert_matches(got, torch_out, f"{name} vs torch")


def test_torch_tensors_in_and_out(exported):
    path, args, torch_out, model = exported["mlp"]
    y = model(torch.from_numpy(args[0]))
    assert isinstance(y, torch.Tensor)
    np.testing.assert_allclose(y.numpy(), torch_out, atol=1e-4, rtol=1e-3)
