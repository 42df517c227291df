"""Small ONNX models, one per op form, for the op tests.

Each :class:`Case` is a model plus its inputs. The test suite converts whole groups of cases
with one ``from_onnx_many`` call (one MAX compile per group) and compares every output with
onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(1234)


@dataclass
class Case:
    id: str
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray] = field(default_factory=dict)
    #: "onnxruntime", "onnx" (onnx's ReferenceEvaluator) for types onnxruntime's numpy
    #: interface does not take (bfloat16, 8-bit floats), or "onnxruntime-float32" (float16
    #: tensors made float32 for onnxruntime, its outputs rounded to float16 once)
    reference: str = "onnxruntime"


def f32(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def i64(*values):
    return np.array(values, dtype=np.int64)


def make_model(nodes, inputs: dict, consts: dict | None = None, outputs=None, opset=17,
               ir_version=None) -> tuple[onnx.ModelProto, dict]:
    """A model of ``nodes`` with runtime ``inputs`` and initializers ``consts``.

    Output types and shapes come from ONNX shape inference.
    """
    consts = consts or {}
    outputs = outputs or [o for o in nodes[-1].output if o]
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    opsets = [helper.make_opsetid("", opset)]
    g0 = helper.make_graph(nodes, "case", vis,
                           [helper.make_empty_tensor_value_info(o) for o in outputs], initializer=inits)
    m0 = helper.make_model(g0, opset_imports=opsets)
    inferred = onnx.shape_inference.infer_shapes(m0, strict_mode=True, data_prop=True)
    outs = list(inferred.graph.output)
    if any(not o.type.tensor_type.HasField("shape") for o in outs):
        from onnx.reference import ReferenceEvaluator

        res = ReferenceEvaluator(m0).run(None, inputs)
        outs = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(np.asarray(r).dtype),
                                              np.asarray(r).shape) for o, r in zip(outputs, res)]
    g = helper.make_graph(nodes, "case", vis, outs, initializer=inits)
    kw = {"ir_version": ir_version} if ir_version else {}
    m = helper.make_model(g, opset_imports=opsets, **kw)
    if ir_version is None:
        m.ir_version = min(m.ir_version, 10)
    onnx.checker.check_model(m)
    return m, inputs


def node(cid, op, ins, attrs=None, opset=17, consts=(), n_out=1, outputs_used=None):
    """One-node case. ``ins`` is a list of arrays (None = absent optional input); the indices in
    ``consts`` become initializers, the rest graph inputs."""
    names, feeds, init = [], {}, {}
    for i, a in enumerate(ins):
        if a is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        (init if i in consts else feeds)[name] = a
    outs = [f"out{k}" for k in range(n_out)]
    if outputs_used is not None:
        outs = [o if k in outputs_used else "" for k, o in enumerate(outs)]
    n = helper.make_node(op, names, outs, **(attrs or {}))
    m, feeds = make_model([n], feeds, init, outputs=[o for o in outs if o], opset=opset)
    return Case(cid, m, feeds)


def graph(cid, nodes, inputs, consts=None, opset=17, outputs=None):
    m, feeds = make_model(nodes, inputs, consts, outputs=outputs, opset=opset)
    return Case(cid, m, feeds)


N = helper.make_node
X4 = (2, 3, 4, 5)


# ---------------------------------------------------------------- elementwise
def elementwise_cases() -> list[Case]:
    c = []
    x = f32(*X4)
    pos = f32(*X4, low=0.1, high=3.0)
    away = np.where(np.abs(x) < 0.2, 0.5, x).astype(np.float32)
    for op, a in [("Relu", x), ("Sigmoid", x), ("Tanh", x), ("Exp", x), ("Log", pos),
                  ("Sqrt", pos), ("Reciprocal", away), ("Neg", x), ("Abs", x), ("Erf", x),
                  ("Floor", x * 3), ("Ceil", x * 3), ("HardSwish", x * 3), ("Identity", x)]:
        c.append(node(op, op, [a]))
    c.append(node("LeakyRelu-default", "LeakyRelu", [x]))
    c.append(node("LeakyRelu-alpha", "LeakyRelu", [x], {"alpha": 0.3}))
    c.append(node("HardSigmoid-default", "HardSigmoid", [x * 4]))
    c.append(node("HardSigmoid-alpha-beta", "HardSigmoid", [x * 4], {"alpha": 0.5, "beta": 0.25}))
    c.append(node("Gelu-none", "Gelu", [x], opset=20))
    c.append(node("Gelu-tanh", "Gelu", [x], {"approximate": "tanh"}, opset=20))
    c.append(node("Clip-v6-attrs", "Clip", [x], {"min": -0.5, "max": 0.7}, opset=6))
    c.append(node("Clip-v6-default", "Clip", [x], opset=6))
    c.append(node("Clip-v11-min", "Clip", [x, np.array(-0.5, np.float32)], opset=11, consts=(1,)))
    c.append(node("Clip-v11-max", "Clip", [x, None, np.array(0.3, np.float32)], opset=11, consts=(2,)))
    c.append(node("Clip-v13-both-runtime", "Clip", [x, np.array(-1.0, np.float32), np.array(0.5, np.float32)], opset=13))
    c.append(node("Clip-v13-none", "Clip", [x], opset=13))
    c.append(node("Clip-int64", "Clip", [i64(-5, 0, 3, 9), i64(-2), i64(4)], opset=13, consts=(1, 2)))
    y45 = f32(4, 5)
    c.append(node("Add-broadcast", "Add", [x, y45]))
    c.append(node("Sub-broadcast-const", "Sub", [x, f32(3, 1, 1)], consts=(1,)))
    c.append(node("Mul-scalar-const", "Mul", [x, np.array(2.5, np.float32)], consts=(1,)))
    c.append(node("Div-broadcast", "Div", [x, np.where(np.abs(y45) < 0.2, 1.0, y45).astype(np.float32)]))
    c.append(node("Div-int64-trunc", "Div", [i64(-7, 7, -8, 9, 0, -1), i64(2, -2, 3, 4, 5, 3)]))
    c.append(node("Div-int32", "Div", [np.array([-7, 7, 10], np.int32), np.array([2, 2, -3], np.int32)]))
    c.append(node("Add-int64", "Add", [i64(1, 2, 3), i64(10)], consts=(1,)))
    c.append(node("Pow-square-const", "Pow", [x, np.array(2.0, np.float32)], consts=(1,)))
    c.append(node("Pow-sqrt-const", "Pow", [pos, np.array(0.5, np.float32)], consts=(1,)))
    c.append(node("Pow-runtime", "Pow", [pos, f32(4, 5)]))
    c.append(node("Pow-int-exponent", "Pow", [x, i64(3)], consts=(1,)))
    c.append(node("Equal-float", "Equal", [np.round(x), np.round(f32(4, 5))]))
    c.append(node("Equal-int", "Equal", [i64(1, 2, 3, 4), i64(1, 0, 3, 0)]))
    c.append(node("Less", "Less", [x, y45]))
    c.append(node("Greater", "Greater", [x, np.array(0.1, np.float32)], consts=(1,)))
    c.append(node("Less-int", "Less", [i64(1, 5, 3), i64(2, 2, 3)]))
    b1 = RNG.random(X4) > 0.5
    b2 = RNG.random((4, 5)) > 0.5
    c.append(node("Not", "Not", [b1]))
    c.append(node("And", "And", [b1, b2]))
    c.append(node("Or", "Or", [b1, b2]))
    c.append(node("Where-broadcast", "Where", [b2, x, np.array(0.0, np.float32)], consts=(2,)))
    c.append(node("Sum-3", "Sum", [x, y45, f32(5)]))
    c.append(node("Sum-1", "Sum", [x]))
    c.append(node("Min-2", "Min", [x, y45]))
    c.append(node("Max-3", "Max", [x, y45, f32(1, 1, 1, 5)]))
    c.append(node("Dropout-v12-mask", "Dropout", [x], opset=12, n_out=2))
    c.append(node("Dropout-v7", "Dropout", [x], opset=7))
    c.append(node("Dropout-v13-ratio", "Dropout", [x, np.array(0.3, np.float32), np.array(False)],
                  opset=13, consts=(1, 2)))
    # inference (training_mode false) with the ratio fed at run time: the ratio is never needed
    c.append(node("Dropout-v13-ratio-input", "Dropout", [x, np.array(0.3, np.float32), np.array(False)],
                  opset=13, consts=(2,)))
    # training mode with ratio 0 drops nothing: the output is the input, the mask all true
    c.append(node("Dropout-training-ratio0", "Dropout", [x, np.array(0.0, np.float32), np.array(True)],
                  opset=13, consts=(1, 2), n_out=2))
    return c


# ---------------------------------------------------------------- matmul
def matmul_cases() -> list[Case]:
    c = []
    c.append(node("MatMul-2d", "MatMul", [f32(3, 4), f32(4, 5)]))
    c.append(node("MatMul-batch-broadcast", "MatMul", [f32(2, 1, 3, 4), f32(3, 4, 5)]))
    c.append(node("MatMul-const-weight", "MatMul", [f32(2, 3, 4), f32(4, 6)], consts=(1,)))
    c.append(node("MatMul-1d-left", "MatMul", [f32(4), f32(2, 4, 5)]))
    c.append(node("MatMul-1d-right", "MatMul", [f32(2, 3, 4), f32(4)]))
    c.append(node("MatMul-1d-1d", "MatMul", [f32(4), f32(4)]))
    a, b = f32(3, 4), f32(4, 5)
    c.append(node("Gemm-bias", "Gemm", [a, b, f32(5)], consts=(1, 2)))
    c.append(node("Gemm-transA", "Gemm", [f32(4, 3), b, f32(5)], {"transA": 1}, consts=(1, 2)))
    c.append(node("Gemm-transB", "Gemm", [a, f32(5, 4), f32(5)], {"transB": 1}, consts=(1, 2)))
    c.append(node("Gemm-alpha-beta", "Gemm", [a, b, f32(3, 5)], {"alpha": 0.5, "beta": 2.0}))
    c.append(node("Gemm-C-scalar", "Gemm", [a, b, np.array(1.5, np.float32)], consts=(2,)))
    c.append(node("Gemm-C-column", "Gemm", [a, b, f32(3, 1)], {"beta": -1.0}))
    c.append(node("Gemm-no-C", "Gemm", [f32(4, 3), f32(5, 4)], {"transA": 1, "transB": 1}, opset=11))
    c.append(node("Gemm-v9-both-trans", "Gemm", [f32(4, 3), f32(5, 4), f32(1, 5)],
                  {"transA": 1, "transB": 1, "alpha": 2.0}, opset=9))
    c.append(causal_attention_case())
    return c


# ---------------------------------------------------------------- nn
def nn_cases() -> list[Case]:
    c = []
    x = f32(2, 4, 7, 7)
    w = f32(6, 4, 3, 3)
    bias = f32(6)
    c.append(node("Conv-basic-bias", "Conv", [x, w, bias], consts=(1, 2)))
    c.append(node("Conv-stride-pads", "Conv", [x, w], {"strides": [2, 2], "pads": [1, 1, 1, 1]}, consts=(1,)))
    c.append(node("Conv-dilation", "Conv", [x, w, bias], {"dilations": [2, 2], "pads": [2, 2, 2, 2]}, consts=(1, 2)))
    c.append(node("Conv-groups", "Conv", [x, f32(6, 2, 3, 3), bias], {"group": 2, "pads": [1, 1, 1, 1]}, consts=(1, 2)))
    c.append(node("Conv-depthwise", "Conv", [x, f32(4, 1, 3, 3)], {"group": 4, "pads": [1, 1, 1, 1]}, consts=(1,)))
    c.append(node("Conv-same-upper-s2", "Conv", [x, w], {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, consts=(1,)))
    c.append(node("Conv-same-lower", "Conv", [x, f32(6, 4, 2, 2)], {"auto_pad": "SAME_LOWER"}, consts=(1,)))
    c.append(node("Conv-valid", "Conv", [x, w], {"auto_pad": "VALID", "strides": [2, 1]}, consts=(1,)))
    c.append(node("Conv-asym-pads", "Conv", [x, w, bias], {"pads": [0, 1, 2, 0]}, consts=(1, 2)))
    c.append(node("Conv-1x1-runtime-weight", "Conv", [x, f32(5, 4, 1, 1)]))
    # 1x1 convolutions with an initializer filter lower as MatMul (lower.pointwise_matmul)
    c.append(node("Conv-pointwise-bias", "Conv", [x, f32(6, 4, 1, 1), bias], consts=(1, 2)))
    c.append(node("Conv-pointwise-stride2", "Conv", [x, f32(5, 4, 1, 1)], {"strides": [2, 2]}, consts=(1,)))
    c.append(node("Conv-pointwise-stride-2x1-dilation", "Conv", [x, f32(5, 4, 1, 1), f32(5)],
                  {"strides": [2, 1], "dilations": [3, 3]}, consts=(1, 2)))
    c.append(node("Conv-pointwise-pads", "Conv", [x, f32(5, 4, 1, 1)], {"pads": [1, 0, 0, 1]}, consts=(1,)))
    c.append(node("Conv-kernel-rect", "Conv", [x, f32(3, 4, 1, 3)], {"kernel_shape": [1, 3], "pads": [0, 1, 0, 1]}, consts=(1,)))
    x1 = f32(2, 4, 9)
    c.append(node("Conv1d-stride-pads", "Conv", [x1, f32(5, 4, 3), f32(5)], {"strides": [2], "pads": [1, 2]}, consts=(1, 2)))
    c.append(node("Conv1d-same-upper-stride", "Conv", [x1, f32(5, 4, 3)], {"auto_pad": "SAME_UPPER", "strides": [2]}, consts=(1,)))
    c.append(node("Conv1d-depthwise", "Conv", [x1, f32(4, 1, 3)], {"group": 4}, consts=(1,)))
    c.append(node("Conv1d-pointwise-stride", "Conv", [x1, f32(5, 4, 1), f32(5)], {"strides": [2]}, consts=(1, 2)))
    # pooling
    c.append(node("MaxPool-k3s2p1", "MaxPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}))
    c.append(node("MaxPool-ceil", "MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}))
    c.append(node("MaxPool-dilation", "MaxPool", [x], {"kernel_shape": [2, 2], "dilations": [2, 2]}, opset=12))
    c.append(node("MaxPool-asym-pads", "MaxPool", [x], {"kernel_shape": [3, 2], "pads": [0, 1, 2, 0]}))
    c.append(node("MaxPool-same-upper", "MaxPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}))
    c.append(node("MaxPool-v8", "MaxPool", [x], {"kernel_shape": [2, 2]}, opset=8))
    # storage_order lays out the Indices output only; without it, Y is as for the default
    c.append(node("MaxPool-storage-order-Y-only", "MaxPool", [x], {"kernel_shape": [2, 2], "storage_order": 1}, opset=12))
    c.append(node("MaxPool1d", "MaxPool", [x1], {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}))
    c.append(node("AveragePool-exclude-pad", "AveragePool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}))
    c.append(node("AveragePool-include-pad", "AveragePool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}))
    c.append(node("AveragePool-ceil-exclude", "AveragePool", [x], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}))
    c.append(node("AveragePool-ceil-include", "AveragePool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1}))
    c.append(node("AveragePool-asym-pads", "AveragePool", [x], {"kernel_shape": [2, 3], "pads": [1, 0, 0, 2]}))
    c.append(node("AveragePool-same-lower", "AveragePool", [x], {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}))
    c.append(node("AveragePool-plain", "AveragePool", [x], {"kernel_shape": [7, 7]}))
    c.append(node("AveragePool1d", "AveragePool", [x1], {"kernel_shape": [2], "strides": [2], "pads": [0, 1]}))
    c.append(node("GlobalAveragePool", "GlobalAveragePool", [x]))
    c.append(node("GlobalMaxPool", "GlobalMaxPool", [x]))
    c.append(node("GlobalAveragePool-1d", "GlobalAveragePool", [x1]))
    # conv chains: exercise the channels-last path through BN, Relu, Add, Concat, pools, LRN
    w1, w2 = f32(4, 4, 3, 3), f32(4, 4, 1, 1)
    bn = [f32(4, low=0.5, high=1.5), f32(4), f32(4), f32(4, low=0.5, high=2.0)]
    c.append(graph("Chain-conv-bn-relu-add-concat-gap", [
        N("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        N("BatchNormalization", ["c1", "s", "b", "m", "v"], ["n1"], epsilon=1e-3),
        N("Relu", ["n1"], ["r1"]),
        N("Conv", ["r1", "w2"], ["c2"]),
        N("Add", ["c2", "r1"], ["a"]),
        N("Concat", ["a", "r1"], ["cat"], axis=1),
        N("MaxPool", ["cat"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        N("GlobalAveragePool", ["p"], ["y"]),
    ], {"x": x}, {"w1": w1, "w2": w2, "s": bn[0], "b": bn[1], "m": bn[2], "v": bn[3]}))
    c.append(graph("Chain-conv-lrn-pool-flatten", [
        N("Conv", ["x", "w1"], ["c1"]),
        N("Relu", ["c1"], ["r1"]),
        N("LRN", ["r1"], ["l"], size=3, alpha=1e-2, beta=0.75, bias=2.0),
        N("AveragePool", ["l"], ["p"], kernel_shape=[2, 2], strides=[1, 1]),
        N("Flatten", ["p"], ["y"]),
    ], {"x": x}, {"w1": w1}))
    # normalizations
    c.append(node("BatchNormalization-v9", "BatchNormalization", [x, *bn], {"epsilon": 1e-4}, opset=9, consts=(1, 2, 3, 4)))
    c.append(node("BatchNormalization-v15", "BatchNormalization", [x, *bn], opset=15, consts=(1, 2, 3, 4)))
    c.append(node("BatchNormalization-rank2", "BatchNormalization", [f32(3, 4), *bn], opset=15, consts=(1, 2, 3, 4)))
    c.append(node("LRN-size3", "LRN", [x], {"size": 3}))
    c.append(node("LRN-size5-params", "LRN", [x], {"size": 5, "alpha": 0.1, "beta": 0.5, "bias": 1.5}))
    xs = f32(2, 3, 8)
    c.append(node("LayerNormalization-last", "LayerNormalization", [xs, f32(8), f32(8)], {"epsilon": 1e-5}, consts=(1, 2)))
    c.append(node("LayerNormalization-no-bias", "LayerNormalization", [xs, f32(8)], consts=(1,)))
    c.append(node("LayerNormalization-axis1", "LayerNormalization", [xs, f32(3, 8), f32(3, 8)], {"axis": 1}, consts=(1, 2)))
    c.append(node("LayerNormalization-scale-broadcast", "LayerNormalization", [xs, f32(1, 8)], {"axis": -2}, consts=(1,)))
    c.append(node("LayerNormalization-stats", "LayerNormalization", [xs, f32(8), f32(8)], consts=(1, 2), n_out=3))
    # softmax
    x3 = f32(2, 3, 4)
    c.append(node("Softmax-v11-axis1-flatten", "Softmax", [f32(*X4)], {"axis": 1}, opset=11))
    c.append(node("Softmax-v11-default", "Softmax", [x3], opset=11))
    c.append(node("Softmax-v13-default", "Softmax", [x3], opset=13))
    c.append(node("Softmax-v13-axis-neg2", "Softmax", [x3], {"axis": -2}, opset=13))
    c.append(node("LogSoftmax-v11-axis2", "LogSoftmax", [x3], {"axis": 2}, opset=11))
    c.append(node("LogSoftmax-v13-axis0", "LogSoftmax", [x3], {"axis": 0}, opset=13))
    return c


# ---------------------------------------------------------------- shape and reduce
def shape_cases() -> list[Case]:
    c = []
    x = f32(*X4)
    c.append(node("Reshape-zero-minus1", "Reshape", [x, i64(0, -1, 5)], consts=(1,)))
    c.append(node("Reshape-v14-allowzero", "Reshape", [x, i64(6, 20)], {"allowzero": 1}, opset=14, consts=(1,)))
    c.append(node("Flatten-axis0", "Flatten", [x], {"axis": 0}))
    c.append(node("Flatten-axis2", "Flatten", [x], {"axis": 2}))
    c.append(node("Flatten-axis-neg1", "Flatten", [x], {"axis": -1}))
    c.append(node("Transpose-default", "Transpose", [x]))
    c.append(node("Transpose-perm", "Transpose", [x], {"perm": [0, 2, 3, 1]}))
    s = f32(2, 1, 4, 1)
    c.append(node("Squeeze-v11-attr", "Squeeze", [s], {"axes": [1]}, opset=11))
    c.append(node("Squeeze-v13-input", "Squeeze", [s, i64(-1, 1)], opset=13, consts=(1,)))
    c.append(node("Squeeze-all", "Squeeze", [s], opset=13))
    c.append(node("Unsqueeze-v11-attr", "Unsqueeze", [f32(3, 4)], {"axes": [0, 3]}, opset=11))
    c.append(node("Unsqueeze-v13-neg", "Unsqueeze", [f32(3, 4), i64(-1, 1)], opset=13, consts=(1,)))
    c.append(node("Concat-axis1", "Concat", [x, f32(2, 2, 4, 5)], {"axis": 1}))
    c.append(node("Concat-axis-neg1-3", "Concat", [f32(3, 2), f32(3, 1), f32(3, 4)], {"axis": -1}))
    c.append(node("Split-v11-attr", "Split", [x], {"axis": 3, "split": [2, 3]}, opset=11, n_out=2))
    c.append(node("Split-v13-input", "Split", [x, i64(1, 3)], {"axis": 2}, opset=13, consts=(1,), n_out=2))
    c.append(node("Split-v13-equal", "Split", [f32(6, 2)], opset=13, n_out=3))
    c.append(node("Split-v18-num-outputs", "Split", [f32(2, 7)], {"axis": 1, "num_outputs": 3}, opset=18, n_out=3))
    c.append(node("Slice-v9-attrs", "Slice", [x], {"starts": [1, -3], "ends": [1000, -1], "axes": [1, 3]}, opset=9))
    c.append(node("Slice-v13-steps", "Slice", [x, i64(0, 1), i64(4, 5), i64(2, 3), i64(2, 2)], opset=13, consts=(1, 2, 3, 4)))
    c.append(node("Slice-v13-negative-step", "Slice", [x, i64(-1, 3), i64(-1000, 0), i64(3, 2), i64(-1, -2)], opset=13, consts=(1, 2, 3, 4)))
    c.append(node("Slice-v13-sentinels", "Slice", [x, i64(1), i64(np.iinfo(np.int64).max)], opset=13, consts=(1, 2)))
    c.append(node("Slice-v13-reverse-all", "Slice", [f32(6), i64(np.iinfo(np.int64).max), i64(np.iinfo(np.int64).min), i64(0), i64(-1)], opset=13, consts=(1, 2, 3, 4)))
    table = f32(10, 6)
    c.append(node("Gather-axis0-negative", "Gather", [table, i64(0, -1, 3, -10)], consts=(0,)))
    c.append(node("Gather-axis1-2d", "Gather", [x, np.array([[0, 2], [-1, 1]], np.int64)], {"axis": 1}))
    c.append(node("Gather-scalar-index", "Gather", [x, np.array(-2, np.int64)], {"axis": 2}, consts=(1,)))
    c.append(node("Gather-int32-indices", "Gather", [table, np.array([[1, 2, 3]], np.int32)], consts=(0,)))
    c.append(node("Cast-float-int32", "Cast", [x * 3], {"to": TensorProto.INT32}))
    c.append(node("Cast-int-float", "Cast", [i64(-3, 0, 7)], {"to": TensorProto.FLOAT}))
    c.append(node("Cast-float-bool", "Cast", [np.array([0.0, 1.5, -2.0, 0.0], np.float32)], {"to": TensorProto.BOOL}))
    c.append(node("Cast-bool-float", "Cast", [np.array([True, False, True])], {"to": TensorProto.FLOAT}))
    c.append(node("Cast-float-double", "Cast", [x], {"to": TensorProto.DOUBLE}))
    c.append(node("CastLike", "CastLike", [x * 3, i64(0)], opset=15, consts=(1,)))
    c.append(node("Expand-bidirectional", "Expand", [f32(3, 1), i64(2, 1, 4)], consts=(1,)))
    c.append(node("Expand-same", "Expand", [f32(3, 4), i64(3, 4)], consts=(1,)))
    c.append(node("Shape-v15-start-end", "Shape", [x], {"start": 1, "end": -1}, opset=15))
    c.append(node("Size", "Size", [x]))
    c.append(graph("Constant-feeds-Add", [
        N("Constant", [], ["k"], value=numpy_helper.from_array(f32(4, 5), "k")),
        N("Constant", [], ["k2"], value_float=0.5),
        N("Add", ["x", "k"], ["a"]),
        N("Mul", ["a", "k2"], ["y"]),
    ], {"x": x}))
    c.append(graph("ConstantOfShape-from-Shape", [
        N("Shape", ["x"], ["s"]),
        N("ConstantOfShape", ["s"], ["z"], value=numpy_helper.from_array(np.array([1.5], np.float32))),
        N("Add", ["x", "z"], ["y"]),
    ], {"x": x}))
    c.append(graph("Range-folded", [
        N("Range", ["a", "b", "d"], ["r"]),
        N("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
        N("Add", ["x", "rf"], ["y"]),
    ], {"x": x}, {"a": np.array(1, np.int64), "b": np.array(11, np.int64), "d": np.array(2, np.int64)}))
    # the exporter pattern: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    c.append(graph("Exporter-shape-chain", [
        N("Shape", ["x"], ["s"]),
        N("Gather", ["s", "i0"], ["n"], axis=0),
        N("Unsqueeze", ["n", "ax"], ["nu"]),
        N("Concat", ["nu", "m1"], ["shape"], axis=0),
        N("Reshape", ["x", "shape"], ["y"]),
    ], {"x": x}, {"i0": np.array(0, np.int64), "ax": i64(0), "m1": i64(-1)}, opset=13))
    c.append(initializer_as_input_case())
    c += if_runtime_cases()
    # reductions
    c.append(node("ReduceMean-v13-attr", "ReduceMean", [x], {"axes": [1, 3]}, opset=13))
    c.append(node("ReduceMean-v13-keepdims0", "ReduceMean", [x], {"axes": [-1], "keepdims": 0}, opset=13))
    c.append(node("ReduceMean-v18-input", "ReduceMean", [x, i64(2)], opset=18, consts=(1,)))
    c.append(node("ReduceMean-all", "ReduceMean", [x], {"keepdims": 0}, opset=13))
    c.append(node("ReduceSum-v11-attr", "ReduceSum", [x], {"axes": [0, 2], "keepdims": 0}, opset=11))
    c.append(node("ReduceSum-v13-input", "ReduceSum", [x, i64(-2)], opset=13, consts=(1,)))
    c.append(node("ReduceSum-v13-noop", "ReduceSum", [x], {"noop_with_empty_axes": 1}, opset=13))
    c.append(node("ReduceSum-v13-all", "ReduceSum", [x], opset=13))
    c.append(node("ReduceSum-int64", "ReduceSum", [np.arange(12, dtype=np.int64).reshape(3, 4), i64(1)], opset=13, consts=(1,)))
    c.append(node("ReduceMax-v13-multi", "ReduceMax", [x], {"axes": [-1, 1], "keepdims": 0}, opset=13))
    c.append(node("ReduceMax-v18-input", "ReduceMax", [x, i64(0)], opset=18, consts=(1,)))
    c.append(node("ReduceMin", "ReduceMin", [x], {"axes": [2]}, opset=13))
    c.append(node("ReduceProd", "ReduceProd", [x], {"axes": [3]}, opset=13))
    c.append(node("ReduceL1", "ReduceL1", [x], {"axes": [1]}, opset=13))
    c.append(node("ReduceL2", "ReduceL2", [x], {"axes": [1]}, opset=13))
    c.append(node("ReduceSumSquare", "ReduceSumSquare", [x], {"axes": [3], "keepdims": 0}, opset=13))
    c.append(node("ReduceLogSum", "ReduceLogSum", [np.abs(x) + 0.1], {"axes": [2]}, opset=13))
    return c


def causal_attention_case() -> Case:
    """The attention block torch exports for a GPT decoder: bias Add -> Split -> heads ->
    scaled scores -> Where(causal mask, Constant -inf) -> Softmax -> MatMul. MAX 26.7 gave NaN
    here while the -inf was a graph constant (regression test)."""
    t, d, h = 8, 32, 2
    mask = ~np.tril(np.ones((t, t), bool))
    nodes = [
        N("Constant", [], ["ninf"], value=numpy_helper.from_array(np.array(-np.inf, np.float32))),
        N("Constant", [], ["scale"], value=numpy_helper.from_array(np.array(4.0, np.float32))),
        N("Add", ["bias", "x"], ["qkv"]),
        N("Split", ["qkv", "sizes"], ["q0", "k0", "v0"], axis=2),
        N("Reshape", ["q0", "heads"], ["q1"]), N("Transpose", ["q1"], ["q"], perm=[0, 2, 1, 3]),
        N("Reshape", ["k0", "heads"], ["k1"]), N("Transpose", ["k1"], ["kt"], perm=[0, 2, 3, 1]),
        N("Reshape", ["v0", "heads"], ["v1"]), N("Transpose", ["v1"], ["v"], perm=[0, 2, 1, 3]),
        N("MatMul", ["q", "kt"], ["s0"]),
        N("Div", ["s0", "scale"], ["s1"]),
        N("Where", ["mask", "ninf", "s1"], ["s2"]),
        N("Softmax", ["s2"], ["p"], axis=-1),
        N("MatMul", ["p", "v"], ["y"]),
    ]
    consts = {"bias": f32(3 * d), "sizes": i64(d, d, d), "heads": i64(1, t, h, d // h), "mask": mask}
    return graph("Attention-causal-const-inf", nodes, {"x": f32(1, t, 3 * d)}, consts, opset=18)


def if_runtime_cases() -> list[Case]:
    """``If`` on a condition fed at run time (a 0-d bool input): MAX's conditional. The branches
    read an outer value and have different ops; one case per branch."""
    x = f32(2, 3)
    then_g = helper.make_graph([N("Relu", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])])
    else_g = helper.make_graph([N("Neg", ["x"], ["n"]), N("Add", ["n", "k"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])],
                               initializer=[numpy_helper.from_array(np.float32(0.5).reshape(()), "k")])
    out = []
    for value in (True, False):
        m, feeds = make_model([N("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
                              {"cond": np.array(value), "x": x}, opset=13)
        out.append(Case(f"If-runtime-{str(value).lower()}", m, feeds))
    return out


def initializer_as_input_case() -> Case:
    """IR >= 4: an initializer that is also a graph input is only a default (may be fed)."""
    x, b = f32(2, 3), f32(3)
    g = helper.make_graph(
        [N("Add", ["x", "b"], ["y"])], "case",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(b, "b")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m)
    return Case("Initializer-as-input-default", m, {"x": x})


# ---------------------------------------------------------------- edge cases of real models
def edge_cases() -> list[Case]:
    """Faults of other importers rebuilt as one-node models (issue 10), with the values the
    operator text gives: NaN in Min/Max, Reduce* no-ops, diagonals in Einsum, and ops whose
    constant inputs the reference evaluator folds wrongly (now computed by MAX)."""
    c = []
    nan_col = np.array([[np.nan], [1], [20]], np.float32)
    c.append(node("Min-nan-broadcast-const", "Min", [nan_col, np.array([10], np.float32)], consts=(1,)))
    c.append(node("Max-nan-both-sides", "Max", [np.array([np.nan, 1, 5, -2], np.float32),
                                                  np.array([0, np.nan, 3, np.nan], np.float32)]))
    c.append(node("Min-int32-no-nan", "Min", [np.array([3, -1, 7], np.int32), np.array([2, 5, 7], np.int32)]))
    sq = np.array([[1, -2, 3], [4, 5, -6]], np.float32)
    empty = np.array([], np.int64)
    for op in ("ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSum", "ReduceMax"):
        c.append(node(f"{op}-noop-empty-axes", op, [sq, empty], {"noop_with_empty_axes": 1},
                      opset=18, consts=(1,)))
    c.append(node("ReduceLogSum-noop-empty-axes", "ReduceLogSum", [np.abs(sq), empty],
                  {"noop_with_empty_axes": 1}, opset=18, consts=(1,)))
    c.append(node("Einsum-diagonal-ii-i", "Einsum", [f32(3, 3)], {"equation": "ii->i"}))
    c.append(node("Einsum-diagonal-iij-ij", "Einsum", [f32(2, 2, 4)], {"equation": "iij->ij"}))
    c.append(node("Einsum-trace-ii", "Einsum", [f32(4, 4)], {"equation": "ii"}))
    c.append(node("Einsum-diagonal-and-contract", "Einsum", [f32(3, 3), f32(3, 5)], {"equation": "ii,ij->j"}))
    # two operands: one batched MatMul (onnx2max.ops.indexing._einsum_matmul)
    for cid, eq, shapes in [
            ("attention-scores", "bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
            ("attention-values", "bhqk,bkhd->bqhd", [(2, 3, 4, 6), (2, 6, 3, 5)]),
            ("transposed-output", "ij,jk->ki", [(3, 4), (4, 5)]),
            ("sum-own-index", "ij,kj->i", [(3, 4), (5, 4)]),
            ("broadcast-ellipsis", "...ij,...jk->...ik", [(1, 4, 5), (3, 5, 2)]),
            ("outer", "i,j->ij", [(3,), (4,)]),
            ("ellipsis", "...ij,jk->...ik", [(2, 3, 4), (4, 5)]),
            ("dot", "i,i->", [(6,), (6,)])]:
        c.append(node(f"Einsum-matmul-{cid}", "Einsum", [f32(*sh) for sh in shapes], {"equation": eq}))
    c.append(node("Einsum-int64-general-path", "Einsum", [np.arange(6, dtype=np.int64).reshape(2, 3),
                                                          np.arange(12, dtype=np.int64).reshape(3, 4)],
                  {"equation": "ij,jk->ik"}))
    # all inputs constant: the node used to be folded by the reference evaluator, wrongly
    c24 = (np.arange(24, dtype=np.float32) / 10).reshape(2, 3, 4)
    c.append(node("Softmax-v11-const-axis1", "Softmax", [c24], {"axis": 1}, opset=11, consts=(0,)))
    c.append(node("LogSoftmax-v11-const-axis1", "LogSoftmax", [c24], {"axis": 1}, opset=11, consts=(0,)))
    lp = np.array([[1, -1, 2], [3, -6, 0]], np.float32)
    c.append(node("LpNormalization-p1-const", "LpNormalization", [lp], {"p": 1, "axis": 1}, consts=(0,)))
    c.append(node("LRN-size5-const", "LRN", [f32(1, 6, 3, 3)],
                  {"size": 5, "alpha": 0.1, "beta": 0.5, "bias": 1.5}, consts=(0,)))
    c.append(node("Squeeze-v11-attr-const", "Squeeze", [f32(2, 1, 4, 1)], {"axes": [1]}, opset=11,
                  consts=(0,)))
    # ceil_mode: a window that would start inside the end padding is dropped (onnxruntime's
    # rule at every opset; ONNX shape inference before opset 22 keeps it)
    x5 = np.arange(5, dtype=np.float32).reshape(1, 1, 5) - 2.5
    ceil = {"kernel_shape": [2], "strides": [2], "pads": [1, 1], "ceil_mode": 1}
    c.append(node("MaxPool1d-ceil-pad-dropped-window", "MaxPool", [x5], ceil, opset=13))
    c.append(node("AveragePool1d-ceil-pad-dropped-window", "AveragePool", [x5], ceil, opset=13))
    c.append(node("AveragePool1d-ceil-pad-count-include", "AveragePool", [x5],
                  {**ceil, "count_include_pad": 1}, opset=18))
    c.append(node("MaxPool2d-ceil-pad-dropped-window", "MaxPool", [f32(1, 2, 5, 7)],
                  {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
                  opset=13))
    c.append(graph("MaxPool-ceil-chain-then-flatten", [
        N("MaxPool", ["x"], ["p"], **ceil), N("MaxPool", ["p"], ["q"], **ceil),
        N("Flatten", ["q"], ["y"])], {"x": x5}, opset=13))
    c.append(shapeless_output_case())
    # ConvTranspose with initializer filters (every segmentation decoder, GAN and U-Net)
    x3, w3 = f32(1, 1, 3, 3), f32(1, 1, 3, 3)
    for op_ in ([1, 1], [0, 0]):
        c.append(node(f"ConvTranspose-init-s2-p1-outpad{op_[0]}", "ConvTranspose", [x3, w3],
                      {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": op_}, consts=(1,)))
    x22 = np.arange(2, 6, dtype=np.float32).reshape(1, 1, 2, 2)
    w33 = np.arange(2, 11, dtype=np.float32).reshape(1, 1, 3, 3)
    c.append(node("ConvTranspose-init-same-upper", "ConvTranspose", [x22, w33],
                  {"auto_pad": "SAME_UPPER"}, consts=(1,)))
    c.append(node("ConvTranspose-init-groups-bias", "ConvTranspose", [f32(1, 4, 5, 5), f32(4, 3, 3, 3), f32(6)],
                  {"group": 2, "strides": [2, 2], "pads": [1, 0, 1, 0]}, consts=(1, 2)))
    c.append(node("ConvTranspose1d-init", "ConvTranspose", [f32(1, 2, 7), f32(2, 3, 4), f32(3)],
                  {"strides": [3], "output_padding": [2]}, consts=(1, 2)))
    # zero-size dims (detection models with no boxes)
    x0 = np.zeros((0, 8, 2), np.float32)
    for az in (0, 1):
        c.append(node(f"Reshape-zero-size-allowzero{az}", "Reshape", [x0, i64(0, 0, 4)],
                      {"allowzero": az}, opset=14, consts=(1,)))
    c.append(graph("zero-size-chain", [
        N("Relu", ["x"], ["r"]), N("Reshape", ["r", "s"], ["q"]), N("MatMul", ["q", "w"], ["m"]),
        N("Add", ["m", "b"], ["y"])], {"x": x0},
        {"s": i64(0, 8, 2), "w": f32(2, 3), "b": f32(3)}, opset=14))
    return c


def shapeless_output_case() -> Case:
    """A graph output whose tensor type has no shape field (older exporters): onnxruntime runs
    it, the ONNX checker rejects it; onnx2max takes its shape from shape inference."""
    x = f32(2, 3)
    g = helper.make_graph([N("Relu", ["x"], ["r"]), N("Add", ["r", "x"], ["y"])], "case",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return Case("output-without-shape", m, {"x": x})


# ---------------------------------------------------------------- recurrent
def _rnn_case(cid, kind, seq, direction="forward", *, batch=2, inp=3, hidden=5, lens=None,
              peepholes=False, layout=0, attrs=None, opset=17, initial=True):
    """A one-node RNN/GRU/LSTM with initializer weights, bias and (``initial``) initial states
    as graph inputs; ``lens`` (sequence_lens) as an initializer."""
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    dirs = 2 if direction == "bidirectional" else 1
    w = lambda *s: f32(*s, low=-0.6, high=0.6)  # noqa: E731  (weights that do not saturate)
    x = f32(batch, seq, inp) if layout else f32(seq, batch, inp)
    state = (lambda: f32(batch, dirs, hidden)) if layout else (lambda: f32(dirs, batch, hidden))
    ins = [x, w(dirs, gates * hidden, inp), w(dirs, gates * hidden, hidden), w(dirs, 2 * gates * hidden),
           None if lens is None else np.array(lens, np.int32), state() if initial else None,
           state() if initial and kind == "LSTM" else None,
           w(dirs, 3 * hidden) if peepholes else None]
    ins = ins[:8 if kind == "LSTM" else 6]
    while ins[-1] is None:
        ins.pop()
    a = {"hidden_size": hidden, "direction": direction, **(attrs or {})}
    if layout:
        a["layout"] = layout
    return node(cid, kind, ins, a, opset=opset, consts=(1, 2, 3, 4, 7), n_out=3 if kind == "LSTM" else 2)


def recurrent_cases() -> list[Case]:
    """RNN, GRU and LSTM at 1, 2 and 100 steps, both directions (one step is computed directly,
    longer sequences run as a MAX while loop). onnxruntime has no ``layout=1`` recurrences; the
    conformance sample's ``test_gru_batchwise`` covers it against the ONNX suite's outputs."""
    return [
        _rnn_case("LSTM-seq1", "LSTM", 1),
        _rnn_case("LSTM-seq2-reverse", "LSTM", 2, "reverse"),
        _rnn_case("LSTM-seq100", "LSTM", 100),
        _rnn_case("LSTM-seq100-bidirectional-peepholes", "LSTM", 100, "bidirectional", peepholes=True),
        _rnn_case("LSTM-seq7-bidirectional-lens", "LSTM", 7, "bidirectional", lens=[7, 3]),
        _rnn_case("LSTM-seq5-no-initial-state-input-forget-clip", "LSTM", 5, initial=False,
                  attrs={"input_forget": 1, "clip": 0.8}),
        _rnn_case("GRU-seq1-bidirectional", "GRU", 1, "bidirectional"),
        _rnn_case("GRU-seq2-reverse-linear-before-reset", "GRU", 2, "reverse",
                  attrs={"linear_before_reset": 1}),
        _rnn_case("GRU-seq100", "GRU", 100),
        _rnn_case("GRU-seq100-bidirectional-lens", "GRU", 100, "bidirectional", lens=[100, 37]),
        _rnn_case("RNN-seq1", "RNN", 1),
        _rnn_case("RNN-seq2-bidirectional-relu", "RNN", 2, "bidirectional",
                  attrs={"activations": ["Relu", "Tanh"]}),
        _rnn_case("RNN-seq100-reverse", "RNN", 100, "reverse"),
    ]


# ---------------------------------------------------------------- Loop as a MAX while loop
def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _loop_body(nodes, cond_out="cond_in", scan=None):
    """A Loop body over one carried float tensor ``x`` (2, 3): inputs ``i``, ``cond_in``,
    ``x``; outputs the condition, ``x_next`` and the optional scan output."""
    outs = [_vi(cond_out, TensorProto.BOOL, []), _vi("x_next", TensorProto.FLOAT, [2, 3])]
    if scan:
        outs.append(_vi(scan, TensorProto.FLOAT, [2, 3]))
    return helper.make_graph(nodes, "body", [_vi("i", TensorProto.INT64, []), _vi("cond_in", TensorProto.BOOL, []),
                                             _vi("x", TensorProto.FLOAT, [2, 3])], outs)


def loop_body_scan():
    """x_next = x * 0.5 + a (``a`` read from the outer graph); scan output x_next + i."""
    return _loop_body([N("Constant", [], ["half"], value=numpy_helper.from_array(np.float32(0.5))),
                       N("Mul", ["x", "half"], ["xh"]), N("Add", ["xh", "a"], ["x_next"]),
                       N("Cast", ["i"], ["fi"], to=TensorProto.FLOAT), N("Add", ["x_next", "fi"], ["s"])],
                      scan="s")


def loop_body_doubling(limit: float):
    """x_next = 2 x; the body's condition: sum(x_next) < ``limit`` (an early exit)."""
    return _loop_body([N("Constant", [], ["lim"], value=numpy_helper.from_array(np.float32(limit))),
                       N("Add", ["x", "x"], ["x_next"]), N("ReduceSum", ["x_next"], ["t"], keepdims=0),
                       N("Less", ["t", "lim"], ["c"])],
                      cond_out="c")


