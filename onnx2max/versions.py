"""The newest version of each operator that onnx2max's converters were checked against.

A converter is registered from the opset where its op's meaning starts (``since`` in
:mod:`onnx2max.registry`); :data:`REVIEWED` closes the range: the newest schema version
(``since_version`` in ``onnx.defs``) whose changes were read against the converter. A model whose
opset selects a newer version of an op (an onnx release adds one) is reported by the
unsupported-op check (:class:`onnx2max.UnsupportedOpError`) instead of being lowered by a
converter written for an older meaning. ``tests/test_versions.py`` lists every version that the
installed onnx has beyond this table, with what changed, so a new onnx release shows what to
review.

How the versions up to these were checked (onnx 1.23.2, opset 28), for every bump after each
converter's ``since``: the schemas of consecutive versions were compared field by field
(attributes, inputs, outputs, type constraints) and the documentation was diffed where the
fields did not change.

- Bumps that only add types (bfloat16, float8, int4, ...; most of opsets 13-28) change nothing
  for a converter: dtypes that MAX lacks are refused when the model is checked.
- Bumps that add or remove attributes or optional inputs: the converters read the newer ones
  (Pad 18 ``axes``, Attention 24 ``nonpad_kv_seqlen`` and 25 window sizes, Quantize/
  DequantizeLinear 19-23 ``saturate``, ``block_size``, ``output_dtype``, ``precision``, ...; a set
  attribute that a converter never reads is refused by the unread-attribute check in
  :mod:`onnx2max.lower`), and the older ones where the opset still has them
  (``consumed_inputs``, ``broadcast``, ...).
- Bumps that move attributes to inputs (Reshape 5, Slice 10, Pad 11, Clip 11, TopK 10,
  Split 13, Squeeze/Unsqueeze 13, Reduce* 13/18, Upsample 9, Resize 11/13) are read by opset in
  each converter.
- Bumps with the same fields and a changed meaning: negative axes and indices allowed at
  opset 11 (ArgMax, Concat, Flatten, Gather, OneHot, Reduce*, Slice, Split, Squeeze, Unsqueeze,
  Scatter): every converter normalises axes and wraps negative indices; Softmax, LogSoftmax and
  Hardmax 13 act along one axis instead of flattening to 2-D (handled by opset); Mod 28 allows
  ``fmod=0`` on floats (``a - floor(a / b) * b``, as the converter computes, but not the
  special cases the text adds: for a finite ``a`` and an infinite ``b`` the converter gives NaN
  where Mod-28 gives ``a`` or ``b``); Pad 19 adds the
  ``wrap`` mode, Resize 19 ``half_pixel_symmetric`` (Resize asks onnx's reference for the node's
  own version), ScatterElements/ScatterND 18 add ``max``/``min`` reductions (all implemented);
  SpaceToDepth 28 adds ``mode`` (``DCR``, the default, and ``CRD``, both implemented). Other doc-only bumps (DepthToSpace 28, NegativeLogLikelihoodLoss 13,
  If 11, Gemm 6, Conv/ConvTranspose 11, pools 11) reword the text or fix shape-inference rules.
"""

from __future__ import annotations

