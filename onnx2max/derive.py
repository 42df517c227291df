"""Weights derived from initializers at load time (numpy), instead of at every run (MAX).

A converter may turn initializers into a new weight with a named recipe: Gemm's ``transB``
becomes a pre-transposed weight, BatchNormalization's four parameters become one scale and one
shift. The compiled graph depends only on the recipe and the shapes, never on the values, so a
cached artifact still serves any weights: the cache manifest records the recipe and its inputs,
and a cache hit recomputes the arrays from the new model's initializers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _transpose(a: np.ndarray) -> np.ndarray:
    return a.T


def _swap_last2(a: np.ndarray) -> np.ndarray:
    """Transpose the last two axes: RNN ``W``/``R`` (dirs, gates*hidden, n) -> (dirs, n, gates*hidden)."""
    return np.swapaxes(a, -1, -2)


def _channels_last(a: np.ndarray, *, rank: int) -> np.ndarray:
    """A constant left-padded to ``rank`` dims, then (N, C, spatial...) -> (N, spatial..., C)."""
    a = a.reshape((1,) * (rank - a.ndim) + a.shape)
    return a.transpose([0, *range(2, rank), 1])


def _bn_scale(scale, var, *, eps: float) -> np.ndarray:
    return scale / np.sqrt(var + np.asarray(eps, dtype=var.dtype))


def _bn_shift(scale, bias, mean, var, *, eps: float) -> np.ndarray:
    return bias - mean * _bn_scale(scale, var, eps=eps)


def _conv_transpose_rscf(w: np.ndarray) -> np.ndarray:
    """ONNX ConvTranspose filter (Cin, Cout/group, [kh,] kw) -> MAX RSCF (kh, kw, Cout/g, Cin)."""
    if w.ndim == 3:
        w = w[:, :, None, :]
    return w.transpose(2, 3, 1, 0)


def _pointwise_matrix(w: np.ndarray) -> np.ndarray:
    """A 1x1 Conv filter (Cout, Cin, 1[, 1]) -> the (Cin, Cout) matrix that right-multiplies
    the channels-last pixels."""
    return w.reshape(w.shape[0], w.shape[1]).T


RECIPES: dict[str, Callable[..., np.ndarray]] = {
    "transpose": _transpose,
    "swap_last2": _swap_last2,
    "channels_last": _channels_last,
    "conv_transpose_rscf": _conv_transpose_rscf,
    "pointwise_matrix": _pointwise_matrix,
    "bn_scale": _bn_scale,
    "bn_shift": _bn_shift,
}


def compute(recipe: str, arrays: list[np.ndarray], params: dict, shape: list[int]) -> np.ndarray:
    """Evaluate ``recipe`` on ``arrays`` and reshape to ``shape``; a C-contiguous array of the
    first input's dtype."""
    out = RECIPES[recipe](*arrays, **params)
    out = np.asarray(out, dtype=arrays[0].dtype).reshape(shape)
    return np.array(out, order="C", copy=True)
