"""Strict dispatch: every converter is checked against the newest version of its op that the
installed onnx defines (``onnx2max/versions.py``), and a newer version is refused, not lowered
by a converter written for an older meaning. Nothing here compiles."""

from __future__ import annotations

import onnx
import onnx.defs
import pytest
from onnx import TensorProto, helper

import onnx2max
from onnx2max import registry, versions


def _schema_versions(op_type: str, domain: str = "") -> list[int]:
    return sorted({s.since_version for s in onnx.defs.get_all_schemas_with_history()
                   if s.name == op_type and s.domain == domain})


def _fields(schema) -> dict:
    return {
        "attributes": sorted(schema.attributes),
        "inputs": [(i.name, int(i.option)) for i in schema.inputs],
        "outputs": [(o.name, int(o.option)) for o in schema.outputs],
        "types": {t.type_param_str: sorted(t.allowed_type_strs) for t in schema.type_constraints},
    }


def _what_changed(op_type: str, old: int, new: int) -> str:
    """Which schema fields differ between two versions (what a reviewer reads first)."""
    a, b = (_fields(onnx.defs.get_schema(op_type, v)) for v in (old, new))
    changed = [k for k in a if a[k] != b[k]]
    return ", ".join(changed) if changed else "same fields: read the documentation diff"


def _onnx_ops():
    """Registered ops of the ONNX domain that onnx defines (not onnxruntime's own ops there,
    :data:`registry.ORT_ONNX_DOMAIN_OPS`, that onnx lacks: they have one version, 1)."""
    return [(d, op, since) for d, op, since in registry.supported_ops()
            if d == "ai.onnx" and _schema_versions(op)]


def test_ops_outside_onnx_are_onnxruntime_ops():
    """Every registered op either has onnx schemas, or is onnxruntime's (com.microsoft, or
    one of the two it defines in the ONNX domain) with the single version 1."""
    for domain, op_type, since in registry.supported_ops():
        if domain == "ai.onnx" and _schema_versions(op_type):
            continue
        assert domain == "com.microsoft" or op_type in registry.ORT_ONNX_DOMAIN_OPS, (domain, op_type)
        assert since == [1], (domain, op_type, since)


def test_every_converter_is_checked_up_to_the_installed_onnx():
    stale = []
    for domain, op_type, _ in _onnx_ops():
        domain = "" if domain == "ai.onnx" else domain
        newest = versions.reviewed(domain, op_type)
        assert newest is not None, f"{op_type} has no entry in onnx2max/versions.py REVIEWED"
        newer = [v for v in _schema_versions(op_type, domain) if v > newest]
        for v in newer:
            stale.append(f"{op_type}-{v} (checked up to {op_type}-{newest}; changed: "
                         f"{_what_changed(op_type, newest, v)})")
    assert not stale, ("the installed onnx has op versions that no converter was checked against; "
                       "review each against its converter, then raise REVIEWED in "
                       "onnx2max/versions.py:\n" + "\n".join(stale))


def test_reviewed_table_holds_registered_ops_at_real_versions():
    ops = {op for _, op, _ in _onnx_ops()}
    assert set(versions.REVIEWED) == ops
    for op_type, v in versions.REVIEWED.items():
        assert v in _schema_versions(op_type), f"{op_type}-{v} is not a version of {op_type}"


def _relu_model(opset: int) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="act")], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_a_version_newer_than_the_checked_one_is_unsupported(monkeypatch):
    # Relu has versions 1, 6, 13 and 14; pretend the converter was checked only up to Relu-6
    monkeypatch.setitem(versions.REVIEWED, "Relu", 6)
    assert isinstance(registry.resolve("", "Relu", 12), registry.Converter)  # Relu-6 at opset 12
    refused = registry.resolve("", "Relu", 13)
    assert isinstance(refused, onnx2max.errors.UnsupportedNode)
    with pytest.raises(onnx2max.UnsupportedOpError) as e:
        onnx2max.from_onnx(_relu_model(14), cache_dir=False, progress=False)
    msg = str(e.value)
    assert "'act'" in msg and "Relu-14" in msg and "up to Relu-6" in msg


def test_ops_command_shows_the_checked_version():
    from click.testing import CliRunner

    from onnx2max.cli import main

    out = CliRunner().invoke(main, ["ops"]).output
    line = next(ln for ln in out.splitlines() if ln.split()[1:2] == ["Softmax"])
    assert "since opset 1, 13" in line and f"Softmax-{versions.REVIEWED['Softmax']}" in line
