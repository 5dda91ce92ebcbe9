"""Baselines: weighted loss, gradient accumulation, threshold rule, transform, and both scripts end to end.

Models are tiny randomly initialised ViT and ConvNeXt configs saved to a temporary folder; no download.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("evaluate")
pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

import evaluation  # noqa: E402
import finetune  # noqa: E402
import pool_folds  # noqa: E402
import radiograph_transforms  # noqa: E402
import run_outputs  # noqa: E402
import weighted_loss  # noqa: E402
from radiograph_transforms import Augmentation, RadiographTransform  # noqa: E402
from weighted_loss import WeightedCrossEntropy, WeightedLossTrainer  # noqa: E402

BASELINES = Path(__file__).resolve().parents[1] / "baselines"

METRIC_KEYS = {
    "n", "n_positive", "prevalence", "auroc", "auroc_ci", "auprc", "auprc_ci", "auprc_chance", "threshold",
    "sensitivity", "sensitivity_ci", "specificity", "specificity_ci", "balanced_accuracy", "precision", "f1",
    "mcc", "mcc_ci", "accuracy", "confusion_matrix", "tn", "fp", "fn", "tp",
}
RUN_KEYS = {
    "model", "fold", "threshold", "threshold_rule", "class_weights", "class_weights_rule", "seed", "mask_center",
    "augmentation", "dataset", "training", "versions", "command", "shortcut_comparison", "validation", "test",
}
OUTPUT_FILES = (
    "metrics.json", "predictions.csv", "roc_curve.png", "pr_curve.png", "confusion_matrix.png", "README.md",
    "config.json", "model.safetensors", "preprocessor_config.json", "transform.json", "training_curves.png",
    "test_images.png", "trainer_state.json", "train_results.json",
)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tiny_checkpoints: dict[str, Path]) -> dict[str, Path]:
    return tiny_checkpoints


@pytest.fixture(scope="module")
def download(baseline_download: Path) -> Path:
    return baseline_download


def _run_script(script: str, *args: str) -> str:
    """Run a baseline script as a user does (``python baselines/SCRIPT``); return its standard output."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, str(BASELINES / script), *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed.stdout


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path], download: Path) -> tuple[Path, str]:
    """One run of ``finetune_vit.py`` (two epochs): its output folder and what it printed."""
    output_dir = tmp_path_factory.mktemp("runs") / "vit"
    stdout = _run_script(
        "finetune_vit.py", "--model", str(tiny_models["vit"]), "--data-dir", str(download), "--output_dir",
        str(output_dir), "--num_train_epochs", "2", "--per_device_train_batch_size", "8", "--n_bootstrap", "50",
    )
    return output_dir, stdout


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _check_metric_block(block: dict) -> None:
    for name in ("at_selected_threshold", "at_0.5"):
        assert set(block[name]) == METRIC_KEYS, name
    assert block["at_0.5"]["threshold"] == 0.5


# ---------------------------------------------------------------------------------------------------------------
# Weighted loss and gradient accumulation
# ---------------------------------------------------------------------------------------------------------------


def test_weighted_loss_matches_a_hand_computation():
    logits = torch.tensor([[2.0, 0.0], [0.5, 0.5], [0.0, 1.0], [1.0, -1.0], [-0.5, 0.3]])
    labels = torch.tensor([0, 0, 1, 0, 1])
    weights = [0.6, 3.0]
    # Hand computation: CE_i = log(e^a + e^b) - logit of the true class; weighted mean over sum of weights.
    terms = []
    for (a, b), y in zip(logits.tolist(), labels.tolist(), strict=True):
        terms.append((weights[y], math.log(math.exp(a) + math.exp(b)) - (a, b)[y]))
    total = sum(w * ce for w, ce in terms)
    weight_sum = 3 * 0.6 + 2 * 3.0
    loss = WeightedCrossEntropy(weights)
    outputs = {"logits": logits}
    assert loss(outputs, labels).item() == pytest.approx(total / weight_sum, rel=1e-6)
    assert loss(outputs, labels).item() == pytest.approx(
        nn.functional.cross_entropy(logits, labels, weight=torch.tensor(weights)).item(), rel=1e-6
    )
    # With Trainer's normaliser for the accumulated batch the sum is divided by it instead.
    assert loss(outputs, labels, num_items_in_batch=torch.tensor(20.0)).item() == pytest.approx(total / 20, rel=1e-6)
    assert loss.weight_sum(torch.tensor([0, 1, -100, 1])).item() == pytest.approx(6.6)


