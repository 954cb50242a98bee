"""The errors a user can fix, and how options are named in their messages.

A :class:`UsageError` (a bad option, parameter or path) and a :class:`DataError` (bad input
data) carry one line that names the option, file, row, column or field at fault and the fix.
The CLI prints it as ``error: ...`` and exits 2; a chapter raises it in its first cells.
Messages name options as the caller spells them: ``--data-dir`` on the command line,
``parameter data_dir`` in a chapter (:func:`option` under :func:`notebook_names`).

Imports nothing heavy: the CLI's ``--help`` and ``--version`` load this module.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

_STYLE = contextvars.ContextVar("prunecxr_option_style", default="cli")


class UsageError(ValueError):
    """A bad option, parameter or path; the message names it and says what to pass instead."""


class DataError(ValueError):
    """Bad input data. The message names the file, row, column or parameter at fault."""


@contextlib.contextmanager
def notebook_names() -> Iterator[None]:
    """Within this block, :func:`option` names chapter parameters (``parameter data_dir``)."""
    token = _STYLE.set("notebook")
    try:
        yield
    finally:
        _STYLE.reset(token)


def option(name: str) -> str:
    """``data_dir`` -> ``--data-dir`` (CLI) or ``parameter data_dir`` (chapter)."""
    if _STYLE.get() == "notebook":
        return f"parameter {name}"
    return "--" + name.replace("_", "-")


def option_value(name: str, value: str) -> str:
    """How to pass ``name=value``: ``--data-dir /x`` (CLI) or ``-p data_dir /x`` (papermill)."""
    if _STYLE.get() == "notebook":
        return f"-p {name} {value}"
    return f"--{name.replace('_', '-')} {value}"


def did_you_mean(value: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_writable_folder(path: str | os.PathLike, what: str) -> Path:
    """Check that folder ``path`` is a folder (or can be made one) that can be written.

    ``what`` names where the path came from (``--results-dir /x``, ``PRUNECXR_HOME=/x``).
    Raises :class:`UsageError` naming it when a part of the path is a file or the folder (or,
    when it does not exist yet, the nearest folder above it) cannot be written. Creates
    nothing: a probe file is written and removed.
    """
    path = Path(path).expanduser()
    existing = next((p for p in [path, *path.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == path else f" ({existing} is a file)"
        raise UsageError(f"{what}: not a folder{where}; pass a folder path")
    if existing is not None:
        probe = existing / f".prunecxr-write-check-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            place = "" if existing == path else f" ({existing})"
            raise UsageError(f"{what}: cannot write there{place}: {reason}; pass a folder you "
                             f"can write to ({option('results_dir')}, or set PRUNECXR_HOME)"
                             ) from None
    return path


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message; for an OS error the path and the reason; for a
    message of several lines (a failed chapter's traceback) its first and last lines."""
    if isinstance(exc, OSError) and exc.strerror:
        name = f"{exc.filename}: " if exc.filename else ""
        return f"{name}{exc.strerror}"
    text = _ANSI.sub("", str(exc)).strip() or type(exc).__name__
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(exc).__name__
    more = f" ({len(lines) - 2} line(s) between; --debug shows them)" if len(lines) > 2 else ""
    return f"{lines[0]} {lines[-1]}{more}"
