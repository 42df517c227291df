"""Stage 1: read an ONNX model (file, bytes or ModelProto), its external data, and validate it."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper, helper

from .errors import InvalidModelError, ModelLoadError, user_stacklevel


_FOUR_BIT_TYPES = {
    getattr(TensorProto, n)
    for n in ("INT4", "UINT4", "FLOAT4E2M1")
    if hasattr(TensorProto, n)
}


def _check_external_locations(model: onnx.ModelProto, base_dir: Path, source: str) -> None:
    """Refuse external-data locations that leave the model's folder (``..``, absolute, symlinks)."""
    base = base_dir.resolve()
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        if not loc or os.path.isabs(loc) or Path(loc).drive:
            raise ModelLoadError(
                f"{source}: tensor '{tensor.name}' stores its data at '{loc}', which is not a path "
                f"relative to the model's folder {base}; onnx2max only reads external data from there."
            )
        target = (base / loc).resolve()
        if base not in target.parents:
            raise ModelLoadError(
                f"{source}: tensor '{tensor.name}' points its external data at '{loc}', outside the "
                f"model's folder {base}; refused."
            )
        if not target.is_file():
            raise ModelLoadError(
                f"{source}: external data file '{loc}' of tensor '{tensor.name}' is missing "
                f"(looked in {base}). Copy it beside the model."
            )
        _check_external_extent(tensor, info, target, loc, source)


def _check_external_extent(tensor, info: dict, target: Path, loc: str, source: str) -> None:
    """Refuse offsets and lengths outside the file, and data shorter than the declared dims,
    before reading anything (ONNX external data: ``location``, ``offset``, ``length``)."""
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError as e:
        raise ModelLoadError(
            f"{source}: tensor '{tensor.name}' has a non-integer external data offset or length ({e})"
        ) from e
    size = target.stat().st_size
    if offset < 0 or offset > size or (length is not None and length < 0):
        raise ModelLoadError(
            f"{source}: tensor '{tensor.name}' reads '{loc}' at offset {offset} (length "
            f"{length}), outside that file of {size} bytes"
        )
    avail = size - offset
    if length is not None and length > avail:
        raise ModelLoadError(
            f"{source}: tensor '{tensor.name}' wants {length} bytes at offset {offset} of '{loc}', "
            f"which has only {avail} bytes from there: the data file is truncated"
        )
    have = avail if length is None else length
    try:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except Exception:  # string tensors and unknown types: let the checker judge them
        return
    if tensor.data_type in _FOUR_BIT_TYPES:
        need = (math.prod(tensor.dims) + 1) // 2
    else:
        need = math.prod(tensor.dims) * itemsize
    if need > have:
        raise ModelLoadError(
            f"{source}: tensor '{tensor.name}' declares dims {list(tensor.dims)} "
            f"({helper.tensor_dtype_to_string(tensor.data_type)}), {need} bytes, but its external "
            f"data in '{loc}' holds {have} bytes: the data file is truncated or the dims are wrong"
        )


def _check_strings(msg, source: str, path: str = "model") -> None:
    """Decode every string field of ``msg`` (recursively), so a string that is not valid UTF-8
    (protobuf does not check them when parsing ONNX's proto2 files) gives a typed error here
    instead of a ``UnicodeDecodeError`` deep inside later stages. Tensor payloads are skipped."""
    from google.protobuf.descriptor import FieldDescriptor as F

    for field in msg.DESCRIPTOR.fields:
        is_repeated = getattr(field, "is_repeated", None)
        repeated = is_repeated if is_repeated is not None else field.label == F.LABEL_REPEATED
        if field.type == F.TYPE_STRING:
            try:
                values = list(getattr(msg, field.name)) if repeated else [getattr(msg, field.name)]
            except UnicodeDecodeError as e:  # some protobuf builds raise, others return bytes
                values = [e.object]
            for v in values:
                if not isinstance(v, str):
                    raise ModelLoadError(
                        f"{source}: {path}.{field.name} is not valid UTF-8 text ({bytes(v)[:40]!r});"
                        " the file is damaged"
                    )
        elif field.type == F.TYPE_MESSAGE:
            if repeated:
                for k, sub in enumerate(getattr(msg, field.name)):
                    _check_strings(sub, source, f"{path}.{field.name}[{k}]")
            elif msg.HasField(field.name):
                _check_strings(getattr(msg, field.name), source, f"{path}.{field.name}")


def _node_label(k: int, node: onnx.NodeProto) -> str:
    return f"node '{node.name}' ({node.op_type})" if node.name else f"node #{k} ({node.op_type})"


