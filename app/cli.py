"""The `promptserve` command line: `promptserve serve [options]`.

Every option falls back to its PROMPTSERVE_* environment variable, then to the default.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from app.settings import Settings

SERVE_OPTIONS: list[tuple[str, type, str]] = [
    ("host", str, "address to bind (default 127.0.0.1)"),
    ("port", int, "port (default 8000)"),
    ("backbone", str, "HF model id or local dir (default: all-MiniLM-L6-v2, shipped on PyPI)"),
    ("prompts_dir", str, "prompt registry directory (default ./prompts)"),
    ("device", str, "auto | cpu | cuda"),
    ("precision", str, "auto | fp32 | bf16 | fp16"),
    ("max_batch_size", int, "rows per forward"),
    ("max_batch_tokens", int, "padded tokens per forward, prompt included"),
    ("max_wait_ms", float, "extra wait for a batch to fill (default 0)"),
    ("queue_limit", int, "rows waiting before requests get 503"),
    ("request_timeout_s", float, "deadline of a classify request, seconds"),
    ("max_client_batch", int, "inputs per /classify request"),
    ("cache_bytes", int, "device cache budget for prompts and heads"),
    ("admin_token", str, "bearer token for upload/activate/delete (default: open, with a warning)"),
    ("classify_token", str, "bearer token for /classify (default: open)"),
    ("log_level", str, "debug | info | warning | error"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promptserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    for name, kind, help_text in SERVE_OPTIONS:
        env = f"PROMPTSERVE_{name.upper()}"
        serve.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None,
                           help=f"{help_text} [env {env}]")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags given on the command line win over the environment; pydantic validates both."""
    given: dict[str, Any] = {name: getattr(args, name) for name, _, _ in SERVE_OPTIONS
                             if getattr(args, name, None) is not None}
    return Settings(**given)


def serve(settings: Settings) -> None:
    import uvicorn

    from app.api.app import create_app

    def stop(exc: BaseException) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    app = create_app(settings, on_load_failure=stop)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"promptserve: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
