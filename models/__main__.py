"""``python -m models export [DIR]``: export the whole zoo to ONNX (default DIR: models/onnx)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("export", "list"):
        print("usage: python -m models export [DIR] | python -m models list", file=sys.stderr)
        return 2
    from export import to_onnx

    from .zoo import ZOO

    if argv[0] == "list":
        for name, fn in ZOO.items():
            print(f"{name:22} {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    for name, build in ZOO.items():
        module, inputs = build()
        path = to_onnx(module, inputs, out / f"{name}.onnx")
        print(f"{name:22} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
