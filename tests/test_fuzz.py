"""Fuzzing with hypothesis: mutated small models, as bytes and as protobuf structure.

Every outcome must be a typed :class:`onnx2max.errors.Onnx2MaxError`, or a model whose outputs
match onnxruntime's. Each case runs load -> prepare -> lower (no compile), under a time limit;
the cases that get through are deduplicated, and the survivors of both strategies are compiled
together in one MAX compile at the end, then compared with onnxruntime. The case counts are printed.

CI runs ``ONNX2MAX_FUZZ_EXAMPLES`` cases per strategy (default 1000, so 2000 in all) with a
fixed seed. A longer, randomised run:

    ONNX2MAX_FUZZ_EXAMPLES=20000 ONNX2MAX_FUZZ_RANDOM=1 python -m pytest -q -s tests/test_fuzz.py
"""

from __future__ import annotations

import os
import signal
import traceback
from collections import Counter

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import onnx2max
from onnx2max.errors import CompileError, Onnx2MaxError
from onnx2max.load import load_model
from onnx2max.lower import lower_graph
from onnx2max.prepare import prepare

EXAMPLES = int(os.environ.get("ONNX2MAX_FUZZ_EXAMPLES", "1000"))
RANDOM = os.environ.get("ONNX2MAX_FUZZ_RANDOM", "") not in ("", "0")
#: seconds one case may take to load, prepare and lower before it counts as a hang
CASE_LIMIT_S = 30
#: at most this many distinct surviving models are compiled (one MAX compile) and compared
MAX_COMPILED = int(os.environ.get("ONNX2MAX_FUZZ_COMPILED", "24"))

