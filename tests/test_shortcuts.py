"""The shortcut probes measure what they claim: planted metadata, planted centre, real sample, CLI."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from covid_ct_scan_images.cli import main
from covid_ct_scan_images.errors import DatasetError
from covid_ct_scan_images.layout import CLASS_NAMES, DATASET_FOLDER
from covid_ct_scan_images.shortcuts import (
    ShortcutReport,
    format_table,
    interpretation,
    run_shortcut_probes,
)
from covid_ct_scan_images.shortcuts.features import (
    INTENSITY_FEATURES,
    METADATA_FEATURES,
    THUMBNAIL_SIDE,
    ImageFeatureError,
    border_pixels,
    center_mask,
    center_pixels,
    estimate_jpeg_quality,
    extract_file_features,
    image_features,
)
from covid_ct_scan_images.shortcuts.probes import logistic_regression, out_of_fold_scores
from covid_ct_scan_images.synthetic import make_synthetic_download

SIDE = 80
N_PER_CLASS = 40
FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(CLASS_NAMES)),
        "patient_id": datasets.Value("string"),
        "fold": datasets.Value("int32"),
    }
)


def encode(pixels: np.ndarray, image_format: str, **options: object) -> bytes:
    """Encode a uint8 grayscale array as an image file."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format=image_format, **options)
    return buffer.getvalue()


def build_dataset(files: list[bytes], labels: list[int]) -> datasets.Dataset:
    """One patient per image; folds assigned in turn within each class (stratified, grouped)."""
    folds = [0] * len(labels)
    for label in set(labels):
        for position, index in enumerate(i for i, value in enumerate(labels) if value == label):
            folds[index] = position % 5
    return datasets.Dataset.from_dict(
        {
            "image": [{"bytes": data, "path": None} for data in files],
            "label": labels,
            "patient_id": [f"patient-{index}" for index in range(len(labels))],
            "fold": folds,
        },
        features=FEATURES,
    )


def scores(report: ShortcutReport) -> dict[str, float]:
    """AUROC by table name."""
    return {result.name: result.auroc for result in report.results}


@pytest.fixture(scope="module")
def metadata_planted() -> ShortcutReport:
    """Positives PNG, negatives JPEG, with the same pixels: only the file format carries the label."""
    rng = np.random.default_rng(0)
    files, labels = [], []
    for _ in range(N_PER_CLASS):
        coarse = Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), mode="L")
        pixels = np.asarray(coarse.resize((SIDE, SIDE), Image.Resampling.BILINEAR))
        files += [encode(pixels, "PNG"), encode(pixels, "JPEG", quality=95)]
        labels += [1, 0]
    return run_shortcut_probes(build_dataset(files, labels), n_bootstrap=100)


@pytest.fixture(scope="module")
def center_planted() -> ShortcutReport:
    """Same format, size and file size; the label is only which half of the centre is the bright one.

    Both classes have the same histogram (a bright and a dark half-centre over a noise border), and
    uncompressed PNG makes the file size depend on the size alone. The planted region (middle 50%)
    sits inside the probes' centre (middle 60%), so resampling cannot blur it into the border.
    """
    rng = np.random.default_rng(1)
    margin = round(SIDE * 0.25)
    half = SIDE // 2
    files, labels = [], []
    for label in [1, 0] * N_PER_CLASS:
        pixels = rng.integers(0, 256, (SIDE, SIDE)).astype(np.uint8)
        bright = rng.integers(170, 256, (SIDE - 2 * margin, half - margin))
        dark = rng.integers(0, 86, (SIDE - 2 * margin, half - margin))
        left, right = (bright, dark) if label else (dark, bright)
        pixels[margin : SIDE - margin, margin:half] = left
        pixels[margin : SIDE - margin, half : SIDE - margin] = right
        files.append(encode(pixels, "PNG", compress_level=0))
        labels.append(label)
    return run_shortcut_probes(build_dataset(files, labels), n_bootstrap=100)


def test_metadata_probe_finds_a_label_planted_in_the_file_format(metadata_planted: ShortcutReport) -> None:
    auroc = scores(metadata_planted)
    assert auroc["metadata (LR)"] > 0.95
    assert auroc["metadata (GBT)"] > 0.95
    assert abs(auroc["border only (LR)"] - 0.5) < 0.2
    assert metadata_planted.best_shortcut().probe == "metadata"


def test_centre_probe_finds_a_label_planted_in_the_centre(center_planted: ShortcutReport) -> None:
    auroc = scores(center_planted)
    assert auroc["centre only (LR)"] > 0.95
    assert abs(auroc["border only (LR)"] - 0.5) < 0.2
    assert abs(auroc["metadata (LR)"] - 0.5) < 0.1
    assert abs(auroc["metadata (GBT)"] - 0.5) < 0.1
    assert "no clear shortcut" in interpretation(center_planted)


