"""The shared recipe behind ``finetune_vit.py`` and ``finetune_convnext.py``.

Read top to bottom, this module is the recipe: parse arguments, load the splits through the library
(or ``datasets.load_dataset``), weight the classes from the training split, decode and augment images
lazily, fine-tune with ``Trainer`` and a class-weighted cross-entropy, pick the decision threshold on
validation, and write ``metrics.json``, ``predictions.csv``, plots and a model card.

The scripts stay thin: each calls :func:`main` with its default checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import datasets
import evaluate
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    EarlyStoppingCallback,
    EvalPrediction,
    HfArgumentParser,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from covid_ct_scan_images import DATASET_NAME
from covid_ct_scan_images.imaging import to_rgb
from covid_ct_scan_images.layout import CLASS_NAMES

logger = logging.getLogger(__name__)

#: Folder of the ``evaluate`` metric module (loads offline with ``evaluate.load(str(METRIC_DIR))``).
METRIC_DIR = Path(__file__).resolve().parent / "metrics" / "covid_ct_metrics"

#: Columns of ``predictions.csv``, in order.
PREDICTION_COLUMNS = ("image_id", "patient_id", "label", "probability", "split", "fold", "threshold")

THRESHOLD_RULE = (
    "On the validation split, the highest threshold whose sensitivity is >= {min_sensitivity:g} "
    "(which gives the highest specificity among thresholds meeting that floor); a probability >= the "
    "threshold is called positive. Applied unchanged to test. 0.5 if validation has no positive."
)

CONFOUND_CAVEAT = (
    "**Confounding caveat.** In this dataset every positive is an adult COVID-19 radiograph from Cohen et al.'s "
    "covid-chestxray-dataset (collected from papers and case reports, many hospitals), and almost every negative is "
    "a pediatric radiograph from Kermany et al. (one hospital in Guangzhou). Label, age, source hospital, file "
    "format and image processing all coincide, so a model can score well by recognising the source or the "
    "patient's age instead of COVID-19. These numbers do not measure diagnostic ability and the model must not be "
    "used clinically. Compare them with the shortcut probes (`covid-ct shortcuts`) and with `--mask-center`."
)


# ---------------------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class BaselineArguments:
    """Arguments of the baseline scripts beyond ``TrainingArguments``."""

    model: str = field(default="", metadata={"help": "Checkpoint: a Hub id or a local folder."})
    data_dir: str | None = field(default=None, metadata={"help": "Raw download folder, read through the library."})
    dataset: str | None = field(default=None, metadata={"help": "Hub id or exported folder (datasets.load_dataset)."})
    config: Literal["default", "full", "resized"] = field(
        default="default",
        metadata={"help": "Dataset config ('resized': default splits, images <= 512 px); --cv/--fold imply 'full'."},
    )
    cv: bool = field(default=False, metadata={"help": "Train all folds of 'full' and pool out-of-fold predictions."})
    fold: int | None = field(
        default=None,
        metadata={"help": "Run only this fold of 'full' (test = fold K, validation = fold K+1); pool runs later."},
    )
    class_weights: str = field(
        default="balanced", metadata={"help": "'balanced' (n / (2 n_c) on the training split), 'none' or 'w0,w1'."}
    )
    mask_center: float = field(
        default=0.0,
        metadata={"help": "Blank the central FRACTION of height and width (e.g. 0.6) in training and evaluation."},
    )
    min_sensitivity: float = field(
        default=0.9, metadata={"help": "Sensitivity floor of the validation threshold rule."}
    )
    n_bootstrap: int = field(default=1000, metadata={"help": "Patient bootstrap resamples for the 95% intervals."})
    early_stopping_patience: int = field(default=3, metadata={"help": "Evaluations without AUPRC gain before stop."})
    augment: bool = field(default=True, metadata={"help": "Random rotation, scale, shift, brightness, contrast."})
    hflip_probability: float = field(
        default=0.0, metadata={"help": "Probability of a horizontal flip (off by default; see baselines/README.md)."}
    )
    shortcuts_report: str | None = field(
        default=None,
        metadata={"help": "JSON of `covid-ct shortcuts --json`: the card sets the best probe's AUROC beside ours."},
    )


def runtime_defaults() -> dict[str, Any]:
    """``TrainingArguments`` defaults for this recipe: evaluate each epoch, keep the best AUPRC, use the GPU well.

    Any of them can still be given on the command line.
    """
    cuda = torch.cuda.is_available()
    return {
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "logging_steps": 10,
        "load_best_model_at_end": True,
        "metric_for_best_model": "auprc",
        "greater_is_better": True,
        "save_total_limit": 2,
        "remove_unused_columns": False,
        "num_train_epochs": 10.0,
        "learning_rate": 5e-5,
        "weight_decay": 0.05,
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 64,
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "tf32": cuda and torch.cuda.get_device_capability()[0] >= 8,
        "dataloader_num_workers": min(8, os.cpu_count() or 1) if cuda else 0,
        "dataloader_pin_memory": cuda,
        "dataloader_persistent_workers": cuda,
        "report_to": "none",
    }


def parse_arguments(
    argv: Sequence[str] | None, default_model: str
) -> tuple[BaselineArguments, TrainingArguments]:
    """Parse ``argv`` into the baseline arguments and ``TrainingArguments`` and check they fit together."""
    parser = HfArgumentParser((BaselineArguments, TrainingArguments))
    parser.set_defaults(model=default_model, **runtime_defaults())
    args, training_args = parser.parse_args_into_dataclasses(args=None if argv is None else list(argv))
    if (args.data_dir is None) == (args.dataset is None):
        parser.error("give exactly one of --data-dir (raw download) or --dataset (Hub id or exported folder)")
    if args.cv and args.fold is not None:
        parser.error("--cv runs every fold; use --fold K alone to run one fold")
    if not 0.0 <= args.mask_center < 1.0:
        parser.error("--mask-center must be in [0, 1)")
    if training_args.remove_unused_columns:
        logger.warning("remove_unused_columns=True would drop the image column before decoding; using False")
        training_args.remove_unused_columns = False
    try:
        parse_class_weights(args.class_weights, [0, 1])  # fail early on a malformed value
    except ValueError as error:
        parser.error(str(error))
    return args, training_args


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def load_splits(args: BaselineArguments) -> datasets.DatasetDict:
    """Load the dataset: ``full`` for ``--cv``/``--fold``, else ``--config``; from ``--data-dir`` or ``--dataset``."""
    config = "full" if args.cv or args.fold is not None else args.config
    if args.data_dir is not None:
        from covid_ct_scan_images import load_dataset

        return load_dataset(data_dir=args.data_dir, config=config)
    return datasets.load_dataset(args.dataset, config)


def fold_splits(full: datasets.Dataset, fold: int) -> datasets.DatasetDict:
    """Train / validation / test for one cross-validation fold of the ``full`` config.

    Test is fold ``fold``, validation is the next fold (cyclically), train is every other fold.
    Folds are patient-grouped and stratified, so no patient crosses the three splits.
    """
    folds = full["fold"]
    n_folds = number_of_folds(full)
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold {fold} out of range: the dataset has folds 0..{n_folds - 1}")
    validation = (fold + 1) % n_folds
    role = ["test" if f == fold else "validation" if f == validation else "train" for f in folds]
    return datasets.DatasetDict(
        {name: full.select([i for i, r in enumerate(role) if r == name]) for name in ("train", "validation", "test")}
    )


def number_of_folds(full: datasets.Dataset) -> int:
    """Number of cross-validation folds in the ``full`` config."""
    return max(full["fold"]) + 1


def parse_class_weights(spec: str, train_labels: Sequence[int]) -> list[float]:
    """Class weights ``[w_negative, w_positive]`` from ``spec`` and the training labels.

    ``balanced``: ``n / (2 * n_c)`` (scikit-learn's rule), so each class carries half the total weight;
    ``none``: ``[1, 1]``; ``w0,w1``: the given positive numbers.
    """
    if spec == "none":
        return [1.0, 1.0]
    if spec == "balanced":
        counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=len(CLASS_NAMES))
        if (counts == 0).any():
            raise ValueError(f"balanced class weights need both classes in the training split; counts: {counts}")
        return [float(len(train_labels) / (len(CLASS_NAMES) * c)) for c in counts]
    try:
        weights = [float(part) for part in spec.split(",")]
    except ValueError:
        weights = []
    if len(weights) != len(CLASS_NAMES) or any(not w > 0 or math.isinf(w) for w in weights):
        raise ValueError(f"--class-weights must be 'balanced', 'none' or two positive numbers 'w0,w1', not {spec!r}")
    return weights


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """Random training augmentation for chest radiographs (geometric, then photometric)."""

    max_rotation_degrees: float = 7.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_translation: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1
    hflip_probability: float = 0.0


def processor_size(processor: Any) -> tuple[int, int]:
    """``(height, width)`` the checkpoint expects, from its image processor's ``size``."""
    size = processor.size

    def get(key: str) -> Any:
        return size.get(key) if isinstance(size, dict) else getattr(size, key, None)

    if get("height") and get("width"):
        return int(get("height")), int(get("width"))
    edge = get("shortest_edge") or get("longest_edge")
    if not edge:
        raise ValueError(f"cannot read an image size from the processor's size {size!r}")
    return int(edge), int(edge)


def open_image(image: Any) -> Image.Image:
    """Open an image given as a PIL image, bytes, a path, or a ``datasets.Image(decode=False)`` dict (lazily)."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
    if isinstance(image, bytes | bytearray):
        return Image.open(io.BytesIO(image))
    return Image.open(image)


class RadiographTransform:
    """Decode, convert, resize, augment, mask and normalise images for the model; pure PIL + numpy + torch.

    JPEGs are decoded at a reduced scale close to the target size (``Image.draft``), then converted with
    :func:`covid_ct_scan_images.imaging.to_rgb` and resized to the checkpoint's square input. Training adds a
    random affine (rotation, scale, shift) and brightness/contrast jitter; random numbers come from torch's
    global generator, which ``Trainer`` seeds and the DataLoader reseeds per worker. ``mask_center`` blanks
    (sets to black) the central fraction of height and width after augmentation, in training and evaluation.

    Call it on a batch dict from ``datasets`` (``with_transform``) or use :meth:`tensor` on one image.
    """

    def __init__(
        self,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        rescale_factor: float = 1 / 255,
        augmentation: Augmentation | None = None,
        mask_center: float = 0.0,
    ) -> None:
        if not 0.0 <= mask_center < 1.0:
            raise ValueError(f"mask_center must be in [0, 1), not {mask_center}")
        self.size = size
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.rescale_factor = float(rescale_factor)
        self.augmentation = augmentation
        self.mask_center = mask_center

    @classmethod
    def from_processor(
        cls, processor: Any, augmentation: Augmentation | None = None, mask_center: float = 0.0
    ) -> RadiographTransform:
        """Build the transform from a checkpoint's image processor (size, mean, std, rescale factor)."""
        return cls(
            size=processor_size(processor),
            mean=processor.image_mean,
            std=processor.image_std,
            rescale_factor=getattr(processor, "rescale_factor", 1 / 255),
            augmentation=augmentation,
            mask_center=mask_center,
        )

    def load(self, image: Any) -> Image.Image:
        """Decode ``image`` (JPEG at reduced scale), convert and resize it to the model's input size.

        Grayscale sources stay one-channel ``L`` (see ``to_rgb(keep_grayscale=True)``) so that resizing and
        augmenting cost a third; :meth:`tensor` repeats the channel, giving exactly the RGB result.
        """
        pil = open_image(image)
        height, width = self.size
        if pil.format == "JPEG":
            side = max(height, width)
            pil.draft(pil.mode, (side, side))
        return to_rgb(pil, keep_grayscale=True).resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)

    def _random_affine(self, image: Image.Image, augmentation: Augmentation) -> Image.Image:
        u = torch.rand(5).tolist()
        angle = math.radians((2 * u[0] - 1) * augmentation.max_rotation_degrees)
        low, high = augmentation.scale_range
        scale = low + (high - low) * u[1]
        width, height = image.size
        shift_x = (2 * u[2] - 1) * augmentation.max_translation * width
        shift_y = (2 * u[3] - 1) * augmentation.max_translation * height
        # Inverse map (output -> input): p_in = c + R(-angle) (p_out - c - shift) / scale.
        cx, cy = width / 2, height / 2
        a, b = math.cos(angle) / scale, math.sin(angle) / scale
        d, e = -b, a
        ox, oy = cx + shift_x, cy + shift_y
        coefficients = (a, b, cx - a * ox - b * oy, d, e, cy - d * ox - e * oy)
        image = image.transform(
            image.size, Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR, fillcolor=0
        )
        if u[4] < augmentation.hflip_probability:
            image = ImageOps.mirror(image)
        return image

    def pixels(self, image: Any) -> np.ndarray:
        """The augmented, masked float32 pixels in 0..255 before normalisation.

        Shape ``(height, width)`` for grayscale sources, ``(height, width, 3)`` otherwise.
        """
        resized = self.load(image)
        augmentation = self.augmentation
        if augmentation is not None:
            resized = self._random_affine(resized, augmentation)
        values = np.asarray(resized, dtype=np.float32)
        if augmentation is not None:
            u = torch.rand(2).tolist()
            contrast = 1 + (2 * u[0] - 1) * augmentation.contrast
            brightness = 1 + (2 * u[1] - 1) * augmentation.brightness
            # ((v - mean) * contrast + mean) * brightness, in one pass.
            offset = float(values.mean()) * (1 - contrast) * brightness
            values = np.clip(values * (contrast * brightness) + offset, 0, 255, dtype=np.float32)
        if self.mask_center > 0:
            height, width = self.size
            top, left = round(height * (1 - self.mask_center) / 2), round(width * (1 - self.mask_center) / 2)
            values[top : height - top, left : width - left] = 0.0
        return values

    def tensor(self, image: Any) -> torch.Tensor:
        """One image as the model's normalised ``(3, height, width)`` float32 tensor."""
        values = self.pixels(image)
        channels = values[np.newaxis] if values.ndim == 2 else values.transpose(2, 0, 1)
        scale = (self.rescale_factor / self.std)[:, np.newaxis, np.newaxis]
        offset = (-self.mean / self.std)[:, np.newaxis, np.newaxis]
        return torch.from_numpy(np.ascontiguousarray(channels * scale + offset, dtype=np.float32))

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        """Transform a ``datasets`` batch with ``image`` and ``label`` into ``pixel_values`` and ``labels``."""
        return {"pixel_values": [self.tensor(image) for image in batch["image"]], "labels": list(batch["label"])}


