"""Where a trained task goes: --out, a registry (--prompts-dir), a running server (--upload).

Every destination is checked before training (minutes of it), and a delivery that still fails
after training keeps the task in a temporary file, so no run is lost."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from app.atomic import write_atomic
from app.backbone import Backbone
from app.errors import RemoteError

log = logging.getLogger(__name__)


def check_destinations(
    args: argparse.Namespace, sources: dict[str, Path | None], register_in: Path | None
) -> None:
    """Each place the result goes can take it: a task id the registry accepts, an --out file path
    that is none of the command's input files (`sources`, by flag), a registry folder
    `register_in` where the task's folder can be, a reachable --upload server. Creates nothing:
    a run refused later (bad data) leaves no empty folders behind."""
    from app.task import check_task_id

    check_task_id(args.task)  # the id the file carries, wherever it goes
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a file path")
        for flag, source in sources.items():
            if source is not None and Path(source).resolve() == out.resolve():
                raise ValueError(f"--out {out} is the --{flag} file: it would be overwritten")
        _check_writable(out.parent, "--out")
    if register_in:
        _check_writable(Path(register_in), "--prompts-dir")
        task_dir = Path(register_in) / args.task
        if task_dir.exists() and not task_dir.is_dir():
            raise ValueError(f"--prompts-dir: {task_dir} is a file, where the task's folder goes")
    if args.upload:
        import httpx

        url = f"{args.upload.rstrip('/')}/readyz"
        try:
            ready = httpx.get(url, timeout=10)
        except httpx.HTTPError as exc:
            raise RemoteError(f"--upload {args.upload}: cannot reach the server ({exc})") from exc
        if ready.status_code != 200:
            raise RemoteError(f"--upload {args.upload}: {url} answered {ready.status_code}")
        _check_token(args)


def _check_token(args: argparse.Namespace) -> None:
    """An upload with no file: the server checks the token first (401), then finds the file
    missing (422). Nothing is stored either way."""
    import httpx

    answer = httpx.put(_upload_url(args), headers=_auth(args), timeout=10)
    if answer.status_code in (401, 403):
        given = "the --token given" if args.token else "no --token"
        raise RemoteError(f"--upload {args.upload}: the server refuses {given} "
                           f"({answer.status_code}); give its admin token")  # fmt: skip


def _check_writable(folder: Path, flag: str) -> None:
    """The folder, or the nearest folder above it that exists (the rest is made on delivery),
    takes a file: tried for real, since permission bits say little (root, read-only mounts)."""
    import tempfile

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ValueError(f"{flag}: cannot write in {existing}: {exc.strerror or exc}") from exc


def keep(payload: bytes, task: str) -> None:
    """The trained task, saved where delivery failed, so no training run is lost."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix=f"promptserve-{task[:40]}-", suffix=".safetensors")
    with os.fdopen(fd, "wb") as file:
        file.write(payload)
    log.error("delivery failed; the trained task is saved in %s", name)


def deliver_or_keep(
    args: argparse.Namespace, payload: bytes, backbone: Backbone, register_in: Path | None
) -> None:
    """`deliver`, and where it fails after the work is done, the task kept in a temporary file."""
    try:
        deliver(args, payload, backbone, register_in)
    except Exception:
        keep(payload, args.task)
        raise


def deliver(
    args: argparse.Namespace, payload: bytes, backbone: Backbone, register_in: Path | None
) -> None:
    """Write the task to --out, add it to the registry `register_in`, and PUT it to --upload."""
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(args.out), payload)
        log.info("wrote %s (%d bytes)", args.out, len(payload))
    if register_in:
        from app.registry import Registry

        registry = Registry(register_in, backbone.identity, backbone.max_prompt_len)
        registry.load()
        info = registry.add_version(args.task, payload)
        log.info("registered %s version %d in %s", args.task, info.version, register_in)
    if args.upload:
        import httpx

        response = httpx.put(
            _upload_url(args),
            files={"file": (f"{args.task}.safetensors", payload, "application/octet-stream")},
            headers=_auth(args),
            timeout=60,
        )
        if response.status_code != 201:
            raise RemoteError(f"upload refused: {response.status_code} {response.text[:300]}")
        log.info("uploaded %s: version %s", args.task, response.json().get("version"))


def _upload_url(args: argparse.Namespace) -> str:
    return f"{args.upload.rstrip('/')}/prompts/{args.task}"


def _auth(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.token}"} if args.token else {}
