"""Where a trained run looks: Grad-CAM maps, the share of attribution outside the image centre, and their figures.

Method: **Grad-CAM** (Selvaraju et al. 2017) for both architectures, explaining the run's own decision: the target is
the logit margin of the decided class (``z_positive - z_negative`` when the probability reaches the run's
``decision_threshold``, its negative otherwise), so the map shows what pushed the model towards the call it made.
The threshold folded into the classifier's bias shifts that margin by a constant, which leaves its gradient alone.

* ConvNeXt: the output of the last stage (the last feature map before global pooling).
* ViT: the tokens entering the last encoder block (its ``layernorm_before`` output). Not the block's output: the
  classifier reads only the [CLS] token, so the patch tokens leaving the last block receive no gradient at all.
  Grad-CAM rather than attention rollout (Abnar & Zuidema 2020) because rollout is class-agnostic (it traces how
  information flows into [CLS], not which evidence supports "positive"), needs the explicit attention weights that
  the fused SDPA kernels do not return, and would make the border score of the two architectures incomparable. Its
  resolution is the patch grid (14 x 14 for ViT-B/16 at 224 px), enough to tell border from centre.

Maps are computed on the images exactly as the run's reported predictions saw them (:func:`trained_run.load_run`:
the image processor saved with the model, the run's ``--mask-center``), with the probability and decision of
``predictions.csv``, upsampled bilinearly to the input size, one batched backward pass per batch. The **border
share** of a map is its attribution mass outside the central square (the shortcut probes' ``CENTER_FRACTION`` and
``center_mask``: the region ``--mask-center`` blanks and the border-only probe never sees); a map spread evenly
over the image scores the area share of the border, 1 - 0.6^2 = 0.64.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from covid_ct_scan_images.layout import CLASS_NAMES
from covid_ct_scan_images.shortcuts import CENTER_FRACTION, DEFAULT_BOOTSTRAP
from covid_ct_scan_images.shortcuts.features import center_mask
from covid_ct_scan_images.statistics import bootstrap_intervals
from run_outputs import write_json
from saliency_figures import display_pixels, save_grid, save_overlays
from saliency_records import GROUPS, GroupSummary, ImageSaliency, SaliencySummary
from trained_run import TrainedRun, image_batches, load_run, reported_probability

#: Name of the method, as written to ``saliency.json`` and the card, per model type.
METHODS = {
    "vit": "Grad-CAM on the tokens entering the last encoder block",
    "convnext": "Grad-CAM on the last stage's feature map",
}

#: Where each architecture's Grad-CAM layer sits, as a pattern over ``model.named_modules()`` (the last match is
#: used). Matched by name rather than attribute path because transformers renamed ViT's ``encoder.layer`` to
#: ``layers`` in 5.x; ``tests/test_saliency.py`` fails if neither form matches any more.
LAYER_PATTERNS = {
    "vit": re.compile(r"(^|\.)layers?\.\d+\.layernorm_before$"),
    "convnext": re.compile(r"(^|\.)encoder\.stages\.\d+$"),
}

def gradcam_layer(model: nn.Module) -> nn.Module:
    """The module whose output Grad-CAM weighs (see :data:`LAYER_PATTERNS`); ``ValueError`` for other models."""
    model_type = model.config.model_type
    if model_type not in LAYER_PATTERNS:
        raise ValueError(f"saliency maps support ViT and ConvNeXt checkpoints, not model type {model_type!r}")
    matches = [module for name, module in model.named_modules() if LAYER_PATTERNS[model_type].search(name)]
    if not matches:
        raise ValueError(f"no module matching {LAYER_PATTERNS[model_type].pattern} in this {model_type} model")
    return matches[-1]


def gradcam(
    model: nn.Module, pixel_values: torch.Tensor, threshold: float = 0.5, logit_offset: float = 0.0
) -> tuple[np.ndarray, torch.Tensor]:
    """Positive-class probabilities ``(B,)`` and Grad-CAM maps ``(B, H, W)`` at input size, in one batched pass.

    ``logit_offset`` is the one folded into the model's positive logit (``config.decision_logit_offset``; 0 for a
    model without one): the probabilities are those before folding, as in ``predictions.csv``. Each image's target
    is the logit margin of the class decided at ``threshold`` on them. Images do not interact in these models
    (layer norms, no batch norm), so the gradient of the summed targets is every image's own gradient.
    """
    captured: list[torch.Tensor] = []
    handle = gradcam_layer(model).register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        with torch.enable_grad():
            logits = model(pixel_values=pixel_values).logits.float()
            probabilities = reported_probability(logits, logit_offset)
            sign = torch.where(torch.from_numpy(probabilities >= threshold), 1.0, -1.0).to(logits.device)
            (gradients,) = torch.autograd.grad((sign * (logits[:, 1] - logits[:, 0])).sum(), captured[-1])
    finally:
        handle.remove()
    activations, gradients = captured[-1].detach().float(), gradients.float()
    if activations.dim() == 3:  # ViT tokens (B, 1 + N, D): keep the N patch tokens, back on their grid
        height, width = pixel_values.shape[-2:]
        patch = model.config.patch_size
        rows, columns = height // patch, width // patch
        activations, gradients = activations[:, -rows * columns :], gradients[:, -rows * columns :]
        cams = (activations * gradients.mean(dim=1, keepdim=True)).sum(dim=-1).reshape(-1, rows, columns)
    else:  # ConvNeXt feature map (B, C, h, w)
        cams = (activations * gradients.mean(dim=(2, 3), keepdim=True)).sum(dim=1)
    cams = F.interpolate(cams.relu().unsqueeze(1), size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)
    return probabilities, cams.squeeze(1)


def central_region(height: int, width: int, fraction: float) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the central square, the same region as the shortcut probes' centre."""
    if height != width:
        raise ValueError(f"the border share needs square model inputs, not {height} x {width}")
    return center_mask(side=height, fraction=fraction).reshape(height, width)


