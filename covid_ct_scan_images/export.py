"""Write the folder that goes to the Hugging Face Hub: Parquet shards, the dataset card, the manifest.

:func:`export_dataset` builds both configs with :func:`covid_ct_scan_images.prepare` and writes::

    OUT/
      README.md                                  the dataset card (YAML header + text), see card.py
      data/default/{train,validation,test}-00000-of-00001.parquet
      data/full/train-00000-of-00001.parquet     with the `fold` column
      splits_manifest.csv                        image_id, label, patient_id, split, fold
      audit_report.json                          what the checks found (local folders become ``<local>``)
      shortcut_probes.json                       the shortcut audit, when it was computed or given

The shards are written with ``datasets.Dataset.to_parquet`` (the writer ``push_to_hub`` uses), so they carry
the builder's ``Features`` as they are and the original image bytes; the image ``path`` is the file name
only. Plain ``datasets.load_dataset(OUT)`` reads the folder without this library. Each shard is written to
memory and then to disk by Python, so a full disk or Ctrl-C is an ordinary exception (pyarrow aborts the
process when its own file writes fail); the folder is staged next to ``OUT`` and renamed into place, and
removed on any failure.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import pyarrow as pa
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard
from tqdm.auto import tqdm

from .api import PreparedDataset, prepare
from .audit_report import Report
from .builder import MANIFEST_FILENAME, REPORT_FILENAME
from .card import collect_stats, load_template, render_card
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

#: Placeholder for this machine's folders in every exported file.
LOCAL_PLACEHOLDER = "<local>"

#: Largest shard, in bytes of Arrow data (the size ``push_to_hub`` aims at by default).
MAX_SHARD_BYTES = 500_000_000


@dataclass
class ExportResult:
    """An export folder, the files in it (POSIX paths relative to it) and the builds it came from."""

    out_dir: Path
    files: list[str]
    builds: dict[str, PreparedDataset]
    card: str


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


def read_card_template(path: str | os.PathLike[str] | None) -> str:
    """The card source, checked to be readable UTF-8 with a YAML header (a :class:`UsageError` names the file)."""
    template = load_template(path)
    try:
        DatasetCard(template)
    except ValueError as error:
        raise UsageError(
            f"the dataset card source {path or 'dataset_card.md'} has an invalid YAML header: {error}"
        ) from error
    return template


def read_shortcuts(path: str | os.PathLike[str]) -> ShortcutReport:
    """A saved ``covid-ct shortcuts --json`` run (a :class:`UsageError` names the file when it is not one)."""
    from .shortcuts.report import from_dict

    hint = "pass the JSON file written by `covid-ct shortcuts PATH --json FILE`"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise UsageError(f"the shortcut audit {path} holds a JSON {type(data).__name__}, not a report; {hint}.")
        return from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"cannot read the shortcut audit {path}: {type(error).__name__}: {error}; {hint}.") from error


def _check_shortcuts_match(report: ShortcutReport, full: datasets.Dataset, path: str | os.PathLike[str]) -> None:
    labels = full["label"]
    expected = (len(labels), sum(labels), len(set(full["patient_id"])))
    found = (report.n_images, report.n_positive, report.n_patients)
    if found != expected:
        raise DatasetError(
            f"the shortcut audit {path} was computed on other data (images, positives, patients: "
            f"{found[0]}, {found[1]}, {found[2]}) than this export ({expected[0]}, {expected[1]}, {expected[2]}); "
            "run `covid-ct shortcuts` on this download again or leave the option out."
        )


def local_folders(*paths: str | os.PathLike[str] | None) -> list[str]:
    """This machine's folders to hide: the parents of the given paths (as given and resolved) and the home folder.

    Names below a parent stay (``<local>/real_sample/COVID-19-CT SCAN IMAGES_COVID_datasets``), so a report
    still says where in the download a file was. Shortest first: a parent is replaced before a longer folder
    that starts with it.
    """
    folders = {os.fspath(Path.home())}
    for path in filter(None, paths):
        folders.add(os.fspath(Path(path).parent))
        folders.add(os.fspath(Path(path).expanduser().resolve().parent))
    return sorted((folder for folder in folders if folder not in ("", "/", ".")), key=len)


def scrub(value: object, folders: list[str]) -> object:
    """``value`` (a string or a JSON-like structure) with every folder in ``folders`` replaced by ``<local>``."""
    if isinstance(value, str):
        for folder in folders:
            value = value.replace(folder, LOCAL_PLACEHOLDER)
        return value
    if isinstance(value, list | tuple):
        return [scrub(item, folders) for item in value]
    if isinstance(value, dict):
        return {key: scrub(item, folders) for key, item in value.items()}
    return value


def plan_shards(builds: dict[str, PreparedDataset], max_shard_bytes: int) -> dict[str, datasets.Dataset]:
    """Every shard of the export: its path (named like ``push_to_hub`` names them) and its rows."""
    shards = {}
    for config, build in builds.items():
        for split, dataset in build.dataset.items():
            count = max(1, min(len(dataset), math.ceil(dataset.data.nbytes / max_shard_bytes)))
            for index in range(count):
                path = f"{DATA_DIR}/{config}/{split}-{index:05d}-of-{count:05d}.parquet"
                shards[path] = dataset.shard(num_shards=count, index=index, contiguous=True)
    return shards


def hub_metadata(builds: dict[str, PreparedDataset], folder: Path) -> tuple[MetadataConfigs, DatasetInfosDict]:
    """The card's ``configs`` (one ``data_files`` pattern per split) and ``dataset_info`` (the builder's features)."""
    configs, infos = {}, {}
    for config, build in builds.items():
        splits = build.dataset
        configs[config] = {
            "data_files": [{"split": split, "path": f"{DATA_DIR}/{config}/{split}-*.parquet"} for split in splits]
        }
        split_infos = [datasets.SplitInfo(name, part.data.nbytes, len(part)) for name, part in splits.items()]
        infos[config] = datasets.DatasetInfo(
            config_name=config,
            features=next(iter(splits.values())).features,
            splits=datasets.SplitDict({info.name: info for info in split_infos}),
            download_size=sum(path.stat().st_size for path in (folder / DATA_DIR / config).glob("*.parquet")),
            dataset_size=sum(info.num_bytes for info in split_infos),
        )
    return MetadataConfigs(configs), DatasetInfosDict(infos)


def _disk_full(folder: Path, needed: int) -> DatasetError:
    free = shutil.disk_usage(folder).free
    return DatasetError(
        f"not enough space in {folder}: the export needs about {needed / 1e6:,.0f} MB and {free / 1e6:,.0f} MB "
        "are free; free some space or choose an output folder on another disk. Nothing was left behind."
    )


def write_shards(shards: dict[str, datasets.Dataset], folder: Path, progress: bool) -> None:
    """Write each shard as Parquet into memory, then to ``folder`` (so an OS error stays a Python exception).

    One bar for all shards when ``progress``; ``datasets``' own bar per shard is silenced meanwhile.
    """
    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        for relative, rows in tqdm(shards.items(), desc="writing Parquet shards", unit="shard", disable=not progress):
            sink = pa.BufferOutputStream()
            rows.to_parquet(sink)
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as stream:
                stream.write(memoryview(sink.getvalue()))
    finally:
        if enabled:
            datasets.enable_progress_bars()


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _stage(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))


def _replace(target: Path, staging: Path) -> None:
    """Put the staged folder in place of the target (an earlier export is removed after the swap)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old)


