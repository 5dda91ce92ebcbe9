"""Write the folder that goes to the Hugging Face Hub: Parquet shards, the dataset card, the manifest.

:func:`export_dataset` builds both configs with :func:`covid_ct_scan_images.prepare` and writes::

    OUT/
      README.md                                  the dataset card (YAML header + text), see card.py
      data/default/{train,validation,test}-00000-of-00001.parquet
      data/full/train-00000-of-00001.parquet     with the `fold` column
      splits_manifest.csv                        image_id, label, patient_id, split, fold
      audit_report.json                          what the checks found (local paths removed)
      shortcut_probes.json                       the shortcut audit, when it was computed or given

The shards are written with ``datasets.Dataset.to_parquet`` (the same writer ``push_to_hub`` uses), so
they carry the ``datasets`` features (``ClassLabel`` names included) and the original image bytes; the
image ``path`` is the file name only. Plain ``datasets.load_dataset(OUT)`` reads the folder without this
library. The folder is written next to ``OUT`` and renamed into place, so a failed export leaves no
half-written folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import datasets

from .api import PreparedDataset, prepare
from .builder import MANIFEST_FILENAME, REPORT_FILENAME
from .errors import DatasetError, UsageError

if TYPE_CHECKING:
    from .shortcuts import ShortcutReport

#: Configs that every export holds, in the order the card lists them.
EXPORT_CONFIGS: tuple[str, ...] = ("default", "full")

#: Folder of the Parquet shards inside an export; one subfolder per config.
DATA_DIR = "data"

#: The dataset card inside an export (the name the Hub reads).
CARD_FILENAME = datasets.config.REPOCARD_FILENAME

#: The shortcut audit saved with an export (the format of ``covid-ct shortcuts --json``).
SHORTCUTS_FILENAME = "shortcut_probes.json"

#: Every top-level name an export may contain (used to recognise an export folder).
EXPORT_ENTRIES = frozenset({CARD_FILENAME, DATA_DIR, MANIFEST_FILENAME, REPORT_FILENAME, SHORTCUTS_FILENAME})

#: Placeholder for this machine's folders in the published audit report.
LOCAL_PLACEHOLDER = "<local>"


@dataclass
class ExportResult:
    """An export folder, the files in it (POSIX paths relative to it) and the builds it came from."""

    out_dir: Path
    files: list[str]
    builds: dict[str, PreparedDataset]
    card: str


def shard_paths(split: str, num_shards: int, config: str) -> list[str]:
    """Paths (relative to the export) of the shards of one split, named like ``push_to_hub`` names them."""
    return [f"{DATA_DIR}/{config}/{split}-{index:05d}-of-{num_shards:05d}.parquet" for index in range(num_shards)]


def split_pattern(config: str, split: str) -> str:
    """The ``data_files`` pattern of one split in the card's ``configs`` (relative to the export)."""
    return f"{DATA_DIR}/{config}/{split}-*.parquet"


def write_shards(dataset: datasets.Dataset, out_dir: Path, config: str, split: str, max_shard_size: int) -> list[str]:
    """Write ``dataset`` as Parquet shards of at most about ``max_shard_size`` bytes; return their paths."""
    num_shards = max(1, min(len(dataset), int(dataset.data.nbytes / max_shard_size) + 1))
    paths = shard_paths(split, num_shards, config)
    for index, relative in enumerate(paths):
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        dataset.shard(num_shards=num_shards, index=index, contiguous=True).to_parquet(str(target))
    return paths


def is_export_folder(path: Path) -> bool:
    """Whether ``path`` is a folder written by :func:`export_dataset` (a card, Parquet shards, nothing else)."""
    if not (path / CARD_FILENAME).is_file() or not (path / DATA_DIR).is_dir():
        return False
    return {entry.name for entry in path.iterdir()} <= EXPORT_ENTRIES and any((path / DATA_DIR).rglob("*.parquet"))


