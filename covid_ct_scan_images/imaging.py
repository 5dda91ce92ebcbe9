"""Convert any image the download holds into plain 8-bit RGB, the one form models and probes consume.

The raw download mixes grayscale (``L``), ``RGB``, ``RGBA`` and palette PNGs, JPEGs with EXIF orientation
tags, and the format allows 16-bit grayscale and CMYK. :func:`to_rgb` is the single place that decides
how each becomes RGB, so training, evaluation and the shortcut probes all see the same pixels.

The rules:

* EXIF orientation is applied first (``ImageOps.exif_transpose``), so the image is upright as a viewer shows it.
* 16-bit and 32-bit grayscale (``I;16*``, ``I``, ``F``) is scaled linearly from its own minimum..maximum
  to 0..255. Clipping to 255 would turn most of a 16-bit radiograph white; dividing by 257 would waste
  the range of files that use only 10 or 12 bits.
* Transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a transparency entry) is **composited on black**:
  a fully transparent pixel becomes black, the colour of a radiograph's background, whatever colour
  happens to be stored under it. Opaque images (the usual case) are unchanged.
* ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``P``, ``1`` and ``L`` go through Pillow's own conversions.

Only Pillow and numpy are imported here (no torch), so ``import covid_ct_scan_images`` stays light.
"""

from __future__ import annotations

from PIL import Image, ImageOps

#: Modes holding more than 8 bits per sample; they are range-scaled to 8 bits.
HIGH_BIT_DEPTH_MODES: frozenset[str] = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})

#: Modes with an alpha channel; they are composited on black.
ALPHA_MODES: frozenset[str] = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def scale_to_8bit(image: Image.Image) -> Image.Image:
    """Map a high-bit-depth single-channel image linearly from its min..max to an ``L`` image (0..255).

    A constant image becomes all zeros. Values are rounded to the nearest integer, never clipped.
    """
    import numpy as np

    values = np.asarray(image).astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return Image.new("L", image.size, 0)
    scaled = np.rint((values - low) * (255.0 / (high - low)))
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def _composite_on_black(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image, keep_grayscale: bool = False) -> Image.Image:
    """Return ``image`` upright (EXIF orientation applied) as an 8-bit ``RGB`` image.

    16-bit and 32-bit grayscale is scaled by its own value range (not clipped), images with
    transparency are composited on black, and every other mode uses Pillow's conversion to RGB.
    With ``keep_grayscale``, single-channel sources (``L``, ``1``, 16/32-bit) come back as 8-bit ``L``
    holding exactly the values the RGB result would repeat in its three channels, so a caller can
    resize and augment one channel instead of three. The input is not modified.
    """
    upright = ImageOps.exif_transpose(image)
    if upright is None:  # only returned with in_place=True; kept for type checkers
        upright = image
    mode = upright.mode
    if mode == "RGB":
        return upright
    if mode in ALPHA_MODES or (mode == "P" and "transparency" in upright.info):
        return _composite_on_black(upright)
    if mode in HIGH_BIT_DEPTH_MODES:
        gray = scale_to_8bit(upright)
    elif mode in ("L", "1"):
        gray = upright.convert("L")
    else:
        return upright.convert("RGB")
    return gray if keep_grayscale else gray.convert("RGB")


def plain_decode_caveat(image: Image.Image) -> str | None:
    """Why ``datasets.Image(mode="RGB")`` decodes this image differently from :func:`to_rgb`, or ``None``.

    datasets converts with Pillow's ``convert("RGB")``, which clips 16-bit and 32-bit grayscale to 8 bits
    (a radiograph comes out mostly white) and drops the alpha channel (a transparent pixel shows whatever
    colour is stored under it). The original-bytes configs cannot change that, so the inventory notes each
    such file; the ``resized`` config stores :func:`to_rgb`'s result and is right for every file. The
    image must be loaded already (as the perceptual hash leaves it) for the transparency test.
    """
    mode = image.mode
    if mode in HIGH_BIT_DEPTH_MODES:
        return (
            f"{mode} (more than 8 bits per pixel): datasets decodes it to RGB with Pillow's conversion, which clips "
            "it (mostly white); the `resized` config and covid_ct_scan_images.imaging.to_rgb scale it by its range"
        )
    has_alpha = mode in ALPHA_MODES or (mode == "P" and "transparency" in image.info)
    if has_alpha and image.convert("RGBA").getchannel("A").getextrema()[0] < 255:
        return (
            "has transparent pixels: datasets decodes it to RGB with Pillow's conversion, which drops the alpha "
            "channel (the colour stored under it shows); the `resized` config and "
            "covid_ct_scan_images.imaging.to_rgb composite it on black"
        )
    return None