def _loop_model(inputs: dict, consts: dict, loop_inputs, body, outputs) -> onnx.ModelProto:
    """One Loop node with declared output types (``outputs``: ``{name: shape}``, float32):
    onnx's reference evaluator concatenates scan outputs instead of stacking them, so the
    shapes are not inferred from it."""
    g = helper.make_graph(
        [N("Loop", loop_inputs, list(outputs), body=body)], "case",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in inputs.items()],
        [_vi(k, TensorProto.FLOAT, shape) for k, shape in outputs.items()],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = min(m.ir_version, 10)
    onnx.checker.check_model(m, full_check=True)
    return m


def _scan_length_open(m: onnx.ModelProto) -> onnx.ModelProto:
    m.graph.output[1].type.tensor_type.shape.dim[0].dim_param = "n"
    return m


def loop_cases() -> list[Case]:
    """``Loop`` that prepare does not unroll, lowered as a MAX while loop: more than 64 trips
    with a carried value and a scan output (declared with its length, and left open), a trip
    count fed at run time, an early exit
    decided by the body, and a while loop on a condition input (no trip count)."""
    x, a = f32(2, 3, low=0.5, high=1.5), f32(2, 3)
    m100, true = np.array(100, np.int64), np.array(True)
    return [
        Case("Loop-100-trips-carried-scan-outer-value",
             _loop_model({"x": x, "a": a}, {"M": m100, "cond": true}, ["M", "cond", "x"],
                         loop_body_scan(), {"x_final": [2, 3], "scan": [100, 2, 3]}), {"x": x, "a": a}),
        # the scan output's length left open ("n"), as shape inference leaves it: the
        # per-iteration shape is enough (found by a fresh-venv trial)
        Case("Loop-scan-length-left-open", _scan_length_open(
             _loop_model({"x": x, "a": a}, {"M": m100, "cond": true}, ["M", "cond", "x"],
                         loop_body_scan(), {"x_final": [2, 3], "scan": [100, 2, 3]})), {"x": x, "a": a}),
        Case("Loop-runtime-trip-count",
             _loop_model({"M": np.array(7, np.int64), "x": x}, {}, ["M", "", "x"],
                         loop_body_doubling(1e30), {"x_final": [2, 3]}), {"M": np.array(7, np.int64), "x": x}),
        Case("Loop-early-exit-by-the-body",
             _loop_model({"x": x}, {"M": np.array(1000, np.int64), "cond": true}, ["M", "cond", "x"],
                         loop_body_doubling(100.0), {"x_final": [2, 3]}), {"x": x}),
        Case("Loop-while-condition-input",
             _loop_model({"cond": true, "x": x}, {}, ["", "cond", "x"],
                         loop_body_doubling(50.0), {"x_final": [2, 3]}), {"cond": true, "x": x}),
    ]


