"""Typed errors raised by onnx2max.

Every error onnx2max raises on purpose derives from :class:`Onnx2MaxError`, so a caller can
catch one type. Each message names the file, node, op type, input or tensor concerned and what
was expected, and where there is one, what to do next.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


class Onnx2MaxError(Exception):
    """Base class of every error onnx2max raises on purpose."""


class ModelLoadError(Onnx2MaxError):
    """The model file could not be read or parsed (missing, not ONNX, truncated, bad external data)."""


class InvalidModelError(Onnx2MaxError):
    """The model was read but is not a valid ONNX model (checker, opset, shapes, structure)."""


class UnsupportedModelError(InvalidModelError):
    """A valid ONNX model that uses what onnx2max does not translate: a graph input or output of
    an element type MAX lacks (string, 2- and 4-bit types; 8-bit floats, which MAX 26.7 refuses
    on CPU), a non-tensor graph input (sequence, optional, map), or no opset of the default
    domain."""


class ReferenceRunError(Onnx2MaxError):
    """onnxruntime, the accuracy reference of :func:`onnx2max.compare` and ``onnx2max check``,
    cannot load or run the model (for example it has no CPU kernel for a bfloat16 op), so there
    is nothing to compare with. The conversion itself may still work."""


@dataclass(frozen=True)
class UnsupportedNode:
    """One node that no converter handles: its name, domain, op type, the model's opset and the
    model it is in (its file name, ``<ModelProto>`` or ``<bytes>``; empty when not known)."""

    node: str
    domain: str
    op_type: str
    opset: int
    reason: str = ""
    source: str = ""

    def describe(self) -> str:
        dom = self.domain or "ai.onnx"
        text = f"{self.op_type} ({dom}, opset {self.opset}) in node '{self.node}'"
        if self.source:
            text += f" of {self.source}"
        return f"{text}: {self.reason}" if self.reason else text


class UnsupportedOpError(Onnx2MaxError):
    """One or more nodes use an (domain, op type, opset) that onnx2max cannot translate.

    Attributes:
        nodes: every unsupported node of the graph, collected before any compile starts.
    """

    def __init__(self, nodes: list[UnsupportedNode]):
        self.nodes = list(nodes)
        kinds = sorted({(n.domain or "ai.onnx", n.op_type, n.opset) for n in self.nodes})
        lines = [f"{len(self.nodes)} node(s) use ops that onnx2max does not support:"]
        lines += [f"  - {n.describe()}" for n in self.nodes[:50]]
        if len(self.nodes) > 50:
            lines.append(f"  ... and {len(self.nodes) - 50} more")
        lines.append(
            "Unsupported (domain, op type, opset): "
            + ", ".join(f"({d}, {o}, {v})" for d, o, v in kinds)
        )
        lines.append("See README.md 'Supported ops'; re-export the model with other ops if you can.")
        super().__init__("\n".join(lines))


class ConversionError(Onnx2MaxError):
    """A supported op was used in a way onnx2max cannot translate (attribute value, dynamic input).

    Attributes:
        needs_value: the value name whose contents must be known at conversion time (a shape,
            axes, pads, ...), when that is the reason; else ``None``.
    """

    def __init__(self, message: str, needs_value: str | None = None):
        super().__init__(message)
        self.needs_value = needs_value


class CompileError(Onnx2MaxError):
    """MAX failed to compile the translated graph."""


class DeviceError(Onnx2MaxError):
    """The requested device does not exist on this machine or is not recognised."""


class InputError(Onnx2MaxError, ValueError):
    """Inputs given at run time do not match the model: names, dtypes, shapes or devices."""


#: Prefix of the message of a run-time check that a converter puts in the MAX graph (an
#: ``ops.rebind`` of a symbolic dim to the size the op needs); ``CompiledModel.run`` turns
#: MAX's error holding it into an :class:`InputError` with the text after the prefix.
RUN_CHECK = "onnx2max run-time check: "


def user_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn`, called right here, that names the first
    frame outside the onnx2max package: the user's line that led to the warning, wherever in
    onnx2max it is raised (Python 3.12's ``skip_file_prefixes``, for 3.10 on)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
