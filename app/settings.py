"""Settings: the one configuration object, read from PROMPTSERVE_* environment variables."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Attention = Literal["auto", "eager", "sdpa"]
Trace = Literal["auto", "on", "off"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseSettings):
    """Everything the service can be told. Build one and pass it to `create_app`."""

    model_config = SettingsConfigDict(env_prefix="PROMPTSERVE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=1, le=65535, description="Port.")
    backbone: str = Field(
        DEFAULT_BACKBONE,
        description="HF model id or local directory; the default is the MiniLM shipped on PyPI.",
    )
    prompts_dir: Path = Field(Path("prompts"), description="The prompt registry directory.")
    device: Device = Field("auto", description="auto | cpu | cuda.")
    precision: Precision = Field("auto", description="auto | fp32 | bf16 | fp16.")
    attention: Attention = Field(
        "auto", description="Attention kernels: auto (eager on CPU, sdpa on GPU) | eager | sdpa."
    )
    trace: Trace = Field(
        "auto", description="TorchScript-trace the backbone: auto (on CPU) | on | off."
    )
    model_workers: int = Field(
        0, ge=0, description="Batches computed at once; 0 = auto (CPU: 2 if 2+ cores, GPU: 1)."
    )
    threads_per_worker: int = Field(
        0, ge=0, description="Torch threads of each model worker; 0 = auto (cores / workers)."
    )

    max_batch_size: int = Field(32, ge=1, description="Rows per forward pass.")
    max_batch_tokens: int = Field(
        4096, ge=1, description="Padded tokens per forward, prompt included."
    )
    max_batch_padding: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of a batch's tokens that may be padding once it holds a quarter of "
        "max_batch_size; unset = auto (CPU 0.02, GPU no limit).",
    )
    max_wait_ms: float = Field(0.0, ge=0, description="Extra wait for a batch to fill; 0 = none.")
    queue_limit: int = Field(
        256, ge=1, description="Rows waiting or admitted; past it requests get 503."
    )
    request_timeout_s: float = Field(30.0, gt=0, description="Deadline of a classify request.")
    body_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a classify or activate request's body may take to arrive, and the "
        "longest pause within an upload's; past it 408 (a stalled client gives back its place).",
    )
    drain_grace_s: float = Field(
        30.0, ge=0, description="On SIGTERM: how long requests in flight get to finish."
    )
    max_client_batch: int = Field(64, ge=1, description="Inputs per /classify request.")
    max_text_chars: int = Field(20_000, ge=1, description="Longer texts are cut (and flagged).")
    max_request_bytes: int = Field(1024 * 1024, ge=1, description="Body limit except uploads.")
    max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1, description="Prompt file size limit.")
    cache_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="Device budget for prompts+heads."
    )
    task_metric_cap: int = Field(100, ge=0, description="Tasks with their own metric label.")
    cpu_kernel_cache: int = Field(
        64,
        ge=1,
        description="Entries in the CPU kernel caches (oneDNN, ideep): bound memory per shape.",
    )

    # An empty or blank token is refused (_token_not_blank), not taken as "none".
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for upload/activate/delete."
    )
    classify_token: SecretStr | None = Field(None, description="Bearer token for /classify.")

    log_level: LogLevel = Field("info", description="critical | error | warning | info | debug.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lowercase_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("admin_token", "classify_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        """Empty: a secret that failed to load (an empty PROMPTSERVE_ADMIN_TOKEN) must not open the
        routes to an empty Bearer. Blank: no client could send it (header values are stripped),
        so it would lock them for good."""
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("a token may not be blank; unset it to leave the routes open")
        return value

    @model_validator(mode="after")
    def _queue_holds_a_whole_request(self) -> Settings:
        """A request's texts are queued together: with room for fewer, a legal request would be
        refused as 'overloaded' on an idle server, forever."""
        if self.queue_limit < self.max_client_batch:
            raise ValueError(
                f"queue_limit ({self.queue_limit}) is below max_client_batch "
                f"({self.max_client_batch}): a request of {self.max_client_batch} texts could "
                f"never be queued; raise queue_limit or lower max_client_batch"
            )
        return self


def setting_default(name: str) -> str:
    """A serve setting's environment variable, else its default: what the server would use.
    For the other commands' defaults (eval, train, the PEFT commands). Read raw, not through
    Settings(), so that a bad unrelated variable cannot break their argument parsers."""
    return os.environ.get(f"PROMPTSERVE_{name.upper()}") or str(Settings.model_fields[name].default)


def add_prompts_dir_option(parser: argparse.ArgumentParser) -> None:
    """--prompts-dir for a command that reads the server's registry (eval, refit-head, the PEFT
    commands), defaulting to the server's own. Not for train: there it is a destination."""
    parser.add_argument(
        "--prompts-dir",
        type=Path,
        default=Path(setting_default("prompts_dir")),
        help="the prompt registry (default %(default)s: $PROMPTSERVE_PROMPTS_DIR when set)",
    )