def border_shares(maps: torch.Tensor, fraction: float) -> np.ndarray:
    """Share of each map's mass outside the central region; NaN for an all-zero map."""
    inside = torch.from_numpy(central_region(*maps.shape[-2:], fraction)).to(maps.device)
    total = maps.sum(dim=(1, 2))
    outside = (maps * ~inside).sum(dim=(1, 2))
    return torch.where(total > 0, outside / total.clamp_min(1e-30), torch.nan).cpu().numpy()


def summarise_group(shares: np.ndarray, patient_ids: Sequence[str], n_bootstrap: int, seed: int) -> GroupSummary:
    """Mean and median border share of a group, the mean's interval from resampling its patients."""
    patients = np.asarray(patient_ids, dtype=str)
    defined = ~np.isnan(shares)
    if not defined.any():
        return GroupSummary(len(shares), len(set(patients)), int((~defined).sum()), None, None, None)
    kept, kept_patients = shares[defined], patients[defined]
    interval = None
    if len(set(kept_patients)) > 1:
        means = bootstrap_intervals(lambda drawn: {"mean": float(kept[drawn].mean())}, kept_patients, n_bootstrap, seed)
        interval = means.get("mean")
    return GroupSummary(
        n_images=len(shares),
        n_patients=len(set(patients)),
        n_empty_maps=int((~defined).sum()),
        mean=float(shares[defined].mean()),
        mean_ci=interval,
        median=float(np.median(shares[defined])),
    )


