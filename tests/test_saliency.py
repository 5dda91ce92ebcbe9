"""Saliency maps: Grad-CAM finds a planted mark where it is, the border share tells a corner from a centre mark, and
each explained image carries the probability and decision its run reported in ``predictions.csv``.

Runs are tiny random models trained on the CPU (``planted_mark_runs`` in conftest.py) or by ``finetune.py``; no
download.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("evaluate")
pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402
from planted_marks import SIDE, planted_split, save_as_run  # noqa: E402
from transformers import AutoImageProcessor, AutoModelForImageClassification  # noqa: E402

import explain  # noqa: E402
import finetune  # noqa: E402
import random_checkpoints  # noqa: E402
from covid_ct_scan_images.shortcuts import CENTER_FRACTION  # noqa: E402
from saliency import gradcam, gradcam_layer, saliency_maps  # noqa: E402
from trained_run import load_run  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is faster than several, and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def explained_run(tmp_path_factory, tiny_checkpoints, baseline_download) -> Path:
    """A ``finetune.py`` run (tiny ConvNeXt, one epoch, centre masked) with ``--explain 4``."""
    output_dir = tmp_path_factory.mktemp("explained") / "run"
    finetune.main(
        ["--model", str(tiny_checkpoints["convnext"]), "--data-dir", str(baseline_download), "--output_dir",
         str(output_dir), "--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--n_bootstrap", "20",
         "--explain", "4", "--mask-center", "0.6", "--disable_tqdm", "true"]
    )
    return output_dir


def _positive_images(mark: str) -> list[dict]:
    split = planted_split(mark, 12, seed=5, prefix="held-out")
    positives = split.filter(lambda row: row["label"] == 1)
    return positives.cast_column("image", datasets.Image(decode=False))["image"]


def _write_parquet_dataset(folder: Path, mark: str) -> Path:
    """The planted test split as an exported-style Parquet folder (what ``--dataset`` reads)."""
    (folder / "data").mkdir(parents=True)
    planted_split(mark, 6, seed=7, prefix="export").to_parquet(folder / "data" / "test-00000-of-00001.parquet")
    return folder


def _test_predictions(run_dir: Path) -> dict[str, dict[str, str]]:
    with open(run_dir / "predictions.csv", encoding="utf-8", newline="") as handle:
        return {row["image_id"]: row for row in csv.DictReader(handle) if row["split"] == "test"}


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
    pixels = run.transform.pixel_values(images)
    probabilities, maps = gradcam(run.model, pixels, run.threshold, run.logit_offset)
    for i in range(len(images)):
        single_probability, single_map = gradcam(run.model, pixels[i : i + 1], run.threshold, run.logit_offset)
        torch.testing.assert_close(single_map[0], maps[i], rtol=1e-4, atol=1e-6)
        assert single_probability[0] == pytest.approx(probabilities[i], abs=1e-6)
    assert maps.shape == (5, SIDE, SIDE) and (maps >= 0).all() and (maps.sum(dim=(1, 2)) > 0).all()


def test_explained_probabilities_and_decisions_are_those_of_predictions_csv(explained_run, baseline_download, tmp_path):
    """The saved model's softmax is shifted by the folded threshold; explain must undo it, image by image."""
    output_dir = tmp_path / "saliency"
    assert explain.main(["--model", str(explained_run), "--data-dir", str(baseline_download), "--output_dir",
                         str(output_dir), "--n-bootstrap", "20", "--quiet"]) == 0
    summary = json.loads((output_dir / "saliency.json").read_text(encoding="utf-8"))
    reported = _test_predictions(explained_run)
    assert {image["image_id"] for image in summary["images"]} == set(reported)
    config = json.loads((explained_run / "config.json").read_text(encoding="utf-8"))
    assert summary["threshold"] == config["decision_threshold"] and config["decision_logit_offset"] != 0
    for image in summary["images"]:
        row = reported[image["image_id"]]
        assert image["probability"] == pytest.approx(float(row["probability"]), abs=1e-5), image["image_id"]
        assert image["decision"] == int(row["predicted"]), image["image_id"]
    assert summary["mask_center"] == 0.6


