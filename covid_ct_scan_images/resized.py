"""Reduced copies of the images for the ``resized`` config: fast to decode in a training loop.

A full-resolution radiograph (median about 1640 x 1320) must still be entropy-decoded in full at reduced
JPEG scale, which caps a CPU data loader far below what a GPU consumes at 224 px. The ``resized``
config stores each image once, upright and converted (:func:`covid_ct_scan_images.imaging.to_rgb`
with grayscale kept one channel), scaled so that its longer side is at most :data:`RESIZED_MAX_SIDE`
(never enlarged), as a high-quality JPEG. The full-resolution ``default`` config stays the reference.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

#: Longest side of a stored image in the ``resized`` config (2.3x the usual 224 px model input).
RESIZED_MAX_SIDE = 512

#: JPEG quality of the stored images (chroma is not subsampled).
RESIZED_JPEG_QUALITY = 95


@dataclass(frozen=True)
class ResizedImage:
    """A reduced image: its JPEG bytes, PIL mode and size."""

    data: bytes
    mode: str
    width: int
    height: int


def resized_jpeg(data: bytes, max_side: int = RESIZED_MAX_SIDE, quality: int = RESIZED_JPEG_QUALITY) -> ResizedImage:
    """Decode ``data``, make it upright 8-bit ``L`` or ``RGB``, fit it within ``max_side`` and encode it as JPEG."""
    from PIL import Image

    from .imaging import to_rgb

    with Image.open(io.BytesIO(data)) as source:
        image = to_rgb(source, keep_grayscale=True)
        scale = max_side / max(image.size)
        if scale < 1:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return ResizedImage(buffer.getvalue(), image.mode, image.width, image.height)
