"""Every error has one JSON shape and the right status (no-500 fuzzing: test_api_no_500.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from app import prompt_file
from app.api.app import create_app
from app.api.body_limit import UPLOAD_OVERHEAD
from app.settings import Settings
from tests.gated_engine import Gate, full_queue
from tests.helpers import (
    MakeClient,
    assert_error,
    bad_prompt_files,
    classify,
    identity,
    prompt_bytes,
    random_spec,
    upload,
)

JSON = {"content-type": "application/json"}


def chunked(data: bytes, size: int = 4096) -> Iterator[bytes]:
    """A body without Content-Length: httpx sends a generator with Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


# ---- not found -------------------------------------------------------------------------------
def test_unknown_task_is_404(served: TestClient) -> None:
    assert_error(classify(served, "nope", "x"), 404, "TaskNotFound", "nope")
    assert_error(served.get("/prompts/nope"), 404, "TaskNotFound", "nope")


def test_unknown_version_is_404(served: TestClient) -> None:
    assert_error(classify(served, "t", "x", version=2), 404, "VersionNotFound", "version 2")
    assert_error(served.delete("/prompts/t/versions/9"), 404, "VersionNotFound")


def test_unknown_route_and_wrong_method_use_the_error_shape(served: TestClient) -> None:
    assert_error(served.get("/nowhere"), 404, "NotFound")
    assert_error(served.get("/classify"), 405, "MethodNotAllowed")


# ---- malformed requests ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"task": "t", "inputs": ["x"', "json"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b'"just a string"', "body"),
        (b'{"inputs": ["x"]}', "task"),
        (b'{"task": "t"}', "inputs"),
        (b'{"task": 5, "inputs": ["x"]}', "task"),
        (b'{"task": "t", "inputs": [1, 2]}', "inputs"),
        (b'{"task": "t", "inputs": {"a": "b"}}', "inputs"),
        (b'{"task": "t", "inputs": null}', "inputs"),
        (b'{"task": "t", "inputs": ["x"], "version": "latest"}', "version"),
        (b'{"task": "t", "inputs": ["x"], "version": 0}', "version"),
        (b'{"task": "t", "inputs": ["x"], "return_all_scores": "perhaps"}', "return_all_scores"),
        (b'{"task": "t", "inputs": ["x"], "temperature": 2}', "temperature"),
        (b'{"task": "", "inputs": ["x"]}', "task"),
        (b'{"task": "t", "inputs": []}', "at least 1 item"),
        (b'{"task": "t", "inputs": ["\xff\xfe"]}', "malformed"),
    ],
    ids=[
        "bad-json",
        "empty",
        "array",
        "string",
        "no-task",
        "no-inputs",
        "task-int",
        "inputs-ints",
        "inputs-object",
        "inputs-null",
        "version-str",
        "version-0",
        "flag-str",
        "extra-field",
        "empty-task",
        "no-texts",
        "invalid-utf8",
    ],
)
def test_a_malformed_classify_body_is_422_naming_the_problem(
    served: TestClient, body: bytes, says: str
) -> None:
    r = served.post("/classify", content=body, headers=JSON)
    assert_error(r, 422, "InvalidRequest", says)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_a_classify_body_is_read_as_json_only_under_a_json_content_type(
    served: TestClient, content_type: str | None
) -> None:
    """A valid JSON body under another content type (what a browser may send cross-site without
    a preflight) is refused, as FastAPI's strict content type did before the lean route."""
    body = json.dumps({"task": "t", "inputs": ["fine"]}).encode()
    headers = {"content-type": content_type} if content_type else {}
    r = served.post("/classify", content=body, headers=headers)
    assert_error(r, 422, "InvalidRequest", "content-type application/json")
    for accepted in ("application/json; charset=utf-8", "application/vnd.api+json"):
        assert served.post("/classify", content=body, headers={"content-type": accepted}).is_success


def test_a_malformed_upload_is_422(served: TestClient) -> None:
    """Regression: bodies the framework could not parse (bad multipart, bad UTF-8) answered 400."""
    assert_error(served.put("/prompts/t", data={"labels": "[]"}), 422, "InvalidRequest", "file")
    broken_multipart = served.put(
        "/prompts/t",
        content=b"--xx\r\ngarbage",
        headers={"content-type": "multipart/form-data; boundary=xx"},
    )
    assert_error(broken_multipart, 422, "InvalidRequest")
    no_boundary = served.put(
        "/prompts/t", content=b"x", headers={"content-type": "multipart/form-data"}
    )
    assert_error(no_boundary, 422, "InvalidRequest")
    activate_two = served.post("/prompts/t/activate", json={"version": "two"})
    assert_error(activate_two, 422, "InvalidRequest", "version")
    assert_error(served.post("/prompts/t/activate", json={}), 422, "InvalidRequest", "version")
    assert_error(served.get("/prompts", params={"limit": 0}), 422, "InvalidRequest", "limit")
    assert_error(served.get("/prompts", params={"offset": -1}), 422, "InvalidRequest", "offset")


