"""The `asym` command: thin Typer commands over `stages/` and the library.

Each command parses options, then calls one function. User errors (AsymError) become
one line on stderr and exit code 2, with no traceback and nothing written.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .errors import AsymError

app = typer.Typer(
    name="asym",
    help="Run, compare and report RLVR experiments: AsymGRPO and the baselines of arXiv 2604.04894.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn AsymError into a one-line error with exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AsymError as exc:
            fail(str(exc))

    return wrapper


@app.callback()
def _root() -> None:
    """Run, compare and report RLVR experiments: AsymGRPO and the baselines of arXiv 2604.04894."""


ConfigOpt = typer.Option(None, "--config", "-c", help="Experiment config YAML (default: built-in defaults).")


@app.command()
def version() -> None:
    """Print the asym version."""
    from . import __version__

    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
