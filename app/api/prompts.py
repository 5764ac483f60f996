"""Prompt registry routes: upload (hot swap), list, inspect, activate, delete."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from app.api.auth import require_admin
from app.api.body import documented, idle_limited, parse_body, read_body
from app.api.deps import ServicesDep, SettingsDep
from app.api.errors import error_responses
from app.api.schemas import (
    MAX_VERSION,
    ActivateRequest,
    TaskPage,
    TaskRecord,
    TaskSummary,
    VersionRecord,
)
from app.errors import InvalidRequest, TooLarge, short_message
from app.task import check_task_id

router = APIRouter(prefix="/prompts", tags=["prompts"])
admin = [Depends(require_admin)]
CHUNK = 1 << 20


UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A prompt file (safetensors), or a .zip of an HF PEFT "
                        "prompt-tuning adapter directory (adapter_config.json + "
                        "adapter_model.safetensors).",
                    },
                    "labels": {
                        "type": "string",
                        "description": 'Label names as a JSON list, e.g. ["neg", "pos"].',
                    },
                    "description": {"type": "string"},
                },
            }
        }
    },
}


@router.put(
    "/{task}",
    status_code=201,
    response_model=VersionRecord,
    dependencies=admin,  # checked before the form is read: the request takes the bare Request
    responses=error_responses(401, 408, 409, 413, 422, 503),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload(
    task: str, request: Request, services: ServicesDep, settings: SettingsDep
) -> VersionRecord:
    """Store a new version of `task` and make it active: served from the next request on."""
    check_task_id(task)
    body = idle_limited(request, settings.body_timeout_s)
    async with body.form(max_files=4, max_fields=16) as form:  # others are ignored
        file, labels, description = form.get("file"), form.get("labels"), form.get("description")
        if not isinstance(file, StarletteUploadFile):
            raise InvalidRequest("body.file: field required (a prompt file or adapter zip)")
        if not isinstance(labels, str | None) or not isinstance(description, str | None):
            raise InvalidRequest("labels and description must be text fields")
        data = await _read_limited(file, settings.max_upload_bytes)
    label_list = _parse_labels(labels)
    info = await run_in_threadpool(
        services.admin.upload, task, data, label_list, description, settings.max_upload_bytes
    )
    return VersionRecord.of(info, info.version)


@router.get("", response_model=TaskPage, responses=error_responses(422, 503))
async def list_tasks(
    services: ServicesDep,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> TaskPage:
    states = services.registry.states()  # one snapshot: a delete meanwhile cannot break the page
    page = [TaskSummary.of(state) for state in states[offset : offset + limit]]
    return TaskPage(tasks=page, total=len(states), offset=offset, limit=limit)


@router.get("/{task}", response_model=TaskRecord, responses=error_responses(404, 422, 503))
async def get_task(task: str, services: ServicesDep) -> TaskRecord:
    return TaskRecord.of(services.registry.state(task))


@router.post(
    "/{task}/activate",
    response_model=TaskRecord,
    dependencies=admin,  # checked before the body is read (app/api/body.py)
    responses=error_responses(401, 404, 408, 413, 422, 503),
    openapi_extra=documented(ActivateRequest),
)
async def activate(
    task: str, request: Request, services: ServicesDep, settings: SettingsDep
) -> TaskRecord:
    raw = await read_body(request, settings.body_timeout_s)
    body = parse_body(ActivateRequest, request.headers.get("content-type", ""), raw)
    state = await run_in_threadpool(services.admin.activate, task, body.version)
    return TaskRecord.of(state)


@router.delete(
    "/{task}/versions/{version}",
    status_code=204,
    dependencies=admin,
    responses=error_responses(401, 404, 409, 422, 503),
)
async def delete_version(
    task: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], services: ServicesDep
) -> Response:
    await run_in_threadpool(services.admin.delete_version, task, version)
    return Response(status_code=204)


@router.delete(
    "/{task}", status_code=204, dependencies=admin, responses=error_responses(401, 404, 422, 503)
)
async def delete_task(task: str, services: ServicesDep) -> Response:
    await run_in_threadpool(services.admin.delete_task, task)
    return Response(status_code=204)


async def _read_limited(file: StarletteUploadFile, max_bytes: int) -> bytes:
    """Read the spooled upload chunk by chunk, refusing as soon as it passes the limit."""
    chunks, size = [], 0
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"upload is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_labels(labels: str | None) -> list[str] | None:
    if labels is None or labels == "":
        return None
    try:
        parsed = json.loads(labels)
    except (ValueError, RecursionError) as exc:  # also: nested too deep, integers too long
        raise InvalidRequest(
            f"labels must be a JSON list of strings: {short_message(exc)}"
        ) from None
    if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
        raise InvalidRequest("labels must be a JSON list of strings")
    return parsed
