"""The release bundle directory: safe (re)creation, MANIFEST.sha256 and the .tar.gz."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

from .errors import ReportInputError
from .hashing import sha256_file

MANIFEST = "MANIFEST.sha256"
MARKERS = (MANIFEST, "report.json")


def prepare_out_dir(out: Path) -> None:
    """Start from an empty directory; only ever delete a directory this tool created before."""
    if out.exists():
        if not out.is_dir():
            raise ReportInputError(f"--out {out} exists and is not a directory")
        if any(out.iterdir()) and not any((out / m).is_file() for m in MARKERS):
            raise ReportInputError(
                f"--out {out} is a non-empty directory that is not a previous report bundle"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)


def copy_into(src: Path, out: Path, rel: str) -> str:
    """Copy *src* to ``out/rel``; returns its sha256."""
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return sha256_file(dest)


def write_manifest(out: Path) -> Path:
    """``sha256sum``-compatible list of every file in the bundle (run ``sha256sum -c`` inside)."""
    lines = [
        f"{sha256_file(p)}  {p.relative_to(out).as_posix()}"
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    ]
    path = out / MANIFEST
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pack(out: Path, mtime: int = 0) -> Path:
    """``<out>.tar.gz`` with the bundle under ``<out.name>/``; byte-reproducible for one mtime."""
    target = out.with_name(out.name + ".tar.gz")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [out, *sorted(out.rglob("*"))]:
            info = tar.gettarinfo(
                str(path), arcname=(Path(out.name) / path.relative_to(out)).as_posix()
            )
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = mtime
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
    ):
        gz.write(buffer.getvalue())
    return target
