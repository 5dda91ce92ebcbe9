"""``Trainer`` callbacks of the recipe: training throughput."""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import TrainerCallback, TrainingArguments


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
