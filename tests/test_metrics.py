"""The evaluate metric module in baselines/metrics: loads offline, agrees with scikit-learn, sound intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

evaluate = pytest.importorskip("evaluate")
metrics = pytest.importorskip("sklearn.metrics")

METRIC_DIR = Path(__file__).resolve().parents[1] / "baselines" / "metrics" / "covid_ct_metrics"

# Fixed, imbalanced vectors (6 positives among 20) with ties and misclassifications on both sides.
LABELS = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
SCORES = [0.05, 0.1, 0.1, 0.2, 0.22, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.61, 0.7, 0.9,
          0.3, 0.5, 0.62, 0.8, 0.85, 0.95]
GROUPS = [f"p{i // 2}" for i in range(20)]


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(str(METRIC_DIR), keep_in_memory=True)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.62])
def test_agrees_with_scikit_learn(metric, threshold):
    result = metric.compute(predictions=SCORES, references=LABELS, threshold=threshold)
    predicted = [int(score >= threshold) for score in SCORES]
    assert result["auroc"] == pytest.approx(metrics.roc_auc_score(LABELS, SCORES))
    assert result["auprc"] == pytest.approx(metrics.average_precision_score(LABELS, SCORES))
    assert result["auprc_chance"] == pytest.approx(6 / 20) == result["prevalence"]
    assert result["sensitivity"] == pytest.approx(metrics.recall_score(LABELS, predicted))
    assert result["specificity"] == pytest.approx(metrics.recall_score(LABELS, predicted, pos_label=0))
    assert result["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(LABELS, predicted))
    assert result["precision"] == pytest.approx(metrics.precision_score(LABELS, predicted))
    assert result["f1"] == pytest.approx(metrics.f1_score(LABELS, predicted))
    assert result["mcc"] == pytest.approx(metrics.matthews_corrcoef(LABELS, predicted))
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(LABELS, predicted))
    assert result["confusion_matrix"] == metrics.confusion_matrix(LABELS, predicted).tolist()
    counts = metrics.confusion_matrix(LABELS, predicted).ravel().tolist()
    assert [result[key] for key in ("tn", "fp", "fn", "tp")] == counts
    assert result["threshold"] == threshold and result["n"] == 20 and result["n_positive"] == 6


def test_ranking_metrics_match_scikit_learn_on_random_tied_scores(metric):
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        scores = rng.integers(0, 8, 40) / 8  # many ties
        result = metric.compute(predictions=scores.tolist(), references=labels.tolist())
        assert result["auroc"] == pytest.approx(metrics.roc_auc_score(labels, scores))
        assert result["auprc"] == pytest.approx(metrics.average_precision_score(labels, scores))


def test_wilson_intervals_match_the_formula(metric):
    result = metric.compute(predictions=SCORES, references=LABELS, threshold=0.5)
    # At 0.5: tp = 5 of 6 positives; tn = 9 of 14 negatives.
    for (successes, trials), interval in (((5, 6), result["sensitivity_ci"]), ((9, 14), result["specificity_ci"])):
        z, p = 1.959963984540054, successes / trials
        centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
        half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2)) / (1 + z * z / trials)
        assert interval == pytest.approx([centre - half, centre + half])
    # A published value: 8 of 10 -> [0.490, 0.943] (Wilson 1927; e.g. statsmodels proportion_confint).
    perfect = metric.compute(predictions=[0.9] * 8 + [0.1] * 2, references=[1] * 10)
    assert perfect["sensitivity_ci"] == pytest.approx([0.4902, 0.9433], abs=1e-4)
    assert perfect["specificity"] is None and perfect["specificity_ci"] is None and perfect["auroc"] is None


def test_patient_bootstrap_is_reproducible_and_brackets_the_estimate(metric):
    kwargs = {"predictions": SCORES, "references": LABELS, "threshold": 0.5, "n_bootstrap": 300, "seed": 3}
    first = metric.compute(groups=GROUPS, **kwargs)
    assert first == metric.compute(groups=GROUPS, **kwargs)
    for key in ("auroc", "auprc", "mcc"):
        low, high = first[f"{key}_ci"]
        assert low <= first[key] <= high
    # Resampling patients (pairs of images) is not the same as resampling images.
    assert first["auroc_ci"] != metric.compute(**kwargs)["auroc_ci"]
    assert "auroc_ci" not in metric.compute(predictions=SCORES, references=LABELS)


def test_per_item_thresholds(metric):
    thresholds = [0.5] * 10 + [0.9] * 10
    result = metric.compute(predictions=SCORES, references=LABELS, threshold=thresholds)
    predicted = [int(s >= t) for s, t in zip(SCORES, thresholds, strict=True)]
    assert result["confusion_matrix"] == metrics.confusion_matrix(LABELS, predicted).tolist()
    assert result["threshold"] == [0.5, 0.9]