def with_lazy_transform(split: datasets.Dataset, transform: RadiographTransform) -> datasets.Dataset:
    """Keep the image bytes undecoded and decode them per batch with ``transform`` (``with_transform``)."""
    undecoded = split.cast_column("image", datasets.Image(decode=False))
    return undecoded.with_transform(transform, columns=["image", "label"])


# ---------------------------------------------------------------------------------------------------------------
# Loss and Trainer
# ---------------------------------------------------------------------------------------------------------------


class WeightedCrossEntropy:
    """Class-weighted cross-entropy for ``Trainer(compute_loss_func=...)``.

    The loss of a batch is ``sum_i w[y_i] * CE_i / sum_i w[y_i]``, the weighted mean of
    ``torch.nn.functional.cross_entropy(weight=w)``. Under gradient accumulation a micro-batch must not be
    normalised by its own weight sum (micro-batches with more positives would count more): Trainer passes
    ``num_items_in_batch`` for the whole accumulated batch, and :class:`WeightedLossTrainer` turns that item
    count into the accumulated batch's *weight* sum, so the gradient equals one big batch's.
    """

    def __init__(self, class_weights: Sequence[float]) -> None:
        self.class_weights = torch.tensor(list(class_weights), dtype=torch.float32)

    def weight_sum(self, labels: torch.Tensor) -> torch.Tensor:
        """Sum of the class weights of ``labels`` (entries equal to -100 are ignored)."""
        labels = labels.reshape(-1)
        return self.class_weights.to(labels.device)[labels[labels != -100]].sum()

    def __call__(
        self, outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """Weighted loss of one (micro-)batch, normalised by ``num_items_in_batch`` when given."""
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weights = self.class_weights.to(logits.device)
        total = F.cross_entropy(logits.float(), labels, weight=weights, reduction="sum", ignore_index=-100)
        normaliser = self.weight_sum(labels) if num_items_in_batch is None else num_items_in_batch
        return total / normaliser


class WeightedLossTrainer(Trainer):
    """``Trainer`` whose loss normaliser is the class-weight sum of the accumulated batch, not its item count.

    Trainer counts the labels of all micro-batches of one optimiser step (gathered across processes when
    ``average_tokens_across_devices``) in ``_get_num_items_in_batch`` and hands the count to
    ``compute_loss_func``. transformers has no public hook for that normaliser, so this subclass rescales
    the count by the mean class weight of the same labels. ``tests/test_baselines.py`` checks that
    accumulation 4 x 2 gives the same update as 1 x 8 and as a plain weighted-mean loss, which guards
    against changes of that private method. It also appends ``card_extra`` to every model card it writes.
    """

    def __init__(self, *args: Any, loss: WeightedCrossEntropy, card_extra: str = "", **kwargs: Any) -> None:
        if not hasattr(Trainer, "_get_num_items_in_batch"):
            raise RuntimeError("this transformers version has no Trainer._get_num_items_in_batch; see training.py")
        super().__init__(*args, compute_loss_func=loss, **kwargs)
        self.weighted_loss = loss
        self.card_extra = card_extra

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | int | None:
        count = super()._get_num_items_in_batch(batch_samples, device)
        if count is None:
            return None
        labels = torch.cat([batch["labels"].reshape(-1) for batch in batch_samples])
        local = torch.stack([labels.ne(-100).sum().float(), self.weighted_loss.weight_sum(labels).float()])
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            local = self.accelerator.gather(local.to(device)).reshape(-1, 2).sum(dim=0)
        mean_weight = (local[1] / local[0]).to(count.device if torch.is_tensor(count) else device)
        return count * mean_weight

    def _load_best_model(self) -> None:
        """Restore the best checkpoint through ``from_pretrained`` and copy its weights strictly.

        transformers 5.x writes checkpoints with legacy parameter names (e.g. ViT's ``encoder.layer.N``)
        but ``Trainer._load_best_model`` reads them back with a non-strict ``load_state_dict``, silently
        leaving every renamed weight at its last-epoch value. ``from_pretrained`` converts the names.
        DeepSpeed, FSDP, PEFT and non-transformers models keep Trainer's own loader.
        """
        model = self.accelerator.unwrap_model(self.model)
        checkpoint = self.state.best_model_checkpoint
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or not isinstance(model, PreTrainedModel):
            super()._load_best_model()
            return
        logger.info("Loading best model from %s (score: %s).", checkpoint, self.state.best_metric)
        best = type(model).from_pretrained(checkpoint, dtype=next(model.parameters()).dtype)
        model.load_state_dict(best.state_dict(), strict=True)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Write transformers' model card, then append the results table and the confounding caveat."""
        super().create_model_card(*args, **kwargs)
        if self.card_extra and self.is_world_process_zero():
            with open(os.path.join(self.args.output_dir, "README.md"), "a", encoding="utf-8") as card:
                card.write("\n" + self.card_extra)


class ThroughputCallback(TrainerCallback):
    """Training images per second, timed from each epoch's start to its end (before epoch-end evaluation/saving)."""

    def __init__(self, images_per_epoch: int) -> None:
        self.images_per_epoch = images_per_epoch
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._start)

    def images_per_second(self) -> float | None:
        """Images per second over the completed epochs (all processes together), or None before any."""
        if not self.seconds:
            return None
        return self.images_per_epoch * len(self.seconds) / sum(self.seconds)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------


