"""The per-node bisect (``onnx2max.compare``, ``onnx2max check --bisect --save-repro``) finds a
node whose converter was made wrong on purpose, and its repro fails on its own.

Two MAX compiles: the model with every node output exposed, and the one-node repro. The fault
is injected by replacing the Sigmoid converter for the test only; the compile cache is a
temporary folder, so no wrong graph is stored where other tests could load it.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import ort_run
from onnx import TensorProto, helper, numpy_helper

import onnx2max
from onnx2max import registry
from onnx2max.cli import main


def _model() -> onnx.ModelProto:
    """x[2,8] -> MatMul(W) -> Add(b) -> Relu -> Sigmoid -> Mul(x) -> ReduceSum -> y[2,1]."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu"),
             helper.make_node("Sigmoid", ["r"], ["s"], name="gate"),
             helper.make_node("Mul", ["s", "x"], ["m"], name="scale"),
             helper.make_node("ReduceSum", ["m", "axes"], ["y"], name="sum", keepdims=1)]
    g = helper.make_graph(nodes, "bisect", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1])],
                          initializer=[w, b, axes])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture
def wrong_sigmoid(monkeypatch):
    """Sigmoid computed as sigmoid(x) + 0.01: a deliberately wrong converter."""
    from max.graph import ops

    from onnx2max.lower import make_constant

    def wrong(ctx):
        x = ctx.input(0)
        return ops.sigmoid(x) + make_constant(0.01, x.device, x.dtype)

    key = ("", "Sigmoid")
    entries = [registry.Converter("", "Sigmoid", c.since, wrong, c.layout_agnostic)
               for c in registry._REGISTRY[key]]
    monkeypatch.setitem(registry._REGISTRY, key, entries)


def test_bisect_names_the_wrong_node_and_writes_a_repro_that_fails_alone(wrong_sigmoid, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), path)
    x = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cache = tmp_path / "cache"

    c = onnx2max.compare(path, {"x": x}, cache_dir=cache, progress=False)
    assert [r.node for r in c.rows] == ["mm", "bias", "relu", "gate", "scale", "sum"]
    assert [r.ok for r in c.rows] == [True, True, True, False, False, False]
    bad = c.first_bad
    assert (bad.node, bad.op_type, bad.output) == ("gate", "Sigmoid", "s")
    # the error is the injected 0.01, measured against onnxruntime's value of that node
    assert bad.max_abs == pytest.approx(0.01, rel=1e-3)
    np.testing.assert_allclose(c.values["s"] - c.reference["s"], 0.01, rtol=1e-3)
    assert "inputs: r: [2, 8]" in c.describe(bad)

    # the CLI gives the same verdict (the compile is the same graph: a cache hit) and saves a repro
    repro_dir = tmp_path / "repro"
    res = CliRunner().invoke(main, ["check", str(path), "--input", f"x={tmp_path / 'x.npy'}",
                                    "--cache-dir", str(cache), "--save-repro", str(repro_dir)])
    assert res.exit_code == 1, res.output
    assert "first diverging node 'gate'" in res.output and "Sigmoid" in res.output
    info = json.loads((repro_dir / "repro.json").read_text())
    assert info["node"] == "gate" and info["inputs"] == {"r": "r.npy"}

    repro = onnx.load(repro_dir / "repro.onnx")
    assert [n.op_type for n in repro.graph.node] == ["Sigmoid"]
    r = np.load(repro_dir / "r.npy")
    np.testing.assert_array_equal(r, c.reference["r"])
    (want,) = ort_run(repro, {"r": r})
    (got,) = onnx2max.from_onnx(repro, cache_dir=cache, progress=False).run(None, {"r": r})
    assert np.abs(got - want).max() == pytest.approx(0.01, rel=1e-3)  # fails alone, by the fault


def test_compare_refuses_unknown_feed_names(tmp_path):
    with pytest.raises(onnx2max.InputError, match="'nope'"):
        onnx2max.compare(_model(), {"nope": np.zeros(1)}, cache_dir=False)


def test_repro_of_values_whose_names_sanitize_alike(tmp_path):
    """No compile: a Comparison made by hand. Inputs 'a/b' and 'a_b' get distinct .npy files,
    the command quotes them, and the repro computes onnxruntime's value of the node."""
    import shlex

    from onnx2max.compare import Comparison, NodeDiff

    nodes = [helper.make_node("Relu", ["x"], ["a/b"]), helper.make_node("Neg", ["x"], ["a_b"]),
             helper.make_node("Sub", ["a/b", "a_b"], ["y"], name="sub")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = np.array([-1.0, 2.0, 0.5], np.float32)
    ref = dict(zip(["a/b", "a_b", "y"], ort_run_all(m, {"x": x}, ["a/b", "a_b", "y"])))
    row = NodeDiff(2, "sub", "Sub", "", "y", (3,), "float32", 1.0, 1.0, False)
    c = Comparison(m, [row], {}, 1e-4, 1e-3, {"x": x}, ref, dict(ref))
    c.save_repro(tmp_path / "r")
    info = json.loads((tmp_path / "r" / "repro.json").read_text())
    assert sorted(info["inputs"].values()) == ["a_b.npy", "a_b_1.npy"]
    assert shlex.split(info["command"])[3:] == ["--input", f"a/b={info['inputs']['a/b']}", "--input",
                                                f"a_b={info['inputs']['a_b']}", "--atol", "0.0001",
                                                "--rtol", "0.001"]
    repro = onnx.load(tmp_path / "r" / "repro.onnx")
    feeds = {n: np.load(tmp_path / "r" / f) for n, f in info["inputs"].items()}
    (got,) = ort_run(repro, feeds)
    np.testing.assert_array_equal(got, ref["y"])


def ort_run_all(model, feeds, names):
    """onnxruntime's values of ``names`` (node outputs made graph outputs)."""
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names if n not in have)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(names, feeds)


def test_compare_errors_name_the_users_file(tmp_path):
    """compare() converts an augmented copy of the model; its errors still name the file the
    user gave (they used to say "<bytes>"). Fails before any compile: the Reshape target is a
    graph input, which MAX needs at conversion."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")], "r",
                          [vi("x", TensorProto.FLOAT, [2, 8]), vi("shape", TensorProto.INT64, [2])],
                          [vi("y", TensorProto.FLOAT, [4, 4])])
    path = tmp_path / "mine.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), path)
    feeds = {"x": np.ones((2, 8), np.float32), "shape": np.array([4, 4], np.int64)}
    with pytest.raises(onnx2max.Onnx2MaxError, match="Reshape node 'reshape'") as err:
        onnx2max.compare(str(path), feeds, cache_dir=tmp_path / "c")
    assert str(err.value).startswith(f"{path}: ")
