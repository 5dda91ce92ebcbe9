"""Render the dataset card (``README.md`` of an export) from ``dataset_card.md`` and the exported builds.

``dataset_card.md`` holds the YAML a person writes (name, licence, tags) and Markdown with ``string.Template``
placeholders; every number comes from the data. The YAML gains ``configs`` and ``dataset_info`` (written by the
``datasets`` metadata classes) and ``version`` (read back by :func:`card_version`).
"""

from __future__ import annotations

import hashlib
import io
import os
import string
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

import datasets
import pandas as pd
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard
from PIL import Image

from .audit_report import Report
from .errors import UsageError
from .layout import CLASS_NAMES
from .reference import compare_with_reference, reference_entries
from .versions import DATASET_VERSION, VERSION_HISTORY

if TYPE_CHECKING:
    from .shortcuts import ShortcutReport

#: The card's source: ``dataset_card.md`` at the repository root in a source checkout (editable install); an installed
#: wheel carries the same file inside the package (``pyproject.toml``, ``force-include``).
TEMPLATE_PATHS = (
    Path(__file__).resolve().parent.parent / "dataset_card.md",
    Path(__file__).resolve().parent / "dataset_card.md",
)

#: Hugging Face ``size_categories`` bins: (upper bound, name).
SIZE_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
)

#: Columns read from the shards to compute the card (the image bytes are read separately, in batches).
_STAT_COLUMNS = ("image_id", "label", "patient_id", "source", "width", "height", "sha256", "mode")

#: How many file names the card lists for one problem before summarising the rest.
MAX_LISTED = 20


def load_template(path: str | os.PathLike[str] | None = None) -> str:
    """The card's source text: ``path``, or ``dataset_card.md``; a :class:`UsageError` names a bad file."""
    if path is not None:
        source = Path(path)
    else:
        source = next((candidate for candidate in TEMPLATE_PATHS if candidate.is_file()), TEMPLATE_PATHS[0])
    try:
        template = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"the dataset card source {source} is not UTF-8 text (byte {error.start}); save it as UTF-8."
        ) from error
    except OSError as error:
        raise UsageError(
            f"cannot read the dataset card source {source}: {error.strerror}. It is `dataset_card.md` at the root "
            "of the covid_ct_scan_images repository (installed wheels carry a copy); reinstall the package or pass "
            "--card-template FILE."
        ) from error
    try:
        DatasetCard(template)
    except ValueError as error:
        raise UsageError(f"the dataset card source {source} has an invalid YAML header: {error}") from error
    return template


def size_category(n_rows: int) -> str:
    """The Hugging Face ``size_categories`` value for ``n_rows`` examples."""
    for bound, name in SIZE_CATEGORIES:
        if n_rows < bound:
            return name
    return "n>1M"