def load_metric() -> evaluate.EvaluationModule:
    """The repository's metric module, loaded offline from its folder and kept in memory."""
    return evaluate.load(str(METRIC_DIR), keep_in_memory=True)


def positive_probability(predictions: np.ndarray | tuple) -> np.ndarray:
    """Softmax probability of the positive class from ``(n, 2)`` logits (or Trainer's tuple, logits first)."""
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    return torch.softmax(torch.as_tensor(np.asarray(logits), dtype=torch.float64), dim=-1)[:, 1].numpy()


def make_compute_metrics(metric: evaluate.EvaluationModule) -> Callable[[EvalPrediction], dict[str, float]]:
    """``compute_metrics`` for Trainer: ranking metrics, and the rest at 0.5, on the evaluation split."""
    keys = ("auroc", "auprc", "sensitivity", "specificity", "balanced_accuracy", "mcc")

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        probabilities = positive_probability(prediction.predictions)
        result = metric.compute(predictions=probabilities, references=prediction.label_ids)
        return {key: float("nan") if result[key] is None else float(result[key]) for key in keys}

    return compute_metrics


def choose_threshold(labels: Sequence[int], probabilities: Sequence[float], min_sensitivity: float = 0.9) -> float:
    """The decision threshold of :data:`THRESHOLD_RULE`: the highest one with sensitivity >= ``min_sensitivity``.

    Specificity can only grow as the threshold rises, so among all thresholds meeting the sensitivity
    floor the highest has the best specificity. Returns 0.5 when there is no positive.
    """
    labels_array, scores = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    positives = np.sort(scores[labels_array == 1])[::-1]
    if positives.size == 0:
        return 0.5
    needed = max(1, math.ceil(min_sensitivity * positives.size - 1e-9))
    return float(positives[needed - 1])


