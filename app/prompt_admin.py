"""Prompt administration: upload, activate, delete, keeping the device cache in step."""

from __future__ import annotations

from app.prompt_cache import PromptCache
from app.registry import Registry, TaskState, VersionInfo


class PromptAdmin:
    """Blocking file-system work: call from a worker thread (FastAPI runs sync routes in one)."""

    def __init__(self, registry: Registry, cache: PromptCache) -> None:
        self.registry = registry
        self.cache = cache

    def upload(
        self, task: str, data: bytes, labels: list[str] | None, description: str | None
    ) -> VersionInfo:
        return self.registry.add_version(task, data, labels=labels, description=description)

    def activate(self, task: str, version: int) -> TaskState:
        return self.registry.activate(task, version)

    def delete_version(self, task: str, version: int) -> None:
        self.registry.delete_version(task, version)
        self.cache.discard(task, version)

    def delete_task(self, task: str) -> None:
        self.registry.delete_task(task)
        self.cache.discard(task)
