"""Unpacking an uploaded .zip safely, in memory: bounded, shallow, and only the expected files.

A zip is read before anything reaches the registry: at most MAX_MEMBERS entries, at most
`max_unpacked_bytes` once inflated (counted while inflating, never trusting the sizes the zip
declares: zip bombs), no absolute paths, no '..', no links, no encryption, and only files whose
names the caller expects, at the top level or in one top-level folder (`zip -r a.zip adapter/`).
Nothing is written to disk: the caller validates what comes back before it stores anything.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from collections.abc import Collection
from pathlib import PurePosixPath

from app.errors import InvalidPrompt, TooLarge

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive's end
MAX_MEMBERS = 16
MAX_UNPACKED_BYTES = 64 << 20  # an adapter's files, inflated, where the caller sets no limit
CHUNK = 1 << 16
# What archivers add on their own; skipped, never extracted.
JUNK_DIRS = frozenset({"__MACOSX"})
JUNK_FILES = frozenset({".DS_Store", "Thumbs.db"})
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def is_zip(data: bytes) -> bool:
    """Told by content, not by the upload's file name."""
    return data[:4] in ZIP_MAGIC


def unpack(data: bytes, expected: Collection[str], max_unpacked_bytes: int) -> dict[str, bytes]:
    """{file name: content} of a zip's files, all of them named in `expected`.

    Raises InvalidPrompt for a malformed or unsafe archive and TooLarge past the size limit.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidPrompt(f"not a valid zip file: {exc}") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise InvalidPrompt(f"zip has {len(members)} entries; at most {MAX_MEMBERS} allowed")
        _refuse_torch_checkpoint(members)
        files = [info for info in members if _is_file_to_read(info)]
        names = _check_names(files, expected)
        declared = sum(info.file_size for info in files)
        if declared > max_unpacked_bytes:
            raise TooLarge(_too_large(max_unpacked_bytes))
        unpacked: dict[str, bytes] = {}
        remaining = max_unpacked_bytes
        for name, info in zip(names, files, strict=True):
            unpacked[name] = _inflate(archive, info, remaining, max_unpacked_bytes)
            remaining -= len(unpacked[name])
        return unpacked


def _refuse_torch_checkpoint(members: list[zipfile.ZipInfo]) -> None:
    """torch.save writes a zip around a pickle: say what it is rather than list its insides."""
    if any(PurePosixPath(info.filename).name == "data.pkl" for info in members):
        raise InvalidPrompt(
            "not a valid safetensors file nor an adapter zip: this is a PyTorch checkpoint "
            "(torch.save), a pickle, which is never loaded because unpickling can run code"
        )


def _is_file_to_read(info: zipfile.ZipInfo) -> bool:
    """Check every entry's path and kind; True for the files to read, False for folders and junk."""
    name = info.filename
    path = PurePosixPath(name)
    if "\\" in name or path.is_absolute() or ".." in path.parts or ":" in name or "\0" in name:
        raise InvalidPrompt(f"zip entry {name!r} has an unsafe path (absolute, '..' or drive)")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InvalidPrompt(f"zip entry {name!r} is a symbolic link; links are not accepted")
    if info.flag_bits & 0x1:
        raise InvalidPrompt(f"zip entry {name!r} is encrypted; upload an unencrypted zip")
    if path.parts and (path.parts[0] in JUNK_DIRS or path.name in JUNK_FILES):
        return False
    return not info.is_dir()


def _check_names(files: list[zipfile.ZipInfo], expected: Collection[str]) -> list[str]:
    """Each file's name; all at the top level or all in one top-level folder, each name once."""
    paths = [PurePosixPath(info.filename) for info in files]
    if any(len(path.parts) > 2 for path in paths) or len({path.parts[:-1] for path in paths}) > 1:
        raise InvalidPrompt(
            "zip must hold the adapter's files at its top level or in one folder; "
            f"it holds {sorted(info.filename for info in files)}"
        )
    names = [path.name for path in paths]
    for name in names:
        if name.endswith(PICKLE_SUFFIXES):
            raise InvalidPrompt(
                f"zip holds {name!r}: pickled weights are never loaded (they can run code); "
                "save with safe_serialization=True to get .safetensors"
            )
        if name not in expected:
            raise InvalidPrompt(
                f"unexpected file {name!r} in the zip; it may hold only {sorted(expected)}"
            )
    if len(set(names)) != len(names):
        raise InvalidPrompt("zip holds the same file name more than once")
    return names


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, remaining: int, limit: int) -> bytes:
    """Read one member, stopping as soon as it inflates past `remaining` bytes."""
    chunks, size = [], 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > remaining:
                    raise TooLarge(_too_large(limit))
                chunks.append(chunk)
    except (
        zipfile.BadZipFile,
        NotImplementedError,
        OSError,
        EOFError,
        ValueError,
        zlib.error,
    ) as exc:
        raise InvalidPrompt(f"zip entry {info.filename!r} cannot be read: {exc}") from exc
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"zip unpacks to more than the limit of {limit} bytes"
