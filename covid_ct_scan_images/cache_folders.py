"""Where this library keeps its builds and the zips it extracts: a folder of its own inside the datasets cache."""

from __future__ import annotations

import os
from pathlib import Path

from .layout import DATASET_NAME

#: Folder inside the datasets cache that holds everything this library writes there (builds, extracted zips).
#: It is deliberately not named like the dataset: when ``datasets.load_dataset("covid_ct_scan_images")`` runs
#: without ``import covid_ct_scan_images``, datasets falls back to any cache folder named after the dataset
#: ("Using the latest cached version ...") and would return an old build without the input fingerprint check.
LIBRARY_CACHE_FOLDER = f"{DATASET_NAME}-library"


def library_cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The folder inside the datasets cache (or ``cache_dir``) that holds this library's builds."""
    if cache_dir:
        return Path(cache_dir) / LIBRARY_CACHE_FOLDER
    import datasets.config  # only here: the commands that never build do not import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / LIBRARY_CACHE_FOLDER


def library_work_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The library's own working folder (zip extraction) inside the datasets cache."""
    return library_cache_root(cache_dir) / "extracted"
