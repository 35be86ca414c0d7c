"""What every ``kerasopt`` verb shares: error lines and exit codes (0 ok, 2 bad input, 1 other)."""

from __future__ import annotations

import functools
import os
import re
import sys
from typing import Optional

import click

from kerasopt.errors import ConfigError, TrainingDiverged

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


def err(msg: str) -> None:
    from kerasopt.distribute.tf_config import rank_label  # horovodrun, mpirun or a multi-worker TF_CONFIG

    rank = rank_label()
    prefix = f"[rank {rank}] " if rank is not None else ""
    click.secho(f"{prefix}error: {msg}", fg="red", err=True)


def summary_line(e: BaseException) -> str:
    """One line that says what went wrong.

    TensorFlow's graph errors start with "Graph execution error:" and the frames where the op was
    defined; the cause (e.g. "RuntimeError: bad batch" from a ``py_function``) is the last line
    before ``[[{{node ...}}]]``.

    Example:
        >>> summary_line(RuntimeError("Graph execution error:\\n\\nDetected at node m/f defined at:\\n"
        ...                           "  File x.py, line 1\\n\\nValueError: bad batch\\n\\t [[{{node m/f}}]]"))
        'ValueError: bad batch (at node m/f)'
    """
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if not lines[0].endswith("execution error:"):
        return lines[0]
    causes = [line for line in lines[1:] if not line.startswith(("[[", "File ", "Detected at node"))]
    node = next((line.split()[3] for line in lines if line.startswith("Detected at node")), None)
    cause = causes[-1].split(" [Op:")[0] if causes else lines[0]
    return cause + (f" (at node {node})" if node else "")


def assertion_text(e: BaseException) -> Optional[str]:
    """The message of a failed ``tf.debugging.Assert`` inside a graph error, its parts joined; else None.

    Example:
        >>> assertion_text(ValueError("Error in map: assertion failed: [file changed:] [a.png] [is] [40]"
        ...                           " (at node m)\\n\\t [[{{node m}}]]"))
        'file changed: a.png is 40'
    """
    text = str(e)
    if "assertion failed: " not in text:
        return None
    tail = text.split("assertion failed: ", 1)[1].splitlines()[0]
    parts = [p.strip() for p in re.findall(r"\[([^\[\]]*)\]", tail)]
    return " ".join(p for p in parts if p) or None


def guard(fn):
    """Run a verb; ConfigError -> exit 2 with one line, anything else -> exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            err(str(e))
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            err("interrupted")
            sys.exit(130)
        except click.exceptions.ClickException:
            raise
        except TrainingDiverged as e:  # a result, not a bug: one line, no traceback hint
            err(str(e))
            sys.exit(EXIT_ERROR)
        except Exception as e:  # noqa: BLE001 - the last line of defence
            if os.environ.get("KERASOPT_DEBUG"):
                raise
            checked = assertion_text(e)  # kerasopt's own checks inside the data pipeline say it all
            err(checked or f"{type(e).__name__}: {summary_line(e)} (set KERASOPT_DEBUG=1 for the traceback)")
            sys.exit(EXIT_ERROR)

    return wrapper