def test_table_chance_line_first_and_intervals(metadata_planted: ShortcutReport) -> None:
    chance = metadata_planted.results[0]
    assert (chance.probe, chance.auroc, chance.auprc) == ("chance", 0.5, 0.5)
    lines = format_table(metadata_planted).splitlines()
    assert lines[0].split() == ["probe", "features", "AUROC", "[95%", "CI]", "AUPRC", "[95%", "CI]"]
    assert lines[2].startswith("chance")
    assert len(lines) == 2 + 7
    for result in metadata_planted.probes:
        assert result.auroc_ci is not None and result.auprc_ci is not None
        assert result.auroc_ci[0] <= result.auroc <= result.auroc_ci[1] + 1e-9
    markdown = format_table(metadata_planted, markdown=True).splitlines()
    assert markdown[0].startswith("| probe |") and markdown[1] == "|---|---|---|---|"
    assert "almost entirely" in interpretation(metadata_planted)


def test_json_round_trip(metadata_planted: ShortcutReport, tmp_path: Path) -> None:
    path = tmp_path / "shortcuts.json"
    text = metadata_planted.to_json(path)
    data = json.loads(text)
    assert data["interpretation"] == interpretation(metadata_planted)
    assert data["results"][0]["probe"] == "chance" and data["prevalence"] == 0.5
    assert ShortcutReport.from_json(path) == metadata_planted


def test_same_seed_same_numbers(metadata_planted: ShortcutReport) -> None:
    assert metadata_planted.results[1].auroc_ci is not None
    rng = np.random.default_rng(0)
    pixels = (rng.random((SIDE, SIDE)) * 255).astype(np.uint8)
    files = [encode(pixels, "PNG"), encode(pixels, "JPEG")] * 5
    dataset = build_dataset(files, [1, 0] * 5)
    assert run_shortcut_probes(dataset, n_bootstrap=30, seed=3) == run_shortcut_probes(dataset, n_bootstrap=30, seed=3)


def test_tiny_sample_with_degenerate_folds_does_not_crash() -> None:
    rng = np.random.default_rng(2)
    files = [encode((rng.random((SIDE, SIDE)) * 255).astype(np.uint8), "PNG") for _ in range(7)]
    dataset = build_dataset(files, [1, 1, 0, 0, 0, 0, 0])
    # Both positives in fold 0: that fold trains on negatives only; folds 2-4 hold no positive.
    dataset = dataset.remove_columns("fold").add_column("fold", [0, 0, 1, 2, 3, 4, 1])
    report = run_shortcut_probes(dataset, n_bootstrap=20)
    assert all(0.0 <= result.auroc <= 1.0 for result in report.results)
    assert report.n_positive == 2 and report.n_folds == 5


def test_out_of_fold_scores_use_training_rate_for_single_class_training_part() -> None:
    labels = np.array([1, 1, 0, 0])
    folds = np.array([1, 1, 0, 0])
    features = np.arange(4.0).reshape(-1, 1)
    result = out_of_fold_scores(lambda: pytest.fail("no model can be fitted here"), features, labels, folds)
    assert result.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_expected_failures_are_dataset_errors() -> None:
    one_class = build_dataset([encode(np.zeros((SIDE, SIDE), np.uint8), "PNG")] * 4, [0, 0, 0, 0])
    with pytest.raises(DatasetError, match="both classes"):
        run_shortcut_probes(one_class, n_bootstrap=0)
    with pytest.raises(DatasetError, match="config='full'"):
        run_shortcut_probes(one_class.remove_columns("fold"), n_bootstrap=0)
    good = encode(np.zeros((SIDE, SIDE), np.uint8), "PNG")
    damaged = build_dataset([good, good, good[:60], good], [1, 0, 1, 0]).add_column("image_id", list("abcd"))
    with pytest.raises(DatasetError, match=r"^c could not be decoded"):
        run_shortcut_probes(damaged, n_bootstrap=0)


def test_metadata_features_read_the_file_header() -> None:
    pixels = (np.random.default_rng(0).random((600, 400)) * 255).astype(np.uint8)
    rgb = Image.fromarray(pixels, mode="L").convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=72, progressive=True, icc_profile=b"\0" * 16, exif=b"Exif\0\0")
    metadata, intensity, thumbnail = image_features(buffer.getvalue())
    values = dict(zip(METADATA_FEATURES, metadata, strict=True))
    assert (values["width"], values["height"], values["is_jpeg"], values["mode_RGB"]) == (400, 600, 1, 1)
    assert (values["progressive"], values["has_icc"], values["has_exif"], values["bits_per_pixel"]) == (1, 1, 1, 24)
    assert values["jpeg_quality_estimate"] == 72 and values["jpeg_quant_tables"] == 2
    assert values["file_size"] == len(buffer.getvalue())
    assert intensity.shape == (len(INTENSITY_FEATURES),) and thumbnail.shape == (THUMBNAIL_SIDE**2,)

    sixteen_bit = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    buffer = io.BytesIO()
    sixteen_bit.save(buffer, format="PNG")
    metadata, intensity, thumbnail = image_features(buffer.getvalue())
    values = dict(zip(METADATA_FEATURES, metadata, strict=True))
    assert values["is_png"] == 1 and values["bits_per_pixel"] == 16
    assert 0.0 <= thumbnail.min() < 0.1 and thumbnail.max() > 0.9  # scaled, not clipped to white


