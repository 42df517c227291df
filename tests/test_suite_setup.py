"""The suite's own scheduling: tests that share a MAX compile must run in one pytest-xdist worker.

``conftest.py`` marks them with ``xdist_group`` and pyproject runs ``--dist loadgroup``; if a
pytest or pytest-xdist release stops honouring the marks (pytest 9.2 does), every shared
compile is paid once per worker and the cold suite doubles. This test notices.
"""

from __future__ import annotations

import os

import pytest


def test_xdist_groups_are_honoured(request):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("not running under pytest-xdist")
    if request.config.getvalue("loadgroup") is not True:
        pytest.skip("not scheduled with --dist loadgroup")
    # loadgroup schedules by the "@<group>" suffix it adds to each grouped test's node id
    assert request.node.nodeid.endswith("@test_suite_setup"), (
        f"node id {request.node.nodeid!r} carries no xdist_group suffix: --dist loadgroup is "
        "not grouping tests (pytest/pytest-xdist incompatibility); pin a working pair"
    )