pytestmark = pytest.mark.xdist_group("fuzz")


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _seeds() -> list[onnx.ModelProto]:
    """Small valid models covering initializers, attributes, folding and several op families."""
    rng = np.random.default_rng(0)
    f32 = TensorProto.FLOAT

    def model(nodes, inputs, outputs, inits, opset=17):
        g = helper.make_graph(nodes, "seed", inputs, outputs, initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        onnx.checker.check_model(m, full_check=True)
        return m

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return [
        model([helper.make_node("Add", ["x", "b"], ["a"], name="add"),
               helper.make_node("Relu", ["a"], ["y"], name="relu")],
              [_vi("x", f32, [2, 3])], [_vi("y", f32, [2, 3])],
              [numpy_helper.from_array(arr(3), "b")]),
        model([helper.make_node("Gemm", ["x", "w", "c"], ["g"], transB=1, alpha=0.5, name="gemm"),
               helper.make_node("Sigmoid", ["g"], ["y"], name="sig")],
              [_vi("x", f32, [2, 4])], [_vi("y", f32, [2, 3])],
              [numpy_helper.from_array(arr(3, 4), "w"), numpy_helper.from_array(arr(3), "c")]),
        model([helper.make_node("Conv", ["x", "w", "c"], ["v"], pads=[1, 1, 1, 1], name="conv"),
               helper.make_node("MaxPool", ["v"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
              [_vi("x", f32, [1, 2, 4, 4])], [_vi("y", f32, [1, 3, 2, 2])],
              [numpy_helper.from_array(arr(3, 2, 3, 3), "w"), numpy_helper.from_array(arr(3), "c")]),
        model([helper.make_node("Shape", ["x"], ["s"]),
               helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
               helper.make_node("Unsqueeze", ["d0", "ax"], ["d0u"]),
               helper.make_node("Concat", ["d0u", "m1"], ["t"], axis=0),
               helper.make_node("Reshape", ["x", "t"], ["r"], name="reshape"),
               helper.make_node("Softmax", ["r"], ["y"], axis=-1)],
              [_vi("x", f32, [2, 3, 4])], [_vi("y", f32, [2, 12])],
              [numpy_helper.from_array(np.array(0, np.int64), "i0"),
               numpy_helper.from_array(np.array([0], np.int64), "ax"),
               numpy_helper.from_array(np.array([-1], np.int64), "m1")]),
        model([helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
               helper.make_node("ReduceMean", ["t", "axes"], ["y"], keepdims=1),
               ],
              [_vi("x", f32, [2, 3, 4])], [_vi("y", f32, [4, 1, 3])],
              [numpy_helper.from_array(np.array([1], np.int64), "axes")], opset=18),
        model([helper.make_node("MatMul", ["x", "w"], ["m"]),
               helper.make_node("Cast", ["m"], ["i"], to=TensorProto.INT32),
               helper.make_node("Cast", ["i"], ["f"], to=TensorProto.FLOAT),
               helper.make_node("Where", ["cond", "f", "m"], ["y"])],
              [_vi("x", f32, [3, 4])], [_vi("y", f32, [3, 2])],
              [numpy_helper.from_array(arr(4, 2), "w"),
               numpy_helper.from_array(np.array([[True, False]] * 3), "cond")]),
    ]


SEEDS = _seeds()
SEED_BYTES = [m.SerializeToString() for m in SEEDS]

# ------------------------------------------------------------------------------- mutations
_OPS = ["Relu", "Add", "MatMul", "Conv", "Reshape", "Softmax", "Gemm", "Transpose", "Identity",
        "Concat", "Gather", "Cast", "NonZero", "Where", "Sigmoid", "ReduceMean", "Frobnicate"]
_TYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT32,
          TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.STRING, TensorProto.UINT8,
          TensorProto.BFLOAT16, 0, 99]
_INTS = st.one_of(st.integers(-3, 5), st.sampled_from([-(2**63), 2**31, 2**40, 2**62]))


def _names(m: onnx.ModelProto) -> list[str]:
    g = m.graph
    names = [v.name for v in g.input] + [t.name for t in g.initializer]
    names += [o for n in g.node for o in n.output]
    return names + ["", "ghost"]


@st.composite
def structural_mutants(draw) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(SEEDS[draw(st.integers(0, len(SEEDS) - 1))])
    g = m.graph
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from([
            "op_type", "drop_node", "node_input", "node_output", "attr_int", "attr_kind",
            "init_dims", "init_dtype", "init_raw", "opset", "input_type", "input_dims",
            "dup_node", "drop_output", "ir_version", "domain",
        ]))
        nodes = list(g.node)
        k = draw(st.integers(0, max(len(nodes) - 1, 0)))
        if kind == "op_type" and nodes:
            g.node[k].op_type = draw(st.sampled_from(_OPS))
        elif kind == "drop_node" and nodes:
            del g.node[k]
        elif kind == "node_input" and nodes and g.node[k].input:
            j = draw(st.integers(0, len(g.node[k].input) - 1))
            g.node[k].input[j] = draw(st.sampled_from(_names(m)))
        elif kind == "node_output" and nodes:
            g.node[k].output[0] = draw(st.sampled_from(_names(m)))
        elif kind == "attr_int" and nodes:
            n = g.node[k]
            ints = [a for a in n.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)]
            if ints:
                a = ints[draw(st.integers(0, len(ints) - 1))]
                if a.type == onnx.AttributeProto.INT:
                    a.i = draw(_INTS)
                elif a.ints:
                    a.ints[draw(st.integers(0, len(a.ints) - 1))] = draw(_INTS)
            else:
                n.attribute.append(helper.make_attribute(
                    draw(st.sampled_from(["axis", "perm", "keepdims", "to", "pads"])), draw(_INTS)))
        elif kind == "attr_kind" and nodes and g.node[k].attribute:
            a = g.node[k].attribute[0]
            a.type = draw(st.sampled_from([onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING,
                                           onnx.AttributeProto.INTS, onnx.AttributeProto.TENSOR]))
        elif kind == "init_dims" and g.initializer:
            t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
            t.dims[:] = draw(st.lists(st.one_of(st.integers(0, 5), st.just(2**31)), max_size=4))
        elif kind == "init_dtype" and g.initializer:
            g.initializer[draw(st.integers(0, len(g.initializer) - 1))].data_type = draw(
                st.sampled_from(_TYPES))
        elif kind == "init_raw" and g.initializer:
            t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
            raw = bytearray(t.raw_data)
            if raw:
                i = draw(st.integers(0, len(raw) - 1))
                raw[i:i + 4] = draw(st.binary(min_size=0, max_size=8))
            t.raw_data = bytes(raw)
        elif kind == "opset":
            m.opset_import[0].version = draw(st.integers(-1, 30))
        elif kind == "input_type" and g.input:
            g.input[0].type.tensor_type.elem_type = draw(st.sampled_from(_TYPES))
        elif kind == "input_dims" and g.input:
            dims = g.input[0].type.tensor_type.shape.dim
            if dims:
                d = dims[draw(st.integers(0, len(dims) - 1))]
                choice = draw(st.one_of(st.integers(-1, 6), st.just(2**40), st.just("N")))
                if isinstance(choice, str):
                    d.dim_param = choice
                else:
                    d.dim_value = choice
        elif kind == "dup_node" and nodes:
            g.node.append(g.node[k])
        elif kind == "drop_output" and g.output:
            del g.output[0]
        elif kind == "ir_version":
            m.ir_version = draw(st.integers(0, 12))
        elif kind == "domain" and nodes:
            g.node[k].domain = draw(st.sampled_from(["", "ai.onnx", "com.example", "ai.onnx.ml"]))
    return m


@st.composite
def byte_mutants(draw) -> bytes:
    data = bytearray(SEED_BYTES[draw(st.integers(0, len(SEEDS) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "delete", "insert", "truncate"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[i:i + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            data = data[:i]
    return bytes(data)


# ------------------------------------------------------------------------------- one case
class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


class Tally:
    """Outcomes of the fuzz cases: error types, survivors and untyped failures."""

    def __init__(self):
        self.outcomes: Counter = Counter()  # one count per case
        self.compared: Counter = Counter()  # what happened to the compiled survivors
        self.survivors: dict[bytes, onnx.ModelProto] = {}
        self.failures: list[str] = []

    def case(self, model, path=None) -> None:
        from max.graph.graph import Module

        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(CASE_LIMIT_S)
        try:
            proto, source = load_model(path if path is not None else model)
            p = prepare(proto, source)
            lower_graph(p, onnx2max.compiler.resolve_device("cpu").ref, "g", "g_", module=Module())
        except Onnx2MaxError as e:
            self.outcomes[type(e).__name__] += 1
        except _Hang:
            self.outcomes["hang"] += 1
            self.failures.append(f"hang: no outcome in {CASE_LIMIT_S} s")
        except Exception:  # untyped: a bug
            self.outcomes["untyped error"] += 1
            self.failures.append(traceback.format_exc(limit=6))
        else:
            self.outcomes["lowered"] += 1
            self.survivors.setdefault(proto.SerializeToString(deterministic=True), proto)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)

    def report(self, title: str) -> None:
        total = sum(self.outcomes.values())
        print(f"\n{title}: {total} cases; "
              + ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))
              + f"; distinct lowered models: {len(self.survivors)}, of which compiled: "
              + (", ".join(f"{k}: {v}" for k, v in sorted(self.compared.items())) or "none")
              + f"; failures: {len(self.failures)}")
        assert not self.failures, "\n\n".join(self.failures[:5])


def compile_and_compare(tallies: list[Tally], cache_dir) -> None:
    """Compile up to MAX_COMPILED distinct survivors of each tally, all in one MAX compile;
    compare each with onnxruntime and record the outcome in its own tally."""
    import onnxruntime as ort

    from conftest import assert_matches

    pairs = [(t, m) for t in tallies for m in list(t.survivors.values())[:MAX_COMPILED]]
    models = [m for _, m in pairs]
    if not models:
        return
    try:
        compiled = onnx2max.from_onnx_many(models, cache_dir=cache_dir, progress=False)
    except CompileError:
        # one survivor MAX cannot compile: compile one at a time to find it
        compiled = []
        for tally, m in pairs:
            try:
                compiled.append(onnx2max.from_onnx(m, cache_dir=cache_dir, progress=False))
            except Onnx2MaxError as e:
                tally.compared[f"{type(e).__name__} at compile"] += 1
                compiled.append(None)
    rng = np.random.default_rng(0)
    for (tally, proto), cm in zip(pairs, compiled):
        if cm is None:
            continue
        feeds = {}
        for s in cm.inputs:
            shape = tuple(d if isinstance(d, int) else 2 for d in s.shape)  # symbolic dims: 2
            if s.dtype.kind == "f":
                feeds[s.name] = rng.standard_normal(shape).astype(s.dtype)
            elif s.dtype.kind == "b":
                feeds[s.name] = rng.integers(0, 2, shape).astype(bool)
            else:
                feeds[s.name] = rng.integers(0, 3, shape).astype(s.dtype)
        reference = "onnxruntime"
        try:
            sess = ort.InferenceSession(proto.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
            want = sess.run(None, feeds)
        except Exception as e:
            # onnxruntime lacks some old opsets (Gemm-1, Add-1): onnx's reference
            # evaluator is the reference then
            try:
                want = ReferenceEvaluator(proto).run(None, feeds)
                reference = "onnx's reference evaluator"
            except Exception:
                # neither implements it (ancient opsets such as Gemm-1): nothing to compare
                # with; counted and printed, not judged
                tally.compared["compiled, no reference implements it"] += 1
                continue
        got = cm.run(None, feeds)
        before = len(tally.failures)
        for k, (g, w) in enumerate(zip(got, want)):
            try:
                if w.dtype.kind == "f":
                    np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-3, equal_nan=True)
                    assert g.dtype == w.dtype and g.shape == w.shape
                else:
                    assert_matches(g, w, f"output {k}")
            except AssertionError as e:
                tally.failures.append(f"output {k} differs from {reference}: {e}\n"
                                     f"{onnx.helper.printable_graph(proto.graph)}")
        if len(tally.failures) == before:
            tally.compared[f"compiled, matched {reference}"] += 1


def _settings():
    return settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
                    suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> dict[str, Tally]:
    """Both strategies' cases, then the survivors of both compiled in one MAX compile."""
    structural, byte = Tally(), Tally()

    @_settings()
    @given(structural_mutants())
    def run_structural(m):
        structural.case(m)

    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "mutant.onnx"

    @_settings()
    @given(byte_mutants())
    def run_bytes(data):
        path.write_bytes(data)
        byte.case(None, path=path)

    run_structural()
    run_bytes()
    compile_and_compare([structural, byte], folder / "cache")
    return {"structural": structural, "byte": byte}


def test_fuzz_structural_mutations(fuzzed):
    tally = fuzzed["structural"]
    tally.report("structural mutations")
    assert sum(tally.outcomes.values()) >= min(EXAMPLES, 100)


def test_fuzz_byte_mutations(fuzzed):
    tally = fuzzed["byte"]
    tally.report("byte mutations")
    assert sum(tally.outcomes.values()) >= min(EXAMPLES, 100)
