"""The `promptserve` command line: `promptserve serve [options]` and the other subcommands.

Every `serve` option falls back to its PROMPTSERVE_* environment variable, then to the default.
"""

# For developers: other subcommands live in their own modules (COMMAND_MODULES): each has
# `register(commands)`, which adds its subparser with `set_defaults(run=...)`, and keeps heavy
# imports inside `run`.

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from typing import Any

from pydantic import ValidationError

from app.settings import Settings


def _serve_options() -> list[tuple[str, type, str]]:
    """One flag per Settings field, so the CLI can never drift from the configuration."""
    options: list[tuple[str, type, str]] = []
    for name, field in Settings.model_fields.items():
        kind: type = int if field.annotation is int else float if field.annotation is float else str
        default = "none" if field.default is None else field.default
        options.append(
            (name, kind, f"{field.description or name.replace('_', ' ')} (default {default})")
        )
    return options


SERVE_OPTIONS = _serve_options()

COMMAND_MODULES: tuple[str, ...] = ("app.peft_cli", "app.training.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promptserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    for name, kind, help_text in SERVE_OPTIONS:
        env = f"PROMPTSERVE_{name.upper()}"
        serve.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=kind,
            default=None,
            help=f"{help_text} [env {env}]",
        )
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(commands)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags given on the command line win over the environment; pydantic validates both."""
    given: dict[str, Any] = {
        name: getattr(args, name)
        for name, _, _ in SERVE_OPTIONS
        if getattr(args, name, None) is not None
    }
    return Settings(**given)


def check_backbone_and_device(settings: Settings) -> None:
    """A device this torch build lacks, a backbone folder that is missing or holds no model:
    one line and exit 2, not a traceback after the server has started."""
    from app.backbone import choose_device, resolve_source

    choose_device(settings.device)
    resolve_source(settings.backbone)


def serve(settings: Settings) -> int:
    from app.api.app import create_app
    from app.backbone import limit_cpu_kernel_caches
    from app.serve import run_server

    limit_cpu_kernel_caches(settings.cpu_kernel_cache)  # before the backbone's first forward
    failed: list[BaseException] = []

    def stop(exc: BaseException) -> None:
        failed.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)  # the server's own handler shuts it down

    app = create_app(settings, on_load_failure=stop)
    run_server(app, settings.host, settings.port, settings.log_level)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `train` in its output
    if args.command != "serve":
        logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return int(args.run(args))
    try:
        settings = settings_from_args(args)
        check_backbone_and_device(settings)  # a moment's work, before loading in the background
    except ValidationError as exc:
        for problem in exc.errors(include_url=False):
            name = str(problem["loc"][0]) if problem["loc"] else ""
            flag, env = f"--{name.replace('_', '-')}", f"PROMPTSERVE_{name.upper()}"
            where = f"{name} ({flag}, {env}): " if name else ""
            message = problem["msg"].removeprefix("Value error, ")
            print(f"promptserve: invalid configuration: {where}{message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"promptserve: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
