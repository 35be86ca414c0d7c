"""The terminal: the one ``rich`` console kerasopt prints its lines and tables on.

Every verb takes a ``say`` (a one-line printer) so notebooks, tests and quiet runs can redirect
it; :func:`console_print` is the default.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Optional

from rich.console import Console

_console = Console(highlight=False)


def console_print(msg: str) -> None:
    """Print one line as it is: no markup, no highlighting, no wrapping inside it.

    Example:
        >>> console_print("saved [/data/x]")  # paths like "[/data/x]" are text, not rich tags
        saved [/data/x]
    """
    _console.print(msg, soft_wrap=True, markup=False)


def print_table(table: Any, say: Optional[Callable[[str], None]] = None, *, width: int = 100) -> None:
    """Draw a ``rich`` table on the terminal, or, for a caller-supplied ``say``, hand it over as text.

    Example:
        >>> from rich.table import Table
        >>> t = Table("metric", "final"); t.add_row("loss", "0.25")
        >>> lines = []; print_table(t, lines.append); "loss" in lines[0]
        True
    """
    if say is None or say is console_print:
        _console.print(table)
        return
    # force_jupyter=False: in a notebook rich would otherwise display the table instead of writing it to buf
    buf = Console(file=io.StringIO(), width=width, highlight=False, force_jupyter=False)
    buf.print(table)
    say(buf.file.getvalue().rstrip())


__all__ = ["console_print", "print_table"]
