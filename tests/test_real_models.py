"""The nine real CNNs shipped inside the onnx package (``onnx/backend/test/data/light``) convert
and match the expected outputs onnx ships for an all-ones input.

Each model is its own MAX compile (minutes cold on 2 cores; compiling all nine as one module
needs over 20 GB of memory), so pytest-xdist can spread them over both workers.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_matches

import onnx2max
from onnx2max.bundled import bundled_models, expected_output

NAMES = list(bundled_models())
#: none in the default run: each takes 5-20 minutes cold on 2 cores (MAX compiles every distinct
#: convolution shape as its own kernel; SqueezeNet alone took 300 s), and the zoo's ResNet-18 and
#: MobileNetV2 already cover real CNN architectures there. ``python -m pytest -q -m slow`` runs
#: all nine.
DEFAULT_RUN: set[str] = set()


def test_all_nine_are_bundled():
    assert sorted(NAMES) == sorted([
        "bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
        "shufflenet", "squeezenet", "vgg19", "zfnet512",
    ])


@pytest.mark.parametrize(
    "name", [n if n in DEFAULT_RUN else pytest.param(n, marks=pytest.mark.slow) for n in NAMES]
)
def test_real_model_matches_expected_output(name):
    model = onnx2max.from_onnx(bundled_models()[name], progress=False)
    feeds = {s.name: np.ones(s.shape, s.dtype) for s in model.inputs if not s.has_default}
    (got,) = model.run(None, feeds)
    # the ONNX backend test suite's tolerances for these models
    assert_matches(got, expected_output(name), name, atol=1e-7, rtol=1e-3)