def test_class_weights_rules():
    assert weighted_loss.parse_class_weights("balanced", [0] * 9 + [1]) == pytest.approx([10 / 18, 5.0])
    assert weighted_loss.parse_class_weights("none", [0, 1]) == [1.0, 1.0]
    assert weighted_loss.parse_class_weights("1,3.5", [0, 1]) == [1.0, 3.5]
    for bad in ("1", "a,b", "1,-2", "0,1", "1,2,3"):
        with pytest.raises(ValueError):
            weighted_loss.parse_class_weights(bad, [0, 1])
    with pytest.raises(ValueError):
        weighted_loss.parse_class_weights("balanced", [0, 0, 0])


class _TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.linear(pixel_values)}


_FEATURES = torch.tensor(
    [[0.5, -1.0, 2.0, 0.1], [1.5, 0.3, -0.2, 0.0], [-0.7, 0.8, 0.4, 1.2], [0.2, 0.2, 0.2, 0.2],
     [2.0, -0.5, 0.0, 1.0], [-1.0, -1.0, 0.5, 0.5], [0.9, 1.1, -1.3, 0.4], [0.0, 0.6, 1.8, -0.9]]
)
_LABELS = [0, 0, 0, 0, 0, 1, 0, 1]  # imbalanced: micro-batches of 2 differ in weight sum
_WEIGHTS = [1.0, 5.0]


def _one_step(tmp_path: Path, batch_size: int, accumulation: int, trainer_class: type, **loss_kwargs) -> dict:
    from transformers import TrainingArguments

    torch.manual_seed(0)
    model = _TinyClassifier()
    data = [{"pixel_values": _FEATURES[i], "labels": _LABELS[i]} for i in range(8)]
    args = TrainingArguments(
        output_dir=str(tmp_path / f"ga-{batch_size}x{accumulation}-{trainer_class.__name__}"),
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation, max_steps=1,
        learning_rate=1.0, optim="sgd", lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=0.0, use_cpu=True, report_to="none", save_strategy="no", logging_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = trainer_class(model=model, args=args, train_dataset=data, **loss_kwargs)
    trainer.train()
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    from transformers import Trainer

    loss = WeightedCrossEntropy(_WEIGHTS)
    one_by_eight = _one_step(tmp_path, 8, 1, WeightedLossTrainer, loss=loss)
    four_by_two = _one_step(tmp_path, 2, 4, WeightedLossTrainer, loss=loss)
    for name in one_by_eight:
        assert torch.allclose(one_by_eight[name], four_by_two[name], atol=1e-6), name

    # Both equal one plain SGD step (lr 1) on the weighted-mean loss of all 8 items.
    torch.manual_seed(0)
    reference = _TinyClassifier()
    before = {name: value.detach().clone() for name, value in reference.state_dict().items()}
    nn.functional.cross_entropy(
        reference(_FEATURES)["logits"], torch.tensor(_LABELS), weight=torch.tensor(_WEIGHTS)
    ).backward()
    for name, parameter in reference.named_parameters():
        assert torch.allclose(one_by_eight[name], before[name] - parameter.grad, atol=1e-6), name

    # Negative control: normalising each micro-batch by its own weight sum (and letting Trainer divide by the
    # number of accumulation steps) gives a different update, so the equality above is not vacuous.
    def per_micro_batch(outputs, labels, num_items_in_batch=None):
        return nn.functional.cross_entropy(outputs["logits"], labels, weight=torch.tensor(_WEIGHTS))

    class NaiveTrainer(Trainer):
        loss_is_scaled_for_ga = False

    naive = _one_step(tmp_path, 2, 4, NaiveTrainer, compute_loss_func=per_micro_batch)
    assert not all(torch.allclose(naive[name], one_by_eight[name], atol=1e-4) for name in naive)


def test_gradient_accumulation_across_two_processes_equals_one_big_batch(tmp_path):
    """torchrun with 2 CPU processes x batch 2 x accumulation 2 gives the single-process 1 x 8 update."""
    single = _one_step(tmp_path, 8, 1, WeightedLossTrainer, loss=WeightedCrossEntropy(_WEIGHTS))
    saved = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(BASELINES), *sys.path])}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
         str(tmp_path), str(saved)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    distributed = torch.load(saved)
    for name in single:
        assert torch.allclose(single[name], distributed[name], atol=1e-6), name


