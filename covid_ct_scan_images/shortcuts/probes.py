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
from ..statistics import PresortedScores, group_draw_counts, percentile_interval, ranking_metrics
from .features import (
    CENTER_FRACTION,
    HISTOGRAM_BINS,
    THUMBNAIL_SIDE,
    FeatureMatrices,
    ImageFeatureError,
    border_pixels,
    center_pixels,
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


# The border and centre probes are fitted on the pixels their region keeps, not on whole thumbnails with the
# rest zeroed: zero columns stay zero after standardisation and the L2 penalty keeps them out of the model, so
# the model is the same (scores equal to about 1e-11, the same ranking: the same AUROC and AUPRC) in half the time.
def _border(matrices: FeatureMatrices, fraction: float) -> np.ndarray:
    return border_pixels(matrices.thumbnails, fraction)


def _center(matrices: FeatureMatrices, fraction: float) -> np.ndarray:
    return center_pixels(matrices.thumbnails, fraction)


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
    values: list[tuple[list[float], list[float]]] = [([], []) for _ in scores]
    resamples = group_draw_counts(patient_ids, n_resamples, seed)
    for draws in progress(resamples, "bootstrap", total=n_resamples, unit="resample", size=len):
        for score, (aurocs, auprcs) in zip(presorted, values, strict=True):
            auroc, auprc = score.metrics_of_resamples(draws)
            aurocs.extend(auroc[~np.isnan(auroc)])
            auprcs.extend(auprc[~np.isnan(auprc)])
    return [(percentile_interval(aurocs), percentile_interval(auprcs)) for aurocs, auprcs in values]


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
    settings = ProbeSettings(n_bootstrap, seed, center_fraction)
    return shortcut_report(_dataset_inputs(dataset, settings), settings, probes)


@dataclass(frozen=True)
class ProbeInputs:
    """What the probes are fitted and scored on: one row per image, in the ``full`` config's order."""

    matrices: FeatureMatrices
    labels: np.ndarray
    folds: np.ndarray
    patient_ids: list[str]


def shortcut_report(inputs: ProbeInputs, settings: ProbeSettings, probes: Sequence[Probe] = PROBES) -> ShortcutReport:
    """The report the file store holds for ``inputs`` and ``settings``, else the probes scored now (and stored)."""
    memo, key = _remembered_reports(inputs, settings, probes)
    stored = _stored_report(memo, key)
    if stored is not None:
        return stored
    labels = inputs.labels
    results = _score_probes(probes, inputs, settings)
    report = ShortcutReport(
        n_images=len(labels),
        n_patients=len(set(inputs.patient_ids)),
        n_positive=int(labels.sum()),
        n_folds=int(np.unique(inputs.folds).size),
        n_bootstrap=settings.n_bootstrap,
        seed=settings.seed,
        center_fraction=settings.center_fraction,
        results=tuple(results),
    )
    if memo is not None and key is not None:
        memo.learn(key, json.dumps(report.to_dict()).encode())
        memo.save()
    return report


def check_targets(labels: np.ndarray, folds: np.ndarray, center_fraction: float) -> None:
    """Refuse inputs the probes cannot score: one class only, one fold only, a centre fraction outside (0, 1)."""
    if not 0.0 < center_fraction < 1.0:
        raise DatasetError(f"the centre fraction must be between 0 and 1, got {center_fraction}")
    if np.unique(labels).size < 2:
        raise DatasetError(f"the shortcut probes need both classes; all {len(labels)} images have label {labels[0]}")
    if np.unique(folds).size < 2:
        raise DatasetError("the shortcut probes need at least two folds in the 'fold' column")


def _dataset_inputs(dataset, settings: ProbeSettings) -> ProbeInputs:
    """The probes' checked inputs read from a dataset's columns and image bytes."""
    dataset = _as_single_dataset(dataset)
    missing = [column for column in REQUIRED_COLUMNS if column not in dataset.column_names]
    if missing:
        raise DatasetError(
            f"the dataset lacks the column(s) {', '.join(missing)}; load it with config='full' "
            "(load_dataset(data_dir=..., config='full'))"
        )
    labels = np.asarray(dataset["label"], dtype=np.int64)
    folds = np.asarray(dataset["fold"], dtype=np.int64)
    check_targets(labels, folds, settings.center_fraction)
    patient_ids = [str(patient) for patient in dataset["patient_id"]]
    return ProbeInputs(_dataset_features(dataset), labels, folds, patient_ids)


def undecodable(name: str, error: ImageFeatureError) -> DatasetError:
    """The error naming an image (by ``name``) whose features could not be read."""
    return DatasetError(
        f"{name} could not be decoded for the shortcut probes ({error.__cause__}); rebuild the dataset "
        "with --full-decode to find and leave out damaged images"
    )


def _dataset_features(dataset) -> FeatureMatrices:
    """The probes' features of every image; an image that cannot be decoded is named in the error."""
    try:
        return extract_features(progress(_image_bytes(dataset), "shortcut features", total=len(dataset)))
    except ImageFeatureError as error:
        has_id = "image_id" in dataset.column_names
        name = dataset.select_columns(["image_id"])[error.index]["image_id"] if has_id else f"row {error.index}"
        raise undecodable(name, error) from error


def _score_probes(probes: Sequence[Probe], inputs: ProbeInputs, settings: ProbeSettings) -> list[ProbeResult]:
    """The chance line, then each probe's out-of-fold AUROC and AUPRC with their patient-bootstrap intervals."""
    labels, fraction = inputs.labels, settings.center_fraction
    scores, widths = [], []
    # The models are small: one thread is faster than OpenMP's spin-waiting on a busy machine.
    with threadpool_limits(limits=1):
        for probe in progress(probes, "shortcut probes", unit="probe"):
            features = probe.select(inputs.matrices, fraction)
            widths.append(features.shape[1])
            scores.append(out_of_fold_scores(partial(probe.make_model, settings.seed), features, labels, inputs.folds))
    intervals = probe_intervals(labels, scores, inputs.patient_ids, settings.n_bootstrap, settings.seed)
    results = [chance_result(float(labels.mean()))]
    for probe, width, score, (auroc_ci, auprc_ci) in zip(probes, widths, scores, intervals, strict=True):
        auroc, auprc = ranking_metrics(labels, score)
        results.append(
            ProbeResult(
                probe=probe.probe,
                model=probe.model,
                features=probe.features.format(center=f"{fraction:.0%}"),
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
    settings = settings or ProbeSettings()
    return remembered_report(_dataset_inputs(dataset, settings), settings)


def remembered_report(inputs: ProbeInputs, settings: ProbeSettings) -> ShortcutReport | None:
    """The report the file store holds for ``inputs`` and ``settings`` (built-in probes), or ``None``; fits nothing."""
    return _stored_report(*_remembered_reports(inputs, settings, PROBES))


def _stored_report(memo: ContentMemo | None, key: str | None) -> ShortcutReport | None:
    """The report the file store holds under ``key``, or ``None``."""
    stored = None if memo is None or key is None else memo.recall(key)
    if stored is None:
        return None
    memo.save()  # records the use, so the size bound evicts this report last
    return ShortcutReport.from_dict(json.loads(stored))


def _remembered_reports(
    inputs: ProbeInputs, settings: ProbeSettings, probes: Sequence[Probe]
) -> tuple[ContentMemo | None, str | None]:
    """The file store's earlier shortcut reports and the key of this one: a hash of every input of the computation.

    The models and the bootstrap are deterministic given the features, labels, folds, patients and
    settings, so ``covid-ct export`` after ``covid-ct shortcuts`` reuses the report. Only the built-in
    probes are kept (custom ones cannot be told apart by name).
    """
    if tuple(probes) != PROBES:
        return None, None
    digest = hashlib.sha256()
    matrices = inputs.matrices
    for array in (matrices.metadata, matrices.intensity, matrices.thumbnails, inputs.labels, inputs.folds):
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(
        json.dumps([inputs.patient_ids, [settings.n_bootstrap, settings.seed, settings.center_fraction]]).encode()
    )
    key = digest.hexdigest()
    version = kind_version(
        report_format=REPORT_FORMAT,
        scikit_learn=importlib.metadata.version("scikit-learn"),
        pixel_probes="masked pixels left out",  # earlier reports fitted them as zeros and counted 4096 features
    )
    return open_memo("shortcut_report", version, keys=[key]), key
