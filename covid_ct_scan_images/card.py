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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import pandas as pd
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard
from PIL import Image

from .errors import UsageError
from .layout import CLASS_NAMES
from .reference import compare_with_reference, reference_entries
from .shortcuts.report import ShortcutReport, format_markdown
from .synthetic import SYNTHETIC_BANNER
from .versions import DATASET_VERSION, VERSION_HISTORY

if TYPE_CHECKING:
    from .api import PreparedDataset

#: The card's source: ``dataset_card.md`` at the repository root in a source checkout (editable install); an installed
#: wheel carries the same file inside the package (``pyproject.toml``, ``force-include``).
TEMPLATE_PATHS = (
    Path(__file__).resolve().parent.parent / "dataset_card.md",
    Path(__file__).resolve().parent / "dataset_card.md",
)

#: Hugging Face ``size_categories`` values, one per decimal order of magnitude of the row count from a thousand.
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B")

NOT_COMPUTED = (
    "**Shortcut probes: not computed for this export** (run `covid-ct shortcuts PATH --json FILE` and "
    "pass the file to `covid-ct export --shortcuts-json FILE`)."
)


def load_template(path: str | os.PathLike[str] | None = None) -> str:
    """The card's source text: ``path``, or ``dataset_card.md``; a :class:`UsageError` names a bad file."""
    if path is not None:
        source = Path(path)
    else:
        source = next((candidate for candidate in TEMPLATE_PATHS if candidate.is_file()), TEMPLATE_PATHS[0])
    try:
        template = source.read_text(encoding="utf-8")
        DatasetCard(template)
    except UnicodeDecodeError as error:
        message = f"the dataset card source {source} is not UTF-8 text (byte {error.start}); save it as UTF-8."
        raise UsageError(message) from error
    except OSError as error:
        raise UsageError(
            f"cannot read the dataset card source {source}: {error.strerror}. It is `dataset_card.md` at the root "
            "of the covid_ct_scan_images repository (installed wheels carry a copy); reinstall the package or pass "
            "--card-template FILE."
        ) from error
    except ValueError as error:
        raise UsageError(f"the dataset card source {source} has an invalid YAML header: {error}") from error
    return template


def size_category(n_rows: int) -> str:
    """The Hugging Face ``size_categories`` value for ``n_rows`` examples."""
    return SIZE_CATEGORIES[min(max(len(str(n_rows)) - 3, 0), len(SIZE_CATEGORIES) - 1)]


def image_format(data: bytes) -> str:
    """The image format of encoded bytes as Pillow names it (``JPEG``, ``PNG``), or ``unreadable``."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or "unknown"
    except OSError:
        return "unreadable"


def image_frame(dataset: datasets.Dataset) -> pd.DataFrame:
    """Every column but the image, plus each image's class, format (from its bytes) and licence (reference list)."""
    frame = dataset.remove_columns("image").to_pandas()
    images = dataset.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))
    frame["format"] = [image_format(image["bytes"]) for batch in images.iter(batch_size=32) for image in batch["image"]]
    frame["class"] = [CLASS_NAMES[label] for label in frame["label"]]
    licences = {name: entry.license or "none stated upstream" for name, entry in reference_entries().items()}
    frame["licence"] = frame["image_id"].str.lower().map(licences).fillna("unknown (not in the reference list)")
    return frame


def _markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def _with_all(frame: pd.DataFrame, column: str) -> list[tuple[object, pd.DataFrame]]:
    return [*frame.groupby(column, observed=True), ("all", frame)]


def count_table(frame: pd.DataFrame, column: str, header: str | None = None) -> str:
    """Images of each class, in total and their patients, for each value of ``column`` and for all images."""
    rows = []
    for value, group in _with_all(frame, column):
        per_class = group["label"].value_counts().reindex(range(len(CLASS_NAMES)), fill_value=0)
        rows.append([value, *per_class, len(group), group["patient_id"].nunique()])
    return _markdown_table([header or column, *CLASS_NAMES, "total", "patients"], rows)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def resolution_table(frame: pd.DataFrame) -> str:
    """Width and height (pixels): min, median and max, per class and overall."""
    rows = [
        [name, side, group[side].min(), _number(group[side].median()), group[side].max()]
        for name, group in _with_all(frame, "class")
        for side in ("width", "height")
    ]
    return _markdown_table(["images", "side", "min", "median", "max"], rows)


