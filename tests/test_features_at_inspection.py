"""The shortcut features are computed in the inspection's decode, so the shortcut audit decodes nothing again."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covid_ct_scan_images import filestore
from covid_ct_scan_images.inventory import take_inventory
from covid_ct_scan_images.locate import locate
from covid_ct_scan_images.shortcuts import features


def _add_unusual_images(root: Path) -> None:
    """A rotated grayscale JPEG (EXIF orientation 6) and a 16-bit grayscale PNG among the negatives."""
    negatives = next(folder for folder in root.iterdir() if "Neg" in folder.name)
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (200, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(ramp, mode="L").save(negatives / "rotated.jpeg", format="JPEG", quality=85, exif=exif)
    deep = (ramp.astype(np.uint16) * 200).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(deep).save(buffer, format="PNG")
    (negatives / "deep.png").write_bytes(buffer.getvalue())


def test_inventory_leaves_the_features_a_fresh_decode_would_give(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(filestore.STORE_ENV, str(tmp_path / "store"))
    _add_unusual_images(synthetic_root)
    located = locate(synthetic_root, tmp_path / "work")
    usable = take_inventory(located.class_dirs, located.root, shortcut_features=True).usable
    payloads = [image.path.read_bytes() for image in usable]
    modes = {(image.format, image.mode) for image in usable}
    assert {("JPEG", "L"), ("JPEG", "RGB"), ("PNG", "RGBA"), ("PNG", "I;16")} <= modes
    expected = [features.image_features(data) for data in payloads]

    def must_not_decode(data: bytes):
        raise AssertionError("decoded although the inspection stored the features")

    monkeypatch.setattr(features, "image_features", must_not_decode)
    recalled = features.extract_features(payloads)
    metadata, intensity, thumbnails = (np.vstack(column) for column in zip(*expected, strict=True))
    np.testing.assert_array_equal(recalled.metadata, metadata)
    np.testing.assert_array_equal(recalled.intensity, intensity)
    np.testing.assert_array_equal(recalled.thumbnails, np.rint(thumbnails * 255.0) / 255.0)


def test_without_a_store_the_inventory_computes_no_features(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(filestore.STORE_ENV, "off")

    def must_not_compute(*args, **kwargs):
        raise AssertionError("features computed although no store can keep them")

    monkeypatch.setattr(features, "features_beside", must_not_compute)
    located = locate(synthetic_root, tmp_path / "work")
    assert len(take_inventory(located.class_dirs, located.root, shortcut_features=True).usable) == 60


def test_features_that_fail_leave_the_inspection_records_unchanged(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    located = locate(synthetic_root, tmp_path / "work")
    monkeypatch.setenv(filestore.STORE_ENV, "off")
    plain = take_inventory(located.class_dirs, located.root, shortcut_features=True).files
    monkeypatch.setenv(filestore.STORE_ENV, str(tmp_path / "store"))

    def broken_thumbnail(gray: np.ndarray) -> np.ndarray:
        raise ValueError("simulated failure")

    monkeypatch.setattr(features, "thumbnail_vector", broken_thumbnail)
    assert take_inventory(located.class_dirs, located.root, shortcut_features=True).files == plain
    assert filestore.default_store().get_many(features.FEATURES_KIND, features._features_version()) == {}


def test_scikit_learn_loads_only_when_a_probe_model_is_made() -> None:
    code = (
        "import sys\n"
        "import covid_ct_scan_images.shortcuts.features\n"
        "after_features = 'sklearn' in sys.modules\n"
        "from covid_ct_scan_images.shortcuts.probes import logistic_regression, run_shortcut_probes\n"
        "after_probes = 'sklearn' in sys.modules\n"
        "logistic_regression(0)\n"
        "print(after_features, after_probes, 'sklearn' in sys.modules, callable(run_shortcut_probes))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "True", "True"]


def test_the_audit_leaves_the_features_and_a_build_inspection_does_not(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from covid_ct_scan_images.plan import audit

    version = features._features_version()
    monkeypatch.setenv(filestore.STORE_ENV, str(tmp_path / "build-store"))
    located = locate(synthetic_root, tmp_path / "work")
    take_inventory(located.class_dirs, located.root)
    assert filestore.default_store().get_many(features.FEATURES_KIND, version) == {}
    monkeypatch.setenv(filestore.STORE_ENV, str(tmp_path / "audit-store"))
    audit(synthetic_root)
    assert len(filestore.default_store().get_many(features.FEATURES_KIND, version)) == 60
