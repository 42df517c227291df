"""The ONNX backend node tests as the measure of op coverage (``onnx2max conformance``).

The cases come from the installed onnx package (``onnx.backend.test.case.node.
collect_testcases()``): about 1,900 one-node models, each with inputs and expected outputs.
Each case is loaded, prepared and lowered on its own (milliseconds; this sorts out
unsupported ops and conversion errors without compiling). The cases that lower are compiled
in batches, each batch as one MAX ``Module`` through the compile cache, so a rerun loads them
in milliseconds. Then every data set of a case runs and is compared with the expected outputs,
with the suite's tolerances: rtol 1e-3 and atol 1e-7 (or the case's own), and NaN equal to NaN.

Results go to a JSON file, one record per case. It is rewritten after every batch, and a rerun
skips the cases it already holds (resume). :func:`write_markdown` turns it into
``docs/onnx-coverage.md``.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import onnx

from . import dtypes
from .errors import Onnx2MaxError, UnsupportedModelError, UnsupportedOpError

PASSED, FAILED, UNSUPPORTED = "passed", "failed", "unsupported"
#: passed only after inputs MAX needs at conversion (shapes, axes, pads, k, a condition) were
#: bound to the case's values
PASSED_BOUND = "passed-bound"
#: every output was computed at conversion time (onnx's reference evaluator): MAX computed
#: nothing, so it is not a pass
FOLDED = "folded"
#: the statuses that count as passes: MAX computed the outputs
PASSES = (PASSED, PASSED_BOUND)


@dataclass
class CaseResult:
    """One backend test case: its name, op type, status and, unless passed, why (one line).

    ``status`` is ``"passed"`` (MAX computed every output from the case's inputs),
    ``"passed-bound"`` (passed after binding inputs MAX needs at conversion time; ``reason``
    names them), ``"folded"`` (every output computed at conversion time: not a pass),
    ``"failed"`` (conversion, compile or numerical error) or ``"unsupported"`` (an op, opset
    or dtype onnx2max does not translate).
    """

    name: str
    op_type: str
    status: str
    reason: str = ""
    seconds: float = 0.0


def collect(ops: Iterable[str] = (), names: Iterable[str] = ()) -> list:
    """The backend node test cases of the installed onnx, filtered.

    Args:
        ops: op types to keep (case-insensitive); empty keeps all.
        names: glob patterns on the case name (``test_conv*``); empty keeps all.

    Returns:
        onnx ``TestCase`` objects (``name``, ``model``, ``data_sets``, ``rtol``, ``atol``), by name.
    """
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    ops = {o.lower() for o in ops}
    names = list(names)
    out = []
    for c in cases:
        if ops and op_type_of(c).lower() not in ops:
            continue
        if names and not any(fnmatch.fnmatch(c.name, p) for p in names):
            continue
        out.append(c)
    return sorted(out, key=lambda c: c.name)


def op_type_of(case) -> str:
    """The op type a case tests: that of its model's last node; for an ``_expanded`` case
    (the op's function body written out as nodes) the op of the case it expands."""
    base = expanded_base(case.name)
    if base is not None:
        op = _last_ops().get(base)
        if op is not None:
            return op
    nodes = case.model.graph.node
    return nodes[-1].op_type if nodes else "?"


def expanded_base(name: str) -> str | None:
    """``test_softmax_axis_0_expanded_ver18`` -> ``test_softmax_axis_0``; ``None`` when
    ``name`` is not an expanded case."""
    return name.split("_expanded")[0] if "_expanded" in name else None


@functools.lru_cache(maxsize=1)
def _last_ops() -> dict[str, str]:
    """``{case name: op type of its last node}`` for the non-expanded backend cases."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c.name: c.model.graph.node[-1].op_type for c in collect_testcases()
                if "_expanded" not in c.name and c.model.graph.node}


def _one_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def _compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str | None:
    """``None`` when equal within the tolerances, else a one-line reason."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if dtypes.is_narrow(want.dtype) or dtypes.is_byte_float_dtype(want.dtype):
        # bfloat16 and the 8-bit floats (ml_dtypes): compared as float32, NaN equal
        got, want = got.astype(np.float32), want.astype(np.float32)
    if want.dtype.kind in "fc":
        ok = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    else:
        ok = got == want
    if np.all(ok):
        return None
    bad = int(np.size(ok) - np.count_nonzero(ok))
    if want.dtype.kind in "fc":
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        return f"{bad} of {want.size} elements differ (max abs error {np.nanmax(diff):.3g})"
    return f"{bad} of {want.size} elements differ"


def _array(v) -> np.ndarray:
    """A data-set value as numpy (the suite stores some as ``TensorProto``)."""
    if isinstance(v, onnx.TensorProto):
        from onnx import numpy_helper

        return numpy_helper.to_array(v)
    return np.asarray(v)


def _data(case) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    return [([_array(v) for v in ins], [_array(v) for v in outs]) for ins, outs in case.data_sets]


def _feeds(case, model, inputs) -> dict:
    names = [i.name for i in case.model.graph.input]
    wanted = {s.name for s in model.inputs}
    return {n: v for n, v in zip(names, inputs) if n in wanted}


def _run_case(case, model) -> tuple[str, str]:
    rtol = case.rtol if case.rtol is not None else 1e-3
    atol = case.atol if case.atol is not None else 1e-7
    for k, (inputs, outputs) in enumerate(_data(case)):
        try:
            got = model.run(None, _feeds(case, model, inputs))
        except Exception as e:  # typed input errors, and MAX's own run-time errors
            return FAILED, f"data set {k}: {_one_line(e)}"
        if len(got) != len(outputs):
            return FAILED, f"data set {k}: {len(got)} outputs, expected {len(outputs)}"
        for j, (g, w) in enumerate(zip(got, outputs)):
            why = _compare(g, w, rtol, atol)
            if why:
                return FAILED, f"data set {k}, output {j}: {why}"
    return PASSED, ""


def _needed_inputs(model: onnx.ModelProto, p, names: list[str], value: str | None) -> list[str]:
    """The graph inputs to bind so that ``value`` is known at conversion: those it is computed
    from, through the prepared graph (inlined branches included) when there is one. A value made
    inside the subgraph of an ``If`` or ``Loop`` left for run time needs that node's condition
    (or trip count and condition) instead, so that the node is inlined."""
    from .prepare import upstream_graph_inputs

    if not value:
        return []
    nodes = list(p.nodes) if p is not None else list(model.graph.node)
    graph_inputs = set(names)
    need = upstream_graph_inputs(nodes, graph_inputs, value)
    if need:
        return need
    for node in nodes:
        if node.op_type in ("If", "Loop") and _subgraphs_make(node, value):
            controls = node.input[:1] if node.op_type == "If" else node.input[:2]
            return sorted({n for c in controls if c for n in upstream_graph_inputs(nodes, graph_inputs, c)})
    return []


def _subgraphs_make(node: onnx.NodeProto, value: str) -> bool:
    """Whether a subgraph of ``node`` (at any depth) has a node whose output is ``value``."""
    for a in node.attribute:
        for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
            for n in g.node:
                if value in n.output or _subgraphs_make(n, value):
                    return True
    return False


def _freeze(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of ``model`` with graph inputs ``values`` turned into initializers."""
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [i for i in m.graph.input if i.name not in values]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    for name, v in values.items():
        m.graph.initializer.append(numpy_helper.from_array(v, name))
    return m


def probe_kind(case) -> tuple[str, str]:
    """How a case lowers, without compiling (:func:`_probe`): ``("lost", status: reason)`` when
    it no longer lowers, ``("folded", "")`` when every output is computed at conversion (MAX
    computes nothing), ``("bound", names)`` when inputs had to be bound at conversion, else
    ``("plain", "")``."""
    got = _probe(case)
    if isinstance(got, CaseResult):
        return "lost", f"{got.status}: {got.reason}"
    p, names = got
    if all(o in p.values for o in p.outputs):
        return "folded", ""
    return ("bound", ", ".join(names)) if names else ("plain", "")


def _probe(case):
    """Load, prepare and lower one case without compiling: ``(Prepared, names of the inputs
    bound at conversion)``, or a CaseResult.

    MAX compiles static graphs, so a shape, axes or pads input has to be known at conversion
    time. When a converter needs such a value and it comes from graph inputs, those inputs are
    bound to the case's values (made initializers), provided every data set has the same ones.
    """
    from max.graph.graph import Module

    from .compiler import resolve_device
    from .errors import ConversionError
    from .load import load_model
    from .lower import lower_graph
    from .prepare import prepare

    op = op_type_of(case)
    if not case.data_sets:
        return CaseResult(case.name, op, UNSUPPORTED, "the case has no data sets")
    try:
        data = _data(case)
    except Exception as e:
        return CaseResult(case.name, op, UNSUPPORTED, "data not readable as numpy: " + _one_line(e))
    names = [i.name for i in case.model.graph.input]
    model, frozen = case.model, {}
    for _attempt in range(8):
        p = None
        try:
            shapes = {n: v.shape for n, v in zip(names, data[0][0]) if n not in frozen}
            proto, _ = load_model(model)
            p = prepare(proto, case.name, shapes)
            lower_graph(p, resolve_device("cpu").ref, "probe", "probe_", module=Module())
        except UnsupportedOpError as e:
            kinds = sorted({f"{n.op_type} (opset {n.opset})" + (f": {n.reason}" if n.reason else "")
                            for n in e.nodes})
            return CaseResult(case.name, op, UNSUPPORTED, "unsupported " + "; ".join(kinds))
        except ConversionError as e:
            need = [n for n in _needed_inputs(model, p, names, e.needs_value) if n not in frozen]
            if not e.needs_value or not need:
                return CaseResult(case.name, op, FAILED, _one_line(e))
            for n in need:
                k = names.index(n)
                vals = [ins[k] for ins, _ in data]
                if any(v.shape != vals[0].shape or not np.array_equal(v, vals[0]) for v in vals):
                    return CaseResult(case.name, op, FAILED,
                                      f"input '{n}' must be known at conversion time, and the "
                                      "data sets give it different values")
                frozen[n] = vals[0]
            model = _freeze(case.model, frozen)
            continue
        except UnsupportedModelError as e:
            return CaseResult(case.name, op, UNSUPPORTED, _one_line(e))
        except Onnx2MaxError as e:
            return CaseResult(case.name, op, FAILED, _one_line(e))
        except Exception as e:  # a bug in onnx2max: record it, keep going
            return CaseResult(case.name, op, FAILED, "internal error: " + _one_line(e))
        return p, sorted(frozen)
    return CaseResult(case.name, op, FAILED, "too many inputs needed at conversion time")


def _compile_in_child(names: list[str], cache_dir) -> tuple[int, str]:
    """Compile the cases ``names`` into the compile cache in a child process (``python -m
    onnx2max.conformance NAME ...``), so that a MAX crash (a segmentation fault in the
    compiler) kills the child, not the run. Returns the child's exit status and, when its
    compile failed, the error in one line: status 0 compiled (the parent then loads the batch
    from the cache), negative a signal (it crashed), positive another failure (with the error
    when the compile raised one; without, the parent compiles in-process and records the
    error)."""
    import subprocess
    import sys
    import tempfile

    env = dict(os.environ)
    if cache_dir is not None:
        env["ONNX2MAX_CACHE_DIR"] = str(cache_dir)
    with tempfile.TemporaryDirectory(prefix="onnx2max-conformance-") as tmp:
        err_file = Path(tmp) / "error.txt"
        env["ONNX2MAX_CONFORMANCE_ERROR_FILE"] = str(err_file)
        rc = subprocess.run([sys.executable, "-m", "onnx2max.conformance", *names], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        err = err_file.read_text().strip() if err_file.exists() else ""
    return rc, err


def _compile(batch, cache_dir, isolate: bool = True):
    """Compile a batch as one module; on a compile error, split it to isolate the culprit.
    With ``isolate``, the batch is compiled in a child process first (:func:`_compile_in_child`);
    a batch whose compile crashes or fails there is split the same way without compiling it
    again here, and a single case that crashes the compiler is recorded as failed with the
    signal (one that fails, with the compiler's error)."""
    from .compiler import build, resolve_device
    from .model import CompiledModel

    if isolate:
        rc, err = _compile_in_child([c.name for c, _ in batch], cache_dir)
        if rc < 0 or (rc > 0 and err):
            if len(batch) == 1:
                return [(batch[0][0], None, err if rc > 0 else
                         f"MAX crashed compiling this case (signal {-rc}, "
                         "e.g. a segmentation fault in the graph compiler)")]
            half = len(batch) // 2
            return _compile(batch[:half], cache_dir) + _compile(batch[half:], cache_dir)
    dev = resolve_device("cpu")
    try:
        built = build([p for _, p in batch], dev, cache_dir=cache_dir, progress=False,
                      label=f"{len(batch)} conformance cases")
        out = []
        for (c, _), b in zip(batch, built):
            try:
                out.append((c, CompiledModel(b, dev), None))
            except Exception as e:
                out.append((c, None, _one_line(e)))
        return out
    except Exception as e:  # CompileError, or MAX failing to load the compiled module
        if len(batch) == 1:
            return [(batch[0][0], None, _one_line(e))]
        half = len(batch) // 2
        return _compile(batch[:half], cache_dir, isolate) + _compile(batch[half:], cache_dir, isolate)


def _batches(ready: list, size: int, bucket: bool = True) -> list[list]:
    """Split cases into compile batches. With ``bucket``, batches stay the same when other ops
    gain or lose cases: cases are bucketed by the first letter of their op type, then chunked,
    so a rerun after a change to one converter recompiles only the batches that hold its op
    (MAX's own graph cache serves the others). Without, the fewest batches of ``size``."""
    buckets: dict[str, list] = {}
    for item in sorted(ready, key=lambda cp: (op_type_of(cp[0]).lower(), cp[0].name)):
        buckets.setdefault(op_type_of(item[0])[:1].upper() if bucket else "", []).append(item)
    out = []
    for key in sorted(buckets):
        b = buckets[key]
        n = -(-len(b) // size)
        per = -(-len(b) // n)
        out += [b[i:i + per] for i in range(0, len(b), per)]
    return out


def run(
    cases: list,
    results_path: str | os.PathLike,
    *,
    batch_size: int = 64,
    cache_dir=None,
    fresh: bool = False,
    log: Callable[[str], None] = print,
    bucket: bool = True,
    resume_stale: bool = False,
) -> dict[str, CaseResult]:
    """Run backend test cases and record one :class:`CaseResult` per case.

    Args:
        cases: from :func:`collect`.
        results_path: JSON file of results; cases already in it are skipped unless ``fresh``.
        batch_size: cases compiled together in one MAX compile.
        cache_dir: the compile cache (see :func:`onnx2max.from_onnx`).
        fresh: ignore earlier results in ``results_path``.
        log: where progress lines go.
        bucket: batch by op-type letter (stable across reruns) rather than fewest batches.
        resume_stale: keep earlier results made by other code (another onnx2max source
            fingerprint, onnx or MAX version); the file then records every fingerprint.

    Returns:
        ``{case name: CaseResult}`` for every case in the results file (old and new).

    Raises:
        StaleResultsError: the results file was made by other code and neither ``fresh``
            nor ``resume_stale`` was given.
    """
    path = Path(results_path)
    results: dict[str, CaseResult] = {}
    here = provenance()
    sources = [here["fingerprint"]]
    if path.exists() and not fresh:
        try:
            data = json.loads(path.read_text())
            results = {r["name"]: CaseResult(**r) for r in data["cases"]}
        except (ValueError, KeyError, TypeError):
            log(f"{path}: unreadable results file; starting afresh")
            data = {}
        old = data.get("fingerprints") or ([data["fingerprint"]] if data.get("fingerprint") else [])
        if results and (old != [here["fingerprint"]] or data.get("onnx") != here["onnx"]
                        or data.get("max") != here["max"]):
            if not resume_stale:
                raise StaleResultsError(
                    f"{path} holds results of other code (onnx2max source fingerprint "
                    f"{', '.join(f[:12] for f in old) or 'not recorded'}, onnx {data.get('onnx')}, "
                    f"MAX {data.get('max')}; this is {here['fingerprint'][:12]}, onnx {here['onnx']}, "
                    f"MAX {here['max']}). Rerun with --fresh, or pass --resume-stale to keep them.")
            sources = list(dict.fromkeys(old + sources))
    todo = [c for c in cases if c.name not in results]
    log(f"{len(cases)} cases selected, {len(cases) - len(todo)} already in {path}, {len(todo)} to run")

    def save():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**here, "fingerprint": sources[-1] if len(sources) == 1 else "mixed",
                "fingerprints": sources,
                "cases": [asdict(r) for r in sorted(results.values(), key=lambda r: r.name)]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    ready = []
    for c in todo:
        t0 = time.monotonic()
        got = _probe(c)
        if isinstance(got, CaseResult):
            got.seconds = round(time.monotonic() - t0, 3)
            results[c.name] = got
        else:
            ready.append((c, got))
    save()
    log(f"{len(todo) - len(ready)} cases settled without compiling; {len(ready)} to compile")
    bound = {c.name: b for c, (_, b) in ready}
    ready = [(c, p) for c, (p, _) in ready]
    batches = _batches(ready, batch_size, bucket)
    for nb, batch in enumerate(batches):
        t0 = time.monotonic()
        preps = {c.name: p for c, p in batch}
        for case, model, err in _compile(batch, cache_dir):
            op = op_type_of(case)
            if model is None:
                results[case.name] = CaseResult(case.name, op, FAILED, err or "compile failed")
                continue
            status, why = _run_case(case, model)
            p = preps[case.name]
            if status == PASSED and all(o in p.values for o in p.outputs):
                status, why = FOLDED, "every output was computed at conversion time"
            elif status == PASSED and bound[case.name]:
                status, why = PASSED_BOUND, f"inputs bound at conversion: {', '.join(bound[case.name])}"
            results[case.name] = CaseResult(case.name, op, status, why)
        dt = time.monotonic() - t0
        for case, _ in batch:
            results[case.name].seconds = round(dt / len(batch), 3)
        save()
        done = sum(1 for c, _ in batch if results[c.name].status in PASSES)
        log(f"batch {nb + 1}/{len(batches)} ({op_type_of(batch[0][0])} .. "
            f"{op_type_of(batch[-1][0])}): {done}/{len(batch)} passed in {dt:.0f} s")
    return results


class StaleResultsError(Exception):
    """A conformance results file was written by other code (see :func:`run`)."""


def source_commit() -> str:
    """The git commit of onnx2max's source when it is a git checkout (``+changes`` when
    ``onnx2max/`` has uncommitted edits), else ``"unknown"``."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "onnx2max"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict:
    """What produced a results file: onnx2max's source fingerprint, the git commit where the
    source is a git checkout (``+changes`` when it has uncommitted edits), onnx and MAX
    versions, and the date (UTC)."""
    import datetime

    from .cache import code_fingerprint

    commit = source_commit()
    return {"onnx2max_commit": commit, "fingerprint": code_fingerprint(), "onnx": onnx.__version__,
            "max": _max_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _max_version() -> str:
    from .cache import max_version

    return max_version()


def summary(results: dict[str, CaseResult]) -> dict[str, int]:
    """Counts by status."""
    out = {PASSED: 0, PASSED_BOUND: 0, FOLDED: 0, FAILED: 0, UNSUPPORTED: 0}
    for r in results.values():
        out[r.status] = out.get(r.status, 0) + 1
    return out


def headline(tot: dict[str, int], n: int, legacy: bool = False) -> str:
    """The coverage sentence: passes (``passed + passed-bound``, both shown), folded apart."""
    if legacy:
        return (f"**{tot[PASSED]} of {n} cases passed** in a run that predates the passed-bound "
                "and folded statuses: that count includes cases that pass only after inputs were "
                "bound at conversion, and cases computed entirely at conversion time. "
                f"{tot[FAILED]} fail and {tot[UNSUPPORTED]} use ops, opsets or dtypes onnx2max does "
                "not translate.")
    return (f"**{tot[PASSED] + tot[PASSED_BOUND]} of {n} cases pass** ({tot[PASSED]} passed, "
            f"{tot[PASSED_BOUND]} passed after binding inputs MAX needs at conversion); "
            f"{tot[FOLDED]} were computed entirely at conversion time (folded, not counted); "
            f"{tot[FAILED]} fail and {tot[UNSUPPORTED]} use ops, opsets or dtypes onnx2max does "
            "not translate.")


def _shown_path(path: str | os.PathLike) -> str:
    """``path`` relative to the repository root when it lies inside it (as
    ``docs/onnx-coverage.json``), else absolute."""
    full = Path(path).resolve()
    root = Path(__file__).resolve().parent.parent
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()


def write_markdown(results_path: str | os.PathLike, md_path: str | os.PathLike) -> str:
    """Write the coverage page from a results JSON: totals, then a table per op type.

    Returns the markdown text.
    """
    data = json.loads(Path(results_path).read_text())
    recs = [CaseResult(**r) for r in data["cases"]]
    # attribute expanded cases to the op they expand (results files written before this
    # attribution list them under the op of their last node)
    op_of = {r.name: r.op_type for r in recs if expanded_base(r.name) is None}
    for r in recs:
        base = expanded_base(r.name)
        if base is not None and base in op_of:
            r.op_type = op_of[base]
    by_op: dict[str, list[CaseResult]] = {}
    for r in recs:
        by_op.setdefault(r.op_type, []).append(r)
    tot = summary({r.name: r for r in recs})
    legacy = "fingerprints" not in data  # written before the passed-bound and folded statuses
    lines = [
        "# ONNX backend node tests: onnx2max coverage",
        "",
        f"Measured by `onnx2max conformance` with onnx {data.get('onnx')} and MAX "
        f"{data.get('max')} on CPU"
        + (f", onnx2max commit {data['onnx2max_commit']} (source fingerprint "
           f"{str(data.get('fingerprint'))[:12]}), {data.get('date')}" if data.get("onnx2max_commit") else
           " (the results file records no onnx2max commit or source fingerprint)")
        + f". The file is written from the results JSON (`{_shown_path(results_path)}`) of that "
        "run; do not edit it by hand.",
        "",
        headline(tot, len(recs), legacy),
        "",
        "| op type | passed | passed-bound | folded | failed | unsupported |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op in sorted(by_op, key=str.lower):
        c = summary({r.name: r for r in by_op[op]})
        lines.append(f"| {op} | {c[PASSED]} | {c[PASSED_BOUND]} | {c[FOLDED]} | {c[FAILED]} | {c[UNSUPPORTED]} |")
    lines += ["", "## Cases that do not pass", ""]
    for op in sorted(by_op, key=str.lower):
        bad = [r for r in by_op[op] if r.status not in PASSES]
        if not bad:
            continue
        lines += [f"### {op}", ""]
        for r in bad:
            reason = r.reason.replace("|", "\\|")
            lines.append(f"- `{r.name}`: {r.status}: {reason}")
        lines.append("")
    text = "\n".join(lines).rstrip() + "\n"
    Path(md_path).parent.mkdir(parents=True, exist_ok=True)
    Path(md_path).write_text(text)
    return text


def _child_build(names: list[str]) -> None:
    """Probe the named cases and compile the ones that lower, as one batch in the order of
    ``names`` (the parent's batch order, so that the parent finds the same module in the
    cache), into the compile cache (``ONNX2MAX_CACHE_DIR``)."""
    from .compiler import build, resolve_device

    by_name = {case.name: case for case in collect(names=names)}
    preps = []
    for name in names:
        got = _probe(by_name[name]) if name in by_name else None
        if got is not None and not isinstance(got, CaseResult):
            preps.append(got[0])
    if preps:
        build(preps, resolve_device("cpu"), cache_dir=os.environ.get("ONNX2MAX_CACHE_DIR") or None,
              progress=False, label=f"{len(preps)} conformance cases")


def _child_main(names: list[str]) -> None:
    """Entry of :func:`_compile_in_child` (:func:`_child_build`). A compile error is written in
    one line to ``ONNX2MAX_CONFORMANCE_ERROR_FILE`` and the process exits with status 3;
    otherwise it leaves with status 0 without MAX's thread teardown (which MAX 26.7 sometimes
    aborts in)."""
    try:
        _child_build(names)
    except Exception as e:
        err_file = os.environ.get("ONNX2MAX_CONFORMANCE_ERROR_FILE")
        if err_file:
            Path(err_file).write_text(_one_line(e))
        os._exit(3)
    os._exit(0)


if __name__ == "__main__":
    import sys

    _child_main(sys.argv[1:])
