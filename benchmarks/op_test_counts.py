"""Count what the op tests (``tests/cases.py``, run by ``tests/test_ops.py``) cover: the number of
case models, and which registered op types (``onnx2max.registry.supported_ops()``) appear as a
node in at least one of them (subgraphs included). No compile; prints the figures the README
quotes, and the registered op types without a case.

Usage: ``python benchmarks/op_test_counts.py``
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _op_types(graph, out: set) -> None:
    for n in graph.node:
        out.add(("ai.onnx" if n.domain in ("", "ai.onnx") else n.domain, n.op_type))
        for a in n.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                _op_types(g, out)


def main() -> None:
    warnings.simplefilter("ignore")
    from cases import GROUPS

    from onnx2max.registry import supported_ops

    seen: set = set()
    n = 0
    for make in GROUPS.values():
        for case in make():
            n += 1
            _op_types(case.model.graph, seen)
    registered = {(d, o) for d, o, _ in supported_ops()}
    covered = registered & seen
    print(f"{n} op-test models; {len(covered)} of {len(registered)} registered op types appear in them")
    extra = sorted(f"{d}:{o}" for d, o in seen - registered)
    print(f"op types in them without a converter of their own (prepare expands them): {', '.join(extra)}")
    print("registered op types without an op test:",
          ", ".join(sorted(f"{o}" if d == "ai.onnx" else f"{d}:{o}" for d, o in registered - seen)))


if __name__ == "__main__":
    main()
