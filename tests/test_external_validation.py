"""External validation: a run that learned a planted shortcut holds up where the shortcut exists and drops where not.

The run (``planted_mark_runs["corner"]`` in conftest.py) learned that a bright corner mark means positive. On a new
image folder whose positives carry the mark, it must score as well as on its own test split; on one whose
positives lack it (the shortcut does not transfer, as a source marker would not to another hospital), its AUROC
must fall to chance and the reported drop must show it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("evaluate")

from planted_marks import write_image_folder

import evaluate_external

LABEL_MAP = "COVID=positive,Normal=negative,Pneumonia=drop"


def _evaluate(run_dir: Path, folder: Path, output_dir: Path, label_map: str = LABEL_MAP) -> dict:
    code = evaluate_external.main(
        ["--model", str(run_dir), "--eval-dataset", str(folder), "--label-map", label_map,
         "--output_dir", str(output_dir), "--n-bootstrap", "50"]
    )
    assert code == 0
    return json.loads((output_dir / "external_metrics.json").read_text(encoding="utf-8"))


def test_external_set_with_the_shortcut_scores_like_the_test_split_and_one_without_it_drops(
    planted_mark_runs, tmp_path, capsys
):
    run_dir = planted_mark_runs["corner"]
    with_mark = _evaluate(run_dir, write_image_folder(tmp_path / "with", "corner", 12, seed=11), tmp_path / "a")
    assert with_mark["n_images"] == 24 and with_mark["n_positive"] == 12
    assert with_mark["dropped"] == {"Pneumonia": 3}
    assert with_mark["bootstrap_groups"].startswith("image")
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert with_mark["threshold"] == config["decision_threshold"]
    assert with_mark["external"]["at_selected_threshold"]["auroc"] >= 0.95
    assert abs(with_mark["drop"]["auroc"]) <= 0.05

    without_mark = _evaluate(run_dir, write_image_folder(tmp_path / "without", None, 12, seed=12), tmp_path / "b")
    external = without_mark["external"]["at_selected_threshold"]
    assert external["auroc"] <= 0.8 and external["sensitivity"] <= 0.25
    assert without_mark["drop"]["auroc"] >= 0.2 and without_mark["drop"]["sensitivity"] >= 0.75
    assert without_mark["drop"]["auroc"] == pytest.approx(
        without_mark["in_dataset_test"]["auroc"] - external["auroc"]
    )
    printed = capsys.readouterr().out
    with capsys.disabled():  # the figures baselines/README.md quotes, shown with -s
        print(f"external AUROC with the mark {with_mark['external']['at_selected_threshold']['auroc']:.2f}, without "
              f"{external['auroc']:.2f}; sensitivity {without_mark['in_dataset_test']['sensitivity']:.2f} on the "
              f"run's test, {external['sensitivity']:.2f} without the mark")
    assert "| auroc |" in printed and "left out by the label map: Pneumonia 3" in printed
    with open(tmp_path / "b" / "external_predictions.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and {row["split"] for row in rows} == {"external"}


def test_labels_missing_from_the_label_map_are_named_with_counts_and_exit_1(planted_mark_runs, tmp_path, capsys):
    folder = write_image_folder(tmp_path / "set", "corner", 2, seed=3)
    with pytest.raises(SystemExit) as stopped:
        evaluate_external.main(["--model", str(planted_mark_runs["corner"]), "--eval-dataset", str(folder)])
    error = capsys.readouterr().err
    assert stopped.value.code == 1 and "'COVID' (2 images)" in error and "--label-map" in error
    assert len(error.splitlines()) == 1 and "Traceback" not in error


def test_the_model_on_its_own_test_images_scores_what_predictions_csv_says(planted_mark_runs, tmp_path):
    """External scoring reloads the run as explain does: the same probabilities as the run reported."""
    from planted_marks import planted_split

    run_dir = planted_mark_runs["corner"]
    folder = tmp_path / "own-test"
    (folder / "data").mkdir(parents=True)
    own_test = planted_split("corner", 20, 2, "test")  # the split save_as_run scored as the run's test
    own_test.to_parquet(folder / "data" / "test-00000-of-00001.parquet")
    record = _evaluate(run_dir, folder, tmp_path / "out", label_map="negative=negative,positive=positive")
    with open(run_dir / "predictions.csv", encoding="utf-8", newline="") as handle:
        reported = {row["image_id"]: row for row in csv.DictReader(handle) if row["split"] == "test"}
    with open(tmp_path / "out" / "external_predictions.csv", encoding="utf-8", newline="") as handle:
        scored = {row["image_id"]: row for row in csv.DictReader(handle)}
    assert set(scored) == set(reported)
    for image_id, row in scored.items():
        assert float(row["probability"]) == pytest.approx(float(reported[image_id]["probability"]), abs=1e-5)
        assert row["predicted"] == reported[image_id]["predicted"]
    assert record["external"]["at_selected_threshold"]["auroc"] == pytest.approx(record["in_dataset_test"]["auroc"])


def test_malformed_label_map_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        evaluate_external.main(["--model", str(tmp_path), "--eval-dataset", "x", "--label-map", "COVID=sick"])
    assert stopped.value.code == 2 and "COVID=sick" in capsys.readouterr().err
