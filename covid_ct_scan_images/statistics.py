"""Ranking metrics and patient-grouped bootstrap intervals, shared by the shortcut probes and the baselines' metric.

Point estimates come from scikit-learn (:func:`ranking_metrics`). The bootstrap recomputes AUROC and
average precision thousands of times, where scikit-learn's input validation costs many times the
arithmetic: :func:`fast_ranking_metrics` computes the same two numbers with numpy, equal to
scikit-learn's to rounding (``tests/test_statistics.py`` compares them on tied scores). Intervals
resample whole groups (patients) with replacement, so images of one patient never count as
independent evidence; statistics evaluated on the same seed see the same resamples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence

import numpy as np

from .progress import progress

#: Named values of one resample, given the item indices drawn; a ``None`` value is left out of its interval.
ResampleStatistics = Callable[[np.ndarray], Mapping[Hashable, float | None]]


def has_both_classes(labels: np.ndarray) -> bool:
    """Whether 0/1 ``labels`` hold at least one positive and one negative."""
    return 0 < int(np.count_nonzero(labels)) < labels.size


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[float | None, float | None]:
    """AUROC and average precision (AUPRC) from scikit-learn; ``(None, None)`` when a class is missing."""
    if not has_both_classes(labels):
        return None, None
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def _threshold_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, from the highest score down."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    true_positives = np.cumsum(labels[order] == 1)
    # The last position of each run of equal scores is where the threshold takes effect.
    boundaries = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    hits = true_positives[boundaries]
    return hits, boundaries + 1 - hits


def fast_ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[float | None, float | None]:
    """:func:`ranking_metrics` without scikit-learn's input checks, for the bootstrap's many calls.

    AUROC by trapezoids over the ROC points (a tie between a positive and a negative counts one
    half) and average precision as the step-wise sum over distinct scores (no interpolation), as
    scikit-learn defines both; ``(None, None)`` when a class is missing.
    """
    if not has_both_classes(labels):
        return None, None
    return _metrics_from_counts(*_threshold_counts(labels, scores))


def _metrics_from_counts(true_positives: np.ndarray, false_positives: np.ndarray) -> tuple[float, float]:
    """AUROC and average precision from the cumulative counts at each distinct score (highest first).

    The terms are summed in order (``cumsum``), not pairwise (``sum``): the sum is then unchanged by exact
    zeros between the terms, which :meth:`PresortedScores.metrics_of_resamples` relies on.
    """
    tpr = np.concatenate(([0], true_positives)) / true_positives[-1]
    fpr = np.concatenate(([0], false_positives)) / false_positives[-1]
    auroc = float(np.cumsum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)[-1])
    precision = true_positives / (true_positives + false_positives)
    recall_steps = np.diff(true_positives, prepend=0) / true_positives[-1]
    return auroc, float(np.cumsum(recall_steps * precision)[-1])


class PresortedScores:
    """Scores sorted once, so that :func:`fast_ranking_metrics` of any resample of them costs no sort.

    A resample is given as how many times each item was drawn (``np.bincount`` of its indices). Items drawn
    several times add up at their score; scores not drawn drop out. The cumulative counts at each distinct
    score are then exactly those :func:`fast_ranking_metrics` finds by sorting the resampled arrays, so
    :meth:`metrics` returns the same numbers, bit for bit.
    """

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        order = np.argsort(-scores, kind="mergesort")
        sorted_scores = scores[order]
        self._order = order
        self._positive = (labels[order] == 1).astype(np.int64)
        # The last position of each run of equal scores, as in :func:`_threshold_counts`.
        self._run_ends = np.append(np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1)

    def metrics(self, draws: np.ndarray) -> tuple[float | None, float | None]:
        """AUROC and average precision of the resample that draws item ``i`` ``draws[i]`` times."""
        weights = draws[self._order]
        drawn = np.cumsum(weights)[self._run_ends]
        true_positives = np.cumsum(weights * self._positive)[self._run_ends]
        if true_positives[-1] == 0 or true_positives[-1] == drawn[-1]:
            return None, None
        present = np.diff(drawn, prepend=0) > 0
        true_positives = true_positives[present]
        return _metrics_from_counts(true_positives, drawn[present] - true_positives)

    def metrics_of_resamples(self, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`metrics` of many resamples at once (one per row of ``draws``), NaN where a resample has one class.

        Scores a resample does not draw stay in its row as steps of zero width, which add exact zeros to the
        in-order sums of :func:`_metrics_from_counts`: each row's numbers are :meth:`metrics`', bit for bit.
        """
        weights = draws[:, self._order]
        drawn = np.cumsum(weights, axis=1)[:, self._run_ends]
        true_positives = np.cumsum(weights * self._positive, axis=1)[:, self._run_ends]
        false_positives = drawn - true_positives
        both_classes = (true_positives[:, -1] > 0) & (false_positives[:, -1] > 0)
        positives = np.where(both_classes, true_positives[:, -1], 1)[:, None]
        negatives = np.where(both_classes, false_positives[:, -1], 1)[:, None]
        start = np.zeros((len(draws), 1), dtype=np.int64)
        tpr = np.concatenate((start, true_positives), axis=1) / positives
        fpr = np.concatenate((start, false_positives), axis=1) / negatives
        auroc = np.cumsum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)[:, -1]
        precision = np.divide(true_positives, drawn, out=np.zeros(drawn.shape), where=drawn > 0)
        recall_steps = np.diff(true_positives, axis=1, prepend=0) / positives
        auprc = np.cumsum(recall_steps * precision, axis=1)[:, -1]
        return np.where(both_classes, auroc, np.nan), np.where(both_classes, auprc, np.nan)


