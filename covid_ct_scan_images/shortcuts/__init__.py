"""Shortcut probes: how much of the label can be predicted without looking at the lungs.

In this dataset the label coincides with the image source, so models can learn the source instead
of the disease. :func:`run_shortcut_probes` scores simple models that cannot see lung disease
(metadata, intensity statistics, the image border) on the ``full`` config's patient-grouped folds;
:func:`format_table`, :meth:`ShortcutReport.to_json` and :func:`interpretation` render the result.
"""

from __future__ import annotations

from .features import CENTER_FRACTION
from .probes import DEFAULT_BOOTSTRAP, DEFAULT_SEED, PROBES, Probe, run_shortcut_probes
from .report import (
    ProbeResult,
    ShortcutReport,
    format_summary,
    format_table,
    from_json,
    interpretation,
    to_dict,
    to_json,
)

__all__ = [
    "CENTER_FRACTION",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_SEED",
    "PROBES",
    "Probe",
    "ProbeResult",
    "ShortcutReport",
    "format_summary",
    "format_table",
    "from_json",
    "interpretation",
    "run_shortcut_probes",
    "to_dict",
    "to_json",
]
