"""Shared fixtures: op-test groups converted with one MAX compile per group."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import onnx2max  # noqa: E402
from onnx2max.compiler import build, resolve_device  # noqa: E402
from onnx2max.load import load_model  # noqa: E402
from onnx2max.lower import lower_graph  # noqa: E402
from onnx2max.prepare import prepare  # noqa: E402

ATOL, RTOL = 1e-4, 1e-3


def assert_matches(got: np.ndarray, want: np.ndarray, what: str, atol=ATOL, rtol=RTOL) -> None:
    """Same dtype and shape; floats within atol + rtol*|want|, everything else exactly."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, reference {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference {want.shape}"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def ort_run(model, feeds):
    import onnxruntime as ort

    data = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


class ConvertedGroup:
    """A group of cases converted together: ``models[id]`` or ``errors[id]``."""

    def __init__(self, cases):
        from max.graph.graph import Module

        self.cases = {c.id: c for c in cases}
        self.errors: dict[str, Exception] = {}
        prepared, ids = [], []
        dev = resolve_device("cpu")
        for c in cases:
            try:
                proto, _ = load_model(c.model)
                p = prepare(proto, c.id)
                lower_graph(p, dev.ref, "probe", "probe_", module=Module())  # isolates failures
            except Exception as e:  # reported by that case's test
                self.errors[c.id] = e
                continue
            prepared.append(p)
            ids.append(c.id)
        self.prepared = prepared
        built = build(prepared, dev, label=f"{len(prepared)} op-test models") if prepared else []
        self.models = {i: onnx2max.CompiledModel(b, dev) for i, b in zip(ids, built)}

    def check(self, case_id: str) -> None:
        if case_id in self.errors:
            e = self.errors[case_id]
            raise AssertionError(f"{case_id}: conversion failed: {type(e).__name__}: {e}") from e
        case = self.cases[case_id]
        got = self.models[case_id].run(None, case.feeds)
        want = ort_run(case.model, case.feeds)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_matches(g, w, f"{case_id} output {k}")


_GROUPS: dict[str, ConvertedGroup] = {}


@pytest.fixture(scope="session")
def converted():
    """``converted(name)`` -> the :class:`ConvertedGroup` of ``cases.GROUPS[name]`` (built once)."""
    from cases import GROUPS

    def get(name):
        if name not in _GROUPS:
            try:
                _GROUPS[name] = ConvertedGroup(GROUPS[name]())
            except Exception as e:  # build once; every case of the group reports it
                _GROUPS[name] = e
        group = _GROUPS[name]
        if isinstance(group, Exception):
            raise AssertionError(f"group '{name}' failed to build: {type(group).__name__}: {group}")
        return group

    return get


# ---- scheduling under pytest-xdist (`-n 2 --dist loadgroup` in pyproject): tests that share a
# compiled group run in the same worker, so no compile is paid twice.
_SHARED_WITH = {"matmul": "ops-a", "shape": "ops-a", "elementwise": "ops-b", "nn": "ops-b"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__
        if module == "test_ops":
            group = _SHARED_WITH[item.callspec.params["group"]]
        elif module in ("test_cache", "test_api", "test_errors"):
            group = "ops-a"
        elif module == "test_real_models" and hasattr(item, "callspec"):
            group = f"real-{item.callspec.params['name']}"
        else:
            group = module
        item.add_marker(pytest.mark.xdist_group(group))
