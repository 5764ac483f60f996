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

log = logging.getLogger(__name__)


def check_destinations(args: argparse.Namespace) -> None:
    """Each place the result goes can take it: a task id the registry accepts, a writable --out
    file path and --prompts-dir, a reachable --upload server."""
    from app.task import check_task_id

    check_task_id(args.task)  # the id the file carries, wherever it goes
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a file path")
        for flag in ("train", "eval"):
            source = getattr(args, flag, None)
            if source is not None and Path(source).resolve() == out.resolve():
                raise ValueError(f"--out {out} is the --{flag} file: it would be overwritten")
        _check_writable(out.parent, "--out")
    if args.prompts_dir:
        _check_writable(Path(args.prompts_dir), "--prompts-dir")
    if args.upload:
        import httpx

        url = f"{args.upload.rstrip('/')}/readyz"
        try:
            ready = httpx.get(url, timeout=10)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"--upload {args.upload}: cannot reach the server ({exc})") from exc
        if ready.status_code != 200:
            raise RuntimeError(f"--upload {args.upload}: {url} answered {ready.status_code}")
        _check_token(args)


def _check_token(args: argparse.Namespace) -> None:
    """An upload with no file: the server checks the token first (401), then finds the file
    missing (422). Nothing is stored either way."""
    import httpx

    answer = httpx.put(_upload_url(args), headers=_auth(args), timeout=10)
    if answer.status_code in (401, 403):
        given = "the --token given" if args.token else "no --token"
        raise RuntimeError(f"--upload {args.upload}: the server refuses {given} "
                           f"({answer.status_code}); give its admin token")  # fmt: skip


def _check_writable(folder: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{flag}: cannot create {folder}: {exc.strerror}") from exc
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{flag}: {folder} is not writable")


def keep(payload: bytes, task: str) -> None:
    """The trained task, saved where delivery failed, so no training run is lost."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix=f"promptserve-{task[:40]}-", suffix=".safetensors")
    with os.fdopen(fd, "wb") as file:
        file.write(payload)
    log.error("delivery failed; the trained task is saved in %s", name)


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
            raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
        log.info("uploaded %s: version %s", args.task, response.json().get("version"))


def _upload_url(args: argparse.Namespace) -> str:
    return f"{args.upload.rstrip('/')}/prompts/{args.task}"


def _auth(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.token}"} if args.token else {}
