"""A task's versions as the registry indexes them: one file's record, and a task's state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from app.task import TaskSpec


@dataclass(frozen=True)
class VersionInfo:
    task: str
    version: int
    labels: tuple[str, ...]
    pooling: str
    prompt_len: int
    size_bytes: int
    sha256: str
    created: str
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskState:
    task: str
    active: int
    next_version: int
    versions: MappingProxyType[int, VersionInfo]

    @property
    def active_info(self) -> VersionInfo:
        return self.versions[self.active]


def version_info(task: str, version: int, spec: TaskSpec, data: bytes, created: str) -> VersionInfo:
    """The record of one version file: what GET /prompts/{task} lists, and the cache's key."""
    return VersionInfo(
        task=task,
        version=version,
        labels=spec.labels,
        pooling=spec.pooling,
        prompt_len=spec.prompt_len,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        created=created,
        description=spec.description,
        metrics=spec.metrics,
    )
