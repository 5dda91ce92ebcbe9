"""The run's figures: ROC and precision-recall curves, the confusion matrix, training curves, a grid of test images.

Every figure carries its numbers (AUROC / AP in the legends, counts and rates in the matrix) and tells the
validation split (where the threshold was chosen) from the held-out one by colour and line style.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window or need a display

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from covid_ct_scan_images.layout import CLASS_NAMES

#: Line style per split: the held-out split solid and strong, validation dashed.
_STYLE = {"validation": {"color": "tab:orange", "linestyle": "--", "linewidth": 1.5}}
_HELD_OUT_STYLE = {"color": "tab:blue", "linestyle": "-", "linewidth": 2.2}


def _by_split(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    splits = dict.fromkeys(row["split"] for row in rows)
    return {
        split: tuple(
            np.array([row[key] for row in rows if row["split"] == split], dtype=float)
            for key in ("label", "probability", "threshold")
        )
        for split in splits
    }


def plot_roc_and_pr(rows: Sequence[dict[str, Any]], output_dir: Path) -> list[Path]:
    """``roc_curve.png`` and ``pr_curve.png``: one curve per split, its AUROC / AP, the chance level, the threshold."""
    roc_figure, roc_axes = plt.subplots(figsize=(5.5, 5.5))
    pr_figure, pr_axes = plt.subplots(figsize=(5.5, 5.5))
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance (AUROC 0.5)")
    for split, (labels, scores, thresholds) in _by_split(rows).items():
        if labels.size == 0 or labels.min() == labels.max():
            continue  # a curve needs both classes
        style = _STYLE.get(split, _HELD_OUT_STYLE)
        n = f"n={labels.size}, {int(labels.sum())} pos"
        predicted = scores >= thresholds
        sensitivity = predicted[labels == 1].mean()
        false_positive_rate = predicted[labels == 0].mean()
        precision = predicted[labels == 1].sum() / max(predicted.sum(), 1)
        fpr, tpr, _ = roc_curve(labels, scores)
        roc_axes.plot(fpr, tpr, **style, label=f"{split}: AUROC {roc_auc_score(labels, scores):.3f} ({n})")
        roc_axes.plot(false_positive_rate, sensitivity, "o", color=style["color"], markersize=7)
        curve_precision, curve_recall, _ = precision_recall_curve(labels, scores)
        pr_axes.plot(
            curve_recall, curve_precision, drawstyle="steps-post", **style,
            label=f"{split}: AP {average_precision_score(labels, scores):.3f} ({n})",
        )
        pr_axes.axhline(labels.mean(), color=style["color"], linestyle=":", linewidth=1,
                        label=f"{split} chance = prevalence {labels.mean():.3f}")
        if predicted.any():  # precision is undefined when nothing is called positive
            pr_axes.plot(sensitivity, precision, "o", color=style["color"], markersize=7)
    roc_axes.set(xlabel="1 - specificity (false-positive rate)", ylabel="sensitivity (true-positive rate)",
                 title="ROC curve (dots: chosen threshold)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.02))
    pr_axes.set(xlabel="recall (sensitivity)", ylabel="precision (positive predictive value)",
                title="Precision-recall curve (dots: chosen threshold)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.02))
    roc_axes.legend(loc="lower right", fontsize="small")
    pr_axes.legend(loc="best", fontsize="small")
    paths = [output_dir / "roc_curve.png", output_dir / "pr_curve.png"]
    for figure, path in zip((roc_figure, pr_figure), paths, strict=True):
        for axes in figure.axes:
            axes.grid(alpha=0.3)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
    return paths


def plot_confusion_matrix(rows: Sequence[dict[str, Any]], split: str, path: Path) -> Path:
    """The confusion matrix of ``split`` at each row's threshold: counts and the rate within each true class."""
    labels, scores, thresholds = _by_split(rows)[split]
    matrix = confusion_matrix(labels.astype(int), (scores >= thresholds).astype(int), labels=[0, 1])
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    names = [["true negative", "false positive"], ["false negative", "true positive"]]
    figure, axes = plt.subplots(figsize=(5, 4.4))
    axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if rates[i, j] > 0.55 else "black"
        axes.text(j, i, f"{count}\n{names[i][j]}\n{rates[i, j]:.0%} of {CLASS_NAMES[i]}s",
                  ha="center", va="center", color=colour, fontsize=11)
    unique = sorted(set(thresholds.tolist()))
    shown = f"{unique[0]:.4f}" if len(unique) == 1 else "each fold's own"
    axes.set(xticks=[0, 1], yticks=[0, 1], xticklabels=[f"predicted {n}" for n in CLASS_NAMES],
             yticklabels=[f"true {n}" for n in CLASS_NAMES], title=f"{split}, threshold {shown}")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def plot_training_curves(log_history: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Training and validation loss, and validation AUROC / AUPRC, per epoch (from ``trainer.state.log_history``)."""
    train = [(entry["epoch"], entry["loss"]) for entry in log_history if "loss" in entry and "epoch" in entry]
    evaluations = [entry for entry in log_history if "eval_loss" in entry]
    if not train and not evaluations:
        return None
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        loss_axes.plot(*zip(*train, strict=True), marker=".", color=_HELD_OUT_STYLE["color"], label="training loss")
    epochs = [entry["epoch"] for entry in evaluations]
    if evaluations:
        loss_axes.plot(epochs, [entry["eval_loss"] for entry in evaluations], marker="o", **_STYLE["validation"],
                       label="validation loss")
        for key, marker in (("eval_auroc", "o"), ("eval_auprc", "s")):
            values = [entry.get(key) for entry in evaluations]
            metric_axes.plot(epochs, values, marker=marker, label=f"validation {key[5:].upper()}")
        best = max(range(len(evaluations)), key=lambda i: evaluations[i].get("eval_auprc") or -1.0)
        metric_axes.axvline(epochs[best], color="grey", linestyle=":", label=f"best AUPRC, epoch {epochs[best]:g}")
    loss_axes.set(xlabel="epoch", ylabel="class-weighted cross-entropy", title="Loss")
    metric_axes.set(xlabel="epoch", ylabel="score", title="Validation ranking metrics", ylim=(-0.02, 1.02))
    for axes in (loss_axes, metric_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def plot_image_grid(
    images: Sequence[Image.Image], rows: Sequence[dict[str, Any]], path: Path, columns: int = 6, limit: int = 24
) -> Path:
    """Held-out images with true label, probability and decision: misclassified first, most confident first."""
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            (rows[i]["probability"] >= rows[i]["threshold"]) == bool(rows[i]["label"]),
            -abs(rows[i]["probability"] - rows[i]["threshold"]),
        ),
    )[:limit]
    n_rows = max(1, -(-len(order) // columns))
    figure, grid = plt.subplots(n_rows, columns, figsize=(2.2 * columns, 3.0 * n_rows), squeeze=False)
    for axes in grid.ravel():
        axes.axis("off")
    for axes, index in zip(grid.ravel(), order, strict=False):
        row = rows[index]
        decision = int(row["probability"] >= row["threshold"])
        correct = decision == row["label"]
        axes.imshow(images[index].convert("L"), cmap="gray", vmin=0, vmax=255)
        axes.set_title(
            f"true {CLASS_NAMES[row['label']]}\np={row['probability']:.3f} -> {CLASS_NAMES[decision]}",
            fontsize=9, color="black" if correct else "crimson", fontweight="normal" if correct else "bold",
        )
        if not correct:
            for spine in axes.spines.values():
                spine.set(visible=True, color="crimson", linewidth=3)
            axes.axis("on")
            axes.set(xticks=[], yticks=[])
    wrong = sum((r["probability"] >= r["threshold"]) != bool(r["label"]) for r in rows)
    figure.suptitle(f"{rows[0]['split']}: {wrong} of {len(rows)} misclassified (red, shown first); "
                    f"p = probability of positive, threshold {rows[0]['threshold']:.4f}"
                    + ("" if len(rows) <= limit else f"; first {limit} shown"), fontsize=11)
    figure.tight_layout(h_pad=2.0)
    figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(figure)
    return path