# ---------------------------------------------------------------- onnxruntime's own ops
def ms_node(cid, op, ins, attrs=None, consts=(), n_out=1, outputs_used=None, domain="com.microsoft",
            opset=17):
    """A one-node case of an onnxruntime contrib op (``com.microsoft``, or onnxruntime's ops in the
    ONNX domain): onnx's shape inference does not know them, so output types come from
    onnxruntime itself."""
    names, feeds, init = [], {}, {}
    for i, a in enumerate(ins):
        if a is None:
            names.append("")
            continue
        names.append(f"in{i}")
        (init if i in consts else feeds)[f"in{i}"] = a
    outs = [f"out{k}" if outputs_used is None or k in outputs_used else "" for k in range(n_out)]
    n = helper.make_node(op, names, outs, domain=domain, **(attrs or {}))
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in init.items()]
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]

    def model(outputs):
        g = helper.make_graph([n], cid, vis, outputs, initializer=inits)
        m = helper.make_model(g, opset_imports=opsets)
        m.ir_version = min(m.ir_version, 10)
        return m

    import onnxruntime as ort

    named = [o for o in outs if o]
    probe = model([helper.make_empty_tensor_value_info(o) for o in named])
    res = ort.InferenceSession(probe.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, feeds)
    return Case(cid, model([helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(r.dtype),
                                                          r.shape) for o, r in zip(named, res)]), feeds)


