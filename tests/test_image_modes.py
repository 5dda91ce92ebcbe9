"""Decoded images: upright and RGB in every config, original bytes stored, 16-bit and transparent files handled."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from covid_ct_scan_images import prepare
from covid_ct_scan_images.imaging import to_rgb

#: Value stored under the transparent pixels of the test file: Pillow's conversion shows it, compositing does not.
HIDDEN_UNDER_ALPHA = 200


@pytest.fixture
def mixed_mode_root(synthetic_root: Path) -> Path:
    """The synthetic download with one 12-bit grayscale PNG, one half-transparent RGBA PNG and one rotated JPEG."""
    pngs = sorted(synthetic_root.glob("*/*.png"))
    jpegs = sorted(synthetic_root.glob("*/*.jpeg"))
    sixteen_bit, transparent, rotated = pngs[0], pngs[1], jpegs[0]
    ramp = np.linspace(0, 4095, 300 * 200).reshape(200, 300).astype(np.uint16)
    Image.fromarray(ramp).save(sixteen_bit, format="PNG")
    pixels = np.full((200, 300, 4), HIDDEN_UNDER_ALPHA, dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[:, :150, 3] = 0  # left half fully transparent, right half opaque
    Image.fromarray(pixels, "RGBA").save(transparent, format="PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.new("L", (320, 180), 90).save(rotated, format="JPEG", exif=exif.tobytes())
    return synthetic_root


def _rows_by_id(dataset: datasets.DatasetDict) -> dict[str, dict]:
    return {row["image_id"]: row for split in dataset.values() for row in split}


@pytest.mark.parametrize("config", ["default", "full", "resized"])
def test_every_config_decodes_upright_rgb_images(mixed_mode_root: Path, cache_dir: Path, config: str):
    dataset = prepare(mixed_mode_root, config=config, cache_dir=cache_dir).dataset
    rows = _rows_by_id(dataset)
    assert {row["image"].mode for row in rows.values()} == {"RGB"}
    rotated = sorted(mixed_mode_root.glob("*/*.jpeg"))[0].name
    width, height = rows[rotated]["image"].size
    assert height > width, "the EXIF orientation (6) must be applied: the 320 x 180 file is shown 180 x 320"


def test_original_bytes_are_stored_unchanged(mixed_mode_root: Path, cache_dir: Path):
    dataset = prepare(mixed_mode_root, config="full", cache_dir=cache_dir).dataset["train"]
    undecoded = dataset.cast_column("image", datasets.Image(decode=False))
    files = {path.name: path.read_bytes() for path in mixed_mode_root.glob("*/*.*") if path.suffix != ".txt"}
    for row in undecoded:
        assert row["image"]["bytes"] == files[row["image_id"]]


def test_resized_config_scales_16_bit_and_composites_transparency_on_black(mixed_mode_root: Path, cache_dir: Path):
    resized = prepare(mixed_mode_root, config="resized", cache_dir=cache_dir).dataset
    stored = [row["image"] for row in resized["train"].cast_column("image", datasets.Image(decode=False))]
    assert all(Image.open(io.BytesIO(image["bytes"])).format == "JPEG" for image in stored)
    rows = _rows_by_id(resized)
    sixteen_bit, transparent = (path.name for path in sorted(mixed_mode_root.glob("*/*.png"))[:2])
    gray = np.asarray(rows[sixteen_bit]["image"])[..., 0].astype(int)
    assert gray.min() <= 2 and gray.max() >= 253, "the 12-bit ramp must span 0..255, not clip"
    assert (gray >= 250).mean() < 0.05, "Pillow's own conversion would turn about 94 % of it white"
    pixels = np.asarray(rows[transparent]["image"]).astype(int)
    assert pixels[:, :140].max() <= 3, "transparent pixels are composited on black"
    assert abs(pixels[:, 160:].mean() - HIDDEN_UNDER_ALPHA) <= 3, "opaque pixels are kept"


def test_files_datasets_cannot_decode_exactly_are_noted_in_the_report(mixed_mode_root: Path, cache_dir: Path):
    prepared = prepare(mixed_mode_root, config="default", cache_dir=cache_dir)
    sixteen_bit, transparent = (path for path in sorted(mixed_mode_root.glob("*/*.png"))[:2])
    notes = {file: problem.message for problem in prepared.report.by_severity("note") for file in problem.files}
    sixteen_bit_note = notes[sixteen_bit.relative_to(mixed_mode_root).as_posix()]
    transparent_note = notes[transparent.relative_to(mixed_mode_root).as_posix()]
    assert "I;16" in sixteen_bit_note and "clips" in sixteen_bit_note and "`resized`" in sixteen_bit_note
    assert "transparent pixels" in transparent_note and "composite it on black" in transparent_note
    # the default config's decode is Pillow's: what the note warns about really happens
    rows = _rows_by_id(prepared.dataset)
    assert np.asarray(rows[transparent.name]["image"])[:, :140].min() == HIDDEN_UNDER_ALPHA
    # and to_rgb on the stored bytes (the baselines' and probes' path) is right
    with Image.open(io.BytesIO(transparent.read_bytes())) as image:
        assert np.asarray(to_rgb(image))[:, :140].max() == 0


def test_torch_format_gives_three_channel_tensors_for_every_row(mixed_mode_root: Path, cache_dir: Path):
    torch = pytest.importorskip("torch")
    split = prepare(mixed_mode_root, config="resized", cache_dir=cache_dir).dataset["train"]
    images = list(split.with_format("torch")["image"])
    assert all(image.ndim == 3 and image.shape[0] == 3 and image.dtype == torch.uint8 for image in images)
    small = [image[:, :64, :64] for image in images]  # the 12-bit, transparent and rotated files included
    assert torch.stack(small).shape == (len(small), 3, 64, 64)


def test_one_line_gives_grayscale(mixed_mode_root: Path, cache_dir: Path):
    split = prepare(mixed_mode_root, config="default", cache_dir=cache_dir).dataset["test"]
    gray = split.cast_column("image", datasets.Image(mode="L"))
    assert {image.mode for image in gray["image"]} == {"L"}
