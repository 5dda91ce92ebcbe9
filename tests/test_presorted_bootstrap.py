"""The bootstrap's presorted metrics give exactly the numbers of sorting every resample."""

from __future__ import annotations

import numpy as np

from covid_ct_scan_images.statistics import PresortedScores, fast_ranking_metrics, group_draw_counts, group_resamples


def test_presorted_metrics_equal_sorting_each_resample_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    labels = (rng.random(300) < 0.1).astype(np.int64)
    tied = np.round(rng.random(300), 1)  # few distinct values: many ties, some scores left out of a resample
    for scores in (rng.random(300), tied, np.full(300, 0.5)):
        presorted = PresortedScores(labels, scores)
        groups = [f"patient-{index // 3}" for index in range(300)]
        for indices in group_resamples(groups, 200, seed=1):
            draws = np.bincount(indices, minlength=labels.size)
            assert presorted.metrics(draws) == fast_ranking_metrics(labels[indices], scores[indices])


def test_presorted_metrics_of_a_resample_holding_one_class_are_none() -> None:
    labels = np.array([0, 0, 1, 1])
    presorted = PresortedScores(labels, np.array([0.1, 0.4, 0.35, 0.8]))
    assert presorted.metrics(np.array([2, 1, 0, 0])) == (None, None)
    assert presorted.metrics(np.array([0, 0, 1, 3])) == (None, None)
    assert presorted.metrics(np.array([1, 0, 0, 1])) == fast_ranking_metrics(np.array([0, 1]), np.array([0.1, 0.8]))


def test_draw_counts_are_the_group_resamples_counted() -> None:
    groups = [f"patient-{index % 37}" for index in range(200)]
    counted = np.vstack(list(group_draw_counts(groups, 250, seed=4, rows=60)))
    expected = np.vstack([np.bincount(indices, minlength=200) for indices in group_resamples(groups, 250, seed=4)])
    assert np.array_equal(counted, expected)


def test_many_resamples_at_once_equal_one_at_a_time_bit_for_bit() -> None:
    rng = np.random.default_rng(9)
    labels = np.zeros(300, dtype=np.int64)
    labels[[0, 100, 200]] = 1  # three positive patients of 75: about one resample in twenty draws none
    groups = [f"patient-{index // 4}" for index in range(300)]
    for scores in (rng.random(300), np.round(rng.random(300), 1), np.full(300, 0.5)):
        presorted = PresortedScores(labels, scores)
        draws = np.vstack(list(group_draw_counts(groups, 300, seed=2)))
        aurocs, auprcs = presorted.metrics_of_resamples(draws)
        one_class = 0
        for row, auroc, auprc in zip(draws, aurocs, auprcs, strict=True):
            expected = presorted.metrics(row)
            if expected == (None, None):
                one_class += 1
                assert np.isnan(auroc) and np.isnan(auprc)
            else:
                assert (auroc, auprc) == expected
        assert 0 < one_class < len(draws)
