"""Atomic file-system writes: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """After this returns, `path` holds `data` whole, even across a crash; never half of it."""
    _write_via_temp(path, data, os.replace)


def write_new(path: Path, data: bytes) -> None:
    """As write_atomic, but FileExistsError if `path` exists: never replaces a file, even one
    another process wrote a moment ago (a hard link fails where the name is taken)."""
    _write_via_temp(path, data, os.link)


def _write_via_temp(path: Path, data: bytes, publish: Callable[[Path, Path], None]) -> None:
    temp = path.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}"
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        publish(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)
