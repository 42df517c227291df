"""Write ``tests/conformance_sample.txt``: the ONNX backend node tests that CI must pass.

Stratified over op types: for every op type with a passing case in ``docs/onnx-coverage.json``,
up to ``--per-op`` of its passing cases (default 2), spread over the op type's cases in name
order (first, last, and evenly between), so every op type that passes anywhere is in CI. Cases
that are computed entirely at conversion time (``folded``: MAX computes nothing in them) are
left out; each candidate is loaded, prepared and lowered (no MAX compile) to tell. The op type of
a case is the op under test (the function op for ``_expanded`` cases).

Usage: ``python benchmarks/make_conformance_sample.py [--per-op 2]`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from onnx2max import conformance as c

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "onnx-coverage.json"
SAMPLE = ROOT / "tests" / "conformance_sample.txt"


def _spread(names: list[str], k: int) -> list[str]:
    """``k`` names spread evenly over ``names`` (all of them when there are at most ``k``)."""
    if len(names) <= k:
        return names
    if k == 1:
        return names[:1]
    return [names[round(j * (len(names) - 1) / (k - 1))] for j in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-op", type=int, default=2)
    args = ap.parse_args()
    recorded = {r["name"] for r in json.loads(RESULTS.read_text())["cases"]
                if r["status"] in c.PASSES}
    by_op: dict[str, list] = defaultdict(list)
    for case in c.collect():
        if case.name in recorded:
            by_op[c.op_type_of(case)].append(case)
    picked, folded, lost, covered, bound = [], [], [], 0, 0
    for op in sorted(by_op):
        cases = sorted(by_op[op], key=lambda k: k.name)
        chosen = []
        # try the evenly spread picks first, then the rest in order, until per-op are kept
        spread = _spread(cases, args.per_op)
        order = spread + [k for k in cases if k not in spread]
        for case in order:
            if len(chosen) == args.per_op:
                break
            kind, why = c.probe_kind(case)
            if kind == "lost":
                lost.append(f"{case.name}: {why}")
                continue
            if kind == "folded":
                folded.append(case.name)
                continue
            bound += kind == "bound"
            chosen.append(case.name)
        if not chosen:
            print(f"# {op}: every recorded pass is folded or no longer lowers; none picked")
        picked += chosen
        covered += bool(chosen)
    header = [
        "# ONNX backend node tests that must pass in CI (tests/test_conformance.py).",
        f"# Written by benchmarks/make_conformance_sample.py --per-op {args.per_op} at "
        f"{c.source_commit()}: up to {args.per_op} per op type",
        "# of the cases recorded as passed in docs/onnx-coverage.json, cases folded at conversion "
        "time left out.",
    ]
    SAMPLE.write_text("\n".join(header + picked) + "\n")
    print(f"{len(picked)} cases of {covered} op types written to {SAMPLE.relative_to(ROOT)}; "
          f"{bound} of them need inputs bound at conversion; {len(folded)} folded and {len(lost)} no "
          "longer lowering skipped")
    for line in lost:
        print("  no longer lowers:", line)


if __name__ == "__main__":
    main()
