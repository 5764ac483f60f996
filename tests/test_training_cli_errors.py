"""`promptserve train`: bad options and destinations refused before training, with a message,
and a trained task kept when its delivery fails after all."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from app import prompt_file
from app.backbone import Backbone
from app.cli import main
from app.training.cli import recorded_command
from tests.test_training import synthetic
from tests.test_training_cli import write_jsonl


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train(tmp_path: Path, backbone_dir: Path, *extra: str) -> int:
    train_file = write_jsonl(tmp_path / "train.jsonl", synthetic(64, seed=1))
    return main(
        [
            "train", "--task", "mood", "--train", str(train_file), "--epochs", "1",
            "--prompt-len", "2", "--precision", "fp32", "--no-progress",
            "--backbone", str(backbone_dir), "--device", "cpu", *extra,
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--epochs", "-1"], "--epochs must be at least 0"),
        (["--warmup", "1.5"], "--warmup must be in [0, 1)"),
        (["--init-text", "hello"], "--init-text needs --init text"),
        (["--device", "cuda"], "no CUDA device"),
        (["--backbone", "/nonexistent/backbone"], "/nonexistent/backbone"),
        (["--prompt-lr", "inf"], "--prompt-lr must be a finite number"),  # audit 5: trained,
        (["--probe-l2", "inf"], "--probe-l2 must be a finite number"),  # then failed
        (["--epochs", "0", "--head-init", "zeros"], "all-zero head"),  # audit 5: shipped it
        (["--init", "text", "--init-text", "   "], "--init-text is blank"),  # was: vocab init
    ],
)
def test_a_bad_option_exits_2_naming_it_before_training(
    extra: list[str],
    says: str,
    tmp_path: Path,
    tiny_backbone_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regressions: batch size 0 raised ZeroDivisionError; --device cuda on a CPU-only torch and
    a missing backbone raised tracebacks."""
    if extra[0] == "--device" and __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "t.safetensors"
    assert train(tmp_path, tiny_backbone_dir, "--out", str(out), *extra) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("where", "says"),
    [
        (lambda tmp: ["--task", "Bad Task", "--prompts-dir", str(tmp / "p")], "task id"),
        (lambda tmp: ["--out", str(tmp)], "is a directory"),
        (lambda tmp: ["--task", "Bad Task", "--out", str(tmp / "t.st")], "task id"),  # audit 4
        (lambda tmp: ["--out", str(tmp / "train.jsonl")], "is the --train file"),  # audit 4
        (lambda tmp: ["--upload", f"http://127.0.0.1:{free_port()}"], "cannot reach the server"),
        # audit 5: the init prompt was overwritten by the first checkpoint, and its recorded
        # hash was the checkpoint's
        (
            lambda tmp: [
                "--init",
                "prompt",
                "--init-prompt",
                str(tmp / "mood"),
                "--out",
                str(tmp / "mood"),
            ],
            "is the --init-prompt file",
        ),  # fmt: skip
        (lambda tmp: ["--out", "/proc/x.st"], "cannot write in /proc"),  # os.access said yes
        (lambda tmp: ["--prompts-dir", str(tmp)], "is a file, where the task's folder goes"),
    ],
)
def test_a_bad_destination_is_refused_before_any_training(
    where,
    says: str,
    tmp_path: Path,
    tiny_backbone_dir: Path,
    capsys,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """Regression: the destination was checked only after training, and a bad one lost the
    trained task with a traceback."""
    monkeypatch.setattr("app.training.run.train", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "mood").write_text("a file where the registry wants the task's folder")
    assert train(tmp_path, tiny_backbone_dir, *where(tmp_path)) == 2
    assert says in capsys.readouterr().err


def test_a_refused_run_leaves_no_folders_behind(
    tmp_path: Path, tiny_backbone_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Audit 5: --out's and --prompts-dir's folders were made before the run was refused."""
    unreachable = f"http://127.0.0.1:{free_port()}"
    out, registry = tmp_path / "new" / "deep" / "t.st", tmp_path / "registry"
    extra = ["--out", str(out), "--prompts-dir", str(registry), "--upload", unreachable]
    assert train(tmp_path, tiny_backbone_dir, *extra) == 2
    assert "cannot reach the server" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not registry.exists()


def test_a_delivery_that_fails_after_training_keeps_the_task(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server was ready when training began, then refused the upload (a wrong token): the
    trained task is saved to a file whose path the log gives."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(httpx, "get", lambda *a, **k: httpx.Response(200))
    # the token check before training passes (an empty upload: 422), the real upload is refused
    monkeypatch.setattr(
        httpx, "put", lambda *a, **k: httpx.Response(401 if "files" in k else 422, text="no")
    )
    assert train(tmp_path, tiny_backbone_dir, "--upload", "http://127.0.0.1:1") == 2
    [kept] = tmp_path.glob("promptserve-mood-*.safetensors")
    spec, _ = prompt_file.decode(kept.read_bytes(), tiny_backbone.identity)
    assert spec.labels == ("negative", "positive")


def test_a_token_the_server_refuses_is_found_before_training(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr("app.training.run.train", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(httpx, "get", lambda *a, **k: httpx.Response(200))
    monkeypatch.setattr(httpx, "put", lambda *a, **k: httpx.Response(401, text="bad token"))
    upload = ["--upload", "http://127.0.0.1:1", "--token", "wrong"]
    assert train(tmp_path, tiny_backbone_dir, *upload) == 2
    assert "the server refuses the --token given (401)" in capsys.readouterr().err


def test_an_upload_without_a_file_checks_the_token_and_stores_nothing(make_client) -> None:  # type: ignore[no-untyped-def]
    """What `train --upload`'s token check relies on: 401 for a wrong token, 422 for the right
    one (the file is missing), and no task either way."""
    client = make_client(admin_token="sekret")
    wrong = client.put("/prompts/t", headers={"Authorization": "Bearer wrong"})
    right = client.put("/prompts/t", headers={"Authorization": "Bearer sekret"})
    assert (wrong.status_code, right.status_code) == (401, 422)
    assert client.get("/prompts").json()["total"] == 0


def test_the_recorded_command_never_holds_the_token(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    tiny_backbone: Backbone,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression (README check): `--token` was recorded verbatim in the task's metadata, which
    GET /prompts/{task} serves to anyone, and which travels with every copy of the file."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(httpx, "get", lambda *a, **k: httpx.Response(200))
    monkeypatch.setattr(
        httpx, "put", lambda *a, **k: httpx.Response(500 if "files" in k else 422, text="no")
    )
    upload = ["--upload", "http://127.0.0.1:1", "--tok", "s3cret"]  # argparse takes the prefix
    assert train(tmp_path, tiny_backbone_dir, *upload) == 2
    [kept] = tmp_path.glob("promptserve-mood-*.safetensors")
    _, metadata = prompt_file.decode(kept.read_bytes(), tiny_backbone.identity)
    command = json.loads(metadata["metrics"])["training"]["command"]
    assert "s3cret" not in command and "--tok '***'" in command
    assert recorded_command(["train", "--token=a", "--to", "b", "--task", "t"]) == (
        "promptserve train '--token=***' --to '***' --task t"
    )


def test_eval_on_a_missing_registry_names_it_and_creates_nothing(
    tmp_path: Path, tiny_backbone_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Audit 4: eval outside the repository said "task not found" without saying where it
    looked, and left an empty ./prompts behind."""
    data = write_jsonl(tmp_path / "test.jsonl", synthetic(8, seed=2))
    missing = tmp_path / "no-registry"
    argv = ["eval", "--task", "mood", "--data", str(data), "--prompts-dir", str(missing)]
    assert main([*argv, "--backbone", str(tiny_backbone_dir), "--device", "cpu"]) == 2
    assert f"no registry at {missing}" in capsys.readouterr().err
    assert not missing.exists()


def test_a_checkpoint_that_cannot_be_written_does_not_end_the_run(
    tmp_path: Path,
    tiny_backbone_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Audit 5: a failed checkpoint write (after the destination check passed) ended the run
    with a traceback and kept nothing. Now training goes on, and the end's delivery (which
    keeps the task in a temporary file if it fails too) writes --out."""

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("app.training.run.write_atomic", full_disk)
    out = tmp_path / "t.safetensors"
    assert train(tmp_path, tiny_backbone_dir, "--out", str(out)) == 0
    assert "could not write the checkpoint" in caplog.text
    assert out.is_file()
