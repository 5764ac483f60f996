"""Before a version is stored, one forward of it on a probe text: it must give finite scores.

A prompt file can be well formed and still useless: values near the dtype's limit (3e38 in a
prompt, 1e38 in a head) pass every static check yet overflow inside the backbone, and the task
would then answer every request with an error until someone rolled it back. One short forward,
off the model workers (the engine is safe to call from any thread), refuses such a file at
upload with a message that says why. Heads (and task poolers) are also bounded statically, since
a probe's features can be small enough to hide them. Inputs very unlike the probe can still
overflow the backbone: classify checks its own scores too (app/service.py)."""

from __future__ import annotations

import torch

from app.backbone import Backbone
from app.engine import Engine, Row
from app.errors import InvalidPrompt
from app.task import TaskSpec
from app.tokenize import TextTokenizer

FEATURE_BOUND = 1e4  # far above any pooled feature of a LayerNorm'ed encoder (they are ~1 to 10)
PROBE_TEXT = "A short probe sentence, to check that a new task computes finite scores."


class ComputesCheck:
    """Callable on a TaskSpec; raises InvalidPrompt when the probe's scores are not finite."""

    def __init__(self, engine: Engine, tokenizer: TextTokenizer) -> None:
        """Tokenizes the probe now, on the caller's thread: the tokenizer is not re-entrant."""
        self.engine = engine
        self.probe_ids = tokenizer([PROBE_TEXT], max_tokens=32)[0].input_ids

    def __call__(self, spec: TaskSpec) -> None:
        _check_linear("head", spec.head_weight, spec.head_bias)
        if spec.pooler_weight is not None and spec.pooler_bias is not None:
            _check_linear("pooler", spec.pooler_weight, spec.pooler_bias)
        task = self.engine.to_device(spec, "upload-check", 0)
        room = self.engine.max_text_tokens(task.prompt_len)  # cut as the tokenizer would
        ids = self.probe_ids
        if len(ids) > room:  # keep the closing special token, as truncation does
            ids = [*ids[: room - 1], ids[-1]] if room > 1 else ids[:room]
        logits = self.engine.forward([Row(ids, task)])[0]
        if not bool(torch.isfinite(logits).all()):
            raise InvalidPrompt(
                "the prompt's or head's values overflow the backbone "
                f"({self.engine.backbone.precision}): a probe text gives non-finite scores; "
                "upload a version with smaller values"
            )


def _check_linear(name: str, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """A layer whose output overflows fp32 for some input, whichever the probe: refused unless
    every row stays finite for all features up to FEATURE_BOUND in size."""
    worst = weight.double().abs().sum(dim=1) * FEATURE_BOUND + bias.double().abs()
    if bool((worst > torch.finfo(torch.float32).max).any()):
        raise InvalidPrompt(
            f"the {name}'s values are so large that its outputs overflow float32 for ordinary "
            "inputs; upload a version with smaller values"
        )


def computes_check(backbone: Backbone) -> ComputesCheck:
    """The upload route's check, for a command that stores tasks itself (`import-peft`), so that
    it refuses what `PUT /prompts/{task}` would."""
    return ComputesCheck(Engine(backbone), TextTokenizer(backbone.tokenizer, len(PROBE_TEXT)))
