"""``constant_inputs`` / ``--const``: graph inputs bound to values at conversion.

The typical model: an ``If`` on a sample-rate input whose branches give outputs of different
shapes (MAX's conditional needs one shape), which only converts once the input is fixed.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import assert_matches, ort_run
from onnx import TensorProto, helper

import onnx2max
from onnx2max.cli import main
from onnx2max.prepare import prepare


def _sr_model() -> onnx.ModelProto:
    """y = x * 2 (shape [4]) when sr == 16000, else Concat(x, x) (shape [8])."""
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["t"])], "then", [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [4])],
        initializer=[helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])])
    else_g = helper.make_graph(
        [helper.make_node("Concat", ["x", "x"], ["e"], axis=0)], "else", [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [8])])
    nodes = [helper.make_node("Equal", ["sr", "k16"], ["is16"]),
             helper.make_node("If", ["is16"], ["y"], name="pick_rate", then_branch=then_g, else_branch=else_g)]
    g = helper.make_graph(
        nodes, "sr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
                      helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
        initializer=[helper.make_tensor("k16", TensorProto.INT64, [], [16000])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


X = np.array([1.0, -2.0, 3.5, 0.25], np.float32)


def test_if_on_a_fixed_input_converts_and_matches_onnxruntime(tmp_path):
    m = _sr_model()
    model = onnx2max.from_onnx(m, constant_inputs={"sr": np.array(16000)}, progress=False)
    assert [s.name for s in model.inputs] == ["x"]  # sr is no longer an input
    (want,) = ort_run(m, {"x": X, "sr": np.array(16000)})
    (got,) = model.run(None, {"x": X})
    assert want.shape == (4,)
    assert_matches(got, want, "If with sr=16000")
    # the CLI's --const: the same graph, served by the compile cache; exit 0 means it matched
    path = tmp_path / "sr.onnx"
    onnx.save(m, path)
    res = CliRunner().invoke(main, ["check", str(path), "--const", "sr=16000"])
    assert res.exit_code == 0, res.output
    assert "ok" in res.output


def test_other_value_folds_to_the_other_branch():
    """No compile: the branch taken for 8000 has the Concat, shaped as onnxruntime's output."""
    m = _sr_model()
    (want,) = ort_run(m, {"x": X, "sr": np.array(8000)})
    p = prepare(m, "sr", constant_inputs={"sr": 8000})
    assert [n.op_type for n in p.nodes if n.op_type != "Identity"] == ["Concat"]
    assert p.types["y"][1] == want.shape == (8,)


def test_without_the_value_the_error_names_the_input():
    with pytest.raises(onnx2max.ConversionError) as e:
        onnx2max.from_onnx(_sr_model(), progress=False)
    msg = str(e.value)
    assert "pick_rate" in msg and "['sr']" in msg and "constant_inputs={'sr': VALUE}" in msg


@pytest.mark.parametrize("consts, match", [
    ({"rate": 16000}, r"constant_inputs names \['rate'\], which are not graph inputs"),
    ({"sr": np.array(16000, np.int32)}, r"has dtype int32, but the model declares int64"),
    ({"sr": [16000, 8000]}, r"has shape \(2,\), but the model declares \(\)"),
    ({"sr": "fast"}, r"the model declares int64: pass numbers"),
    ({"sr": 16000.7}, r"which int64 cannot hold exactly"),
    ({"sr": 2**63}, r"which int64 cannot hold exactly|cannot be read as int64"),
    ({"sr": 1e30}, r"which int64 cannot hold exactly"),
    ({"sr": True}, r"the model declares int64: pass numbers"),
])
def test_bad_constant_inputs_are_typed_errors(consts, match):
    with pytest.raises(onnx2max.InputError, match=match):
        onnx2max.from_onnx(_sr_model(), constant_inputs=consts, progress=False)


def test_bench_feeds_the_bound_input_to_onnxruntime_only(tmp_path):
    """``onnx2max bench --const``: MAX runs without the bound input, onnxruntime with it; the
    JSON holds both engines' timings and their ratio (the same graph as above: a cache hit)."""
    import json

    path = tmp_path / "sr.onnx"
    onnx.save(_sr_model(), path)
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(main, ["bench", str(path), "--const", "sr=16000", "--runs", "7",
                                    "--warmup", "1", "--no-overhead", "--json", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert [t["engine"] for t in r["timings"]] == ["onnx2max (MAX)", "onnxruntime"]
    assert all(t["runs"] == 7 and 0 < t["min_ms"] <= t["median_ms"] <= t["p90_ms"] for t in r["timings"])
    assert r["ratio"] == pytest.approx(r["timings"][0]["median_ms"] / r["timings"][1]["median_ms"])
    assert r["batch"] == 4  # dim 0 of x


def test_interleaved_timing_orders_engines_by_their_cost():
    from onnx2max.bench import _interleaved

    import time as _t

    res = _interleaved({"fast": lambda: _t.sleep(0.001), "slow": lambda: _t.sleep(0.004)},
                       warmup=1, runs=9, max_seconds=5, batch=2)
    fast, slow = res
    assert fast.runs == slow.runs == 9
    assert 1.0 <= fast.median_ms < slow.median_ms and slow.median_ms >= 4.0
    assert fast.throughput == pytest.approx(2 / (fast.median_ms / 1e3))


def test_timing_in_blocks_skips_the_call_after_another_engine():
    """An engine whose first call after another engine's is slow (threads woken, cores taken
    back) is timed at its steady cost in blocks, and at the slow cost when calls alternate."""
    from onnx2max.bench import _interleaved

    import time as _t

    last = []

    def engine(name, steady, after_other):
        def call():
            _t.sleep(steady if last and last[-1] == name else after_other)
            last.append(name)
        return call

    calls = {"a": engine("a", 0.001, 0.008), "b": engine("b", 0.001, 0.001)}
    alternating = _interleaved(calls, warmup=1, runs=12, max_seconds=5, batch=1, block=1)
    blocks = _interleaved(calls, warmup=1, runs=12, max_seconds=5, batch=1, block=4)
    assert alternating[0].runs == blocks[0].runs == 12
    assert alternating[0].median_ms >= 8.0
    assert 1.0 <= blocks[0].median_ms < 4.0


def test_compare_feeds_the_bound_input_to_onnxruntime():
    c = onnx2max.compare(_sr_model(), {"x": X}, constant_inputs={"sr": 16000}, progress=False)
    assert c.ok, c.first_bad
    assert c.values["y"].shape == (4,)
    assert_matches(c.values["y"], X * 2, "y with sr=16000")


def test_cli_refuses_bad_const_and_output_paths_before_converting(tmp_path):
    path = tmp_path / "sr.onnx"
    onnx.save(_sr_model(), path)
    afile = tmp_path / "afile"
    afile.write_text("x")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    runner = CliRunner()
    for args, hint in [
        (["check", str(path), "--const", "sr=16000", "--const", "sr=8000"], "given twice"),
        (["check", str(path), "--const", "sr=16000", "--save-repro", str(afile)], "new or existing folder"),
        (["check", str(path), "--const", f"sr={empty}"], "cannot read it as a .npy array"),
        (["check", str(path), "--input", f"x={empty}"], "as a .npy array"),
        (["bench", str(path), "--const", "sr=16000", "--json", str(tmp_path)], "must be a file in an existing folder"),
    ]:
        res = runner.invoke(main, args)
        assert res.exit_code == 2 and hint in res.output, (args, res.output)