def summarise(
    rows: Sequence[dict[str, Any]], metric: evaluate.EvaluationModule, n_bootstrap: int, seed: int
) -> dict[str, dict[str, dict]]:
    """Metrics per split of prediction rows, at each row's own threshold and at 0.5, with 95% intervals."""
    summary: dict[str, dict[str, dict]] = {}
    for split in dict.fromkeys(row["split"] for row in rows):
        chosen = [row for row in rows if row["split"] == split]
        thresholds = [float(row["threshold"]) for row in chosen]
        common = {
            "predictions": [float(row["probability"]) for row in chosen],
            "references": [int(row["label"]) for row in chosen],
            "groups": [str(row["patient_id"]) for row in chosen],
            "n_bootstrap": n_bootstrap,
            "seed": seed,
        }
        selected = thresholds[0] if len(set(thresholds)) == 1 else thresholds
        summary[split] = {
            "at_selected_threshold": metric.compute(threshold=selected, **common),
            "at_0.5": metric.compute(threshold=0.5, **common),
        }
    return summary


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
            {**row, "label": int(row["label"]), "probability": float(row["probability"]),
             "threshold": float(row["threshold"]), "fold": int(row["fold"]) if row["fold"] != "" else None}
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
    pr_axes.set(xlabel="recall (sensitivity)", ylabel="precision", title="Precision-recall curve", xlim=(0, 1),
                ylim=(0, 1.02))
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
    cm_axes.set(xticks=[0, 1], yticks=[0, 1], xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES,
                xlabel="predicted", ylabel="true", title=f"{confusion_split}, selected threshold")
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


