"""Progress bars that suit where they are shown: a terminal, a notebook, or nowhere.

``from prunecxr.progress import tqdm`` is tqdm's own bar in a terminal. In a Jupyter kernel it
is one line of text updated in place through an IPython display handle (no ipywidgets needed),
so JupyterLab shows a live line and a notebook saved by papermill or nbclient holds the bar's
last state once, not hundreds of fragments; nested bars (``leave=False``) are not shown there. ``PRUNECXR_PROGRESS=0`` (set by the CLI's
``--quiet``, inherited by worker processes) turns every bar off.
"""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm as _terminal_tqdm

ENV = "PRUNECXR_PROGRESS"


def enabled() -> bool:
    """Whether bars are shown at all (``PRUNECXR_PROGRESS`` is not 0/false/off/no)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def set_enabled(on: bool) -> None:
    """Turn bars on or off for this process and the worker processes it starts."""
    os.environ[ENV] = "1" if on else "0"


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (a bar there must not write ``\\r`` text)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class NotebookBar(_terminal_tqdm):
    """A tqdm bar drawn as one text line in a notebook, updated at most every 2 s."""

    def __init__(self, *args, **kwargs):
        self._handle = None
        self._shown = 0.0
        kwargs.setdefault("mininterval", 2.0)
        kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - tqdm's own writes go nowhere
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        if self.disable:
            return True
        text = msg if msg is not None else self.__str__()
        now = time.monotonic()
        if self._handle is None:
            from IPython.display import display

            self._handle = display({"text/plain": text}, raw=True, display_id=True)
        elif now - self._shown >= self.mininterval or self.n >= (self.total or float("inf")):
            self._handle.update({"text/plain": text}, raw=True)
        else:
            return True
        self._shown = now
        return True

    def close(self):
        if self.disable:
            return
        leave = self.leave
        handle = self._handle
        if handle is not None:
            handle.update({"text/plain": self.__str__() if leave else ""}, raw=True)
        self._handle = None
        try:
            super().close()
        finally:
            self.fp.close()

    def clear(self, nolock=False):
        pass

    @classmethod
    def write(cls, s, file=None, end="\n", nolock=False):
        print(s, end=end, file=file or sys.stdout)


def tqdm(*args, **kwargs):
    """A progress bar for this environment (see the module docstring); ``disable=True`` or
    ``PRUNECXR_PROGRESS=0`` hides it."""
    kwargs["disable"] = kwargs.get("disable", False) or not enabled()
    if in_notebook():
        # A nested bar (leave=False: one seed's epochs, one method's levels) would leave an
        # empty output behind per seed; the notebook shows the outer bars only.
        kwargs["disable"] = kwargs["disable"] or kwargs.get("leave") is False
        kwargs.pop("position", None)
        return NotebookBar(*args, **kwargs)
    return _terminal_tqdm(*args, **kwargs)


tqdm.write = _terminal_tqdm.write  # type: ignore[attr-defined]
