"""The build's numpy fold assignment gives scikit-learn's StratifiedGroupKFold folds, without importing it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from covid_ct_scan_images.splits import stratified_group_folds


def scikit_learn_folds(labels: np.ndarray, groups: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold index per sample from the stock ``StratifiedGroupKFold(n_folds, shuffle=False)``."""
    folds = np.full(len(labels), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer members of a class than folds
        for fold, (_, members) in enumerate(
            StratifiedGroupKFold(n_folds, shuffle=False).split(np.zeros(len(labels)), labels, groups)
        ):
            folds[members] = fold
    return folds


def random_grouped_labels(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels (two or three classes, often rare positives) and string group keys of one random sample."""
    n_images = int(rng.integers(25, 1500))
    n_classes = 3 if rng.random() < 0.2 else 2
    positive_rate = rng.uniform(0.02, 0.5)
    labels = np.where(rng.random(n_images) < positive_rate, rng.integers(1, n_classes, n_images), 0)
    labels[: n_classes * 2] = np.arange(n_classes * 2) % n_classes  # every class present
    n_groups = max(25, int(n_images * rng.uniform(0.2, 1.0)))
    groups = np.array([f"{key:064x}" for key in rng.integers(0, 2**62, n_groups)])[rng.integers(0, n_groups, n_images)]
    if rng.random() < 0.3:  # groups that mix classes
        labels = labels[rng.permutation(n_images)]
    return labels, groups


@pytest.mark.parametrize("n_folds", [2, 5, 7, 20])
def test_numpy_folds_equal_scikit_learn_stratified_group_kfold_on_random_samples(n_folds: int) -> None:
    rng = np.random.default_rng(n_folds)
    compared = 0
    for _ in range(25):
        labels, groups = random_grouped_labels(rng)
        if len(set(groups)) < n_folds:
            continue
        np.testing.assert_array_equal(
            stratified_group_folds(labels, groups, n_folds), scikit_learn_folds(labels, groups, n_folds)
        )
        compared += 1
    assert compared >= 20


def test_numpy_folds_equal_scikit_learn_when_every_group_is_one_image_of_one_class() -> None:
    # all groups tie on the spread of their class counts: the order among equals decides every fold
    labels = np.array([0] * 130 + [1] * 11)
    groups = np.array([f"g{index:04d}" for index in range(len(labels))])[::-1]
    for n_folds in (5, 20):
        np.testing.assert_array_equal(
            stratified_group_folds(labels, groups, n_folds), scikit_learn_folds(labels, groups, n_folds)
        )


def test_too_few_groups_or_members_is_refused_as_scikit_learn_refuses_it() -> None:
    labels = np.array([0, 1] * 6)
    with pytest.raises(ValueError, match="greater than the number of groups: 4"):
        stratified_group_folds(labels, np.array(list("abcd") * 3), 5)
    with pytest.raises(ValueError, match="cannot be greater than the number of members in each class"):
        stratified_group_folds(labels, np.arange(12).astype(str), 7)


def test_a_cold_prepare_does_not_import_scikit_learn(
    synthetic_root: Path, tmp_path: Path, cli_in_fresh_interpreter
) -> None:
    code, imported, _ = cli_in_fresh_interpreter(
        ["prepare", synthetic_root, "--cache-dir", tmp_path / "cache", "--quiet"], "sklearn"
    )
    assert (code, imported) == (0, False)
