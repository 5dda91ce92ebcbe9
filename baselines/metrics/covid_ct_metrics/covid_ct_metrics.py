"""Binary classification metrics for imbalanced data, with patient-level bootstrap and Wilson intervals.

Load it offline from its folder::

    import evaluate
    metric = evaluate.load("baselines/metrics/covid_ct_metrics")
    metric.compute(predictions=probabilities, references=labels, threshold=0.5,
                   groups=patient_ids, n_bootstrap=1000, seed=0)

``predictions`` are scores (the probability of the positive class), ``references`` are 0/1 labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import datasets
import evaluate
import numpy as np

# The package is installed beside the baselines; evaluate copies this file into its own cache, where a
# relative import would not resolve, so the shared statistics are imported by the package's name.
from covid_ct_scan_images import statistics

_DESCRIPTION = """
Threshold-free ranking metrics (AUROC, AUPRC with the prevalence as its chance level) and, at a given
decision threshold (a score >= threshold is called positive), sensitivity, specificity, balanced accuracy,
precision, F1, MCC and the confusion matrix. Optional 95% intervals: a bootstrap that resamples groups
(patients) with replacement for AUROC, AUPRC and MCC, and Wilson score intervals for sensitivity and
specificity. Undefined values (e.g. AUROC with one class present) are returned as None.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): score of the positive class for each item.
    references (list of int): true label (0 or 1) of each item.
    threshold (float or list of float, default 0.5): decision threshold, one for all items or one per item
        (pooled out-of-fold predictions keep the threshold chosen in their own fold).
    groups (list of str, optional): group (patient) of each item; the bootstrap resamples groups.
        Without it every item is its own group.
    n_bootstrap (int, default 0): bootstrap resamples for the AUROC, AUPRC and MCC intervals; 0 skips them.
    confidence (float, default 0.95): level of every interval.
    seed (int, default 0): seed of the bootstrap.
Returns:
    dict with n, n_positive, prevalence, auroc, auprc, auprc_chance, sensitivity, specificity,
    balanced_accuracy, precision, f1, mcc, accuracy, confusion_matrix ([[tn, fp], [fn, tp]]),
    tn, fp, fn, tp, and when asked *_ci = [low, high] (Wilson intervals are always given).
Examples:
    >>> metric = evaluate.load("baselines/metrics/covid_ct_metrics")
    >>> metric.compute(predictions=[0.1, 0.8, 0.4, 0.9], references=[0, 1, 0, 1])["auroc"]
    1.0
"""

_CITATION = """
@article{wilson1927,
  title={Probable inference, the law of succession, and statistical inference},
  author={Wilson, Edwin B.}, journal={Journal of the American Statistical Association},
  volume={22}, number={158}, pages={209--212}, year={1927}}
"""


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else float(numerator / denominator)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> list[float] | None:
    """Return the Wilson score interval ``[low, high]`` for ``successes`` out of ``trials`` (None if no trials)."""
    if trials == 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


def confusion_counts(labels: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    """``(tn, fp, fn, tp)`` of 0/1 ``labels`` and 0/1 ``predicted``."""
    tp = int(np.sum((labels == 1) & (predicted == 1)))
    fp = int(np.sum((labels == 0) & (predicted == 1)))
    fn = int(np.sum((labels == 1) & (predicted == 0)))
    return int(labels.size) - tp - fp - fn, fp, fn, tp


def _mcc(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Matthews correlation; 0 when a margin of the confusion matrix is empty (as scikit-learn does)."""
    tn, fp, fn, tp = confusion_counts(labels, predicted)
    denominator = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else float((tp * tn - fp * fn) / denominator)


def bootstrap_intervals(
    labels: np.ndarray,
    scores: np.ndarray,
    predicted: np.ndarray,
    groups: Sequence[str],
    n_bootstrap: int,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """Percentile intervals of AUROC, AUPRC and MCC over ``n_bootstrap`` resamples of whole groups.

    Resamples in which one class is missing are skipped for AUROC and AUPRC (they are undefined there).
    """

    def resample_statistics(indices: np.ndarray) -> dict[str, float | None]:
        auroc, auprc = statistics.fast_ranking_metrics(labels[indices], scores[indices])
        return {"auroc": auroc, "auprc": auprc, "mcc": _mcc(labels[indices], predicted[indices])}

    intervals = statistics.bootstrap_intervals(resample_statistics, groups, n_bootstrap, seed, confidence)
    return {
        f"{name}_ci": None if intervals.get(name) is None else list(intervals[name])
        for name in ("auroc", "auprc", "mcc")
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CovidCtMetrics(evaluate.Metric):
    """AUROC, AUPRC, sensitivity, specificity, balanced accuracy, precision, F1, MCC and confusion matrix."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://scikit-learn.org/stable/api/sklearn.metrics.html"],
        )

    def _compute(
        self,
        predictions: Sequence[float],
        references: Sequence[int],
        threshold: float | Sequence[float] = 0.5,
        groups: Sequence[str] | None = None,
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> dict:
        scores = np.asarray(predictions, dtype=np.float64)
        labels = np.asarray(references, dtype=np.int64)
        thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64), scores.shape)
        predicted = (scores >= thresholds).astype(np.int64)
        tn, fp, fn, tp = confusion_counts(labels, predicted)
        auroc, auprc = statistics.ranking_metrics(labels, scores)
        sensitivity, specificity = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
        precision = _ratio(tp, tp + fp)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        result = {
            "n": int(labels.size),
            "n_positive": int(labels.sum()),
            "prevalence": _ratio(int(labels.sum()), labels.size),
            "auroc": auroc,
            "auprc": auprc,
            "auprc_chance": _ratio(int(labels.sum()), labels.size),
            "threshold": float(thresholds[0]) if np.ndim(threshold) == 0 else sorted({float(t) for t in threshold}),
            "sensitivity": sensitivity,
            "sensitivity_ci": wilson_interval(tp, tp + fn, confidence),
            "specificity": specificity,
            "specificity_ci": wilson_interval(tn, tn + fp, confidence),
            "balanced_accuracy": None if None in (sensitivity, specificity) else (sensitivity + specificity) / 2,
            "precision": precision,
            "f1": f1,
            "mcc": _mcc(labels, predicted),
            "accuracy": _ratio(tp + tn, labels.size),
            "confusion_matrix": [[tn, fp], [fn, tp]],
            "tn": tn,
            "fp": fp,
            "fn": fn,
            "tp": tp,
        }
        if n_bootstrap > 0:
            item_groups = [str(i) for i in range(labels.size)] if groups is None else list(groups)
            result.update(bootstrap_intervals(labels, scores, predicted, item_groups, n_bootstrap, confidence, seed))
        return result
