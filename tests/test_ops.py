"""Every op form of tests/cases.py against onnxruntime (float32: atol 1e-4, rtol 1e-3).

The groups that share a pytest-xdist worker are one MAX compile (``tests/conftest.py``), except
``matmul``, which the cache tests need alone: not one compile per case or per group.
"""

from __future__ import annotations

import pytest
from cases import GROUPS

PARAMS = [pytest.param(g, c.id, id=f"{g}:{c.id}") for g, make in GROUPS.items() for c in make()]


@pytest.mark.parametrize("group, case_id", PARAMS)
def test_op_matches_onnxruntime(converted, group, case_id):
    converted(group).check(case_id)
