"""Models to try onnx2max on without downloading anything.

``mobilenet_v2`` ships inside onnx2max (``onnx2max/data``): the zoo's MobileNetV2-style net
exported with seeded random weights, so a check against onnxruntime exercises real numerics.
The others are the real models that ship inside the onnx package (``onnx/backend/test/data/light``).

Each is a full CNN (AlexNet, DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet,
VGG-19, ZFNet-512) whose weights are made by ``ConstantOfShape`` nodes, with the expected output
for an all-ones input in ``light_<name>_output_0.pb``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def light_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def bundled_models() -> dict[str, Path]:
    """``{name: path}`` of the real models shipped with the installed onnx package."""
    d = light_dir()
    if not d.is_dir():
        return {}
    return {
        p.stem[len("light_"):]: p
        for p in sorted(d.glob("light_*.onnx"))
    }


#: ONNX files shipped inside onnx2max (exported from models/zoo.py with seeded weights)
SHIPPED = {"mobilenet_v2": Path(__file__).parent / "data" / "mobilenet_v2.onnx"}
ALIASES = {"alexnet": "bvlc_alexnet"}


def expected_output(name: str) -> np.ndarray:
    """The expected output of bundled model ``name`` for an all-ones input."""
    from onnx import TensorProto, numpy_helper

    t = TensorProto()
    t.ParseFromString((light_dir() / f"light_{name}_output_0.pb").read_bytes())
    return numpy_helper.to_array(t)


def resolve_model(arg: str) -> Path:
    """A path, or the name of a bundled model (``squeezenet``, ``light_resnet50``, ...).

    Raises:
        FileNotFoundError: neither a file nor a bundled model; the message lists the names.
    """
    p = Path(arg)
    if p.exists():
        return p
    models = bundled_models()
    key = arg[len("light_"):] if arg.startswith("light_") else arg
    key = key.removesuffix(".onnx")
    key = ALIASES.get(key, key)
    if key in SHIPPED:
        return SHIPPED[key]
    if key in models:
        return models[key]
    names = [*SHIPPED, *(f"{m} (or {a})" if (a := next((k for k, v in ALIASES.items() if v == m), None))
                         else m for m in models)]
    raise FileNotFoundError(f"{arg}: no such file, and not a bundled model (bundled: {', '.join(names)})")
