"""The ``resized`` config: the ``default`` splits, with small upright JPEG images."""

from __future__ import annotations

from covid_ct_scan_images import prepare


def test_resized_config_keeps_the_default_splits_with_small_upright_images(synthetic_root, cache_dir):
    from covid_ct_scan_images.resized import RESIZED_MAX_SIDE

    default = prepare(synthetic_root, cache_dir=cache_dir).dataset
    resized = prepare(synthetic_root, config="resized", cache_dir=cache_dir).dataset
    assert list(resized) == list(default)
    for split in default:
        assert resized[split]["image_id"] == default[split]["image_id"]
        assert resized[split]["sha256"] == default[split]["sha256"]  # the original file's hash
        for row in resized[split]:
            image = row["image"]
            assert image.mode == "RGB"  # decoded as RGB like every config; the stored JPEG is 8-bit L or RGB
            assert max(image.size) <= RESIZED_MAX_SIDE
            if max(row["width"], row["height"]) <= RESIZED_MAX_SIDE:
                assert image.size in {(row["width"], row["height"]), (row["height"], row["width"])}
