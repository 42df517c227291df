"""Stage 1: read an ONNX model (file or ModelProto), its external data, and validate it."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import external_data_helper

from .errors import InvalidModelError, ModelLoadError


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


def load_model(model: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Read an ONNX model and run the ONNX checker on it.

    Args:
        model: a path to an ``.onnx`` file or an in-memory ``onnx.ModelProto``. External data
            is read only from files inside the model file's own folder.

    Returns:
        ``(model_proto, source)`` where ``source`` is the path or ``"<ModelProto>"``, for messages.

    Raises:
        ModelLoadError: missing or unreadable file, not a protobuf ONNX model, bad external data.
        InvalidModelError: the ONNX checker rejects the model (ONNX ``checker.check_model``).
    """
    if isinstance(model, onnx.ModelProto):
        proto, source = model, "<ModelProto>"
        if any(
            external_data_helper.uses_external_data(t)
            for t in external_data_helper._get_all_tensors(proto)
        ):
            raise ModelLoadError(
                "<ModelProto>: the model refers to external data but was given in memory; pass "
                "the path of the .onnx file so its data can be read from the model's folder."
            )
    elif not isinstance(model, (str, os.PathLike)):
        raise ModelLoadError(
            f"model must be a path or an onnx.ModelProto, not {type(model).__name__}"
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
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        raise InvalidModelError(f"{source}: the ONNX checker rejects the model: {first}") from e
    except ValueError as e:  # e.g. models over 2 GiB given in memory
        raise InvalidModelError(f"{source}: the ONNX checker could not run: {e}") from e
    return proto, source