def check_structure(graph: onnx.GraphProto, source: str) -> None:
    """Check the top-level graph's wiring, with messages that name the node and value.

    ONNX (IR spec, "Graphs") requires single assignment and topological order. This finds the
    same faults as ``onnx.checker`` but says which node and value are at fault.

    Raises:
        InvalidModelError: no outputs; a value produced twice (or both a graph input and a node
            output); a node reading a value nobody produces; a node reading a value produced
            by itself or a later node (a cycle, or nodes out of order); an output nobody produces.
    """
    if not graph.output:
        raise InvalidModelError(f"{source}: the graph declares no outputs; there is nothing to compute")
    given = [vi.name for vi in graph.input] + [t.name for t in graph.initializer]
    given += [t.values.name for t in graph.sparse_initializer]
    known = set(given)
    producer: dict[str, int] = {}
    for k, node in enumerate(graph.node):
        for o in node.output:
            if not o:
                continue
            if o in producer:
                raise InvalidModelError(
                    f"{source}: value '{o}' is produced by both "
                    f"{_node_label(producer[o], graph.node[producer[o]])} and {_node_label(k, node)}; "
                    "ONNX requires every value to be assigned once"
                )
            if o in known:
                raise InvalidModelError(
                    f"{source}: {_node_label(k, node)} writes '{o}', which is already a graph "
                    "input or initializer; ONNX requires every value to be assigned once"
                )
            producer[o] = k
    for k, node in enumerate(graph.node):
        for i in node.input:
            if not i or i in known:
                continue
            j = producer.get(i)
            if j is None:
                raise InvalidModelError(
                    f"{source}: {_node_label(k, node)} reads '{i}', which no node, graph input or "
                    "initializer produces"
                )
            if j >= k:
                what = "itself" if j == k else _node_label(j, graph.node[j])
                raise InvalidModelError(
                    f"{source}: {_node_label(k, node)} reads '{i}', which is produced by {what} "
                    "at or after it: the graph has a cycle or its nodes are not in topological order"
                )
    for o in graph.output:
        if o.name not in producer and o.name not in known:
            raise InvalidModelError(
                f"{source}: graph output '{o.name}' is not produced by any node, graph input or "
                "initializer"
            )


def _refuse_external_data_in_memory(proto: onnx.ModelProto, source: str) -> None:
    """A model given in memory has no folder to read external data from: refuse it."""
    if any(external_data_helper.uses_external_data(t)
           for t in external_data_helper._get_all_tensors(proto)):
        raise ModelLoadError(
            f"{source}: the model refers to external data but was given in memory; pass "
            "the path of the .onnx file so its data can be read from the model's folder."
        )


