"""Output files of a run: ``predictions.csv``, ``metrics.json``, plots, the results Markdown and provenance."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from covid_ct_scan_images.layout import CLASS_NAMES

#: Columns of ``predictions.csv``, in order.
PREDICTION_COLUMNS = ("image_id", "patient_id", "label", "probability", "split", "fold", "threshold")

CONFOUND_CAVEAT = (
    "**Confounding caveat.** In this dataset every positive is an adult COVID-19 radiograph from Cohen et al.'s "
    "covid-chestxray-dataset (collected from papers and case reports, many hospitals), and almost every negative is "
    "a pediatric radiograph from Kermany et al. (one hospital in Guangzhou). Label, age, source hospital, file "
    "format and image processing all coincide, so a model can score well by recognising the source or the "
    "patient's age instead of COVID-19. These numbers do not measure diagnostic ability and the model must not be "
    "used clinically. Compare them with the shortcut probes (`covid-ct shortcuts`) and with `--mask-center`."
)


def write_predictions(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write prediction rows as CSV with :data:`PREDICTION_COLUMNS`."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=PREDICTION_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in PREDICTION_COLUMNS})


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Read a ``predictions.csv`` written by :func:`write_predictions`."""
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            {
                **row,
                "label": int(row["label"]),
                "probability": float(row["probability"]),
                "threshold": float(row["threshold"]),
                "fold": int(row["fold"]) if row["fold"] != "" else None,
            }
            for row in csv.DictReader(handle)
        ]


def plot_results(rows: Sequence[dict[str, Any]], output_dir: Path, confusion_split: str) -> list[str]:
    """Write ``roc_curve.png``, ``pr_curve.png`` and ``confusion_matrix.png``; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    splits = list(dict.fromkeys(row["split"] for row in rows))
    data = {
        split: (
            np.array([row["label"] for row in rows if row["split"] == split]),
            np.array([row["probability"] for row in rows if row["split"] == split]),
            np.array([row["threshold"] for row in rows if row["split"] == split]),
        )
        for split in splits
    }
    roc_figure, roc_axes = plt.subplots(figsize=(5, 5))
    pr_figure, pr_axes = plt.subplots(figsize=(5, 5))
    roc_axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    for split, (labels, scores, _) in data.items():
        if labels.size == 0 or labels.min() == labels.max():
            continue  # a curve needs both classes
        fpr, tpr, _ = roc_curve(labels, scores)
        roc_axes.plot(fpr, tpr, label=split)
        precision, recall, _ = precision_recall_curve(labels, scores)
        line = pr_axes.plot(recall, precision, label=split)[0]
        pr_axes.axhline(labels.mean(), linestyle=":", color=line.get_color(), label=f"{split} chance (prevalence)")
    roc_axes.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC curve", xlim=(0, 1), ylim=(0, 1.02))
    pr_axes.set(
        xlabel="recall (sensitivity)", ylabel="precision", title="Precision-recall curve", xlim=(0, 1), ylim=(0, 1.02)
    )
    for axes in (roc_axes, pr_axes):
        axes.legend(loc="lower right" if axes is roc_axes else "upper right", fontsize="small")
    roc_figure.savefig(output_dir / "roc_curve.png", dpi=100, bbox_inches="tight")
    pr_figure.savefig(output_dir / "pr_curve.png", dpi=100, bbox_inches="tight")

    labels, scores, thresholds = data[confusion_split]
    matrix = confusion_matrix(labels, (scores >= thresholds).astype(int), labels=[0, 1])
    cm_figure, cm_axes = plt.subplots(figsize=(4, 4))
    cm_axes.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        cm_axes.text(j, i, str(value), ha="center", va="center", color="black", fontsize=14)
    cm_axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=CLASS_NAMES,
        yticklabels=CLASS_NAMES,
        xlabel="predicted",
        ylabel="true",
        title=f"{confusion_split}, selected threshold",
    )
    cm_figure.savefig(output_dir / "confusion_matrix.png", dpi=100, bbox_inches="tight")
    for figure in (roc_figure, pr_figure, cm_figure):
        plt.close(figure)
    return ["roc_curve.png", "pr_curve.png", "confusion_matrix.png"]


def _interval(result: dict, key: str) -> str:
    value, interval = result.get(key), result.get(f"{key}_ci")
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def shortcut_comparison(report_path: str | None, result: dict) -> dict[str, Any] | None:
    """The model's AUROC (from a metric ``result``) beside the best shortcut probe of a saved audit, if given."""
    if report_path is None:
        return None
    from covid_ct_scan_images.shortcuts import from_json

    report = from_json(report_path)
    best = report.best_shortcut()
    return {
        "report": report_path,
        "model_auroc": result["auroc"],
        "model_auroc_ci": result.get("auroc_ci"),
        "model_n_images": result["n"],
        "best_probe": best.name,
        "best_probe_features": best.features,
        "best_probe_auroc": best.auroc,
        "best_probe_auroc_ci": None if best.auroc_ci is None else list(best.auroc_ci),
        "probe_n_images": report.n_images,
    }


