"""The batching proofs: mixed-task batches give each input exactly its own logits."""

from __future__ import annotations

import random

import pytest
import torch

from app.backbone import Backbone
from app.engine import DeviceTask, Engine, Row
from app.task import TaskSpec
from tests.helpers import random_spec

TOLERANCE = 1e-4  # fp32, as the acceptance bar says

TEXTS = [
    "hi",
    "the film was a delight from start to finish",
    "an utterly forgettable, overlong and badly acted mess of a movie that nobody needed",
    "what is the capital of france ?",
    "free entry in 2 a wkly comp to win fa cup final tkts 21st may 2005",
    "x " * 50,
]


def reference_logits(backbone: Backbone, spec: TaskSpec, text: str) -> torch.Tensor:
    """The formula written out for one input: h = backbone([P; E(x)]), logits = W pool(h) + b."""
    model = backbone.model
    ids = torch.tensor(backbone.tokenizer(text)["input_ids"])
    with torch.inference_mode():
        token_embeds = model.get_input_embeddings()(ids)  # [n, d]
        inputs = torch.cat([spec.prompt, token_embeds])[None]  # [1, m + n, d]
        out = model(
            inputs_embeds=inputs, attention_mask=torch.ones(inputs.shape[:2], dtype=torch.long)
        )
        hidden = out.last_hidden_state[0]  # [m + n, d]
        m = spec.prompt_len
        pooler = getattr(out, "pooler_output", None)  # position 0's state where there is none
        first = hidden[0] if pooler is None else pooler[0]
        if spec.pooler_weight is not None and spec.pooler_bias is not None:  # the task's own
            first = torch.tanh(spec.pooler_weight @ hidden[0] + spec.pooler_bias)
        pooled = reference_pool(spec.pooling, hidden, m, first)
        return spec.head_weight @ pooled + spec.head_bias


def reference_pool(pooling: str, hidden: torch.Tensor, m: int, first: torch.Tensor) -> torch.Tensor:
    """One input's pooled output [d] from its hidden states [m + n, d], written out per rule."""
    mean = hidden[m:].mean(0)
    rules = {"mean": mean, "mean-normalized": mean / mean.norm(), "cls": hidden[m], "first": first}
    return rules[pooling]


@pytest.fixture(scope="module")
def engine(tiny_backbone: Backbone) -> Engine:
    return Engine(tiny_backbone)


def make_tasks(
    engine: Engine, count: int, seed: int = 0, head_scale: float = 1.0
) -> tuple[list[TaskSpec], list[DeviceTask]]:
    """Every third task pools `first`, every sixth has its own pooler (a RoBERTa-style head); the
    others pool `cls`, `mean` and `mean-normalized`. Heads are N(0, 1) times `head_scale`."""
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    specs = [
        random_spec(
            engine.backbone.hidden_size,
            prompt_len=rng.choice([1, 3, 8, 20, 40]),
            num_labels=rng.choice([2, 3, 7]),
            pooling=("mean", "cls", "first", "mean-normalized", "cls", "first")[i % 6],
            seed=seed + i,
        )
        for i in range(count)
    ]
    hidden = engine.backbone.hidden_size
    for i in range(5, count, 6):
        pooler = {
            "pooler_weight": torch.randn(hidden, hidden, generator=g) * 0.3,
            "pooler_bias": torch.randn(hidden, generator=g),
        }
        specs[i] = TaskSpec(**{**specs[i].__dict__, **pooler})
    specs = [TaskSpec(**{**s.__dict__, "head_weight": s.head_weight * head_scale}) for s in specs]
    return specs, [engine.to_device(spec, f"task{i}", 1) for i, spec in enumerate(specs)]


def tokenize(engine: Engine, text: str) -> list[int]:
    return engine.backbone.tokenizer(text)["input_ids"]


def test_mixed_batch_equals_each_input_alone(engine: Engine) -> None:
    specs, tasks = make_tasks(engine, 9)
    rng = random.Random(1)
    rows = [Row(tokenize(engine, rng.choice(TEXTS)), rng.choice(tasks)) for _ in range(40)]
    batched = engine.forward(rows)
    for row, logits in zip(rows, batched, strict=True):
        alone = engine.forward([row])[0]
        assert logits.shape == (len(row.task.labels),)
        assert (logits - alone).abs().max().item() <= TOLERANCE


