"""The prompt registry: each task's numbered, immutable versions on disk, and which one is active.

Layout: ``<root>/<task>/v<N>.safetensors`` (see prompt_file.py) and ``<root>/<task>/task.json``
(``{"active": N, "next_version": K}``). Every write is atomic; a new task appears by renaming a
complete staging directory into place. Reads take no lock: the in-memory index maps a task to an
immutable snapshot that writers replace whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from app import prompt_file
from app.atomic import TEMP_PREFIX, fsync_dir, write_atomic, write_new
from app.errors import Conflict, InvalidPrompt, InvalidTaskId, TaskNotFound, VersionNotFound
from app.prompt_file import BackboneIdentity
from app.task import MAX_PROMPT_LEN, TaskSpec, check_task_id
from app.versions import TaskState, VersionInfo, read_state, version_info

log = logging.getLogger(__name__)

STATE_FILE = "task.json"
VERSION_FILE = re.compile(r"^v([0-9]+)\.safetensors$")
STAGING_PREFIX = ".new-"
TRASH_PREFIX = ".trash-"
MAX_SKIPPED = 1000  # version numbers tried past those taken on disk by another process


class Registry:
    """Owns the prompts directory. Writers serialise on one lock; readers never wait."""

    def __init__(
        self, root: Path, backbone: BackboneIdentity, max_prompt_len: int = MAX_PROMPT_LEN
    ) -> None:
        self.root = Path(root)
        self.backbone = backbone
        self.max_prompt_len = max_prompt_len  # longer prompts leave the backbone no room for text
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskState] = {}

    # ---- reading -------------------------------------------------------------------------
    def load(self) -> None:
        """Scan the directory: clean leftovers of interrupted writes, index every valid version."""
        self.root.mkdir(parents=True, exist_ok=True)
        tasks: dict[str, TaskState] = {}
        for path in sorted(self.root.iterdir()):
            if path.name.startswith((STAGING_PREFIX, TRASH_PREFIX, TEMP_PREFIX)):
                log.info("removing leftover of an interrupted write: %s", path)
                _remove(path)
            elif path.is_dir():
                state = self._load_task(path)
                if state is not None:
                    tasks[state.task] = state
        self._tasks = tasks
        log.info("registry %s: %d tasks", self.root, len(tasks))

    def task_ids(self) -> list[str]:
        return sorted(self._tasks)

    def knows(self, task: str) -> bool:
        return task in self._tasks

    def states(self) -> list[TaskState]:
        """Every task's state, by task id, as one snapshot: tasks deleted meanwhile stay in it."""
        tasks = dict(self._tasks)  # one copy: writers replace entries under their lock
        return [tasks[task] for task in sorted(tasks)]

    def state(self, task: str) -> TaskState:
        state = self._tasks.get(task)
        if state is None:
            raise TaskNotFound(f"task {task!r} not found")
        return state

    def resolve(self, task: str, version: int | None = None) -> VersionInfo:
        """The version a request should use: the given one, or the active one."""
        state = self.state(task)
        chosen = state.active if version is None else version
        info = state.versions.get(chosen)
        if info is None:
            raise VersionNotFound(f"task {task!r} has no version {chosen}")
        return info

    def read_spec(self, task: str, version: int, sha256: str | None = None) -> TaskSpec:
        """Load a version's tensors from disk (slow path: the device cache sits in front).

        With `sha256` (from `resolve`), a file that is no longer that version's (the task was
        deleted and uploaded again since) is refused, as a version that is gone."""
        path = self._version_path(task, version)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise VersionNotFound(f"task {task!r} has no version {version}") from exc
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise VersionNotFound(f"task {task!r}'s version {version} was deleted and replaced")
        spec, _ = prompt_file.decode(data, self.backbone)
        return spec

    # ---- writing -------------------------------------------------------------------------
    def add_version(
        self,
        task: str,
        data: bytes,
        labels: list[str] | None = None,
        description: str | None = None,
        check: Callable[[TaskSpec], None] | None = None,
    ) -> VersionInfo:
        """Validate a prompt file, store it as the task's next version and make it active.

        `check`, when given, runs on the validated task before anything is stored, and may refuse
        it by raising (the server runs a probe forward: app/upload_check.py)."""
        check_task_id(task)
        spec, _ = prompt_file.decode(data, self.backbone, labels=labels, description=description)
        self._check_fits(spec)
        if check is not None:
            check(spec)
        with self._lock:
            state = self._tasks.get(task)
            if state is None and (self.root / task).is_dir():  # another process created it
                # its unacknowledged files may be that process's writes in flight: not removed
                state = self._load_task(self.root / task, clean=False)
            created = datetime.now(UTC).isoformat(timespec="seconds")
            if state is None:
                payload = prompt_file.encode_version(spec, self.backbone, task, 1, created)
                info = version_info(task, 1, spec, payload, created)
                new_state = TaskState(task, 1, 2, MappingProxyType({1: info}))
                self._create_task(task, payload, new_state)
            else:
                version, payload = self._store_new(task, state.next_version, spec, created)
                info = version_info(task, version, spec, payload, created)
                versions = MappingProxyType({**state.versions, version: info})
                new_state = TaskState(task, version, version + 1, versions)
                self._write_state(new_state)
            self._tasks[task] = new_state
        log.info("task %s: stored version %d (%d bytes)", task, info.version, len(payload))
        return info

    def activate(self, task: str, version: int) -> TaskState:
        with self._lock:
            state = self.state(task)
            if version not in state.versions:
                raise VersionNotFound(f"task {task!r} has no version {version}")
            new_state = replace(state, active=version)
            self._write_state(new_state)
            self._tasks[task] = new_state
        log.info("task %s: version %d active", task, version)
        return new_state

    def delete_version(self, task: str, version: int) -> None:
        with self._lock:
            state = self.state(task)
            if version not in state.versions:
                raise VersionNotFound(f"task {task!r} has no version {version}")
            if version == state.active:
                raise Conflict(f"version {version} of {task!r} is active; activate another first")
            versions = {v: info for v, info in state.versions.items() if v != version}
            new_state = replace(state, versions=MappingProxyType(versions))
            self._write_state(new_state)  # first forget it, then remove the file
            self._version_path(task, version).unlink(missing_ok=True)
            fsync_dir(self.root / task)
            self._tasks[task] = new_state
        log.info("task %s: version %d deleted", task, version)

    def delete_task(self, task: str) -> None:
        with self._lock:
            self.state(task)
            trash = self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
            (self.root / task).rename(trash)
            fsync_dir(self.root)
            del self._tasks[task]
        shutil.rmtree(trash, ignore_errors=True)
        log.info("task %s deleted", task)

    # ---- internals -----------------------------------------------------------------------
    def _check_fits(self, spec: TaskSpec) -> None:
        """Refuse a prompt too long for the backbone: every classify with it would fail."""
        if spec.prompt_len > self.max_prompt_len:
            raise InvalidPrompt(
                f"prompt has {spec.prompt_len} vectors; this backbone takes at most "
                f"{self.max_prompt_len}, to leave room for the text"
            )

    def _store_new(
        self, task: str, version: int, spec: TaskSpec, created: str
    ) -> tuple[int, bytes]:
        """Write the version's file under the first free number from `version` on: a number
        taken on disk (another process, say `promptserve train --prompts-dir`, stored it while
        this one ran) is skipped, never overwritten. Returns the number used and the bytes."""
        for number in range(version, version + MAX_SKIPPED):
            payload = prompt_file.encode_version(spec, self.backbone, task, number, created)
            try:
                write_new(self._version_path(task, number), payload)
            except FileExistsError:
                log.warning("task %s: v%d exists on disk, stored by another process; it is "
                            "served after a restart", task, number)  # fmt: skip
                continue
            return number, payload
        raise Conflict(f"task {task!r}: versions {version} to {number} all exist on disk")

    def _version_path(self, task: str, version: int) -> Path:
        return self.root / check_task_id(task) / f"v{version}.safetensors"

    def _write_state(self, state: TaskState) -> None:
        """The task's state file; its next_version never goes down, even below a number another
        process stored meanwhile: a restart would take versions past it for interrupted writes."""
        path = self.root / state.task / STATE_FILE
        on_disk = read_state(path)
        next_version = max(state.next_version, on_disk["next_version"] if on_disk else 0)
        body = {"active": state.active, "next_version": next_version}
        write_atomic(path, json.dumps(body).encode())

    def _create_task(self, task: str, payload: bytes, state: TaskState) -> None:
        """A new task appears whole: written in a staging directory, then renamed into place."""
        if (self.root / task).exists():  # another backbone's versions, or damaged: never overwrite
            raise Conflict(
                f"a directory for task {task!r} exists but holds no version this server can serve "
                "(made for another backbone, or damaged); move it away or use another task id"
            )
        staging = self.root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            write_atomic(staging / f"v{state.active}.safetensors", payload)
            body = {"active": state.active, "next_version": state.next_version}
            write_atomic(staging / STATE_FILE, json.dumps(body).encode())
            staging.rename(self.root / task)
            fsync_dir(self.root)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _load_task(self, path: Path, clean: bool = True) -> TaskState | None:
        """The task's state (None: nothing here serves). `clean` (start-up) removes leftovers
        of interrupted writes (temp files, unacknowledged versions); else they are skipped."""
        try:
            task = check_task_id(path.name)
        except InvalidTaskId:
            log.warning("skipping %s: not a valid task id", path)
            return None
        saved = read_state(path / STATE_FILE)
        versions: dict[int, VersionInfo] = {}
        for file in path.iterdir():
            match = VERSION_FILE.match(file.name)
            if file.name.startswith(TEMP_PREFIX):
                if clean:
                    file.unlink(missing_ok=True)
            elif match:
                version = int(match.group(1))
                if saved is not None and version >= saved["next_version"]:
                    if clean:
                        log.warning("removing unacknowledged %s (interrupted upload)", file)
                        file.unlink(missing_ok=True)
                    continue
                info = self._index_file(task, version, file)
                if info is not None:
                    versions[version] = info
        if not versions:
            log.warning("skipping %s: no valid versions", path)
            return None
        active = saved["active"] if saved and saved["active"] in versions else max(versions)
        next_version = max(saved["next_version"] if saved else 0, max(versions) + 1)
        return TaskState(task, active, next_version, MappingProxyType(versions))

    def _index_file(self, task: str, version: int, file: Path) -> VersionInfo | None:
        data = file.read_bytes()
        try:
            spec, metadata = prompt_file.decode(data, self.backbone)
            self._check_fits(spec)
        except InvalidPrompt as exc:
            log.warning("skipping %s: %s", file, exc)
            return None
        created = metadata.get("created") or datetime.fromtimestamp(
            file.stat().st_mtime, UTC
        ).isoformat(timespec="seconds")
        return version_info(task, version, spec, data, created)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
