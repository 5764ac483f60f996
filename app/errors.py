"""Domain errors: raised by the core, turned into HTTP responses only at the API edge."""

from __future__ import annotations


class PromptserveError(Exception):
    """Base of every error the service reports to a client."""


class TaskNotFound(PromptserveError):
    pass


class VersionNotFound(PromptserveError):
    pass


class InvalidTaskId(PromptserveError):
    pass


class InvalidPrompt(PromptserveError):
    """A prompt file or its metadata cannot be served (shape, dtype, values, backbone, format)."""


class InvalidRequest(PromptserveError):
    pass


class Conflict(PromptserveError):
    """The operation contradicts the registry's state (e.g. deleting the active version)."""


class TooLarge(PromptserveError):
    pass


class Overloaded(PromptserveError):
    """The queue is full: answered 503 with Retry-After: 1."""


class DeadlineExceeded(PromptserveError):
    pass


class RequestTimeout(PromptserveError):
    """The client did not send its request body in time."""


class NotReady(PromptserveError):
    pass


class ShuttingDown(PromptserveError):
    pass


class Unauthorized(PromptserveError):
    pass


class ClientDisconnected(PromptserveError):
    """The client went away before its answer was ready; its queued work was dropped."""


def listed(numbers: list[int], most: int = 10) -> str:
    """ "1, 4, 9": the first `most` numbers, and "..." for the rest."""
    return ", ".join(map(str, numbers[:most])) + (", ..." if len(numbers) > most else "")


def short_message(exc: BaseException) -> str:
    """An error's message, cut to a length a response can carry."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


class RemoteError(Exception):
    """A server a command talks to (`train --upload`, `eval --url`) cannot be reached, or
    refused. Not a PromptserveError: the CLI raises it, no HTTP route answers with it."""
