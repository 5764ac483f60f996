"""The registry's persistence: every acknowledged version survives a restart, and a write cut
short at any step leaves nothing half-written behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app import atomic
from tests.helpers import prompt_bytes, random_spec
from tests.test_registry import add, fresh


def test_a_restarted_registry_sees_every_acknowledged_version(tmp_path: Path) -> None:
    first = fresh(tmp_path)
    for task, seeds in {"a": [1, 2, 3], "b": [4], "c": [5, 6]}.items():
        for seed in seeds:
            data = prompt_bytes(random_spec(32, seed=seed))
            first.add_version(task, data, description=f"seed {seed}")
    first.activate("a", 2)
    first.delete_version("c", 1)

    second = fresh(tmp_path)

    assert second.task_ids() == first.task_ids() == ["a", "b", "c"]
    for task in second.task_ids():
        before, after = first.state(task), second.state(task)
        assert (after.active, after.next_version) == (before.active, before.next_version)
        assert dict(after.versions) == dict(before.versions)  # sha256, labels, created, description
    assert second.read_spec("a", 3).prompt.equal(first.read_spec("a", 3).prompt)


def test_leftovers_of_interrupted_writes_are_cleaned_and_never_served(tmp_path: Path) -> None:
    """Simulates a crash at each step of a write; only what was acknowledged survives."""
    registry = fresh(tmp_path)
    add(registry, "t", 1)
    add(registry, "t", 2)
    acknowledged = {v: info.sha256 for v, info in registry.state("t").versions.items()}
    unacknowledged = prompt_bytes(random_spec(32, seed=9))
    # crash inside write_atomic, before the rename: temp files, at the root and in the task
    (tmp_path / f"{atomic.TEMP_PREFIX}abc-v1.safetensors").write_bytes(unacknowledged[:100])
    (tmp_path / "t" / f"{atomic.TEMP_PREFIX}def-v3.safetensors").write_bytes(unacknowledged)
    # crash while creating a new task: a complete-looking staging directory
    staging = tmp_path / ".new-0123abcd"
    staging.mkdir()
    (staging / "v1.safetensors").write_bytes(unacknowledged)
    (staging / "task.json").write_text('{"active": 1, "next_version": 2}')
    # crash after the version file was renamed in but before task.json said so
    (tmp_path / "t" / "v3.safetensors").write_bytes(unacknowledged)
    (tmp_path / "t" / "v4.safetensors").write_bytes(unacknowledged)
    # crash in the middle of deleting a task
    (tmp_path / ".trash-0123abcd").mkdir()

    restarted = fresh(tmp_path)

    assert restarted.task_ids() == ["t"]
    state = restarted.state("t")
    assert {v: info.sha256 for v, info in state.versions.items()} == acknowledged
    assert state.active == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "task.json",
        "v1.safetensors",
        "v2.safetensors",
    ]
    assert add(restarted, "t", 3) == 3
    assert restarted.state("t").versions[3].sha256 != hashlib.sha256(unacknowledged).hexdigest()


def test_a_write_that_fails_midway_leaves_no_version_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = fresh(tmp_path)
    add(registry, "t", 1)

    def power_cut(src: object, dst: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(atomic.os, "replace", power_cut)
    with pytest.raises(OSError):
        add(registry, "t", 2)
    with pytest.raises(OSError):
        add(registry, "new-task", 3)
    monkeypatch.undo()

    for view in (registry, fresh(tmp_path)):
        assert view.task_ids() == ["t"]
        assert sorted(view.state("t").versions) == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["task.json", "v1.safetensors"]
    assert add(registry, "t", 2) == 2
