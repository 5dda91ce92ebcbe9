"""Shortcut probes: how much of the label can be predicted without looking at the lungs.

In this dataset the label coincides with the image source, so models can learn the source instead
of the disease. :func:`run_shortcut_probes` scores simple models that cannot see lung disease
(metadata, intensity statistics, the image border) on the ``full`` config's patient-grouped folds;
:func:`format_table`, :meth:`ShortcutReport.to_json` and :func:`interpretation` render the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .features import CENTER_FRACTION
from .report import (
    ProbeResult,
    ShortcutReport,
    format_summary,
    format_table,
    interpretation,
)

if TYPE_CHECKING:
    from .probes import (
        DEFAULT_BOOTSTRAP,
        DEFAULT_SEED,
        PROBES,
        Probe,
        ProbeSettings,
        run_shortcut_probes,
    )

#: Names served from :mod:`.probes` on first use: the dataset build (whose inspection computes the features of
#: :mod:`.features`) imports this package, and does not need the probes' models and statistics.
_FROM_PROBES = frozenset(
    {
        "DEFAULT_BOOTSTRAP",
        "DEFAULT_SEED",
        "PROBES",
        "Probe",
        "ProbeSettings",
        "run_shortcut_probes",
    }
)


def __getattr__(name: str) -> Any:
    if name in _FROM_PROBES:
        from . import probes

        return getattr(probes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CENTER_FRACTION",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_SEED",
    "PROBES",
    "Probe",
    "ProbeResult",
    "ProbeSettings",
    "ShortcutReport",
    "format_summary",
    "format_table",
    "interpretation",
    "run_shortcut_probes",
]
