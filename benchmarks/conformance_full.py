"""Run every ONNX backend node test, as ``onnx2max conformance --fresh`` does, in several
processes side by side, and merge their results into one results file and coverage page.

MAX compiles one graph at a time within a process, so on a 2-core machine two processes halve
the wall time of the full run. The cases are split into disjoint sets by op type (each op's
cases stay together, so compile batches stay the same as in a single run) with about the same
number of cases each; each process writes its own results file (with the onnx2max commit and
source fingerprint, :func:`onnx2max.conformance.provenance`), and the merge refuses files made
by different code.

Usage: ``python benchmarks/conformance_full.py [--jobs 2] [--results docs/onnx-coverage.json]
[--markdown docs/onnx-coverage.md] [--op OP ...]`` (about an hour on 2 cores with empty caches;
``--op`` restricts the run, for a smoke test).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _split(jobs: int, ops=()) -> list[list[str]]:
    """Case names in ``jobs`` disjoint sets of whole op types, greedily balanced by count."""
    from onnx2max import conformance as c

    by_op: dict[str, list[str]] = defaultdict(list)
    for case in c.collect(ops=ops):
        by_op[c.op_type_of(case)].append(case.name)
    parts: list[list[str]] = [[] for _ in range(jobs)]
    for op in sorted(by_op, key=lambda o: (-len(by_op[o]), o)):
        min(parts, key=len).extend(by_op[op])
    return parts


def _worker(names_file: Path, out: Path) -> None:
    from onnx2max import conformance as c

    names = set(names_file.read_text().split())
    cases = [k for k in c.collect() if k.name in names]
    c.run(cases, out, fresh=True, log=lambda m: print(f"[{out.stem}] {m}", flush=True))


def _merge(files: list[Path], results: Path) -> dict:
    data = [json.loads(f.read_text()) for f in files]
    keys = ("onnx2max_commit", "fingerprint", "onnx", "max")
    first = {k: data[0].get(k) for k in keys}
    for d, f in zip(data, files):
        if {k: d.get(k) for k in keys} != first:
            raise SystemExit(f"{f} was made by other code than {files[0]}: "
                             f"{ {k: d.get(k) for k in keys} } vs {first}")
    merged = {k: v for k, v in data[0].items() if k != "cases"}
    merged["cases"] = sorted((r for d in data for r in d["cases"]), key=lambda r: r["name"])
    results.write_text(json.dumps(merged, indent=1))
    return merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--results", type=Path, default=ROOT / "docs" / "onnx-coverage.json")
    ap.add_argument("--markdown", type=Path, default=ROOT / "docs" / "onnx-coverage.md")
    ap.add_argument("--op", action="append", default=[], help="only this op type (repeatable; a smoke test)")
    ap.add_argument("--worker", nargs=2, type=Path, metavar=("NAMES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    from onnx2max import conformance as c

    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="conformance-"))
    procs, outs = [], []
    for k, names in enumerate(_split(args.jobs, args.op)):
        (tmp / f"names{k}.txt").write_text("\n".join(names))
        outs.append(tmp / f"part{k}.json")
        print(f"part {k}: {len(names)} cases", flush=True)
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker",
                                       str(tmp / f"names{k}.txt"), str(outs[-1])]))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a worker failed (exit codes {codes}); partial results in {tmp}")
    merged = _merge(outs, args.results)
    c.write_markdown(args.results, args.markdown)
    tot = c.summary({r["name"]: c.CaseResult(**r) for r in merged["cases"]})
    print(f"{len(merged['cases'])} cases in {time.monotonic() - t0:.0f} s: {tot}")


if __name__ == "__main__":
    main()
