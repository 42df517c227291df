"""How the recorded passing conformance cases split into plain, bound and folded, without compiling.

For every case that ``docs/onnx-coverage.json`` records as passed, ``conformance._probe`` loads,
prepares and lowers it (no MAX compile) and reports whether inputs had to be bound at
conversion and whether every output was computed at conversion (folded). Prints the counts and
the folded cases, with the commit. Usage: ``python benchmarks/conformance_probe.py`` (a few
minutes on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

from onnx2max import conformance as c

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "onnx-coverage.json"


def main() -> None:
    recorded = {r["name"] for r in json.loads(RESULTS.read_text())["cases"] if r["status"] == "passed"}
    plain = bound = 0
    folded, lost = [], []
    for case in c.collect():
        if case.name not in recorded:
            continue
        kind, why = c.probe_kind(case)
        if kind == "lost":
            lost.append(f"{case.name}: {why}")
        elif kind == "folded":
            folded.append(case.name)
        elif kind == "bound":
            bound += 1
        else:
            plain += 1
    print(f"at {c.source_commit()}: of {len(recorded)} recorded passes, {plain} need no binding, "
          f"{bound} need inputs bound, {len(folded)} are folded, {len(lost)} no longer lower")
    print("folded:", ", ".join(folded))
    for line in lost:
        print("lost:", line)


if __name__ == "__main__":
    main()
