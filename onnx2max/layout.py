"""The one place where ONNX's channels-first layout meets MAX's channels-last CPU kernels.

ONNX convolutions and pools are NCHW; MAX's CPU ``conv2d``, ``max_pool2d`` and ``avg_pool2d``
take NHWC (MAX 26.7 fails at compile with "only NHWC input layout is supported"). Each value in
the lowering environment may therefore hold a channels-first form, a channels-last form, or
both; a form is made (one ``ops.permute``) only when a consumer asks for it, so a chain
``Conv -> BatchNormalization -> Relu -> Conv`` stays channels-last throughout, and elementwise
ops registered as layout-agnostic run on whichever form exists.
"""

from __future__ import annotations

from max.graph import TensorValue, ops

#: channels-first -> channels-last permutation, by rank (N, C, spatial...) -> (N, spatial..., C).
def to_last_perm(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def to_first_perm(rank: int) -> list[int]:
    return [0, rank - 1, *range(1, rank - 1)]


def channels_last(x: TensorValue) -> TensorValue:
    """NC... -> N...C with one ``ops.permute``."""
    return ops.permute(x, to_last_perm(x.rank))


def channels_first(x: TensorValue) -> TensorValue:
    """N...C -> NC... with one ``ops.permute``."""
    return ops.permute(x, to_first_perm(x.rank))


def first_shape_of_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The channels-first shape of a tensor whose channels-last shape is ``shape``."""
    return tuple(shape[i] for i in to_first_perm(len(shape)))


def last_axis_of_first(axis: int, rank: int) -> int:
    """Where channels-first axis ``axis`` sits in the channels-last form."""
    axis = axis % rank
    return to_last_perm(rank).index(axis)


class ChannelsLast:
    """Marks a converter result that is already channels-last (N, spatial..., C)."""

    __slots__ = ("value",)

    def __init__(self, value: TensorValue):
        self.value = value
