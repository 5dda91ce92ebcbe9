"""External validation: a finished run scored on another labelled chest X-ray set, at its decision threshold.

The other set is anything ``datasets.load_dataset`` reads: an image folder with one subfolder per class, an exported
(Parquet) folder, or a Hub id. Its labels are mapped to negative / positive (or dropped, and counted) with a label
map; the metrics and intervals are those of the run's own test split (the repository's metric module, patient
bootstrap when the set has a ``patient_id`` column), and the drop is the run's in-dataset test result minus this one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from covid_ct_scan_images.layout import CLASS_NAMES
from evaluation import load_metric, summarise
from run_outputs import with_interval, write_json, write_predictions
from trained_run import TrainedRun, predict_probabilities

#: Label-map target that leaves an image out (counted in the result, never silently).
DROP = "drop"

#: Metrics whose in-dataset minus external difference is reported.
COMPARED_METRICS = ("auroc", "auprc", "sensitivity", "specificity", "balanced_accuracy", "mcc")

#: Name of the split in the rows handed to the metric module.
EXTERNAL_SPLIT = "external"


@dataclass(frozen=True)
class ExternalSet:
    """The images kept from the other set, their mapped labels and patient groups, and what was left out."""

    source: str
    split: str
    images: Any  # a column of undecoded images (bytes/path dicts)
    image_ids: list[str]
    labels: list[int]
    groups: list[str]
    grouped_by_patient: bool
    label_map: dict[str, str]
    dropped: dict[str, int]


def parse_label_map(spec: str | None) -> dict[str, str]:
    """``"COVID=positive,normal=negative,pneumonia=drop"`` as a dict; ``ValueError`` naming the bad entry."""
    if not spec:
        return {}
    mapping: dict[str, str] = {}
    for entry in spec.split(","):
        name, separator, target = entry.partition("=")
        if not separator or not name.strip() or target.strip() not in (*CLASS_NAMES, DROP):
            raise ValueError(f"--label-map entry {entry!r} must be NAME=negative, NAME=positive or NAME=drop")
        mapping[name.strip()] = target.strip()
    return mapping


def _label_names(split: datasets.Dataset) -> list[str]:
    feature = split.features.get("label")
    if feature is None:
        raise ValueError(f"the set has no 'label' column (columns: {', '.join(split.column_names)})")
    values = split["label"]
    if isinstance(feature, datasets.ClassLabel):
        return [feature.int2str(int(value)) for value in values]
    return [str(value) for value in values]


def load_external_set(
    source: str, config: str | None = None, split: str | None = None, label_map: dict[str, str] | None = None
) -> ExternalSet:
    """Load ``source`` with ``datasets.load_dataset`` and map its labels; ``ValueError`` for unmapped labels.

    ``split`` defaults to ``test`` when the set has one, else its only split. Without a ``label_map`` the labels
    must already be ``negative`` / ``positive``.
    """
    loaded = datasets.load_dataset(source, config)
    if split is None:
        if "test" in loaded:
            split = "test"
        elif len(loaded) == 1:
            split = next(iter(loaded))
        else:
            raise ValueError(f"{source} has splits {', '.join(loaded)}; choose one with --split")
    if split not in loaded:
        raise ValueError(f"{source} has no split {split!r} (it has {', '.join(loaded)})")
    data = loaded[split]
    names = _label_names(data)
    mapping = label_map or {name: name for name in CLASS_NAMES}
    unmapped = Counter(name for name in names if name not in mapping)
    if unmapped:
        found = ", ".join(f"{name!r} ({count} images)" for name, count in sorted(unmapped.items()))
        raise ValueError(
            f"labels of {source} not in the label map: {found}; give --label-map NAME=negative|positive|drop,..."
        )
    kept = [i for i, name in enumerate(names) if mapping[name] != DROP]
    dropped = Counter(name for name in names if mapping[name] == DROP)
    data = data.select(kept)
    labels = [CLASS_NAMES.index(mapping[names[i]]) for i in kept]
    undecoded = data.cast_column("image", datasets.Image(decode=False))
    images = undecoded["image"]
    if "image_id" in data.column_names:
        image_ids = [str(value) for value in data["image_id"]]
    else:
        image_ids = [Path(image.get("path") or f"{split}-{i}").name for i, image in enumerate(images)]
    grouped = "patient_id" in data.column_names
    groups = [str(value) for value in data["patient_id"]] if grouped else image_ids
    return ExternalSet(source, split, images, image_ids, labels, groups, grouped, mapping, dict(dropped))


def evaluate_external(
    run: TrainedRun,
    external: ExternalSet,
    output_dir: Path,
    n_bootstrap: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Score ``external`` with ``run`` at its ``decision_threshold``; write and return ``external_metrics.json``.

    Also writes ``external_predictions.csv``. ``drop`` holds in-dataset test minus external, per metric, at the
    selected threshold (positive: worse outside the training distribution).
    """
    if not external.labels:
        raise ValueError(f"no images of {external.source} are left after the label map")
    probabilities = predict_probabilities(run, external.images, batch_size)
    rows = [
        {
            "image_id": image_id,
            "patient_id": group,
            "label": label,
            "probability": float(probability),
            "split": EXTERNAL_SPLIT,
            "threshold": run.threshold,
        }
        for image_id, group, label, probability in zip(
            external.image_ids, external.groups, external.labels, probabilities, strict=True
        )
    ]
    result = summarise(rows, load_metric(), n_bootstrap, seed)[EXTERNAL_SPLIT]
    in_dataset = run.record.get("test", {}).get("at_selected_threshold")
    drop = None
    if in_dataset is not None:
        drop = {
            name: None
            if in_dataset.get(name) is None or result["at_selected_threshold"][name] is None
            else in_dataset[name] - result["at_selected_threshold"][name]
            for name in COMPARED_METRICS
        }
    record = {
        "run": str(run.run_dir),
        "model": run.record.get("model"),
        "source": external.source,
        "split": external.split,
        "label_map": external.label_map,
        "dropped": external.dropped,
        "n_images": len(external.labels),
        "n_positive": sum(external.labels),
        "bootstrap_groups": "patient_id" if external.grouped_by_patient else "image (the set has no patient_id)",
        "threshold": run.threshold,
        "mask_center": run.transform.mask_center,
        "external": result,
        "in_dataset_test": in_dataset,
        "drop": drop,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(output_dir / "external_predictions.csv", rows)
    write_json(output_dir / "external_metrics.json", record)
    return record


def comparison_table(record: dict[str, Any]) -> list[str]:
    """In-dataset test beside external, per metric at the run's decision threshold, as Markdown lines."""
    external = record["external"]["at_selected_threshold"]
    in_dataset = record["in_dataset_test"] or {}
    lines = ["| metric | in-dataset test [95% CI] | external [95% CI] | drop |", "| --- | --- | --- | --- |"]
    for name in COMPARED_METRICS:
        drop = (record["drop"] or {}).get(name)
        lines.append(
            f"| {name} | {with_interval(in_dataset, name)} | {with_interval(external, name)} | "
            f"{'n/a' if drop is None else f'{drop:+.3f}'} |"
        )
    return lines
