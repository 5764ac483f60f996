"""The registry on disk: task ids, numbered immutable versions, backbone identity, crash safety."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from safetensors import safe_open

from app.errors import Conflict, InvalidPrompt, InvalidTaskId, TaskNotFound, VersionNotFound
from app.registry import Registry
from tests.helpers import identity, prompt_bytes, random_spec

BACKBONE = identity(hidden=32)


def fresh(root: Path, backbone=BACKBONE) -> Registry:  # type: ignore[no-untyped-def]
    """A registry as a restarted server builds it: constructed, then loaded from disk."""
    registry = Registry(root, backbone)
    registry.load()
    return registry


def add(registry: Registry, task: str, seed: int = 0) -> int:
    return registry.add_version(task, prompt_bytes(random_spec(32, seed=seed))).version


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- task ids ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "task", ["a", "sentiment", "topic-v2", "intent_2024.en", "0", "_x", "-", "a" * 64]
)
def test_valid_task_ids_are_accepted(tmp_path: Path, task: str) -> None:
    registry = fresh(tmp_path / "prompts")
    add(registry, task)
    assert registry.task_ids() == [task]
    assert (tmp_path / "prompts" / task / "v1.safetensors").is_file()


@pytest.mark.parametrize(
    "task",
    [
        "",
        "..",
        ".",
        ".hidden",
        "../evil",
        "a/b",
        "/abs",
        "a\\b",
        "Upper",
        "a" * 65,
        "a b",
        "a\n",
        "é",
        "a\x00",
    ],
    ids=[
        "empty",
        "dotdot",
        "dot",
        "leading-dot",
        "parent",
        "slash",
        "absolute",
        "backslash",
        "uppercase",
        "65-chars",
        "space",
        "newline",
        "non-ascii",
        "nul",
    ],
)
def test_unsafe_task_ids_are_refused_and_nothing_is_written(tmp_path: Path, task: str) -> None:
    root = tmp_path / "prompts"
    registry = fresh(root)
    with pytest.raises(InvalidTaskId, match="invalid task id"):
        add(registry, task)
    assert registry.task_ids() == []
    assert list(root.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts"]


# ---- versions ------------------------------------------------------------------------------
def test_versions_are_numbered_and_the_newest_upload_is_active(tmp_path: Path) -> None:
    registry = fresh(tmp_path)
    assert [add(registry, "t", seed) for seed in range(3)] == [1, 2, 3]
    state = registry.state("t")
    assert (state.active, sorted(state.versions)) == (3, [1, 2, 3])
    assert registry.resolve("t").version == 3
    assert registry.resolve("t", 1).version == 1


def test_a_stored_version_never_changes(tmp_path: Path) -> None:
    registry = fresh(tmp_path)
    add(registry, "t", seed=1)
    v1 = tmp_path / "t" / "v1.safetensors"
    before = sha256(v1)
    add(registry, "t", seed=2)
    registry.activate("t", 2)
    registry.activate("t", 1)
    assert sha256(v1) == before == registry.state("t").versions[1].sha256


def test_versions_are_safetensors_stamped_with_the_backbone(tmp_path: Path) -> None:
    """Never pickle: the directory holds task.json and safetensors files, nothing else."""
    registry = fresh(tmp_path)
    add(registry, "t")
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["task.json", "v1.safetensors"]
    with safe_open(str(tmp_path / "t" / "v1.safetensors"), framework="pt") as stored:
        metadata = stored.metadata()
        assert sorted(stored.keys()) == ["head.bias", "head.weight", "prompt"]
    assert metadata["backbone"] == BACKBONE.name
    assert metadata["backbone_fingerprint"] == BACKBONE.fingerprint
    assert (metadata["task"], metadata["version"]) == ("t", "1")
    assert json.loads(metadata["labels"]) == ["label0", "label1", "label2"]


def test_activate_rolls_back_and_forward(tmp_path: Path) -> None:
    registry = fresh(tmp_path)
    add(registry, "t", 1)
    add(registry, "t", 2)
    assert registry.activate("t", 1).active == 1
    assert registry.resolve("t").version == 1
    assert registry.activate("t", 2).active == 2
    with pytest.raises(VersionNotFound):
        registry.activate("t", 7)


def test_the_active_version_cannot_be_deleted(tmp_path: Path) -> None:
    registry = fresh(tmp_path)
    add(registry, "t", 1)
    add(registry, "t", 2)
    with pytest.raises(Conflict, match="active"):
        registry.delete_version("t", 2)
    registry.delete_version("t", 1)
    assert sorted(registry.state("t").versions) == [2]
    assert not (tmp_path / "t" / "v1.safetensors").exists()
    with pytest.raises(VersionNotFound):
        registry.resolve("t", 1)
    with pytest.raises(VersionNotFound):
        registry.read_spec("t", 1)


def test_version_numbers_are_never_reused_even_after_a_restart(tmp_path: Path) -> None:
    """Guards a pinned client silently getting other weights under a number it already knew."""
    registry = fresh(tmp_path)
    add(registry, "t", 1)
    add(registry, "t", 2)
    registry.activate("t", 1)
    registry.delete_version("t", 2)
    assert add(fresh(tmp_path), "t", 3) == 3


def test_deleted_task_is_gone_now_and_after_a_restart(tmp_path: Path) -> None:
    registry = fresh(tmp_path)
    add(registry, "t")
    add(registry, "keep")
    registry.delete_task("t")
    with pytest.raises(TaskNotFound):
        registry.resolve("t")
    assert fresh(tmp_path).task_ids() == ["keep"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
    assert add(registry, "t") == 1  # a new task under the old name starts over


def test_unknown_task_and_version_are_reported_as_such(tmp_path: Path) -> None:
    registry = fresh(tmp_path)
    add(registry, "t")
    with pytest.raises(TaskNotFound):
        registry.resolve("nope")
    with pytest.raises(VersionNotFound):
        registry.resolve("t", 2)
    with pytest.raises(TaskNotFound):
        registry.delete_task("nope")


def test_a_refused_upload_leaves_the_registry_as_it_was(tmp_path: Path) -> None:
    registry = fresh(tmp_path)
    add(registry, "t")
    with pytest.raises(InvalidPrompt):
        registry.add_version("t", b"garbage")
    assert sorted(registry.state("t").versions) == [1]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["task.json", "v1.safetensors"]


def test_a_prompt_too_long_for_the_backbone_is_refused_and_never_served(tmp_path: Path) -> None:
    """Regression: a prompt leaving the backbone no room for text made every classify fail (500)."""
    short_backbone = Registry(tmp_path, BACKBONE, max_prompt_len=8)
    short_backbone.load()
    with pytest.raises(InvalidPrompt, match="at most 8, to leave room for the text"):
        short_backbone.add_version("t", prompt_bytes(random_spec(32, prompt_len=9)))
    assert short_backbone.add_version("t", prompt_bytes(random_spec(32, prompt_len=8))).version == 1

    add(fresh(tmp_path), "long", seed=1)  # 4 vectors: fine for the default limit...
    shorter = Registry(tmp_path, BACKBONE, max_prompt_len=3)
    shorter.load()
    assert shorter.task_ids() == []  # ...but a server that cannot fit it does not serve it


# ---- backbone identity -----------------------------------------------------------------------
def test_a_server_on_another_backbone_serves_none_of_the_old_prompts(tmp_path: Path) -> None:
    add(fresh(tmp_path), "t")
    other = identity(hidden=32, name="other-bert", fingerprint="feedfacefeedface")
    assert fresh(tmp_path, other).task_ids() == []
    assert fresh(tmp_path).task_ids() == ["t"]  # and the files are still there for the right one


def test_a_new_task_never_overwrites_another_backbones_directory(tmp_path: Path) -> None:
    """Regression: uploading 't' after a backbone switch failed on the rename (OSError, 500)."""
    add(fresh(tmp_path), "t")
    old_file = sha256(tmp_path / "t" / "v1.safetensors")
    other = fresh(tmp_path, identity(hidden=32, name="other-bert", fingerprint="feedfacefeedface"))
    with pytest.raises(Conflict, match="another backbone"):
        other.add_version("t", prompt_bytes(random_spec(32)))
    assert other.task_ids() == []
    assert sha256(tmp_path / "t" / "v1.safetensors") == old_file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # no staging left behind
