"""A task's versions as the registry indexes them: one file's record, and a task's state."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from app.task import TaskSpec

log = logging.getLogger(__name__)


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


def read_state(path: Path) -> dict[str, int] | None:
    """A task's state file (task.json): its active version and next version number; None when
    it is missing or unreadable (the registry then falls back to the versions on disk)."""
    try:
        body = json.loads(path.read_text())
        return {"active": int(body["active"]), "next_version": int(body["next_version"])}
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable %s", path)
        return None