def test_training_run_with_explain_puts_the_maps_beside_the_shortcut_numbers_in_the_card(explained_run):
    summary = json.loads((explained_run / "saliency" / "saliency.json").read_text(encoding="utf-8"))
    assert summary["groups"]["all"]["n_images"] == 4 and summary["groups"]["positive"]["n_images"] == 2
    assert Image.open(explained_run / "saliency" / "saliency_grid.png").size[0] > 400
    card = (explained_run / "README.md").read_text(encoding="utf-8")
    results, where, training = (card.index(heading) for heading in ("## Results", "### Where the model looks",
                                                                    "## Training"))
    assert results < where < training
    assert "![Grad-CAM overlays, misclassified and most confident first](saliency/saliency_grid.png)" in card
    assert "| positive | 2 (" in card


def test_vit_maps_weigh_the_tokens_entering_the_last_block_and_are_not_empty(tmp_path):
    """The patch tokens leaving the last block never reach the classifier: maps taken there would all be zero."""
    checkpoint = random_checkpoints.save_random_checkpoints(tmp_path, "tiny", image_size=SIDE)["vit"]
    model = AutoModelForImageClassification.from_pretrained(checkpoint)
    run = load_run(save_as_run(tmp_path / "run", model, AutoImageProcessor.from_pretrained(checkpoint), "corner"))
    names = {module: name for name, module in run.model.named_modules()}
    assert names[gradcam_layer(run.model)].endswith(f"{run.model.config.num_hidden_layers - 1}.layernorm_before")
    _, share, _, maps = saliency_maps(run, _positive_images("corner")[:4], CENTER_FRACTION)
    assert maps.shape == (4, SIDE, SIDE) and (maps.sum(dim=(1, 2)) > 0).all()
    assert np.all((share >= 0) & (share <= 1))


def test_maps_see_the_images_masked_as_the_run_evaluated_them(planted_mark_runs, tmp_path):
    run_dir = tmp_path / "masked"
    shutil.copytree(planted_mark_runs["corner"], run_dir)
    settings = json.loads((run_dir / "transform.json").read_text(encoding="utf-8"))
    (run_dir / "transform.json").write_text(json.dumps({**settings, "mask_center": 0.5}), encoding="utf-8")
    run = load_run(run_dir, "cpu")
    _, _, pixels, _ = saliency_maps(run, _positive_images("centre")[:2], CENTER_FRACTION)
    centre = slice(SIDE // 4, SIDE - SIDE // 4)
    black = run.transform.black.view(1, 3, 1, 1).expand(2, 3, SIDE // 2, SIDE // 2)
    torch.testing.assert_close(pixels[:, :, centre, centre], black)
    assert not torch.allclose(pixels[:, :, :2, :2], black[:, :, :2, :2])


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
    with pytest.raises(SystemExit) as stopped:
        explain.main(["--model", str(tmp_path), "--dataset", str(tmp_path), "--quiet"])
    error = capsys.readouterr().err
    assert stopped.value.code == 1 and "metrics.json not found" in error
    assert len(error.splitlines()) == 1 and "Traceback" not in error


def test_a_pooled_cross_validation_folder_is_refused_with_what_to_give_instead(planted_mark_runs, tmp_path, capsys):
    pooled = tmp_path / "pooled"
    pooled.mkdir()
    shutil.copy(planted_mark_runs["corner"] / "metrics.json", pooled / "metrics.json")
    with pytest.raises(SystemExit) as stopped:
        explain.main(["--model", str(pooled), "--dataset", str(tmp_path), "--quiet"])
    assert stopped.value.code == 1 and "give one fold_K folder" in capsys.readouterr().err


def test_explain_without_a_data_source_is_a_short_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        explain.main(["--model", str(tmp_path)])
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and "exactly one of --data-dir" in error and len(error.splitlines()) == 3
