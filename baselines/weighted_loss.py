"""The class weights (``--class-weights``), the weighted cross-entropy, and the ``Trainer`` that normalises it.

The ``Trainer`` subclass keeps the loss right under gradient accumulation and restores the best checkpoint strictly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, Trainer

from covid_ct_scan_images.layout import CLASS_NAMES

logger = logging.getLogger(__name__)


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
    against changes of that private method.
    """

    def __init__(self, *args: Any, loss: WeightedCrossEntropy, **kwargs: Any) -> None:
        if not hasattr(Trainer, "_get_num_items_in_batch"):
            raise RuntimeError(
                "this transformers version has no Trainer._get_num_items_in_batch; see baselines/weighted_loss.py"
            )
        super().__init__(*args, compute_loss_func=loss, **kwargs)
        self.weighted_loss = loss

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
        """Keep the card the run wrote (``run_outputs.write_model_card``); ``push_to_hub`` would overwrite it."""
