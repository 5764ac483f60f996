"""Request and response bodies of the REST API (pydantic), as they appear in the OpenAPI spec."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.versions import TaskState, VersionInfo


def _integral(value: object) -> object:
    """JSON Schema counts 2.0 as an integer; strict validation alone would refuse it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict: what the spec says is refused is refused (0 is not false, "1" is not 1). Bounded, so
# that 1e300 is a 422, not a 404 quoting a 300-digit number.
MAX_VERSION = 2**31 - 1
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION), BeforeValidator(_integral)]


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    task: str = Field(min_length=1, max_length=200, examples=["sentiment"])
    inputs: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="One text, or a list of 1 to max_client_batch texts (a setting, default 64; "
        "more: 413). A text must hold something to classify: an empty or blank one is a 422.",
        examples=[["what a lovely film", "dull and far too long"]],
    )
    version: VersionNumber | None = Field(None, description="Default: the task's active version.")
    return_all_scores: bool = False

    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class PredictionOut(BaseModel):
    label: str
    score: float
    scores: dict[str, float] | None = None


class ClassifyResponse(BaseModel):
    task: str
    version: int
    predictions: list[PredictionOut]
    truncated: list[bool] = Field(description="Per input: whether it was cut to fit the backbone.")


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: VersionNumber


class VersionRecord(BaseModel):
    task: str
    version: int
    active: bool
    labels: list[str]
    pooling: str
    prompt_len: int
    size_bytes: int
    sha256: str
    created: str
    description: str
    metrics: dict[str, Any]

    @classmethod
    def of(cls, info: VersionInfo, active: int) -> VersionRecord:
        return cls(
            task=info.task,
            version=info.version,
            active=info.version == active,
            labels=list(info.labels),
            pooling=info.pooling,
            prompt_len=info.prompt_len,
            size_bytes=info.size_bytes,
            sha256=info.sha256,
            created=info.created,
            description=info.description,
            metrics=info.metrics,
        )


class TaskRecord(BaseModel):
    task: str
    active: int
    versions: list[VersionRecord]

    @classmethod
    def of(cls, state: TaskState) -> TaskRecord:
        versions = [
            VersionRecord.of(state.versions[v], state.active) for v in sorted(state.versions)
        ]
        return cls(task=state.task, active=state.active, versions=versions)


class TaskSummary(BaseModel):
    task: str
    active: int
    versions: list[int]
    labels: list[str]
    pooling: str
    prompt_len: int
    description: str

    @classmethod
    def of(cls, state: TaskState) -> TaskSummary:
        info = state.active_info
        return cls(
            task=state.task,
            active=state.active,
            versions=sorted(state.versions),
            labels=list(info.labels),
            pooling=info.pooling,
            prompt_len=info.prompt_len,
            description=info.description,
        )


class TaskPage(BaseModel):
    tasks: list[TaskSummary]
    total: int
    offset: int
    limit: int


class ServerInfo(BaseModel):
    backbone: str
    backbone_fingerprint: str
    hidden_size: int
    max_positions: int
    device: str
    precision: str
    version: str


class Status(BaseModel):
    status: str


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