def _nbits_pack(q: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ``bits``-bit values along the last axis into bytes, low bits first."""
    per = 8 // bits
    q = q.reshape(*q.shape[:-1], q.shape[-1] // per, per).astype(np.uint32)
    return (q << (bits * np.arange(per, dtype=np.uint32))).sum(-1).astype(np.uint8)


def _matmul_nbits_case(cid, bits, with_zero, K=40, N=6, block=16, bias=False):
    blocks = (K + block - 1) // block
    q = RNG.integers(0, 1 << bits, size=(N, blocks, block))
    b = _nbits_pack(q, bits)
    scales = RNG.uniform(0.01, 0.1, size=(N * blocks,)).astype(np.float32)
    ins = [f32(3, K), b, scales]
    if with_zero:
        per = 8 // bits
        z = RNG.integers(0, 1 << bits, size=(N, -(-blocks // per) * per))
        ins.append(_nbits_pack(z, bits).reshape(-1))
    else:
        ins.append(None)
    if bias:
        ins += [None, f32(N)]
    return ms_node(cid, "MatMulNBits", ins, dict(K=K, N=N, bits=bits, block_size=block),
                   consts=range(1, len(ins)))


def _rope_caches(max_pos, half):
    ang = np.arange(max_pos).reshape(-1, 1) / (10000 ** (np.arange(half) / half))
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def contrib_cases() -> list[Case]:
    """onnxruntime's own ops, as its transformer optimizer and quantizer write them."""
    cos, sin = _rope_caches(8, 4)
    cos2, sin2 = _rope_caches(8, 2)
    pos = np.array([[0, 1, 2], [3, 5, 7]], np.int64)
    mask2 = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.int32)
    return [
        ms_node("ms_gelu", "Gelu", [f32(2, 3, 8)]),
        ms_node("ms_bias_gelu", "BiasGelu", [f32(2, 3, 8), f32(8)], consts=[1]),
        ms_node("ms_fast_gelu_bias", "FastGelu", [f32(2, 3, 8), f32(8)], consts=[1]),
        ms_node("ms_fast_gelu", "FastGelu", [f32(4, 8)]),
        ms_node("ms_quick_gelu", "QuickGelu", [f32(4, 8)], dict(alpha=1.5)),
        ms_node("ms_fused_gemm_leaky", "FusedGemm", [f32(3, 5), f32(4, 5), f32(4)],
                dict(transB=1, alpha=0.5, activation="LeakyRelu", activation_alpha=0.1), consts=[1, 2]),
        ms_node("ms_fused_gemm_relu", "FusedGemm", [f32(3, 5), f32(5, 4)],
                dict(activation="Relu"), consts=[1]),
        ms_node("ms_fused_conv_relu", "FusedConv", [f32(1, 3, 6, 6), f32(4, 3, 3, 3), f32(4)],
                dict(pads=[1, 1, 1, 1], activation="Relu"), consts=[1, 2]),
        ms_node("ms_fused_conv_sum_clip", "FusedConv",
                [f32(1, 3, 6, 6), f32(4, 3, 3, 3), f32(4), f32(1, 4, 4, 4)],
                dict(activation="Clip", activation_params=[-0.5, 0.5]), consts=[1, 2]),
        ms_node("ms_skip_ln", "SkipLayerNormalization",
                [f32(2, 3, 8), f32(2, 3, 8), f32(8), f32(8), f32(8)], dict(epsilon=1e-5),
                consts=[2, 3, 4], n_out=4, outputs_used=[0, 3]),
        ms_node("ms_skip_ln_plain", "SkipLayerNormalization", [f32(2, 3, 8), f32(2, 3, 8), f32(8)],
                consts=[2]),
        ms_node("ms_skip_simplified_ln", "SkipSimplifiedLayerNormalization",
                [f32(2, 3, 8), f32(2, 3, 8), f32(8), f32(8)], dict(epsilon=1e-6), consts=[2, 3],
                n_out=4, outputs_used=[0, 3]),
        ms_node("ms_simplified_ln", "SimplifiedLayerNormalization", [f32(2, 3, 8), f32(8)],
                dict(epsilon=1e-6), consts=[1], domain=""),
        ms_node("ms_layer_norm_opset13", "LayerNormalization", [f32(2, 3, 8), f32(8), f32(8)],
                dict(epsilon=1e-5), consts=[1, 2], domain="", opset=13),
        ms_node("ms_attention_mask2d", "Attention",
                [f32(2, 4, 16), f32(16, 48, low=-0.5, high=0.5), f32(48), mask2],
                dict(num_heads=2), consts=[1, 2]),
        ms_node("ms_attention_causal_lengths", "Attention",
                [f32(2, 4, 16), f32(16, 48, low=-0.5, high=0.5), f32(48), np.array([4, 2], np.int32)],
                dict(num_heads=4, unidirectional=1), consts=[1, 2]),
        ms_node("ms_attention_qkv_sizes", "Attention",
                [f32(2, 4, 16), f32(16, 40, low=-0.5, high=0.5), f32(40)],
                dict(num_heads=2, qkv_hidden_sizes=[16, 16, 8], scale=0.2), consts=[1, 2]),
        ms_node("ms_mha", "MultiHeadAttention",
                [f32(2, 3, 16), f32(2, 5, 16), f32(2, 5, 16), f32(48),
                 np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], np.int32)],
                dict(num_heads=2), n_out=3, outputs_used=[0]),
        ms_node("ms_mha_causal_bias", "MultiHeadAttention",
                [f32(2, 4, 16), f32(2, 4, 16), f32(2, 4, 16), None, None, f32(2, 2, 4, 4)],
                dict(num_heads=2, unidirectional=1, scale=0.3), n_out=3, outputs_used=[0]),
        ms_node("ms_gqa", "GroupQueryAttention",
                [f32(2, 4, 32), f32(2, 4, 16), f32(2, 4, 16), None, None,
                 np.array([3, 2], np.int32), np.array(4, np.int32)],
                dict(num_heads=4, kv_num_heads=2), consts=[5, 6], n_out=3),
        ms_node("ms_rotary", "RotaryEmbedding", [f32(2, 3, 16), pos, cos, sin],
                dict(num_heads=2), consts=[2, 3]),
        ms_node("ms_rotary_interleaved_4d", "RotaryEmbedding",
                [f32(2, 2, 3, 8), pos, cos, sin], dict(interleaved=1), consts=[2, 3]),
        ms_node("ms_rotary_partial_offset", "RotaryEmbedding",
                [f32(2, 3, 16), np.array([2], np.int64), cos2, sin2],
                dict(num_heads=2, rotary_embedding_dim=4), consts=[2, 3]),
        _matmul_nbits_case("ms_matmul_4bits_zp", 4, True),
        _matmul_nbits_case("ms_matmul_4bits", 4, False, bias=True),
        _matmul_nbits_case("ms_matmul_8bits_zp", 8, True, K=32),
    ]


