"""A finished run, reloaded for inference: its model, the transform its final evaluation used, and its threshold.

The saliency maps (``explain.py``) and the external evaluation (``evaluate_external.py``) start from
:func:`load_run`, so both see each image exactly as the run's reported predictions did: the image processor saved
with the model (``preprocessor_config.json``) and the run's ``mask_center`` (``transform.json``). The run stored
its validation threshold ``t`` in ``config.json`` and folded it into the classifier's bias
(:func:`evaluation.fold_threshold_into_model`), so the saved model's own softmax is shifted:
:func:`reported_probability` adds ``decision_logit_offset`` back to the positive logit, which gives the probability
of ``predictions.csv``, and a probability >= ``t`` is the run's decision, as there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification, PreTrainedModel

from evaluation import positive_probability
from radiograph_transforms import ProcessorTransform


@dataclass
class TrainedRun:
    """A run folder's model (eval mode, on ``device``), final-evaluation transform, threshold and ``metrics.json``.

    ``threshold`` is ``t`` on the probability scale of ``predictions.csv``; ``logit_offset`` is what was subtracted
    from the positive logit's bias to fold it into the model.
    """

    run_dir: Path
    model: PreTrainedModel
    transform: ProcessorTransform
    threshold: float
    logit_offset: float
    record: dict[str, Any]
    device: torch.device


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {what}")
    return json.loads(path.read_text(encoding="utf-8"))


def load_run(run_dir: Path, device: torch.device | str | None = None) -> TrainedRun:
    """Reload a run folder written by ``finetune.py`` (one run or one ``--fold K``); ``OSError``/``ValueError``."""
    run_dir = Path(run_dir)
    needed = "--model must be the output folder of a finished training run"
    record = _read_json(run_dir / "metrics.json", needed)
    config = _read_json(
        run_dir / "config.json", "the folder holds no saved model (a pooled --cv folder? give one fold_K folder)"
    )
    if config.get("decision_threshold") is None:
        raise ValueError(f"{run_dir / 'config.json'} has no decision_threshold: {needed} by finetune.py")
    settings = _read_json(run_dir / "transform.json", needed)
    resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = AutoModelForImageClassification.from_pretrained(run_dir).to(resolved).eval()
    transform = ProcessorTransform(AutoImageProcessor.from_pretrained(run_dir), float(settings["mask_center"] or 0.0))
    offset = float(config.get("decision_logit_offset") or 0.0)
    return TrainedRun(run_dir, model, transform, float(config["decision_threshold"]), offset, record, resolved)


def reported_probability(logits: torch.Tensor, logit_offset: float) -> np.ndarray:
    """Positive-class probability of the saved model's ``(B, 2)`` logits with the folded offset undone.

    Computed in float64 as ``predictions.csv``'s ``probability`` was, from the logits before folding.
    """
    unshifted = logits.detach().double().cpu()
    unshifted[:, 1] += logit_offset
    return positive_probability(unshifted.numpy())


def image_batches(images: Sequence[Any], transform: ProcessorTransform, batch_size: int) -> Iterator[torch.Tensor]:
    """The model's ``pixel_values`` of ``images``, ``batch_size`` at a time, each image decoded once."""
    for start in range(0, len(images), batch_size):
        yield transform.pixel_values([images[i] for i in range(start, min(start + batch_size, len(images)))])


def predict_probabilities(run: TrainedRun, images: Sequence[Any], batch_size: int = 32) -> np.ndarray:
    """Reported positive-class probabilities of ``images`` (undecoded dicts, paths or PIL images), no gradients."""
    scores: list[np.ndarray] = []
    with torch.inference_mode():
        for pixel_values in image_batches(images, run.transform, batch_size):
            logits = run.model(pixel_values=pixel_values.to(run.device)).logits
            scores.append(reported_probability(logits, run.logit_offset))
    return np.concatenate(scores) if scores else np.zeros(0)