def _shortcut_markdown(comparison: dict[str, Any]) -> list[str]:
    model = {"auroc": comparison["model_auroc"], "auroc_ci": comparison["model_auroc_ci"]}
    probe = {"auroc": comparison["best_probe_auroc"], "auroc_ci": comparison["best_probe_auroc_ci"]}
    return [
        "",
        "### Against the best shortcut probe",
        "",
        "A probe that cannot see lung disease (`covid-ct shortcuts`, patient-grouped out-of-fold on "
        f"{comparison['probe_n_images']} images) beside this model ({comparison['model_n_images']} held-out "
        "images). A model that does not clearly beat the probe has shown no skill beyond the shortcut.",
        "",
        "| classifier | sees the lungs | AUROC [95% CI] |",
        "| --- | --- | --- |",
        f"| this model | yes | {_interval(model, 'auroc')} |",
        f"| best shortcut probe: {comparison['best_probe']} ({comparison['best_probe_features']}) | no | "
        f"{_interval(probe, 'auroc')} |",
    ]


def results_markdown(
    summary: dict[str, dict[str, dict]], description: str, comparison: dict[str, Any] | None = None
) -> str:
    """A Markdown results table (one row per split and threshold), the shortcut comparison and the caveat."""
    lines = [
        "## Results on COVID-19-CT SCAN IMAGES (chest radiographs)",
        "",
        description,
        "",
        "| split | threshold | n (pos) | AUROC [95% CI] | AUPRC [95% CI] (chance) | sensitivity [CI] | "
        "specificity [CI] | bal. acc. | MCC [CI] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, by_threshold in summary.items():
        for name, result in by_threshold.items():
            threshold = result["threshold"]
            shown = f"{threshold:.4f}" if isinstance(threshold, float) else "per fold"
            balanced = "n/a" if result["balanced_accuracy"] is None else f"{result['balanced_accuracy']:.3f}"
            chance = "n/a" if result["auprc_chance"] is None else f"{result['auprc_chance']:.3f}"
            lines.append(
                f"| {split} | {shown} ({name.replace('_', ' ')}) | {result['n']} ({result['n_positive']}) | "
                f"{_interval(result, 'auroc')} | {_interval(result, 'auprc')} ({chance}) | "
                f"{_interval(result, 'sensitivity')} | {_interval(result, 'specificity')} | {balanced} | "
                f"{_interval(result, 'mcc')} |"
            )
    if comparison is not None:
        lines += _shortcut_markdown(comparison)
    lines += ["", CONFOUND_CAVEAT, ""]
    return "\n".join(lines)


def library_versions() -> dict[str, str | None]:
    """Versions of Python and of every library the result depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in (
        "covid_ct_scan_images",
        "torch",
        "transformers",
        "accelerate",
        "datasets",
        "evaluate",
        "scikit-learn",
        "numpy",
        "pillow",
        "matplotlib",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description() -> str:
    """The accelerator the run used, in words."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON (non-finite numbers become null)."""
    path.write_text(json.dumps(_json_ready(record), indent=2) + "\n", encoding="utf-8")
