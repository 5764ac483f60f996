"""Wiring for the train and eval commands: load backbones, run, and deliver the result."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from app import prompt_file
from app.atomic import write_atomic
from app.backbone import Backbone, load_backbone
from app.engine import Engine
from app.task import TaskSpec
from app.training import data
from app.training.evaluate import predict_local, predict_remote
from app.training.scores import Scores, score
from app.training.trainer import TrainConfig, TrainResult, train

log = logging.getLogger(__name__)


def train_task(args: argparse.Namespace, config: TrainConfig, command: str) -> int:
    # Same seed, same machine, same result: also on CUDA (cuBLAS needs a fixed workspace).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    check_destinations(args)  # before minutes of training, not after
    train_data = data.load(args.train)
    eval_data = data.load(args.eval) if args.eval else None
    # Two loads of one backbone: fp32 eager for gradients, and the serving configuration for
    # evaluation, so the scores reported are what the server will answer.
    trainer_backbone = load_backbone(args.backbone, args.device, precision="fp32", trace="off")
    engine = Engine(load_backbone(args.backbone, args.device))
    evaluate = (lambda spec: predict_local(engine, spec, eval_data.texts)) if eval_data else None
    progress = None if args.no_progress else _progress_bar(config.epochs * len(train_data))

    def finished(result: TrainResult) -> bytes:
        spec = _with_record(result, config, args, command, train_data, eval_data, trainer_backbone)
        return prompt_file.encode(spec, trainer_backbone.identity)

    def checkpoint(result: TrainResult) -> None:
        # --out always holds the best epoch so far: an interrupted run still leaves a task.
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(Path(args.out), finished(result))

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
    payload = finished(result)
    try:
        _deliver(args, payload, trainer_backbone, register_in=args.prompts_dir)
    except Exception:
        _keep(payload, args.task)  # a delivery that failed after training loses nothing
        raise
    return 0


def check_destinations(args: argparse.Namespace) -> None:
    """Each place the result goes can take it: a task id the registry accepts, a writable --out
    file path and --prompts-dir, a reachable --upload server."""
    from app.task import check_task_id

    if args.prompts_dir or args.upload:
        check_task_id(args.task)
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a file path")
        _check_writable(out.parent, "--out")
    if args.prompts_dir:
        _check_writable(Path(args.prompts_dir), "--prompts-dir")
    if args.upload:
        import httpx

        url = f"{args.upload.rstrip('/')}/readyz"
        try:
            ready = httpx.get(url, timeout=10)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"--upload {args.upload}: cannot reach the server ({exc})") from exc
        if ready.status_code != 200:
            raise RuntimeError(f"--upload {args.upload}: {url} answered {ready.status_code}")
        _check_token(args)


def _check_token(args: argparse.Namespace) -> None:
    """An upload with no file: the server checks the token first (401), then finds the file
    missing (422). Nothing is stored either way."""
    import httpx

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    url = f"{args.upload.rstrip('/')}/prompts/{args.task}"
    answer = httpx.put(url, headers=headers, timeout=10)
    if answer.status_code in (401, 403):
        given = "the --token given" if args.token else "no --token"
        raise RuntimeError(f"--upload {args.upload}: the server refuses {given} "
                           f"({answer.status_code}); give its admin token")  # fmt: skip


def _check_writable(folder: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{flag}: cannot create {folder}: {exc.strerror}") from exc
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{flag}: {folder} is not writable")


def _keep(payload: bytes, task: str) -> None:
    """The trained task, saved where delivery failed, so no training run is lost."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix=f"promptserve-{task[:40]}-", suffix=".safetensors")
    with os.fdopen(fd, "wb") as file:
        file.write(payload)
    log.error("delivery failed; the trained task is saved in %s", name)


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
    if args.url:
        import httpx

        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        response = httpx.get(
            f"{args.url.rstrip('/')}/prompts/{args.task}", headers=headers, timeout=30
        )
        if response.status_code != 200:
            raise RuntimeError(f"{args.url} answered {response.status_code}: {response.text[:300]}")
        record = response.json()
        version = args.version or int(record["active"])
        labels = tuple(_labels_of(record, version))
        predicted, version = predict_remote(args.url, args.task, dataset.texts, args.token, version)
        return labels, predicted, version
    backbone = load_backbone(args.backbone, args.device)
    spec, version = _read_task(args, backbone)
    return spec.labels, predict_local(Engine(backbone), spec, dataset.texts), version