def version_history() -> str:
    """The version history as a Markdown list, the current version marked."""
    return "\n".join(
        f"- **{version}**{' (this version)' if version == DATASET_VERSION else ''}: {text}"
        for version, text in VERSION_HISTORY
    )


def names_repository(card: str, repo_id: str) -> bool:
    """Whether a rendered card's loading example names the Hub repository ``repo_id``."""
    return f'load_dataset("{repo_id}",' in card


def _class_counts(frame: pd.DataFrame, prefix: str) -> dict[str, str]:
    """``{prefix}_negative``, ``{prefix}_positive`` and ``{prefix}_total``: the rows of each class and all rows."""
    counts = {f"{prefix}_{name}": str(int((frame["label"] == label).sum())) for label, name in enumerate(CLASS_NAMES)}
    return counts | {f"{prefix}_total": str(len(frame))}


def card_values(
    builds: Mapping[str, PreparedDataset], shortcuts: ShortcutReport | None = None, repo_id: str | None = None
) -> dict[str, str]:
    """Every placeholder of ``dataset_card.md`` and its value computed from the ``default`` and ``full`` builds."""
    default = builds["default"]
    full = image_frame(builds["full"].dataset["train"])
    rows = default.dataset.remove_columns("image")
    splits = pd.concat(split.to_pandas().assign(split=name) for name, split in rows.items())
    splits["split"] = pd.Categorical(splits["split"], categories=list(rows))  # the table keeps the splits' order
    patients = {f"n_patients_{name}": str(group["patient_id"].nunique()) for name, group in full.groupby("class")}
    reference = pd.DataFrame(list(reference_entries().values()))
    found = compare_with_reference(full["image_id"].tolist())
    synthetic = f"> `{SYNTHETIC_BANNER}`: built by `covid-ct demo` or the tests; every number below describes them.\n"
    return {
        **_class_counts(full, "n"),
        **_class_counts(reference, "ref"),
        **patients,
        "version": DATASET_VERSION,
        "load_path": repo_id or "path/to/this/folder",
        "load_revision": f', revision="v{DATASET_VERSION}"' if repo_id else "",
        "synthetic_banner": synthetic if default.report.synthetic else "",
        "n_patients": str(full["patient_id"].nunique()),
        "n_folds": str(full["fold"].nunique()),
        "reference_summary": found.summary().removeprefix("reference list: "),
        "split_table": count_table(splits, "split"),
        "fold_table": count_table(full, "fold"),
        "resolution_table": resolution_table(full),
        **{f"{column}_table": count_table(full, column) for column in ("format", "mode", "source")},
        "licence_table": count_table(full, "licence", "licence (per image)"),
        "audit_summary": default.report.format_text(max_files=20),
        "n_repeated_bytes": str(int(full["sha256"].duplicated().sum())),
        "manifest_sha256": hashlib.sha256(default.manifest_path.read_bytes()).hexdigest(),
        "shortcut_section": NOT_COMPUTED if shortcuts is None else format_markdown(shortcuts),
        "version_history": version_history(),
    }


def render_card(
    template: str,
    builds: Mapping[str, PreparedDataset],
    configs: MetadataConfigs,
    infos: DatasetInfosDict,
    *,
    shortcuts: ShortcutReport | None = None,
    repo_id: str | None = None,
) -> str:
    """The dataset card: ``template`` with its numbers from ``builds``, and YAML for ``configs`` and ``infos``.

    The YAML keeps the template's fields and adds ``size_categories``, ``configs``, ``dataset_info`` (written
    by the ``datasets`` metadata classes themselves) and ``version``. ``shortcuts`` is a report of the same data,
    or ``None`` for a card that says the probes were not computed; ``repo_id`` is the Hub repository the loading
    example names (``None``: the example loads the folder).
    """
    source = DatasetCard(template)
    try:
        text = string.Template(source.text).substitute(card_values(builds, shortcuts, repo_id))
    except (KeyError, ValueError) as error:
        raise UsageError(f"the dataset card source has a placeholder the renderer does not know: {error}") from error
    data = source.data
    data.size_categories = [size_category(len(builds["full"].dataset["train"]))]
    configs.to_dataset_card_data(data)
    infos.to_dataset_card_data(data)
    data.version = DATASET_VERSION
    return f"---\n{data.to_yaml()}\n---\n{text.lstrip()}"


def card_version(card_path: str | os.PathLike[str]) -> str | None:
    """The dataset version a rendered card states in its YAML (``None`` when it states none)."""
    version = DatasetCard.load(Path(card_path)).data.get("version")
    return None if version is None else str(version)
