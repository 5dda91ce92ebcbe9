"""Load a finished build from a cache folder this process cannot write to.

``datasets`` creates lock files in the cache folder even to reuse a finished build, so a cache on a
read-only mount (or owned by another user) cannot be opened through the builder. A finished build is
complete and immutable, though: its Arrow files are memory-mapped with the public
``datasets.Dataset.from_file``, described by its ``dataset_info.json``. Where the cache folder of this
input and config is is learnt from a probe builder made in a scratch cache (the cache layout is
``datasets``' business, so it is asked, not copied).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import datasets

from .builder import DATASET_NAME, REPORT_FILENAME, CovidCTScanImages
from .errors import DatasetError
from .freshness import changed_files


def load_read_only_cache(
    data_dir: str | None,
    config: str,
    cache_dir: str | None,
    options: dict[str, object],
    error: OSError,
    verify: bool = False,
) -> tuple[datasets.DatasetDict, Path]:
    """The finished build of this input in the read-only ``cache_dir``, and its folder.

    Raises :class:`DatasetError` saying that the cache is read-only and what to do when there is no
    finished (and still current) build there. ``error`` is the write failure that brought us here.
    """
    cache_root = Path(cache_dir or datasets.config.HF_DATASETS_CACHE)
    with tempfile.TemporaryDirectory(prefix="covid-ct-probe-") as scratch:
        probe = CovidCTScanImages(config_name=config, data_dir=data_dir, cache_dir=scratch, **options)
        build_dir = cache_root / os.path.relpath(probe.cache_dir, scratch)
        located = probe.located
    what_to_do = (
        f"make {cache_root} writable, or pass --cache-dir (cache_dir=) a writable folder, where the dataset is "
        "built once and then reused"
    )
    finished = (build_dir / datasets.config.DATASET_INFO_FILENAME).is_file() and (build_dir / REPORT_FILENAME).is_file()
    if not finished:
        raise DatasetError(
            f"{cache_root}: the cache folder is not writable ({error.strerror or error}) and holds no finished "
            f"build of this input for config {config!r}; {what_to_do}."
        ) from error
    changed = changed_files(build_dir, located, verify)
    if changed:
        raise DatasetError(
            f"{build_dir}: the finished build in this read-only cache no longer matches the raw files "
            f"({', '.join(changed[:3])} changed); {what_to_do}."
        ) from error
    info = datasets.DatasetInfo.from_directory(str(build_dir))
    splits = {}
    for split in info.splits:
        shards = sorted(build_dir.glob(f"{DATASET_NAME}-{split}.arrow")) or sorted(
            build_dir.glob(f"{DATASET_NAME}-{split}-*-of-*.arrow")
        )
        if not shards:
            raise DatasetError(f"{build_dir}: the Arrow files of split {split!r} are missing; {what_to_do}.") from error
        parts = [datasets.Dataset.from_file(str(shard), info=info, split=split) for shard in shards]
        splits[split] = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    return datasets.DatasetDict(splits), build_dir
