"""What fuzzing found, pinned down: the spec and the server agree on what a valid request is."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import assert_error, classify


@pytest.mark.parametrize(
    ("field", "value"),
    [("return_all_scores", 0), ("return_all_scores", "true"), ("version", "1"), ("version", True)],
)
def test_values_the_spec_refuses_are_refused_not_coerced(
    served: TestClient, field: str, value: object
) -> None:
    """Regression: pydantic's lax mode took 0 for false and "1" for 1, against the spec."""
    assert_error(classify(served, "t", "x", **{field: value}), 422, "InvalidRequest", field)


def test_an_integral_float_is_a_valid_version_as_json_schema_says(served: TestClient) -> None:
    assert classify(served, "t", "x", version=1.0).json()["version"] == 1
    assert served.post("/prompts/t/activate", json={"version": 1.0}).status_code == 200


def test_a_wrong_method_names_every_method_the_path_allows(served: TestClient) -> None:
    """Regression: 405 on /prompts/{task} said `Allow: PUT` though GET and DELETE work too."""
    r = served.patch("/prompts/t")
    assert_error(r, 405, "MethodNotAllowed")
    assert r.headers["allow"] == "DELETE, GET, PUT"
