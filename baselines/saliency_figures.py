"""Figures of the saliency maps: the overview grid and one overlay per image (matplotlib, no display needed)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from covid_ct_scan_images.layout import CLASS_NAMES
from radiograph_transforms import ProcessorTransform
from saliency_records import ImageSaliency, SaliencySummary

#: Columns of the overview grid.
GRID_COLUMNS = 6

#: Images drawn in the overview grid at most (misclassified and most confident first).
GRID_LIMIT = 32


def display_pixels(pixel_values: torch.Tensor, transform: ProcessorTransform) -> np.ndarray:
    """The model's normalised inputs ``(B, 3, H, W)`` back to grayscale 0..1 ``(B, H, W)`` for display."""
    processor = transform.processor
    std = torch.as_tensor(processor.image_std, dtype=torch.float32).view(1, -1, 1, 1)
    mean = torch.as_tensor(processor.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
    rescale_factor = getattr(processor, "rescale_factor", 1 / 255)
    values = (pixel_values.float() * std + mean) / (rescale_factor * 255.0)
    return values.mean(dim=1).clamp(0, 1).numpy()


def display_order(records: Sequence[ImageSaliency]) -> list[int]:
    """Misclassified images first, then correct ones; most confident first within each."""
    return sorted(range(len(records)), key=lambda i: (records[i].correct, -records[i].confidence))


def _shorten(text: str, limit: int = 30) -> str:
    """``text``, or its last ``limit - 1`` characters after an ellipsis, so that titles fit their panel."""
    return text if len(text) <= limit else "\u2026" + text[-(limit - 1) :]


def _draw(axes, record: ImageSaliency, image: np.ndarray, heat: np.ndarray, summary: SaliencySummary) -> None:
    from matplotlib.patches import Rectangle

    axes.imshow(image, cmap="gray", vmin=0, vmax=1)
    peak = float(heat.max())
    axes.imshow(heat / peak if peak > 0 else heat, cmap="jet", alpha=0.4, vmin=0, vmax=1)
    side = image.shape[0]
    margin = round(side * (1 - summary.center_fraction) / 2)
    axes.add_patch(
        Rectangle(
            (margin - 0.5, margin - 0.5),
            side - 2 * margin,
            side - 2 * margin,
            fill=False,
            color="white",
            linestyle="--",
            linewidth=1,
        )
    )
    share = "empty map" if record.border_share is None else f"border {record.border_share:.2f}"
    verdict = "correct" if record.correct else "WRONG"
    axes.set_title(
        f"{_shorten(record.image_id)}\ntrue {CLASS_NAMES[record.label]}, p={record.probability:.2f}\n"
        f"called {CLASS_NAMES[record.decision]} ({verdict}), {share}",
        fontsize=8,
        color="black" if record.correct else "red",
    )
    axes.set_axis_off()


def _caption(summary: SaliencySummary) -> str:
    everything = summary.groups["all"]
    mean = "n/a" if everything.mean is None else f"{everything.mean:.2f}"
    return (
        f"{summary.method} ({summary.model_type}), {summary.split} split, threshold {summary.threshold:.3f}"
        f"{f', mask_center {summary.mask_center:g}' if summary.mask_center else ''}. Dashed square: central "
        f"{summary.center_fraction:.0%}; border share = attribution outside it (mean {mean}; an even map scores "
        f"{summary.uniform_border_share:.2f}). Red: misclassified. Heat: per image, max = 1."
    )


def save_grid(
    path: Path,
    records: Sequence[ImageSaliency],
    images: np.ndarray,
    heat: np.ndarray,
    summary: SaliencySummary,
    limit: int = GRID_LIMIT,
) -> str:
    """Overlay grid of up to ``limit`` images in :func:`display_order`; returns the file's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = display_order(records)[:limit]
    columns = min(GRID_COLUMNS, len(order))
    rows = -(-len(order) // columns)
    height = 3.4 * rows + 0.9  # inches: three title lines per panel, up to two caption lines
    figure, grid = plt.subplots(rows, columns, figsize=(2.6 * columns, height), squeeze=False)
    for axes in grid.flat:
        axes.set_axis_off()
    for axes, i in zip(grid.flat, order, strict=False):
        _draw(axes, records[i], images[i], heat[i], summary)
    shown = "" if len(order) == len(records) else f" (first {len(order)} of {len(records)})"
    # Wrapped by hand: matplotlib's own wrap ignores tight_layout and cut the caption at both edges.
    caption = textwrap.fill(_caption(summary) + shown, width=int(15 * 2.6 * columns))
    figure.suptitle(caption, fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.8 / height), h_pad=1.2)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def save_overlays(
    folder: Path, records: Sequence[ImageSaliency], images: np.ndarray, heat: np.ndarray, summary: SaliencySummary
) -> list[str]:
    """One overlay PNG per image, ``folder/IMAGE_ID.png``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for record, image, map_ in zip(records, images, heat, strict=True):
        figure, axes = plt.subplots(figsize=(4, 4.6))
        _draw(axes, record, image, map_, summary)
        path = folder / f"{Path(record.image_id).name}.png"
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(str(path))
    return paths
