"""Probes that cannot see lung disease, scored out of fold with patient-bootstrap intervals.

:func:`run_shortcut_probes` takes the ``full`` config's dataset, extracts the features of every
image once (:mod:`.features`), fits each probe on four of the patient-grouped folds and predicts
the fifth, then scores the pooled out-of-fold predictions with AUROC and AUPRC. The 95% intervals
come from resampling patients (not images) with replacement; every probe is scored on the same
resamples, so their intervals are comparable.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import DatasetError
from ..filestore import ContentMemo, kind_version, open_memo, store_folder
from ..progress import progress
from ..statistics import PresortedScores, bootstrap_intervals, ranking_metrics
from .features import (
    CENTER_FRACTION,
    HISTOGRAM_BINS,
    THUMBNAIL_SIDE,
    FeatureMatrices,
    ImageFeatureError,
    border_features,
    center_features,
    extract_features,
)
from .report import REPORT_FORMAT, ProbeResult, ShortcutReport, chance_result

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

#: Default number of patient-bootstrap resamples behind each interval.
DEFAULT_BOOTSTRAP = 1000

#: Default seed of the bootstrap and of the models, so that reruns give the same numbers.
DEFAULT_SEED = 0

#: Columns :func:`run_shortcut_probes` needs.
REQUIRED_COLUMNS = ("image", "label", "patient_id", "fold")


@dataclass(frozen=True)
class ProbeSettings:
    """What decides a shortcut report besides the data: bootstrap resamples, seed and centre fraction."""

    n_bootstrap: int = DEFAULT_BOOTSTRAP
    seed: int = DEFAULT_SEED
    center_fraction: float = CENTER_FRACTION


def logistic_regression(seed: int) -> ClassifierMixin:
    """Standardised features into an L2-regularised logistic regression."""
    # scikit-learn is imported where a model is made: `covid-ct export` recalling a stored report needs none.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, random_state=seed))


def gradient_boosted_trees(seed: int) -> ClassifierMixin:
    """Shallow histogram gradient boosting, sized for a few hundred to a few thousand images."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_depth=3, min_samples_leaf=5, early_stopping=False, random_state=seed
    )


@dataclass(frozen=True)
class Probe:
    """One row of the shortcut table: which features, described how, into which model.

    ``features`` may hold ``{center}``, replaced by the centre fraction as a percentage.
    """

    probe: str
    model: str
    features: str
    select: Callable[[FeatureMatrices, float], np.ndarray]
    make_model: Callable[[int], ClassifierMixin]
    sees_lungs: bool = False


def _metadata(matrices: FeatureMatrices, _fraction: float) -> np.ndarray:
    return matrices.metadata


def _intensity(matrices: FeatureMatrices, _fraction: float) -> np.ndarray:
    return matrices.intensity


def _border(matrices: FeatureMatrices, fraction: float) -> np.ndarray:
    return border_features(matrices.thumbnails, fraction)


def _center(matrices: FeatureMatrices, fraction: float) -> np.ndarray:
    return center_features(matrices.thumbnails, fraction)


_METADATA = "size, bytes, format, mode, JPEG tables, EXIF/ICC"
_INTENSITY = f"{HISTOGRAM_BINS}-bin histogram, mean, std, percentiles"
_THUMBNAIL = f"{THUMBNAIL_SIDE}x{THUMBNAIL_SIDE} pixels"

#: The probes in table order. Only the centre-only probe sees the lungs; it is there for comparison.
PROBES: tuple[Probe, ...] = (
    Probe("metadata", "LR", _METADATA, _metadata, logistic_regression),
    Probe("metadata", "GBT", _METADATA, _metadata, gradient_boosted_trees),
    Probe("intensity", "LR", _INTENSITY, _intensity, logistic_regression),
    Probe("intensity", "GBT", _INTENSITY, _intensity, gradient_boosted_trees),
    Probe("border only", "LR", f"{_THUMBNAIL}, central {{center}} zeroed", _border, logistic_regression),
    Probe(
        "centre only",
        "LR",
        f"{_THUMBNAIL}, all but central {{center}} zeroed",
        _center,
        logistic_regression,
        sees_lungs=True,
    ),
)


