"""schemathesis against the live OpenAPI spec of a real server, every route, with the tokens and
without: never a 5xx, and every answer conforms to the status codes and schemas it declares.

A quick run (tens of cases per route); bench/reliability/fuzz_long.sh runs thousands.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from app.api.app import create_app
from app.backbone import Backbone, resolve_source
from app.settings import DEFAULT_BACKBONE, Settings
from tests.helpers import prompt_bytes, random_spec
from tests.live_server import live_server

ADMIN, READER = "fuzz-admin-token", "fuzz-classify-token"
EXAMPLES = 25


@pytest.fixture(scope="module")
def live(tiny_backbone: Backbone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    prompts = tmp_path_factory.mktemp("fuzz") / "prompts"
    settings_ = Settings(prompts_dir=prompts, admin_token=ADMIN, classify_token=READER)  # type: ignore[arg-type, call-arg]
    with live_server(create_app(settings_, backbone=tiny_backbone)) as base:
        data = prompt_bytes(random_spec(32, num_labels=2))
        r = httpx.put(
            f"{base}/prompts/sentiment", files={"file": ("p", data)}, headers=bearer(ADMIN)
        )
        assert r.status_code == 201, r.text  # the task the spec's examples name
        yield base
        statuses = served_statuses(base)
        print(f"\nschemathesis quick run: {sum(statuses.values()):.0f} requests, {statuses}")
        assert not [s for s in statuses if s.startswith("5")], f"the server answered {statuses}"


def served_statuses(base: str) -> dict[str, float]:
    """Requests by status, as the server itself counted them (every route)."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            if sample.name == "promptserve_requests_total":
                status = sample.labels["status"]
                counts[status] = counts.get(status, 0) + sample.value
    return counts


@pytest.fixture(scope="module")
def api_schema(live: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(case: schemathesis.Case) -> dict[str, str]:
    return bearer(READER if case.operation.path == "/classify" else ADMIN)


def excluded(case: schemathesis.Case) -> list:
    """An upload's file must be a real prompt file, and a text must hold something to classify,
    which no schema can say: random bytes that fit the spec, and texts the tokenizer reduces to
    nothing (blanks, control and zero-width characters, lone accents), are rightly refused
    (422, declared), so 'valid data accepted' cannot apply to them."""
    refused = case.method.upper() == "PUT" or has_a_text_without_tokens(case.body)
    return [positive_data_acceptance] if refused else []


def has_a_text_without_tokens(body: object) -> bool:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    texts = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
    return any(isinstance(text, str) and not tokenizer().tokenize(text) for text in texts)


@functools.cache
def tokenizer() -> PreTrainedTokenizerBase:
    """The tiny backbone's, which is the default backbone's (tests/tiny_backbone.py)."""
    return AutoTokenizer.from_pretrained(resolve_source(DEFAULT_BACKBONE))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_conforms_with_the_tokens(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=token_for(case), excluded_checks=excluded(case))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_conforms_without_tokens(case: schemathesis.Case) -> None:
    response = case.call_and_validate(excluded_checks=excluded(case))
    guarded = case.operation.path == "/classify" or case.method.upper() in {"PUT", "POST", "DELETE"}
    if guarded and response.status_code < 400:
        raise AssertionError(f"{case.method} {case.path} succeeded without a token")
