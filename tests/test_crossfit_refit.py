"""recipes/crossfit_refit.py: each row is scored by the fold model that never saw it."""

from __future__ import annotations

from pathlib import Path

import torch

from app import prompt_file
from app.backbone import Backbone
from app.engine import Engine, Row
from recipes.crossfit_refit import correct_out_of_fold
from tests.helpers import random_spec

TEXTS = ["win a free prize now", "see you at lunch", "call to claim cash", "ok thanks", "hi"]


def test_each_row_counts_under_its_own_folds_model(tiny_backbone: Backbone, tmp_path: Path) -> None:
    specs = [random_spec(32, num_labels=2, seed=s) for s in (1, 2)]
    specs = [type(s)(**{**s.__dict__, "labels": ("ham", "spam")}) for s in specs]
    for k, spec in enumerate(specs):
        path = tmp_path / f"fold{k}-x.safetensors"
        path.write_bytes(prompt_file.encode(spec, tiny_backbone.identity))
    fold = [0, 1, 0, 1, 1]
    engine = Engine(tiny_backbone)
    predicted = []
    for text, k in zip(TEXTS, fold, strict=True):
        task = engine.to_device(specs[k], "t", 1)
        ids = tiny_backbone.tokenizer(text)["input_ids"]
        predicted.append(specs[k].labels[int(torch.argmax(engine.forward([Row(ids, task)])[0]))])
    records = [{"text": t, "label": p} for t, p in zip(TEXTS, predicted, strict=True)]
    assert correct_out_of_fold(tmp_path, "-x", tiny_backbone, records, fold) == len(TEXTS)
    flipped = [{**r, "label": "spam" if r["label"] == "ham" else "ham"} for r in records]
    assert correct_out_of_fold(tmp_path, "-x", tiny_backbone, flipped, fold) == 0
