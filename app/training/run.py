"""Wiring for the train, eval and refit-head commands: load backbones, run, deliver the result."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from app import prompt_file
from app.atomic import write_atomic
from app.backbone import Backbone, load_backbone, resolve_source
from app.engine import Engine
from app.errors import RemoteError, TaskNotFound
from app.task import TaskSpec
from app.training import data
from app.training.config import TrainConfig
from app.training.deliver import check_destinations, deliver_or_keep
from app.training.evaluate import predict_local, predict_remote, served_tokenizer
from app.training.scores import Scores, score
from app.training.trainer import TrainResult, train

log = logging.getLogger(__name__)


def train_task(args: argparse.Namespace, config: TrainConfig, command: str) -> int:
    # Same seed, same machine, same result: also on CUDA (cuBLAS needs a fixed workspace).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    train_data = data.load(args.train)
    eval_data = data.load(args.eval) if args.eval else None
    sources = {"train": args.train, "eval": args.eval, "init-prompt": config.init_prompt}
    check_destinations(args, sources, args.prompts_dir)  # before minutes of training, not after
    hashes = _hashes(sources)  # as read now: --out may not overwrite them, but others could
    # Two loads of one backbone: fp32 eager for gradients, and the serving configuration for
    # evaluation, so the scores reported are what the server will answer.
    trainer_backbone = load_backbone(args.backbone, args.device, precision="fp32", trace="off")
    engine = Engine(load_backbone(args.backbone, args.device))
    _check_classifiable([train_data, eval_data], engine.backbone.tokenizer)
    evaluate = (lambda spec: predict_local(engine, spec, eval_data.texts)) if eval_data else None
    progress = None if args.no_progress else _progress_bar(config.epochs * len(train_data))

    def finished(result: TrainResult) -> bytes:
        datasets = (train_data, eval_data)
        spec = _with_record(result, config, args, command, datasets, hashes, trainer_backbone)
        return prompt_file.encode(spec, trainer_backbone.identity)

    def checkpoint(result: TrainResult) -> None:
        # --out always holds the best epoch so far: an interrupted run still leaves a task.
        if not args.out:
            return
        try:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(Path(args.out), finished(result))
        except OSError as exc:  # training goes on; the end's delivery keeps the task if it fails
            log.warning("could not write the checkpoint to --out %s: %s", args.out, exc)

    try:
        result = train(
            config,
            trainer_backbone,
            train_data,
            eval_data,
            evaluate,
            on_batch=(lambda loss, n: _advance(progress, loss, n)) if progress else None,
            on_best=checkpoint,
        )
    finally:
        if progress is not None:
            progress.close()
    _summarise(result, len(train_data))
    deliver_or_keep(args, finished(result), trainer_backbone, register_in=args.prompts_dir)
    return 0


def _summarise(result: TrainResult, examples: int) -> None:
    history = result.history
    seconds = sum(epoch.seconds for epoch in history)
    best = result.best_scores
    log.info(
        "trained: %d epoch(s) of %d examples in %.1f s, %.0f examples/s; best epoch %d%s",
        len(history), examples, seconds, examples * len(history) / max(seconds, 1e-9),
        result.best_epoch, "" if best is None else f", eval accuracy {best.accuracy:.4f}",
    )  # fmt: skip


def predict_for_eval(
    args: argparse.Namespace, dataset: data.Dataset
) -> tuple[tuple[str, ...], list[str], int]:
    """(the task's labels, predicted labels, version used), locally or through --url."""
    if args.version is not None and args.version < 1:
        raise ValueError(f"--version must be 1 or more, not {args.version}")
    if args.url:
        import httpx

        if args.file:
            raise ValueError("--file scores a local file and --url a server's task: give one")
        from transformers import AutoTokenizer

        # the local backbone's tokenizer stands in for the server's (the same by default)
        _check_classifiable([dataset], AutoTokenizer.from_pretrained(resolve_source(args.backbone)))
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        try:
            response = httpx.get(
                f"{args.url.rstrip('/')}/prompts/{args.task}", headers=headers, timeout=30
            )
        except httpx.HTTPError as exc:
            raise RemoteError(f"--url {args.url}: cannot reach the server ({exc})") from exc
        if response.status_code != 200:
            raise RemoteError(f"{args.url} answered {response.status_code}: {response.text[:300]}")
        record = response.json()
        version = args.version if args.version is not None else int(record["active"])
        labels = tuple(_labels_of(record, version))
        predicted, version = predict_remote(args.url, args.task, dataset.texts, args.token, version)
        return labels, predicted, version
    backbone = load_backbone(args.backbone, args.device)
    _check_classifiable([dataset], backbone.tokenizer)
    spec, version = _read_task(args, backbone)
    return spec.labels, predict_local(Engine(backbone), spec, dataset.texts), version


def refit_task(args: argparse.Namespace, command: str) -> int:
    """`promptserve refit-head`: the task's prompt kept, its head fitted again on --data."""
    from app.training.refit import refit_head

    dataset = data.load(args.data)
    eval_data = data.load(args.eval) if args.eval else None
    sources = {"data": args.data, "eval": args.eval, "file": args.file}
    check_destinations(args, sources, args.prompts_dir if args.register else None)
    hashes = _hashes(sources)
    backbone = load_backbone(args.backbone, args.device)
    _check_classifiable([dataset, eval_data], backbone.tokenizer)
    engine = Engine(backbone)
    spec, version = _read_task(args, backbone)
    if eval_data is not None:
        data.check_known_labels(eval_data, spec.labels)  # before the minutes of fitting
    refit = refit_head(engine, spec, dataset, args.folds, args.seed)
    record = {
        "command": command,
        "of_version": version,
        "data_file": str(dataset.path),
        "data_sha256": hashes["data"],
        **refit.record(args.folds, args.seed),
    }
    log.info(
        "head refit: L2 %.0e, %d-fold accuracy %.4f over %d rows (%.1f s)",
        refit.l2, args.folds, refit.cv_accuracy, refit.examples, refit.seconds,
    )  # fmt: skip
    # The prompt's training record stays; the held-out scores are this head's, or none.
    metrics = {k: v for k, v in spec.metrics.items() if k != "eval"}
    metrics["head_refit"] = record
    if eval_data is not None:
        predicted = predict_local(engine, refit.spec, eval_data.texts)
        scores = score(eval_data.labels, predicted, spec.labels)
        metrics["eval"] = _eval_record(eval_data.path, hashes["eval"], scores)
        log.info("eval on %s: accuracy %.4f", eval_data.path, scores.accuracy)
    new_spec = replace(refit.spec, metrics=metrics)
    payload = prompt_file.encode(new_spec, backbone.identity)
    deliver_or_keep(args, payload, backbone, args.prompts_dir if args.register else None)
    return 0


def _check_classifiable(
    datasets: list[data.Dataset | None], tokenizer: PreTrainedTokenizerBase
) -> None:
    """Rows the server would refuse (nothing to classify) are refused here too, by row."""
    for dataset in datasets:
        if dataset is not None:
            data.check_classifiable(dataset, served_tokenizer(tokenizer))


def _hashes(sources: dict[str, Path | str | None]) -> dict[str, str | None]:
    """Each input file's sha256 (by flag), read once, before any output is written."""
    return {flag: data.sha256(Path(path)) if path else None for flag, path in sources.items()}


def _eval_record(path: Path, sha256: str | None, scores: Scores) -> dict[str, Any]:
    return {
        "file": str(path),
        "sha256": sha256,
        "examples": scores.examples,
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
    }


def _read_task(args: argparse.Namespace, backbone: Backbone) -> tuple[TaskSpec, int]:
    """The task named by --file, or by --task (and --version) in --prompts-dir."""
    from app.registry import Registry

    if args.file:
        spec, metadata = prompt_file.decode(Path(args.file).read_bytes(), backbone.identity)
        return spec, int(metadata.get("version", 0))
    if not Path(args.prompts_dir).is_dir():  # reading only: never create an empty registry
        raise TaskNotFound(
            f"task {args.task!r}: no registry at {args.prompts_dir} (give --prompts-dir or --file)"
        )
    registry = Registry(args.prompts_dir, backbone.identity, backbone.max_prompt_len)
    registry.load()
    if not registry.knows(args.task):
        raise TaskNotFound(f"task {args.task!r} not found in {args.prompts_dir}")
    info = registry.resolve(args.task, args.version)
    return registry.read_spec(args.task, info.version), info.version


def _labels_of(record: dict[str, Any], version: int) -> list[str]:
    for entry in record.get("versions", []):
        if int(entry.get("version", -1)) == version:
            return list(entry["labels"])
    raise RemoteError(f"the server lists no version {version} of task {record.get('task')!r}")


def _with_record(
    result: TrainResult,
    config: TrainConfig,
    args: argparse.Namespace,
    command: str,
    datasets: tuple[data.Dataset, data.Dataset | None],
    hashes: dict[str, str | None],
    backbone: Backbone,
) -> TaskSpec:
    """The best epoch's task, carrying its eval scores and how it was made."""
    history, (train_data, eval_data) = result.history, datasets
    training = {
        "command": command,
        "config": asdict(config),
        "train_file": str(train_data.path),
        "train_sha256": hashes["train"],
        "train_examples": len(train_data),
        "best_epoch": result.best_epoch,  # 0: the probe warm start, never beaten
        "epochs_run": len(history),
        "seconds": round(sum(e.seconds for e in history), 1),
        "examples_per_s": round(sum(e.examples_per_s for e in history) / max(1, len(history))),
        "device": _device_name(backbone.device),
        "torch": torch.__version__,
    }
    if config.init_prompt:
        training["init_prompt_sha256"] = hashes["init-prompt"]
    metrics: dict[str, Any] = {"training": training}
    best_scores = result.best_scores
    if eval_data is not None and best_scores is not None:
        metrics["eval"] = _eval_record(eval_data.path, hashes["eval"], best_scores)
    return replace(result.spec, description=args.description, metrics=metrics)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="ex", unit_scale=True, dynamic_ncols=True, smoothing=0.05)


def _advance(progress: Any, loss: float, examples: int) -> None:
    progress.update(examples)
    progress.set_postfix(loss=f"{loss:.4f}", refresh=False)
