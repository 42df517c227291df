"""The compile cache: compiled MEF files keyed by what MAX compiles, with a fast first lookup.

A MAX compile costs about 30 s plus seconds per new kernel (minutes for a real model); reloading
an exported MEF takes about 1 ms. Two levels:

* **MEF store** (``<root>/mef/<graph digest>.<sha256[:16]>.mef``, with the record
  ``<graph digest>.json`` naming it): every compiled artifact is filed under
  :func:`graph_digest`, a SHA-256 of the lowered MAX module's MLIR text, the MAX version and
  the device. That text is exactly what MAX compiles (op types, shapes, dtypes, weight names,
  the values of graph constants; weight *values* are not in it), so an artifact stays valid
  across onnx2max releases that lower a model to the same graph.
* **Structure index** (``<root>/<structure key>/``): a digest of the prepared ONNX graph with
  value names replaced by canonical ids, op types, attributes, input and weight dtypes and
  shapes, the onnx2max source fingerprint, MAX version and device, plus a ``values key`` over
  the values lowering read as constants (a Reshape target, a Slice bound; which ones is
  recorded in ``index.json``). A hit here needs no lowering at all; its manifest names the
  graph digest of the MEF, the weights and the output types.

Lookup: structure index first (no lowering); on a miss, lower the model and look up its graph
digest in the MEF store (no compile); on a miss there too, compile. Files are written to a
temporary name and renamed, MEF first (its name carries its own SHA-256), its ``.json`` record
next, the structure manifest last, so concurrent writers never leave a record or manifest that
names an incomplete MEF; a MEF whose digest does not match is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import onnx

from . import dtypes
from .errors import user_stacklevel
from .prepare import Prepared

log = logging.getLogger("onnx2max")

FORMAT = 4
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MEF_NAME = re.compile(r"[0-9a-f]{64}\.[0-9a-f]{16}\.mef")
_KERNEL_PATHS = re.compile(r"_kernel_library_paths = \[[^\]]*\]")


def default_cache_dir() -> Path:
    """``$ONNX2MAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/onnx2max``, else ``~/.cache/onnx2max``."""
    env = os.environ.get("ONNX2MAX_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "onnx2max"


@lru_cache(maxsize=1)
def max_version() -> str:
    try:
        return metadata.version("max")
    except metadata.PackageNotFoundError:
        return "unknown"


def _source_digest() -> str:
    h = hashlib.sha256()
    root = Path(__file__).parent
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    h.update(max_version().encode())
    return h.hexdigest()


# read when onnx2max is imported, so it describes the code that is running
_CODE_DIGEST = _source_digest()


def code_fingerprint() -> str:
    """SHA-256 over onnx2max's own source files (as imported) and the MAX version."""
    return _CODE_DIGEST


def canonical_ids(p: Prepared) -> dict[str, str]:
    """Map every value name of the prepared graph to ``v<k>`` in order of first use."""
    ids: dict[str, str] = {}

    def see(name: str):
        if name and name not in ids:
            ids[name] = f"v{len(ids)}"

    for s in p.inputs:
        see(s.name)
    for n in p.nodes:
        for i in n.input:
            see(i)
        for o in n.output:
            see(o)
    for o in p.outputs:
        see(o)
    for name in p.values:
        see(name)
    return ids


def _attr_digest(a: onnx.AttributeProto) -> bytes:
    if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return a.SerializeToString(deterministic=True)
    b = onnx.AttributeProto()
    b.CopyFrom(a)
    b.doc_string = ""
    return b.SerializeToString(deterministic=True)


def structure_key(p: Prepared, ids: dict[str, str]) -> str:
    """Digest of the prepared graph's structure (see the module docstring)."""
    h = hashlib.sha256()

    def put(*parts):
        h.update(repr(parts).encode())
        h.update(b"\n")

    put("opsets", sorted(p.opsets.items()))
    for s in p.inputs:
        put("in", ids[s.name], s.elem_type, s.shape)
    for name in sorted(p.values, key=lambda n: int(ids[n][1:])):
        v = p.values[name]
        put("val", ids[name], str(v.dtype), v.shape, name in p.folded)
    for n in p.nodes:
        put("node", n.domain, n.op_type, [ids.get(i, "") for i in n.input],
            [ids.get(o, "") for o in n.output])
        for a in sorted(n.attribute, key=lambda a: a.name):
            h.update(_attr_digest(a))
    put("out", [ids[o] for o in p.outputs])
    return h.hexdigest()


def values_key(graphs: list[tuple[Prepared, dict[str, str]]], consumed: list[list[str]]) -> str | None:
    """Digest of the values lowering read as constants; ``None`` if one is not a value here."""
    h = hashlib.sha256()
    for (p, ids), cons in zip(graphs, consumed):
        by_id = {v: k for k, v in ids.items()}
        for cid in sorted(cons, key=lambda c: int(c[1:])):
            name = by_id.get(cid)
            if name is None or name not in p.values:
                return None
            v = dtypes.c_contiguous(p.values[name])
            h.update(f"{cid}:{v.dtype}:{v.shape}:".encode())
            h.update(v.tobytes())
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def graph_digest(module_text: str, device_label: str) -> str:
    """SHA-256 of what MAX compiles: the lowered module's MLIR text (``Module._to_mlir_str()``,
    which holds no source locations or object addresses; kernel-library paths are dropped),
    the MAX version and the device label (``"cpu"``, ``"gpu:0"``)."""
    body = _KERNEL_PATHS.sub("_kernel_library_paths = []", module_text)
    h = hashlib.sha256()
    h.update(f"onnx2max-mef|{FORMAT}|{max_version()}|{device_label}\n".encode())
    h.update(body.encode())
    return h.hexdigest()


