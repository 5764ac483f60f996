"""Liveness, readiness, server info and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import __version__
from app.api.deps import MetricsDep, ServicesDep
from app.api.errors import NOT_READY
from app.api.schemas import ServerInfo, Status
from app.errors import NotReady

router = APIRouter(tags=["health"])


# GET and HEAD: load balancers and orchestrators probe with either (HEAD is not in the spec).
@router.get("/healthz", response_model=Status)
@router.head("/healthz", include_in_schema=False)
async def healthz() -> Status:
    """The process is alive (it may still be loading)."""
    return Status(status="alive")


@router.get("/readyz", response_model=Status, responses=NOT_READY)
@router.head("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Status:
    """200 once the backbone is loaded and warmed up; 503 before."""
    if not request.app.state.ready:
        raise NotReady(request.app.state.not_ready_reason)
    return Status(status="ready")


@router.get("/info", response_model=ServerInfo, responses=NOT_READY)
async def info(services: ServicesDep) -> ServerInfo:
    backbone = services.backbone
    return ServerInfo(
        backbone=backbone.identity.name,
        backbone_fingerprint=backbone.identity.fingerprint,
        hidden_size=backbone.hidden_size,
        max_positions=backbone.max_positions,
        device=str(backbone.device),
        precision=backbone.precision,
        version=__version__,
    )


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