def load_model(model: str | os.PathLike | bytes | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Read an ONNX model and run the ONNX checker on it.

    Args:
        model: a path to an ``.onnx`` file, serialized ``bytes`` or an in-memory
            ``onnx.ModelProto``. External data is read only from files inside the model
            file's own folder.

    Returns:
        ``(model_proto, source)`` where ``source`` is the path, ``"<bytes>"`` or
        ``"<ModelProto>"``, for messages.

    Raises:
        ModelLoadError: missing or unreadable file, not a protobuf ONNX model, bad external data.
        InvalidModelError: the ONNX checker rejects the model (ONNX ``checker.check_model``).
    """
    if isinstance(model, onnx.ModelProto):
        proto, source = model, "<ModelProto>"
        _refuse_external_data_in_memory(proto, source)
    elif isinstance(model, (bytes, bytearray, memoryview)):
        # serialized bytes, as onnxruntime.InferenceSession accepts them
        proto, source = onnx.ModelProto(), "<bytes>"
        if not len(model):
            raise ModelLoadError("<bytes>: empty; expected a serialized ONNX model")
        try:
            proto.ParseFromString(bytes(model))
        except Exception as e:  # protobuf's DecodeError and friends
            raise ModelLoadError(
                f"<bytes>: not a serialized ONNX model ({type(e).__name__}: {e})"
            ) from e
        if not proto.HasField("graph"):
            raise ModelLoadError("<bytes>: parsed, but holds no graph; not a serialized ONNX model")
        _refuse_external_data_in_memory(proto, source)
    elif not isinstance(model, (str, os.PathLike)):
        raise ModelLoadError(
            f"model must be a path, serialized bytes or an onnx.ModelProto, not "
            f"{type(model).__name__}"
        )
    else:
        path = Path(os.fspath(model))
        source = str(path)
        if not path.exists():
            raise ModelLoadError(f"{source}: no such file")
        if not path.is_file():
            raise ModelLoadError(f"{source}: not a regular file")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ModelLoadError(f"{source}: cannot read the file ({e})") from e
        if not data:
            raise ModelLoadError(f"{source}: the file is empty, expected an ONNX protobuf model")
        try:
            proto = onnx.load_model_from_string(data)
        except Exception as e:  # protobuf's DecodeError and friends
            raise ModelLoadError(
                f"{source}: not a valid ONNX protobuf file ({type(e).__name__}: {e}). "
                "Is it truncated, or a file of another format?"
            ) from e
        if not proto.HasField("graph"):
            raise ModelLoadError(f"{source}: parsed, but holds no graph; not an ONNX model file")
        _check_external_locations(proto, path.parent, source)
        try:
            external_data_helper.load_external_data_for_model(proto, str(path.parent))
        except Exception as e:
            raise ModelLoadError(f"{source}: cannot read external data ({e})") from e
    if not proto.HasField("graph"):
        raise ModelLoadError(f"{source}: the model has no graph")
    _check_strings(proto, source)
    check_structure(proto.graph, source)
    try:
        onnx.checker.check_model(_checkable(proto))
    except onnx.checker.ValidationError as e:
        repaired = _without_shapeless_types(proto, source)
        if repaired is None:
            first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
            raise InvalidModelError(f"{source}: the ONNX checker rejects the model: "
                                    f"{first.rstrip('.')}{_shape_inference_reason(proto)}") from e
        proto = repaired
    except ValueError as e:  # e.g. models over 2 GiB given in memory
        raise InvalidModelError(f"{source}: the ONNX checker could not run: {e}") from e
    return proto, source


def _checkable(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto``, or a copy for the ONNX checker in which onnxruntime's own ops of the ONNX
    domain (``registry.ORT_ONNX_DOMAIN_OPS``: SimplifiedLayerNormalization, LayerNormalization
    before opset 17), which onnx's schemas lack, are moved to the ``com.microsoft`` domain, so
    that the checker still checks the rest of the graph."""
    from .registry import ORT_ONNX_DOMAIN_OPS

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        return proto

    def foreign(n: onnx.NodeProto) -> bool:
        if n.domain not in ("", "ai.onnx") or n.op_type not in ORT_ONNX_DOMAIN_OPS:
            return False
        try:
            onnx.defs.get_schema(n.op_type, max_inclusive_version=opset, domain="")
            return False
        except onnx.defs.SchemaError:
            return True

    if not any(foreign(n) for n in proto.graph.node):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for n in copy.graph.node:
        if foreign(n):
            n.domain = "com.microsoft"
    if not any(o.domain == "com.microsoft" for o in copy.opset_import):
        copy.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return copy


def _shape_inference_reason(proto: onnx.ModelProto) -> str:
    """For a model with shapeless value types that could not be given shapes: why, from strict
    ONNX shape inference (the fault is often a node's, e.g. a parameter of the wrong length),
    as text to append to the checker's message; empty when strict inference succeeds too."""
    g = proto.graph
    if not any(vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape")
               for vi in list(g.output) + list(g.value_info)):
        return ""
    try:
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as e:  # noqa: BLE001  (onnx raises several types here)
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        return ("; those values' shapes could not be inferred: " + lines[0]) if lines else ""
    return ""


def _without_shapeless_types(proto: onnx.ModelProto, source: str) -> onnx.ModelProto | None:
    """A copy of ``proto`` that the checker accepts, or ``None``.

    Older exporters write graph outputs (and value_info entries) whose tensor type has no
    ``shape`` field; onnxruntime runs such models, the ONNX checker rejects them ("Field
    'shape' of 'type' is required but missing"). The copy takes those values' types from
    ONNX shape inference and, if the checker then accepts it, the model is used with one
    warning naming the values. Anything else the checker finds, or a shape inference cannot
    give, still raises.
    """
    g = proto.graph
    shapeless = [vi.name for vi in list(g.output) + list(g.value_info)
                 if vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape")]
    if not shapeless:
        return None
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False)
    except Exception:
        return None
    found = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}
    if not all(n in found for n in shapeless):
        return None
    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    for vi in list(fixed.graph.output) + list(fixed.graph.value_info):
        if vi.name in shapeless:
            vi.type.CopyFrom(found[vi.name].type)
    try:
        onnx.checker.check_model(fixed)
    except (onnx.checker.ValidationError, ValueError):
        return None
    warnings.warn(
        f"{source}: value(s) {shapeless} have a tensor type without a shape, which the ONNX "
        "checker rejects and onnxruntime accepts; their shapes are taken from ONNX shape inference",
        UserWarning, stacklevel=user_stacklevel(),
    )
    return fixed
