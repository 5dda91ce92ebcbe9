"""The baseline scripts' command line: bad input is one line and an exit code; a run resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("evaluate")

import finetune

SCRIPT = Path(__file__).resolve().parents[1] / "baselines" / "finetune_vit.py"


def _script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)


def _one_error_line(completed: subprocess.CompletedProcess) -> str:
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert lines[0].startswith("finetune_vit.py: error: ")
    return lines[0]


def test_missing_data_folder_is_one_line_and_exit_2(tmp_path, tiny_checkpoints):
    completed = _script("--model", str(tiny_checkpoints["vit"]), "--data-dir", str(tmp_path / "nowhere"),
                        "--output_dir", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert "--data-dir" in _one_error_line(completed) and "raw Tianchi download" in completed.stderr


def test_missing_model_folder_is_one_line_and_exit_2(tmp_path, baseline_download):
    completed = _script("--model", str(tmp_path / "no" / "model"), "--data-dir", str(baseline_download),
                        "--output_dir", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert "no such folder" in _one_error_line(completed) and "random_checkpoints.py" in completed.stderr


def test_fold_outside_the_data_is_one_line_and_exit_2(tmp_path, tiny_checkpoints, baseline_download):
    completed = _script("--model", str(tiny_checkpoints["vit"]), "--data-dir", str(baseline_download),
                        "--fold", "7", "--output_dir", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert "--fold 7: the dataset has folds 0..4; give one of them, or --cv" in _one_error_line(completed)
    assert not (tmp_path / "out").exists()


def test_push_to_hub_without_the_hub_is_one_line_and_exit_1(tmp_path, tiny_checkpoints, baseline_download):
    completed = _script("--model", str(tiny_checkpoints["vit"]), "--data-dir", str(baseline_download),
                        "--output_dir", str(tmp_path / "out"), "--push_to_hub", "--hub_model_id", "someone/model")
    assert completed.returncode == 1
    assert "--push_to_hub: cannot reach the Hub" in _one_error_line(completed)


def test_unknown_option_is_a_short_usage_error_with_a_hint():
    completed = _script("--data-dir", "x", "--output_dir", "o", "--cache-dir", "c")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "usage: finetune_vit.py --data-dir DIR | --dataset ID --output_dir DIR [options]",
        "finetune_vit.py: error: unrecognized arguments: --cache-dir c",
        "Run 'finetune_vit.py --help' to see every option.",
    ]


def test_training_resumes_from_a_checkpoint_where_it_stopped(tmp_path, tiny_checkpoints, baseline_download):
    """Two epochs in one go equal one epoch, then a second run resumed from its checkpoint (Trainer's RNG state)."""
    common = ["--model", str(tiny_checkpoints["vit"]), "--data-dir", str(baseline_download), "--n_bootstrap", "0",
              "--per_device_train_batch_size", "64", "--disable_tqdm", "true", "--save_total_limit", "5"]
    straight = finetune.main([*common, "--output_dir", str(tmp_path / "straight"), "--num_train_epochs", "2"])
    finetune.main([*common, "--output_dir", str(tmp_path / "resumed"), "--num_train_epochs", "1"])
    checkpoint = tmp_path / "resumed" / "checkpoint-1"
    assert checkpoint.is_dir()
    resumed = finetune.main([*common, "--output_dir", str(tmp_path / "resumed"), "--num_train_epochs", "2",
                             "--resume_from_checkpoint", str(checkpoint)])
    state = json.loads((tmp_path / "resumed" / "trainer_state.json").read_text(encoding="utf-8"))
    assert state["global_step"] == 2 and [e["epoch"] for e in state["log_history"] if "eval_auprc" in e] == [1, 2]
    assert resumed["training"]["best_checkpoint"].endswith(straight["training"]["best_checkpoint"][-12:])
    assert resumed["test"]["at_selected_threshold"]["auroc"] == pytest.approx(
        straight["test"]["at_selected_threshold"]["auroc"]
    )
    assert resumed["threshold"] == pytest.approx(straight["threshold"], abs=1e-6)


def test_hub_model_that_cannot_be_fetched_is_one_line_and_exit_1(tmp_path, baseline_download):
    completed = _script("--model", "someone/not-in-the-cache", "--data-dir", str(baseline_download),
                        "--output_dir", str(tmp_path / "out"))
    assert completed.returncode == 1
    assert "--model someone/not-in-the-cache: cannot load it" in _one_error_line(completed)


def test_training_progress_bars_show_only_on_a_terminal(tmp_path, monkeypatch):
    from finetune import parse_arguments

    argv = ["--data-dir", str(tmp_path), "--output_dir", str(tmp_path / "run")]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert parse_arguments(argv, "model")[1].disable_tqdm
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert not parse_arguments(argv, "model")[1].disable_tqdm
    assert parse_arguments([*argv, "--disable_tqdm", "true"], "model")[1].disable_tqdm