# ---------------------------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------------------------


def library_versions() -> dict[str, str | None]:
    """Versions of Python and of every library the result depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("covid_ct_scan_images", "torch", "transformers", "accelerate", "datasets", "evaluate",
                 "scikit-learn", "numpy", "pillow", "matplotlib"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def published_version(dataset: str) -> str | None:
    """Dataset version named in the card of an exported folder or Hub dataset repository; None if unknown.

    ``datasets.load_dataset`` reports 0.0.0 for Parquet repositories, so the version is read from the card title
    that ``covid-ct export`` writes (a Hub id's card comes from the local cache when it is offline).
    """
    from huggingface_hub import hf_hub_download

    from covid_ct_scan_images.errors import DatasetError
    from covid_ct_scan_images.hub import export_version

    try:
        folder = Path(dataset)
        if not folder.is_dir():
            folder = Path(hf_hub_download(dataset, "README.md", repo_type="dataset")).parent
        return export_version(folder)
    except (OSError, ValueError, DatasetError):
        return None


def dataset_provenance(data: datasets.DatasetDict, args: BaselineArguments) -> dict[str, Any]:
    """Where the data came from: source, config, dataset version and split manifest hash.

    The hash (``covid_ct_scan_images.manifest_hash``) identifies the assignment of the loaded config: the
    train/validation/test split for ``default``, the folds for ``full``.
    """
    import covid_ct_scan_images

    version = covid_ct_scan_images.DATASET_VERSION if args.data_dir is not None else published_version(args.dataset)
    return {
        "source": args.data_dir or args.dataset,
        "loaded_with": "covid_ct_scan_images.load_dataset" if args.data_dir else "datasets.load_dataset",
        "config": "full" if args.cv or args.fold is not None else args.config,
        "version": version,
        "manifest_hash": covid_ct_scan_images.manifest_hash(data),
    }


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


# ---------------------------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------------------------


def train_and_evaluate(
    args: BaselineArguments,
    training_args: TrainingArguments,
    splits: datasets.DatasetDict,
    provenance: dict[str, Any],
    fold: int | None = None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Fine-tune on ``splits["train"]``, select on validation, evaluate on test; write every output file.

    Returns the ``metrics.json`` record (on every process; only the main process writes files).
    """
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    processor = AutoImageProcessor.from_pretrained(args.model)
    class_weights = parse_class_weights(args.class_weights, splits["train"]["label"])
    model = AutoModelForImageClassification.from_pretrained(
        args.model,
        num_labels=len(CLASS_NAMES),
        id2label=dict(enumerate(CLASS_NAMES)),
        label2id={name: index for index, name in enumerate(CLASS_NAMES)},
        ignore_mismatched_sizes=True,
    )
    augmentation = Augmentation(hflip_probability=args.hflip_probability) if args.augment else None
    train_transform = RadiographTransform.from_processor(processor, augmentation, args.mask_center)
    eval_transform = RadiographTransform.from_processor(processor, None, args.mask_center)
    metric = load_metric()
    throughput = ThroughputCallback(len(splits["train"]))
    callbacks: list[TrainerCallback] = [throughput]
    if training_args.load_best_model_at_end and training_args.eval_strategy != "no":
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = WeightedLossTrainer(
        model=model,
        args=training_args,
        train_dataset=with_lazy_transform(splits["train"], train_transform),
        eval_dataset=with_lazy_transform(splits["validation"], eval_transform),
        processing_class=processor,
        compute_metrics=make_compute_metrics(metric),
        callbacks=callbacks,
        loss=WeightedCrossEntropy(class_weights),
    )
    train_metrics = trainer.train().metrics
    trainer.save_model()

    probabilities = {
        name: positive_probability(trainer.predict(with_lazy_transform(splits[name], eval_transform)).predictions)
        for name in ("validation", "test")
    }
    threshold = choose_threshold(splits["validation"]["label"], probabilities["validation"], args.min_sensitivity)
    rows = [
        {"image_id": image_id, "patient_id": patient_id, "label": label, "probability": float(probability),
         "split": name, "fold": "" if fold is None else fold, "threshold": threshold}
        for name in ("validation", "test")
        for image_id, patient_id, label, probability in zip(
            splits[name]["image_id"], splits[name]["patient_id"], splits[name]["label"], probabilities[name],
            strict=True,
        )
    ]
    summary = summarise(rows, metric, args.n_bootstrap, training_args.seed)
    record = {
        "model": args.model,
        "fold": fold,
        "threshold": threshold,
        "threshold_rule": THRESHOLD_RULE.format(min_sensitivity=args.min_sensitivity),
        "class_weights": class_weights,
        "class_weights_rule": args.class_weights,
        "seed": training_args.seed,
        "mask_center": args.mask_center,
        "augmentation": dataclasses.asdict(augmentation) if augmentation else None,
        "dataset": {
            **provenance,
            "n_images": {name: len(split) for name, split in splits.items()},
            "n_positive": {name: int(sum(split["label"])) for name, split in splits.items()},
        },
        "training": {
            "device": device_description(),
            "world_size": training_args.world_size,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_validation_auprc": trainer.state.best_metric,
            "epochs": trainer.state.epoch,
            "train_images_per_second": throughput.images_per_second(),
            **train_metrics,
        },
        "versions": library_versions(),
        "command": list(command),
        "shortcut_comparison": shortcut_comparison(args.shortcuts_report, summary["test"]["at_selected_threshold"]),
        **summary,
    }
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        write_predictions(output_dir / "predictions.csv", rows)
        write_json(output_dir / "metrics.json", record)
        plot_results(rows, output_dir, confusion_split="test")
        description = (
            f"Fine-tuned from `{args.model}` on {provenance['source']} (config `{provenance['config']}`"
            + ("" if fold is None else f", fold {fold}")
            + f", dataset version {provenance['version']}, manifest {provenance['manifest_hash']}), class weights "
            f"{[round(w, 4) for w in class_weights]}, mask_center {args.mask_center}, on {device_description()}. "
            f"Decision threshold {threshold:.4f}: {record['threshold_rule']} 95% intervals: patient bootstrap "
            f"({args.n_bootstrap} resamples) for AUROC, AUPRC and MCC; Wilson for sensitivity and specificity."
        )
        trainer.card_extra = results_markdown(summary, description, record["shortcut_comparison"])
        trainer.create_model_card(
            model_name=output_dir.name,
            finetuned_from=args.model,
            tasks="image-classification",
            dataset=args.dataset or DATASET_NAME,
            dataset_tags=args.dataset or DATASET_NAME,
        )
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return record


# ---------------------------------------------------------------------------------------------------------------
# Pooling cross-validation folds
# ---------------------------------------------------------------------------------------------------------------


#: Name of the pooled section in ``metrics.json`` (and of the split in the pooled ``predictions.csv``).
POOLED_SPLIT = "out_of_fold"


def pool_folds(
    run_dirs: Sequence[Path],
    output_dir: Path,
    n_bootstrap: int = 1000,
    seed: int = 0,
    shortcuts_report: str | None = None,
) -> dict[str, Any]:
    """Merge the test predictions of ``run_dirs`` (one per fold), compute pooled metrics and write the outputs.

    ``shortcuts_report`` (JSON of ``covid-ct shortcuts --json``) adds the best probe's AUROC beside ours.

    Raises ``ValueError`` if two runs share a fold or an image. Returns the pooled ``metrics.json`` record.
    """
    rows: list[dict[str, Any]] = []
    folds: dict[int | None, str] = {}
    runs = []
    for run_dir in map(Path, run_dirs):
        run = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        if run["fold"] in folds:
            raise ValueError(f"fold {run['fold']} appears twice: {folds[run['fold']]} and {run_dir}")
        folds[run["fold"]] = str(run_dir)
        runs.append(run)
        rows += [row for row in read_predictions(run_dir / "predictions.csv") if row["split"] == "test"]
    image_ids = [row["image_id"] for row in rows]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("an image appears in the test rows of more than one run; are these folds of one dataset?")
    pooled = [{**row, "split": POOLED_SPLIT} for row in rows]
    summary = summarise(pooled, load_metric(), n_bootstrap, seed)
    first = runs[0]
    record = {
        "model": first["model"],
        "pooled_from": [str(path) for path in run_dirs],
        "folds": [run["fold"] for run in runs],
        "threshold": {str(run["fold"]): run["threshold"] for run in runs},
        "threshold_rule": "per fold: " + first["threshold_rule"],
        "class_weights": {str(run["fold"]): run["class_weights"] for run in runs},
        "class_weights_rule": first["class_weights_rule"],
        "seed": first["seed"],
        "mask_center": first["mask_center"],
        "dataset": {key: first["dataset"][key] for key in ("source", "loaded_with", "config", "version",
                                                         "manifest_hash")},
        "fold_test_auroc": {str(run["fold"]): run["test"]["at_selected_threshold"]["auroc"] for run in runs},
        "training": {
            "device": first["training"]["device"],
            "train_images_per_second": {
                str(run["fold"]): run["training"].get("train_images_per_second") for run in runs
            },
        },
        "versions": library_versions(),
        "shortcut_comparison": shortcut_comparison(shortcuts_report, summary[POOLED_SPLIT]["at_selected_threshold"]),
        **summary,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(output_dir / "predictions.csv", pooled)
    write_json(output_dir / "metrics.json", record)
    plot_results(pooled, output_dir, confusion_split=POOLED_SPLIT)
    description = (
        f"Out-of-fold predictions of {len(runs)} cross-validation runs of `{first['model']}` on "
        f"{first['dataset']['source']} (config `{first['dataset']['config']}`, manifest "
        f"{first['dataset']['manifest_hash']}), pooled; each image is scored by the model that did not train on "
        f"it and judged at its own fold's threshold ({record['threshold_rule']}). 95% intervals: patient bootstrap "
        f"({n_bootstrap} resamples) for AUROC, AUPRC and MCC; Wilson for sensitivity and specificity."
    )
    card = results_markdown(summary, description, record["shortcut_comparison"])
    (output_dir / "README.md").write_text(card, encoding="utf-8")
    return record


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, default_model: str = "google/vit-base-patch16-224-in21k") -> dict:
    """Run the baseline: one split (``default``), one fold (``--fold K``) or all folds pooled (``--cv``).

    Returns the ``metrics.json`` record of the run (the pooled record with ``--cv``).
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args, training_args = parse_arguments(argv, default_model)
    with training_args.main_process_first(desc="building the dataset"):  # one process builds, the rest reuse it
        data = load_splits(args)
    provenance = dataset_provenance(data, args)
    command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
    if not args.cv and args.fold is None:
        return train_and_evaluate(args, training_args, data, provenance, command=command)
    full = data["train"]
    if args.fold is not None:
        return train_and_evaluate(
            args, training_args, fold_splits(full, args.fold), provenance, fold=args.fold, command=command
        )

    run_dirs = []
    for fold in range(number_of_folds(full)):
        fold_dir = Path(training_args.output_dir) / f"fold_{fold}"
        changes: dict[str, Any] = {"output_dir": str(fold_dir)}
        if training_args.push_to_hub:
            changes["hub_model_id"] = f"{training_args.hub_model_id or Path(training_args.output_dir).name}-fold{fold}"
        fold_args = dataclasses.replace(training_args, **changes)
        train_and_evaluate(args, fold_args, fold_splits(full, fold), provenance, fold=fold, command=command)
        run_dirs.append(fold_dir)
    if training_args.process_index != 0:
        return {}
    return pool_folds(run_dirs, Path(training_args.output_dir), n_bootstrap=args.n_bootstrap, seed=training_args.seed,
                      shortcuts_report=args.shortcuts_report)
