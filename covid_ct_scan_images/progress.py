"""Progress bars for the long steps (checking images, shortcut features and probes): tqdm on stderr.

One switch governs them and datasets' own bars ("Generating train split"): datasets' public
``datasets.disable_progress_bars()``, which ``covid-ct`` calls for ``--quiet`` and when stderr is not a
terminal. While the switch is on, a bar still stays silent when stderr is not a terminal (tqdm's
``disable=None``), so logs and captured output carry no bar lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")


def progress(items: Iterable[Item], description: str, total: int | None = None, unit: str = "image") -> Iterator[Item]:
    """Yield ``items`` while showing a progress bar on stderr (when bars are on and stderr is a terminal)."""
    import datasets
    from tqdm import tqdm

    disable = None if datasets.is_progress_bar_enabled() else True
    with tqdm(items, desc=description, total=total, unit=unit, disable=disable, leave=False) as bar:
        yield from bar
