"""Command-line arguments of the baseline scripts.

The recipe's own options (:class:`BaselineArguments`), its ``TrainingArguments`` defaults (:func:`runtime_defaults`),
parsing and checking them (:func:`parse_arguments`), and the class-weight rule ``--class-weights`` names.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from transformers import HfArgumentParser, TrainingArguments

from covid_ct_scan_images.layout import CLASS_NAMES

logger = logging.getLogger(__name__)


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
    # argparse %-formats help strings, so a literal percent sign is written %%.
    n_bootstrap: int = field(default=1000, metadata={"help": "Patient bootstrap resamples for the 95%% intervals."})
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


def parse_arguments(argv: Sequence[str] | None, default_model: str) -> tuple[BaselineArguments, TrainingArguments]:
    """Parse ``argv`` into the baseline arguments and ``TrainingArguments`` and check they fit together."""
    parser = HfArgumentParser((BaselineArguments, TrainingArguments))
    parser.set_defaults(model=default_model, **runtime_defaults())
    try:  # TrainingArguments checks its options as it is made; a bad combination is a usage error, not a traceback
        args, training_args, unknown = parser.parse_args_into_dataclasses(
            args=None if argv is None else list(argv), return_remaining_strings=True
        )
    except ValueError as error:
        parser.error(str(error))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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