def test_best_model_reload_restores_renamed_weights(tmp_path, tiny_models):
    from transformers import AutoModelForImageClassification, TrainingArguments

    model = AutoModelForImageClassification.from_pretrained(tiny_models["vit"])
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = WeightedLossTrainer(model=model, args=args, loss=WeightedCrossEntropy([1.0, 1.0]))
    saved = {name: value.clone() for name, value in model.state_dict().items()}
    trainer.save_model(str(tmp_path / "checkpoint-1"))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    trainer.state.best_model_checkpoint = str(tmp_path / "checkpoint-1")
    trainer._load_best_model()
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name


# ---------------------------------------------------------------------------------------------------------------
# Threshold rule and image transform
# ---------------------------------------------------------------------------------------------------------------


def test_threshold_rule_keeps_sensitivity_and_maximises_specificity():
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.65, 0.9, 0.3, 0.6, 0.62, 0.7, 0.75, 0.8, 0.85, 0.88, 0.95, 0.99]
    threshold = evaluation.choose_threshold(labels, scores, min_sensitivity=0.9)
    assert threshold == 0.6  # 9 of 10 positives >= 0.6; any higher threshold drops below 0.9
    predicted = np.asarray(scores) >= threshold
    assert predicted[np.asarray(labels) == 1].mean() >= 0.9
    assert evaluation.choose_threshold([0, 0, 1], [0.2, 0.8, 0.5], min_sensitivity=1.0) == 0.5
    assert evaluation.choose_threshold([0, 0], [0.2, 0.8]) == 0.5
    # 30 positives: 0.9 * 30 is 27.000000000000004 in floating point; 27 are enough.
    assert evaluation.choose_threshold([1] * 30, [i / 30 for i in range(30)]) == pytest.approx(3 / 30)


def _jpeg_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    gradient = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
    Image.fromarray(gradient, "L").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_transform_shapes_normalisation_and_mask():
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    plain = RadiographTransform((24, 32), mean, std)
    image = {"bytes": _jpeg_bytes(2000, 1600), "path": None}
    first = plain.tensor(image)
    assert first.shape == (3, 24, 32) and first.dtype == torch.float32
    assert torch.equal(first, plain.tensor(image))  # evaluation is deterministic
    assert first.min() >= (0 - 0.5) / 0.25 - 1e-6 and first.max() <= (1 - 0.5) / 0.25 + 1e-6

    masked = RadiographTransform((24, 32), mean, std, mask_center=0.5).tensor(image)
    centre = masked[:, 6:18, 8:24]
    assert torch.allclose(centre, torch.full_like(centre, -2.0))  # black, normalised
    assert torch.equal(masked[:, :6], first[:, :6]) and torch.equal(masked[:, :, :8], first[:, :, :8])

    # Grayscale is processed as one channel and repeated: identical to processing its RGB conversion.
    gray = Image.open(io.BytesIO(image["bytes"]))
    assert torch.equal(plain.tensor(gray.copy()), plain.tensor(gray.convert("RGB")))

    augmented = RadiographTransform((24, 32), mean, std, augmentation=Augmentation())
    batch = augmented({"image": [image, image], "label": [0, 1]})
    assert batch["labels"] == [0, 1] and [t.shape for t in batch["pixel_values"]] == [(3, 24, 32)] * 2
    assert not torch.equal(batch["pixel_values"][0], batch["pixel_values"][1])  # random per image


def test_transform_accepts_sixteen_bit_png_and_reads_processor_size(tiny_models):
    from transformers import AutoImageProcessor

    values = np.linspace(0, 4095, 50 * 40).reshape(40, 50).astype("<u2")
    buffer = io.BytesIO()
    Image.frombytes("I;16", (50, 40), values.tobytes()).save(buffer, format="PNG")
    for name in ("vit", "convnext"):
        processor = AutoImageProcessor.from_pretrained(tiny_models[name])
        transform = RadiographTransform.from_processor(processor)
        assert transform.tensor(buffer.getvalue()).shape == (3, 32, 32)
    with pytest.raises(ValueError):
        RadiographTransform((8, 8), [0.5] * 3, [0.5] * 3, mask_center=1.0)


# ---------------------------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------------------------