#: {op type (domain ai.onnx): the newest schema version the converters were checked against}
REVIEWED: dict[str, int] = {
    "Abs": 13, "Acos": 22, "Acosh": 22, "Add": 14, "AffineGrid": 20, "And": 7, "ArgMax": 13, "ArgMin": 13,
    "Asin": 22, "Asinh": 22, "Atan": 22, "Atanh": 22, "Attention": 25, "AveragePool": 22,
    "BatchNormalization": 15, "BitShift": 28, "BitwiseAnd": 18, "BitwiseNot": 18, "BitwiseOr": 18,
    "BitwiseXor": 18, "Cast": 28, "CastLike": 25, "Ceil": 13, "Celu": 28, "CenterCropPad": 18,
    "Clip": 13, "Compress": 28, "Concat": 13, "Constant": 25, "ConstantOfShape": 25, "Conv": 22, "ConvInteger": 10,
    "ConvTranspose": 22, "Cos": 22, "Cosh": 22, "CumProd": 26, "CumSum": 14, "DFT": 20, "DepthToSpace": 28, "Det": 22, "DeformConv": 22, "Col2Im": 18,
    "DequantizeLinear": 28, "Div": 14, "Dropout": 22, "DynamicQuantizeLinear": 11, "Einsum": 28,
    "Elu": 22, "Equal": 19, "Erf": 13, "Exp": 13, "Expand": 13, "EyeLike": 22, "Flatten": 25, "Floor": 13,
    "GRU": 22, "Gather": 13, "GatherElements": 13, "GatherND": 13, "Gelu": 20, "Gemm": 13,
    "GlobalAveragePool": 22, "GlobalMaxPool": 22, "Greater": 13, "GridSample": 22, "GreaterOrEqual": 16,
    "GroupNormalization": 21, "HardSigmoid": 22, "HardSwish": 22, "Hardmax": 13, "Identity": 25,
    "If": 25, "InstanceNormalization": 22, "IsInf": 20, "IsNaN": 20, "LRN": 13, "LSTM": 22,
    "LayerNormalization": 17, "LeakyRelu": 16, "Less": 13, "LessOrEqual": 16, "Log": 13,
    "LogSoftmax": 13, "Loop": 25, "LpNormalization": 22, "LpPool": 22, "MatMul": 13, "MatMulInteger": 10, "Max": 13, "MaxPool": 22, "MaxUnpool": 22,
    "Mean": 13, "MeanVarianceNormalization": 13, "Min": 13, "Mish": 22, "Mod": 28, "Mul": 14,
    "Neg": 13, "NegativeLogLikelihoodLoss": 22, "NonMaxSuppression": 11, "NonZero": 13, "Not": 1, "OneHot": 28, "Or": 7, "PRelu": 16, "QLinearConv": 10, "QLinearMatMul": 21,
    "Pad": 25, "Pow": 15, "QuantizeLinear": 28, "RMSNormalization": 23, "RNN": 22, "RotaryEmbedding": 23, "Range": 27,
    "Reciprocal": 13, "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 28, "ReduceLogSumExp": 28,
    "ReduceMax": 20, "ReduceMean": 18, "ReduceMin": 20, "ReduceProd": 18, "ReduceSum": 13,
    "ReduceSumSquare": 18, "Relu": 14, "Reshape": 25, "Resize": 19, "ReverseSequence": 28, "RoiAlign": 22, "Round": 22, "Scatter": 11,
    "ScatterElements": 18, "ScatterND": 18, "Selu": 22, "Shape": 25, "Shrink": 9, "Sigmoid": 13,
    "Sign": 13, "Sin": 22, "Sinh": 22, "Size": 25, "Slice": 13, "Softmax": 13,
    "SoftmaxCrossEntropyLoss": 13, "Softplus": 22, "Softsign": 22, "SpaceToDepth": 28, "Split": 18,
    "STFT": 17, "Sqrt": 13, "Squeeze": 25, "Sub": 14, "Sum": 13, "SwiGLU": 28, "Swish": 24, "Tan": 22, "Tanh": 13,
    "ThresholdedRelu": 22, "Tile": 13, "TopK": 24, "Transpose": 25, "Trilu": 14, "Unsqueeze": 25,
    "Upsample": 10, "Where": 16, "Xor": 7,
}


def reviewed(domain: str, op_type: str) -> int | None:
    """The newest reviewed version of ``op_type`` in ``domain`` (``""`` is ai.onnx); ``None``
    when the table has no entry (a domain without versioned schemas)."""
    if domain not in ("", "ai.onnx"):
        return None
    return REVIEWED.get(op_type)