@pytest.mark.parametrize("labels", ["neg,pos", '{"a": 1}', "[1, 2, 3]", '"neg"'])
def test_labels_not_a_json_list_of_strings_are_422(served: TestClient, labels: str) -> None:
    r = upload(served, "t", prompt_bytes(random_spec(32)), labels=labels)
    assert_error(r, 422, "InvalidRequest", "labels")


@pytest.mark.parametrize("task", ["Upper", ".hidden", "%2E%2E", "a" * 65, "semi;colon", "sp%20ace"])
def test_an_upload_under_an_unsafe_task_id_is_refused(served: TestClient, task: str) -> None:
    r = upload(served, task, prompt_bytes(random_spec(32)))
    assert_error(r, 422, "InvalidTaskId", "task id")
    assert [t["task"] for t in served.get("/prompts").json()["tasks"]] == ["t"]


def test_a_task_id_with_an_encoded_slash_writes_nothing_anywhere(
    served: TestClient, tmp_path: Path
) -> None:
    for task in ("..%2Fevil", "%2E%2E%2F%2E%2E%2Fevil", "a%2Fb"):
        r = upload(served, task, prompt_bytes(random_spec(32)))
        assert r.status_code in (404, 405, 422), r.text
        assert_error(r, r.status_code)
    assert sorted(p.name for p in tmp_path.rglob("*") if "evil" in p.name or p.name == "b") == []
    assert sorted(p.name for p in (tmp_path / "prompts").iterdir()) == ["t"]


# ---- bad prompt files -------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "words"), bad_prompt_files())
def test_a_bad_prompt_file_is_422_naming_what_is_wrong(
    served: TestClient, data: bytes, words: str
) -> None:
    assert_error(upload(served, "t", data), 422, "InvalidPrompt", words)
    assert served.get("/prompts/t").json()["active"] == 1  # the registry is untouched


def test_labels_given_at_upload_must_match_the_head(served: TestClient) -> None:
    r = upload(served, "t", prompt_bytes(random_spec(32, num_labels=3)), labels='["neg", "pos"]')
    assert_error(r, 422, "InvalidPrompt", "2 labels given but the head has 3 rows")
    r = upload(served, "t", prompt_bytes(random_spec(32), labels=False), labels="[]")
    assert_error(r, 422, "InvalidPrompt", "missing labels")


def test_a_prompt_leaving_no_room_for_text_is_refused(served: TestClient) -> None:
    """Regression: on a 128-position backbone a 127-vector prompt was accepted, then every
    classify with it answered 500 (and 126 silently dropped every text)."""
    for prompt_len in (126, 127, 128):
        data = prompt_bytes(random_spec(32, prompt_len=prompt_len))
        r = upload(served, f"long{prompt_len}", data)
        assert_error(r, 422, "InvalidPrompt", "room for the text")
    r = upload(served, "long125", prompt_bytes(random_spec(32, prompt_len=125)))
    assert r.status_code == 201, r.text
    body = classify(served, "long125", ["word " * 200, "a"]).json()
    assert body["truncated"] == [True, False]


# ---- limits -----------------------------------------------------------------------------------
def test_a_prompt_whose_values_overflow_the_backbone_is_422_not_null_scores(
    served: TestClient,
) -> None:
    """Regression: a finite but huge prompt (3e38) was stored, then every classify answered
    200 with an arbitrary label and "score": null. Uploads now refuse it (test_upload_checks);
    one stored some other way is still caught when it classifies."""
    spec = random_spec(32)
    huge = replace(spec, prompt=torch.full_like(spec.prompt, 3e38))
    served.app.state.services.registry.add_version("huge", prompt_bytes(huge))  # no probe
    r = classify(served, "huge", ["one", "two"])
    assert_error(r, 422, "InvalidPrompt", "non-finite scores")
    assert classify(served, "t", "still fine").status_code == 200


