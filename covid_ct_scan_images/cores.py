"""How many CPU cores this process may use: the worker count of every parallel step."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """How many CPU cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
