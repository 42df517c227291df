"""Symbolic dims: one MAX compile serves every size of a dim the model leaves open.

A hand-built model covers the three ways a dim becomes symbolic (a ``dim_param``, a
``dim_value`` of -1, and ``from_onnx(dynamic=...)`` on a dim the model fixes) and the shape
arithmetic exporters emit on them (``Shape -> Gather -> Concat -> Reshape``, ``Range``,
``Slice`` to a sequence length, ``Expand``, ``ConstantOfShape``), with Conv, pools, Gemm,
LayerNormalization and Softmax on a symbolic batch; the zoo's transformer encoder and GPT
decoder exported with a dynamic batch and sequence axis are converted together. Each is
compiled once and compared with onnxruntime at several sizes; a counter on the compile shows
that the other sizes compile nothing. Errors need no compile.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import assert_matches, ort_run
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import onnx2max
from onnx2max import compiler, errors


def _symbolic_model() -> onnx.ModelProto:
    """x: [2 (made symbolic with dynamic=), seq, 8]; z: [batch, 8] (dim_param);
    y: [-1, 3, 8, 8] (a dynamic dim as older exporters write it); c: [k] bool, Compress's
    condition (k <= batch); flag: the condition of an If."""
    rng = np.random.default_rng(0)

    def init(name, a):
        return nh.from_array(np.asarray(a), name)

    inits = [init("W", rng.standard_normal((8, 16)).astype(np.float32)),
             init("B", rng.standard_normal(16).astype(np.float32)),
             init("CW", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
             init("CB", rng.standard_normal(4).astype(np.float32)),
             init("GW", rng.standard_normal((5, 4)).astype(np.float32)),
             init("LS", rng.standard_normal(8).astype(np.float32)),
             init("MASK", np.tril(np.ones((16, 16), np.float32))),
             init("E", rng.standard_normal((1, 8)).astype(np.float32)),
             init("i0", np.array([0], np.int64)), init("s0", np.array(0, np.int64)),
             init("s1", np.array(1, np.int64)), init("c44", np.array([4, 4], np.int64)),
             init("cm1", np.array([-1], np.int64)), init("c8", np.array([8], np.int64)),
             init("z2", np.array([0, 0], np.int64)), init("half", np.array(0.5, np.float32))]
    n = h.make_node
    nodes = [
        n("MatMul", ["x", "W"], ["mm"]), n("Add", ["mm", "B"], ["ad"]), n("Relu", ["ad"], ["hh"]),
        n("Shape", ["x"], ["sx"]),
        n("Gather", ["sx", "s0"], ["bd"], axis=0), n("Gather", ["sx", "s1"], ["td"], axis=0),
        n("Unsqueeze", ["bd", "i0"], ["bu"]), n("Unsqueeze", ["td", "i0"], ["tu"]),
        n("Concat", ["bu", "tu", "c44"], ["shape4"], axis=0),
        n("Reshape", ["hh", "shape4"], ["r4"]),
        n("Transpose", ["r4"], ["tr"], perm=[0, 2, 1, 3]),
        n("Softmax", ["tr"], ["heads"], axis=-1),
        n("Concat", ["bu", "cm1"], ["flat"], axis=0),
        n("Reshape", ["hh", "flat"], ["flattened"]),
        n("Conv", ["y", "CW", "CB"], ["cv"], pads=[1, 1, 1, 1]), n("Relu", ["cv"], ["cr"]),
        n("MaxPool", ["cr"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        n("GlobalAveragePool", ["mp"], ["gp"]), n("Flatten", ["gp"], ["fl"]),
        n("Gemm", ["fl", "GW"], ["logits"], transB=1),
        n("LayerNormalization", ["x", "LS"], ["normed"], axis=-1),
        n("Range", ["s0", "td", "s1"], ["positions"]),
        n("Concat", ["tu", "tu"], ["tt"], axis=0),
        n("Slice", ["MASK", "z2", "tt"], ["mask"]),
        n("Concat", ["bu", "c8"], ["eshape"], axis=0),
        n("Expand", ["E", "eshape"], ["ex"]), n("Add", ["ex", "z"], ["expanded"]),
        n("ConstantOfShape", ["sx"], ["filled"], value=nh.from_array(np.array([2.5], np.float32))),
        # data-dependent sizes: a new symbolic dim (MAX ops.nonzero)
        n("Greater", ["z", "half"], ["zpos"]), n("NonZero", ["zpos"], ["nz"]),
        n("Compress", ["z", "c"], ["picked"], axis=0),
        # a conditional decided at run time, whose outputs have the symbolic batch
        n("If", ["flag"], ["chosen"], then_branch=h.make_graph(
            [n("Mul", ["z", "two"], ["zt"])], "then", [],
            [h.make_tensor_value_info("zt", T.FLOAT, ["batch", 8])],
            initializer=[init("two", np.array(2.0, np.float32))]), else_branch=h.make_graph(
            [n("Neg", ["z"], ["ze"])], "else", [], [h.make_tensor_value_info("ze", T.FLOAT, ["batch", 8])])),
    ]
    outs = [("heads", T.FLOAT, 4), ("flattened", T.FLOAT, 2), ("logits", T.FLOAT, 2),
            ("normed", T.FLOAT, 3), ("positions", T.INT64, 1), ("mask", T.FLOAT, 2),
            ("expanded", T.FLOAT, 2), ("filled", T.FLOAT, 3), ("nz", T.INT64, 2),
            ("picked", T.FLOAT, 2), ("chosen", T.FLOAT, 2)]
    g = h.make_graph(nodes, "dyn", [
        h.make_tensor_value_info("x", T.FLOAT, [2, "seq", 8]),
        h.make_tensor_value_info("z", T.FLOAT, ["batch", 8]),
        h.make_tensor_value_info("y", T.FLOAT, [-1, 3, 8, 8]),
        h.make_tensor_value_info("c", T.BOOL, ["k"]),
        h.make_tensor_value_info("flag", T.BOOL, [])],
        [h.make_tensor_value_info(name, elem, ["batch", 8] if name == "chosen" else
                                  [f"{name}_{k}" for k in range(r)]) for name, elem, r in outs],
        initializer=inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    m.ir_version = 9
    onnx.checker.check_model(m, full_check=True)
    return m


class _CompileCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = compiler._compile_with_progress

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(compiler, "_compile_with_progress", counted)


@pytest.fixture(scope="module")
def symbolic():
    m = _symbolic_model()
    mp = pytest.MonkeyPatch()
    try:
        counter = _CompileCounter(mp)
        model = onnx2max.from_onnx(m, dynamic={"x": {0: "batch"}}, progress=False)
        return m, model, counter
    finally:
        mp.undo()


def test_symbolic_inputs_and_outputs_are_shown_by_name(symbolic):
    _, model, counter = symbolic
    assert counter.calls <= 1  # 0 when served from the compile cache
    shapes = {s.name: s.shape for s in model.inputs}
    assert shapes == {"x": ("batch", "seq", 8), "z": ("batch", 8), "y": ("y_dim0", 3, 8, 8),
                      "c": ("k",), "flag": ()}
    out = {s.name: s.shape for s in model.outputs}
    assert out["heads"] == ("batch", 4, "seq", 4) and out["positions"] == ("seq",)
    assert out["logits"] == ("y_dim0", 5) and out["mask"] == ("seq", "seq")
    assert out["nz"][0] == 2 and isinstance(out["nz"][1], str) and out["picked"][1] == 8


@pytest.mark.parametrize("batch, seq, n", [(1, 3, 2), (4, 7, 1), (2, 16, 5)])
def test_one_compile_runs_every_size_and_matches_onnxruntime(symbolic, batch, seq, n, monkeypatch):
    m, model, _ = symbolic
    counter = _CompileCounter(monkeypatch)
    rng = np.random.default_rng(batch * 100 + seq)
    feeds = {"x": rng.standard_normal((batch, seq, 8)).astype(np.float32),
             "z": rng.standard_normal((batch, 8)).astype(np.float32),
             "y": rng.standard_normal((n, 3, 8, 8)).astype(np.float32),
             "c": rng.random(batch) > 0.4, "flag": np.array(batch % 2 == 0)}
    # onnxruntime runs the model as declared: x's dim 0 fixed at 2, so give it a copy that
    # declares the same dim symbolic, as dynamic= does for MAX
    ref = onnx.ModelProto()
    ref.CopyFrom(m)
    ref.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    want = ort_run(ref, feeds)
    got = model.run(None, feeds)
    for spec, g, w in zip(model.outputs, got, want):
        assert_matches(g, w, f"{spec.name} at batch {batch}, seq {seq}, n {n}")
    assert counter.calls == 0


def test_inputs_that_share_a_dim_must_agree(symbolic):
    _, model, _ = symbolic
    feeds = {"x": np.zeros((2, 3, 8), np.float32), "z": np.zeros((3, 8), np.float32),
             "y": np.zeros((1, 3, 8, 8), np.float32), "c": np.ones(2, bool), "flag": np.array(True)}
    with pytest.raises(errors.InputError, match=r"'z'.*'batch' is 3.*'x' gave 'batch' the size 2"):
        model.run(None, feeds)
    feeds["z"] = np.zeros((2, 9), np.float32)
    with pytest.raises(errors.InputError, match=r"'z' has shape \(2, 9\).*\(batch, 8\)"):
        model.run(None, feeds)


def test_symbolic_model_is_cached_once(symbolic):
    m, _, _ = symbolic
    again = onnx2max.from_onnx(m, dynamic={"x": {0: "batch"}}, progress=False)
    assert again.cache_hit


# ------------------------------------------------------------------ the zoo, exported dynamic
@pytest.fixture(scope="module")
def zoo_dynamic(tmp_path_factory):
    pytest.importorskip("torch")
    from export import to_onnx
    from models import ZOO

    folder = tmp_path_factory.mktemp("zoo-dynamic")
    paths = {}
    for name in ("transformer_encoder", "gpt"):
        module, inputs = ZOO[name]()
        paths[name] = to_onnx(module, inputs, folder / f"{name}.onnx", input_names=["x"],
                              dynamic={0: {0: "batch", 1: "seq"}})
    mp = pytest.MonkeyPatch()
    try:
        counter = _CompileCounter(mp)
        models = onnx2max.from_onnx_many(list(paths.values()), progress=False)
    finally:
        mp.undo()
    assert counter.calls <= 1
    return {n: (paths[n], m) for n, m in zip(paths, models)}


@pytest.mark.parametrize("name", ["transformer_encoder", "gpt"])
def test_zoo_exported_dynamic_runs_three_batches_and_two_lengths(zoo_dynamic, name, monkeypatch):
    path, model = zoo_dynamic[name]
    assert model.inputs[0].shape[:2] == ("batch", "seq")
    counter = _CompileCounter(monkeypatch)
    rng = np.random.default_rng(0)
    for batch in (1, 3, 8):
        for seq in (5, 16):
            if name == "gpt":
                x = rng.integers(0, 128, (batch, seq)).astype(np.int64)
            else:
                x = rng.standard_normal((batch, seq, 64)).astype(np.float32)
            (got,) = model.run(None, {"x": x})
            assert_matches(got, ort_run(str(path), {"x": x})[0],
                           f"{name} at batch {batch}, seq {seq}")
    assert counter.calls == 0


def test_ops_marked_as_tested_with_symbolic_dims_are_those_of_these_models(zoo_dynamic):
    """``onnx2max ops`` marks the op types of the models above (compared with onnxruntime at
    several sizes from one compile): the set may not claim more, or less."""
    from onnx2max.symbolic import TESTED_WITH_SYMBOLIC_DIMS

    ops = {n.op_type for n in _symbolic_model().graph.node}
    for path, _ in zoo_dynamic.values():
        ops |= {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops == set(TESTED_WITH_SYMBOLIC_DIMS)


@pytest.mark.slow
def test_resnet18_dynamic_batch_runs_batch_1_and_4(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from export import to_onnx
    from models import ZOO

    module, inputs = ZOO["resnet18"]()
    path = to_onnx(module, inputs, tmp_path / "resnet18.onnx", input_names=["x"],
                   dynamic={0: {0: "batch"}})
    counter = _CompileCounter(monkeypatch)
    model = onnx2max.from_onnx(path, progress=False)
    assert counter.calls <= 1 and model.inputs[0].shape == ("batch", 3, 224, 224)
    for batch in (1, 4):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        assert_matches(model(x), ort_run(str(path), {"x": x})[0], f"resnet18 batch {batch}")
    assert counter.calls <= 1


# ------------------------------------------------------------------ errors (no compile)
def _tiny(nodes, x_shape, inits=(), outputs=("y",)):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, x_shape)],
                     [h.make_tensor_value_info(o, T.FLOAT, None) for o in outputs],
                     initializer=list(inits))
    return h.make_model(g, opset_imports=[h.make_opsetid("", 18)])


def _lower(m, **kw):
    from max.graph.graph import Module

    from onnx2max.lower import lower_graph
    from onnx2max.prepare import prepare

    p = prepare(m, "m", **kw)
    return lower_graph(p, compiler.resolve_device("cpu").ref, "g", "g_", module=Module())


def test_a_converter_that_needs_static_dims_names_the_node_and_input_shapes():
    m = _tiny([h.make_node("Split", ["x"], ["y", "w"], axis=0, num_outputs=2, name="halves")],
              ["n", 4], outputs=("y", "w"))
    with pytest.raises(errors.ConversionError) as e:
        _lower(m)
    msg = str(e.value)
    assert "Split node 'halves'" in msg and "symbolic ('n')" in msg and "input_shapes" in msg


def test_a_reshape_valid_for_one_size_only_says_so():
    # the TorchScript exporter's dynamic_axes can keep a traced size in a Reshape target
    m = _tiny([h.make_node("Reshape", ["x", "t"], ["y"], name="traced")], ["n", 4],
              [nh.from_array(np.array([2, 8], np.int64), "t")])
    with pytest.raises(errors.ConversionError) as e:
        _lower(m)
    msg = str(e.value)
    assert "Reshape node 'traced'" in msg and "(n, 4)" in msg and "(2, 8)" in msg
    assert "input_shapes={'x': (1, 4)}" in msg
    # fixed with input_shapes, it lowers
    _lower(m, input_shapes={"x": (4, 4)})


def _bn_symbolic_channels() -> onnx.ModelProto:
    """X: [2, 3, 4, 5]; scale, B, mean, var: graph inputs of symbolic length (``ch``), as a
    model that leaves its parameters open declares them; BatchNormalization in inference and
    in training mode (opset 15) on them."""
    vi = h.make_tensor_value_info
    ins = [vi("x", T.FLOAT, [2, 3, 4, 5])] + [vi(k, T.FLOAT, ["ch"]) for k in "sbmv"]
    outs = [vi("y0", T.FLOAT, [2, 3, 4, 5]), vi("y1", T.FLOAT, [2, 3, 4, 5]), vi("rm", T.FLOAT, None),
            vi("rv", T.FLOAT, None)]
    nodes = [h.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y0"], name="bn_inference"),
             h.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y1", "rm", "rv"], name="bn_training",
                         training_mode=1)]
    outs[2].type.tensor_type.shape.dim.add().dim_param = "ch"
    outs[3].type.tensor_type.shape.dim.add().dim_param = "ch"
    return h.make_model(h.make_graph(nodes, "bn", ins, outs), opset_imports=[h.make_opsetid("", 15)])


def test_batch_norm_parameters_of_symbolic_length():
    """Parameters of symbolic length are checked against X's channel count when the model
    runs (MAX ``ops.rebind``): the right length matches onnxruntime, a wrong one is an
    InputError naming the node, not MAX's reshape error at conversion (found by a fresh-venv
    trial)."""
    m = _bn_symbolic_channels()
    model = onnx2max.from_onnx(m, progress=False)
    rng = np.random.default_rng(3)
    feeds = {"x": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
             **{k: rng.uniform(0.5, 2.0, 3).astype(np.float32) for k in "sbmv"}}
    for spec, g, w in zip(model.outputs, model.run(None, feeds), ort_run(m, feeds)):
        assert_matches(g, w, spec.name)
    feeds.update({k: np.ones(4, np.float32) for k in "sbmv"})
    with pytest.raises(errors.InputError, match=r"BatchNormalization node 'bn_\w+'.*must have 3 values"):
        model.run(None, feeds)


@pytest.mark.parametrize("dynamic, match", [
    ({"nope": {0: "b"}}, "dynamic names.*'nope'"),
    ({"x": {2: "b"}}, "axis 2.*rank 2"),
    ({"x": {0: ""}}, "expected a dim name"),
    ({"x": [0]}, r"expected \{axis: dim name\}"),
])
def test_bad_dynamic_is_an_input_error(dynamic, match):
    m = _tiny([h.make_node("Relu", ["x"], ["y"])], [2, 4])
    with pytest.raises(errors.InputError, match=match):
        _lower(m, dynamic=dynamic)


def test_dynamic_and_input_shapes_on_one_input_is_an_input_error():
    m = _tiny([h.make_node("Relu", ["x"], ["y"])], ["n", 4])
    with pytest.raises(errors.InputError, match="both input_shapes and dynamic"):
        _lower(m, input_shapes={"x": (2, 4)}, dynamic={"x": {0: "n"}})


def test_cli_sizes_symbolic_dims_with_dim(tmp_path):
    from click.testing import CliRunner

    from onnx2max.cli import main

    m = _tiny([h.make_node("Relu", ["x"], ["y"])], ["n", 4])
    m.graph.output[0].CopyFrom(h.make_tensor_value_info("y", T.FLOAT, ["n", 4]))
    path = tmp_path / "relu.onnx"
    onnx.save(m, path)
    r = CliRunner().invoke(main, ["check", str(path), "--dim", "n=3"])
    assert r.exit_code == 0, r.output
    assert "[3, 4]" in r.output and " ok" in r.output
    r = CliRunner().invoke(main, ["run", str(path), "--dim", "batch=3"])
    assert r.exit_code != 0 and "['batch'] are not symbolic dims" in r.output and "['n']" in r.output


def test_shape_arithmetic_onnx2max_cannot_evaluate_suggests_input_shapes():
    # Mod of a symbolic dim is not evaluated at conversion: the Reshape target stays a run-time
    # value, and the error points at input_shapes (not constant_inputs: x is data)
    n = h.make_node
    m = _tiny([n("Shape", ["x"], ["s"]), n("Mod", ["s", "two"], ["r"]),
               n("Reshape", ["x", "r"], ["y"], name="odd_reshape")], ["n", 4],
              [nh.from_array(np.array([2, 3], np.int64), "two")])
    with pytest.raises(errors.ConversionError) as e:
        _lower(m)
    msg = str(e.value)
    assert "Reshape node 'odd_reshape'" in msg and "symbolic dims" in msg
    assert "input_shapes={'x': (1, 4)}" in msg and "constant_inputs" not in msg
