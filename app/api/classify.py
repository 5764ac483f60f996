"""POST /classify: the hot path, kept lean.

Every request pays for what this route asks of the framework, on the one thread that serves all
HTTP beside the model's threads. So the route takes the bare Request: no dependencies to solve,
the body parsed and validated in one pydantic call, and the answer serialised once and returned
as bytes (FastAPI would validate and serialise it a second time). The OpenAPI schema still
documents the body and the response. Measured in BENCHMARKS.md ("Fifth run"): the HTTP
thread's CPU per request fell by 5-7 %.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.admission import STATE_KEY
from app.api.auth import check_bearer
from app.api.body import documented, parse_body, read_body
from app.api.deps import ready_services
from app.api.disconnect import unless_disconnected
from app.api.errors import CLASSIFY_ERRORS
from app.api.schemas import ClassifyRequest, ClassifyResponse, PredictionOut
from app.errors import TooLarge

router = APIRouter(tags=["classify"])


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    response_model_exclude_none=True,
    responses=CLASSIFY_ERRORS,
    openapi_extra=documented(ClassifyRequest),
)
async def classify(request: Request) -> Response:
    state = request.app.state
    check_bearer(request, state.settings.classify_token)
    services = ready_services(state)
    raw = await read_body(request, state.settings.body_timeout_s)
    body = parse_body(ClassifyRequest, request.headers.get("content-type", ""), raw)
    texts, most = body.texts(), state.settings.max_client_batch
    if len(texts) > most:
        raise TooLarge(f"{len(texts)} inputs; at most {most} per request")
    admission = getattr(request.state, STATE_KEY, None)  # held for us at the door
    work = services.classify.classify(
        body.task, texts, body.version, body.return_all_scores, admission
    )
    try:
        result = await unless_disconnected(request, work)
    finally:  # whatever its outcome (404 for a version, 503, 504, ...), for a task that exists
        if services.registry.knows(body.task):
            state.metrics.count_task(body.task)
    answer = ClassifyResponse(
        task=result.task,
        version=result.version,
        predictions=[
            PredictionOut(label=p.label, score=p.score, scores=p.scores) for p in result.predictions
        ],
        truncated=result.truncated,
    )
    return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")
