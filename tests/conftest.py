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
    if want.dtype.kind == "V" and want.dtype.itemsize == 2:  # ml_dtypes.bfloat16
        # bfloat16 keeps 8 significant bits: a few units (2^-6 relative) of rounding differences
        # between MAX's and numpy's order of operations
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), atol=1e-4,
                                   rtol=2.0 ** -6, err_msg=what)
    elif want.dtype.kind == "V" and want.dtype.itemsize == 1:  # the 8-bit floats (ml_dtypes)
        # one rounding of an exact value: the bit patterns must agree (-0 and NaN included)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8), err_msg=what)
    elif want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def ort_run(model, feeds):
    import onnxruntime as ort

    data = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def ort_run_in_float32(model, feeds):
    """onnxruntime on ``model`` with its float16 graph inputs, outputs and initializers made
    float32, and the float16 outputs rounded back once: the correctly rounded float16 values
    (onnxruntime's own float16 Attention is up to two units off them)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    was_half = [o.type.tensor_type.elem_type == TensorProto.FLOAT16 for o in g.output]
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT16:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT
    for k, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT16:
            g.initializer[k].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
    feeds = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in feeds.items()}
    return [r.astype(np.float16) if h else r for r, h in zip(ort_run(m, feeds), was_half)]


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
        if case.reference == "onnx":
            from onnx.reference import ReferenceEvaluator

            want = ReferenceEvaluator(case.model).run(None, case.feeds)
        elif case.reference == "onnxruntime-float32":
            want = ort_run_in_float32(case.model, case.feeds)
        else:
            want = ort_run(case.model, case.feeds)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_matches(g, w, f"{case_id} output {k}")


_GROUPS: dict[str, ConvertedGroup] = {}


@pytest.fixture(scope="session")
def converted():
    """``converted(name)`` -> a :class:`ConvertedGroup` holding the cases of ``cases.GROUPS[name]``,
    built once, together with the groups that share its compile (``_BUILT_WITH``)."""
    from cases import GROUPS

    def get(name):
        if name not in _GROUPS:
            # groups of one worker are built together (_BUILT_WITH): one MAX compile instead of
            # one per group, so MAX's fixed cost per compile is paid fewer times
            together = [g for g in GROUPS if _BUILT_WITH.get(g, g) == _BUILT_WITH.get(name, name)]
            try:
                cases = [c for g in together for c in GROUPS[g]()]
                ids = [c.id for c in cases]
                assert len(set(ids)) == len(ids), f"case ids repeated across {together}"
                built = ConvertedGroup(cases)
            except Exception as e:  # build once; every case of the groups reports it
                built = e
            for g in together:
                _GROUPS[g] = built
        group = _GROUPS[name]
        if isinstance(group, Exception):
            shared = [g for g in GROUPS if _BUILT_WITH.get(g, g) == _BUILT_WITH.get(name, name)]
            raise AssertionError(f"groups {shared} (built together) failed to build: "
                                 f"{type(group).__name__}: {group}")
        return group

    return get


# ---- scheduling under pytest-xdist (`-n 2 --dist loadgroup` in pyproject): tests that share a
# compiled group run in the same worker, so no compile is paid twice. Groups are handed out in
# the order below: first the op-test groups, whose many small kernels (elementwise, matmul,
# conv, pool) land in MAX's kernel cache and are reused by the later compiles in both workers,
# then the heaviest compiles first, so both workers finish close together. (Cold on 2 cores,
# the zoo first made the run slower: its kernels were compiled while the other worker needed
# the same ones.)
_SHARED_WITH = {"matmul": "ops-a", "shape": "ops-a", "elementwise": "ops-b", "nn": "ops-b",
                "edge": "ops-b", "recurrent": "ops-a", "loop": "ops-a", "contrib": "ops-b",
                "bfloat16": "ops-a", "float8": "ops-a", "added_ops": "ops-a", "coverage": "ops-b",
                "numerics": "ops-a"}
#: the op groups built in one compile (same value). ``matmul`` is built alone: the cache tests
#: convert its cases again (with other weights too) and expect its compiled artifact
_BUILT_WITH = {"shape": "ops-a", "recurrent": "ops-a", "loop": "ops-a", "bfloat16": "ops-a", "float8": "ops-a",
               "added_ops": "ops-a",
               "elementwise": "ops-b", "nn": "ops-b", "edge": "ops-b", "contrib": "ops-b"}
_ORDER = ["ops-b", "ops-a", "test_zoo", "test_dynamic", "conformance-0", "conformance-1", "test_predecessor",
          "test_fuzz"]


def _group(item) -> str:
    module = item.module.__name__
    params = getattr(item, "callspec", None)
    params = params.params if params is not None else {}
    if module == "test_ops":
        return _SHARED_WITH[params["group"]]
    if module in ("test_cache", "test_api", "test_errors", "test_loop"):
        return "ops-a"
    if module == "test_conformance":
        return f"conformance-{params.get('part', 0)}"
    if module == "test_readme" and "group" in params:
        return params["group"]
    if module == "test_third_party_models" and "name" in params and not item.get_closest_marker("slow"):
        return "third-party-light"
    if module == "test_real_models" and "name" in params:
        return f"real-{params['name']}"
    return module


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    # stable: within a group the order stays the file order; other groups follow in file order
    rank = {g: k for k, g in enumerate(_ORDER)}
    items.sort(key=lambda item: rank.get(_group(item), len(_ORDER)))


# ---- where the suite's time goes: with ONNX2MAX_TEST_COMPILE_LOG=FILE, every build() appends
# one JSON line (test, label, models, nodes, cache, seconds per stage) to FILE.
_COMPILE_LOG = os.environ.get("ONNX2MAX_TEST_COMPILE_LOG")
if _COMPILE_LOG:
    import json
    import time

    import onnx2max.api
    import onnx2max.compiler

    _real_build = onnx2max.compiler.build

    def _logged_build(ps, device, *args, **kwargs):
        from onnx2max.compiler import ConversionStats

        stats = kwargs.get("stats") or ConversionStats()
        kwargs["stats"] = stats
        t0 = time.monotonic()
        try:
            return _real_build(ps, device, *args, **kwargs)
        finally:
            rec = {"test": os.environ.get("PYTEST_CURRENT_TEST", "?"),
                   "label": kwargs.get("label", "model"), "models": len(ps), "nodes": stats.nodes,
                   "cache": stats.cache, "compile_s": round(stats.compile_s, 1),
                   "build_s": round(time.monotonic() - t0, 1), "max_ops": stats.max_ops,
                   "pid": os.getpid()}
            with open(_COMPILE_LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")

    onnx2max.compiler.build = _logged_build
    onnx2max.api.build = _logged_build
    build = _logged_build  # noqa: F811  (ConvertedGroup's; conformance imports it at call time)