def test_more_inputs_than_max_client_batch_is_413(make_client: MakeClient) -> None:
    client = make_client(max_client_batch=4)
    upload(client, "t", prompt_bytes(random_spec(32)))
    assert_error(classify(client, "t", ["x"] * 5), 413, "TooLarge", "at most 4")


def test_a_body_over_max_request_bytes_is_413(make_client: MakeClient) -> None:
    client = make_client(max_request_bytes=2000)
    upload(client, "t", prompt_bytes(random_spec(32)))
    body = json.dumps({"task": "t", "inputs": ["word " * 500]}).encode()
    declared = client.post("/classify", content=body, headers=JSON)
    assert_error(declared, 413, "TooLarge")
    streamed = client.post("/classify", content=chunked(body, 500), headers=JSON)
    assert_error(streamed, 413, "TooLarge")
    small = json.dumps({"task": "t", "inputs": ["word " * 50]}).encode()
    assert client.post("/classify", content=chunked(small, 100), headers=JSON).status_code == 200


def test_an_upload_over_max_upload_bytes_is_413_and_stores_nothing(make_client: MakeClient) -> None:
    client = make_client(max_upload_bytes=20_000)
    small = prompt_bytes(random_spec(32, prompt_len=4))
    assert upload(client, "t", small).status_code == 201
    big = prompt_bytes(random_spec(32, prompt_len=120, num_labels=60))
    assert 20_000 < len(big) < 20_000 + UPLOAD_OVERHEAD
    assert_error(upload(client, "t", big), 413, "TooLarge")  # file over the limit, body under
    huge = big * 8  # over the limit plus the form overhead: refused from Content-Length alone
    assert_error(upload(client, "t", huge), 413, "TooLarge")
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    multipart = head.encode() + huge + f"\r\n--{boundary}--\r\n".encode()
    streamed = client.put(
        "/prompts/t",
        content=chunked(multipart),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(streamed, 413, "TooLarge")
    assert [v["version"] for v in client.get("/prompts/t").json()["versions"]] == [1]


# ---- load and time ----------------------------------------------------------------------------
def test_a_full_queue_is_503_with_retry_after(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate.installed(monkeypatch)
    client = make_client(queue_limit=2, max_client_batch=2, model_workers=1, max_batch_size=1)
    upload(client, "t", prompt_bytes(random_spec(32)))
    with full_queue(client, gate, "t"):
        r = classify(client, "t", ["one"])
        assert_error(r, 503, "Overloaded", "queue full")
        assert int(r.headers["retry-after"]) >= 1
    assert classify(client, "t", ["one", "two"]).status_code == 200


def test_a_request_past_its_deadline_is_504(make_client: MakeClient) -> None:
    client = make_client(request_timeout_s=1e-6)
    upload(client, "t", prompt_bytes(random_spec(32)))
    assert_error(classify(client, "t", ["one", "two"]), 504, "DeadlineExceeded", "deadline")


def test_a_server_whose_backbone_cannot_load_answers_503_not_500(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    missing = tmp_path / "no" / "such" / "model"
    settings = Settings(prompts_dir=tmp_path / "prompts", backbone=str(missing))  # type: ignore[call-arg]
    with TestClient(create_app(settings, on_load_failure=failures.append)) as client:
        deadline = time.monotonic() + 30
        while not failures and time.monotonic() < deadline:
            time.sleep(0.01)
        assert failures, "the loader never reported its failure"
        assert client.get("/healthz").status_code == 200
        assert_error(client.get("/readyz"), 503, "NotReady", "startup failed")
        r = classify(client, "t", "x")
        assert_error(r, 503, "NotReady")
        assert r.headers["retry-after"] == "1"


def test_reusing_the_name_of_another_backbones_task_is_409_not_500(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Regression: after a backbone switch, uploading under an old task's name answered 500."""
    stranger = identity(hidden=32, name="other-bert", fingerprint="feedfacefeedface")
    old_task = tmp_path / "prompts" / "t"
    old_task.mkdir(parents=True)
    (old_task / "v1.safetensors").write_bytes(prompt_file.encode(random_spec(32), stranger))
    (old_task / "task.json").write_text('{"active": 1, "next_version": 2}')
    client = make_client()
    assert client.get("/prompts").json()["total"] == 0
    r = upload(client, "t", prompt_bytes(random_spec(32)))
    assert_error(r, 409, "Conflict", "another backbone")
    assert upload(client, "t2", prompt_bytes(random_spec(32))).status_code == 201