# ---------------------------------------------------------------- bfloat16
def bfloat16_cases() -> list[Case]:
    """bfloat16 tensors in, out and as initializers, against onnx's reference (ml_dtypes arrays,
    as onnx's numpy_helper gives them)."""
    import ml_dtypes

    bf16 = np.dtype(ml_dtypes.bfloat16)
    x = f32(2, 5).astype(bf16)
    w = f32(5).astype(bf16)
    edge = np.array([0.1, -0.3, 1.7, 1.00390625, 1.01171875, 3e38, -1e-3, np.inf, -np.inf, np.nan,
                     -0.0], np.float32)

    def one(cid, nodes, inputs, consts=None):
        m, feeds = make_model(nodes, inputs, consts, opset=21)
        return Case(cid, m, feeds, reference="onnx")

    return [
        one("bf16_add_mul", [N("Add", ["x", "w"], ["s"]), N("Mul", ["s", "x"], ["y"])],
            {"x": x}, {"w": w}),
        one("bf16_to_float", [N("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], {"x": x}),
        one("float_to_bf16", [N("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)], {"x": edge}),
        one("bf16_matmul_softmax", [N("MatMul", ["x", "w2"], ["m"]), N("Softmax", ["m"], ["y"])],
            {"x": x}, {"w2": f32(5, 3).astype(bf16)}),
    ]


def float8_cases() -> list[Case]:
    """The 8-bit floats (held in MAX as bytes) against onnx's reference: Cast to each type with
    ties, overflow, NaN, inf, -0 and subnormals, with and without ``saturate``; every bit
    pattern cast back; QuantizeLinear and DequantizeLinear with 8-bit float zero points; a
    Transpose moving the bytes; CastLike."""
    import ml_dtypes

    T = TensorProto
    edge = np.array([1.0625, 1.1875, -1.0625, 0.3, -2.7, 464.0, 470.0, 1e6, -1e6, np.nan, np.inf,
                     -np.inf, -0.0, 0.0, 2.0 ** -10, 3 * 2.0 ** -10, 1e-9, -1e-9, 57344.0, 61440.0,
                     61441.0, 240.0, 248.0, 250.0], np.float32)

    def one(cid, nodes, inputs, consts=None, opset=21):
        m, feeds = make_model(nodes, inputs, consts, opset=opset)
        return Case(cid, m, feeds, reference="onnx")

    c = []
    for t in (T.FLOAT8E4M3FN, T.FLOAT8E4M3FNUZ, T.FLOAT8E5M2, T.FLOAT8E5M2FNUZ):
        name = T.DataType.Name(t)
        c.append(one(f"float_to_{name}", [N("Cast", ["x"], ["y"], to=t)], {"x": edge}))
        c.append(one(f"float16_to_{name}_no_saturate", [N("Cast", ["x"], ["y"], to=t, saturate=0)],
                     {"x": edge.astype(np.float16)}))
    every = np.arange(256, dtype=np.uint8).reshape(16, 16)
    c.append(one("FLOAT8E4M3FN_every_pattern_to_float16",
                 [N("Cast", ["x"], ["y"], to=T.FLOAT16)], {"x": every.view(ml_dtypes.float8_e4m3fn)}))
    c.append(one("FLOAT8E5M2FNUZ_every_pattern_transposed_to_float",
                 [N("Transpose", ["x"], ["t"], perm=[1, 0]), N("Cast", ["t"], ["y"], to=T.FLOAT)],
                 {"x": every.view(ml_dtypes.float8_e5m2fnuz)}))
    c.append(one("QuantizeLinear_FLOAT8E4M3FN", [N("QuantizeLinear", ["x", "s", "z"], ["y"])],
                 {"x": f32(3, 4, low=-300, high=300)},
                 {"s": np.array(0.7, np.float32), "z": np.array(0, np.float32).astype(ml_dtypes.float8_e4m3fn)}))
    c.append(one("DequantizeLinear_FLOAT8E5M2", [N("DequantizeLinear", ["x", "s", "z"], ["y"])],
                 {"x": f32(3, 4, low=-100, high=100).astype(ml_dtypes.float8_e5m2)},
                 {"s": np.array([0.5, 2.0, 0.25], np.float32).reshape(3), "z": np.zeros(3, ml_dtypes.float8_e5m2)}))
    c[-1].model.graph.node[0].attribute.append(helper.make_attribute("axis", 0))
    c.append(one("CastLike_to_FLOAT8E4M3FNUZ", [N("CastLike", ["x", "like"], ["y"])],
                 {"x": edge}, {"like": np.zeros(1, ml_dtypes.float8_e4m3fnuz)}))
    return c


# ---------------------------------------------------------------- ops added for issue 12
def added_ops_cases() -> list[Case]:
    """The ops of the ONNX domain added with the onnxruntime ops: pooling in 3-D and Lp pooling,
    sampling (GridSample, AffineGrid, RoiAlign), NonMaxSuppression, ReverseSequence, DFT,
    RotaryEmbedding, SwiGLU, and the integer ops on quantized data."""
    x5 = f32(1, 2, 5, 6, 4)
    x = f32(2, 3, 6, 7)
    boxes = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.1, 1.0, 1.1], [0.0, -0.1, 1.0, 0.9],
                       [0.0, 10.0, 1.0, 11.0], [1.0, 10.1, 0.0, 11.1], [0.0, 100.0, 1.0, 101.0]]],
                     np.float32)
    scores = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3], [0.1, 0.8, 0.2, 0.3, 0.9, 0.4]]], np.float32)
    u8 = np.random.default_rng(7).integers(0, 255, size=(3, 5)).astype(np.uint8)
    u8b = np.random.default_rng(8).integers(0, 255, size=(5, 4)).astype(np.uint8)
    xq = np.random.default_rng(9).integers(0, 255, size=(1, 2, 5, 5)).astype(np.uint8)
    wq = np.random.default_rng(10).integers(0, 255, size=(3, 2, 3, 3)).astype(np.uint8)
    rope_cos, rope_sin = _rope_caches(8, 4)
    c = [
        node("MaxPool-3d-pads-ceil", "MaxPool", [x5],
             {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [1, 0, 1, 0, 1, 1], "ceil_mode": 1}),
        node("AveragePool-3d-exclude-pad", "AveragePool", [x5],
             {"kernel_shape": [3, 2, 2], "pads": [1, 1, 0, 1, 0, 1]}),
        node("LpPool-p3-strides-pads", "LpPool", [x], {"kernel_shape": [3, 2], "strides": [2, 1],
                                                      "pads": [1, 0, 1, 1], "p": 3}, opset=18),
        node("LpPool-1d-p2", "LpPool", [f32(2, 3, 9)], {"kernel_shape": [3], "strides": [2]}),
        node("GridSample-bilinear-zeros", "GridSample", [x, f32(2, 4, 5, 2, low=-1.2, high=1.2)],
             {"align_corners": 0}, opset=20),
        node("GridSample-bicubic-border-in-range", "GridSample", [x, f32(2, 3, 4, 2, low=-0.9, high=0.9)],
             {"mode": "cubic", "padding_mode": "border", "align_corners": 1}, opset=20),
        node("GridSample-nearest-reflection", "GridSample", [x, f32(2, 3, 4, 2, low=-1.5, high=1.5)],
             {"mode": "nearest", "padding_mode": "reflection"}, opset=20),
        node("AffineGrid-2d", "AffineGrid", [f32(2, 2, 3), i64(2, 3, 4, 5)], consts=(1,), opset=20),
        node("RoiAlign-avg-half-pixel", "RoiAlign",
             [x, np.array([[0.5, 0.5, 4.0, 3.5], [1.0, 0.0, 6.0, 5.0]], np.float32), i64(0, 1)],
             {"output_height": 2, "output_width": 3, "sampling_ratio": 2, "spatial_scale": 0.9}, opset=16),
        node("NonMaxSuppression", "NonMaxSuppression",
             [boxes, scores, i64(2), np.array([0.5], np.float32), np.array([0.0], np.float32)],
             consts=(2, 3, 4), opset=11),
        node("NonMaxSuppression-center", "NonMaxSuppression",
             [boxes, scores, i64(3), np.array([0.4], np.float32)], {"center_point_box": 1},
             consts=(2, 3), opset=11),
        node("ReverseSequence-batch0", "ReverseSequence", [f32(3, 4, 2), i64(4, 1, 2)],
             {"batch_axis": 0, "time_axis": 1}),
        node("ReverseSequence-time0", "ReverseSequence", [f32(4, 3, 2), i64(2, 4, 3)],
             {"batch_axis": 1, "time_axis": 0}),
        node("DFT-complex-axis1", "DFT", [f32(2, 6, 3, 2), None, np.array(1, np.int64)], consts=(2,),
             opset=20),
        node("DFT-real-onesided", "DFT", [f32(2, 8, 1), np.array(6, np.int64)], {"onesided": 1},
             consts=(1,), opset=20),
        node("DFT-inverse", "DFT", [f32(3, 5, 2)], {"inverse": 1}, opset=20),
        node("RotaryEmbedding-3d", "RotaryEmbedding",
             [f32(2, 3, 16), rope_cos, rope_sin, np.array([[0, 1, 2], [4, 5, 6]], np.int64)],
             {"num_heads": 2}, consts=(1, 2), opset=23),
        node("MatMulInteger-zero-points", "MatMulInteger",
             [u8, u8b, np.array(120, np.uint8), np.array(130, np.uint8)], consts=(2, 3), opset=10),
        node("ConvInteger-pads", "ConvInteger", [xq, wq, np.array(100, np.uint8)],
             {"pads": [1, 1, 1, 1]}, consts=(1, 2), opset=10),
        node("QLinearMatMul", "QLinearMatMul",
             [u8, np.array(0.02, np.float32), np.array(120, np.uint8), u8b,
              np.array(0.03, np.float32), np.array(130, np.uint8), np.array(0.5, np.float32),
              np.array(128, np.uint8)], consts=(1, 2, 3, 4, 5, 6, 7), opset=10),
        node("QLinearConv-bias", "QLinearConv",
             [xq, np.array(0.02, np.float32), np.array(100, np.uint8), wq,
              np.array([0.01, 0.02, 0.015], np.float32), np.array([128, 128, 128], np.uint8),
              np.array(0.4, np.float32), np.array(5, np.uint8),
              np.array([100, -200, 50], np.int32)],
             {"pads": [1, 1, 1, 1]}, consts=(1, 2, 3, 4, 5, 6, 7, 8), opset=10),
    ]
    # outside the grid, onnx's reference (followed here) clamps a cubic sample's coordinate to
    # the border before taking its 16 taps; onnxruntime, like PyTorch, clamps each tap instead
    m, feeds = make_model([N("GridSample", ["x", "g"], ["y"], mode="cubic", padding_mode="border",
                             align_corners=1)], {"x": x, "g": f32(2, 3, 4, 2, low=-1.3, high=1.3)},
                          opset=20)
    c.append(Case("GridSample-bicubic-border-outside", m, feeds, reference="onnx"))
    swiglu, feeds = make_model([N("SwiGLU", ["a", "b"], ["y"], alpha=1.3)],
                               {"a": f32(2, 6), "b": f32(2, 6)}, opset=28)
    c.append(Case("SwiGLU-alpha", swiglu, feeds, reference="onnx"))  # onnxruntime 1.32: no opset 28
    c += scan_and_function_cases()
    return c


