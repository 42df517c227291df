"""Rerun every conformance case that a full run recorded as passed, each in a compile of its own.

The full run (``benchmarks/conformance_full.py``) compiles cases in batches of up to 64 graphs
per MAX ``Module``. This script checks that each case recorded as ``passed`` or
``passed-bound`` passes again when it is compiled and run by itself: one case per MAX compile,
with an empty onnx2max compile cache, through the same :func:`onnx2max.conformance.run` (same
probe, binding, tolerances and statuses).

It must run the code that made the full run: it refuses when the source fingerprint of the
imported onnx2max differs from the one recorded in the full run's results file. To check a run
made at an older commit, check that commit out beside the repository and put it first on the
path::

    git worktree add /tmp/at-d94af72 d94af72
    PYTHONPATH=/tmp/at-d94af72 python benchmarks/conformance_alone.py --out /tmp/alone-0.json --shard 0/2

Cases go in a fixed random order (``--seed``), so a run stopped early (``--minutes``) has
rerun a uniform random sample; a rerun with the same ``--out`` resumes. Cases are compiled in
child processes of ``--chunk`` cases each, one case per compile; a child killed by a signal (a
MAX compiler crash) gets its case recorded as failed and the run goes on after it.
``--shard K/N`` takes every N-th case from the K-th, so N processes can share the work (one
per core). When one shard is done first, a second process can take the other from its end
(``--reverse``, its own ``--out``, and ``--also-done`` naming the first process's file; the
first, restarted with ``--also-done`` naming the second's, then stops where they meet).
``--report FILE ...`` merges result files and prints the comparison as Markdown.

On this project's 2-core machine, two processes (``--shard 0/2`` and ``1/2``, one per core)
reran 112 cases in 47 minutes (2026-12-07), so all 1,582 passes of the run at d94af72 take about
11 hours of both cores; later, with MAX's kernel cache warm from a run of the test suite, two
processes reran 366 cases in under two hours (12:26-14:20, with pauses). All 1,582 have been
rerun (20.0 hours of one core summed) and all passed again with the same status; the results are
in ``benchmarks/results/conformance_alone_d94af72_*`` (``--report`` with the three files).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _order(full: dict, seed: int, shard: tuple[int, int]) -> list[str]:
    from onnx2max.conformance import PASSES

    names = sorted(r["name"] for r in full["cases"] if r["status"] in PASSES)
    random.Random(seed).shuffle(names)
    k, n = shard
    return names[k::n]


def _done(out: Path) -> dict:
    if not out.exists():
        return {}
    return {r["name"]: r for r in json.loads(out.read_text())["cases"]}


def _record_crash(out: Path, name: str, signal: int) -> None:
    """Write a failed record for ``name`` into the results file ``out`` (whose child died)."""
    from onnx2max import conformance as c

    data = json.loads(out.read_text()) if out.exists() else {**c.provenance(), "cases": []}
    case = next(k for k in c.collect(names=[name]))
    data["cases"].append({"name": name, "op_type": c.op_type_of(case), "status": c.FAILED,
                          "reason": f"MAX crashed compiling this case alone (signal {signal})",
                          "seconds": 0.0})
    data["cases"].sort(key=lambda r: r["name"])
    out.write_text(json.dumps(data, indent=1))


def _child(out: Path, names: list[str]) -> None:
    """Run ``names`` one case per compile, in this process, into ``out``; the case being
    compiled is written to ``out`` + ``.current`` first, so a crash can be pinned on it."""
    from onnx2max import conformance as c

    marker = Path(str(out) + ".current")
    compile_batch = c._compile

    def alone(batch, cache_dir, isolate=True):
        assert len(batch) == 1, "one case per compile"
        marker.write_text(batch[0][0].name)
        return compile_batch(batch, cache_dir, isolate=False)

    c._compile = alone
    cache = tempfile.mkdtemp(prefix="onnx2max-alone-")
    try:
        cases = c.collect(names=names)
        c.run(cases, out, batch_size=1, bucket=False, cache_dir=cache,
              log=lambda m: print(f"[{out.name}] {m}", flush=True))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    marker.unlink(missing_ok=True)
    sys.stdout.flush()
    os._exit(0)  # MAX 26.7 sometimes aborts in its thread teardown at a normal exit


def _run(args) -> None:
    from onnx2max.conformance import provenance

    full = json.loads(Path(args.full).read_text())
    here = provenance()
    if here["fingerprint"] != full["fingerprint"] and not args.any_code:
        raise SystemExit(
            f"{args.full} was made by onnx2max {full.get('onnx2max_commit')} (source fingerprint "
            f"{full['fingerprint'][:12]}); the imported onnx2max is {here['onnx2max_commit']} "
            f"({here['fingerprint'][:12]}). Check that commit out (git worktree add DIR COMMIT) and "
            "run with PYTHONPATH=DIR, or pass --any-code.")
    k, n = (int(x) for x in args.shard.split("/"))
    order = _order(full, args.seed, (k, n))
    if args.reverse:
        order.reverse()
    out = Path(args.out)
    stop = time.monotonic() + args.minutes * 60 if args.minutes else None
    while True:
        done = _done(out)
        for other in args.also_done:
            done.update(_done(Path(other)))
        todo = [name for name in order if name not in done]
        print(f"{len(order) - len(todo)} of {len(order)} cases rerun alone into {out}; {len(todo)} to go",
              flush=True)
        if not todo or (stop is not None and time.monotonic() > stop):
            return
        marker = Path(str(out) + ".current")
        marker.unlink(missing_ok=True)
        rc = subprocess.run([sys.executable, __file__, "--child", str(out), *todo[:args.chunk]]).returncode
        if rc < 0 and marker.exists():
            _record_crash(out, marker.read_text().strip(), -rc)
        elif rc != 0:
            raise SystemExit(f"the child process for {todo[0]} .. failed with exit status {rc}")


def _report(full_path: str, files: list[str]) -> None:
    from onnx2max.conformance import PASSES

    full = {r["name"]: r for r in json.loads(Path(full_path).read_text())["cases"]}
    runs = [json.loads(Path(f).read_text()) for f in files]
    alone = {r["name"]: r for d in runs for r in d["cases"]}
    commits = sorted({d.get("onnx2max_commit") for d in runs})
    passes = sum(1 for r in full.values() if r["status"] in PASSES)
    again = [r for r in alone.values() if r["status"] in PASSES]
    changed = [r for r in again if r["status"] != full[r["name"]]["status"]]
    lost = [r for r in alone.values() if r["status"] not in PASSES]
    print(f"Rerun alone (one case per MAX compile) at onnx2max {', '.join(map(str, commits))}: "
          f"{len(alone)} of the {passes} cases recorded as passed; {len(again)} passed again"
          f" ({sum(1 for r in again if r['status'] == 'passed')} passed, "
          f"{sum(1 for r in again if r['status'] == 'passed-bound')} passed-bound), "
          f"{len(lost)} did not. Time recorded per case (wall, under the run's load), summed: "
          f"{sum(r['seconds'] for r in alone.values()) / 3600:.1f} h.")
    for r in sorted(changed, key=lambda r: r["name"]):
        print(f"- {r['name']}: {full[r['name']]['status']} in the full run, {r['status']} alone")
    for r in sorted(lost, key=lambda r: r["name"]):
        print(f"- **{r['name']}** ({r['op_type']}): {r['status']} alone: {r['reason']}")


def main(argv=None) -> None:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", default=str(ROOT / "docs" / "onnx-coverage.json"),
                    help="the full run's results file (default: docs/onnx-coverage.json)")
    ap.add_argument("--out", default="conformance_alone.json", help="this run's results file")
    ap.add_argument("--seed", type=int, default=20261207, help="the order of the cases")
    ap.add_argument("--shard", default="0/1", help="K/N: every N-th case from the K-th")
    ap.add_argument("--chunk", type=int, default=25, help="cases per child process")
    ap.add_argument("--minutes", type=float, default=0, help="start no child after this many minutes")
    ap.add_argument("--any-code", action="store_true", help="run whatever onnx2max is imported")
    ap.add_argument("--reverse", action="store_true",
                    help="take the shard's cases from its end: a second process on the same shard")
    ap.add_argument("--also-done", nargs="+", default=[], metavar="FILE",
                    help="cases recorded in these results files (another process's --out) are not rerun")
    ap.add_argument("--report", nargs="+", metavar="FILE", help="merge these results files and print")
    args = ap.parse_args(argv)
    if args.report:
        _report(args.full, args.report)
    else:
        _run(args)


if __name__ == "__main__":
    main()
