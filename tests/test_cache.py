"""The compile cache: repeat conversions compile nothing, same-architecture models share an
artifact, damaged entries are rebuilt, an unusable cache folder degrades to no caching."""

from __future__ import annotations

import time
import warnings

import numpy as np
import onnx
import pytest
from cases import matmul_cases, node, f32
from conftest import assert_matches, ort_run
from onnx import numpy_helper

import onnx2max


def test_repeat_conversion_is_served_by_the_cache(converted):
    group = converted("matmul")  # compiled (or loaded) once for the op tests
    cases = list(group.cases.values())
    t0 = time.monotonic()
    again = onnx2max.from_onnx_many([c.model for c in cases], progress=False)
    elapsed = time.monotonic() - t0
    assert all(m.cache_hit for m in again), "the second conversion compiled"
    assert elapsed < 5.0, f"a cache hit took {elapsed:.1f} s"
    for c, m in zip(cases, again):
        for g, w in zip(m.run(None, c.feeds), ort_run(c.model, c.feeds)):
            assert_matches(g, w, c.id)


def _with_new_weights(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    rng = np.random.default_rng(seed)
    for i, t in enumerate(m.graph.initializer):
        arr = numpy_helper.to_array(t)
        new = rng.standard_normal(arr.shape).astype(arr.dtype)
        t.CopyFrom(numpy_helper.from_array(new, f"renamed_{i}"))
    # rename the initializers everywhere: the artifact must not depend on ONNX names
    names = {old.name: f"renamed_{i}" for i, old in enumerate(model.graph.initializer)}
    for n in m.graph.node:
        for k, name in enumerate(n.input):
            if name in names:
                n.input[k] = names[name]
    onnx.checker.check_model(m)
    return m


def test_same_architecture_other_weights_shares_the_artifact(converted):
    group = converted("matmul")
    cases = list(group.cases.values())
    changed = [_with_new_weights(c.model, k) for k, c in enumerate(cases)]
    models = onnx2max.from_onnx_many(changed, progress=False)
    assert all(m.cache_hit for m in models)
    for c, m, proto in zip(cases, models, changed):
        for g, w in zip(m.run(None, c.feeds), ort_run(proto, c.feeds)):
            assert_matches(g, w, c.id)


def _tiny():
    return node("cache-probe", "Gemm", [f32(2, 3), f32(3, 4), f32(4)], consts=(1, 2))


def test_damaged_entry_is_rebuilt(tmp_path):
    case = _tiny()
    m1 = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    assert not m1.cache_hit
    mefs = list(tmp_path.rglob("*.mef"))
    assert len(mefs) == 1
    data = mefs[0].read_bytes()
    mefs[0].write_bytes(data[: len(data) // 2])  # truncated
    m2 = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    assert not m2.cache_hit, "a truncated MEF was trusted"
    assert mefs[0].read_bytes() == data or len(mefs[0].read_bytes()) > len(data) // 2
    m3 = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    assert m3.cache_hit
    (want,) = ort_run(case.model, case.feeds)
    for m in (m1, m2, m3):
        assert_matches(m.run(None, case.feeds)[0], want, "after rebuild")


def test_unusable_cache_folder_warns_once_and_still_converts(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    case = _tiny()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = onnx2max.from_onnx(case.model, cache_dir=blocker / "cache", progress=False)
    msgs = [str(w.message) for w in caught if "compile cache" in str(w.message)]
    assert len(msgs) == 1 and "disabled" in msgs[0]
    (want,) = ort_run(case.model, case.feeds)
    assert_matches(m.run(None, case.feeds)[0], want, "uncached")
