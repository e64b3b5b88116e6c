"""Rewrite a wheel without the parts a run does not need, so that it fits the lent GPU
machine's transfer limit (bench/device_wheels.sh).

    python bench/slim_wheel.py IN.whl OUT_DIR --drop pybullet_envs --keep-only pybullet_data \
        --keep pybullet_data/franka_panda

Shared objects are stripped of their symbols (PyBullet's 104 MB .so becomes 8 MB), the listed
top-level folders are dropped, the ``--keep-only`` folders keep only their ``__init__.py`` and
the ``--keep`` paths inside them, and the wheel's RECORD is rewritten with the new hashes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def _record_line(root: Path, rel: str) -> str:
    data = (root / rel).read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{len(data)}"


def slim(wheel: Path, out_dir: Path, drop: list[str], keep_only: list[str],
         keep: list[str] = ()) -> Path:
    """Write the slimmed copy of ``wheel`` into ``out_dir`` and return its path."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(root)
        kept: list[str] = []
        record = None
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            top = rel.split("/", 1)[0]
            kept_inside = rel == f"{top}/__init__.py" or any(
                rel.startswith(k.rstrip("/") + "/") for k in keep)
            if top in drop or (top in keep_only and not kept_inside):
                continue
            if rel.endswith("/RECORD") and ".dist-info/" in rel:
                record = rel
                continue
            if path.suffix == ".so":
                subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
            kept.append(rel)
        if record is None:
            raise ValueError(f"{wheel}: no .dist-info/RECORD")
        lines = [_record_line(root, rel) for rel in kept] + [f"{record},,"]
        (root / record).write_text("\n".join(lines) + "\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / wheel.name
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for rel in [*kept, record]:
                zf.write(root / rel, rel)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--drop", nargs="*", default=[], help="top-level folders or files to leave out")
    p.add_argument("--keep-only", nargs="*", default=[],
                   help="top-level packages reduced to their __init__.py (and --keep paths)")
    p.add_argument("--keep", nargs="*", default=[],
                   help="folders kept inside the --keep-only packages")
    args = p.parse_args(argv)
    if not args.wheel.is_file():
        print(f"error: no wheel at {args.wheel}", file=sys.stderr)
        return 2
    try:
        out = slim(args.wheel, args.out_dir, args.drop, args.keep_only, args.keep)
    except (zipfile.BadZipFile, ValueError):
        print(f"error: {args.wheel} is not a wheel (no zip with a .dist-info/RECORD)",
              file=sys.stderr)
        return 2
    print(f"{out} {out.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
