"""One way for every command to end on bad input: one line on stderr and exit code 2."""

from __future__ import annotations

from collections.abc import Callable

import typer
from rich.console import Console

from talktime.errors import TalktimeError


def fail(message: str) -> typer.Exit:
    """Print one error line and give the exit code for bad input."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"talktime: error: {message}", markup=False)
    return typer.Exit(code=2)


def guarded(action: Callable[[], None]) -> None:
    """Run a command body, turning talktime's own errors and unreadable files into one line and exit 2."""
    try:
        action()
    except TalktimeError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"{getattr(error, 'filename', '') or ''}: {error.strerror or error}") from None
