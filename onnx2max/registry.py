"""The op registry: converters keyed by (domain, op type, since_version).

A converter is a plain function ``fn(ctx) -> outputs`` registered with :func:`converter`. For a
model importing opset ``v`` of a domain, the schema in force is
``onnx.defs.get_schema(op_type, max_inclusive_version=v, domain=domain)``; the converter used is
the one registered with the greatest ``since`` not above that schema's ``since_version``. A new
converter function is registered only where the operator's meaning changed. Versions newer than
the ones the converters were checked against (:data:`onnx2max.versions.REVIEWED`) are not
lowered: they are reported as unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import onnx

from .errors import UnsupportedNode
from .versions import reviewed


@dataclass(frozen=True)
class Converter:
    """A registered converter: the function, the op it serves and from which version."""

    domain: str
    op_type: str
    since: int
    fn: Callable
    #: elementwise ops that give the same result in any layout (see ``layout.py``).
    layout_agnostic: bool = False


_REGISTRY: dict[tuple[str, str], list[Converter]] = {}

#: Ops that onnxruntime defines in the ONNX domain at version 1 and that onnx's schemas lack
#: (``LayerNormalization`` before opset 17, ``SimplifiedLayerNormalization``): its transformer
#: optimizer writes them into models. Resolved to the converter registered ``since=1``.
ORT_ONNX_DOMAIN_OPS = ("LayerNormalization", "SimplifiedLayerNormalization")


def converter(op_type: str, since: int = 1, domain: str = "", layout_agnostic: bool = False):
    """Register ``fn`` as the converter of ``op_type`` from opset ``since`` of ``domain`` on.

    Raises:
        RuntimeError: at import, when a converter for the same op and ``since`` exists.
    """

    def wrap(fn):
        key = ("" if domain == "ai.onnx" else domain, op_type)
        clash = [c for c in _REGISTRY.get(key, []) if c.since == since]
        if clash:
            raise RuntimeError(
                f"two converters for {key[0] or 'ai.onnx'}::{op_type} since opset {since}: "
                f"{clash[0].fn.__module__}.{clash[0].fn.__qualname__} and {fn.__module__}.{fn.__qualname__}")
        _REGISTRY.setdefault(key, []).append(
            Converter(key[0], op_type, since, fn, layout_agnostic)
        )
        _REGISTRY[key].sort(key=lambda c: c.since)
        return fn

    return wrap


def _schema_since(domain: str, op_type: str, opset: int) -> int | None:
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain).since_version
    except onnx.defs.SchemaError:
        return None


def resolve(domain: str, op_type: str, opset: int) -> Converter | UnsupportedNode | None:
    """The converter for ``op_type`` at ``opset``; ``None`` if onnx2max has none.

    Returns an :class:`UnsupportedNode` (without node name) carrying the reason when the op
    does not exist at that opset, or when the opset selects a version of the op newer than the
    one its converters were checked against (:data:`onnx2max.versions.REVIEWED`).
    """
    domain = "" if domain == "ai.onnx" else domain
    entries = _REGISTRY.get((domain, op_type))
    if not entries:
        return None
    since = _schema_since(domain, op_type, opset)
    if since is None and domain == "" and op_type in ORT_ONNX_DOMAIN_OPS:
        since = 1  # onnxruntime's own version 1 of an op onnx's schemas lack (at this opset)
    if since is None:
        if domain == "":
            return UnsupportedNode("", domain, op_type, opset, "no such operator at this opset")
        since = opset
    newest = reviewed(domain, op_type)
    if newest is not None and since > newest:
        return UnsupportedNode(
            "", domain, op_type, opset,
            f"this opset selects {op_type}-{since}, newer than the versions onnx2max's converter "
            f"was checked against (up to {op_type}-{newest}); convert the model to an older opset "
            "(onnx.version_converter) or update onnx2max")
    usable = [c for c in entries if c.since <= since]
    return usable[-1] if usable else None


def supported_ops() -> list[tuple[str, str, list[int]]]:
    """Every registered ``(domain, op_type, [since versions])``, sorted."""
    return sorted((d or "ai.onnx", o, [c.since for c in cs]) for (d, o), cs in _REGISTRY.items())
