"""The baseline commands' usage errors: one usage line, the error and a hint, and the one-line error exit.

Shared by ``finetune.py``, ``explain.py`` and ``evaluate_external.py`` so that every command fails the same way:
exit 2 for a usage error, 1 for a problem with the data, a run folder or the Hub, each as one line on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import datasets
import transformers
from transformers import HfArgumentParser


class ShortUsageParser(HfArgumentParser):
    """``HfArgumentParser`` whose errors print one usage line and a hint, not the 100-line usage of every option.

    ``usage`` is the command's synopsis after its name (e.g. ``--model RUN_DIR --data-dir DIR [options]``).
    """

    def __init__(self, dataclass_types, usage: str, **kwargs) -> None:
        super().__init__(dataclass_types, **kwargs)
        self.short_usage = usage

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # TrainingArguments' own messages span several lines
        self.exit(2, f"usage: {self.prog} {self.short_usage}\n"
                     f"{self.prog}: error: {message}\nRun '{self.prog} --help' to see every option.\n")


def exit_with(error: Exception | str, code: int) -> NoReturn:
    """Print ``error`` as one ``SCRIPT: error: ...`` line on stderr and exit with ``code``."""
    print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
    raise SystemExit(code)


@contextmanager
def library_progress_bars(show: bool) -> Iterator[None]:
    """datasets' and transformers' progress bars on only when ``show`` (a terminal, no ``--quiet``); restored after.

    Off, a failing command prints its one error line alone; the switches are global, so an in-process caller (the
    tests) gets them back as they were.
    """
    datasets_bars = datasets.is_progress_bar_enabled()
    transformers_bars = transformers.utils.logging.is_progress_bar_enabled()
    if not show:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_bars:
            datasets.enable_progress_bars()
        if transformers_bars:
            transformers.utils.logging.enable_progress_bar()
