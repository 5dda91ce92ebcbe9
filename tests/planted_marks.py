"""Shared by the saliency and external-validation tests: images whose label is a planted bright mark, and a run.

The label is visible only as a small bright square, near a corner or in the centre, on smooth noise. A tiny random
ConvNeXt trained on such images for a few epochs on the CPU learns the mark. :func:`save_as_run` writes the folder
``finetune.py`` writes (the threshold chosen on validation and folded into the model, the square-resize image
processor, ``transform.json``, ``metrics.json``, ``predictions.csv``), so the saliency maps and the external
evaluation load it as they load a real run.
"""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image
from transformers import ConvNextConfig, ConvNextForImageClassification, ConvNextImageProcessor, PreTrainedModel

from evaluation import (  # baselines/ is on pytest's pythonpath
    choose_threshold,
    fold_threshold_into_model,
    load_metric,
    positive_probability,
    summarise,
    with_rounding_margin,
)
from radiograph_transforms import ProcessorTransform, RadiographTransform, square_resize_processor, transform_settings
from run_outputs import write_json, write_predictions

#: Side of the synthetic images and of the model input.
SIDE = 64

#: Side of the planted mark.
MARK = 10


def planted_image(rng: np.random.Generator, mark: str | None) -> np.ndarray:
    """A ``SIDE`` x ``SIDE`` grayscale image of smooth noise, with a bright square ``"corner"``/``"centre"`` or none."""
    coarse = rng.uniform(30, 120, size=(8, 8))
    image = np.kron(coarse, np.ones((SIDE // 8, SIDE // 8))) + rng.normal(0, 8, size=(SIDE, SIDE))
    if mark == "corner":
        top = rng.choice([2, SIDE - 2 - MARK])
        left = rng.choice([2, SIDE - 2 - MARK])
    elif mark == "centre":
        top, left = (SIDE - MARK) // 2 + rng.integers(-3, 4, size=2)
    else:
        return np.clip(image, 0, 255).astype(np.uint8)
    image[top : top + MARK, left : left + MARK] = 250
    return np.clip(image, 0, 255).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """``pixels`` encoded as a PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def planted_split(mark: str, n_per_class: int, seed: int, prefix: str) -> datasets.Dataset:
    """A split with the training scripts' columns: positives carry the mark, negatives none."""
    rng = np.random.default_rng(seed)
    labels = [0, 1] * n_per_class
    return datasets.Dataset.from_dict(
        {
            "image": [{"bytes": png_bytes(planted_image(rng, mark if y else None)), "path": None} for y in labels],
            "label": labels,
            "image_id": [f"{prefix}-{i:03d}.png" for i in range(len(labels))],
            "patient_id": [f"{prefix}-patient-{i // 2:03d}" for i in range(len(labels))],
        },
        features=datasets.Features(
            {
                "image": datasets.Image(),
                "label": datasets.ClassLabel(names=["negative", "positive"]),
                "image_id": datasets.Value("string"),
                "patient_id": datasets.Value("string"),
            }
        ),
    )


def write_image_folder(root: Path, mark: str | None, n_per_class: int, seed: int) -> Path:
    """An image folder ``root/COVID``, ``root/Normal``, ``root/Pneumonia`` (the last to be dropped by a label map)."""
    rng = np.random.default_rng(seed)
    for folder, planted in (("COVID", mark), ("Normal", None), ("Pneumonia", None)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class if folder != "Pneumonia" else 3):
            Image.fromarray(planted_image(rng, planted)).save(root / folder / f"{folder.lower()}-{i:03d}.png")
    return root


def save_as_run(run_dir: Path, model: PreTrainedModel, processor, mark: str, seed: int = 0) -> Path:
    """Score planted validation and test splits, then save ``model`` as ``finetune.py`` saves a run; ``run_dir``.

    As the recipe does: final predictions through the square-resize image processor, the threshold chosen on
    validation (with the rounding margin) and folded into the classifier, every output a later command reads.
    """
    processor = square_resize_processor(processor)
    transform = ProcessorTransform(processor)
    model.eval()
    scored = {}
    with torch.inference_mode():
        for offset, name in enumerate(("validation", "test"), start=1):
            split = planted_split(mark, 20, seed + offset, name).cast_column("image", datasets.Image(decode=False))
            logits = model(pixel_values=transform.pixel_values(split["image"])).logits
            scored[name] = (split, positive_probability(logits.numpy()))
    validation_labels, validation_probabilities = scored["validation"][0]["label"], scored["validation"][1]
    threshold = with_rounding_margin(choose_threshold(validation_labels, validation_probabilities),
                                     validation_probabilities)
    rows = [
        {"image_id": image_id, "patient_id": patient, "label": y, "probability": float(p), "threshold": threshold,
         "split": name, "fold": ""}
        for name, (split, probabilities) in scored.items()
        for image_id, patient, y, p in zip(split["image_id"], split["patient_id"], split["label"], probabilities,
                                           strict=True)
    ]
    fold_threshold_into_model(model, threshold)
    model.save_pretrained(run_dir)
    processor.save_pretrained(run_dir)
    record = {
        "model": f"tiny random {model.config.model_type}, {mark} mark",
        "fold": None,
        "threshold": threshold,
        "mask_center": 0.0,
        "dataset": {"source": "planted marks", "config": "default"},
        **summarise(rows, load_metric(), n_bootstrap=50, seed=0),
    }
    write_json(run_dir / "metrics.json", record)
    write_json(run_dir / "transform.json", transform_settings(processor, None, 0.0))
    write_predictions(run_dir / "predictions.csv", rows)
    return run_dir


def train_planted_run(run_dir: Path, mark: str, epochs: int = 20, seed: int = 0) -> Path:
    """Train a tiny random ConvNeXt on ``mark`` images and save it as a run folder; return ``run_dir``."""
    torch.manual_seed(seed)
    config = ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=SIDE, num_labels=2)
    model = ConvNextForImageClassification(config)
    processor = ConvNextImageProcessor(size={"shortest_edge": SIDE})
    transform = RadiographTransform.from_processor(processor)
    train = planted_split(mark, 60, seed, "train").cast_column("image", datasets.Image(decode=False))
    pixels = torch.stack([transform.tensor(image) for image in train["image"]])
    labels = torch.tensor(train["label"])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels)).split(32):
            loss = torch.nn.functional.cross_entropy(model(pixel_values=pixels[batch]).logits, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return save_as_run(run_dir, model, processor, mark, seed)