def refit_task(args: argparse.Namespace, command: str) -> int:
    """`promptserve refit-head`: the task's prompt kept, its head fitted again on --data."""
    from app.training.refit import refit_head

    dataset = data.load(args.data)
    eval_data = data.load(args.eval) if args.eval else None
    backbone = load_backbone(args.backbone, args.device)
    engine = Engine(backbone)
    spec, version = _read_task(args, backbone)
    if eval_data is not None:
        data.check_known_labels(eval_data, spec.labels)  # before the minutes of fitting
    refit = refit_head(engine, spec, dataset, args.folds, args.seed)
    record = {
        "command": command,
        "of_version": version,
        "data_file": str(dataset.path),
        "data_sha256": data.sha256(dataset.path),
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
        metrics["eval"] = _eval_record(eval_data.path, scores)
        log.info("eval on %s: accuracy %.4f", eval_data.path, scores.accuracy)
    new_spec = replace(refit.spec, metrics=metrics)
    payload = prompt_file.encode(new_spec, backbone.identity)
    _deliver(args, payload, backbone, register_in=args.prompts_dir if args.register else None)
    return 0


def _eval_record(path: Path, scores: Scores) -> dict[str, Any]:
    return {
        "file": str(path),
        "sha256": data.sha256(path),
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
    registry = Registry(args.prompts_dir, backbone.identity, backbone.max_prompt_len)
    registry.load()
    info = registry.resolve(args.task, args.version)
    return registry.read_spec(args.task, info.version), info.version


def _labels_of(record: dict[str, Any], version: int) -> list[str]:
    for entry in record.get("versions", []):
        if int(entry.get("version", -1)) == version:
            return list(entry["labels"])
    raise RuntimeError(f"the server lists no version {version} of task {record.get('task')!r}")


def _with_record(
    result: TrainResult,
    config: TrainConfig,
    args: argparse.Namespace,
    command: str,
    train_data: data.Dataset,
    eval_data: data.Dataset | None,
    backbone: Backbone,
) -> TaskSpec:
    """The best epoch's task, carrying its eval scores and how it was made."""
    history = result.history
    training = {
        "command": command,
        "config": asdict(config),
        "train_file": str(train_data.path),
        "train_sha256": data.sha256(train_data.path),
        "train_examples": len(train_data),
        "best_epoch": result.best_epoch,  # 0: the probe warm start, never beaten
        "epochs_run": len(history),
        "seconds": round(sum(e.seconds for e in history), 1),
        "examples_per_s": round(sum(e.examples_per_s for e in history) / max(1, len(history))),
        "device": _device_name(backbone.device),
        "torch": torch.__version__,
    }
    if config.init_prompt:
        training["init_prompt_sha256"] = data.sha256(Path(config.init_prompt))
    metrics: dict[str, Any] = {"training": training}
    best_scores = result.best_scores
    if eval_data is not None and best_scores is not None:
        metrics["eval"] = _eval_record(eval_data.path, best_scores)
    return replace(result.spec, description=args.description, metrics=metrics)


def _deliver(
    args: argparse.Namespace, payload: bytes, backbone: Backbone, register_in: Path | None
) -> None:
    """Write the task to --out, add it to the registry `register_in`, and PUT it to --upload."""
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(args.out), payload)
        log.info("wrote %s (%d bytes)", args.out, len(payload))
    if register_in:
        from app.registry import Registry

        registry = Registry(register_in, backbone.identity, backbone.max_prompt_len)
        registry.load()
        info = registry.add_version(args.task, payload)
        log.info("registered %s version %d in %s", args.task, info.version, register_in)
    if args.upload:
        import httpx

        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        response = httpx.put(
            f"{args.upload.rstrip('/')}/prompts/{args.task}",
            files={"file": (f"{args.task}.safetensors", payload, "application/octet-stream")},
            headers=headers,
            timeout=60,
        )
        if response.status_code != 201:
            raise RuntimeError(f"upload refused: {response.status_code} {response.text[:300]}")
        log.info("uploaded %s: version %s", args.task, response.json().get("version"))


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
