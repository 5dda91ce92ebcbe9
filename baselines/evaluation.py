"""Evaluation: the metric module, positive-class probabilities, the validation threshold rule, per-split metrics,
and storing the chosen threshold in the saved model."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import evaluate
import numpy as np
import torch
from transformers import EvalPrediction, PreTrainedModel

#: Folder of the ``evaluate`` metric module (loads offline with ``evaluate.load(str(METRIC_DIR))``).
METRIC_DIR = Path(__file__).resolve().parent / "metrics" / "covid_ct_metrics"

THRESHOLD_RULE = (
    "On the validation split, the highest threshold whose sensitivity is >= {min_sensitivity:g} "
    "(which gives the highest specificity among thresholds meeting that floor), lowered by at most 0.001 in "
    "log-odds (never past the next validation score) so that rounding in the saved model cannot flip the image "
    "that sets it; a probability >= the threshold is called positive. Applied unchanged to test. 0.5 if "
    "validation has no positive."
)

#: Log-odds margin by which the threshold is lowered below the validation score that sets it.
ROUNDING_MARGIN = 1e-3


def load_metric() -> evaluate.EvaluationModule:
    """The repository's metric module, loaded offline from its folder and kept in memory."""
    return evaluate.load(str(METRIC_DIR), keep_in_memory=True)


def positive_probability(predictions: np.ndarray | tuple) -> np.ndarray:
    """Softmax probability of the positive class from ``(n, 2)`` logits (or Trainer's tuple, logits first)."""
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    return torch.softmax(torch.as_tensor(np.asarray(logits), dtype=torch.float64), dim=-1)[:, 1].numpy()


def make_compute_metrics(metric: evaluate.EvaluationModule) -> Callable[[EvalPrediction], dict[str, float]]:
    """``compute_metrics`` for Trainer: AUROC and AUPRC on the evaluation split (AUPRC selects the best epoch).

    Thresholded metrics are left out: during training no threshold has been chosen yet, and at 0.5 they would
    describe decisions the final model never makes.
    """
    keys = ("auroc", "auprc")

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        probabilities = positive_probability(prediction.predictions)
        result = metric.compute(predictions=probabilities, references=prediction.label_ids)
        return {key: float("nan") if result[key] is None else float(result[key]) for key in keys}

    return compute_metrics


def choose_threshold(labels: Sequence[int], probabilities: Sequence[float], min_sensitivity: float = 0.9) -> float:
    """The decision threshold of :data:`THRESHOLD_RULE`: the highest one with sensitivity >= ``min_sensitivity``.

    Specificity can only grow as the threshold rises, so among all thresholds meeting the sensitivity
    floor the highest has the best specificity. Returns 0.5 when there is no positive.
    """
    labels_array, scores = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    positives = np.sort(scores[labels_array == 1])[::-1]
    if positives.size == 0:
        return 0.5
    needed = max(1, math.ceil(min_sensitivity * positives.size - 1e-9))
    return float(positives[needed - 1])


def _log_odds(probability: float) -> float:
    probability = min(max(probability, 1e-15), 1 - 1e-15)  # a float64 softmax can round to exactly 0 or 1
    return math.log(probability) - math.log1p(-probability)


def with_rounding_margin(threshold: float, probabilities: Sequence[float]) -> float:
    """``threshold`` lowered by :data:`ROUNDING_MARGIN` log-odds, but staying above every score below it.

    The threshold is the score of a validation image; folded into the classifier's bias, float rounding could call
    that image either way. Lowered slightly, every validation decision stays the same and none sits on the edge.
    """
    if not 0.0 < threshold < 1.0:
        return threshold
    below = [p for p in np.asarray(probabilities, dtype=np.float64) if 0.0 < p < threshold]
    target = _log_odds(threshold) - ROUNDING_MARGIN
    if below:
        target = max(target, (_log_odds(threshold) + _log_odds(max(below))) / 2)
    return float(1.0 / (1.0 + math.exp(-target)))


def fold_threshold_into_model(model: PreTrainedModel, threshold: float) -> None:
    """Make the model's argmax the thresholded decision and record the threshold in its config.

    For two classes ``p1 >= t`` exactly when ``z1 - z0 >= log(t / (1 - t))``, so subtracting that log-odds from the
    positive logit's bias moves the decision boundary of softmax/argmax (what ``pipeline`` and every
    ``AutoModelForImageClassification`` user apply) to ``t``. Scores of the saved model are shifted accordingly:
    its positive probability is 0.5 where the unshifted one (``predictions.csv``) equals ``t``.
    ``config.decision_threshold`` keeps ``t`` and ``config.decision_logit_offset`` the subtracted log-odds.
    """
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, torch.nn.Linear) or classifier.bias is None or classifier.out_features != 2:
        raise TypeError(f"{type(model).__name__} has no two-class linear `classifier` with a bias to shift")
    offset = _log_odds(threshold)
    with torch.no_grad():
        classifier.bias[1] -= offset
    model.config.decision_threshold = threshold
    model.config.decision_logit_offset = offset


def summarise(
    rows: Sequence[dict[str, Any]], metric: evaluate.EvaluationModule, n_bootstrap: int, seed: int
) -> dict[str, dict[str, dict]]:
    """Metrics per split of prediction rows, at each row's own threshold and at 0.5, with 95% intervals."""
    summary: dict[str, dict[str, dict]] = {}
    for split in dict.fromkeys(row["split"] for row in rows):
        chosen = [row for row in rows if row["split"] == split]
        thresholds = [float(row["threshold"]) for row in chosen]
        common = {
            "predictions": [float(row["probability"]) for row in chosen],
            "references": [int(row["label"]) for row in chosen],
            "groups": [str(row["patient_id"]) for row in chosen],
            "n_bootstrap": n_bootstrap,
            "seed": seed,
        }
        selected = thresholds[0] if len(set(thresholds)) == 1 else thresholds
        summary[split] = {
            "at_selected_threshold": metric.compute(threshold=selected, **common),
            "at_0.5": metric.compute(threshold=0.5, **common),
        }
    return summary
