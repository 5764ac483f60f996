"""`promptserve import-peft` / `export-peft`: HF PEFT adapters in and out of a registry.

Both work on a prompts directory on disk. Import into a directory that a running server writes
to only while it is stopped (the server indexes its directory at start); to add a task to a
running server, PUT the adapter's .zip to `/prompts/{task}` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.settings import add_prompts_dir_option, setting_default

if TYPE_CHECKING:
    from app.prompt_file import BackboneIdentity
    from app.task import TaskSpec


def register(commands: Any) -> None:
    """Add both subcommands to the `promptserve` parser (heavy imports wait for `run`)."""
    imports = commands.add_parser(
        "import-peft",
        help="import an HF PEFT prompt-tuning adapter (SEQ_CLS) as a new task version",
        description="Import an HF PEFT prompt-tuning adapter (SEQ_CLS) as a new task version.",
    )
    imports.add_argument("adapter", type=Path, metavar="DIR", help="adapter directory (or .zip)")
    imports.add_argument("--task", required=True, help="task id to store it under")
    imports.add_argument(
        "--labels", nargs="+", metavar="LABEL", help="label names in head order (PEFT has none)"
    )
    imports.add_argument("--description", help="free text stored with the version")
    add_prompts_dir_option(imports)
    imports.add_argument(
        "--backbone",
        default=setting_default("backbone"),
        help="the registry's backbone (default %(default)s)",
    )
    imports.add_argument(
        "--any-base-model",
        action="store_true",
        help="accept an adapter whose base_model_name_or_path names another model (same size)",
    )
    imports.set_defaults(run=run_import)

    exports = commands.add_parser(
        "export-peft",
        help="write a task (pooling 'first') as an HF PEFT prompt-tuning adapter directory",
        description="Write a task as an adapter loadable by peft.PeftModel.from_pretrained.",
    )
    exports.add_argument("--task", required=True, help="task id to export")
    exports.add_argument("--out", required=True, type=Path, help="adapter directory to write")
    exports.add_argument("--version", type=int, help="version to export (default: the active one)")
    exports.add_argument("--force", action="store_true", help="overwrite adapter files in --out")
    add_prompts_dir_option(exports)
    exports.set_defaults(run=run_export)


def run_import(args: argparse.Namespace) -> int:
    from app import peft_format, prompt_file
    from app.backbone import load_backbone
    from app.errors import PromptserveError
    from app.registry import Registry
    from app.task import check_task_id
    from app.upload_check import computes_check

    try:
        check_task_id(args.task)
        files = _adapter_files(args.adapter)
        backbone = load_backbone(args.backbone, device="cpu", precision="fp32", trace="off")
        spec = peft_format.task_from_adapter(
            files, backbone.identity, args.labels, args.description, args.any_base_model
        )
        registry = Registry(args.prompts_dir, backbone.identity, backbone.max_prompt_len)
        registry.load()
        payload = prompt_file.encode(spec, backbone.identity)
        info = registry.add_version(args.task, payload, check=computes_check(backbone))
    except (PromptserveError, OSError, ValueError) as exc:  # ValueError: a bad --backbone
        return _fail("import-peft", exc)
    print(
        f"imported {args.adapter} as task {info.task!r} version {info.version} "
        f"({info.prompt_len} virtual tokens, labels {list(info.labels)}) in {args.prompts_dir}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from app import peft_export, peft_format
    from app.errors import PromptserveError

    try:
        spec, backbone, version = _read_version(args.prompts_dir, args.task, args.version)
        files = peft_export.adapter_from_task(spec, backbone)
        _write_dir(args.out, files, args.force)
    except (PromptserveError, OSError) as exc:
        return _fail("export-peft", exc)
    print(
        f"exported task {args.task!r} version {version} to {args.out} "
        f"(load with peft.PeftModel.from_pretrained; see {args.out / peft_format.CARD_FILE})"
    )
    return 0


def _fail(command: str, exc: Exception) -> int:
    print(f"promptserve {command}: {exc}", file=sys.stderr)
    return 2  # bad input, as train, eval and argparse exit


def _adapter_files(path: Path) -> dict[str, bytes]:
    """An adapter directory's files, or those of a .zip of one (same checks as an upload)."""
    from app import peft_format, upload_zip

    if path.is_file():
        data = path.read_bytes()
        if not upload_zip.is_zip(data):
            raise OSError(f"{path} is neither an adapter directory nor a .zip of one")
        return upload_zip.unpack(data, peft_format.ADAPTER_FILES, upload_zip.MAX_UNPACKED_BYTES)
    return peft_format.read_adapter_dir(path)


def _read_version(
    root: Path, task: str, version: int | None
) -> tuple[TaskSpec, BackboneIdentity, int]:
    """(TaskSpec, the backbone it was stored for, version) read from disk; the registry's files
    are not touched (a running server may own them)."""
    from app import prompt_file
    from app.errors import InvalidPrompt, TaskNotFound, VersionNotFound
    from app.task import check_task_id

    task_dir = root / check_task_id(task)
    if not task_dir.is_dir():
        raise TaskNotFound(f"task {task!r} not found in {root}")
    if version is None:
        version = _active_version(task_dir)
    path = task_dir / f"v{version}.safetensors"
    if not path.is_file():
        raise VersionNotFound(f"task {task!r} has no version {version} in {root}")
    data = path.read_bytes()
    tensors, metadata = prompt_file.read_safetensors(data, f"{path} is not")
    prompt = tensors.get("prompt")
    if not metadata.get("backbone") or prompt is None or prompt.dim() != 2:
        raise InvalidPrompt(f"{path} is not a task version (no backbone, or no [m, d] prompt)")
    backbone = prompt_file.BackboneIdentity(
        metadata["backbone"], metadata.get("backbone_fingerprint", ""), int(prompt.shape[-1])
    )
    spec, _ = prompt_file.decode(data, backbone)
    return spec, backbone, version


def _active_version(task_dir: Path) -> int:
    """The version task.json names active, else the highest on disk (as the registry does)."""
    from app.errors import InvalidPrompt
    from app.registry import STATE_FILE, VERSION_FILE

    state = task_dir / STATE_FILE
    if not state.exists():
        found = [int(m.group(1)) for p in task_dir.iterdir() if (m := VERSION_FILE.match(p.name))]
        return max(found, default=0)
    try:
        active = json.loads(state.read_text())["active"]
    except (ValueError, KeyError, TypeError) as exc:  # not JSON, not an object, no "active"
        raise InvalidPrompt(f"{state} is damaged ({type(exc).__name__}: {exc})") from None
    if not isinstance(active, int) or isinstance(active, bool):
        raise InvalidPrompt(f"{state} is damaged: its active version is {active!r}")
    return active


def _write_dir(out: Path, files: dict[str, bytes], force: bool) -> None:
    from app.atomic import write_atomic

    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a directory for the adapter")
    existing = [name for name in files if (out / name).exists()]
    if existing and not force:
        raise FileExistsError(f"{out} already holds {existing}; pass --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_atomic(out / name, data)
