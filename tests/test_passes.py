"""The graph passes of ``onnx2max.passes``: each fires on the pattern it targets, leaves other
graphs alone, and keeps the values.

Without a compile: each test prepares a model, runs a pass, checks the node types left, and runs
the rewritten graph (written back as an ONNX model) in onnxruntime against the original model.
With one MAX compile (``test_passes_in_from_onnx_match_onnxruntime``): a model holding all three
patterns, converted by ``from_onnx`` (passes on by default), against onnxruntime.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from conftest import assert_matches, ort_run
from onnx import TensorProto, helper, numpy_helper

import onnx2max
from onnx2max import passes
from onnx2max.errors import InputError
from onnx2max.prepare import prepare

F = TensorProto.FLOAT
RNG = np.random.default_rng(20261207)


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def _model(nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, "p", [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                          [helper.make_tensor_value_info(*((n, F, None) if isinstance(n, str) else (n[0], F, n[1])))
                           for n in outputs], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _back_to_onnx(p) -> onnx.ModelProto:
    """The prepared (and rewritten) graph as an ONNX model, for onnxruntime."""
    inputs = [helper.make_tensor_value_info(s.name, s.elem_type, list(s.shape)) for s in p.inputs]
    outputs = [helper.make_tensor_value_info(o, p.types[o][0] if o in p.types else F, None) for o in p.outputs]
    inits = [numpy_helper.from_array(v, k) for k, v in p.values.items()]
    g = helper.make_graph(list(p.nodes), "rewritten", inputs, outputs, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in p.opsets.items()])


def _run_pass(model, name):
    before = model.SerializeToString()
    p = prepare(model, "m")
    n = passes.PASSES[name](p)
    assert model.SerializeToString() == before, "the pass changed the caller's ModelProto"
    return p, n, Counter(node.op_type for node in p.nodes)


def _same_values(model, p, feeds, atol=1e-5, rtol=1e-4):
    for o, got, want in zip(p.outputs, ort_run(_back_to_onnx(p), feeds), ort_run(model, feeds)):
        assert_matches(got, want, o, atol=atol, rtol=rtol)


def _bn(x, y, c, tag=""):
    scale, bias = RNG.uniform(0.5, 2.0, c), RNG.standard_normal(c)
    mean, var = RNG.standard_normal(c), RNG.uniform(0.2, 3.0, c)
    inits = [_init(f"{k}{tag}", v.astype(np.float32)) for k, v in
             (("s", scale), ("b", bias), ("m", mean), ("v", var))]
    return helper.make_node("BatchNormalization", [x, f"s{tag}", f"b{tag}", f"m{tag}", f"v{tag}"], [y],
                            epsilon=1e-3), inits


# ------------------------------------------------------------------ fold_batchnorm
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_batchnorm_folds_into_conv(bias):
    w = RNG.standard_normal((6, 3, 3, 3)).astype(np.float32)
    inits = [_init("w", w)] + ([_init("cb", RNG.standard_normal(6).astype(np.float32))] if bias else [])
    conv = helper.make_node("Conv", ["x", "w"] + (["cb"] if bias else []), ["c"], pads=[1, 1, 1, 1])
    bn, bn_inits = _bn("c", "y", 6)
    m = _model([conv, bn, helper.make_node("Relu", ["y"], ["z"])], [("x", [2, 3, 8, 8])], ["z"], inits + bn_inits)
    p, n, ops = _run_pass(m, "fold_batchnorm")
    assert n == 1 and "BatchNormalization" not in ops and ops["Conv"] == 1
    _same_values(m, p, {"x": RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)})


def test_batchnorm_folds_into_grouped_conv_transpose():
    w = RNG.standard_normal((4, 3, 2, 2)).astype(np.float32)  # C_in 4, group 2 -> C_out 6
    conv = helper.make_node("ConvTranspose", ["x", "w"], ["c"], group=2, strides=[2, 2])
    bn, bn_inits = _bn("c", "y", 6)
    m = _model([conv, bn], [("x", [1, 4, 5, 5])], ["y"], [_init("w", w)] + bn_inits)
    p, n, ops = _run_pass(m, "fold_batchnorm")
    assert n == 1 and list(ops) == ["ConvTranspose"]
    _same_values(m, p, {"x": RNG.standard_normal((1, 4, 5, 5)).astype(np.float32)})


@pytest.mark.parametrize("trans_b, c_shape", [(0, None), (1, (5,)), (0, (1, 5)), (1, (3, 5))],
                         ids=["no-C", "transB-C-vector", "C-row", "transB-C-full"])
def test_batchnorm_folds_into_gemm(trans_b, c_shape):
    w = RNG.standard_normal((5, 4) if trans_b else (4, 5)).astype(np.float32)
    inits = [_init("w", w)]
    ins = ["x", "w"]
    if c_shape is not None:
        inits.append(_init("c0", RNG.standard_normal(c_shape).astype(np.float32)))
        ins.append("c0")
    gemm = helper.make_node("Gemm", ins, ["g"], transB=trans_b, alpha=0.7, beta=1.3)
    bn, bn_inits = _bn("g", "y", 5)
    m = _model([gemm, bn], [("x", [3, 4])], ["y"], inits + bn_inits)
    p, n, ops = _run_pass(m, "fold_batchnorm")
    assert n == 1 and list(ops) == ["Gemm"]
    _same_values(m, p, {"x": RNG.standard_normal((3, 4)).astype(np.float32)})


def test_batchnorm_is_not_folded_when_the_conv_output_has_another_use():
    conv = helper.make_node("Conv", ["x", "w"], ["c"])
    bn, bn_inits = _bn("c", "y", 2)
    m = _model([conv, bn, helper.make_node("Add", ["y", "c"], ["z"])], [("x", [1, 2, 4, 4])], ["z"],
               [_init("w", RNG.standard_normal((2, 2, 1, 1)).astype(np.float32))] + bn_inits)
    p, n, ops = _run_pass(m, "fold_batchnorm")
    assert n == 0 and ops["BatchNormalization"] == 1


def test_batchnorm_is_not_folded_into_a_runtime_filter():
    conv = helper.make_node("Conv", ["x", "w"], ["c"])
    bn, bn_inits = _bn("c", "y", 2)
    m = _model([conv, bn], [("x", [1, 2, 4, 4]), ("w", [2, 2, 1, 1])], ["y"], bn_inits)
    _, n, ops = _run_pass(m, "fold_batchnorm")
    assert n == 0 and ops["BatchNormalization"] == 1


# ------------------------------------------------------------------ fuse_gelu
def _gelu_nodes(form: str, x="x", y="y"):
    """GELU written out as exporters do; ``form`` picks the variant."""
    k = [_init("sqrt2", np.float32(np.sqrt(2.0))), _init("isqrt2", np.float32(1 / np.sqrt(2.0))),
         _init("one", np.float32(1.0)), _init("half", np.float32(0.5))]
    if form == "div":  # torch.onnx (TorchScript) before opset 20
        n = [helper.make_node("Div", [x, "sqrt2"], ["g1"]), helper.make_node("Erf", ["g1"], ["g2"]),
             helper.make_node("Add", ["g2", "one"], ["g3"]), helper.make_node("Mul", [x, "g3"], ["g4"]),
             helper.make_node("Mul", ["g4", "half"], [y])]
    elif form == "mul-half-first":  # x * (1/sqrt 2); (0.5 * x) * (1 + erf)
        n = [helper.make_node("Mul", ["isqrt2", x], ["g1"]), helper.make_node("Erf", ["g1"], ["g2"]),
             helper.make_node("Add", ["one", "g2"], ["g3"]), helper.make_node("Mul", ["half", x], ["h"]),
             helper.make_node("Mul", ["g3", "h"], [y])]
    return n, k


@pytest.mark.parametrize("form", ["div", "mul-half-first"])
def test_gelu_subgraph_becomes_one_gelu(form):
    nodes, k = _gelu_nodes(form)
    m = _model([helper.make_node("Relu", ["a"], ["x"]), *nodes], [("a", [2, 7])], ["y"], k)
    p, n, ops = _run_pass(m, "fuse_gelu")
    assert n == 1 and ops == Counter({"Relu": 1, "Gelu": 1})
    assert p.opsets["com.microsoft"] == 1
    _same_values(m, p, {"a": RNG.standard_normal((2, 7)).astype(np.float32) * 3})


def test_gelu_is_not_fused_when_an_intermediate_is_used_elsewhere():
    nodes, k = _gelu_nodes("div")
    m = _model(nodes + [helper.make_node("Add", ["g3", "y"], ["z"])], [("x", [2, 7])], ["z"], k)
    _, n, ops = _run_pass(m, "fuse_gelu")
    assert n == 0 and ops["Erf"] == 1


def test_gelu_is_not_fused_with_another_constant():
    nodes, k = _gelu_nodes("div")
    k[2] = _init("one", np.float32(2.0))  # 0.5 x (2 + erf(x / sqrt 2)) is not GELU
    m = _model(nodes, [("x", [2, 7])], ["y"], k)
    _, n, _ = _run_pass(m, "fuse_gelu")
    assert n == 0


# ------------------------------------------------------------------ fuse_layer_norm
def _layer_norm_nodes(opset: int, affine: bool, x="x", y="y", width=8):
    def mean(src, dst):
        if opset >= 18:
            return helper.make_node("ReduceMean", [src, "axes"], [dst])
        return helper.make_node("ReduceMean", [src], [dst], axes=[-1])

    last = "n" if affine else y
    n = [mean(x, "mu"), helper.make_node("Sub", [x, "mu"], ["d"]),
         helper.make_node("Pow", ["d", "two"], ["d2"]), mean("d2", "var"),
         helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["sd"]),
         helper.make_node("Div", ["d", "sd"], [last])]
    k = [_init("two", np.float32(2.0)), _init("eps", np.float32(1e-5))]
    if opset >= 18:
        k.append(_init("axes", np.array([-1], np.int64)))
    if affine:
        n += [helper.make_node("Mul", [last, "gamma"], ["ng"]), helper.make_node("Add", ["ng", "beta"], [y])]
        k += [_init("gamma", RNG.uniform(0.5, 2, width).astype(np.float32)),
              _init("beta", RNG.standard_normal(width).astype(np.float32))]
    return n, k


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_layer_norm_subgraph_becomes_one_layer_normalization(opset, affine):
    nodes, k = _layer_norm_nodes(opset, affine)
    m = _model([helper.make_node("Relu", ["a"], ["x"]), *nodes], [("a", [2, 3, 8])], ["y"], k, opset=opset)
    p, n, ops = _run_pass(m, "fuse_layer_norm")
    assert n == 1 and ops == Counter({"Relu": 1, "LayerNormalization": 1})
    _same_values(m, p, {"a": RNG.standard_normal((2, 3, 8)).astype(np.float32) * 2})


def test_layer_norm_over_another_axis_is_not_fused():
    nodes, k = _layer_norm_nodes(13, False)
    for node in nodes:
        if node.op_type == "ReduceMean":
            node.attribute[0].ints[:] = [1]
    m = _model(nodes, [("x", [2, 3, 8])], ["y"], k, opset=13)
    _, n, ops = _run_pass(m, "fuse_layer_norm")
    assert n == 0 and ops["ReduceMean"] == 2


# ------------------------------------------------------------------ the switch
def test_the_switch_selects_passes(monkeypatch):
    monkeypatch.delenv("ONNX2MAX_PASSES", raising=False)
    assert passes.enabled_passes() == list(passes.PASSES)
    monkeypatch.setenv("ONNX2MAX_PASSES", "none")
    assert passes.enabled_passes() == []
    monkeypatch.setenv("ONNX2MAX_PASSES", "fuse_gelu, fold_batchnorm")
    assert passes.enabled_passes() == ["fold_batchnorm", "fuse_gelu"]
    monkeypatch.setenv("ONNX2MAX_PASSES", "fold_bn")
    with pytest.raises(InputError, match="unknown pass fold_bn"):
        passes.enabled_passes()
    monkeypatch.setenv("ONNX2MAX_PASSES", " , ")  # a stray comma must not switch them all off
    with pytest.raises(InputError, match="names no pass"):
        passes.enabled_passes()


def test_passes_off_leave_the_graph_as_prepared(monkeypatch):
    nodes, k = _gelu_nodes("div")
    m = _model(nodes, [("x", [2, 7])], ["y"], k)
    monkeypatch.setenv("ONNX2MAX_PASSES", "none")
    p = prepare(m, "m")
    before = [n.op_type for n in p.nodes]
    assert passes.optimize(p) == {} and [n.op_type for n in p.nodes] == before


# ------------------------------------------------------------------ through MAX
def _all_patterns_model():
    """Conv -> BatchNormalization -> (flatten to rows) -> GELU -> LayerNorm, one graph."""
    w = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    conv = helper.make_node("Conv", ["img", "w"], ["c"], pads=[1, 1, 1, 1])
    bn, bn_inits = _bn("c", "normed", 8)
    flat = helper.make_node("Reshape", ["normed", "rows"], ["x"])
    gelu, gk = _gelu_nodes("div", x="x", y="gx")
    ln, lk = _layer_norm_nodes(13, True, x="gx", y="out", width=16)
    inits = [_init("w", w), _init("rows", np.array([2, 8, 16], np.int64))] + bn_inits + gk + lk
    return _model([conv, bn, flat, *gelu, *ln], [("img", [2, 3, 4, 4])], [("out", [2, 8, 16])], inits,
                  opset=13)


def test_passes_in_from_onnx_match_onnxruntime(monkeypatch):
    monkeypatch.delenv("ONNX2MAX_PASSES", raising=False)
    m = _all_patterns_model()
    compiled = onnx2max.from_onnx(m, progress=False)
    assert compiled.stats.passes == {"fold_batchnorm": 1, "fuse_gelu": 1, "fuse_layer_norm": 1}
    x = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
    got, = compiled.run(None, {"img": x})
    want, = ort_run(m, {"img": x})
    assert_matches(got, want, "out")
    assert got.shape == (2, 8, 16)


def test_check_names_the_passes_when_outputs_differ(monkeypatch, tmp_path):
    """`onnx2max check` on a mismatch says which passes rewrote the model (the bisect compares
    the literal graph): here a deliberately wrong pass turns Relu into Neg."""
    from click.testing import CliRunner

    from onnx2max.cli import main

    def wrong_pass(p):
        relus = [n for n in p.nodes if n.op_type == "Relu"]
        for n in relus:
            passes._own(p, n).op_type = "Neg"
        return len(relus)

    monkeypatch.setitem(passes.PASSES, "wrong", wrong_pass)
    monkeypatch.delenv("ONNX2MAX_PASSES", raising=False)
    path = tmp_path / "relu.onnx"
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2, 3])], [("y", [2, 3])], []), path)
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 1, r.output
    assert "graph passes rewrote this model (wrong: 1)" in r.output and "ONNX2MAX_PASSES=none" in r.output
