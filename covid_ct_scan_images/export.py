"""Write the folder that goes to the Hugging Face Hub: Parquet shards, the dataset card, the manifest.

Layout: ``README.md`` (the card, see card.py), ``data/<config>/<split>-0000i-of-0000n.parquet`` for the
``default`` and ``full`` configs, ``splits_manifest.csv``, ``audit_report.json`` and, when computed or given,
``shortcut_probes.json``; plain ``datasets.load_dataset(OUT)`` reads it. Local folders become ``<local>``.
Each shard streams to its file without letting a full disk abort pyarrow, and the folder is staged next to ``OUT``,
renamed into place, and removed on any failure (:mod:`.atomic_files`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import datasets
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from tqdm.auto import tqdm

from .api import PreparedDataset, prepare
from .atomic_files import HeldErrorFile, staged_folder
from .builder import MANIFEST_FILENAME, REPORT_FILENAME
from .card import load_template, render_card
from .cores import usable_cores
from .errors import DatasetError, UsageError
from .shortcuts.report import ShortcutReport

#: Configs that every export holds, in the order the card lists them.
EXPORT_CONFIGS: tuple[str, ...] = ("default", "full")
DATA_DIR = "data"
CARD_FILENAME = datasets.config.REPOCARD_FILENAME
SHORTCUTS_FILENAME = "shortcut_probes.json"

#: Every top-level name an export may contain (used to recognise an export folder).
EXPORT_ENTRIES = frozenset({CARD_FILENAME, DATA_DIR, MANIFEST_FILENAME, REPORT_FILENAME, SHORTCUTS_FILENAME})
LOCAL_PLACEHOLDER = "<local>"

#: Largest shard, in bytes of Arrow data (the size ``push_to_hub`` aims at by default).
MAX_SHARD_BYTES = 500_000_000


@dataclasses.dataclass
class ExportResult:
    """An export folder, the files in it (POSIX paths relative to it), the builds it came from and its card."""

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
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a folder; choose another output folder.")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UsageError(
            f"{out_dir} is not empty; choose a new folder, or pass --overwrite to replace an earlier export."
        )
    if not is_export_folder(out_dir):
        raise UsageError(f"{out_dir} is not empty and is not an earlier export; it is left untouched.")


def local_folders(*paths: str | os.PathLike[str] | None) -> list[str]:
    """This machine's folders to hide: the parents of the given paths (as given and resolved) and the home folder.

    Names below a parent stay (``<local>/real_sample/...``), so a report still says where in the download a
    file was. Shortest first: a parent is replaced before a longer folder that starts with it.
    """
    folders = {os.fspath(Path.home())}
    for path in filter(None, paths):
        folders.add(os.fspath(Path(path).parent))
        folders.add(os.fspath(Path(path).expanduser().resolve().parent))
    return sorted((folder for folder in folders if folder not in ("", "/", ".")), key=len)


def scrub(text: str, folders: list[str]) -> str:
    """``text`` with each folder in ``folders`` (as written, or escaped in a JSON string) replaced by ``<local>``."""
    for folder in folders:
        for spelling in (folder, json.dumps(folder, ensure_ascii=False)[1:-1]):
            text = text.replace(spelling, LOCAL_PLACEHOLDER)
    return text


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


def _write_shard(path: Path, rows: datasets.Dataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with HeldErrorFile(path) as sink:
        rows.to_parquet(sink)


def write_shards(shards: dict[str, datasets.Dataset], folder: Path, progress: bool) -> None:
    """Write each shard as Parquet to ``folder``, one per core at a time, under one bar (``datasets``' bars off).

    pyarrow encodes a shard without holding the interpreter lock most of the time, so threads overlap the shards;
    each file's bytes are those of a shard written alone. The first error stops the shards not yet started.
    """
    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    pool = ThreadPoolExecutor(max_workers=usable_cores())
    try:
        written = [pool.submit(_write_shard, folder / relative, rows) for relative, rows in shards.items()]
        for future in tqdm(
            as_completed(written), total=len(written), desc="writing Parquet shards", unit="shard", disable=not progress
        ):
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if enabled:
            datasets.enable_progress_bars()


def hub_metadata(builds: dict[str, PreparedDataset], folder: Path) -> tuple[MetadataConfigs, DatasetInfosDict]:
    """The card's ``configs`` (``data_files`` per split) and ``dataset_info`` (the builder's, with the shards' size)."""
    configs, infos = {}, {}
    for config, build in builds.items():
        patterns = [{"split": split, "path": f"{DATA_DIR}/{config}/{split}-*.parquet"} for split in build.dataset]
        configs[config] = {"data_files": patterns}
        shards = (folder / DATA_DIR / config).glob("*.parquet")
        info = next(iter(build.dataset.values())).info
        infos[config] = dataclasses.replace(info, download_size=sum(path.stat().st_size for path in shards))
    return MetadataConfigs(configs), DatasetInfosDict(infos)


def _build_configs(
    data_dir: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None, options: dict[str, object]
) -> dict[str, PreparedDataset]:
    """Every exported config, built (or reused from the cache) with the same split manifest."""
    builds = {config: prepare(data_dir, config=config, cache_dir=cache_dir, **options) for config in EXPORT_CONFIGS}
    if len({build.manifest_path.read_bytes() for build in builds.values()}) != 1:
        raise DatasetError("the default and full builds disagree on the split manifest; rebuild both configs.")
    return builds


def _shortcut_audit(
    full: PreparedDataset, n_bootstrap: int | None, note: Callable[[str], None] | None
) -> ShortcutReport:
    """The shortcut report of ``full``: the one the file store remembers for the same input, else computed now.

    When ``full`` was built by this call, its plan holds every image's hash, so the images' bytes are not read
    back from the Arrow cache to find the features and the report; either way the report is the same.
    """
    from .planned_shortcuts import remembered_report_of_plan, shortcut_report_of_plan
    from .shortcuts.probes import DEFAULT_BOOTSTRAP, ProbeSettings, remembered_shortcut_report, run_shortcut_probes

    settings = ProbeSettings(n_bootstrap=DEFAULT_BOOTSTRAP if n_bootstrap is None else n_bootstrap)
    tell = note or (lambda _line: None)
    dataset, plan = full.dataset["train"], full.plan
    if plan is not None:
        remembered = remembered_report_of_plan(plan, settings)
    else:
        remembered = remembered_shortcut_report(dataset, settings)
    if remembered is not None:
        tell("reusing the shortcut report that `covid-ct shortcuts` computed for this input")
        return remembered
    tell(
        "computing the shortcut probes for the card (minutes on the full download); --shortcuts-json FILE "
        "reuses a saved `covid-ct shortcuts PATH --json FILE` run, --no-shortcuts skips them"
    )
    if plan is not None:
        return shortcut_report_of_plan(plan, settings)
    return run_shortcut_probes(dataset, n_bootstrap=settings.n_bootstrap)


def _write_card_and_reports(
    folder: Path,
    builds: dict[str, PreparedDataset],
    shortcuts: ShortcutReport | None,
    folders: list[str],
    template: str,
    repo_id: str | None,
) -> str:
    """Write the manifest, the audit report, the shortcut report and the card (scrubbed) next to the shards."""
    shutil.copyfile(builds["default"].manifest_path, folder / MANIFEST_FILENAME)
    card = render_card(template, builds, *hub_metadata(builds, folder), shortcuts=shortcuts, repo_id=repo_id)
    texts = {CARD_FILENAME: card, REPORT_FILENAME: builds["default"].report.to_json() + "\n"}
    if shortcuts is not None:
        texts[SHORTCUTS_FILENAME] = shortcuts.to_json()
    for name, text in texts.items():
        (folder / name).write_text(scrub(text, folders), encoding="utf-8")
    return scrub(card, folders)


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

    ``options`` go to :func:`covid_ct_scan_images.prepare`. The card's shortcut table comes from
    ``shortcuts_json`` (a saved ``covid-ct shortcuts`` run of the same data), else from the file store or a
    new run (``compute_shortcuts``; ``n_bootstrap`` resamples), else says it was not computed. ``out_dir`` must
    be new or empty; ``overwrite`` replaces an earlier export only. ``card_template`` replaces
    ``dataset_card.md``; ``repo_id`` is the repository the card's loading example names. Side inputs are
    checked before the build. ``progress`` shows a bar on stderr; ``note`` hears which shortcut report is used.
    """
    target = Path(out_dir).expanduser().resolve()
    _check_target(target, overwrite)
    template = load_template(card_template)
    shortcuts = ShortcutReport.from_json(shortcuts_json) if shortcuts_json is not None else None
    builds = _build_configs(data_dir, cache_dir, options)
    full = builds["full"].dataset["train"]
    if shortcuts is not None:
        shortcuts.check_computed_on(full, shortcuts_json)  # type: ignore[arg-type]
    elif compute_shortcuts:
        shortcuts = _shortcut_audit(builds["full"], n_bootstrap, note)
    root = builds["default"].report.root
    folders = local_folders(data_dir, root, options.get("splits_manifest"), cache_dir)  # type: ignore[arg-type]
    shards = plan_shards(builds, max_shard_bytes)
    with staged_folder(target, sum(shard.data.nbytes for shard in shards.values()), "the export") as staging:
        write_shards(shards, staging, progress)
        card = _write_card_and_reports(staging, builds, shortcuts, folders, template, repo_id)
    return ExportResult(out_dir=target, files=export_files(target), builds=builds, card=card)