def export_files(out_dir: Path) -> list[str]:
    """Every file of an export folder, as sorted POSIX paths relative to it."""
    return sorted(path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*") if path.is_file())


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a folder; choose another output folder.")
    if not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UsageError(
            f"{out_dir} is not empty; choose a new folder, or pass --overwrite to replace an earlier export."
        )
    if not is_export_folder(out_dir):
        raise UsageError(f"{out_dir} is not empty and is not an earlier export; it is left untouched.")


def _scrub(value: object, replacements: list[tuple[str, str]]) -> object:
    """Replace local folder names in every string of a JSON-like value."""
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return value
    if isinstance(value, list | tuple):
        return [_scrub(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, replacements) for key, item in value.items()}
    return value


def public_report(report: dict, data_dir: str | os.PathLike[str] | None) -> dict:
    """The audit report without this machine's folders: the folders above the raw download become ``<local>``.

    Names below the given path stay (``<local>/real_sample/COVID-19-CT SCAN IMAGES_COVID_datasets``), so the
    report still says where in the download a file was.
    """
    folders = set()
    for path in (report.get("root"), data_dir):
        if path:
            folders.add(os.fspath(Path(path).parent))
            folders.add(os.fspath(Path(path).expanduser().resolve().parent))
    # Shortest first: a parent is replaced before a longer folder that starts with it.
    replacements = [(folder, LOCAL_PLACEHOLDER) for folder in sorted(folders, key=len) if folder not in ("", "/", ".")]
    return _scrub(report, replacements)  # type: ignore[return-value]


def _shortcut_report(
    full: datasets.Dataset, shortcuts_json: str | os.PathLike[str] | None, compute: bool, n_bootstrap: int
) -> ShortcutReport | None:
    """The shortcut audit for the card: read from a saved run, computed now, or ``None`` (not computed)."""
    from .shortcuts import from_json, run_shortcut_probes

    if shortcuts_json is not None:
        try:
            report = from_json(shortcuts_json)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(f"cannot read the shortcut audit {shortcuts_json}: {error}") from error
        labels = full["label"]
        expected = (len(labels), sum(labels), len(set(full["patient_id"])))
        found = (report.n_images, report.n_positive, report.n_patients)
        if found != expected:
            raise DatasetError(
                f"the shortcut audit {shortcuts_json} was computed on other data (images, positives, patients: "
                f"{found[0]}, {found[1]}, {found[2]}) than this export ({expected[0]}, {expected[1]}, {expected[2]}); "
                "run `covid-ct shortcuts` on this download again or leave the option out."
            )
        return report
    if compute:
        return run_shortcut_probes(full, n_bootstrap=n_bootstrap)
    return None


@dataclass
class _Staging:
    """A temporary folder next to the target that becomes the export when complete."""

    target: Path

    def __post_init__(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-", dir=self.target.parent))

    def commit(self) -> None:
        """Put the staged folder in place of the target (an earlier export is removed after the swap)."""
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            self.target.rename(old)
        self.path.rename(self.target)
        if old is not None:
            shutil.rmtree(old)

    def discard(self) -> None:
        """Remove the staged folder."""
        shutil.rmtree(self.path, ignore_errors=True)


def export_dataset(
    data_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    shortcuts_json: str | os.PathLike[str] | None = None,
    compute_shortcuts: bool = True,
    n_bootstrap: int | None = None,
    max_shard_size: int | str | None = None,
    overwrite: bool = False,
    card_template: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    **options: object,
) -> ExportResult:
    """Build both configs from the raw download and write the Hub folder to ``out_dir``.

    ``options`` are the build options of :func:`covid_ct_scan_images.prepare` (``strict``,
    ``splits_manifest``, ...). The shortcut table of the card comes from ``shortcuts_json`` (a saved
    ``covid-ct shortcuts`` run, checked to be of the same data), or is computed now
    (``compute_shortcuts``; ``n_bootstrap`` resamples for its intervals, default the audit's), or the
    card says it was not computed. ``out_dir`` must be new or empty; ``overwrite`` replaces an earlier
    export (never another folder). ``card_template`` replaces the repository's ``dataset_card.md``;
    ``repo_id`` is the Hub repository the card's loading example names.
    """
    from .card import load_template, render_card
    from .shortcuts import DEFAULT_BOOTSTRAP, to_json

    target = Path(out_dir).expanduser().resolve()
    _check_target(target, overwrite)
    template = load_template(card_template)  # fail before the (slow) build when the template is missing
    size = datasets.utils.py_utils.convert_file_size_to_int(max_shard_size or datasets.config.MAX_SHARD_SIZE)
    builds = {config: prepare(data_dir, config=config, cache_dir=cache_dir, **options) for config in EXPORT_CONFIGS}
    shortcuts = _shortcut_report(
        builds["full"].dataset["train"],
        shortcuts_json,
        compute_shortcuts,
        DEFAULT_BOOTSTRAP if n_bootstrap is None else n_bootstrap,
    )
    staged = _Staging(target)
    try:
        staging = staged.path
        for config, build in builds.items():
            for split, dataset in build.dataset.items():
                write_shards(dataset, staging, config, split, size)
        default = builds["default"]
        if default.manifest_path.read_bytes() != builds["full"].manifest_path.read_bytes():
            raise DatasetError("the default and full builds disagree on the split manifest; rebuild both configs.")
        shutil.copyfile(default.manifest_path, staging / MANIFEST_FILENAME)
        report = public_report(json.loads(default.report_path.read_text(encoding="utf-8")), data_dir)
        (staging / REPORT_FILENAME).write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if shortcuts is not None:
            to_json(shortcuts, staging / SHORTCUTS_FILENAME)
        card = render_card(staging, shortcuts, template=template, repo_id=repo_id)
        (staging / CARD_FILENAME).write_text(card, encoding="utf-8")
    except BaseException:
        staged.discard()
        raise
    staged.commit()
    return ExportResult(out_dir=target, files=export_files(target), builds=builds, card=card)


__all__ = [
    "CARD_FILENAME",
    "DATA_DIR",
    "EXPORT_CONFIGS",
    "SHORTCUTS_FILENAME",
    "ExportResult",
    "export_dataset",
    "export_files",
    "is_export_folder",
    "public_report",
    "shard_paths",
    "split_pattern",
]