@dataclass
class CacheEntry:
    """A structure-index hit: the MEF to load and its manifest (weights, output types)."""

    mef: Path
    manifest: dict


class CompileCache:
    """A folder of compiled MEF files (see the module docstring). ``root=None`` disables caching.

    An unwritable folder degrades to no caching, with one warning.
    """

    _warned: set[str] = set()

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None

    def _disable(self, why: str) -> None:
        if self.root is not None and str(self.root) not in self._warned:
            self._warned.add(str(self.root))
            warnings.warn(f"onnx2max: compile cache at {self.root} disabled: {why}", RuntimeWarning,
                          stacklevel=user_stacklevel())
        self.root = None

    # ---- the MEF store, keyed by graph digest
    def _mef_dir(self) -> Path:
        return self.root / "mef"

    def _checked(self, digest, name, sha256) -> Path | None:
        """``mef/<name>`` if ``name`` is ``<digest>.<16 hex>.mef`` and the file's SHA-256 is
        ``sha256``; else ``None`` (damaged or absent: the caller rebuilds)."""
        if (self.root is None or not isinstance(digest, str) or not _DIGEST.fullmatch(digest)
                or not isinstance(name, str) or not _MEF_NAME.fullmatch(name)
                or not name.startswith(digest + ".")):
            return None
        mef = self._mef_dir() / name
        try:
            data = mef.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            log.warning("onnx2max: cached MEF %s is damaged; rebuilding it", mef)
            return None
        return mef

    def _record(self, digest: str) -> dict | None:
        try:
            record = json.loads((self._mef_dir() / f"{digest}.json").read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("format") == FORMAT else None

    def lookup_graph(self, digest: str) -> Path | None:
        """The MEF compiled from the graph with :func:`graph_digest` ``digest``, or ``None``."""
        if self.root is None or not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            return None
        record = self._record(digest)
        if record is None:
            return None
        return self._checked(digest, record.get("mef"), record.get("mef_sha256"))

    # ---- the structure index
    def lookup(self, key: str, graphs: list[tuple[Prepared, dict[str, str]]]) -> CacheEntry | None:
        """The entry for structure ``key`` and these graphs' values, or ``None`` (a miss)."""
        if self.root is None:
            return None
        d = self.root / key
        try:
            index = json.loads((d / "index.json").read_text())
            consumed = index["consumed"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if len(consumed) != len(graphs):
            return None
        vkey = values_key(graphs, consumed)
        if vkey is None:
            return None
        man = d / f"{vkey}.json"
        try:
            manifest = json.loads(man.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            return None
        mef = self._checked(manifest.get("graph"), manifest.get("mef"), manifest.get("mef_sha256"))
        if mef is None:
            return None
        return CacheEntry(mef, manifest)

    def store(self, key: str, graphs, consumed: list[list[str]], digest: str, export,
              manifest: dict) -> Path | None:
        """File the MEF under ``digest`` (``export(path)`` writes it; ``None`` when the MEF
        store already holds it) and index it under structure ``key``. Returns the MEF path, or
        ``None`` when caching is off or failed.

        The MEF's file name carries its own SHA-256 (``<digest>.<sha[:16]>.mef``), and the
        record (``<digest>.json``) and the structure manifest, each written after it, name
        that file: whatever order concurrent writers finish in, a record or manifest always
        names a complete MEF with the digest it states.
        """
        if self.root is None:
            return None
        d = self.root / key
        try:
            mdir = self._mef_dir()
            mdir.mkdir(parents=True, exist_ok=True)
            record = self._record(digest) if export is None else None
            if record is not None and self._checked(digest, record.get("mef"),
                                                     record.get("mef_sha256")) is not None:
                name, sha = record["mef"], record["mef_sha256"]
            elif export is None:
                return None
            else:
                fd, tmp = tempfile.mkstemp(dir=mdir, prefix="build.", suffix=".mef")
                os.close(fd)
                try:
                    export(tmp)
                    data = Path(tmp).read_bytes()
                finally:
                    try:
                        os.unlink(tmp)
                    except OSError:
                        pass
                sha = hashlib.sha256(data).hexdigest()
                name = f"{digest}.{sha[:16]}.mef"
                _atomic_write(mdir / name, data)
                _atomic_write(mdir / f"{digest}.json", json.dumps(
                    {"format": FORMAT, "mef": name, "mef_sha256": sha, "max": max_version()}).encode())
            d.mkdir(parents=True, exist_ok=True)
            try:
                old = json.loads((d / "index.json").read_text())["consumed"]
                if len(old) == len(consumed):
                    consumed = [sorted(set(a) | set(b), key=lambda c: int(c[1:]))
                                for a, b in zip(old, consumed)]
            except (OSError, ValueError, KeyError, TypeError):
                pass
            vkey = values_key(graphs, consumed)
            if vkey is None:
                return mdir / name
            manifest = dict(manifest, format=FORMAT, graph=digest, mef=name, mef_sha256=sha)
            _atomic_write(d / f"{vkey}.json", json.dumps(manifest, indent=1).encode())
            _atomic_write(d / "index.json", json.dumps({"consumed": consumed}).encode())
            return mdir / name
        except OSError as e:
            self._disable(str(e))
            return None