def group_resamples(groups: Sequence[str], n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield item index arrays, each drawing as many groups as there are, with replacement."""
    _, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    members = [np.flatnonzero(codes == code) for code in range(codes.max() + 1)]
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(members), size=len(members))
        yield np.concatenate([members[group] for group in drawn])


def group_draw_counts(groups: Sequence[str], n_resamples: int, seed: int, rows: int = 100) -> Iterator[np.ndarray]:
    """The resamples of :func:`group_resamples` (same groups, count and seed) as draw counts, ``rows`` at a time.

    Each row holds, for every item, how many times the resample draws it (``np.bincount`` of its indices).
    """
    _, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    n_groups = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, rows):
        count = min(rows, n_resamples - start)
        drawn = np.stack([rng.integers(0, n_groups, size=n_groups) for _ in range(count)])  # as group_resamples
        cells = (drawn + n_groups * np.arange(count)[:, None]).ravel()
        group_counts = np.bincount(cells, minlength=count * n_groups).reshape(count, n_groups)
        yield group_counts[:, codes]


def percentile_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """The central ``confidence`` percentile interval of ``values``; ``None`` with fewer than two values."""
    if len(values) < 2:
        return None
    tail = (100 - 100 * confidence) / 2  # exactly 2.5 for 0.95
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    statistics: ResampleStatistics,
    groups: Sequence[str],
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[Hashable, tuple[float, float] | None]:
    """Percentile intervals of every named value ``statistics`` returns, over resamples of whole groups.

    ``statistics`` gets the indices of one resample (see :func:`group_resamples`) and returns named
    values; a ``None`` value (e.g. AUROC of a resample holding one class) is skipped. A name with
    fewer than two values gets ``None``; a name never returned is absent.
    """
    samples: dict[Hashable, list[float]] = defaultdict(list)
    for indices in progress(group_resamples(groups, n_resamples, seed), "bootstrap", n_resamples, "resample"):
        for name, value in statistics(indices).items():
            values = samples[name]  # created even for a None value, so that the name gets its (None) interval
            if value is not None:
                values.append(value)
    return {name: percentile_interval(values, confidence) for name, values in samples.items()}
