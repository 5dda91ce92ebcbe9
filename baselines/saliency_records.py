"""The records of a saliency run: one per explained image, one per group summary, and ``saliency.json`` itself.

Kept apart from the Grad-CAM code (saliency.py) and the figures (saliency_figures.py), which both use them, so
that the figures never import the code that computes the maps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from covid_ct_scan_images.layout import CLASS_NAMES

#: Summary groups in ``saliency.json`` and the card, in order.
GROUPS = ("all", *CLASS_NAMES, "correct", "incorrect")


@dataclass(frozen=True)
class ImageSaliency:
    """One explained image: its identity, the run's call on it, and its map's border share."""

    image_id: str
    patient_id: str
    label: int
    probability: float
    decision: int
    border_share: float | None  # None when the map is empty (no evidence for the decided class survives ReLU)

    @property
    def correct(self) -> bool:
        """Whether the decision matches the label."""
        return self.decision == self.label

    @property
    def confidence(self) -> float:
        """Probability the run gave to the class it decided on."""
        return self.probability if self.decision == 1 else 1.0 - self.probability


@dataclass(frozen=True)
class GroupSummary:
    """Border share of one group of images: mean with a patient-bootstrap 95% interval, and median."""

    n_images: int
    n_patients: int
    n_empty_maps: int
    mean: float | None
    mean_ci: tuple[float, float] | None
    median: float | None


@dataclass
class SaliencySummary:
    """Everything ``saliency.json`` holds: the settings, one record per image and the summary per group."""

    run_dir: str
    model_type: str
    method: str
    target: str
    split: str
    threshold: float
    mask_center: float
    center_fraction: float
    uniform_border_share: float
    n_bootstrap: int
    seed: int
    images: list[ImageSaliency]
    groups: dict[str, GroupSummary]
    grid: str | None = None
    overlays: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record, with ``correct`` spelled out per image."""
        record = asdict(self)
        record["images"] = [{**asdict(image), "correct": image.correct} for image in self.images]
        return record
