"""The recipe end to end: one training run, the pooling of cross-validation folds, and the entry point :func:`main`.

Read top to bottom, :func:`train_and_evaluate` is the recipe: weight the classes from the training split, decode and
augment images lazily, fine-tune with ``Trainer`` and a class-weighted cross-entropy, pick the decision threshold on
validation, and write ``metrics.json``, ``predictions.csv``, plots and a model card.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    EarlyStoppingCallback,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from covid_ct_scan_images import DATASET_NAME
from covid_ct_scan_images.layout import CLASS_NAMES

from .arguments import BaselineArguments, parse_arguments, parse_class_weights
from .callbacks import ThroughputCallback
from .data import dataset_provenance, fold_splits, load_splits, number_of_folds
from .evaluation import (
    THRESHOLD_RULE,
    choose_threshold,
    load_metric,
    make_compute_metrics,
    positive_probability,
    summarise,
)
from .loss import WeightedCrossEntropy, WeightedLossTrainer
from .outputs import (
    device_description,
    library_versions,
    plot_results,
    read_predictions,
    results_markdown,
    shortcut_comparison,
    write_json,
    write_predictions,
)
from .transforms import Augmentation, RadiographTransform, with_lazy_transform


def train_and_evaluate(
    args: BaselineArguments,
    training_args: TrainingArguments,
    splits: datasets.DatasetDict,
    provenance: dict[str, Any],
    fold: int | None = None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Fine-tune on ``splits["train"]``, select on validation, evaluate on test; write every output file.

    Returns the ``metrics.json`` record (on every process; only the main process writes files).
    """
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    processor = AutoImageProcessor.from_pretrained(args.model)
    class_weights = parse_class_weights(args.class_weights, splits["train"]["label"])
    model = AutoModelForImageClassification.from_pretrained(
        args.model,
        num_labels=len(CLASS_NAMES),
        id2label=dict(enumerate(CLASS_NAMES)),
        label2id={name: index for index, name in enumerate(CLASS_NAMES)},
        ignore_mismatched_sizes=True,
    )
    augmentation = Augmentation(hflip_probability=args.hflip_probability) if args.augment else None
    train_transform = RadiographTransform.from_processor(processor, augmentation, args.mask_center)
    eval_transform = RadiographTransform.from_processor(processor, None, args.mask_center)
    metric = load_metric()
    throughput = ThroughputCallback(len(splits["train"]))
    callbacks: list[TrainerCallback] = [throughput]
    if training_args.load_best_model_at_end and training_args.eval_strategy != "no":
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = WeightedLossTrainer(
        model=model,
        args=training_args,
        train_dataset=with_lazy_transform(splits["train"], train_transform),
        eval_dataset=with_lazy_transform(splits["validation"], eval_transform),
        processing_class=processor,
        compute_metrics=make_compute_metrics(metric),
        callbacks=callbacks,
        loss=WeightedCrossEntropy(class_weights),
    )
    train_metrics = trainer.train().metrics
    trainer.save_model()

    probabilities = {
        name: positive_probability(trainer.predict(with_lazy_transform(splits[name], eval_transform)).predictions)
        for name in ("validation", "test")
    }
    threshold = choose_threshold(splits["validation"]["label"], probabilities["validation"], args.min_sensitivity)
    rows = [
        {
            "image_id": image_id,
            "patient_id": patient_id,
            "label": label,
            "probability": float(probability),
            "split": name,
            "fold": "" if fold is None else fold,
            "threshold": threshold,
        }
        for name in ("validation", "test")
        for image_id, patient_id, label, probability in zip(
            splits[name]["image_id"],
            splits[name]["patient_id"],
            splits[name]["label"],
            probabilities[name],
            strict=True,
        )
    ]
    summary = summarise(rows, metric, args.n_bootstrap, training_args.seed)
    record = {
        "model": args.model,
        "fold": fold,
        "threshold": threshold,
        "threshold_rule": THRESHOLD_RULE.format(min_sensitivity=args.min_sensitivity),
        "class_weights": class_weights,
        "class_weights_rule": args.class_weights,
        "seed": training_args.seed,
        "mask_center": args.mask_center,
        "augmentation": dataclasses.asdict(augmentation) if augmentation else None,
        "dataset": {
            **provenance,
            "n_images": {name: len(split) for name, split in splits.items()},
            "n_positive": {name: int(sum(split["label"])) for name, split in splits.items()},
        },
        "training": {
            "device": device_description(),
            "world_size": training_args.world_size,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_validation_auprc": trainer.state.best_metric,
            "epochs": trainer.state.epoch,
            "train_images_per_second": throughput.images_per_second(),
            **train_metrics,
        },
        "versions": library_versions(),
        "command": list(command),
        "shortcut_comparison": shortcut_comparison(args.shortcuts_report, summary["test"]["at_selected_threshold"]),
        **summary,
    }
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        write_predictions(output_dir / "predictions.csv", rows)
        write_json(output_dir / "metrics.json", record)
        plot_results(rows, output_dir, confusion_split="test")
        description = (
            f"Fine-tuned from `{args.model}` on {provenance['source']} (config `{provenance['config']}`"
            + ("" if fold is None else f", fold {fold}")
            + f", dataset version {provenance['version']}, manifest {provenance['manifest_hash']}), class weights "
            f"{[round(w, 4) for w in class_weights]}, mask_center {args.mask_center}, on {device_description()}. "
            f"Decision threshold {threshold:.4f}: {record['threshold_rule']} 95% intervals: patient bootstrap "
            f"({args.n_bootstrap} resamples) for AUROC, AUPRC and MCC; Wilson for sensitivity and specificity."
        )
        trainer.card_extra = results_markdown(summary, description, record["shortcut_comparison"])
        trainer.create_model_card(
            model_name=output_dir.name,
            finetuned_from=args.model,
            tasks="image-classification",
            dataset=args.dataset or DATASET_NAME,
            dataset_tags=args.dataset or DATASET_NAME,
        )
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return record


