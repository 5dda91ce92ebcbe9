"""The shared statistics: scikit-learn's ranking metrics, their fast twin, and the patient-grouped bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from covid_ct_scan_images.statistics import (
    bootstrap_intervals,
    fast_ranking_metrics,
    group_resamples,
    percentile_interval,
    ranking_metrics,
)


def test_fast_ranking_metrics_equal_scikit_learn_on_random_scores_with_ties() -> None:
    rng = np.random.default_rng(0)
    compared = 0
    for trial in range(300):
        size = int(rng.integers(2, 60))
        labels = rng.integers(0, 2, size)
        if labels.min() == labels.max():
            continue
        # Odd trials: a handful of distinct scores, so most thresholds hold ties across both classes.
        scores = rng.integers(0, 4, size) / 4 if trial % 2 else rng.random(size)
        expected = (roc_auc_score(labels, scores), average_precision_score(labels, scores))
        assert fast_ranking_metrics(labels, scores) == pytest.approx(expected, abs=1e-12)
        assert ranking_metrics(labels, scores) == pytest.approx(expected, abs=0)
        compared += 1
    assert compared > 250


def test_ranking_metrics_are_none_when_a_class_is_missing() -> None:
    scores = np.array([0.1, 0.4, 0.9])
    for labels in (np.zeros(3, dtype=int), np.ones(3, dtype=int)):
        assert ranking_metrics(labels, scores) == (None, None)
        assert fast_ranking_metrics(labels, scores) == (None, None)


def test_a_tie_between_a_positive_and_a_negative_counts_one_half() -> None:
    labels, scores = np.array([0, 1]), np.array([0.5, 0.5])
    assert fast_ranking_metrics(labels, scores)[0] == 0.5 == roc_auc_score(labels, scores)


def test_resamples_draw_whole_groups_reproducibly() -> None:
    groups = ["b", "a", "b", "c", "a", "c", "c"]
    first = list(group_resamples(groups, 50, seed=7))
    assert [list(indices) for indices in first] == [list(indices) for indices in group_resamples(groups, 50, seed=7)]
    members = {"a": [1, 4], "b": [0, 2], "c": [3, 5, 6]}
    for indices in first:
        drawn = [groups[index] for index in indices]
        # Each resample holds three groups' worth of items, and every drawn group with all its items.
        assert sum(drawn.count(group) // len(members[group]) for group in members) == 3
        for group, items in members.items():
            assert drawn.count(group) % len(items) == 0
    assert any(sorted(indices) != list(range(7)) for indices in first)


def test_percentile_interval_needs_two_values_and_is_central() -> None:
    assert percentile_interval([]) is None and percentile_interval([0.3]) is None
    values = np.arange(1001) / 1000
    assert percentile_interval(values) == pytest.approx((0.025, 0.975))
    assert percentile_interval(values, confidence=0.5) == pytest.approx((0.25, 0.75))


def test_bootstrap_skips_undefined_values_and_keeps_names_that_never_had_one() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    groups = ["n1", "n2", "n3", "p1", "p2", "p3"]

    def statistics(indices: np.ndarray) -> dict[str, float | None]:
        return {"positives": float(labels[indices].sum()), "never": None}

    intervals = bootstrap_intervals(statistics, groups, n_resamples=200, seed=0)
    low, high = intervals["positives"]
    assert 0 <= low < 3 < high <= 6
    assert intervals["never"] is None
    assert bootstrap_intervals(statistics, groups, n_resamples=0, seed=0) == {}
