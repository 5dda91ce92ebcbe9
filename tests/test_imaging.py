"""to_rgb: every mode the download can hold becomes upright 8-bit RGB, by the documented rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from covid_ct_scan_images.imaging import scale_to_8bit, to_rgb


def _ramp(dtype: str, low: int, high: int) -> np.ndarray:
    return np.linspace(low, high, 16 * 8).reshape(8, 16).astype(dtype)


def test_rgb_is_returned_unchanged():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8), "RGB")
    converted = to_rgb(image)
    assert converted.mode == "RGB"
    assert np.array_equal(np.asarray(converted), np.asarray(image))


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "YCbCr"])
def test_other_modes_become_rgb_with_pillow_conversion(mode):
    source = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) * 5, "L")
    image = source.convert(mode)
    converted = to_rgb(image)
    assert converted.mode == "RGB" and converted.size == (8, 6)
    assert np.array_equal(np.asarray(converted), np.asarray(image.convert("RGB")))


def test_grayscale_gives_three_equal_channels():
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L")
    values = np.asarray(to_rgb(gray))
    assert np.array_equal(values[..., 0], np.asarray(gray))
    assert np.array_equal(values[..., 0], values[..., 1]) and np.array_equal(values[..., 1], values[..., 2])


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_high_bit_depth_is_scaled_by_range_not_clipped(mode):
    values = _ramp(">u2" if mode == "I;16B" else "<u2" if mode == "I;16" else "<i4", 1000, 13285)
    image = Image.frombytes(mode, (16, 8), values.tobytes())
    converted = np.asarray(to_rgb(image)).astype(int)
    assert converted.min() == 0 and converted.max() == 255
    expected = np.rint((values.astype(float) - 1000) * 255 / (13285 - 1000))
    assert np.array_equal(converted[..., 0], expected)
    # Clipping would have made nearly every pixel 255.
    assert (converted[..., 0] == 255).sum() == 1


def test_float_and_constant_images():
    floats = Image.fromarray(np.linspace(-1.0, 1.0, 32, dtype=np.float32).reshape(4, 8), "F")
    assert np.asarray(to_rgb(floats))[..., 0].tolist()[0][0] == 0
    assert np.asarray(to_rgb(floats)).max() == 255
    constant = Image.frombytes("I;16", (4, 4), np.full((4, 4), 700, "<u2").tobytes())
    assert np.asarray(scale_to_8bit(constant)).max() == 0


def test_sixteen_bit_png_round_trip():
    values = _ramp("<u2", 0, 4095)  # a 12-bit detector stored in 16 bits
    buffer = io.BytesIO()
    Image.frombytes("I;16", (16, 8), values.tobytes()).save(buffer, format="PNG")
    converted = np.asarray(to_rgb(Image.open(io.BytesIO(buffer.getvalue()))))
    assert converted.max() == 255 and converted.min() == 0


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_on_black(mode):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[0, 0, 3] = 0  # fully transparent (stored colour 200 must not show)
    rgba[0, 1, 3] = 255  # opaque
    rgba[1, :, 3] = 128  # half transparent
    image = Image.fromarray(rgba, "RGBA")
    image = image if mode == "RGBA" else image.convert(mode)
    converted = np.asarray(to_rgb(image)).astype(int)
    assert converted.shape == (2, 2, 3)
    assert converted[0, 0].tolist() == [0, 0, 0]
    assert converted[0, 1].tolist() == [200, 200, 200]
    assert all(abs(v - 100) <= 1 for v in converted[1, 0])


def test_palette_with_transparency_is_composited_on_black():
    image = Image.new("P", (2, 1))
    image.putpalette([255, 255, 255, 10, 20, 30] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    assert np.asarray(to_rgb(image)).tolist() == [[[0, 0, 0], [10, 20, 30]]]


def test_exif_orientation_is_applied():
    pixels = np.zeros((20, 40), dtype=np.uint8)
    pixels[:, :10] = 255  # a bright band on the left of a landscape image
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="JPEG", quality=95, exif=exif)
    opened = Image.open(io.BytesIO(buffer.getvalue()))
    converted = to_rgb(opened)
    assert converted.size == (20, 40)  # portrait after rotation
    values = np.asarray(converted)[..., 0].astype(int)
    assert values[:10].mean() > 200 and values[-10:].mean() < 50  # the band is now on top
    assert opened.size == (40, 20)  # input untouched


@pytest.mark.parametrize("mode", ["L", "1", "I;16", "RGB", "RGBA", "P"])
def test_keep_grayscale_returns_the_values_of_the_rgb_result(mode):
    source = Image.fromarray((np.arange(48).reshape(6, 8) * 5).astype(np.uint8), "L")
    image = (
        Image.frombytes("I;16", (8, 6), (np.arange(48).reshape(6, 8) * 900).astype("<u2").tobytes())
        if mode == "I;16"
        else source.convert(mode)
    )
    gray = to_rgb(image, keep_grayscale=True)
    rgb = np.asarray(to_rgb(image))
    if mode in ("L", "1", "I;16"):
        assert gray.mode == "L"
        assert all(np.array_equal(np.asarray(gray), rgb[..., channel]) for channel in range(3))
    else:
        assert gray.mode == "RGB" and np.array_equal(np.asarray(gray), rgb)
