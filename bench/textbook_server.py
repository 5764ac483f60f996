"""A textbook prompt-tuned classification server: each request runs alone, as a batch of one.

It is the baseline promptserve is measured against. The handler is `async def` and calls the
model directly, so forwards run one at a time, each using every torch thread. That is the
strongest batch-1 design on a small CPU. Measured within minutes on 2 vCPUs, bf16, 64
connections: this design 50-67 req/s; a `def` handler (forwards run concurrently in FastAPI's
thread pool, oversubscribing the cores) 38; a `def` handler with a lock round the forward 42.

    python bench/textbook_server.py --tasks-dir DIR --port 8001 [--precision bf16] [--device cuda]
"""

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer

from app.backbone import choose_attention, choose_device, resolve_source
from app.settings import DEFAULT_BACKBONE

logger = logging.getLogger(__name__)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass
class Task:
    prompt: torch.Tensor  # [m, hidden], model dtype
    head_weight: torch.Tensor  # [L, hidden], float32
    head_bias: torch.Tensor  # [L], float32
    labels: list[str]


class ClassifyRequest(BaseModel):
    task: str
    inputs: str


def load_task(path: Path, dtype: torch.dtype, device: torch.device) -> Task:
    with safe_open(str(path), framework="pt") as file:
        metadata = file.metadata()
        return Task(
            prompt=file.get_tensor("prompt").to(device, dtype),
            head_weight=file.get_tensor("head.weight").to(device),
            head_bias=file.get_tensor("head.bias").to(device),
            labels=json.loads(metadata["labels"]),
        )


def create_app(backbone: str, tasks_dir: Path, precision: str, device_name: str) -> FastAPI:
    dtype, device = DTYPES[precision], choose_device(device_name)
    # The same attention kernels as promptserve picks on this device, so only batching differs.
    attention = choose_attention("auto", device)
    source = resolve_source(backbone)
    model = AutoModel.from_pretrained(source, attn_implementation=attention)
    model = model.eval().to(device=device, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(source)
    word_embeddings = model.get_input_embeddings()
    max_positions = model.config.max_position_embeddings
    tasks = {
        path.stem: load_task(path, dtype, device)
        for path in sorted(tasks_dir.glob("*.safetensors"))
    }
    logger.info("loaded %d tasks from %s", len(tasks), tasks_dir)
    app = FastAPI()

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/classify")
    async def classify(request: ClassifyRequest) -> dict[str, object]:
        task = tasks.get(request.task)
        if task is None:
            raise HTTPException(404, f"unknown task {request.task!r}")
        prompt_len = task.prompt.shape[0]
        token_ids = tokenizer(request.inputs)["input_ids"]
        max_tokens = max_positions - prompt_len
        truncated = len(token_ids) > max_tokens
        if truncated:  # keep the leading tokens and the closing [SEP]
            token_ids = token_ids[: max_tokens - 1] + token_ids[-1:]
        with torch.inference_mode():
            words = word_embeddings(torch.tensor([token_ids], device=device))  # [1, seq, hidden]
            embeds = torch.cat([task.prompt[None], words], dim=1)  # [1, m + seq, hidden]
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=device)  # [1, m + seq]
            hidden = model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
            pooled = hidden[0, prompt_len:].float().mean(dim=0)  # [hidden], text positions only
            scores = torch.softmax(task.head_weight @ pooled + task.head_bias, dim=-1)  # [L]
        predictions = [
            {"label": label, "score": float(score)}
            for label, score in sorted(
                zip(task.labels, scores.tolist(), strict=True), key=lambda p: -p[1]
            )
        ]
        return {
            "task": request.task,
            "version": 1,
            "predictions": predictions,
            "truncated": [truncated],
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--tasks-dir", type=Path, required=True, help="holds <task>.safetensors files"
    )
    parser.add_argument("--precision", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help="HF model id or directory")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    app = create_app(args.backbone, args.tasks_dir, args.precision, args.device)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