def select_images(labels: Sequence[int], n_images: int | None) -> list[int]:
    """Positions of up to ``n_images`` images, half from each class where possible, in split order."""
    if n_images is None or n_images >= len(labels):
        return list(range(len(labels)))
    by_class = [[i for i, label in enumerate(labels) if label == c] for c in range(len(CLASS_NAMES))]
    wanted_positive = min(len(by_class[1]), max(n_images // 2, n_images - len(by_class[0])))
    chosen = by_class[1][:wanted_positive] + by_class[0][: n_images - wanted_positive]
    return sorted(chosen)


def saliency_maps(
    run: TrainedRun, images: Sequence[Any], center_fraction: float, batch_size: int = 16, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """Probabilities, border shares, model inputs ``(N, 3, H, W)`` and maps ``(N, H, W)`` of ``images``, batched."""
    probabilities, shares, pixels, maps = [], [], [], []
    batches = image_batches(images, run.transform, batch_size)
    for pixel_values in tqdm(
        batches, total=-(-len(images) // batch_size), desc="saliency maps", unit="batch", disable=not progress
    ):
        batch_probabilities, batch_maps = gradcam(
            run.model, pixel_values.to(run.device), run.threshold, run.logit_offset
        )
        probabilities.append(batch_probabilities)
        shares.append(border_shares(batch_maps, center_fraction))
        pixels.append(pixel_values)
        maps.append(batch_maps.cpu())
    if not pixels:
        raise ValueError("no images to explain")
    return np.concatenate(probabilities), np.concatenate(shares), torch.cat(pixels), torch.cat(maps)


def explain_run(
    run_dir: Path,
    split: datasets.Dataset,
    output_dir: Path,
    n_images: int | None = None,
    split_name: str = "test",
    center_fraction: float = CENTER_FRACTION,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    batch_size: int = 16,
    per_image: bool = False,
    progress: bool = True,
    run: TrainedRun | None = None,
) -> SaliencySummary:
    """Explain a finished run on ``split`` (columns ``image``, ``label``, ``image_id``, ``patient_id``).

    Writes ``saliency.json`` and ``saliency_grid.png`` (and ``overlays/IMAGE_ID.png`` with ``per_image``) into
    ``output_dir`` and returns the summary. ``n_images`` limits the images explained (half from each class where
    possible); intervals come from ``n_bootstrap`` patient resamples.
    """
    if not 0.0 < center_fraction < 1.0:
        raise ValueError(f"the central fraction must be in (0, 1), not {center_fraction}")
    run = run or load_run(run_dir)
    chosen = split.select(select_images(split["label"], n_images))
    images = chosen.cast_column("image", datasets.Image(decode=False))["image"]
    probability, share, pixels, maps = saliency_maps(run, images, center_fraction, batch_size, progress)
    records = [
        ImageSaliency(
            image_id=str(image_id),
            patient_id=str(patient_id),
            label=int(label),
            probability=float(p),
            decision=int(p >= run.threshold),
            border_share=None if np.isnan(s) else float(s),
        )
        for image_id, patient_id, label, p, s in zip(
            chosen["image_id"], chosen["patient_id"], chosen["label"], probability, share, strict=True
        )
    ]
    groups = {}
    for name in GROUPS:
        members = [i for i, r in enumerate(records) if _in_group(r, name)]
        groups[name] = summarise_group(share[members], [records[i].patient_id for i in members], n_bootstrap, seed)
    summary = SaliencySummary(
        run_dir=str(run_dir),
        model_type=run.model.config.model_type,
        method=METHODS[run.model.config.model_type],
        target="logit margin of the decided class (positive if probability >= threshold)",
        split=split_name,
        threshold=run.threshold,
        mask_center=run.transform.mask_center,
        center_fraction=center_fraction,
        uniform_border_share=float(1.0 - central_region(*maps.shape[-2:], center_fraction).mean()),
        n_bootstrap=n_bootstrap,
        seed=seed,
        images=records,
        groups=groups,
    )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    shown, heat = display_pixels(pixels, run.transform), maps.numpy()
    summary.grid = save_grid(output_dir / "saliency_grid.png", records, shown, heat, summary)
    if per_image:
        summary.overlays = save_overlays(output_dir / "overlays", records, shown, heat, summary)
    write_json(output_dir / "saliency.json", summary.to_dict())
    return summary


def _in_group(record: ImageSaliency, group: str) -> bool:
    if group == "all":
        return True
    if group in CLASS_NAMES:
        return record.label == CLASS_NAMES.index(group)
    return record.correct == (group == "correct")


def _format_share(group: GroupSummary) -> str:
    if group.mean is None:
        return "n/a"
    interval = f" [{group.mean_ci[0]:.3f}, {group.mean_ci[1]:.3f}]" if group.mean_ci else ""
    return f"{group.mean:.3f}{interval}"


def summary_table(summary: SaliencySummary) -> list[str]:
    """The per-group border-share table as Markdown lines (also printed by ``explain.py``)."""
    lines = [
        "| images | n (patients) | border share, mean [95% CI] | median | empty maps |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, group in summary.groups.items():
        median = "n/a" if group.median is None else f"{group.median:.3f}"
        lines.append(
            f"| {name} | {group.n_images} ({group.n_patients}) | {_format_share(group)} | {median} | "
            f"{group.n_empty_maps} |"
        )
    return lines


def saliency_markdown(summary: SaliencySummary, card_dir: Path | None = None) -> list[str]:
    """Model-card lines: what the border share measures, the table and the grid (``card_dir``: the card's folder).

    ``run_outputs.results_markdown`` places them beside the shortcut probes' numbers.
    """
    grid = summary.grid
    if grid is not None and card_dir is not None:
        grid = Path(grid).resolve().relative_to(Path(card_dir).resolve()).as_posix()
    lines = [
        "",
        "### Where the model looks",
        "",
        f"{summary.method} ({summary.model_type}), explaining the decision at threshold {summary.threshold:.4f} on "
        f"{summary.groups['all'].n_images} {summary.split} images. Border share: the part of each map outside the "
        f"central {summary.center_fraction:.0%} of height and width, the region the border-only shortcut probe sees "
        f"and `--mask-center` blanks; a map spread evenly scores {summary.uniform_border_share:.2f}. A share well "
        "above that means the model's evidence lies in the border (markers, text, collimation, body outline), not "
        f"the lungs. 95% intervals: patient bootstrap ({summary.n_bootstrap} resamples).",
        "",
        *summary_table(summary),
    ]
    if grid is not None:
        lines += ["", f"![Grad-CAM overlays, misclassified and most confident first]({grid})"]
    return lines
