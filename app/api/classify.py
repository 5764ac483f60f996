"""POST /classify."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.api.admission import STATE_KEY
from app.api.auth import require_classify
from app.api.deps import MetricsDep, ServicesDep, SettingsDep
from app.api.disconnect import unless_disconnected
from app.api.errors import ERROR_RESPONSES
from app.api.schemas import ClassifyRequest, ClassifyResponse, PredictionOut
from app.errors import TooLarge

router = APIRouter(tags=["classify"])


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
    dependencies=[Depends(require_classify)],
)
async def classify(
    body: ClassifyRequest,
    request: Request,
    services: ServicesDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> ClassifyResponse:
    texts = body.texts()
    if len(texts) > settings.max_client_batch:
        raise TooLarge(f"{len(texts)} inputs; at most {settings.max_client_batch} per request")
    admission = getattr(request.state, STATE_KEY, None)  # held for us at the door
    work = services.classify.classify(
        body.task, texts, body.version, body.return_all_scores, admission
    )
    result = await unless_disconnected(request, work)
    metrics.count_task(result.task)
    predictions = [
        PredictionOut(label=p.label, score=p.score, scores=p.scores) for p in result.predictions
    ]
    return ClassifyResponse(
        task=result.task,
        version=result.version,
        predictions=predictions,
        truncated=result.truncated,
    )
