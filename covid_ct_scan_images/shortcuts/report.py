"""The shortcut probes' result: plain data, JSON round trip, a table and one sentence.

Nothing here computes a probe; :mod:`covid_ct_scan_images.shortcuts.probes` fills a
:class:`ShortcutReport` and the CLI, the dataset card and the baselines only render it. It serialises
like the audit report (:class:`covid_ct_scan_images.audit_report.Report`): ``to_dict`` from
:func:`dataclasses.asdict` plus derived keys, ``from_dict`` ignoring them, ``to_json``. A saved run given back
(``covid-ct export --shortcuts-json``, the baselines) is read by :meth:`ShortcutReport.from_json`, which names a
file that is not a report, and :meth:`ShortcutReport.check_computed_on` refuses a run of other data.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DatasetError, UsageError

if TYPE_CHECKING:
    import datasets

#: Version of the JSON layout written by :meth:`ShortcutReport.to_json`.
REPORT_FORMAT = 1

#: Probe name of the chance line that heads the table.
CHANCE = "chance"


@dataclass(frozen=True)
class ProbeResult:
    """Out-of-fold scores of one probe; intervals are patient-bootstrap 95% percentiles or ``None``."""

    probe: str
    model: str
    features: str
    n_features: int
    auroc: float
    auroc_ci: tuple[float, float] | None
    auprc: float
    auprc_ci: tuple[float, float] | None
    sees_lungs: bool = False

    @property
    def name(self) -> str:
        """The probe as the table shows it, e.g. ``metadata (GBT)``."""
        return self.probe if not self.model else f"{self.probe} ({self.model})"


@dataclass(frozen=True)
class ShortcutReport:
    """How well models that cannot see lung disease predict the label, on patient-grouped folds."""

    n_images: int
    n_patients: int
    n_positive: int
    n_folds: int
    n_bootstrap: int
    seed: int
    center_fraction: float
    results: tuple[ProbeResult, ...]
    format: int = field(default=REPORT_FORMAT)

    @property
    def prevalence(self) -> float:
        """Share of positive images: the AUPRC of a classifier that guesses."""
        return self.n_positive / self.n_images

    @property
    def probes(self) -> tuple[ProbeResult, ...]:
        """The results without the chance line."""
        return tuple(result for result in self.results if result.probe != CHANCE)

    def best_shortcut(self) -> ProbeResult:
        """The probe that does not see the lungs with the highest AUROC."""
        candidates = [result for result in self.probes if not result.sees_lungs]
        return max(candidates, key=lambda result: (result.auroc, result.auprc))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary, with the prevalence and the interpretation added."""
        data = asdict(self)
        data["prevalence"] = self.prevalence
        data["interpretation"] = interpretation(self)
        for result in data["results"]:
            for key in ("auroc_ci", "auprc_ci"):
                if result[key] is not None:
                    result[key] = list(result[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShortcutReport:
        """Rebuild a report saved with :meth:`to_dict` (derived keys are ignored)."""
        if data.get("format") != REPORT_FORMAT:
            raise ValueError(f"unsupported shortcut report format {data.get('format')!r}; expected {REPORT_FORMAT}")
        results = tuple(
            ProbeResult(
                **{
                    **result,
                    "auroc_ci": _interval(result.get("auroc_ci")),
                    "auprc_ci": _interval(result.get("auprc_ci")),
                }
            )
            for result in data["results"]
        )
        keys = ("n_images", "n_patients", "n_positive", "n_folds", "n_bootstrap", "seed", "center_fraction")
        return cls(**{key: data[key] for key in keys}, results=results, format=data["format"])

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as indented JSON, also written to ``path`` when one is given."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> ShortcutReport:
        """Read a report written by :meth:`to_json`; a :class:`UsageError` names a file that is not one."""
        hint = "pass the JSON file written by `covid-ct shortcuts PATH --json FILE`"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                kind = type(data).__name__
                raise UsageError(f"the shortcut report {path} holds a JSON {kind}, not a report; {hint}.")
            return cls.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError) as error:
            problem = f"{type(error).__name__}: {error}"
            raise UsageError(f"cannot read the shortcut report {path}: {problem}; {hint}.") from error

    def check_computed_on(self, full: datasets.Dataset, path: str | os.PathLike[str]) -> None:
        """Raise a :class:`DatasetError` unless this report (read from ``path``) counts the images of ``full``."""
        labels = full["label"]
        expected = (len(labels), sum(labels), len(set(full["patient_id"])))
        found = (self.n_images, self.n_positive, self.n_patients)
        if found != expected:
            raise DatasetError(
                f"the shortcut report {path} was computed on other data (images, positives, patients: "
                f"{found[0]}, {found[1]}, {found[2]}) than this export ({expected[0]}, {expected[1]}, {expected[2]}); "
                "run `covid-ct shortcuts` on this download again or leave the option out."
            )


def chance_result(prevalence: float) -> ProbeResult:
    """Return the chance line: AUROC 0.5 and AUPRC equal to the prevalence, without intervals."""
    return ProbeResult(CHANCE, "", "none (random guess)", 0, 0.5, None, prevalence, None)


def _interval(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _score(value: float, interval: tuple[float, float] | None) -> str:
    if math.isnan(value):
        return "n/a"
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def table_rows(report: ShortcutReport) -> list[tuple[str, str, str, str]]:
    """Return the table's rows (probe, features, AUROC [95% CI], AUPRC [95% CI]), chance line first."""
    ordered = sorted(report.results, key=lambda result: result.probe != CHANCE)
    return [
        (result.name, result.features, _score(result.auroc, result.auroc_ci), _score(result.auprc, result.auprc_ci))
        for result in ordered
    ]


TABLE_HEADER = ("probe", "features", "AUROC [95% CI]", "AUPRC [95% CI]")


def format_table(report: ShortcutReport, markdown: bool = False) -> str:
    """Render the table as aligned plain text, or as a Markdown table for the dataset card."""
    rows = [TABLE_HEADER, *table_rows(report)]
    if markdown:
        lines = [f"| {' | '.join(row)} |" for row in rows]
        lines.insert(1, "|" + "|".join("---" for _ in TABLE_HEADER) + "|")
        return "\n".join(lines)
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_summary(report: ShortcutReport) -> str:
    """One line on what the numbers were computed from."""
    intervals = (
        f"95% intervals from {report.n_bootstrap} patient-level bootstrap resamples (seed {report.seed})"
        if report.n_bootstrap
        else "no intervals (no bootstrap)"
    )
    return (
        f"{report.n_images} images ({report.n_positive} positive, prevalence {report.prevalence:.3f}) from "
        f"{report.n_patients} patients; out-of-fold over {report.n_folds} patient-grouped folds; {intervals}."
    )


def format_markdown(report: ShortcutReport) -> str:
    """The dataset card's section: the Markdown table, what it was computed from, and the interpretation in bold."""
    return f"{format_table(report, markdown=True)}\n\n{format_summary(report)}\n\n**{interpretation(report)}**"


def interpretation(report: ShortcutReport) -> str:
    """One plain-language sentence on what the table means, generated from its numbers."""
    best = report.best_shortcut()
    if math.isnan(best.auroc):
        return "The shortcut probes could not be scored on this data (too few images of one class)."
    # Without an interval (no bootstrap) the point estimate stands in for its lower bound.
    low = best.auroc_ci[0] if best.auroc_ci is not None else best.auroc
    interval = f" (95% CI {low:.2f}-{best.auroc_ci[1]:.2f})" if best.auroc_ci is not None else ""
    measured = (
        f"Of the models that cannot see lung disease, the best ({best.probe}, {best.model}) reaches AUROC "
        f"{best.auroc:.2f}{interval} where chance is 0.5"
    )
    if best.auroc >= 0.9 and low > 0.5:
        verdict = (
            "so the label can be predicted almost entirely from image properties unrelated to the lungs, and a "
            "model's accuracy on this dataset is no evidence that it detects COVID-19"
        )
    elif best.auroc >= 0.7 and low > 0.5:
        verdict = (
            "so much of the label can be predicted from image properties unrelated to the lungs, and a model's "
            "accuracy on this dataset should be compared with this number before it is read as skill"
        )
    elif low > 0.5:
        verdict = "so part of the label leaks through image properties unrelated to the lungs"
    else:
        verdict = "so these probes found no clear shortcut"
        if best.auroc_ci is not None and best.auroc_ci[1] - best.auroc_ci[0] > 0.2:
            verdict += ", though the interval is wide and a shortcut cannot be ruled out"
    return f"{measured}, {verdict}."
