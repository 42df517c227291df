"""The nine real CNNs shipped inside the onnx package (``onnx/backend/test/data/light``) convert
and match the expected outputs onnx ships for an all-ones input.

Each model is its own MAX compile (several minutes cold on 2 cores; compiling all nine as one
module needs over 20 GB), so pytest-xdist can spread them over both workers.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_matches

import onnx2max
from onnx2max.bundled import bundled_models, expected_output

NAMES = list(bundled_models())
pytestmark = pytest.mark.slow


def test_all_nine_are_bundled():
    assert sorted(NAMES) == sorted([
        "bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
        "shufflenet", "squeezenet", "vgg19", "zfnet512",
    ])


@pytest.mark.parametrize("name", NAMES)
def test_real_model_matches_expected_output(name):
    model = onnx2max.from_onnx(bundled_models()[name], progress=False)
    feeds = {s.name: np.ones(s.shape, s.dtype) for s in model.inputs if not s.has_default}
    (got,) = model.run(None, feeds)
    # the ONNX backend test suite's tolerances for these models
    assert_matches(got, expected_output(name), name, atol=1e-7, rtol=1e-3)