#: Name of the pooled section in ``metrics.json`` (and of the split in the pooled ``predictions.csv``).
POOLED_SPLIT = "out_of_fold"


def pool_folds(
    run_dirs: Sequence[Path],
    output_dir: Path,
    n_bootstrap: int = 1000,
    seed: int = 0,
    shortcuts_report: str | None = None,
) -> dict[str, Any]:
    """Merge the test predictions of ``run_dirs`` (one per fold), compute pooled metrics and write the outputs.

    ``shortcuts_report`` (JSON of ``covid-ct shortcuts --json``) adds the best probe's AUROC beside ours.

    Raises ``ValueError`` if two runs share a fold or an image. Returns the pooled ``metrics.json`` record.
    """
    rows: list[dict[str, Any]] = []
    folds: dict[int | None, str] = {}
    runs = []
    for run_dir in map(Path, run_dirs):
        run = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        if run["fold"] in folds:
            raise ValueError(f"fold {run['fold']} appears twice: {folds[run['fold']]} and {run_dir}")
        folds[run["fold"]] = str(run_dir)
        runs.append(run)
        rows += [row for row in read_predictions(run_dir / "predictions.csv") if row["split"] == "test"]
    image_ids = [row["image_id"] for row in rows]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("an image appears in the test rows of more than one run; are these folds of one dataset?")
    pooled = [{**row, "split": POOLED_SPLIT} for row in rows]
    summary = summarise(pooled, load_metric(), n_bootstrap, seed)
    first = runs[0]
    record = {
        "model": first["model"],
        "pooled_from": [str(path) for path in run_dirs],
        "folds": [run["fold"] for run in runs],
        "threshold": {str(run["fold"]): run["threshold"] for run in runs},
        "threshold_rule": "per fold: " + first["threshold_rule"],
        "class_weights": {str(run["fold"]): run["class_weights"] for run in runs},
        "class_weights_rule": first["class_weights_rule"],
        "seed": first["seed"],
        "mask_center": first["mask_center"],
        "dataset": {
            key: first["dataset"][key] for key in ("source", "loaded_with", "config", "version", "manifest_hash")
        },
        "fold_test_auroc": {str(run["fold"]): run["test"]["at_selected_threshold"]["auroc"] for run in runs},
        "training": {
            "device": first["training"]["device"],
            "train_images_per_second": {
                str(run["fold"]): run["training"].get("train_images_per_second") for run in runs
            },
        },
        "versions": library_versions(),
        "shortcut_comparison": shortcut_comparison(shortcuts_report, summary[POOLED_SPLIT]["at_selected_threshold"]),
        **summary,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(output_dir / "predictions.csv", pooled)
    write_json(output_dir / "metrics.json", record)
    plot_results(pooled, output_dir, confusion_split=POOLED_SPLIT)
    description = (
        f"Out-of-fold predictions of {len(runs)} cross-validation runs of `{first['model']}` on "
        f"{first['dataset']['source']} (config `{first['dataset']['config']}`, manifest "
        f"{first['dataset']['manifest_hash']}), pooled; each image is scored by the model that did not train on "
        f"it and judged at its own fold's threshold ({record['threshold_rule']}). 95% intervals: patient bootstrap "
        f"({n_bootstrap} resamples) for AUROC, AUPRC and MCC; Wilson for sensitivity and specificity."
    )
    card = results_markdown(summary, description, record["shortcut_comparison"])
    (output_dir / "README.md").write_text(card, encoding="utf-8")
    return record


def main(argv: Sequence[str] | None = None, default_model: str = "google/vit-base-patch16-224-in21k") -> dict:
    """Run the baseline: one split (``default``), one fold (``--fold K``) or all folds pooled (``--cv``).

    Returns the ``metrics.json`` record of the run (the pooled record with ``--cv``).
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args, training_args = parse_arguments(argv, default_model)
    try:
        return _run(args, training_args, argv)
    finally:
        release_process_group()


def release_process_group() -> None:
    """Tear down the ``torch.distributed`` process group that ``Trainer`` started under torchrun, if any.

    ``Trainer`` never destroys it. Left to the interpreter's exit, gloo's threads can be destroyed while still
    joinable, which aborts the process ("terminate called without an active exception") after the work is done, and
    torchrun then reports the whole run as failed. Safe to call in a single process: it does nothing there.
    """
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _run(args: BaselineArguments, training_args: TrainingArguments, argv: Sequence[str] | None) -> dict:
    """The body of :func:`main`, once the arguments are parsed."""
    with training_args.main_process_first(desc="building the dataset"):  # one process builds, the rest reuse it
        data = load_splits(args)
    provenance = dataset_provenance(data, args)
    command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
    if not args.cv and args.fold is None:
        return train_and_evaluate(args, training_args, data, provenance, command=command)
    full = data["train"]
    if args.fold is not None:
        return train_and_evaluate(
            args, training_args, fold_splits(full, args.fold), provenance, fold=args.fold, command=command
        )

    run_dirs = []
    for fold in range(number_of_folds(full)):
        fold_dir = Path(training_args.output_dir) / f"fold_{fold}"
        changes: dict[str, Any] = {"output_dir": str(fold_dir)}
        if training_args.push_to_hub:
            changes["hub_model_id"] = f"{training_args.hub_model_id or Path(training_args.output_dir).name}-fold{fold}"
        fold_args = dataclasses.replace(training_args, **changes)
        train_and_evaluate(args, fold_args, fold_splits(full, fold), provenance, fold=fold, command=command)
        run_dirs.append(fold_dir)
    if training_args.process_index != 0:
        return {}
    return pool_folds(
        run_dirs,
        Path(training_args.output_dir),
        n_bootstrap=args.n_bootstrap,
        seed=training_args.seed,
        shortcuts_report=args.shortcuts_report,
    )
