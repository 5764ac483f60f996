"""The benchmark's workload: request texts, task names and the prompt files every server loads."""

import json
import random
from pathlib import Path

import torch
from safetensors.torch import save

# Everyday English words; random runs of them tokenize like ordinary sentences (mostly one
# word-piece per word), which is what matters for the forward's cost.
_WORD_TEXT = """
the a an this that these those it its they we you he she i my our your their his her film
movie story plot cast actor actress director scene script music ending character characters
performance performances moment moments audience year time way life world day people thing
things work kind part place case point fact hand eye story heart mind is was are were be
been being has had have does did do can could will would should may make makes made take
takes took see sees saw know knew think thought feel feels felt look looks looked come comes
came give gives gave find finds found tell told leave left good great bad best worst new old
long short little big small funny sad warm cold dark bright smart dull slow fast quiet loud
strange simple clever tired fresh real true charming moving boring brilliant awful lovely
painful gentle honest silly tender bleak and but or so because if when while though although
as than then yet also even still very really quite too just only almost never always often
sometimes rarely enough of in on at by for with about from into over after before under
between through without
"""
WORDS = _WORD_TEXT.split()


def generate_texts(count: int, seed: int, min_words: int = 10, max_words: int = 25) -> list[str]:
    """Sentence-like strings of `min_words`..`max_words` words, reproducible from `seed`."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        words = rng.choices(WORDS, k=rng.randint(min_words, max_words))
        texts.append(" ".join(words) + " .")
    return texts


def read_jsonl(path: Path) -> tuple[list[str], list[str]]:
    """Texts and the sorted distinct labels of a JSONL file with {"text", "label"} rows."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"no rows in {path}")
    return [row["text"] for row in rows], sorted({row["label"] for row in rows})


def task_names(count: int) -> list[str]:
    return [f"bench-{index:03d}" for index in range(count)]


def prompt_file(prompt_len: int, hidden_size: int, labels: list[str], seed: int) -> bytes:
    """A task file as the server's PUT /prompts/{task} takes it: prompt, linear head, metadata."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {
        "prompt": 0.05 * torch.randn(prompt_len, hidden_size, generator=generator),  # [m, hidden]
        "head.weight": 0.05
        * torch.randn(len(labels), hidden_size, generator=generator),  # [L, hidden]
        "head.bias": torch.zeros(len(labels)),  # [L]
    }
    metadata = {"labels": json.dumps(labels), "pooling": "mean"}
    return save(tensors, metadata=metadata)


def write_task_files(
    directory: Path, names: list[str], prompt_len: int, hidden_size: int, labels: list[str]
) -> dict[str, Path]:
    """One `<task>.safetensors` per name in `directory`; the same bytes go to every server."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for seed, name in enumerate(names):
        path = directory / f"{name}.safetensors"
        path.write_bytes(prompt_file(prompt_len, hidden_size, labels, seed))
        paths[name] = path
    return paths


def write_bodies(path: Path, tasks: list[str], texts: list[str], count: int, seed: int) -> Path:
    """`count` JSON request bodies, one a line; each picks its task and text uniformly at random."""
    rng = random.Random(seed)
    lines = [
        json.dumps({"task": rng.choice(tasks), "inputs": rng.choice(texts)}) for _ in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