def test_jpeg_quality_estimate_recovers_libjpeg_qualities() -> None:
    for quality in (10, 50, 75, 95):
        data = encode(np.full((16, 16), 100, np.uint8), "JPEG", quality=quality)
        with Image.open(io.BytesIO(data)) as image:
            assert estimate_jpeg_quality(image.quantization[0]) == quality


def test_border_and_centre_views_partition_the_thumbnail() -> None:
    mask = center_mask(fraction=0.6)
    assert mask.sum() == round(THUMBNAIL_SIDE * 0.6) ** 2
    thumbnails = np.random.default_rng(0).random((3, THUMBNAIL_SIDE**2))
    border, centre = border_pixels(thumbnails), center_pixels(thumbnails)
    assert np.array_equal(border, thumbnails[:, ~mask]) and np.array_equal(centre, thumbnails[:, mask])
    assert border.shape[1] + centre.shape[1] == THUMBNAIL_SIDE**2


def test_cli_end_to_end_on_a_synthetic_raw_download(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_synthetic_download(tmp_path / "download", n_negative=30, n_positive=10, max_side=500)
    out = tmp_path / "shortcuts.json"
    code = main(["shortcuts", str(root), "--cache-dir", str(cache_dir), "--json", str(out), "--n-bootstrap", "50"])
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert "SYNTHETIC" in printed and "AUROC [95% CI]" in printed and data["interpretation"] in printed
    assert [row["probe"] for row in data["results"]][:2] == ["chance", "metadata"]
    assert (data["n_images"], data["n_positive"], data["n_bootstrap"]) == (40, 10, 50)


def test_cli_report_equals_the_built_full_configs_and_builds_no_arrow_cache(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from covid_ct_scan_images import load_dataset

    root = make_synthetic_download(tmp_path / "download", n_negative=30, n_positive=10, max_side=400)
    out = tmp_path / "shortcuts.json"
    assert main(["shortcuts", str(root), "--cache-dir", str(cache_dir), "--json", str(out), "--n-bootstrap", "50"]) == 0
    capsys.readouterr()
    assert not list(cache_dir.rglob("*.arrow"))  # the probes ran on the plan: no config was built
    monkeypatch.setenv("COVID_CT_STORE", "off")  # computed again from the built dataset's bytes, not recalled
    full = load_dataset(data_dir=root, config="full", cache_dir=cache_dir)
    from_dataset = run_shortcut_probes(full, n_bootstrap=50)
    assert ShortcutReport.from_json(out).to_dict() == from_dataset.to_dict()


def test_pixel_probes_fit_only_the_pixels_their_mask_keeps(metadata_planted: ShortcutReport) -> None:
    widths = {result.name: result.n_features for result in metadata_planted.results}
    mask = center_mask(fraction=0.6)
    assert (widths["border only (LR)"], widths["centre only (LR)"]) == ((~mask).sum(), mask.sum())
    # Fitting the zeroed pixels as well gives the same model: the same ranking of the images.
    thumbnails = np.random.default_rng(2).random((60, THUMBNAIL_SIDE**2))
    labels, folds = np.tile([0, 1], 30), np.repeat(np.arange(5), 12)
    zeroed = np.where(mask, 0.0, thumbnails)
    with_zeros = out_of_fold_scores(lambda: logistic_regression(0), zeroed, labels, folds)
    kept_only = out_of_fold_scores(lambda: logistic_regression(0), border_pixels(thumbnails), labels, folds)
    assert np.allclose(with_zeros, kept_only, rtol=0, atol=1e-8)
    assert np.array_equal(np.argsort(with_zeros, kind="stable"), np.argsort(kept_only, kind="stable"))


def test_features_of_a_file_changed_since_its_inventory_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "IM-0001-0001.png"
    path.write_bytes(encode(np.zeros((SIDE, SIDE), np.uint8), "PNG"))
    with pytest.raises(ImageFeatureError) as raised:
        extract_file_features([(path, hashlib.sha256(b"the bytes the inventory hashed").hexdigest())])
    assert "changed since it was checked" in str(raised.value.__cause__) and raised.value.index == 0


def test_cli_rejects_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shortcuts", str(tmp_path), "--n-bootstrap", "-1"]) == 2
    assert "--n-bootstrap" in capsys.readouterr().err


@pytest.mark.slow
def test_real_sample_shows_the_source_shortcut(real_sample: Path, cache_dir: Path) -> None:
    from covid_ct_scan_images import load_dataset

    dataset = load_dataset(data_dir=real_sample / DATASET_FOLDER, config="full", cache_dir=cache_dir)
    report = run_shortcut_probes(dataset["train"], n_bootstrap=200)
    assert (report.n_images, report.n_positive) == (48, 12)
    # The label follows the image source: a probe that cannot see the lungs separates the classes.
    assert report.best_shortcut().auroc > 0.8
