"""The compile cache: repeat conversions compile nothing, same-architecture models share an
artifact, damaged entries are rebuilt, an unusable cache folder degrades to no caching."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import onnx
from cases import matmul_cases, node, f32
import conftest
from conftest import assert_matches, ort_run
from onnx import numpy_helper

import onnx2max
from max.graph import DeviceRef


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
        # new float weights; integer initializers (shapes, split sizes) keep their values
        new = rng.standard_normal(arr.shape).astype(arr.dtype) if arr.dtype.kind == "f" else arr
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
    # the shapes of the matmul group's Gemm-bias case: its kernels are already in MAX's cache
    # when the op tests ran first, so these tests pay MAX's fixed cost, not new kernels
    return node("cache-probe", "Gemm", [f32(3, 4), f32(4, 5), f32(5)], consts=(1, 2))


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
    assert all(ok for _, ok in _valid_entries(tmp_path)), "the rebuilt entry is not whole"
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
    msgs = [w for w in caught if "compile cache" in str(w.message)]
    assert len(msgs) == 1 and "disabled" in str(msgs[0].message)
    # the caller's line, not one inside onnx2max (with ONNX2MAX_TEST_COMPILE_LOG, the caller of
    # onnx2max's build() is conftest's logging wrapper of it)
    caller = conftest.__file__ if os.environ.get("ONNX2MAX_TEST_COMPILE_LOG") else __file__
    assert msgs[0].filename == caller
    (want,) = ort_run(case.model, case.feeds)
    assert_matches(m.run(None, case.feeds)[0], want, "uncached")


_CONVERT = """
import sys, time
from pathlib import Path
import numpy as np
import onnx2max
model, cache, feeds, out, me = sys.argv[1:6]
Path(me + ".ready").write_text("")
while not Path(cache + ".go").exists():  # start both conversions at the same moment
    time.sleep(0.01)
