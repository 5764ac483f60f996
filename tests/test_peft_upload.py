"""Uploading a .zip of an HF PEFT adapter: served with PEFT's own scores; unsafe zips refused.

`PUT /prompts/{task}` tells a zip from a prompt file by its content; the zip is unpacked in
memory with bounds (entries, inflated bytes) and path checks before the registry sees anything.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from app import peft_export, peft_format, upload_zip
from app.backbone import Backbone
from app.errors import InvalidPrompt, TooLarge
from tests.helpers import MakeClient, assert_error, classify, random_spec
from tests.test_peft_format import make_peft_model, peft_logits, save_adapter

TEXTS = ["a delight from start to finish", "dull", "Is it worth seeing twice?"]
EXPECTED = peft_format.ADAPTER_FILES


def zip_of(files: dict[str, bytes], folder: str = "") -> bytes:
    """What `zip -r adapter.zip folder/` makes: the files, in `folder` when one is given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if folder:
            archive.writestr(f"{folder}/", b"")
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}" if folder else name, data)
    return buffer.getvalue()


def zip_dir(path: Path, folder: str = "my-adapter") -> bytes:
    return zip_of({p.name: p.read_bytes() for p in sorted(path.iterdir())}, folder)


def put_zip(client: TestClient, task: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.put(
        f"/prompts/{task}", files={"file": ("adapter.zip", data, "application/zip")}, data=form
    )


@pytest.fixture(scope="module")
def adapter(tiny_backbone_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    model = make_peft_model(tiny_backbone_dir, num_labels=3, prompt_len=4, seed=7)
    return model, save_adapter(model, tmp_path_factory.mktemp("adapter"))


def test_uploaded_adapter_zip_serves_peft_models_scores(
    client: TestClient, tiny_backbone: Backbone, adapter: tuple
) -> None:
    model, path = adapter
    r = put_zip(client, "reviews", zip_dir(path), labels='["neg", "neutral", "pos"]')
    assert r.status_code == 201, r.text
    record = r.json()
    assert (record["pooling"], record["prompt_len"]) == ("first", 4)
    assert record["labels"] == ["neg", "neutral", "pos"]
    body = classify(client, "reviews", TEXTS, return_all_scores=True).json()
    want = torch.softmax(peft_logits(model, tiny_backbone, TEXTS), dim=-1)
    for prediction, probabilities in zip(body["predictions"], want, strict=True):
        scores = torch.tensor([prediction["scores"][label] for label in record["labels"]])
        assert (scores - probabilities).abs().max() <= 1e-5
        assert prediction["label"] == record["labels"][int(probabilities.argmax())]


def test_a_zip_with_the_files_at_its_top_level_works_too(
    client: TestClient, adapter: tuple
) -> None:
    r = put_zip(client, "flat", zip_dir(adapter[1], folder=""), labels='["a", "b", "c"]')
    assert r.status_code == 201, r.text


def test_adapter_without_label_names_needs_the_labels_field(
    client: TestClient, adapter: tuple
) -> None:
    r = put_zip(client, "reviews", zip_dir(adapter[1]))
    assert_error(r, 422, "InvalidPrompt", "form field `labels`")
    assert client.get("/prompts/reviews").status_code == 404


def test_an_exported_adapter_brings_its_own_labels(
    client: TestClient, tiny_backbone: Backbone
) -> None:
    spec = random_spec(32, num_labels=2, pooling="first")
    files = peft_export.adapter_from_task(spec, tiny_backbone.identity)
    r = put_zip(client, "round-trip", zip_of(files, "exported"), description="from promptserve")
    assert r.status_code == 201, r.text
    assert r.json()["labels"] == list(spec.labels)
    assert r.json()["description"] == "from promptserve"


def test_an_adapter_for_another_backbone_is_refused(client: TestClient, adapter: tuple) -> None:
    files = peft_format.read_adapter_dir(adapter[1])
    config = json.loads(files[peft_format.CONFIG_FILE])
    other = {**files, peft_format.CONFIG_FILE: json.dumps({**config, "token_dim": 384}).encode()}
    r = put_zip(client, "t", zip_of(other), labels='["a", "b", "c"]')
    assert_error(r, 422, "InvalidPrompt", "token_dim 384")


def test_a_zip_bomb_is_refused_with_413_and_nothing_stored(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(max_upload_bytes=200_000)
    bomb = zip_of({"adapter_config.json": b"{}", "adapter_model.safetensors": bytes(5_000_000)})
    assert len(bomb) < 200_000  # the upload itself is within the limit; only inflating is not
    r = put_zip(client, "t", bomb, labels='["a", "b", "c"]')
    assert_error(r, 413, "TooLarge", "unpacks to more than")
    assert client.get("/prompts/t").status_code == 404
    assert not (tmp_path / "prompts" / "t").exists()


def test_an_unsafe_zip_is_refused_and_writes_nothing(client: TestClient, tmp_path: Path) -> None:
    evil = zip_of({"../../evil.json": b"{}", "adapter_model.safetensors": b""})
    assert_error(put_zip(client, "t", evil), 422, "InvalidPrompt", "unsafe path")
    assert not list(tmp_path.rglob("evil.json"))


# ---- the zip rules, one by one -------------------------------------------------------------


def entry(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    if mode is not None:
        info.external_attr = mode << 16
    return info


def encrypted(data: bytes) -> bytes:
    """The zip with every entry's "encrypted" flag set (zipfile cannot write encrypted zips)."""
    out = bytearray(data)
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = out.find(signature)
        while start != -1:
            out[start + flags_at] |= 0x1
            start = out.find(signature, start + 4)
    return bytes(out)


def raw_zip(*entries: tuple[zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


OK = {"adapter_config.json": b"{}", "adapter_model.safetensors": b"weights"}


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(zip_of({"/etc/adapter_config.json": b"{}"}), "unsafe path", id="absolute"),
        pytest.param(zip_of({"a/../../adapter_config.json": b"{}"}), "unsafe path", id="dotdot"),
        pytest.param(zip_of({"a\\adapter_config.json": b"{}"}), "unsafe path", id="backslash"),
        pytest.param(zip_of({"C:adapter_config.json": b"{}"}), "unsafe path", id="drive"),
        pytest.param(
            raw_zip((entry("adapter_config.json", stat.S_IFLNK | 0o777), b"/etc/passwd")),
            "symbolic link",
            id="symlink",
        ),
        pytest.param(encrypted(zip_of(OK)), "encrypted", id="encrypted"),
        pytest.param(
            zip_of({f"f{i}.json": b"" for i in range(upload_zip.MAX_MEMBERS + 1)}),
            "at most",
            id="too-many-entries",
        ),
        pytest.param(zip_of({**OK, "optimizer.json": b"{}"}), "unexpected file", id="unexpected"),
        pytest.param(zip_of({"adapter_model.bin": b"\x80"}), "pickled weights", id="pickle"),
        pytest.param(zip_of({"a/b/adapter_config.json": b"{}"}), "one folder", id="too-deep"),
        pytest.param(
            zip_of({"a/adapter_config.json": b"{}", "b/adapter_model.safetensors": b""}),
            "one folder",
            id="two-folders",
        ),
        pytest.param(b"PK\x03\x04 but then garbage" * 3, "not a valid zip", id="garbage"),
    ],
)
def test_unsafe_or_unexpected_zips_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(InvalidPrompt, match=says):
        upload_zip.unpack(data, EXPECTED, 1 << 20)


def test_a_torch_checkpoint_is_named_as_such() -> None:
    buffer = io.BytesIO()
    torch.save({"prompt": torch.zeros(2, 32)}, buffer)
    assert upload_zip.is_zip(buffer.getvalue())  # torch.save writes a zip around its pickle
    with pytest.raises(InvalidPrompt, match=r"PyTorch checkpoint \(torch.save\), a pickle"):
        upload_zip.unpack(buffer.getvalue(), EXPECTED, 1 << 20)


def test_a_corrupted_member_is_refused() -> None:
    data = bytearray(zip_of({"adapter_config.json": b'{"peft_type": "PROMPT_TUNING"}' * 20}))
    start = data.index(b"adapter_config.json") + len("adapter_config.json")
    data[start + 5] ^= 0xFF  # a byte of the compressed stream: the CRC no longer matches
    with pytest.raises(InvalidPrompt, match="cannot be read"):
        upload_zip.unpack(bytes(data), EXPECTED, 1 << 20)


def test_inflated_size_is_capped_across_members() -> None:
    data = zip_of({"adapter_config.json": bytes(600), "adapter_model.safetensors": bytes(600)})
    assert upload_zip.unpack(data, EXPECTED, 1200).keys() == OK.keys()
    with pytest.raises(TooLarge, match="more than the limit of 1199 bytes"):
        upload_zip.unpack(data, EXPECTED, 1199)


def test_archiver_junk_is_skipped_and_folders_are_flattened() -> None:
    """What macOS's Finder makes of a folder: resource forks and .DS_Store next to the files."""
    files = {f"my-adapter/{name}": data for name, data in OK.items()}
    junk = {"my-adapter/.DS_Store": b"junk", "__MACOSX/my-adapter/._adapter_config.json": b"fork"}
    assert upload_zip.unpack(zip_of({**files, **junk}), EXPECTED, 1 << 20) == OK


def test_zips_are_told_by_content_not_by_name() -> None:
    assert upload_zip.is_zip(zip_of(OK))
    assert not upload_zip.is_zip(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