def out_of_fold_scores(
    make_model: Callable[[], ClassifierMixin], features: np.ndarray, labels: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Return each image's positive-class score from a model fitted on the other folds.

    A fold whose training part holds a single class gets that part's positive rate as a constant
    score instead of a fitted model, so tiny samples do not crash.
    """
    scores = np.empty(len(labels), dtype=np.float64)
    for fold in np.unique(folds):
        held_out = folds == fold
        train_labels = labels[~held_out]
        if np.unique(train_labels).size < 2:
            scores[held_out] = train_labels.mean()
            continue
        model = make_model().fit(features[~held_out], train_labels)
        scores[held_out] = model.predict_proba(features[held_out])[:, 1]
    return scores


def probe_intervals(
    labels: np.ndarray, scores: Sequence[np.ndarray], patient_ids: Sequence[str], n_resamples: int, seed: int
) -> list[tuple[tuple[float, float] | None, tuple[float, float] | None]]:
    """Return (AUROC, AUPRC) 95% intervals per score array, every array scored on the same patient resamples.

    Resamples that hold a single class are skipped; an interval is ``None`` when fewer than two remain.
    """

    presorted = [PresortedScores(labels, score) for score in scores]  # one sort per probe, not per resample

    def statistics(indices: np.ndarray) -> dict[tuple[int, str], float | None]:
        values: dict[tuple[int, str], float | None] = {}
        draws = np.bincount(indices, minlength=len(labels))
        for position, score in enumerate(presorted):
            values[position, "auroc"], values[position, "auprc"] = score.metrics(draws)
        return values

    intervals = bootstrap_intervals(statistics, patient_ids, n_resamples, seed)
    return [(intervals.get((position, "auroc")), intervals.get((position, "auprc"))) for position in range(len(scores))]


def _image_bytes(dataset) -> Iterator[bytes]:
    """Yield each image's original file bytes, without decoding."""
    from datasets import Image

    for example in dataset.cast_column("image", Image(decode=False)).select_columns(["image"]):
        image = example["image"]
        if image.get("bytes") is not None:
            yield image["bytes"]
        elif image.get("path"):
            yield Path(image["path"]).read_bytes()
        else:
            raise DatasetError("an image of the dataset has neither bytes nor a path; rebuild the dataset")


def _as_single_dataset(dataset):
    """Accept a Dataset, or a DatasetDict whose splits are concatenated."""
    from datasets import DatasetDict, concatenate_datasets

    if isinstance(dataset, DatasetDict):
        return concatenate_datasets([dataset[split] for split in dataset])
    return dataset


def run_shortcut_probes(
    dataset,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    center_fraction: float = CENTER_FRACTION,
    probes: Sequence[Probe] = PROBES,
) -> ShortcutReport:
    """Score every probe on ``dataset`` (the ``full`` config) and return the report.

    ``dataset`` is a ``datasets.Dataset`` (or a ``DatasetDict``, whose splits are joined) with the
    columns ``image`` (original bytes), ``label`` (1 = positive), ``patient_id`` and ``fold``.
    Scores are out of fold over the ``fold`` column; intervals come from ``n_bootstrap`` patient
    resamples (0 for none). The same ``seed`` gives the same numbers.
    """
    (matrices, labels, folds, patient_ids), memo, key, stored = _inputs_and_stored_report(
        dataset, ProbeSettings(n_bootstrap, seed, center_fraction), probes
    )
    if stored is not None:
        return stored
    results = _score_probes(probes, matrices, labels, folds, patient_ids, n_bootstrap, seed, center_fraction)
    report = ShortcutReport(
        n_images=len(labels),
        n_patients=len(set(patient_ids)),
        n_positive=int(labels.sum()),
        n_folds=int(np.unique(folds).size),
        n_bootstrap=n_bootstrap,
        seed=seed,
        center_fraction=center_fraction,
        results=tuple(results),
    )
    if key is not None:
        memo.learn(key, json.dumps(report.to_dict()).encode())
        memo.save()
    return report


def _probe_targets(dataset, center_fraction: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels, folds and patient ids of ``dataset``, checked to be enough for the probes."""
    missing = [column for column in REQUIRED_COLUMNS if column not in dataset.column_names]
    if missing:
        raise DatasetError(
            f"the dataset lacks the column(s) {', '.join(missing)}; load it with config='full' "
            "(load_dataset(data_dir=..., config='full'))"
        )
    if not 0.0 < center_fraction < 1.0:
        raise DatasetError(f"the centre fraction must be between 0 and 1, got {center_fraction}")
    labels = np.asarray(dataset["label"], dtype=np.int64)
    folds = np.asarray(dataset["fold"], dtype=np.int64)
    patient_ids = [str(patient) for patient in dataset["patient_id"]]
    if np.unique(labels).size < 2:
        raise DatasetError(f"the shortcut probes need both classes; all {len(labels)} images have label {labels[0]}")
    if np.unique(folds).size < 2:
        raise DatasetError("the shortcut probes need at least two folds in the 'fold' column")
    return labels, folds, patient_ids


def _dataset_features(dataset) -> FeatureMatrices:
    """The probes' features of every image; an image that cannot be decoded is named in the error."""
    try:
        return extract_features(progress(_image_bytes(dataset), "shortcut features", total=len(dataset)))
    except ImageFeatureError as error:
        has_id = "image_id" in dataset.column_names
        name = dataset.select_columns(["image_id"])[error.index]["image_id"] if has_id else f"row {error.index}"
        raise DatasetError(
            f"{name} could not be decoded for the shortcut probes ({error.__cause__}); rebuild the dataset "
            "with --full-decode to find and leave out damaged images"
        ) from error


def _score_probes(
    probes: Sequence[Probe],
    matrices: FeatureMatrices,
    labels: np.ndarray,
    folds: np.ndarray,
    patient_ids: list[str],
    n_bootstrap: int,
    seed: int,
    center_fraction: float,
) -> list[ProbeResult]:
    """The chance line, then each probe's out-of-fold AUROC and AUPRC with their patient-bootstrap intervals."""
    scores, widths = [], []
    # The models are small: one thread is faster than OpenMP's spin-waiting on a busy machine.
    with threadpool_limits(limits=1):
        for probe in progress(probes, "shortcut probes", unit="probe"):
            features = probe.select(matrices, center_fraction)
            widths.append(features.shape[1])
            scores.append(out_of_fold_scores(partial(probe.make_model, seed), features, labels, folds))
    intervals = probe_intervals(labels, scores, patient_ids, n_bootstrap, seed)
    results = [chance_result(float(labels.mean()))]
    for probe, width, score, (auroc_ci, auprc_ci) in zip(probes, widths, scores, intervals, strict=True):
        auroc, auprc = ranking_metrics(labels, score)
        results.append(
            ProbeResult(
                probe=probe.probe,
                model=probe.model,
                features=probe.features.format(center=f"{center_fraction:.0%}"),
                n_features=width,
                auroc=auroc,
                auroc_ci=auroc_ci,
                auprc=auprc,
                auprc_ci=auprc_ci,
                sees_lungs=probe.sees_lungs,
            )
        )
    return results


def remembered_shortcut_report(dataset, settings: ProbeSettings | None = None) -> ShortcutReport | None:
    """The report :func:`run_shortcut_probes` saved in the file store for ``dataset`` and ``settings``, or ``None``.

    Only the image features are read (from the file store when an earlier command extracted them); no probe is
    fitted. With the store off nothing can be remembered, so nothing is read.
    """
    if store_folder() is None:
        return None
    return _inputs_and_stored_report(dataset, settings or ProbeSettings(), PROBES)[3]


def _inputs_and_stored_report(
    dataset, settings: ProbeSettings, probes: Sequence[Probe]
) -> tuple[
    tuple[FeatureMatrices, np.ndarray, np.ndarray, list[str]], ContentMemo | None, str | None, ShortcutReport | None
]:
    """The probes' checked inputs, the file store's memo and key for them, and the report stored there (or None)."""
    dataset = _as_single_dataset(dataset)
    labels, folds, patient_ids = _probe_targets(dataset, settings.center_fraction)
    matrices = _dataset_features(dataset)
    memo, key = _remembered_reports(matrices, labels, folds, patient_ids, settings, probes)
    stored = None if memo is None or key is None else memo.recall(key)
    if stored is not None:
        memo.save()  # records the use, so the size bound evicts this report last
    report = None if stored is None else ShortcutReport.from_dict(json.loads(stored))
    return (matrices, labels, folds, patient_ids), memo, key, report


def _remembered_reports(
    matrices: FeatureMatrices,
    labels: np.ndarray,
    folds: np.ndarray,
    patient_ids: list[str],
    settings: ProbeSettings,
    probes: Sequence[Probe],
) -> tuple[ContentMemo | None, str | None]:
    """The file store's earlier shortcut reports and the key of this one: a hash of every input of the computation.

    The models and the bootstrap are deterministic given the features, labels, folds, patients and
    settings, so ``covid-ct export`` after ``covid-ct shortcuts`` reuses the report. Only the built-in
    probes are kept (custom ones cannot be told apart by name).
    """
    if tuple(probes) != PROBES:
        return None, None
    digest = hashlib.sha256()
    for array in (matrices.metadata, matrices.intensity, matrices.thumbnails, labels, folds):
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps([patient_ids, [settings.n_bootstrap, settings.seed, settings.center_fraction]]).encode())
    key = digest.hexdigest()
    version = kind_version(report_format=REPORT_FORMAT, scikit_learn=importlib.metadata.version("scikit-learn"))
    return open_memo("shortcut_report", version, keys=[key]), key
