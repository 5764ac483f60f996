"""`promptserve train`, `eval` and `refit-head`: prompt tuning, scoring and head refits from the
command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from app.errors import PromptserveError, RemoteError
from app.settings import add_prompts_dir_option, setting_default
from app.task import POOLINGS
from app.training.config import TrainConfig
from app.training.init import INITS
from app.training.reparam import REPARAMS

log = logging.getLogger(__name__)


def load_errors() -> tuple[type[Exception], ...]:
    """What a user can cause (bad data, options, paths, backbone, task, server): a message and
    exit 2, no traceback. Evaluated only once something failed, so that `serve` never imports
    httpx (the bare GPU machine may lack it; only train --upload and eval --url use it)."""
    import httpx

    return (ValueError, OSError, PromptserveError, RemoteError, httpx.HTTPError)


def register(commands: Any) -> None:
    train = commands.add_parser("train", help="train a task's soft prompt and head")
    train.add_argument("--task", required=True, help="task id")
    train.add_argument("--train", required=True, type=Path, help="JSONL or CSV of text,label")
    train.add_argument("--eval", type=Path, help="held-out file: scored each epoch, best kept")
    _add_config_flags(train)
    _add_backbone_flags(train)
    train.add_argument("--description", default="", help="free text stored with the task")
    train.add_argument("--out", type=Path, help="write the prompt file here")
    train.add_argument(
        "--prompts-dir",
        type=Path,
        help="register a new version in this registry (only when given: not from the environment)",
    )
    _add_upload_flags(train)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("eval", help="score a task on a labelled file")
    evaluate.add_argument("--task", required=True)
    evaluate.add_argument("--data", required=True, type=Path, help="JSONL or CSV of text,label")
    evaluate.add_argument("--version", type=int, help="default: the active version")
    evaluate.add_argument("--url", help="score through a running server's API instead")
    evaluate.add_argument("--file", type=Path, help="score this prompt file instead")
    evaluate.add_argument(
        "--token",
        default=os.environ.get("PROMPTSERVE_CLASSIFY_TOKEN"),
        help="classify bearer token for --url (default $PROMPTSERVE_CLASSIFY_TOKEN)",
    )
    add_prompts_dir_option(evaluate)
    _add_backbone_flags(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.set_defaults(run=run_eval)

    refit = commands.add_parser(
        "refit-head",
        help="fit a task's head again on its prompt's features (prompt kept; L2 by k-fold CV)",
    )
    refit.add_argument("--task", required=True, help="task id (also the id it is written under)")
    refit.add_argument("--data", required=True, type=Path, help="JSONL or CSV of text,label")
    refit.add_argument("--eval", type=Path, help="held-out file to score the new head on")
    refit.add_argument("--version", type=int, help="the version to start from (default: active)")
    refit.add_argument("--file", type=Path, help="start from this prompt file instead")
    add_prompts_dir_option(refit)
    refit.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    refit.add_argument("--seed", type=int, default=0, help="fold assignment (default 0)")
    _add_backbone_flags(refit)
    refit.add_argument("--out", type=Path, help="write the prompt file here")
    refit.add_argument("--register", action="store_true", help="add it to --prompts-dir")
    _add_upload_flags(refit)
    refit.set_defaults(run=run_refit)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    choices = {"init": INITS, "pooling": POOLINGS, "head_init": ("probe", "zeros")}
    choices["precision"] = ("auto", "fp32", "bf16")
    choices["reparam"] = REPARAMS
    for field in fields(TrainConfig):
        default = getattr(defaults, field.name)
        kind = type(default) if default is not None else str
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=kind,
            default=default,
            choices=choices.get(field.name),
            help=f"(default {default})",
        )


def _add_upload_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upload", metavar="URL", help="PUT the result to a running server")
    parser.add_argument(
        "--token",
        default=os.environ.get("PROMPTSERVE_ADMIN_TOKEN"),
        help="admin bearer token for --upload (default $PROMPTSERVE_ADMIN_TOKEN; never recorded)",
    )


def _add_backbone_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backbone",
        default=setting_default("backbone"),
        help="HF id or local path (default %(default)s: $PROMPTSERVE_BACKBONE when set)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")


def run_train(args: argparse.Namespace) -> int:
    if not (args.out or args.prompts_dir or args.upload):
        print(
            "promptserve train: say where the result goes: --out, --prompts-dir or --upload",
            file=sys.stderr,
        )
        return 2
    from app.training.run import train_task

    started = time.time()
    try:
        config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        return train_task(args, config, command=recorded_command(args.argv))
    except load_errors() as exc:  # bad data, options, backbone, destination or upload: no traceback
        print(f"promptserve train: {exc}", file=sys.stderr)
        return 2
    finally:
        log.info("train: %.1f s in all", time.time() - started)


def run_eval(args: argparse.Namespace) -> int:
    from app.training import data
    from app.training.run import predict_for_eval
    from app.training.scores import score

    try:
        dataset = data.load(args.data)
        labels, predicted, version = predict_for_eval(args, dataset)
        data.check_known_labels(dataset, labels)
    except load_errors() as exc:
        print(f"promptserve eval: {exc}", file=sys.stderr)
        return 2
    scores = score(dataset.labels, predicted, labels)
    if args.json:
        print(json.dumps({"task": args.task, "version": version, **scores.to_dict()}, indent=2))
    else:
        which = f"file {args.file}" if getattr(args, "file", None) else f"version {version}"
        print(f"task {args.task} {which} on {args.data}")
        print(scores.table())
    return 0


def run_refit(args: argparse.Namespace) -> int:
    if not (args.out or args.register or args.upload):
        print(
            "promptserve refit-head: say where the result goes: --out, --register or --upload",
            file=sys.stderr,
        )
        return 2
    from app.training.run import refit_task

    try:
        return refit_task(args, command=recorded_command(args.argv))
    except load_errors() as exc:  # bad data, task, backbone or upload
        print(f"promptserve refit-head: {exc}", file=sys.stderr)
        return 2


def recorded_command(argv: list[str]) -> str:
    """The command line a task file records, its --token value masked: the metadata is served
    by GET /prompts/{task} without a token, and travels with every copy of the file."""
    shown, mask_next = ["promptserve"], False
    for arg in argv:
        name, equals, _ = arg.partition("=")
        is_token = len(name) >= 4 and "--token".startswith(name)  # argparse takes "--tok"
        if mask_next:
            shown.append("***")
        elif is_token and equals:
            shown.append(f"{name}=***")
        else:
            shown.append(arg)
        mask_next = is_token and not equals
    return shlex.join(shown)