m = onnx2max.from_onnx(model, cache_dir=cache, progress=False)
(y,) = m.run(None, dict(np.load(feeds)))
np.save(out, y)
"""


def _valid_entries(root):
    """(manifest, ok) for every structure-index manifest under the cache root: ok when the MEF
    it names (``mef/<graph digest>.<sha>.mef``) has the digest it records."""
    import hashlib
    import json

    found = []
    for man in root.rglob("*.json"):
        if man.name == "index.json" or man.parent.name == "mef":
            continue
        info = json.loads(man.read_text())
        mef = root / "mef" / info["mef"]
        ok = mef.is_file() and hashlib.sha256(mef.read_bytes()).hexdigest() == info["mef_sha256"]
        found.append((man, ok))
    return found


def test_two_processes_convert_one_model_into_one_cache(tmp_path):
    import subprocess
    import sys

    case = _tiny()
    model = tmp_path / "tiny.onnx"
    onnx.save(case.model, model)
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, **case.feeds)
    script = tmp_path / "convert.py"
    script.write_text(_CONVERT)
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen([sys.executable, str(script), str(model), str(cache), str(feeds),
                          str(tmp_path / f"out{k}.npy"), str(tmp_path / f"p{k}")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for k in range(2)
    ]
    deadline = time.monotonic() + 300
    while not all((tmp_path / f"p{k}.ready").exists() for k in range(2)):
        assert time.monotonic() < deadline, "the converting processes did not start"
        assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
        time.sleep(0.05)
    (tmp_path / "cache.go").write_text("")
    for p in procs:
        out, _ = p.communicate(timeout=900)
        assert p.returncode == 0, out
    (want,) = ort_run(case.model, case.feeds)
    for k in range(2):
        assert_matches(np.load(tmp_path / f"out{k}.npy"), want, f"process {k}")
    entries = _valid_entries(cache)
    assert len(entries) == 1 and entries[0][1], entries  # one entry, and it is whole
    assert len([d for d in cache.iterdir() if d.is_dir() and d.name != "mef"]) == 1
    # each writer may have filed its own MEF (their names carry their digests); the record
    # names a whole one
    import hashlib
    import json

    (rec,) = (cache / "mef").glob("*.json")
    info = json.loads(rec.read_text())
    named = cache / "mef" / info["mef"]
    assert hashlib.sha256(named.read_bytes()).hexdigest() == info["mef_sha256"]
    again = onnx2max.from_onnx(model, cache_dir=cache, progress=False)
    assert again.cache_hit
    assert_matches(again.run(None, case.feeds)[0], want, "from the shared cache")


def test_manifest_that_disagrees_with_the_graph_is_rebuilt(tmp_path):
    import json

    case = _tiny()
    onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    (man, ok), = _valid_entries(tmp_path)
    info = json.loads(man.read_text())
    info["graphs"][0]["weights"][0][3] = [7, 7]  # a weight shape the graph does not have
    man.write_text(json.dumps(info))
    m = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    # not trusted: the model is lowered again, and the MEF filed under that graph's digest
    # is loaded with the weights the new lowering names (no compile)
    assert m.stats.cache == "graph", "a manifest with a wrong weight shape was trusted"
    assert m.stats.compile_s == 0
    (want,) = ort_run(case.model, case.feeds)
    assert_matches(m.run(None, case.feeds)[0], want, "after rebuild")
    assert all(ok for _, ok in _valid_entries(tmp_path))
    assert onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False).cache_hit


def test_a_release_that_lowers_alike_reuses_the_artifact(tmp_path, monkeypatch):
    """The structure index is keyed by onnx2max's source; the MEF by the MAX graph's text. After
    a code change that lowers the model to the same graph, nothing is compiled again."""
    from onnx2max import cache as cache_mod

    case = _tiny()
    m1 = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    assert m1.stats.cache == "miss" and not m1.cache_hit and m1.stats.compile_s > 0
    monkeypatch.setattr(cache_mod, "_CODE_DIGEST", "0" * 64)  # as after an upgrade
    m2 = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    assert m2.stats.cache == "graph" and m2.cache_hit and m2.stats.compile_s == 0
    assert m2.stats.graph_digest == m1.stats.graph_digest
    m3 = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False)
    assert m3.stats.cache == "structure" and m3.stats.lower_s == 0 and m3.stats.max_ops is None
    assert len(list((tmp_path / "mef").glob("*.mef"))) == 1
    (want,) = ort_run(case.model, case.feeds)
    for m in (m1, m2, m3):
        assert_matches(m.run(None, case.feeds)[0], want, m.stats.cache)


def _digest(model) -> str:
    """The MEF store key of ``model`` as from_onnx computes it (lowered, not compiled)."""
    from max.graph.graph import Module

    from onnx2max import cache as cache_mod
    from onnx2max.load import load_model
    from onnx2max.lower import lower_graph
    from onnx2max.prepare import prepare

    m = Module()
    lower_graph(prepare(*load_model(model)), DeviceRef.CPU(), "g0", "g0_", module=m)
    return cache_mod.graph_digest(m._to_mlir_str(), "cpu")


def test_a_different_graph_is_not_served_by_another_graphs_artifact(tmp_path):
    """Graph digests differ when the MAX graph differs (Gemm with alpha, beta and C as an input
    against Gemm with a bias initializer), and agree where only values and names differ; the
    MEF store has no entry for the other graph (checked without compiling it)."""
    from onnx2max import cache as cache_mod

    a = _tiny()
    b = next(c for c in matmul_cases() if c.id == "Gemm-alpha-beta")
    ma = onnx2max.from_onnx(a.model, cache_dir=tmp_path, progress=False)
    assert ma.stats.graph_digest == _digest(a.model)
    assert _digest(_with_new_weights(a.model, 7)) == ma.stats.graph_digest
    db = _digest(b.model)
    assert db != ma.stats.graph_digest
    store = cache_mod.CompileCache(tmp_path)
    assert store.lookup_graph(db) is None and store.lookup_graph(ma.stats.graph_digest) is not None


def test_profile_records_every_stage(tmp_path, capsys):
    case = _tiny()
    m = onnx2max.from_onnx(case.model, cache_dir=tmp_path, progress=False, profile=True)
    s = m.stats
    assert s.nodes == 1 and s.models == 1 and s.cache == "miss"
    assert s.max_ops is not None and s.max_ops >= 1
    for stage in ("load_s", "prepare_s", "lower_s", "compile_s", "cache_store_s", "init_s"):
        assert getattr(s, stage) > 0, stage
    assert abs(s.total_s - sum(getattr(s, k) for k in (
        "load_s", "prepare_s", "lower_s", "compile_s", "cache_load_s", "cache_store_s",
        "init_s"))) < 1e-9
    assert s.wall_s >= s.total_s > 0
    err = capsys.readouterr().err
    assert "conversion profile" in err and "MAX compile" in err and "from_onnx wall time" in err


def test_serialized_bytes_convert_and_run(tmp_path):
    """from_onnx takes the model serialized as bytes, as onnxruntime does."""
    case = _tiny()
    m = onnx2max.from_onnx(case.model.SerializeToString(), cache_dir=tmp_path, progress=False)
    assert m.source == "<bytes>"
    (want,) = ort_run(case.model, case.feeds)
    assert_matches(m.run(None, case.feeds)[0], want, "from bytes")
