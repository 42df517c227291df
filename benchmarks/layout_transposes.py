"""Transposes in the lowered MAX graph of each fetched real model, basic vs wide layout.

Lowers (no compile) every model of ``benchmarks/real_models`` that is fetched, with
``ONNX2MAX_LAYOUT=basic`` and with the default wide layout, counts the MAX ``transpose`` ops
of each graph and prints a markdown table naming the commit, for ``docs/performance.md``.

Usage: ``python benchmarks/layout_transposes.py`` (about a minute).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "real_models"))
import corpus  # noqa: E402


def transposes(path: str, shapes: dict, layout: str) -> int:
    """MAX ``transpose`` ops in the lowered graph of ``path`` under ``ONNX2MAX_LAYOUT=layout``."""
    from max.graph import DeviceRef
    from max.graph.graph import Module

    import onnx2max.ops  # noqa: F401  (registers the converters)
    from onnx2max.load import load_model
    from onnx2max.lower import lower_graph
    from onnx2max.prepare import prepare

    os.environ["ONNX2MAX_LAYOUT"] = layout
    proto, src = load_model(path)
    module = Module()
    lower_graph(prepare(proto, src, shapes), DeviceRef.CPU(), "g0", "g0_", module=module)
    return len(re.findall(r"\btranspose\b", module._to_mlir_str()))


def main() -> None:
    from onnx2max import UnsupportedOpError
    from onnx2max.conformance import source_commit

    print(f"Transposes in the lowered graph, at {source_commit()} (inputs as in the manifest):\n")
    print("| model | basic | wide |")
    print("|---|---|---|")
    for e in corpus.manifest():
        if not corpus.fetched(e):
            continue
        shapes = {k: v.shape for k, v in corpus.make_inputs(e).items()}
        try:
            counts = [transposes(str(corpus.model_path(e)), shapes, lay) for lay in ("basic", "wide")]
        except UnsupportedOpError:
            continue
        print(f"| {e['name']} | {counts[0]} | {counts[1]} |")


if __name__ == "__main__":
    main()