def export_dataset(
    data_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    shortcuts_json: str | os.PathLike[str] | None = None,
    compute_shortcuts: bool = True,
    n_bootstrap: int | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    overwrite: bool = False,
    card_template: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    progress: bool = False,
    note: Callable[[str], None] | None = None,
    **options: object,
) -> ExportResult:
    """Build both configs from the raw download and write the Hub folder to ``out_dir``.

    ``options`` are the build options of :func:`covid_ct_scan_images.prepare` (``strict``,
    ``splits_manifest``, ...). The shortcut table of the card comes from ``shortcuts_json`` (a saved
    ``covid-ct shortcuts`` run, checked to be of the same data), or is computed now
    (``compute_shortcuts``; ``n_bootstrap`` resamples for its intervals, default the audit's), or the
    card says it was not computed. ``out_dir`` must be new or empty; ``overwrite`` replaces an earlier
    export (never another folder). ``card_template`` replaces the repository's ``dataset_card.md``;
    ``repo_id`` is the Hub repository the card's loading example names (``None``: the example loads the
    folder). Every side input is checked before the build. ``progress`` shows a bar per shard on stderr;
    ``note`` receives a line when a slow step that could have been skipped (the shortcut probes) starts.
    """
    from .shortcuts import DEFAULT_BOOTSTRAP, run_shortcut_probes, to_dict

    target = Path(out_dir).expanduser().resolve()
    _check_target(target, overwrite)
    template = read_card_template(card_template)
    saved = read_shortcuts(shortcuts_json) if shortcuts_json is not None else None
    builds = {config: prepare(data_dir, config=config, cache_dir=cache_dir, **options) for config in EXPORT_CONFIGS}
    default, full = builds["default"], builds["full"].dataset["train"]
    manifest = default.manifest_path.read_bytes()
    if manifest != builds["full"].manifest_path.read_bytes():
        raise DatasetError("the default and full builds disagree on the split manifest; rebuild both configs.")
    shortcuts = saved
    if saved is not None:
        _check_shortcuts_match(saved, full, shortcuts_json)  # type: ignore[arg-type]
    elif compute_shortcuts:
        if note is not None:
            note(
                "computing the shortcut probes for the card (minutes on the full download); --shortcuts-json FILE "
                "reuses a saved `covid-ct shortcuts PATH --json FILE` run, --no-shortcuts skips them"
            )
        shortcuts = run_shortcut_probes(full, n_bootstrap=DEFAULT_BOOTSTRAP if n_bootstrap is None else n_bootstrap)
    report = json.loads(default.report_path.read_text(encoding="utf-8"))
    folders = local_folders(data_dir, report.get("root"), options.get("splits_manifest"), cache_dir)  # type: ignore[arg-type]
    shards = plan_shards(builds, max_shard_bytes)
    needed = sum(dataset.data.nbytes for dataset in shards.values())
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free < needed:
        raise _disk_full(target.parent, needed)
    staging = _stage(target)
    try:
        write_shards(shards, staging, progress)
        (staging / MANIFEST_FILENAME).write_bytes(manifest)
        public_report = scrub(report, folders)
        _write_text(staging / REPORT_FILENAME, json.dumps(public_report, indent=2, ensure_ascii=False) + "\n")
        if shortcuts is not None:
            _write_text(staging / SHORTCUTS_FILENAME, json.dumps(scrub(to_dict(shortcuts), folders), indent=2) + "\n")
        stats = collect_stats(default.dataset, full, Report.from_dict(public_report), manifest)  # type: ignore[arg-type]
        configs, infos = hub_metadata(builds, staging)
        card = render_card(stats, configs, infos, template=template, shortcuts=shortcuts, repo_id=repo_id)
        card = scrub(card, folders)
        _write_text(staging / CARD_FILENAME, card)  # type: ignore[arg-type]
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            raise _disk_full(target.parent, needed) from error
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replace(target, staging)
    return ExportResult(out_dir=target, files=export_files(target), builds=builds, card=card)  # type: ignore[arg-type]


__all__ = [
    "CARD_FILENAME",
    "DATA_DIR",
    "EXPORT_CONFIGS",
    "SHORTCUTS_FILENAME",
    "ExportResult",
    "export_dataset",
    "export_files",
    "is_export_folder",
    "local_folders",
    "read_shortcuts",
    "scrub",
]
