"""The compile cache: compiled MEF files keyed by what the graph computes.

A MAX compile costs about 30 s plus about 3 s per new kernel; reloading an exported MEF takes
about 1 ms. The key has two levels:

* ``structure key``: a digest of the prepared ONNX graph with value names replaced by canonical
  ids (``v0``, ``v1``, ... in order of first use), op types, resolved attributes, input and
  weight dtypes and shapes, the onnx2max source, the MAX version and the device. Weight *values*
  are not in it, so models of one architecture share a compiled artifact.
* ``values key``: a digest of the values that lowering read as constants (a Reshape target, a
  Slice bound, a small folded constant). Which values those are is recorded per structure key
  in ``index.json``.

Layout: ``<root>/<structure key>/index.json``, ``<values key>.<digest>.mef`` and
``<values key>.json`` (the manifest: the MEF's file name and SHA-256, weight names, output
types). Files are written to a temporary name and renamed, MEF first, manifest last, so
concurrent writers never leave a partial entry and a manifest always names a complete MEF; a
manifest whose MEF digest does not match is ignored and the entry rebuilt.

Why a lookup through a stale ``index.json`` (another process merged in more consumed ids) is
still safe: lowering is a function of the structure and of the values it reads, so two models
that agree on the values one lowering read make the same graph.
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

import numpy as np
import onnx

from . import dtypes
from .prepare import Prepared

log = logging.getLogger("onnx2max")

FORMAT = 2
_MEF_NAME = re.compile(r"[0-9a-f]{64}\.[0-9a-f]{16}\.mef")


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


@dataclass
class CacheEntry:
    mef: Path
    manifest: dict


class CompileCache:
    """A folder of compiled MEF files. ``root=None`` disables caching.

    An unwritable folder degrades to no caching, with one warning.
    """

    _warned: set[str] = set()

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None

    def _disable(self, why: str) -> None:
        if self.root is not None and str(self.root) not in self._warned:
            self._warned.add(str(self.root))
            warnings.warn(f"onnx2max: compile cache at {self.root} disabled: {why}", RuntimeWarning,
                          stacklevel=3)
        self.root = None

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
        name = manifest.get("mef") if isinstance(manifest, dict) else None
        if not isinstance(name, str) or not _MEF_NAME.fullmatch(name):
            log.warning("onnx2max: cache manifest %s is damaged; rebuilding the entry", man)
            return None
        mef = d / name
        try:
            digest = hashlib.sha256(mef.read_bytes()).hexdigest()
        except OSError:
            return None
        if manifest.get("format") != FORMAT or manifest.get("mef_sha256") != digest:
            log.warning("onnx2max: cache entry %s is damaged; rebuilding it", mef)
            return None
        return CacheEntry(mef, manifest)

    def store(self, key: str, graphs, consumed: list[list[str]], export, manifest: dict) -> Path | None:
        """Write an entry. ``export(path)`` writes the MEF. Returns the MEF path, or ``None``."""
        if self.root is None:
            return None
        d = self.root / key
        try:
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
                return None
            fd, tmp = tempfile.mkstemp(dir=d, prefix="build.", suffix=".mef")
            os.close(fd)
            try:
                export(tmp)
                data = Path(tmp).read_bytes()
            finally:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            digest = hashlib.sha256(data).hexdigest()
            # content-addressed MEF name: the manifest (written last, atomically) is the commit
            # point, and always names a complete MEF with the digest it records, whatever
            # order concurrent writers finish in.
            name = f"{vkey}.{digest[:16]}.mef"
            manifest = dict(manifest, format=FORMAT, mef=name, mef_sha256=digest)
            _atomic_write(d / name, data)
            _atomic_write(d / f"{vkey}.json", json.dumps(manifest, indent=1).encode())
            _atomic_write(d / "index.json", json.dumps({"consumed": consumed}).encode())
            return d / name
        except OSError as e:
            self._disable(str(e))
            return None
