"""The transformers image-classification recipe runs unchanged on our data: by name and on the plain export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from hf_recipe import IMAGE_SIDE, run_recipe, save_tiny_vit

import covid_ct_scan_images
from covid_ct_scan_images.cli import main as covid_ct

pytest.importorskip("transformers")
pytest.importorskip("torch")

HF_RECIPE = Path(__file__).with_name("hf_recipe.py")


def test_recipe_runs_on_load_dataset_by_name(synthetic_root: Path, cache_dir: Path, tmp_path: Path):
    name = covid_ct_scan_images.DATASET_NAME
    dataset = datasets.load_dataset(name, data_dir=str(synthetic_root), cache_dir=str(cache_dir))
    assert len(set(dataset["train"]["mode"])) > 1, "the files mix modes; the recipe must cope"
    model_dir = save_tiny_vit(tmp_path / "vit", dataset["train"].features["label"].names)
    result = run_recipe(dataset, model_dir, tmp_path / "trainer")
    assert result["image_modes"] == ["RGB"]
    assert result["pixel_values_shape"] == [dataset["train"].num_rows, 3, IMAGE_SIDE, IMAGE_SIDE]
    assert result["labels"] == dataset["train"]["label"]
    assert result["finite_loss"]


@pytest.mark.slow
def test_recipe_runs_on_the_plain_export_of_the_real_sample(real_sample: Path, cache_dir: Path, tmp_path: Path):
    out = tmp_path / "export"
    assert covid_ct(["export", str(real_sample), str(out), "--no-shortcuts", "--cache-dir", str(cache_dir)]) == 0
    built = covid_ct_scan_images.load_dataset(real_sample, cache_dir=cache_dir)["train"]
    assert {"L", "RGB", "RGBA"} <= set(built["mode"]), "the real sample mixes modes; the recipe must cope"
    model_dir = save_tiny_vit(tmp_path / "vit", built.features["label"].names)
    result_path = tmp_path / "result.json"
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, str(HF_RECIPE), str(out), str(model_dir), str(result_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=environment,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(result_path.read_text(encoding="utf-8"))
    assert result["image_modes"] == ["RGB"]
    assert result["pixel_values_shape"] == [built.num_rows, 3, IMAGE_SIDE, IMAGE_SIDE]
    assert result["finite_loss"]
