"""The container entrypoint seeds shipped prompts into the registry volume and never loses uploads.

Runs deploy/entrypoint.sh itself, with the registry and shipped prompts in temporary directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parent.parent / "deploy" / "entrypoint.sh"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def make_task(root: Path, task: str, content: bytes) -> Path:
    """A task directory as the registry lays it out (the bytes stand in for a prompt file)."""
    (root / task).mkdir(parents=True)
    (root / task / "v1.safetensors").write_bytes(content)
    (root / task / "task.json").write_text('{"active": 1, "next_version": 2}')
    return root / task


def start(registry: Path, shipped: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """One container start: the entrypoint, then `command` (the server, in the image)."""
    env = {
        **os.environ,
        "PROMPTSERVE_PROMPTS_DIR": str(registry),
        "SHIPPED_PROMPTS_DIR": str(shipped),
    }
    return subprocess.run(
        [str(ENTRYPOINT), *(command or ("true",))], env=env, capture_output=True, text=True
    )


def tasks(registry: Path) -> list[str]:
    return sorted(path.name for path in registry.iterdir() if path.is_dir())


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    root = tmp_path / "shipped"
    make_task(root, "sentiment", b"shipped sentiment")
    make_task(root, "topic", b"shipped topic")
    return root


def test_first_start_seeds_an_empty_volume(tmp_path: Path, shipped: Path) -> None:
    registry = tmp_path / "registry"
    result = start(registry, shipped)
    assert result.returncode == 0, result.stderr
    assert tasks(registry) == ["sentiment", "topic"]
    assert (registry / "topic" / "v1.safetensors").read_bytes() == b"shipped topic"
    assert (registry / "topic" / "task.json").exists()
    assert not [p for p in registry.iterdir() if p.name.startswith(".new-")]


def test_an_upload_under_a_shipped_name_is_never_overwritten(tmp_path: Path, shipped: Path) -> None:
    registry = tmp_path / "registry"
    make_task(registry, "sentiment", b"the user's own sentiment")
    assert start(registry, shipped).returncode == 0
    assert (registry / "sentiment" / "v1.safetensors").read_bytes() == b"the user's own sentiment"
    assert (registry / "topic" / "v1.safetensors").read_bytes() == b"shipped topic"


def test_a_deleted_shipped_task_stays_deleted_across_restarts(
    tmp_path: Path, shipped: Path
) -> None:
    registry = tmp_path / "registry"
    assert start(registry, shipped).returncode == 0
    shutil.rmtree(registry / "topic")  # what DELETE /prompts/topic leaves
    assert start(registry, shipped).returncode == 0
    assert tasks(registry) == ["sentiment"]


def test_a_task_new_in_a_later_image_reaches_an_existing_volume(
    tmp_path: Path, shipped: Path
) -> None:
    registry = tmp_path / "registry"
    assert start(registry, shipped).returncode == 0
    make_task(registry, "mine", b"uploaded")
    make_task(shipped, "spam", b"shipped spam")
    assert start(registry, shipped).returncode == 0
    assert tasks(registry) == ["mine", "sentiment", "spam", "topic"]
    assert (registry / "mine" / "v1.safetensors").read_bytes() == b"uploaded"


def test_no_shipped_prompts_and_the_command_runs_with_its_arguments(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    result = start(registry, tmp_path / "absent", "sh", "-c", 'echo "served $1"', "sh", "x y")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "served x y\n"
    assert tasks(registry) == []


def test_an_unusable_registry_stops_the_start_with_a_clear_message(
    tmp_path: Path, shipped: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    registry = tmp_path / "a-file" / "registry"  # cannot be created, even by root
    result = start(registry, shipped, "sh", "-c", "echo server started")
    assert result.returncode == 1
    assert "not writable" in result.stderr and "server started" not in result.stdout
