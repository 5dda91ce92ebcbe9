"""Saliency maps: Grad-CAM finds a planted mark where it is, and the border share tells a corner from a centre mark.

Runs are tiny random models trained on the CPU (``planted_mark_runs`` in conftest.py); no download.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("evaluate")
pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402
from planted_marks import SIDE, planted_split  # noqa: E402

BASELINES = Path(__file__).resolve().parents[1] / "baselines"
sys.path.insert(0, str(BASELINES))

import explain  # noqa: E402
import random_checkpoints  # noqa: E402
import training  # noqa: E402
from training.inference import load_run  # noqa: E402
from training.saliency import gradcam, gradcam_layer, saliency_maps  # noqa: E402

from covid_ct_scan_images.shortcuts import CENTER_FRACTION  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is faster than several, and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _positive_images(mark: str) -> list[dict]:
    split = planted_split(mark, 12, seed=5, prefix="held-out")
    positives = split.filter(lambda row: row["label"] == 1)
    return positives.cast_column("image", datasets.Image(decode=False))["image"]


def _write_parquet_dataset(folder: Path, mark: str) -> Path:
    """The planted test split as an exported-style Parquet folder (what ``--dataset`` reads)."""
    (folder / "data").mkdir(parents=True)
    planted_split(mark, 6, seed=7, prefix="export").to_parquet(folder / "data" / "test-00000-of-00001.parquet")
    return folder


def test_border_share_is_high_for_a_corner_mark_and_low_for_a_centre_mark(planted_mark_runs):
    shares = {}
    for mark, run_dir in planted_mark_runs.items():
        record = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        assert record["test"]["at_selected_threshold"]["auroc"] >= 0.95, f"the {mark} model did not learn its mark"
        _, share, _, _ = saliency_maps(load_run(run_dir, "cpu"), _positive_images(mark), CENTER_FRACTION)
        shares[mark] = float(np.nanmean(share))
    print(f"border share of the maps of marked images: corner {shares['corner']:.3f}, centre {shares['centre']:.3f}")
    uniform = 1 - CENTER_FRACTION**2
    assert shares["corner"] > uniform + 0.1
    assert shares["centre"] < uniform - 0.2
    assert shares["corner"] - shares["centre"] > 0.4


def test_batched_maps_equal_maps_computed_one_image_at_a_time(planted_mark_runs):
    run = load_run(planted_mark_runs["corner"], "cpu")
    images = _positive_images("corner")[:5]
    pixels = torch.stack([run.transform.tensor(image) for image in images])
    probabilities, maps = gradcam(run.model, pixels, run.threshold)
    for i in range(len(images)):
        single_probability, single_map = gradcam(run.model, pixels[i : i + 1], run.threshold)
        torch.testing.assert_close(single_map[0], maps[i], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(single_probability[0], probabilities[i])
    assert maps.shape == (5, SIDE, SIDE) and (maps >= 0).all() and (maps.sum(dim=(1, 2)) > 0).all()


def test_vit_maps_weigh_the_tokens_entering_the_last_block_and_are_not_empty(tmp_path):
    """The patch tokens leaving the last block never reach the classifier: maps taken there would all be zero."""
    checkpoint = random_checkpoints.save_random_checkpoints(tmp_path, "tiny", image_size=SIDE)["vit"]
    (checkpoint / "metrics.json").write_text(json.dumps({"threshold": 0.5, "mask_center": 0.0}), encoding="utf-8")
    run = load_run(checkpoint, "cpu")
    names = {module: name for name, module in run.model.named_modules()}
    layer_name = names[gradcam_layer(run.model)]
    assert layer_name.endswith(f"{len(run.model.vit.layers) - 1}.layernorm_before")
    _, share, _, maps = saliency_maps(run, _positive_images("corner")[:4], CENTER_FRACTION)
    assert maps.shape == (4, SIDE, SIDE) and (maps.sum(dim=(1, 2)) > 0).all()
    assert np.all((share >= 0) & (share <= 1))


def test_maps_see_the_images_masked_as_the_run_trained_on_them(planted_mark_runs, tmp_path):
    run_dir = tmp_path / "masked"
    shutil.copytree(planted_mark_runs["corner"], run_dir)
    record = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    (run_dir / "metrics.json").write_text(json.dumps({**record, "mask_center": 0.5}), encoding="utf-8")
    run = load_run(run_dir, "cpu")
    _, _, pixels, _ = saliency_maps(run, _positive_images("centre")[:2], CENTER_FRACTION)
    black = torch.as_tensor(-run.transform.mean / run.transform.std).view(3, 1, 1)
    centre = slice(SIDE // 4 + 1, SIDE - SIDE // 4 - 1)
    torch.testing.assert_close(pixels[:, :, centre, centre], black.expand(2, 3, *pixels[0, 0, centre, centre].shape))


def test_explain_command_writes_the_grid_the_summary_and_one_overlay_per_image(planted_mark_runs, tmp_path, capsys):
    run_dir = planted_mark_runs["corner"]
    dataset = _write_parquet_dataset(tmp_path / "export", "corner")
    output_dir = tmp_path / "saliency"
    code = explain.main(
        ["--model", str(run_dir), "--dataset", str(dataset), "--output_dir", str(output_dir), "--n-images", "6",
         "--n-bootstrap", "50", "--per-image", "--quiet"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| positive | 3 (3) |" in printed and "saliency_grid.png" in printed
    summary = json.loads((output_dir / "saliency.json").read_text(encoding="utf-8"))
    assert set(summary["groups"]) == {"all", "negative", "positive", "correct", "incorrect"}
    assert summary["groups"]["all"]["n_images"] == 6 and summary["center_fraction"] == CENTER_FRACTION
    assert summary["groups"]["positive"]["mean"] > summary["uniform_border_share"]
    low, high = summary["groups"]["all"]["mean_ci"]
    assert low <= summary["groups"]["all"]["mean"] <= high
    assert all(0 <= image["border_share"] <= 1 for image in summary["images"])
    assert Image.open(output_dir / "saliency_grid.png").size[0] > 600
    assert len(list((output_dir / "overlays").glob("*.png"))) == 6


def test_explain_on_a_folder_that_is_not_a_run_is_one_line_and_exit_1(tmp_path, capsys):
    code = explain.main(["--model", str(tmp_path), "--dataset", str(tmp_path), "--quiet"])
    error = capsys.readouterr().err
    assert code == 1 and "metrics.json not found" in error and "Traceback" not in error


def test_training_run_with_explain_writes_saliency_into_the_run_and_the_card(tmp_path, synthetic_root):
    checkpoint = random_checkpoints.save_random_checkpoints(tmp_path / "ckpt", "tiny")["convnext"]
    output_dir = tmp_path / "run"
    training.main(
        ["--model", str(checkpoint), "--data-dir", str(synthetic_root), "--output_dir", str(output_dir),
         "--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--n_bootstrap", "20", "--explain", "4",
         "--mask-center", "0.6", "--report_to", "none"]
    )
    summary = json.loads((output_dir / "saliency" / "saliency.json").read_text(encoding="utf-8"))
    assert summary["groups"]["all"]["n_images"] == 4 and summary["mask_center"] == 0.6
    card = (output_dir / "README.md").read_text(encoding="utf-8")
    assert "### Where the model looks" in card and "saliency/saliency_grid.png" in card


def test_stored_threshold_prefers_the_checkpoint_config_and_refuses_a_pooled_folder(tmp_path):
    from training.inference import stored_threshold

    (tmp_path / "metrics.json").write_text(json.dumps({"threshold": 0.31}), encoding="utf-8")
    assert stored_threshold(tmp_path) == 0.31
    (tmp_path / "config.json").write_text(json.dumps({"decision_threshold": 0.42}), encoding="utf-8")
    assert stored_threshold(tmp_path) == 0.42
    pooled = tmp_path / "pooled"
    pooled.mkdir()
    (pooled / "metrics.json").write_text(json.dumps({"threshold": {"0": 0.3, "1": 0.4}}), encoding="utf-8")
    with pytest.raises(ValueError, match="one fold's run folder"):
        stored_threshold(pooled)