def image_format(data: bytes) -> str:
    """The image format of encoded bytes as Pillow names it (``JPEG``, ``PNG``), or ``unreadable``."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or "unknown"
    except OSError:
        return "unreadable"


def split_frame(dataset: datasets.Dataset) -> pd.DataFrame:
    """The metadata columns of one split, with the image format read from the embedded bytes."""
    columns = [name for name in (*_STAT_COLUMNS, "fold") if name in dataset.column_names]
    frame = dataset.select_columns(columns).to_pandas()
    images = dataset.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))
    frame["format"] = [image_format(image["bytes"]) for batch in images.iter(batch_size=32) for image in batch["image"]]
    return frame


@dataclass
class CardStats:
    """Everything the card computes from the exported builds: the rows of each config and the audit report."""

    splits: dict[str, pd.DataFrame]
    full: pd.DataFrame
    report: Report
    manifest_sha256: str
    version: str = DATASET_VERSION


def collect_stats(default: datasets.DatasetDict, full: datasets.Dataset, report: Report, manifest: bytes) -> CardStats:
    """What the card shows, from the ``default`` splits, the ``full`` split, the audit report and the manifest."""
    return CardStats(
        splits={split: split_frame(dataset) for split, dataset in default.items()},
        full=split_frame(full),
        report=report,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def _class_counts(frame: pd.DataFrame) -> list[int]:
    return [int((frame["label"] == label).sum()) for label in range(len(CLASS_NAMES))]


def count_table(groups: dict[str, pd.DataFrame], first_column: str) -> str:
    """Images per class, total and patients for each group (split or fold), with an ``all`` row."""
    rows = []
    for name, frame in groups.items():
        counts = _class_counts(frame)
        rows.append([name, *counts, sum(counts), frame["patient_id"].nunique()])
    every = pd.concat(list(groups.values()), ignore_index=True)
    counts = _class_counts(every)
    rows.append(["all", *counts, sum(counts), every["patient_id"].nunique()])
    return _markdown_table([first_column, *CLASS_NAMES, "total", "patients"], rows)


def per_class_table(frame: pd.DataFrame, column: str, title: str) -> str:
    """How many images of each class have each value of ``column`` (format, mode, source, licence)."""
    rows = []
    for value in sorted(frame[column].unique()):
        subset = frame[frame[column] == value]
        rows.append([f"`{value}`" if value else "(none)", *_class_counts(subset), len(subset)])
    return _markdown_table([title, *CLASS_NAMES, "total"], rows)


def resolution_table(frame: pd.DataFrame) -> str:
    """Width and height (pixels): min, median and max, per class and overall."""
    rows = []
    groups = [(name, frame[frame["label"] == label]) for label, name in enumerate(CLASS_NAMES)] + [("all", frame)]
    for name, subset in groups:
        if subset.empty:
            continue
        for column in ("width", "height"):
            values = subset[column].tolist()
            rows.append([name, column, min(values), _number(median(values)), max(values)])
    return _markdown_table(["images", "side", "min", "median", "max"], rows)


def licence_of(image_id: str) -> str:
    """The licence the reference list records for an image (empty: none stated upstream)."""
    entry = reference_entries().get(image_id.lower())
    if entry is None:
        return "unknown (not in the reference list)"
    return entry.license or "none stated upstream"


def _listed(files: list[str]) -> str:
    shown = ", ".join(f"`{name}`" for name in files[:MAX_LISTED])
    more = f" and {len(files) - MAX_LISTED} more" if len(files) > MAX_LISTED else ""
    return shown + more


def duplicates_text(report: Report, full: pd.DataFrame) -> str:
    """Exact and near duplicates the checks found, and identical bytes left in the exported data."""
    lines = []
    exact = [file for problem in report.problems if problem.kind == "duplicate_bytes" for file in problem.files]
    names = [file for problem in report.problems if problem.kind == "duplicate_name" for file in problem.files]
    near = [problem for problem in report.problems if problem.kind == "near_duplicate"]
    lines.append(
        f"- Files with bytes identical to another file of the same class, left out (one copy kept): {len(exact)}"
        + (f" ({_listed(exact)})." if exact else ".")
    )
    lines.append(
        f"- Files whose name repeats another file's name, left out: {len(names)}"
        + (f" ({_listed(names)})." if names else ".")
    )
    lines.append(
        f"- Near-duplicate pairs (perceptual hashes a few bits apart), kept and put in the same split and fold: "
        f"{len(near)}."
    )
    lines.extend(f"  - {' and '.join(f'`{name}`' for name in problem.files)}: {problem.message}" for problem in near)
    repeated = int(full["sha256"].duplicated().sum())
    lines.append(f"- Images in this export whose bytes equal another exported image: {repeated}.")
    return "\n".join(lines)


def left_out_text(report: Report) -> str:
    """Files the audit left out of the dataset and why, and files it ignored (not images)."""
    left_out = report.left_out_files()
    if not left_out:
        lines = ["No image file was left out: every image file found is in the dataset."]
    else:
        by_reason: dict[str, list[str]] = defaultdict(list)
        for name, reason in left_out:
            by_reason[reason].append(name)
        lines = [f"{len(left_out)} file(s) were left out:"]
        lines.extend(f"- {reason}: {len(names)} ({_listed(names)})" for reason, names in sorted(by_reason.items()))
    if report.ignored:
        ignored = Counter(reason for _, reason in report.ignored)
        lines.append("")
        lines.append(
            "Ignored (not images): " + ", ".join(f"{count} {reason}" for reason, count in sorted(ignored.items())) + "."
        )
    return "\n".join(lines)


def shortcut_section(shortcuts: ShortcutReport | None) -> str:
    """The shortcut-probe table with its one-sentence interpretation, or a line saying it was not computed."""
    if shortcuts is None:
        return (
            "**Shortcut probes: not computed for this export** (run `covid-ct shortcuts PATH --json FILE` and "
            "pass the file to `covid-ct export --shortcuts-json FILE`)."
        )
    from .shortcuts import format_summary, format_table, interpretation

    return "\n\n".join(
        [format_table(shortcuts, markdown=True), format_summary(shortcuts), f"**{interpretation(shortcuts)}**"]
    )


def version_history() -> str:
    """The version history as a Markdown list, the current version marked."""
    return "\n".join(
        f"- **{version}**{' (this version)' if version == DATASET_VERSION else ''}: {text}"
        for version, text in VERSION_HISTORY
    )


def load_example(repo_id: str | None, version: str) -> str:
    """The card's loading example: the Hub repository pinned to the version tag, or this folder when none is known."""
    if repo_id is None:
        return (
            'ds = load_dataset("path/to/this/folder")            # train / validation / test\n'
            'full = load_dataset("path/to/this/folder", "full")  # one split with `fold`'
        )
    return (
        f'ds = load_dataset("{repo_id}", revision="v{version}")           # train / validation / test\n'
        f'full = load_dataset("{repo_id}", "full", revision="v{version}")  # one split with `fold`'
    )