def _check_run(output_dir: Path, n_validation_test: int) -> dict:
    for name in OUTPUT_FILES:
        assert (output_dir / name).is_file(), name
    record = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    assert set(record) == RUN_KEYS
    for split in ("validation", "test"):
        _check_metric_block(record[split])
        assert record[split]["at_selected_threshold"]["threshold"] == record["threshold"]
    assert set(record["dataset"]) == {"source", "loaded_with", "config", "version", "manifest_hash", "n_images",
                                      "n_positive"}
    assert record["dataset"]["version"] == "1.0.0" and len(record["dataset"]["manifest_hash"]) == 64
    assert {"python", "torch", "transformers", "datasets", "evaluate", "scikit-learn"} <= set(record["versions"])
    assert {"device", "train_runtime", "train_samples_per_second", "best_checkpoint"} <= set(record["training"])
    rows = _read_csv(output_dir / "predictions.csv")
    assert list(rows[0]) == list(run_outputs.PREDICTION_COLUMNS)
    assert len(rows) == n_validation_test and {row["split"] for row in rows} == {"validation", "test"}
    assert all(0.0 <= float(row["probability"]) <= 1.0 for row in rows)
    card = (output_dir / "README.md").read_text(encoding="utf-8")
    assert "Confounding caveat" in card and "| test |" in card and "AUPRC" in card
    for name in ("roc_curve.png", "pr_curve.png", "confusion_matrix.png"):
        assert Image.open(output_dir / name).size[0] > 100
    return record


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data-dir", "x", "--output_dir", "o", "--cache-dir", "c"], "unrecognized arguments: --cache-dir c"),
        (["--output_dir", "o"], "exactly one of --data-dir"),
        (["--data-dir", "x", "--output_dir", "o", "--eval_strategy", "no"], "load_best_model_at_end"),
        (["--data-dir", "x", "--output_dir", "o", "--class-weights", "1,oops"], "class"),
    ],
)
def test_usage_errors_are_one_message_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        finetune.parse_arguments(argv, "some/model")
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.startswith("usage:")
    assert len(error.splitlines()) == 3 and "--help" in error  # not the usage of every TrainingArguments option


def test_vit_script_end_to_end(vit_run, tiny_models, download):
    import covid_ct_scan_images

    output_dir, stdout = vit_run
    data = covid_ct_scan_images.load_dataset(data_dir=download, config="default")
    record = _check_run(output_dir, len(data["validation"]) + len(data["test"]))
    assert record["dataset"]["manifest_hash"] == covid_ct_scan_images.manifest_hash(data)
    balanced = weighted_loss.parse_class_weights("balanced", data["train"]["label"])
    assert record["class_weights"] == pytest.approx(balanced)
    assert record["mask_center"] == 0.0 and record["fold"] is None and record["model"] == str(tiny_models["vit"])
    image_ids = {row["image_id"] for row in _read_csv(output_dir / "predictions.csv") if row["split"] == "test"}
    assert image_ids == set(data["test"]["image_id"])
    # The end-of-run summary: held-out numbers with intervals, the threshold, and where each output went.
    test = record["test"]["at_selected_threshold"]
    assert f"AUROC {test['auroc']:.3f} [{test['auroc_ci'][0]:.3f}, {test['auroc_ci'][1]:.3f}]" in stdout
    assert f"threshold {record['threshold']:.4f}" in stdout and f"sensitivity {test['sensitivity']:.3f}" in stdout
    assert f"plots: {output_dir}/ roc_curve.png, pr_curve.png" in stdout and "model.safetensors" in stdout


def test_saved_model_in_a_pipeline_makes_the_reported_decisions(vit_run, download):
    """``pipeline("image-classification", model=RUN_DIR)`` gives every decision of predictions.csv."""
    import datasets
    from transformers import AutoConfig, pipeline

    import covid_ct_scan_images
    from covid_ct_scan_images.imaging import to_rgb

    output_dir, _ = vit_run
    rows = {row["image_id"]: row for row in _read_csv(output_dir / "predictions.csv")}
    record = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    config = AutoConfig.from_pretrained(output_dir)
    assert config.decision_threshold == record["threshold"] != 0.5
    assert config.decision_logit_offset == pytest.approx(math.log(record["threshold"] / (1 - record["threshold"])))
    classifier = pipeline("image-classification", model=str(output_dir), device="cpu")
    data = covid_ct_scan_images.load_dataset(data_dir=download, config="default")
    decisions = {}
    for name in ("validation", "test"):
        for example in data[name].cast_column("image", datasets.Image(decode=False)):
            image = to_rgb(radiograph_transforms.open_image(example["image"]))
            decisions[example["image_id"]] = int(classifier(image)[0]["label"] == "positive")
    assert decisions == {image_id: int(row["predicted"]) for image_id, row in rows.items()}
    assert all(int(row["predicted"]) == (float(row["probability"]) >= float(row["threshold"])) for row in rows.values())


