"""The Python entry points: build (or reuse) the dataset and return it with its report."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from .audit_report import Report
from .builder import DATASET_NAME, MANIFEST_FILENAME, REPORT_FILENAME, CovidCTScanImages, saved_report
from .freshness import changed_files
from .plan import DatasetPlan
from .readonly import load_read_only_cache


@dataclass
class PreparedDataset:
    """A built dataset, where its cache is, its check report and whether the cache was reused."""

    dataset: datasets.DatasetDict
    cache_dir: Path
    report: Report
    reused: bool
    #: Files whose bytes no longer matched the cache (same size and modification time): it was rebuilt.
    rebuilt_for: list[str] = field(default_factory=list)
    #: The images as planned (with the hashes of their bytes) when this call built the dataset; ``None`` on reuse.
    plan: DatasetPlan | None = None

    @property
    def manifest_path(self) -> Path:
        """The split manifest saved next to the cache."""
        return self.cache_dir / MANIFEST_FILENAME

    @property
    def report_path(self) -> Path:
        """The check report (JSON) saved next to the cache."""
        return self.cache_dir / REPORT_FILENAME


def prepare(
    data_dir: str | os.PathLike[str] | None = None,
    config: str = "default",
    cache_dir: str | os.PathLike[str] | None = None,
    verify: bool = False,
    **options: object,
) -> PreparedDataset:
    """Build the dataset from the raw download (or reuse the cache when the input is unchanged).

    ``data_dir`` is the dataset folder, a folder containing it, or the downloaded ``.zip``; when
    omitted, ``$COVID_CT_DATA_DIR`` and then ``~/.cache/covid_ct_scan_images/manual`` are used.
    ``options`` are the fields of :class:`~covid_ct_scan_images.plan.BuildOptions` (``strict``,
    ``label_source``, ``splits_manifest``, ``name_column``, ``label_column``, ``full_decode``,
    ``max_image_pixels``).

    A cache is reused when no file's size, modification time or bytes changed: files whose inode
    change time (ctime) moved are hashed again. ``verify=True`` hashes every file first: use it on
    file systems whose ctime cannot be trusted (some network or FUSE mounts), or to be certain.
    """
    data_dir_text = None if data_dir is None else os.fspath(data_dir)
    cache_dir_text = None if cache_dir is None else os.fspath(cache_dir)
    try:
        builder = CovidCTScanImages(config_name=config, data_dir=data_dir_text, cache_dir=cache_dir_text, **options)
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        # datasets could not create its lock file: a finished build can still be read without one
        dataset, built = load_read_only_cache(data_dir_text, config, cache_dir_text, options, error, verify)
        report = Report.from_dict(saved_report(built))
        return PreparedDataset(dataset=dataset, cache_dir=built, report=report, reused=True)
    built = Path(builder.cache_dir)
    reused = (built / datasets.config.DATASET_INFO_FILENAME).exists()
    changed = changed_files(built, builder.located, verify) if reused else []
    if changed:
        reused = False
        builder.download_and_prepare(download_mode=datasets.DownloadMode.FORCE_REDOWNLOAD)
    else:
        builder.download_and_prepare()
    report = Report.from_dict(saved_report(built))
    dataset = builder.as_dataset()
    return PreparedDataset(
        dataset=dataset, cache_dir=built, report=report, reused=reused, rebuilt_for=changed, plan=builder.plan
    )


def load_dataset(
    data_dir: str | os.PathLike[str] | None = None,
    config: str = "default",
    cache_dir: str | os.PathLike[str] | None = None,
    verify: bool = False,
    **options: object,
) -> datasets.DatasetDict:
    """Return the dataset as a ``datasets.DatasetDict`` (see :func:`prepare` for the arguments)."""
    return prepare(data_dir, config=config, cache_dir=cache_dir, verify=verify, **options).dataset


__all__ = ["DATASET_NAME", "PreparedDataset", "load_dataset", "prepare"]
