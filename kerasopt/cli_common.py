"""What every ``kerasopt`` verb shares: error lines and exit codes (0 ok, 2 bad input, 1 other)."""

from __future__ import annotations

import functools
import os
import sys

import click

from kerasopt.errors import ConfigError

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


def _err(msg: str) -> None:
    rank = os.environ.get("HOROVOD_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK")
    prefix = f"[rank {rank}] " if rank is not None else ""
    click.secho(f"{prefix}error: {msg}", fg="red", err=True)


def _guard(fn):
    """Run a verb; ConfigError -> exit 2 with one line, anything else -> exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            _err(str(e))
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            _err("interrupted")
            sys.exit(130)
        except click.exceptions.ClickException:
            raise
        except Exception as e:  # noqa: BLE001 - the last line of defence
            if os.environ.get("KERASOPT_DEBUG"):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            _err(f"{type(e).__name__}: {first} (set KERASOPT_DEBUG=1 for the traceback)")
            sys.exit(EXIT_ERROR)

    return wrapper