def _table_cells(card: str, split: str) -> list[str]:
    row = next(line for line in card.splitlines() if line.startswith(f"| {split} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_model_card_metadata_is_valid_and_its_numbers_are_those_of_metrics_json(vit_run):
    from huggingface_hub import ModelCard

    output_dir, _ = vit_run
    record = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    card = ModelCard.load(output_dir / "README.md")
    metadata = card.data.to_dict()
    assert metadata["pipeline_tag"] == "image-classification" and metadata["library_name"] == "transformers"
    assert metadata["license"] == "other" and metadata["license_name"] and "covid-19" in metadata["tags"]
    assert "base_model" not in metadata and "datasets" not in metadata  # a local checkpoint and a raw download
    assert "More information needed" not in card.text and "model-index" not in metadata
    for split in ("validation", "test"):
        result = record[split]["at_selected_threshold"]
        cells = _table_cells(card.text, split)
        assert cells[1] == f"{record['threshold']:.4f}" and cells[2] == f"{result['n']} ({result['n_positive']})"
        for cell, key in zip(cells[3:7], ("auroc", "auprc", "sensitivity", "specificity"), strict=True):
            assert cell.startswith(f"{result[key]:.3f} [{result[key + '_ci'][0]:.3f}, {result[key + '_ci'][1]:.3f}]")


def test_hub_metadata_names_only_hub_ids(tmp_path):
    assert run_outputs.hub_repo_id("google/vit-base-patch16-224-in21k") == "google/vit-base-patch16-224-in21k"
    assert run_outputs.hub_repo_id(str(tmp_path)) is None
    assert run_outputs.hub_repo_id("runs/ckpt/vit") is None and run_outputs.hub_repo_id(None) is None
    (tmp_path / "ckpt").mkdir()
    assert run_outputs.hub_repo_id(str(tmp_path / "ckpt")) is None


def test_folding_the_threshold_makes_argmax_the_thresholded_decision():
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                intermediate_size=16, image_size=16, patch_size=8, num_labels=2))
    pixels = torch.randn(64, 3, 16, 16)
    with torch.no_grad():
        probabilities = torch.softmax(model(pixel_values=pixels).logits.double(), -1)[:, 1].numpy()
    threshold = evaluation.with_rounding_margin(float(np.median(probabilities)), probabilities)
    evaluation.fold_threshold_into_model(model, threshold)
    with torch.no_grad():
        argmax = model(pixel_values=pixels).logits.argmax(-1).numpy()
    assert (argmax == (probabilities >= threshold)).all() and 0 < argmax.sum() < 64
    assert model.config.decision_threshold == threshold
    # The margin keeps the image that sets the threshold on the positive side, and no other decision changes.
    assert threshold < float(np.median(probabilities))
    assert not ((probabilities >= threshold) != (probabilities >= float(np.median(probabilities)))).any()


def test_convnext_script_end_to_end_with_mask_weights_and_shortcut_comparison(tmp_path, tiny_models, download):
    from covid_ct_scan_images.shortcuts import ProbeResult, ShortcutReport

    audit = tmp_path / "shortcuts.json"
    ShortcutReport(
        n_images=60, n_patients=55, n_positive=15, n_folds=5, n_bootstrap=10, seed=0, center_fraction=0.6,
        results=(
            ProbeResult("metadata", "GBT", "file metadata", 12, 0.97, (0.9, 1.0), 0.9, (0.8, 1.0)),
            ProbeResult("centre only", "LR", "central pixels", 100, 0.99, None, 0.95, None, sees_lungs=True),
        ),
    ).to_json(audit)
    output_dir = tmp_path / "convnext"
    _run_script(
        "finetune_convnext.py", "--model", str(tiny_models["convnext"]), "--data-dir", str(download),
        "--output_dir", str(output_dir), "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
        "--n_bootstrap", "50", "--mask-center", "0.6", "--class-weights", "1,3", "--seed", "7",
        "--shortcuts-report", str(audit), "--config", "resized",
    )
    record = _check_run(output_dir, 20)
    assert record["dataset"]["config"] == "resized"
    assert record["mask_center"] == 0.6 and record["class_weights"] == [1.0, 3.0] and record["seed"] == 7
    comparison = record["shortcut_comparison"]
    assert comparison["best_probe"] == "metadata (GBT)" and comparison["best_probe_auroc"] == 0.97
    assert comparison["model_auroc"] == record["test"]["at_selected_threshold"]["auroc"]
    assert "best shortcut probe: metadata (GBT)" in (output_dir / "README.md").read_text(encoding="utf-8")


