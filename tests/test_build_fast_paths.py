"""Fast paths give what the plain code gave: the same perceptual hashes and intensity features, files read in order."""

from __future__ import annotations

import threading
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from covid_ct_scan_images.builder import _computed_ahead
from covid_ct_scan_images.inventory import PHASH_SIZE, perceptual_hash
from covid_ct_scan_images.shortcuts.features import HISTOGRAM_BINS, intensity_vector


def imagehash_string(path: Path, hash_size: int) -> str:
    """The perceptual hash as the inventory computed it before: imagehash's own hex string of the same decode."""
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("L", (16 * hash_size, 16 * hash_size))
        return str(imagehash.phash(image.convert("L"), hash_size=hash_size))


def test_perceptual_hashes_of_the_real_sample_are_imagehash_strings(real_sample: Path) -> None:
    paths = sorted(path for path in real_sample.rglob("*") if path.suffix.lower() in {".jpg", ".jpeg", ".png"})
    assert len(paths) >= 40
    for path in paths:
        with Image.open(path) as image:
            assert perceptual_hash(image) == imagehash_string(path, PHASH_SIZE), path.name


@pytest.mark.parametrize("hash_size", [3, 8, PHASH_SIZE])
def test_perceptual_hash_of_random_images_is_the_imagehash_string_for_any_size(tmp_path: Path, hash_size: int) -> None:
    rng = np.random.default_rng(hash_size)
    for index in range(20):
        path = tmp_path / f"noise-{index}.png"
        Image.fromarray(rng.integers(0, 256, (90, 120), dtype=np.uint8), mode="L").save(path)
        with Image.open(path) as image:
            assert perceptual_hash(image, hash_size=hash_size) == imagehash_string(path, hash_size)


def test_read_ahead_yields_every_result_in_order_and_runs_at_most_ahead_items_early() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def record(item: int) -> int:
        with lock:
            started.append(item)
        return item * item

    results = _computed_ahead(record, list(range(40)), workers=2, ahead=3)
    consumed = []
    for value in results:
        consumed.append(value)
        with lock:
            assert len(started) <= len(consumed) + 3
    assert consumed == [item * item for item in range(40)]


def test_read_ahead_passes_on_the_error_of_the_item_that_failed() -> None:
    def fail_on_five(item: int) -> int:
        if item == 5:
            raise ValueError("value 5 is broken")
        return item

    results = _computed_ahead(fail_on_five, list(range(10)), workers=1, ahead=2)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="value 5 is broken"):
        next(results)


def test_intensity_features_of_8_bit_pixels_equal_those_of_the_same_values_as_floats() -> None:
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (200, 256), dtype=np.uint8) for _ in range(10)]
    images += [np.arange(256, dtype=np.uint8).reshape(16, 16), np.full((30, 40), 255, dtype=np.uint8)]
    for gray in images:
        fast = intensity_vector(gray)
        assert fast.tobytes() == intensity_vector(gray.astype(np.float64)).tobytes()
        histogram, _ = np.histogram(gray.astype(np.float64), bins=HISTOGRAM_BINS, range=(0.0, 256.0))
        assert fast[:HISTOGRAM_BINS].tobytes() == (histogram / gray.size).tobytes()


@pytest.mark.parametrize("mode", ["L", "I;16", "1", "LA", "RGB", "RGBA", "P"])
def test_feature_grayscale_equals_the_models_rgb_pixels_converted_to_gray(mode: str) -> None:
    # Single-channel sources skip the RGB round trip; Pillow's RGB -> L gives a repeated value back exactly.
    from PIL import Image

    from covid_ct_scan_images.imaging import to_rgb
    from covid_ct_scan_images.shortcuts.features import _grayscale

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (90, 120, 4), dtype=np.uint8)
    source = Image.fromarray(pixels)
    image = {
        "I;16": Image.fromarray(pixels[..., 0].astype(np.uint16) * 250),
        "P": source.convert("RGB").convert("P"),
    }.get(mode) or source.convert(mode)
    assert image.mode == mode
    expected = to_rgb(image).convert("L")
    assert np.array_equal(_grayscale(image), np.asarray(expected, dtype=np.uint8))
