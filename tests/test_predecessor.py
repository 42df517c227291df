"""The predecessor's public API (PyTorch-to-MAX converter) on top of the ONNX path: its README's
two snippets, and each layer of its supported-layer table, against torch."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from max import driver  # noqa: E402
from max.dtype import DType  # noqa: E402
from max.graph import DeviceRef  # noqa: E402

from export import PyTorchToMAXConverter, convert_pytorch_model  # noqa: E402

ATOL, RTOL = 1e-4, 1e-3
BufferType = getattr(driver, "Tensor", driver.Buffer)  # the older name where MAX still has it


def _torch_out(model, *inputs):
    with torch.no_grad():
        return model.eval()(*[torch.from_numpy(np.asarray(x)) for x in inputs]).numpy()


def test_readme_basic_usage():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    max_model = convert_pytorch_model(model=model, input_shapes=[(1, 784)], model_name="my_model")
    test_input = np.random.randn(1, 784).astype(np.float32)
    max_input = BufferType.from_numpy(test_input)
    result = max_model.execute(max_input)
    assert isinstance(result[0], driver.Buffer)
    np.testing.assert_allclose(result[0].to_numpy(), _torch_out(model, test_input), atol=ATOL, rtol=RTOL)
    assert max_model.name == "my_model"


def test_readme_advanced_usage():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    device = DeviceRef.GPU() if driver.accelerator_count() > 0 else DeviceRef.CPU()
    converter = PyTorchToMAXConverter(device=device, dtype=DType.float32)
    max_model = converter.convert_model(pytorch_model=model, input_shapes=[(32, 784)], model_name="gpu_model")
    x = np.random.randn(32, 784).astype(np.float32)
    (out,) = max_model.execute(BufferType.from_numpy(x))
    if device != DeviceRef.CPU():
        out = out.to(driver.CPU())
    np.testing.assert_allclose(out.to_numpy(), _torch_out(model, x), atol=ATOL, rtol=RTOL)


class _MHA(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, q, kv):
        return self.attn(q, kv, kv, need_weights=False)[0]


LAYERS = {
    "Linear": (lambda: nn.Linear(12, 7), [(3, 12)]),
    "ReLU": (lambda: nn.ReLU(), [(3, 12)]),
    "GELU": (lambda: nn.GELU(), [(3, 12)]),
    "LayerNorm": (lambda: nn.LayerNorm(12), [(2, 3, 12)]),
    "Embedding": (lambda: nn.Embedding(20, 8), [((2, 5), torch.int64)]),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), [(1, 3, 9, 9)]),
    "Dropout": (lambda: nn.Dropout(0.5), [(3, 12)]),
    "MultiheadAttention": (_MHA, [(2, 5, 16), (2, 7, 16)]),
}


def _normalize(shapes):
    return [s if isinstance(s[0], tuple) else (tuple(s), torch.float32) for s in shapes]


@pytest.fixture(scope="module", autouse=True)
def _one_compile_for_all(tmp_path_factory):
    """Compile every model these tests convert in one MAX compile, into the compile cache.

    Each test then goes through the whole predecessor path (export, convert, execute); its
    conversion is served by the cache instead of paying a compile of its own.
    """
    import onnx2max
    from export import to_onnx

    d = tmp_path_factory.mktemp("predecessor")
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    mlp64 = copy.deepcopy(mlp).double()
    jobs = [(mlp, [(1, 784)]), (mlp, [(32, 784)]), (mlp64, [((4, 784), torch.float64)])]
    jobs += [(make(), shapes) for make, shapes in LAYERS.values()]
    paths = [to_onnx(m, path=d / f"m{k}.onnx", input_shapes=_normalize(s)) for k, (m, s) in enumerate(jobs)]
    onnx2max.from_onnx_many(paths, progress=False)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_predecessor_layer_table(layer):
    make, shapes = LAYERS[layer]
    torch.manual_seed(0)
    module = make()
    max_model = convert_pytorch_model(model=module, input_shapes=shapes, model_name=layer)
    rng = np.random.default_rng(0)
    inputs = []
    for s in shapes:
        if isinstance(s[0], tuple):
            inputs.append(rng.integers(0, 20, size=s[0]).astype(np.int64))
        else:
            inputs.append(rng.standard_normal(s).astype(np.float32))
    outs = max_model.execute(*[BufferType.from_numpy(x) for x in inputs])
    np.testing.assert_allclose(outs[0].to_numpy(), _torch_out(module, *inputs), atol=ATOL, rtol=RTOL)


def test_float64_converts_a_copy_and_bfloat16_is_refused_clearly():
    import onnx2max

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    conv = PyTorchToMAXConverter(device=DeviceRef.CPU(), dtype=DType.float64)
    m = conv.convert_model(pytorch_model=model, input_shapes=[(4, 784)], model_name="m64")
    assert model[0].weight.dtype == torch.float32, "the caller's module was changed"
    x = np.random.default_rng(0).standard_normal((4, 784))
    out = m.execute(x)[0].to_numpy()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _torch_out(copy.deepcopy(model).double(), x), atol=1e-9, rtol=1e-9)
    bf16 = PyTorchToMAXConverter(device=DeviceRef.CPU(), dtype=DType.bfloat16)
    with pytest.raises(onnx2max.Onnx2MaxError, match="BFLOAT16"):
        bf16.convert_model(pytorch_model=model, input_shapes=[(4, 784)], model_name="m16")
