"""Image input: decode, convert, resize, augment, mask and normalise radiographs lazily, batch by batch.

Two transforms: :class:`RadiographTransform`, fast (reduced-scale JPEG decoding, one channel for grayscale) for
training and the per-epoch validation; and :class:`ProcessorTransform`, the checkpoint's own image processor, for
the final predictions, so that ``pipeline("image-classification")`` on the saved model sees the same pixels and
makes the same decisions as the ones reported.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch
from PIL import Image, ImageOps

from covid_ct_scan_images.imaging import to_rgb


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


def square_resize_processor(processor: Any) -> Any:
    """An image processor that resizes to the checkpoint's square input without cropping, as training does.

    Saved with the model, it makes ``pipeline`` see what the model was trained on for every architecture:
    ConvNeXt's own processor would keep the aspect ratio and cut a centre crop, losing the lung edges. Mean, std
    and rescale factor are the checkpoint's.
    """
    from transformers import ViTImageProcessor

    height, width = processor_size(processor)
    return ViTImageProcessor(
        size={"height": height, "width": width},
        resample=Image.Resampling.BILINEAR,
        image_mean=list(processor.image_mean),
        image_std=list(processor.image_std),
        rescale_factor=getattr(processor, "rescale_factor", 1 / 255),
    )


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


def mask_normalised_center(pixel_values: torch.Tensor, fraction: float, black: torch.Tensor) -> torch.Tensor:
    """Set the central ``fraction`` of height and width of ``(..., 3, H, W)`` normalised pixels to ``black``."""
    if fraction <= 0:
        return pixel_values
    height, width = pixel_values.shape[-2:]
    top, left = round(height * (1 - fraction) / 2), round(width * (1 - fraction) / 2)
    pixel_values[..., top : height - top, left : width - left] = black.reshape(-1, 1, 1)
    return pixel_values


class ProcessorTransform:
    """The checkpoint's image processor on upright RGB images: what ``pipeline("image-classification")`` computes.

    Images are converted with :func:`covid_ct_scan_images.imaging.to_rgb` (EXIF orientation, 16-bit scaled by its
    range, transparency on black), as the library decodes them; ``mask_center`` blanks the centre as in training.
    """

    def __init__(self, processor: Any, mask_center: float = 0.0) -> None:
        self.processor = processor
        self.mask_center = mask_center
        mean = torch.tensor(processor.image_mean, dtype=torch.float32)
        self.black = -mean / torch.tensor(processor.image_std, dtype=torch.float32)

    def pixel_values(self, images: Sequence[Any]) -> torch.Tensor:
        """The model's ``(B, 3, H, W)`` input for ``images`` (PIL images, bytes, paths or undecoded dicts)."""
        pixel_values = self.processor(images=[to_rgb(open_image(image)) for image in images], return_tensors="pt")
        return mask_normalised_center(pixel_values["pixel_values"], self.mask_center, self.black)

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        """Transform a ``datasets`` batch with ``image`` and ``label`` into ``pixel_values`` and ``labels``."""
        return {"pixel_values": list(self.pixel_values(batch["image"])), "labels": list(batch["label"])}


def transform_settings(
    processor: Any, augmentation: Augmentation | None, mask_center: float
) -> dict[str, Any]:
    """What the model saw, as data (a run folder's ``transform.json``): size, normalisation, mask, augmentation."""
    return {
        "image_size": list(processor_size(processor)),
        "image_mean": list(processor.image_mean),
        "image_std": list(processor.image_std),
        "rescale_factor": getattr(processor, "rescale_factor", 1 / 255),
        "color_conversion": "covid_ct_scan_images.imaging.to_rgb (upright, 8-bit RGB)",
        "mask_center": mask_center,
        "training_augmentation": None if augmentation is None else dataclasses.asdict(augmentation),
        "evaluation": "the saved image processor (preprocessor_config.json), then mask_center",
    }


def with_lazy_transform(
    split: datasets.Dataset, transform: RadiographTransform | ProcessorTransform
) -> datasets.Dataset:
    """Keep the image bytes undecoded and decode them per batch with ``transform`` (``with_transform``)."""
    undecoded = split.cast_column("image", datasets.Image(decode=False))
    return undecoded.with_transform(transform, columns=["image", "label"])
