"""Progress bars for the long steps (checking images, shortcut features and probes): tqdm on stderr.

One switch governs them and datasets' own bars ("Generating train split"): datasets' public
``datasets.disable_progress_bars()`` (and its ``HF_DATASETS_DISABLE_PROGRESS_BARS``), which ``covid-ct`` turns
off for ``--quiet`` and when stderr is not a terminal (:func:`bars_switched_off`). The commands that never
import datasets (``audit``, ``shortcuts``) do not import it for a switch: until datasets is imported, the
environment variable and ``covid-ct``'s choice decide. While the switch is on, a bar still stays silent when
stderr is not a terminal (tqdm's ``disable=None``), so logs and captured output carry no bar lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")

#: Values of ``HF_DATASETS_DISABLE_PROGRESS_BARS`` that turn the bars off (datasets' own reading of it).
_TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})

#: Whether ``covid-ct`` switched the bars off for the command it runs.
_switched_off = False


def bars_enabled() -> bool:
    """Whether progress bars are switched on (datasets' switch once it is imported)."""
    if _switched_off:
        return False
    datasets = sys.modules.get("datasets")
    if datasets is not None:
        return datasets.is_progress_bar_enabled()
    return os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS", "").upper() not in _TRUE_VALUES


@contextmanager
def bars_switched_off(off: bool) -> Iterator[None]:
    """Switch every bar off (ours and datasets') for the duration when ``off``; both switches are restored after."""
    global _switched_off
    datasets = sys.modules.get("datasets")  # a command that builds imported it with its module
    datasets_was_on = datasets is not None and datasets.is_progress_bar_enabled()
    previous = _switched_off
    if off:
        _switched_off = True
        if datasets is not None:
            datasets.disable_progress_bars()
    try:
        yield
    finally:
        _switched_off = previous
        if datasets_was_on:
            datasets.enable_progress_bars()


def progress(
    items: Iterable[Item],
    description: str,
    total: int | None = None,
    unit: str = "image",
    size: Callable[[Item], int] | None = None,
) -> Iterator[Item]:
    """Yield ``items`` while showing a progress bar on stderr (when bars are on and stderr is a terminal).

    ``size`` tells how many units one item holds (a batch), when not one.
    """
    from tqdm import tqdm

    disable = None if bars_enabled() else True
    if size is None:
        with tqdm(items, desc=description, total=total, unit=unit, disable=disable, leave=False) as bar:
            yield from bar
        return
    with tqdm(desc=description, total=total, unit=unit, disable=disable, leave=False) as bar:
        for item in items:
            yield item
            bar.update(size(item))
