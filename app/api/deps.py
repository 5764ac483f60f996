"""Injected services for routes: `Annotated[..., Depends()]` aliases over `app.state`.

All async: FastAPI runs a sync dependency in a thread pool, a thread hop per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import State

from app.backbone import Backbone
from app.batcher import Batcher
from app.errors import NotReady
from app.metrics import Metrics
from app.prompt_admin import PromptAdmin
from app.registry import Registry
from app.service import ClassifyService
from app.settings import Settings


@dataclass
class Services:
    """Everything built once the backbone is loaded; None on app.state until then."""

    backbone: Backbone
    registry: Registry
    classify: ClassifyService
    admin: PromptAdmin
    batcher: Batcher


def ready_services(state: State) -> Services:
    """The app's services once it is ready; NotReady (503) before."""
    services: Services | None = state.services
    if services is None or not state.ready:
        raise NotReady("the backbone is still loading; retry shortly")
    return services


async def get_services(request: Request) -> Services:
    return ready_services(request.app.state)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
