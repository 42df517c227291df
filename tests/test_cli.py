"""The onnx2max command: check against onnxruntime, run, and argument errors."""

from __future__ import annotations

import numpy as np
import onnx
from cases import f32, node
import pytest
from click.testing import CliRunner

from onnx2max.bundled import resolve_model
from onnx2max.cli import main


def _model_file(tmp_path):
    case = node("cli-probe", "Gemm", [f32(3, 4), f32(4, 5), f32(5)], consts=(1, 2))
    path = tmp_path / "gemm.onnx"
    onnx.save(case.model, path)
    return path


def test_check_and_run(tmp_path):
    path = _model_file(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["check", str(path), "--profile"])
    assert r.exit_code == 0, r.output
    assert "out0" in r.output and "ok" in r.output
    assert "conversion profile" in r.output and "MAX compile" in r.output
    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 4), np.float32))
    r = runner.invoke(main, ["run", str(path), "--input", f"in0={x}"])
    assert r.exit_code == 0, r.output
    assert "out0" in r.output
    r = runner.invoke(main, ["run", str(path), "--input", f"bogus={x}"])
    assert r.exit_code == 2 and "bogus" in r.output and "in0" in r.output


def test_argument_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["run", str(tmp_path / "absent.onnx")])
    assert r.exit_code == 1 and "no such file" in r.output and "bvlc_alexnet (or alexnet)" in r.output
    r = runner.invoke(main, ["bench", str(tmp_path / "absent.onnx")])
    assert r.exit_code == 1 and "zoo models: mlp, small_cnn" in r.output
    r = runner.invoke(main, ["conformance", "--name", "test_no_such_case", "--results",
                             str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    assert r.exit_code == 1 and "matches --name test_no_such_case" in r.output
    assert "test_conv*" in r.output and not (tmp_path / "r.json").exists()
    r = runner.invoke(main, ["run", "mobilenet_v2", "--seed", "-5"])
    assert r.exit_code == 2 and "--seed" in r.output
    r = runner.invoke(main, ["check", "mobilenet_v2", "--atol", "-1"])
    assert r.exit_code == 2 and "--atol" in r.output
    r = runner.invoke(main, ["run", "mobilenet_v2", "--input", "x=/nonexistent.npy"])
    assert r.exit_code == 2 and "nonexistent" in r.output
    r = runner.invoke(main, ["ops"])
    assert r.exit_code == 0 and "Conv" in r.output and "LayerNormalization" in r.output


def test_check_exit_status_2_when_nothing_was_compared(tmp_path):
    """check exits 1 only for outputs that differ (tested in test_bisect and test_passes); a
    model it cannot read or convert, or a bad argument, gives 2, as diff's "trouble"."""
    from onnx import TensorProto, helper

    runner = CliRunner()
    r = runner.invoke(main, ["check", str(tmp_path / "absent.onnx")])
    assert r.exit_code == 2 and "no such file" in r.output, r.output
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "unsupported.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.example", 1)]), path)
    r = runner.invoke(main, ["check", str(path)])
    assert r.exit_code == 2 and "NoSuchOp" in r.output, r.output
    r = runner.invoke(main, ["check", str(path), "--bisect"])
    assert r.exit_code == 2 and "NoSuchOp" in r.output, r.output
    r = runner.invoke(main, ["check", str(path), "--atol", "-1"])
    assert r.exit_code == 2 and "--atol" in r.output


def test_conformance_page_goes_beside_the_results(tmp_path, monkeypatch):
    """A selected run writes its page next to its --results file, not over the repository's
    docs/onnx-coverage.md (an unsupported case: settled without a compile)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["conformance", "--name", "test_adagrad", "--results", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert "0 passed" in r.output and "1 unsupported" in r.output
    assert "test_adagrad" in (tmp_path / "r.md").read_text()
    assert not (tmp_path / "docs").exists()
    assert f"results JSON (`{(tmp_path / 'r.json').resolve().as_posix()}`)" in (tmp_path / "r.md").read_text()
    md = tmp_path / "x.md"  # the page would overwrite the results: refused before running
    r = runner.invoke(main, ["conformance", "--name", "test_adagrad", "--results", str(md)])
    assert r.exit_code == 2 and "both the results file and the page" in r.output and not md.exists()


def test_bundled_names():
    assert resolve_model("alexnet").name == "light_bvlc_alexnet.onnx"
    assert resolve_model("mobilenet_v2").name == "mobilenet_v2.onnx"
    onnx.checker.check_model(str(resolve_model("mobilenet_v2")))


def test_unknown_input_name_is_refused_before_converting(tmp_path, monkeypatch):
    import onnx2max

    def no_conversion(*a, **k):
        raise AssertionError("the model was converted before --input was checked")

    monkeypatch.setattr(onnx2max, "from_onnx", no_conversion)
    path = _model_file(tmp_path)
    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 4), np.float32))
    for cmd in ("run", "check"):
        r = CliRunner().invoke(main, [cmd, str(path), "--input", f"typo={x}"])
        assert r.exit_code == 2 and "typo" in r.output and "in0" in r.output, r.output


def test_input_and_const_names_and_paths_may_hold_equals_signs(tmp_path, monkeypatch):
    from onnx2max.cli import _parse_consts, _parse_inputs

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "x=1.npy", a)
    np.save(tmp_path / "plain.npy", a * 2)
    monkeypatch.chdir(tmp_path)
    got = _parse_inputs(("in=0=plain.npy", "y=x=1.npy", f"z={tmp_path / 'x=1.npy'}"))
    assert sorted(got) == ["in=0", "y", "z"]
    np.testing.assert_array_equal(got["in=0"], a * 2)
    np.testing.assert_array_equal(got["y"], a)
    np.testing.assert_array_equal(got["z"], a)
    consts = _parse_consts(("mode=fast=1", "sr=16000", "w=x=1.npy", "v=1,2"))
    assert consts["mode=fast"] == 1 and consts["sr"] == 16000 and consts["v"] == [1, 2]
    np.testing.assert_array_equal(consts["w"], a)


def test_long_input_and_const_values_are_not_taken_for_paths():
    from click import BadParameter

    from onnx2max.cli import _parse_consts, _parse_inputs

    assert _parse_consts(("v=" + ",".join(["1"] * 130),))["v"] == [1] * 130
    with pytest.raises(BadParameter, match="cannot read .* as a .npy array"):
        _parse_inputs(("x=" + "a" * 300 + ".npy",))
