"""The model zoo (models/zoo.py): exported with export.to_onnx, converted together, compared with
torch and onnxruntime; a second conversion is served by the compile cache.

ResNet-18 runs only with ``-m slow``: its 224x224 convolutions (a dozen distinct shapes, each its
own MAX kernel) cost minutes of compile cold on 2 cores (the zoo's compile in the cold suite
went from 903 s to 489 s without it; docs/performance.md)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import assert_matches, ort_run  # noqa: E402

import onnx2max  # noqa: E402
from export import to_onnx  # noqa: E402
from models import ZOO  # noqa: E402


#: zoo models behind ``-m slow`` (converted on their own by the slow test)
SLOW = ("resnet18",)
DEFAULT = [n for n in ZOO if n not in SLOW]


def _export(names, folder):
    """``{name: (onnx path, numpy inputs, torch output)}``."""
    entries = {}
    for name in names:
        build = ZOO[name]
        module, inputs = build()
        path = to_onnx(module, inputs, folder / f"{name}.onnx")
        with torch.no_grad():
            ref = module(*inputs).numpy()
        entries[name] = (path, [t.numpy() for t in inputs], ref)
    return entries


#: the zoo's encoder after onnxruntime's transformer optimizer: name -> (optimize_model keywords,
#: gelu approximation, the com.microsoft ops it must contain)
ORT_FUSED = {
    "transformer_encoder_ort_fused": ({"opt_level": 0}, False, {"BiasGelu"}),
    "transformer_encoder_ort_fused_fast": ({"opt_level": 1}, True, {"SkipLayerNormalization", "FastGelu"}),
}


def _ort_optimized(path, folder):
    """The zoo encoder rewritten by ``onnxruntime.transformers.optimizer.optimize_model`` (BERT
    fusions; opt_level 1 adds onnxruntime's own graph optimizations): ``{name: path}``."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    out = {}
    for name, (kw, approx, _) in ORT_FUSED.items():
        options = FusionOptions("bert")
        options.enable_gelu_approximation = approx
        opt = optimize_model(str(path), model_type="bert", num_heads=4, hidden_size=64,
                             optimization_options=options, **kw)
        out[name] = folder / f"{name}.onnx"
        opt.save_model_to_file(str(out[name]))
    return out


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    entries = _export(DEFAULT, folder)
    path, inputs, ref = entries["transformer_encoder"]
    for name, fused in _ort_optimized(path, folder).items():
        entries[name] = (fused, inputs, ref)
    paths = [e[0] for e in entries.values()]
    models = onnx2max.from_onnx_many(paths, progress=False)
    return {n: (*entries[n], m) for n, m in zip(entries, models)}


def _check(name, path, inputs, torch_out, model):
    feeds = {s.name: a for s, a in zip(model.inputs, inputs)}
    (got,) = model.run(None, feeds)
    assert_matches(got, ort_run(path.read_bytes(), feeds)[0], f"{name} vs onnxruntime")
    assert_matches(got, torch_out, f"{name} vs torch")


@pytest.mark.parametrize("name", DEFAULT)
def test_zoo_model_matches_torch_and_onnxruntime(zoo, name):
    _check(name, *zoo[name])


@pytest.mark.parametrize("name", ORT_FUSED)
def test_encoder_fused_by_onnxruntime_matches_onnxruntime(zoo, name):
    """The com.microsoft ops onnxruntime's transformer optimizer writes (BiasGelu,
    SkipLayerNormalization, FastGelu, ...), in a real model, against onnxruntime running the same
    file; the exact-GELU variant also against torch."""
    import onnx

    path, inputs, torch_out, model = zoo[name]
    ms_ops = {n.op_type for n in onnx.load(path).graph.node if n.domain == "com.microsoft"}
    assert ORT_FUSED[name][2] <= ms_ops, f"the optimizer wrote {sorted(ms_ops)}"
    feeds = {s.name: a for s, a in zip(model.inputs, inputs)}
    (got,) = model.run(None, feeds)
    assert_matches(got, ort_run(path.read_bytes(), feeds)[0], f"{name} vs onnxruntime")
    if not ORT_FUSED[name][1]:  # FastGelu is the tanh approximation: not torch's exact GELU
        assert_matches(got, torch_out, f"{name} vs torch")


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_slow_zoo_model_matches_torch_and_onnxruntime(name, tmp_path):
    path, inputs, torch_out = _export([name], tmp_path)[name]
    _check(name, path, inputs, torch_out, onnx2max.from_onnx(path, progress=False))


def test_zoo_second_conversion_is_cached(zoo):
    """The same files converted again, as one batch like the fixture's, load the fixture's
    compiled module. (Converting a subset would be another module: a full compile, and a miss.)"""
    names = list(zoo)
    again = onnx2max.from_onnx_many([zoo[n][0] for n in names], progress=False)
    assert all(m.cache_hit for m in again)
    path, inputs, torch_out, _ = zoo["transformer_encoder"]
    m = again[names.index("transformer_encoder")]
    np.testing.assert_allclose(m(*inputs), torch_out, atol=1e-4, rtol=1e-3)


def test_torch_tensors_in_torch_tensors_out(zoo):
    path, inputs, torch_out, model = zoo["mlp"]
    y = model(torch.from_numpy(inputs[0]))
    assert isinstance(y, torch.Tensor)
    np.testing.assert_allclose(y.numpy(), torch_out, atol=1e-4, rtol=1e-3)