def test_cross_validation_and_pooling(tmp_path, tiny_models, download):
    output_dir = tmp_path / "cv"
    record = finetune.main(
        ["--model", str(tiny_models["vit"]), "--data-dir", str(download), "--output_dir", str(output_dir), "--cv",
         "--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--n_bootstrap", "20",
         "--disable_tqdm", "true", "--save_strategy", "no", "--load_best_model_at_end", "false"]
    )
    fold_dirs = [output_dir / f"fold_{fold}" for fold in range(5)]
    for fold, fold_dir in enumerate(fold_dirs):
        assert json.loads((fold_dir / "metrics.json").read_text(encoding="utf-8"))["fold"] == fold
    for name in ("metrics.json", "predictions.csv", "roc_curve.png", "pr_curve.png", "confusion_matrix.png",
                 "README.md"):
        assert (output_dir / name).is_file(), name
    fold_record = json.loads((fold_dirs[0] / "metrics.json").read_text(encoding="utf-8"))
    assert fold_record["command"][-2:] == ["--load_best_model_at_end", "false"] and "--cv" in fold_record["command"]
    pooled = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    assert pooled == json.loads(json.dumps(record))
    assert pooled["folds"] == [0, 1, 2, 3, 4] and pooled["dataset"]["config"] == "full"
    _check_metric_block(pooled["out_of_fold"])
    rows = _read_csv(output_dir / "predictions.csv")
    assert len(rows) == 60 and len({row["image_id"] for row in rows}) == 60  # every image exactly once
    assert pooled["out_of_fold"]["at_selected_threshold"]["n"] == 60

    # The stand-alone pool command gives the same pooled numbers from the fold folders.
    again = tmp_path / "pooled-again"
    assert pool_folds.main([*map(str, fold_dirs), "--output-dir", str(again), "--n-bootstrap", "20",
                            "--seed", "42"]) == 0
    assert json.loads((again / "metrics.json").read_text(encoding="utf-8"))["out_of_fold"] == pooled["out_of_fold"]
    with pytest.raises(ValueError, match="appears twice"):
        pool_folds.pool_folds([fold_dirs[0], fold_dirs[0]], tmp_path / "bad")


def test_one_fold_from_an_exported_folder(tmp_path, tiny_models, download):
    from covid_ct_scan_images.export import export_dataset

    export_dataset(download, tmp_path / "export", compute_shortcuts=False)
    record = finetune.main(
        ["--model", str(tiny_models["convnext"]), "--dataset", str(tmp_path / "export"), "--fold", "1",
         "--output_dir", str(tmp_path / "fold_1"), "--num_train_epochs", "1", "--n_bootstrap", "10",
         "--disable_tqdm", "true", "--save_strategy", "no", "--load_best_model_at_end", "false"]
    )
    assert record["fold"] == 1 and sum(record["dataset"]["n_images"].values()) == 60
    assert record["dataset"]["loaded_with"] == "datasets.load_dataset" and record["dataset"]["config"] == "full"
    assert record["dataset"]["version"] == "1.0.0"
    rows = _read_csv(tmp_path / "fold_1" / "predictions.csv")
    assert {row["fold"] for row in rows} == {"1"} and {row["split"] for row in rows} == {"validation", "test"}


def test_fold_splits_are_patient_disjoint(download):
    import covid_ct_scan_images

    full = covid_ct_scan_images.load_dataset(data_dir=download, config="full")["train"]
    assert finetune.number_of_folds(full) == 5
    splits = finetune.fold_splits(full, 4)
    assert set(splits["test"]["fold"]) == {4} and set(splits["validation"]["fold"]) == {0}
    patients = [set(splits[name]["patient_id"]) for name in ("train", "validation", "test")]
    assert not (patients[0] & patients[1]) and not (patients[0] & patients[2]) and not (patients[1] & patients[2])
    assert sum(len(split) for split in splits.values()) == len(full)
    with pytest.raises(ValueError):
        finetune.fold_splits(full, 5)


if __name__ == "__main__":  # worker of test_gradient_accumulation_across_two_processes_equals_one_big_batch
    weighted = WeightedCrossEntropy(_WEIGHTS)
    try:
        state = _one_step(Path(sys.argv[1]), 2, 2, WeightedLossTrainer, loss=weighted)
        if int(os.environ.get("RANK", "0")) == 0:
            torch.save(state, sys.argv[2])
    finally:
        finetune.release_process_group()  # as main() does; without it gloo can abort the process at exit
