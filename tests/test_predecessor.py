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


class _AllLayers(nn.Module):
    """Every layer of the table side by side: layer k reads its own inputs and gives output k.
    One model, so the whole table costs one MAX compile, through the predecessor's own path."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([make() for make, _ in LAYERS.values()])
        self.arity = [len(shapes) for _, shapes in LAYERS.values()]

    def forward(self, *xs):
        outs, k = [], 0
        for layer, n in zip(self.layers, self.arity):
            outs.append(layer(*xs[k:k + n]))
            k += n
        return tuple(outs)


@pytest.fixture(scope="module")
def layer_table():
    """``(module, inputs, MAX outputs)`` of :class:`_AllLayers`, converted with
    ``convert_pytorch_model`` and run with ``execute`` on ``Buffer`` inputs."""
    torch.manual_seed(0)
    module = _AllLayers().eval()
    shapes = [s for _, ss in LAYERS.values() for s in ss]
    max_model = convert_pytorch_model(model=module, input_shapes=shapes, model_name="layers")
    rng = np.random.default_rng(0)
    inputs = []
    for s in shapes:
        if isinstance(s[0], tuple):
            inputs.append(rng.integers(0, 20, size=s[0]).astype(np.int64))
        else:
            inputs.append(rng.standard_normal(s).astype(np.float32))
    outs = max_model.execute(*[BufferType.from_numpy(x) for x in inputs])
    assert all(isinstance(o, driver.Buffer) for o in outs)
    return module, inputs, [o.to_numpy() for o in outs]


@pytest.mark.parametrize("layer", list(LAYERS))
def test_predecessor_layer_table(layer_table, layer):
    module, inputs, outs = layer_table
    k = list(LAYERS).index(layer)
    n = module.arity[k]
    start = sum(module.arity[:k])
    want = _torch_out(module.layers[k], *inputs[start:start + n])
    np.testing.assert_allclose(outs[k], want, atol=ATOL, rtol=RTOL, err_msg=layer)


def test_float64_and_bfloat16_convert_a_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    conv = PyTorchToMAXConverter(device=DeviceRef.CPU(), dtype=DType.float64)
    m = conv.convert_model(pytorch_model=model, input_shapes=[(4, 784)], model_name="m64")
    assert model[0].weight.dtype == torch.float32, "the caller's module was changed"
    x = np.random.default_rng(0).standard_normal((4, 784))
    out = m.execute(x)[0].to_numpy()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _torch_out(copy.deepcopy(model).double(), x), atol=1e-9, rtol=1e-9)
    # bfloat16: buffers in and out of execute, against torch's bfloat16 forward (8-bit
    # significands, sums of 784 products: a few percent)
    from onnx2max.dtypes import from_buffer, to_buffer

    bf16 = PyTorchToMAXConverter(device=DeviceRef.CPU(), dtype=DType.bfloat16)
    mb = bf16.convert_model(pytorch_model=model, input_shapes=[(4, 784)], model_name="m16")
    assert model[0].weight.dtype == torch.float32, "the caller's module was changed"
    xb = torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16)
    (out,) = mb.execute(to_buffer(xb.view(torch.int16).numpy().view(mb.model.inputs[0].dtype)))
    assert out.dtype == DType.bfloat16
    with torch.no_grad():
        want = copy.deepcopy(model).to(torch.bfloat16)(xb).float().numpy()
    np.testing.assert_allclose(from_buffer(out).astype(np.float32), want, atol=5e-2, rtol=5e-2)
