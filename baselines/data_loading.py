"""The data of a run: load the splits, cut cross-validation folds, and record where the data came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets


def load_splits(data_dir: str | None, dataset: str | None, config: str) -> datasets.DatasetDict:
    """Load ``config`` from a raw download (``data_dir``, through the library) or a Hub id / exported folder."""
    if data_dir is not None:
        from covid_ct_scan_images import load_dataset

        return load_dataset(data_dir=data_dir, config=config)
    return datasets.load_dataset(dataset, config)


def fold_splits(full: datasets.Dataset, fold: int) -> datasets.DatasetDict:
    """Train / validation / test for one cross-validation fold of the ``full`` config.

    Test is fold ``fold``, validation is the next fold (cyclically), train is every other fold.
    Folds are patient-grouped and stratified, so no patient crosses the three splits.
    """
    folds = full["fold"]
    n_folds = number_of_folds(full)
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold {fold} out of range: the dataset has folds 0..{n_folds - 1}")
    validation = (fold + 1) % n_folds
    role = ["test" if f == fold else "validation" if f == validation else "train" for f in folds]
    return datasets.DatasetDict(
        {name: full.select([i for i, r in enumerate(role) if r == name]) for name in ("train", "validation", "test")}
    )


def number_of_folds(full: datasets.Dataset) -> int:
    """Number of cross-validation folds in the ``full`` config."""
    return max(full["fold"]) + 1


def published_version(dataset: str) -> str | None:
    """Dataset version named in the card of an exported folder or Hub dataset repository; None if unknown.

    ``datasets.load_dataset`` reports 0.0.0 for Parquet repositories, so the version is read from the ``version``
    key of the card's YAML that ``covid-ct export`` writes (a Hub id's card comes from the local cache when offline).
    """
    from huggingface_hub import hf_hub_download

    from covid_ct_scan_images.card import card_version

    try:
        card = Path(dataset) / "README.md"
        if not Path(dataset).is_dir():
            card = Path(hf_hub_download(dataset, "README.md", repo_type="dataset"))
        return card_version(card)
    except (OSError, ValueError):
        return None


def dataset_provenance(
    data: datasets.DatasetDict, data_dir: str | None, dataset: str | None, config: str
) -> dict[str, Any]:
    """Where the data came from: source, config, dataset version and split manifest hash.

    The hash (``covid_ct_scan_images.manifest_hash``) identifies the assignment of the loaded config: the
    train/validation/test split for ``default``, the folds for ``full``.
    """
    import covid_ct_scan_images

    version = covid_ct_scan_images.DATASET_VERSION if data_dir is not None else published_version(str(dataset))
    return {
        "source": data_dir or dataset,
        "loaded_with": "covid_ct_scan_images.load_dataset" if data_dir else "datasets.load_dataset",
        "config": config,
        "version": version,
        "manifest_hash": covid_ct_scan_images.manifest_hash(data),
    }