def test_result_does_not_depend_on_batch_order_or_company(engine: Engine) -> None:
    _, tasks = make_tasks(engine, 6, seed=10)
    rows = [Row(tokenize(engine, text), task) for text in TEXTS for task in tasks]
    baseline = engine.forward(rows)
    order = list(range(len(rows)))
    random.Random(2).shuffle(order)
    shuffled = engine.forward([rows[i] for i in order])
    for position, i in enumerate(order):
        assert (shuffled[position] - baseline[i]).abs().max().item() <= TOLERANCE


def test_engine_matches_reference_formula(engine: Engine) -> None:
    specs, tasks = make_tasks(engine, 6, seed=20)
    rows, expected = [], []
    for spec, task in zip(specs, tasks, strict=True):
        for text in TEXTS[:4]:
            rows.append(Row(tokenize(engine, text), task))
            expected.append(reference_logits(engine.backbone, spec, text))
    for got, want in zip(engine.forward(rows), expected, strict=True):
        assert (got - want).abs().max().item() <= TOLERANCE


def test_changing_one_prompt_changes_no_other_task(engine: Engine) -> None:
    specs, tasks = make_tasks(engine, 5, seed=30)
    rows = [Row(tokenize(engine, text), task) for text in TEXTS for task in tasks]
    before = engine.forward(rows)
    # A random change: a constant shift would vanish in the embedding LayerNorm.
    nudge = torch.randn(specs[2].prompt.shape, generator=torch.Generator().manual_seed(3))
    changed = TaskSpec(
        specs[2].prompt + nudge,
        specs[2].head_weight,
        specs[2].head_bias,
        specs[2].labels,
        specs[2].pooling,
    )
    new_task = engine.to_device(changed, "task2", 2)
    after = engine.forward(
        [Row(r.input_ids, new_task if r.task is tasks[2] else r.task) for r in rows]
    )
    for row, old, new in zip(rows, before, after, strict=True):
        if row.task is tasks[2]:
            assert (old - new).abs().max().item() > 1e-3, "the edited task must change"
        else:
            assert (old - new).abs().max().item() <= TOLERANCE


def test_heads_of_different_sizes_share_a_batch(engine: Engine) -> None:
    _, tasks = make_tasks(engine, 3, seed=40)
    rows = [Row(tokenize(engine, "some text"), task) for task in tasks]
    assert [len(x) for x in engine.forward(rows)] == [len(t.labels) for t in tasks]


def test_prompt_and_text_fill_the_position_limit(engine: Engine) -> None:
    """A row exactly as long as the backbone allows runs, and agrees with its reference."""
    spec = random_spec(engine.backbone.hidden_size, prompt_len=28, pooling="mean", seed=50)
    task = engine.to_device(spec, "long", 1)
    max_tokens = engine.max_text_tokens(task.prompt_len)
    ids = engine.backbone.tokenizer("word " * 500, truncation=True, max_length=max_tokens)[
        "input_ids"
    ]
    assert len(ids) + task.prompt_len == engine.backbone.max_positions
    short = Row(tokenize(engine, "short"), task)
    long_logits, short_logits = engine.forward([Row(ids, task), short])
    assert (short_logits - engine.forward([short])[0]).abs().max().item() <= TOLERANCE
    assert torch.isfinite(long_logits).all()


def test_mean_normalized_pools_the_mean_at_unit_length(engine: Engine) -> None:
    """The same prompt pooled `mean` and `mean-normalized`: one direction, the second of length 1,
    whatever the text's length."""
    plain = random_spec(engine.backbone.hidden_size, prompt_len=4, seed=3)
    unit = TaskSpec(**{**plain.__dict__, "pooling": "mean-normalized"})
    tasks = [engine.to_device(spec, name, 1) for spec, name in ((plain, "a"), (unit, "b"))]
    ids = [tokenize(engine, text) for text in TEXTS]
    rows = [Row(i, task) for task in tasks for i in ids]  # both tasks in one batch
    pooled = engine.pooled(rows)
    means, units = pooled[: len(ids)], pooled[len(ids) :]
    assert torch.allclose(units.norm(dim=-1), torch.ones(len(ids)), atol=1e-5)
    assert torch.allclose(units, means / means.norm(dim=-1, keepdim=True), atol=1e-5)
    assert means.norm(dim=-1).std() > 0.01  # the plain means' lengths do differ
