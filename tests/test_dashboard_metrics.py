"""The Grafana dashboard queries only metrics, labels and label values the service exports.

A renamed metric or label would leave a dashboard panel silently empty; these tests scrape the real
app's /metrics after real traffic and check every PromQL expression of the dashboard against it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.app import create_app
from app.backbone import Backbone
from app.settings import Settings
from tests.conftest import wait_ready
from tests.helpers import classify, prompt_bytes, random_spec, upload

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARD = DEPLOY / "dashboards" / "promptserve.json"
DATASOURCES = DEPLOY / "provisioning" / "datasources" / "prometheus.yml"

METRIC_NAME = re.compile(r"\bpromptserve_[a-z0-9_]+\b")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
# The families the issue asks the dashboard to show.
REQUIRED_FAMILIES = {
    "promptserve_requests_total",
    "promptserve_request_latency_seconds_bucket",
    "promptserve_queue_depth",
    "promptserve_queue_wait_seconds_bucket",
    "promptserve_batch_rows_sum",
    "promptserve_batch_tokens_sum",
    "promptserve_padding_ratio_sum",
    "promptserve_forward_seconds_bucket",
    "promptserve_prompt_cache_hits_total",
    "promptserve_prompt_cache_misses_total",
    "promptserve_prompt_cache_evictions_total",
    "promptserve_task_requests_total",
}

Exported = dict[str, list[dict[str, str]]]  # sample name -> the label sets it is exported with


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # panels folded into a row


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    return [expr for _, expr in _targets()]


def _targets() -> list[tuple[str, str]]:
    """(panel title and query id, PromQL) of every query of the dashboard."""
    return [
        (f"{panel['title']}:{target.get('refId', '')}", target["expr"])
        for panel in _panels(dashboard()["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


QUERIES = [pytest.param(expr, id=name) for name, expr in _targets()]


@pytest.fixture(scope="module")
def exported(tiny_backbone: Backbone, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The real app's /metrics after an upload, classify traffic (a cache miss, hits) and a 404."""
    settings = Settings(prompts_dir=tmp_path_factory.mktemp("prompts"))  # type: ignore[call-arg]
    with TestClient(create_app(settings, backbone=tiny_backbone)) as client:
        wait_ready(client)
        assert upload(client, "sentiment", prompt_bytes(random_spec(32))).status_code == 201
        for text in ("a delight", "dull and long", "fine"):
            assert classify(client, "sentiment", text).status_code == 200
        assert classify(client, "no-such-task", "x").status_code == 404
        text = client.get("/metrics").text
    samples: Exported = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


@pytest.mark.parametrize("expr", QUERIES)
def test_dashboard_queries_only_exported_metrics(expr: str, exported: Exported) -> None:
    names = METRIC_NAME.findall(expr)
    assert names, f"the query names no promptserve metric: {expr}"
    missing = sorted(set(names) - set(exported))
    assert not missing, f"{expr!r} queries {missing}, which /metrics does not export"


@pytest.mark.parametrize("expr", QUERIES)
def test_dashboard_labels_and_values_exist(expr: str, exported: Exported) -> None:
    label_sets = [labels for name in METRIC_NAME.findall(expr) for labels in exported.get(name, [])]
    known = {label for labels in label_sets for label in labels}
    grouped = {
        label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label
    }
    matchers = [m for selector in SELECTOR.findall(expr) for m in MATCHER.findall(selector)]
    unknown = sorted((grouped | {label for label, _, _ in matchers}) - known)
    assert not unknown, f"{expr!r} uses label(s) {unknown}; the metric has {sorted(known)}"
    for label, op, value in matchers:
        if op == "=":
            values = {labels.get(label) for labels in label_sets}
            assert value in values, f"{expr!r}: no series has {label}={value!r}; seen {values}"


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    queried = {name for expr in dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    assert queried >= REQUIRED_FAMILIES, sorted(REQUIRED_FAMILIES - queried)


def test_dashboard_uses_the_provisioned_datasource() -> None:
    import yaml

    provisioned = {
        source["uid"] for source in yaml.safe_load(DATASOURCES.read_text())["datasources"]
    }
    for panel in _panels(dashboard()["panels"]):
        for holder in [panel, *panel.get("targets", [])]:
            uid = holder.get("datasource", {}).get("uid")
            assert uid in provisioned, f"panel {panel['title']!r} uses datasource {uid!r}"