def _scan_model(body: onnx.GraphProto, inputs: dict, n_scan: int, attrs: dict, outputs: dict,
                opset: int = 17) -> onnx.ModelProto:
    """One Scan node over graph ``inputs`` (the state variables first, then ``n_scan`` scan
    inputs) with declared float32 ``outputs`` (``{name: shape}``)."""
    g = helper.make_graph(
        [N("Scan", list(inputs), list(outputs), body=body, num_scan_inputs=n_scan, **attrs)], "case",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in inputs.items()],
        [_vi(k, TensorProto.FLOAT, shape) for k, shape in outputs.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)
    onnx.checker.check_model(m, full_check=True)
    return m


def scan_and_function_cases() -> list[Case]:
    """``Scan`` (unrolled by prepare: a state carried through the steps, scan inputs on another
    axis and reversed, scan outputs on another axis and reversed), and ops that onnx2max has no
    converter for but onnx defines as functions (expanded by prepare into their body):
    CausalConvWithState and LinearAttention (opset 27; onnxruntime 1.32 lacks opset 27, so
    onnx's reference evaluator is the reference)."""
    # body: s_next = tanh(0.5 s + x_t) @ w; y_t = s_next; z_t = u_t * 2
    w = numpy_helper.from_array(RNG.uniform(-1, 1, (3, 3)).astype(np.float32), "w")
    body = helper.make_graph(
        [N("Constant", [], ["half"], value=numpy_helper.from_array(np.float32(0.5))),
         N("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2.0))),
         N("Mul", ["s", "half"], ["sh"]), N("Add", ["sh", "xt"], ["a"]), N("Tanh", ["a"], ["t"]),
         N("MatMul", ["t", "w"], ["s_next"]), N("Identity", ["s_next"], ["y_t"]),
         N("Mul", ["ut", "two"], ["z_t"])],
        "body",
        [_vi("s", TensorProto.FLOAT, [2, 3]), _vi("xt", TensorProto.FLOAT, [2, 3]),
         _vi("ut", TensorProto.FLOAT, [4])],
        [_vi("s_next", TensorProto.FLOAT, [2, 3]), _vi("y_t", TensorProto.FLOAT, [2, 3]),
         _vi("z_t", TensorProto.FLOAT, [4])],
        initializer=[w])
    s0, x, u = f32(2, 3), f32(5, 2, 3), f32(4, 5)
    c = [Case("Scan-state-and-scan-outputs",
              _scan_model(body, {"s0": s0, "x": x, "u": u}, 2, {"scan_input_axes": [0, 1]},
                          {"s": [2, 3], "y": [5, 2, 3], "z": [5, 4]}),
              {"s0": s0, "x": x, "u": u}),
         Case("Scan-reversed-axes",
              _scan_model(body, {"s0": s0, "x": np.ascontiguousarray(x.transpose(1, 0, 2)), "u": u}, 2,
                          {"scan_input_axes": [1, 1], "scan_input_directions": [1, 0],
                           "scan_output_axes": [2, 1], "scan_output_directions": [0, 1]},
                          {"s": [2, 3], "y": [2, 3, 5], "z": [4, 5]}),
              {"s0": s0, "x": np.ascontiguousarray(x.transpose(1, 0, 2)), "u": u})]
    # CausalConvWithState (opset 27): depthwise causal conv over [N, C, L] with a past state
    xc, wc, bc, past = f32(2, 4, 6), f32(4, 1, 3), f32(4), f32(2, 4, 2)
    m, feeds = make_model([N("CausalConvWithState", ["x", "w", "b", "past"], ["y", "present"],
                             activation="silu")], {"x": xc, "w": wc, "b": bc, "past": past}, opset=27)
    c.append(Case("CausalConvWithState-silu-past", m, feeds, reference="onnx"))
    # LinearAttention (opset 27), gated delta rule: its function body holds a Scan over time
    q, k, v = f32(1, 3, 2 * 4, low=-0.5, high=0.5), f32(1, 3, 2 * 4, low=-0.5, high=0.5), f32(1, 3, 2 * 4)
    state = f32(1, 2, 4, 4, low=-0.3, high=0.3)
    decay = f32(1, 3, 2, low=-0.5, high=-0.05)
    beta = f32(1, 3, 2, low=0.1, high=0.9)
    m, feeds = make_model([N("LinearAttention", ["q", "k", "v", "state", "decay", "beta"], ["y", "state_out"],
                             q_num_heads=2, kv_num_heads=2, update_rule="gated_delta")],
                          {"q": q, "k": k, "v": v, "state": state, "decay": decay, "beta": beta}, opset=27)
    c.append(Case("LinearAttention-gated-delta", m, feeds, reference="onnx"))
    return c


def coverage_cases() -> list[Case]:
    """One case (or a few, where forms have different code) for each registered op type that
    the other groups leave out, compared with onnxruntime: trigonometric and other elementwise
    functions, activations, the bitwise and logic ops, normalizations, indexing and scatter,
    Resize/Upsample, TopK, Tile, Pad, Trilu, OneHot, the losses, DynamicQuantizeLinear,
    CenterCropPad, Attention (opset 23), NonZero and Compress (their count a symbolic dim), Det,
    Col2Im, MaxUnpool, STFT and DeformConv.
    (EyeLike depends only on a static shape and is computed at conversion, so its case is
    followed by an Add that MAX computes.)"""
    c = []
    x = f32(2, 3, 4, 5)
    unit = f32(2, 3, 4, 5, low=-0.9, high=0.9)
    big = f32(2, 3, 4, 5, low=1.1, high=3.0)
    for op, a in [("Sin", x), ("Cos", x), ("Tan", unit), ("Asin", unit), ("Acos", unit), ("Atan", x),
                  ("Sinh", x), ("Cosh", x), ("Asinh", x), ("Atanh", unit), ("Acosh", big),
                  ("Sign", np.round(x)), ("Round", x * 3), ("Softplus", x), ("Softsign", x),
                  ("Elu", x), ("Selu", x), ("Celu", x), ("Mish", x), ("ThresholdedRelu", x),
                  ("Shrink", x), ("IsNaN", np.where(x > 1.5, np.nan, x).astype(np.float32)),
                  ("IsInf", np.where(x > 1.5, np.inf, np.where(x < -1.5, -np.inf, x)).astype(np.float32))]:
        c.append(node(f"cov-{op}", op, [a], opset=18 if op == "Mish" else 17))
    c.append(node("cov-Hardmax-axis1", "Hardmax", [x], {"axis": 1}))
    c.append(node("cov-Shrink-bias", "Shrink", [x], {"lambd": 0.7, "bias": 0.2}))
    c.append(node("cov-PRelu-slope", "PRelu", [x, f32(3, 1, 1)], consts=(1,)))
    c.append(node("cov-Mean", "Mean", [x, f32(4, 5), f32(1, 5)]))
    c.append(node("cov-Mod-int-sign", "Mod", [i64(-7, 7, -8, 9, 5), i64(3, -3, 3, -4, 5)]))
    c.append(node("cov-Mod-fmod", "Mod", [x, np.float32(0.7) + np.abs(f32(4, 5))], {"fmod": 1}))
    c.append(node("cov-GreaterOrEqual", "GreaterOrEqual", [np.round(x), np.round(f32(4, 5))]))
    c.append(node("cov-LessOrEqual", "LessOrEqual", [np.round(x), np.round(f32(4, 5))]))
    b1, b2 = RNG.random((3, 4)) > 0.5, RNG.random((3, 4)) > 0.5
    c.append(node("cov-Xor", "Xor", [b1, b2]))
    i1 = RNG.integers(-100, 100, size=(3, 4)).astype(np.int32)
    i2 = RNG.integers(-100, 100, size=(3, 4)).astype(np.int32)
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        c.append(node(f"cov-{op}", op, [i1, i2], opset=18))
    c.append(node("cov-BitwiseNot", "BitwiseNot", [i1], opset=18))
    u = RNG.integers(0, 200, size=(3, 4)).astype(np.uint32)
    c.append(node("cov-BitShift-left", "BitShift", [u, np.full((3, 4), 2, np.uint32)], {"direction": "LEFT"}))
    c.append(node("cov-BitShift-right", "BitShift", [u, np.full((4,), 3, np.uint32)], {"direction": "RIGHT"}))
    c.append(node("cov-ArgMax-keepdims", "ArgMax", [x], {"axis": 2}))
    c.append(node("cov-ArgMin-last-index", "ArgMin", [np.round(x)], {"axis": 1, "keepdims": 0,
                                                                     "select_last_index": 1}))
    c.append(node("cov-CumSum-exclusive-reverse", "CumSum", [x, np.array(2, np.int64)],
                  {"exclusive": 1, "reverse": 1}, consts=(1,)))
    c.append(node("cov-CumProd", "CumProd", [f32(3, 4, low=0.5, high=1.5), np.array(1, np.int64)], consts=(1,),
                  opset=26))
    c.append(node("cov-DepthToSpace-CRD", "DepthToSpace", [f32(1, 8, 2, 3)], {"blocksize": 2, "mode": "CRD"}))
    c.append(node("cov-SpaceToDepth", "SpaceToDepth", [f32(1, 2, 4, 6)], {"blocksize": 2}))
    c.append(node("cov-GatherElements", "GatherElements", [f32(3, 4), np.array([[0, 2, -1, 1], [3, 0, 1, 2]],
                                                                               np.int64)], {"axis": 1}))
    c.append(node("cov-GatherND-batch", "GatherND", [f32(2, 3, 4), np.array([[[1, 2], [0, 3]], [[2, 0], [1, 1]]],
                                                                           np.int64)], {"batch_dims": 1}))
    c.append(node("cov-ScatterElements-add", "ScatterElements",
                  [f32(3, 4), np.array([[0, 2], [1, 0]], np.int64), f32(2, 2)], {"axis": 1, "reduction": "add"}))
    c.append(node("cov-ScatterND", "ScatterND", [f32(4, 3), np.array([[1], [3]], np.int64), f32(2, 3)]))
    c.append(node("cov-Scatter-v9", "Scatter", [f32(3, 4), np.array([[0, 2], [1, 0]], np.int64), f32(2, 2)],
                  {"axis": 1}, opset=9))
    c.append(node("cov-OneHot", "OneHot", [np.array([0, 3, -1, 2], np.int64), np.array(4, np.int64),
                                           np.array([0.0, 5.0], np.float32)], {"axis": 0}, consts=(1,), opset=11))
    c.append(node("cov-Trilu-lower-k", "Trilu", [f32(2, 4, 5), np.array(1, np.int64)], {"upper": 0}, consts=(1,)))
    c.append(node("cov-Tile", "Tile", [f32(2, 3), np.array([2, 3], np.int64)], consts=(1,)))
    c.append(node("cov-Pad-reflect", "Pad", [x, np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)],
                  {"mode": "reflect"}, consts=(1,)))
    c.append(node("cov-Pad-constant-value", "Pad", [x, np.array([0, 1, 1, 0, 0, 0, 2, 1], np.int64),
                                                    np.array(1.5, np.float32)], consts=(1, 2)))
    c.append(node("cov-TopK-smallest", "TopK", [x, np.array([3], np.int64)], {"axis": -1, "largest": 0},
                  consts=(1,), n_out=2))
    c.append(node("cov-Resize-linear-half-pixel", "Resize", [f32(1, 2, 4, 5), None, np.array([1, 1, 1.5, 2.0],
                                                                                           np.float32)],
                  {"mode": "linear"}, consts=(2,), opset=13))
    c.append(node("cov-Resize-nearest-sizes", "Resize", [f32(1, 2, 4, 5), None, None, np.array([1, 2, 7, 3],
                                                                                             np.int64)],
                  {"mode": "nearest", "nearest_mode": "floor"}, consts=(3,), opset=13))
    c.append(node("cov-Resize-cubic-align-corners", "Resize", [f32(1, 1, 4, 4), None, np.array([1, 1, 2, 2],
                                                                                             np.float32)],
                  {"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, consts=(2,), opset=13))
    c.append(node("cov-Upsample-v9", "Upsample", [f32(1, 2, 3, 4), np.array([1, 1, 2, 3], np.float32)],
                  consts=(1,), opset=9))
    c.append(node("cov-InstanceNormalization", "InstanceNormalization", [x, f32(3), f32(3)], consts=(1, 2)))
    c.append(node("cov-GroupNormalization", "GroupNormalization", [f32(2, 4, 3, 5), f32(4), f32(4)],
                  {"num_groups": 2}, consts=(1, 2), opset=21))
    c.append(node("cov-MeanVarianceNormalization", "MeanVarianceNormalization", [x], {"axes": [0, 2]}, opset=9))
    c.append(node("cov-RMSNormalization", "RMSNormalization", [x, f32(5)], {"epsilon": 1e-5}, consts=(1,),
                  opset=23))
    c.append(node("cov-CenterCropPad", "CenterCropPad", [f32(5, 4, 3), np.array([3, 6], np.int64)],
                  {"axes": [0, 1]}, consts=(1,), opset=18))
    c.append(node("cov-DynamicQuantizeLinear", "DynamicQuantizeLinear", [x], opset=11, n_out=3))
    scores, labels = f32(3, 5, 2), np.array([[0, 4], [2, 1], [3, -1]], np.int64)
    c.append(node("cov-NegativeLogLikelihoodLoss-mean-ignore", "NegativeLogLikelihoodLoss", [scores, labels],
                  {"reduction": "mean", "ignore_index": -1}, opset=13))
    c.append(node("cov-SoftmaxCrossEntropyLoss-weights", "SoftmaxCrossEntropyLoss",
                  [scores, np.abs(labels), f32(5, low=0.5, high=1.5)], {"reduction": "sum"}, consts=(2,),
                  opset=13))
    c.append(node("cov-Attention-4d-causal", "Attention", [f32(1, 2, 4, 8), f32(1, 2, 6, 8), f32(1, 2, 6, 8)],
                  {"is_causal": 1}, opset=23))
    c.append(node("cov-Swish-alpha", "Swish", [x], {"alpha": 0.7}, opset=24))
    c.append(node("cov-NonZero", "NonZero", [np.round(f32(3, 4))]))
    c.append(node("cov-Compress-axis", "Compress", [f32(3, 4), RNG.random(4) > 0.5], {"axis": 1}))
    c.append(node("cov-Det-batch", "Det", [f32(2, 3, 4, 4)], opset=22))
    sing = f32(3, 3)
    sing[2] = sing[0] + sing[1]  # singular: determinant 0
    c.append(node("cov-Det-2d-pivoting", "Det", [np.array([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0],
                                                           [3.0, 0.0, 1.0]], np.float32)]))
    c.append(node("cov-Det-singular", "Det", [np.stack([sing, f32(3, 3)])]))
    c.append(node("cov-Col2Im-pads-strides-dilations", "Col2Im",
                  [f32(2, 3 * 2 * 3, 9), np.array([5, 6], np.int64), np.array([2, 3], np.int64)],
                  {"pads": [1, 0, 0, 1], "strides": [2, 1], "dilations": [1, 2]}, consts=(1, 2), opset=18))
    xp = f32(1, 2, 4, 4)
    # MaxPool's values and Indices, unpooled
    pv = xp.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    arg = pv.argmax(-1)
    vals = pv.max(-1)
    hh, ww = np.meshgrid(np.arange(2), np.arange(2), indexing="ij")
    flat = (np.arange(2).reshape(1, 2, 1, 1) * 16 + (hh * 2 + arg // 2) * 4 + ww * 2 + arg % 2).astype(np.int64)
    c.append(node("cov-MaxUnpool", "MaxUnpool", [vals.astype(np.float32), flat], {"kernel_shape": [2, 2],
                                                                                  "strides": [2, 2]}, opset=11))
    # with output_shape, onnx's reference (followed here, and by the backend test's data) unpools
    # to the inferred shape and pads the end; onnxruntime indexes the output_shape tensor instead
    unpool = node("cov-MaxUnpool-output-shape", "MaxUnpool",
                  [vals.astype(np.float32), flat, np.array([1, 2, 5, 5], np.int64)],
                  {"kernel_shape": [2, 2], "strides": [2, 2]}, consts=(2,), opset=11)
    unpool.reference = "onnx"
    c.append(unpool)
    c.append(node("cov-STFT-window-onesided", "STFT",
                  [f32(2, 40, 1), np.array(6, np.int64), np.hanning(10).astype(np.float32)],
                  {"onesided": 1}, consts=(1,), opset=17))
    c.append(node("cov-STFT-complex-frame-length", "STFT",
                  [f32(1, 32, 2), np.array(8, np.int64), None, np.array(12, np.int64)], {"onesided": 0},
                  consts=(1, 3), opset=17))
    c.append(node("cov-DeformConv-mask-bias-pads", "DeformConv",
                  [f32(1, 2, 5, 6), f32(3, 2, 3, 3), f32(1, 2 * 9, 5, 6, low=-1.5, high=1.5), f32(3),
                   f32(1, 9, 5, 6, low=0.0, high=1.0)], {"pads": [1, 1, 1, 1]}, consts=(1, 3), opset=22))
    c.append(node("cov-DeformConv-groups-strides-dilations", "DeformConv",
                  [f32(2, 4, 7, 7), f32(4, 2, 2, 2), f32(2, 2 * 2 * 4, 3, 3, low=-2.0, high=2.0)],
                  {"group": 2, "offset_group": 2, "strides": [2, 2], "dilations": [2, 1]}, consts=(1,),
                  opset=22))
    c.append(graph("cov-EyeLike-then-Add", [N("EyeLike", ["x"], ["e"], k=1), N("Add", ["e", "x"], ["y"])],
                   {"x": f32(3, 4)}))
    return c


# ---------------------------------------------------------------- silent-result regressions
def numerics_cases() -> list[Case]:
    """Forms that once gave wrong values without an error: MAX 26.7 quirks worked around in
    the converters, and spec edge values (infinities, zero norms, extrapolation); and Resize's
    keep_aspect_ratio_policy forms, BatchNormalization's training mode and
    MeanVarianceNormalization-13, which once failed to convert (ONNX backend-test failures, like
    the rest)."""
    c = []
    # softmax(q k^T) v of rank 4 with v's head size (12) unlike q's (4): MAX 26.7's fused
    # attention kernel gave errors of 2-4 (onnx2max.ops.matmul.attention_values_misfused)
    for cid, dq, dv in (("diff-head-sizes", 4, 12), ("same-head-sizes", 8, 8)):
        nodes = [N("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), N("MatMul", ["q", "kt"], ["s0"]),
                 N("Mul", ["s0", "scale"], ["s1"]), N("Add", ["s1", "mask"], ["s2"]),
                 N("Softmax", ["s2"], ["p"], axis=-1), N("MatMul", ["p", "v"], ["y"])]
        mask = np.where(np.tril(np.ones((5, 6), bool), 1), 0.0, -1e9).astype(np.float32)
        c.append(graph(f"Attention-pattern-{cid}", nodes,
                       {"q": f32(2, 3, 5, dq), "k": f32(2, 3, 6, dq), "v": f32(2, 3, 6, dv)},
                       {"scale": np.array(0.5, np.float32), "mask": mask}))
    c.append(graph("Attention-pattern-einsum-diff-head-sizes", [
        N("Einsum", ["q", "k"], ["s"], equation="bhqd,bhkd->bhqk"), N("Softmax", ["s"], ["p"], axis=-1),
        N("Einsum", ["p", "v"], ["y"], equation="bhqk,bhkd->bhqd")],
        {"q": f32(2, 3, 5, 4), "k": f32(2, 3, 6, 4), "v": f32(2, 3, 6, 12)}))
    # the values multiplied with rank 3 while the probabilities have rank 4 (batch broadcast)
    c.append(graph("Attention-pattern-broadcast-values", [
        N("MatMul", ["q", "kt"], ["s"]), N("Softmax", ["s"], ["p"], axis=-1), N("MatMul", ["p", "v"], ["y"])],
        {"q": f32(2, 3, 5, 4), "kt": f32(2, 3, 4, 6), "v": f32(3, 6, 12)}))
    # probabilities times one matrix (rank 2): flattened to a 2-D product, not copied per batch
    c.append(graph("Softmax-then-MatMul-matrix", [N("Softmax", ["x"], ["p"], axis=-1),
                                                  N("MatMul", ["p", "w"], ["y"])],
                   {"x": f32(2, 3, 4, 6)}, {"w": f32(6, 5)}))
    # a fully masked row: softmax gives NaN, which the decomposed Attention-23 function replaces
    # by 0 where ReduceMax of the mask row is -inf (MAX 26.7's max of all -inf was finite)
    row_mask = np.zeros((4, 6), np.float32)
    row_mask[2] = -np.inf
    c.append(graph("Attention-fully-masked-row-where", [
        N("MatMul", ["q", "kt"], ["s0"]), N("Add", ["s0", "mask"], ["s1"]), N("Softmax", ["s1"], ["p"], axis=-1),
        N("ReduceMax", ["mask"], ["m"], axes=[-1], keepdims=1), N("Equal", ["m", "ninf"], ["dead"]),
        N("Where", ["dead", "zero", "p"], ["p2"]), N("MatMul", ["p2", "v"], ["y"])],
        {"q": f32(1, 2, 4, 8), "kt": f32(1, 2, 8, 6), "v": f32(1, 2, 6, 8)},
        {"mask": row_mask, "ninf": np.array(-np.inf, np.float32), "zero": np.array(0.0, np.float32)}))
    rows = f32(3, 5)
    rows[1] = -np.inf
    c.append(node("ReduceMax-all-minus-inf-row", "ReduceMax", [rows], {"axes": [1], "keepdims": 0}))
    rows_hi = f32(3, 5)
    rows_hi[0] = np.inf
    c.append(node("ReduceMin-all-plus-inf-row", "ReduceMin", [rows_hi], {"axes": [1], "keepdims": 1}))
    # a zero column: 0, not NaN (onnxruntime; the ONNX test test_l2normalization_axis_0)
    lp = f32(3, 4)
    lp[:, 2] = 0.0
    c.append(node("LpNormalization-zero-norm-axis0", "LpNormalization", [lp], {"axis": 0, "p": 2}))
    c.append(node("LpNormalization-zero-norm-p1", "LpNormalization", [lp.T.copy()], {"axis": 1, "p": 1}))
    # infinite divisors: numpy's mod and C's fmod, where a - floor(a / b) * b gives NaN
    a = np.array([0.0, -0.0, -3.0, 3.0, -1.0, 1.0, np.inf, 2.5, 1.0, np.nan, -7.5], np.float32)
    b = np.array([-np.inf, np.inf, np.inf, np.inf, -np.inf, -np.inf, 2.0, -2.0, 0.0, 2.0, 2.0], np.float32)
    c.append(node("Mod-fmod0-infinite-divisor", "Mod", [a, b], {"fmod": 0}, opset=28))
    c.append(node("Mod-fmod1-infinite-divisor", "Mod", [a, b], {"fmod": 1}, opset=28))
    # float16 products of two batched operands: MAX 26.7's kernel accumulated in float16 (errors
    # of 0.3 at K = 512; onnx2max.ops.matmul.batched_matmul computes them in float32)
    c.append(node("MatMul-float16-rank4", "MatMul", [f32(2, 3, 4, 256).astype(np.float16),
                                                      f32(2, 3, 256, 5).astype(np.float16)]))
    c.append(node("MatMul-float16-rank3-broadcast", "MatMul", [f32(4, 3, 256).astype(np.float16),
                                                                f32(1, 256, 5).astype(np.float16)]))
    c.append(node("Einsum-float16-batched", "Einsum", [f32(3, 4, 256).astype(np.float16),
                                                        f32(3, 5, 256).astype(np.float16)],
                  {"equation": "bik,bjk->bij"}))
    # float16 Conv (3x3 over 64 channels: 576 products): MAX 26.7's conv2d accumulated in float16
    c.append(node("Conv-float16", "Conv", [f32(1, 64, 8, 8).astype(np.float16), f32(4, 64, 3, 3).astype(np.float16),
                                           f32(4).astype(np.float16)], {"pads": [1, 1, 1, 1]}, consts=(1, 2)))
    c.append(node("Conv-float16-runtime-filter-1d", "Conv", [f32(2, 32, 9).astype(np.float16),
                                                             f32(6, 32, 5).astype(np.float16)]))
    c.append(node("ConvTranspose-float16", "ConvTranspose", [f32(1, 64, 6, 6).astype(np.float16),
                                                             f32(64, 4, 3, 3).astype(np.float16),
                                                             f32(4).astype(np.float16)],
                  {"strides": [2, 2]}, consts=(1, 2)))
    # float16 AveragePool over 12x12 windows: MAX 26.7's float16 window sums lost precision
    c.append(node("AveragePool-float16", "AveragePool", [f32(1, 8, 24, 24, low=0.5, high=1.5).astype(np.float16)],
                  {"kernel_shape": [12, 12]}))
    # float16 Attention-23 is computed in float32 and rounded once; the reference is the float32
    # model's output rounded to float16 (onnxruntime's float16 kernel is up to 2 units off it)
    att = node("Attention-float16", "Attention", [f32(1, 2, 6, 64).astype(np.float16),
                                                  f32(1, 2, 40, 64).astype(np.float16),
                                                  f32(1, 2, 40, 64).astype(np.float16)],
               {"is_causal": 1}, opset=23)
    att.reference = "onnxruntime-float32"
    c.append(att)
    # keep_aspect_ratio_policy rounds the output size (0.75 * 2 = 1.5 -> 2), while a scales-mode
    # resize floors it: the weights are built with the axis that sets the scale present
    for mode in ("nearest", "linear"):
        c.append(node(f"Resize-not-smaller-rounds-size-{mode}", "Resize",
                      [f32(1, 2, 2, 4), None, None, np.array([1, 3], np.int64)],
                      {"mode": mode, "axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"},
                      consts=(3,), opset=19))
    c.append(node("Resize-not-larger-cubic", "Resize", [f32(1, 1, 5, 3), None, None, np.array([7, 8], np.int64)],
                  {"mode": "cubic", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"},
                  consts=(3,), opset=19))
    # float16 products with a matrix built at conversion (a MAX graph constant of 64 or more
    # rows): MAX 26.7 gave errors larger than the values (ops.matmul.matmul_by_constant)
    h16 = lambda *s, **kw: f32(*s, **kw).astype(np.float16)  # noqa: E731
    c.append(node("Col2Im-float16", "Col2Im", [h16(1, 4 * 9, 36), i64(8, 8), i64(3, 3)], opset=18, consts=(1, 2)))
    c.append(node("DFT-float16-256", "DFT", [h16(2, 256, 1), None, np.array(1, np.int64)], opset=20, consts=(2,)))
    c.append(node("STFT-float16-frame-128", "STFT", [h16(1, 512, 1), np.array(64, np.int64), None,
                                                     np.array(128, np.int64)], {"onesided": 1}, opset=17, consts=(1, 3)))
    c.append(node("Resize-linear-float16-64", "Resize", [h16(1, 2, 64, 64), None, np.array([1, 1, 1.5, 1.5], np.float32)],
                  {"mode": "linear"}, opset=19, consts=(2,)))
    # STFT without its onesided attribute (default 1): onnx 1.23's shape inference takes 0, so it
    # refused this model, which declares the bins of the default (as the backend's test_stft)
    vi = helper.make_tensor_value_info
    stft = helper.make_model(helper.make_graph(
        [N("STFT", ["x", "step", "", "len"], ["y"])], "case", [vi("x", TensorProto.FLOAT, [2, 256, 1])],
        [vi("y", TensorProto.FLOAT, [2, 7, 33, 2])],
        initializer=[numpy_helper.from_array(np.array(32, np.int64), "step"),
                     numpy_helper.from_array(np.array(64, np.int64), "len")]),
        opset_imports=[helper.make_opsetid("", 17)])
    stft.ir_version = 8
    onnx.checker.check_model(stft)
    c.append(Case("STFT-default-onesided", stft, {"x": f32(2, 256, 1)}))
    # BatchNormalization training_mode=1: the batch's statistics, and the running ones out
    bn = [f32(3), f32(3), f32(3), f32(3, low=0.5, high=2.0)]
    c.append(node("BatchNormalization-training-mode", "BatchNormalization", [f32(2, 3, 4, 5), *bn],
                  {"training_mode": 1, "epsilon": 1e-2}, opset=15, consts=(1, 2), n_out=3))
    c.append(node("BatchNormalization-training-mode-rank3-momentum", "BatchNormalization", [f32(4, 3, 7), *bn],
                  {"training_mode": 1, "momentum": 0.7}, opset=15, n_out=3))
    # opset 13: strict shape inference fails inside the op's function body (an onnx 1.23 defect)
    # (so the model is written out here, not through make_model's strict inference)
    vi = helper.make_tensor_value_info
    mvn = helper.make_model(helper.make_graph(
        [N("MeanVarianceNormalization", ["x"], ["y"])], "case", [vi("x", TensorProto.FLOAT, [2, 3, 4, 5])],
        [vi("y", TensorProto.FLOAT, [2, 3, 4, 5])]), opset_imports=[helper.make_opsetid("", 13)])
    mvn.ir_version = 7
    onnx.checker.check_model(mvn)
    c.append(Case("MeanVarianceNormalization-opset13", mvn, {"x": f32(2, 3, 4, 5)}))
    # tf_crop_and_resize with an ROI leaving the input: the extrapolation value there
    c.append(node("Resize-tf-crop-extrapolation", "Resize",
                  [f32(1, 1, 4, 4), np.array([0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7], np.float32), None,
                   np.array([1, 1, 3, 3], np.int64)],
                  {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
                   "extrapolation_value": 10.0}, consts=(1, 3), opset=19))
    # float16 normalizations: statistics in float32 (stash_type's default, and onnxruntime's CPU
    # kernels), the result rounded once; in float16, up to 65 % of the outputs were beyond the
    # float16 tolerance, and LayerNormalization's float32 Mean / InvStdDev came out as float16
    # (a conversion error). The reference is the float32 model's output rounded to float16
    for case in (
        node("LayerNormalization-float16-stats", "LayerNormalization", [h16(2, 3, 256), h16(256), h16(256)],
             consts=(1, 2), n_out=3),
        node("LayerNormalization-float16-axis1", "LayerNormalization", [h16(2, 4, 64), h16(4, 64)], {"axis": 1},
             consts=(1,)),
        node("InstanceNormalization-float16", "InstanceNormalization", [h16(2, 3, 16, 16), h16(3), h16(3)],
             consts=(1, 2)),
        node("GroupNormalization-float16", "GroupNormalization", [h16(2, 4, 12, 12), h16(4), h16(4)],
             {"num_groups": 2}, consts=(1, 2), opset=21),
        node("RMSNormalization-float16", "RMSNormalization", [h16(2, 3, 256), h16(256)], consts=(1,), opset=23),
        ms_node("ms_skip_ln-float16", "SkipLayerNormalization",
                [h16(2, 3, 256), h16(2, 3, 256), h16(256), h16(256)], dict(epsilon=1e-5),
                consts=[2, 3], n_out=4, outputs_used=[0, 3]),
        ms_node("ms_simplified_ln-float16", "SimplifiedLayerNormalization", [h16(2, 3, 256), h16(256)],
                dict(epsilon=1e-6), consts=[1], domain="", n_out=2),
        # and the window sums of LpPool (MAX's conv2d accumulated float16 in float16), the sum of Mean
        node("LpPool-float16-p2", "LpPool", [h16(1, 4, 24, 24)], {"kernel_shape": [12, 12], "p": 2}),
        node("LpPool-float16-p3", "LpPool", [h16(1, 4, 24, 24, low=0.1, high=2.0)], {"kernel_shape": [12, 12], "p": 3}),
        node("Mean-float16-8-inputs", "Mean", [h16(4, 64) for _ in range(8)]),
        node("MeanVarianceNormalization-float16-last-axes", "MeanVarianceNormalization", [h16(2, 3, 8, 64)],
             {"axes": [2, 3]}, opset=13),
        # float16 sums over 4096 values, computed in float32 since ReduceMean's float16 pattern
        # broke MAX's compile (below); MAX's float16 sums were as close before
        node("ReduceMean-float16-4096", "ReduceMean", [h16(3, 4096, low=0.0, high=2.0), i64(1)], consts=(1,), opset=18),
        node("ReduceSumSquare-float16-4096", "ReduceSumSquare", [h16(3, 4096, low=-0.1, high=0.1), i64(-1)],
             consts=(1,), opset=18),
    ):
        case.reference = "onnxruntime-float32"
        c.append(case)
    # LayerNorm written out with ReduceMean (torch's export before opset 17): MAX 26.7 fused
    # the float16 pattern into its LayerNorm kernel, whose epsilon is a float32, and the
    # compile failed ("cannot be converted from 'Float16' to 'Float32'")
    ln = graph("LayerNorm-decomposed-float16", [
        N("ReduceMean", ["x"], ["m"], axes=[-1]), N("Sub", ["x", "m"], ["c"]), N("Mul", ["c", "c"], ["c2"]),
        N("ReduceMean", ["c2"], ["v"], axes=[-1]), N("Add", ["v", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]),
        N("Div", ["c", "sd"], ["nx"]), N("Mul", ["nx", "g"], ["ng"]), N("Add", ["ng", "b"], ["y"])],
        {"x": h16(2, 3, 64)}, {"eps": np.array(1e-5, np.float16), "g": h16(64), "b": h16(64)}, opset=13)
    # its float16 steps round one by one, as the graph says: the reference is onnx's evaluator
    # (onnxruntime fuses the pattern into its float32 LayerNormalization: a unit away on 7% of
    # the outputs)
    ln.reference = "onnx"
    c.append(ln)
    # LayerNormalization as torch exports it (opset 17 on): computed in float16, MAX 26.7 fused
    # it into the same kernel and the compile failed (the zoo's GPT and encoder in float16 too)
    last = node("LayerNormalization-float16-last-axis", "LayerNormalization", [h16(2, 5, 64), h16(64), h16(64)],
                {"epsilon": 1e-5}, consts=(1, 2))
    last.reference = "onnxruntime-float32"
    c.append(last)
    return c


GROUPS = {
    "elementwise": elementwise_cases,
    "matmul": matmul_cases,
    "nn": nn_cases,
    "shape": shape_cases,
    "edge": edge_cases,
    "recurrent": recurrent_cases,
    "loop": loop_cases,
    "contrib": contrib_cases,
    "bfloat16": bfloat16_cases,
    "float8": float8_cases,
    "added_ops": added_ops_cases,
    "coverage": coverage_cases,
    "numerics": numerics_cases,
}
