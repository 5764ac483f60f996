"""`promptserve serve`: flags, PROMPTSERVE_* environment variables, and refusing bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import SERVE_OPTIONS, build_parser, main, settings_from_args
from app.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: none leak in from the shell running the suite."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"PROMPTSERVE_{name.upper()}", raising=False)


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a bad value ever slip through, fail here instead of starting a server."""

    def refuse(settings: Settings) -> None:
        pytest.fail(f"main() went on to serve with {settings!r}")

    monkeypatch.setattr("app.cli.serve", refuse)


def settings(*flags: str) -> Settings:
    return settings_from_args(build_parser().parse_args(["serve", *flags]))


def test_defaults_without_flags_or_environment() -> None:
    s = settings()
    assert (s.host, s.port, s.prompts_dir) == ("127.0.0.1", 8000, Path("prompts"))
    assert s.admin_token is None


def test_a_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTSERVE_PORT", "9000")
    monkeypatch.setenv("PROMPTSERVE_MAX_BATCH_SIZE", "7")
    s = settings("--port", "8123")
    assert s.port == 8123
    assert s.max_batch_size == 7  # no flag: the environment's value


def test_the_environment_is_used_when_no_flag_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTSERVE_PROMPTS_DIR", "/srv/prompts")
    monkeypatch.setenv("PROMPTSERVE_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("PROMPTSERVE_REQUEST_TIMEOUT_S", "2.5")
    monkeypatch.setenv("PROMPTSERVE_MAX_UPLOAD_BYTES", "1000")  # env only: there is no flag for it
    s = settings()
    assert s.prompts_dir == Path("/srv/prompts")
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "from-env"
    assert s.request_timeout_s == 2.5
    assert s.max_upload_bytes == 1000


def test_every_flag_reaches_its_setting() -> None:
    given = {
        "host": "0.0.0.0",
        "port": "8443",
        "backbone": "/models/tiny",
        "prompts_dir": "/data/p",
        "device": "cpu",
        "precision": "bf16",
        "max_batch_size": "8",
        "max_batch_tokens": "2048",
        "max_batch_padding": "0.05",
        "max_wait_ms": "1.5",
        "queue_limit": "20",
        "request_timeout_s": "3",
        "body_timeout_s": "4",
        "max_client_batch": "16",
        "cache_bytes": "4096",
        "admin_token": "adm",
        "classify_token": "cls",
        "log_level": "WARNING",
        "max_text_chars": "500",
        "max_request_bytes": "2048",
        "max_upload_bytes": "4096",
        "task_metric_cap": "3",
        "attention": "sdpa",
        "model_workers": "3",
        "threads_per_worker": "2",
        "trace": "off",
        "drain_grace_s": "7.5",
        "cpu_kernel_cache": "32",
    }
    assert set(given) == {name for name, _, _ in SERVE_OPTIONS}
    flags = [part for name, raw in given.items() for part in (f"--{name.replace('_', '-')}", raw)]
    s = settings(*flags)
    assert (s.host, s.port, s.backbone) == ("0.0.0.0", 8443, "/models/tiny")
    assert s.prompts_dir == Path("/data/p")
    assert (s.device, s.precision, s.log_level) == ("cpu", "bf16", "warning")
    assert (s.max_batch_size, s.max_batch_tokens, s.max_wait_ms) == (8, 2048, 1.5)
    assert s.max_batch_padding == 0.05
    assert s.queue_limit == 20
    assert (s.request_timeout_s, s.max_client_batch, s.cache_bytes) == (3.0, 16, 4096)
    assert s.body_timeout_s == 4.0
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "adm"
    assert s.classify_token is not None and s.classify_token.get_secret_value() == "cls"
    assert (s.max_text_chars, s.max_request_bytes, s.max_upload_bytes) == (500, 2048, 4096)
    assert s.task_metric_cap == 3
    assert s.cpu_kernel_cache == 32
    assert (s.attention, s.model_workers, s.threads_per_worker) == ("sdpa", 3, 2)
    assert (s.trace, s.drain_grace_s) == ("off", 7.5)


@pytest.mark.parametrize(
    ("flags", "env", "named"),
    [
        (["--port", "0"], {}, "port"),
        (["--port", "70000"], {}, "port"),
        (["--device", "tpu"], {}, "device"),
        (["--precision", "fp8"], {}, "precision"),
        (["--queue-limit", "0"], {}, "queue_limit"),
        (["--queue-limit", "8"], {}, "queue_limit (8) is below max_client_batch (64)"),
        (["--request-timeout-s", "0"], {}, "request_timeout_s"),
        (["--log-level", "loud"], {}, "log_level"),
        ([], {"PROMPTSERVE_PORT": "not-a-port"}, "port"),
        ([], {"PROMPTSERVE_MAX_BATCH_SIZE": "-1"}, "max_batch_size"),
        ([], {"PROMPTSERVE_LOG_LEVEL": "verbose"}, "log_level"),
    ],
)
def test_an_invalid_value_exits_2_naming_it(
    flags: list[str],
    env: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression (log level): an unknown level passed validation, then crashed with a traceback."""
    for key, raw in env.items():
        monkeypatch.setenv(key, raw)
    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and named in err


def test_a_flag_of_the_wrong_type_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "eighty"])
    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_help_names_each_options_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for name, _, _ in SERVE_OPTIONS:
        assert f"--{name.replace('_', '-')}" in shown
        assert f"PROMPTSERVE_{name.upper()}" in shown


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2


def test_serving_caps_the_cpu_kernel_caches_unless_the_environment_already_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """oneDNN and ideep keep kernels per input shape (1,024 each by default): uncapped, a
    server's memory grew with every new batch shape. An operator's own setting wins."""
    from app.backbone import limit_cpu_kernel_caches

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "8")
    limit_cpu_kernel_caches(Settings().cpu_kernel_cache)  # type: ignore[call-arg]
    import os

    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"
    assert os.environ["LRU_CACHE_CAPACITY"] == "8"


@pytest.mark.parametrize("value", ["", "   "])
@pytest.mark.parametrize("name", ["PROMPTSERVE_ADMIN_TOKEN", "PROMPTSERVE_CLASSIFY_TOKEN"])
def test_an_empty_token_stops_the_server_from_starting(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ops audit 5: an empty PROMPTSERVE_ADMIN_TOKEN (compose passes a missing secret through as
    "") opened the admin routes to `Authorization: Bearer ` with no warning; a blank one locked
    them for good."""
    monkeypatch.setenv(name, value)
    monkeypatch.setattr("app.cli.serve", lambda settings: pytest.fail("started"))
    assert main(["serve"]) == 2
    assert name in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        (["--backbone", "/nonexistent/model"], "no such directory"),
        (["--backbone", "."], "no config.json there"),
    ],
)
def test_a_backbone_that_cannot_load_is_one_line_and_exit_2(
    flag: list[str], says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ops audit 5: it started the server, then logged a traceback and exited 1, in a restart
    loop under compose."""
    monkeypatch.setattr("app.cli.serve", lambda settings: pytest.fail("started"))
    assert main(["serve", *flag]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
