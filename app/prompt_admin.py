"""Prompt administration: upload, activate, delete, keeping the device cache in step."""

from __future__ import annotations

from collections.abc import Callable

from app import peft_format, prompt_file, upload_zip
from app.prompt_cache import PromptCache
from app.registry import Registry
from app.task import TaskSpec
from app.versions import TaskState, VersionInfo


class PromptAdmin:
    """Blocking file-system work: call off the event loop (the routes use run_in_threadpool)."""

    def __init__(
        self,
        registry: Registry,
        cache: PromptCache,
        check: Callable[[TaskSpec], None] | None = None,
    ) -> None:
        """`check`: run on each upload before it is stored (app/upload_check.py); may refuse it."""
        self.registry = registry
        self.cache = cache
        self.check = check

    def upload(
        self,
        task: str,
        data: bytes,
        labels: list[str] | None,
        description: str | None,
        max_unpacked_bytes: int = upload_zip.MAX_UNPACKED_BYTES,
    ) -> VersionInfo:
        """Store a prompt file, or a .zip of an HF PEFT adapter directory (told by content)."""
        if upload_zip.is_zip(data):
            files = upload_zip.unpack(data, peft_format.ADAPTER_FILES, max_unpacked_bytes)
            spec = peft_format.task_from_adapter(files, self.registry.backbone, labels, description)
            data, labels, description = prompt_file.encode(spec, self.registry.backbone), None, None
        return self.registry.add_version(task, data, labels, description, check=self.check)

    def activate(self, task: str, version: int) -> TaskState:
        return self.registry.activate(task, version)

    def delete_version(self, task: str, version: int) -> None:
        self.registry.delete_version(task, version)
        self.cache.discard(task, version)

    def delete_task(self, task: str) -> None:
        self.registry.delete_task(task)
        self.cache.discard(task)