def names_repository(card: str, repo_id: str) -> bool:
    """Whether a rendered card's loading example names the Hub repository ``repo_id``."""
    return f'load_dataset("{repo_id}",' in card


def card_values(
    stats: CardStats, shortcuts: ShortcutReport | None = None, repo_id: str | None = None
) -> dict[str, str]:
    """Every placeholder of ``dataset_card.md`` and its value computed from ``stats``."""
    full = stats.full.assign(licence=stats.full["image_id"].map(licence_of))
    negatives, positives = (full[full["label"] == label] for label in range(len(CLASS_NAMES)))
    reference = reference_entries().values()
    found = compare_with_reference(full["image_id"].tolist())
    synthetic = (
        "> **SYNTHETIC DATA.** This export was built from a synthetic download made by `covid-ct demo` or the "
        "tests: the images are random shapes, not chest radiographs, and every number below describes them.\n"
        if stats.report.synthetic
        else ""
    )
    folds = {str(fold): full[full["fold"] == fold] for fold in sorted(full["fold"].unique())}
    return {
        "version": stats.version,
        "load_example": load_example(repo_id, stats.version),
        "synthetic_banner": synthetic,
        "n_images": str(len(full)),
        "n_negative": str(len(negatives)),
        "n_positive": str(len(positives)),
        "n_patients": str(full["patient_id"].nunique()),
        "n_patients_negative": str(negatives["patient_id"].nunique()),
        "n_patients_positive": str(positives["patient_id"].nunique()),
        "n_negative_cohen": str(int((negatives["source"] == "cohen").sum())),
        "n_negative_kermany": str(int((negatives["source"] == "kermany").sum())),
        "n_positive_cohen": str(int((positives["source"] == "cohen").sum())),
        "n_source_unknown": str(int((full["source"] == "unknown").sum())),
        "n_folds": str(len(folds)),
        "ref_total": str(len(reference)),
        "ref_negative": str(sum(entry.label == 0 for entry in reference)),
        "ref_positive": str(sum(entry.label == 1 for entry in reference)),
        "reference_summary": found.summary().removeprefix("reference list: "),
        "split_table": count_table(stats.splits, "split"),
        "fold_table": count_table(folds, "fold"),
        "resolution_table": resolution_table(full),
        "format_table": per_class_table(full, "format", "format"),
        "mode_table": per_class_table(full, "mode", "mode"),
        "source_table": per_class_table(full, "source", "source"),
        "licence_table": per_class_table(full, "licence", "licence (per image)"),
        "duplicates": duplicates_text(stats.report, full),
        "left_out": left_out_text(stats.report),
        "manifest_sha256": stats.manifest_sha256,
        "shortcut_section": shortcut_section(shortcuts),
        "version_history": version_history(),
    }


def render_card(
    stats: CardStats,
    configs: MetadataConfigs,
    infos: DatasetInfosDict,
    *,
    template: str,
    shortcuts: ShortcutReport | None = None,
    repo_id: str | None = None,
) -> str:
    """The dataset card: ``template`` with its numbers from ``stats``, and YAML for ``configs`` and ``infos``.

    The YAML keeps the template's fields and adds ``size_categories``, ``configs``, ``dataset_info`` (written
    by the ``datasets`` metadata classes themselves) and ``version``. ``shortcuts`` is a report of the same data,
    or ``None`` for a card that says the probes were not computed; ``repo_id`` is the Hub repository the loading
    example names (``None``: the example loads the folder).
    """
    source = DatasetCard(template)
    try:
        text = string.Template(source.text).substitute(card_values(stats, shortcuts, repo_id))
    except (KeyError, ValueError) as error:
        raise UsageError(f"the dataset card source has a placeholder the renderer does not know: {error}") from error
    data = source.data
    data.size_categories = [size_category(len(stats.full))]
    configs.to_dataset_card_data(data)
    infos.to_dataset_card_data(data)
    data.version = stats.version
    return f"---\n{data.to_yaml()}\n---\n{text.lstrip()}"


def card_version(card_path: str | os.PathLike[str]) -> str | None:
    """The dataset version a rendered card states in its YAML (``None`` when it states none)."""
    version = DatasetCard.load(Path(card_path)).data.get("version")
    return None if version is None else str(version)


__all__ = [
    "TEMPLATE_PATHS",
    "CardStats",
    "card_values",
    "card_version",
    "collect_stats",
    "load_example",
    "load_template",
    "names_repository",
    "render_card",
    "size_category",
]
