"""Fine-tune an image classifier on COVID-19-CT SCAN IMAGES: the recipe behind ``finetune_vit.py`` and
``finetune_convnext.py`` (see baselines/README.md).

:func:`main` reads top to bottom: parse the arguments, check the inputs, load the splits, then either one run
(:func:`train_and_evaluate`: weight the classes, fine-tune with ``Trainer`` and a class-weighted loss, choose the
decision threshold on validation and store it in the model, evaluate on test, write every output) or every fold of
the ``full`` config pooled (:func:`cross_validate`). Usage errors exit with 2, an unreachable Hub with 1, each as one
line that says what to do.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import torch
import transformers
from PIL import Image, ImageOps
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    EarlyStoppingCallback,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from command_line import ShortUsageParser, exit_with
from covid_ct_scan_images.errors import DatasetError, UsageError
from covid_ct_scan_images.imaging import to_rgb
from covid_ct_scan_images.layout import CLASS_NAMES
from covid_ct_scan_images.splits import N_CV_FOLDS
from data_loading import dataset_provenance, fold_splits, load_splits, number_of_folds
from evaluation import (
    THRESHOLD_RULE,
    choose_threshold,
    fold_threshold_into_model,
    load_metric,
    make_compute_metrics,
    positive_probability,
    summarise,
    with_rounding_margin,
)
from plots import plot_confusion_matrix, plot_image_grid, plot_roc_and_pr, plot_training_curves
from pool_folds import POOLED_SPLIT, pool_folds
from radiograph_transforms import (
    Augmentation,
    ProcessorTransform,
    RadiographTransform,
    open_image,
    square_resize_processor,
    transform_settings,
    with_lazy_transform,
)
from run_outputs import (
    device_description,
    end_of_run_summary,
    library_versions,
    results_markdown,
    shortcut_comparison,
    write_json,
    write_model_card,
    write_predictions,
)
from saliency import explain_run, saliency_markdown
from weighted_loss import WeightedCrossEntropy, WeightedLossTrainer, parse_class_weights

logger = logging.getLogger("baselines")


@dataclass
class BaselineArguments:
    """Arguments of the baseline scripts beyond ``TrainingArguments``."""

    model: str = field(default="", metadata={"help": "Checkpoint: a Hub id or a local folder."})
    data_dir: str | None = field(default=None, metadata={"help": "Raw download folder, read through the library."})
    dataset: str | None = field(default=None, metadata={"help": "Hub id or exported folder (datasets.load_dataset)."})
    config: Literal["default", "full", "resized"] = field(
        default="default",
        metadata={"help": "Dataset config ('resized': default splits, images <= 512 px); --cv/--fold imply 'full'."},
    )
    cv: bool = field(default=False, metadata={"help": "Train all folds of 'full' and pool out-of-fold predictions."})
    fold: int | None = field(
        default=None,
        metadata={"help": "Run only this fold of 'full' (test = fold K, validation = fold K+1); pool runs later."},
    )
    class_weights: str = field(
        default="balanced", metadata={"help": "'balanced' (n / (2 n_c) on the training split), 'none' or 'w0,w1'."}
    )
    mask_center: float = field(
        default=0.0,
        metadata={"help": "Blank the central FRACTION of height and width (e.g. 0.6) in training and evaluation."},
    )
    min_sensitivity: float = field(
        default=0.9, metadata={"help": "Sensitivity floor of the validation threshold rule."}
    )
    # argparse %-formats help strings, so a literal percent sign is written %%.
    n_bootstrap: int = field(default=1000, metadata={"help": "Patient bootstrap resamples for the 95%% intervals."})
    early_stopping_patience: int = field(default=3, metadata={"help": "Evaluations without AUPRC gain before stop."})
    augment: bool = field(default=True, metadata={"help": "Random rotation, scale, shift, brightness, contrast."})
    hflip_probability: float = field(
        default=0.0, metadata={"help": "Probability of a horizontal flip (off by default; see baselines/README.md)."}
    )
    explain: int = field(
        default=0,
        metadata={"help": "After training, Grad-CAM maps of N test images and their border share (0: off)."},
    )
    shortcuts_report: str | None = field(
        default=None,
        metadata={"help": "JSON of `covid-ct shortcuts --json`: the card sets the best probe's AUROC beside ours."},
    )

    @property
    def loaded_config(self) -> str:
        """The dataset config a run loads: ``full`` for ``--cv`` and ``--fold``, else ``--config``."""
        return "full" if self.cv or self.fold is not None else self.config


def main(argv: Sequence[str] | None = None, default_model: str = "google/vit-base-patch16-224-in21k") -> dict:
    """Run the baseline: one split (``default``), one fold (``--fold K``) or all folds pooled (``--cv``).

    Returns the ``metrics.json`` record of the run (the pooled record with ``--cv``). Exits with 2 on a usage
    error and 1 when the Hub or the data cannot be reached, after one line on stderr.
    """
    args, training_args = parse_arguments(argv, default_model)
    quiet_library_logging(training_args)
    try:
        check_inputs(args, training_args)
        data = load_splits_or_exit(args, training_args)
        provenance = dataset_provenance(data, args.data_dir, args.dataset, args.loaded_config)
        command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
        if args.cv:
            record, written = cross_validate(args, training_args, data["train"], provenance, command)
        else:
            splits = data if args.fold is None else fold_splits(data["train"], args.fold)
            record, written = train_and_evaluate(args, training_args, splits, provenance, args.fold, command)
        if training_args.process_index == 0:
            print(end_of_run_summary(record, POOLED_SPLIT if args.cv else "test", written))
        return record
    except DatasetError as error:
        exit_with(error, 2 if isinstance(error, UsageError) else 1)
    finally:
        release_process_group()


def parse_arguments(argv: Sequence[str] | None, default_model: str) -> tuple[BaselineArguments, TrainingArguments]:
    """Parse ``argv`` into the baseline arguments and ``TrainingArguments`` and check they fit together."""
    parser = ShortUsageParser(
        (BaselineArguments, TrainingArguments), usage="--data-dir DIR | --dataset ID --output_dir DIR [options]"
    )
    parser.set_defaults(model=default_model, **runtime_defaults())
    try:  # TrainingArguments checks its options as it is made; a bad combination is a usage error, not a traceback
        args, training_args, unknown = parser.parse_args_into_dataclasses(
            args=None if argv is None else list(argv), return_remaining_strings=True
        )
    except ValueError as error:
        parser.error(str(error))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if (args.data_dir is None) == (args.dataset is None):
        parser.error("give exactly one of --data-dir (raw download) or --dataset (Hub id or exported folder)")
    if args.cv and args.fold is not None:
        parser.error("--cv runs every fold; use --fold K alone to run one fold")
    if not 0.0 <= args.mask_center < 1.0:
        parser.error("--mask-center must be in [0, 1)")
    if args.explain < 0:
        parser.error("--explain must be a number of test images, >= 0")
    if training_args.remove_unused_columns:
        logger.warning("remove_unused_columns=True would drop the image column before decoding; using False")
        training_args.remove_unused_columns = False
    try:
        parse_class_weights(args.class_weights, [0, 1])  # fail early on a malformed value
    except ValueError as error:
        parser.error(str(error))
    return args, training_args


def runtime_defaults() -> dict[str, Any]:
    """``TrainingArguments`` defaults for this recipe: evaluate each epoch, keep the best AUPRC, use the GPU well,
    show progress bars only on a terminal.

    Any of them can still be given on the command line.
    """
    cuda = torch.cuda.is_available()
    return {
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "logging_strategy": "epoch",
        "load_best_model_at_end": True,
        "metric_for_best_model": "auprc",
        "greater_is_better": True,
        "save_total_limit": 2,
        "remove_unused_columns": False,
        "num_train_epochs": 10.0,
        "learning_rate": 5e-5,
        "weight_decay": 0.05,
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 64,
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "tf32": cuda and torch.cuda.get_device_capability()[0] >= 8,
        "dataloader_num_workers": min(8, os.cpu_count() or 1) if cuda else 0,
        "dataloader_pin_memory": cuda,
        "dataloader_persistent_workers": cuda,
        "report_to": "none",
        # Progress bars are for a terminal; in logs and captured output they are noise.
        "disable_tqdm": not sys.stderr.isatty(),
    }


def quiet_library_logging(training_args: TrainingArguments) -> None:
    """Show this recipe's messages and the libraries' warnings, not their routine information.

    ``--log_level info`` (or ``debug``) brings transformers' and datasets' messages back.
    """
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    logger.setLevel(logging.INFO)
    level = training_args.get_process_log_level()
    if training_args.log_level == "passive":
        level = logging.ERROR  # e.g. the load report of the newly initialised classification head
    transformers.utils.logging.set_verbosity(level)
    if level > logging.INFO:  # "Loading weights" and "Writing model shards" bars; Trainer's own bar stays
        transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity(max(level, logging.WARNING))
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


def check_inputs(args: BaselineArguments, training_args: TrainingArguments) -> None:
    """Fail before any work on a missing folder, a checkpoint without its image processor, or an unreachable Hub."""
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such folder; give the folder of the raw Tianchi download")
    if args.dataset is not None and _looks_like_a_path(args.dataset) and not Path(args.dataset).is_dir():
        raise UsageError(f"--dataset {args.dataset}: no such folder; give a folder written by `covid-ct export` "
                         "or a Hub dataset id")
    if args.shortcuts_report is not None and not Path(args.shortcuts_report).is_file():
        raise UsageError(f"--shortcuts-report {args.shortcuts_report}: no such file; write it with "
                         "`covid-ct shortcuts --json FILE` or leave the option out")
    if args.fold is not None and not 0 <= args.fold < N_CV_FOLDS:
        raise UsageError(f"--fold {args.fold}: the dataset has folds 0..{N_CV_FOLDS - 1}; give one of them, "
                         "or --cv to run them all")
    model = Path(args.model).expanduser()
    if model.is_dir():
        if not (model / "config.json").is_file() or not (model / "preprocessor_config.json").is_file():
            raise UsageError(f"--model {args.model}: the folder needs config.json and preprocessor_config.json "
                             "(save the model and its image processor with save_pretrained)")
    elif _looks_like_a_path(args.model):
        raise UsageError(f"--model {args.model}: no such folder; give a checkpoint folder or a Hub id "
                         "(offline: `python baselines/random_checkpoints.py DIR` makes random ones)")
    else:
        try:  # a Hub id: fetch (or find cached) its small files now, not after the dataset is built
            AutoConfig.from_pretrained(args.model)
            AutoImageProcessor.from_pretrained(args.model)
        except OSError as error:
            reason = str(error).splitlines()[0]
            raise DatasetError(f"--model {args.model}: cannot load it ({reason}); connect to the Hub, or give a "
                               "local checkpoint folder") from None
    if training_args.push_to_hub:
        _check_hub_login()


def _looks_like_a_path(name: str) -> bool:
    """A Hub id is ``name`` or ``owner/name``; anything else (``./x``, ``a/b/c``, ``~/x``) is meant as a folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def _check_hub_login() -> None:
    """``--push_to_hub`` needs the Hub and a token; find out now rather than after training."""
    from huggingface_hub import whoami
    from huggingface_hub.errors import HfHubHTTPError

    failures: tuple[type[Exception], ...] = (OSError, HfHubHTTPError)  # offline mode, no token, no connection
    try:  # huggingface_hub >= 1 speaks httpx, whose connection errors are not OSError
        import httpx

        failures += (httpx.HTTPError,)
    except ImportError:
        pass
    try:
        whoami()
    except failures as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DatasetError(f"--push_to_hub: cannot reach the Hub or no valid token ({reason}); connect and run "
                           "`hf auth login`, or leave --push_to_hub out and upload the run folder later") from None


def load_splits_or_exit(args: BaselineArguments, training_args: TrainingArguments) -> datasets.DatasetDict:
    """:func:`data_loading.load_splits`, one process first; a Hub dataset that cannot be fetched is one message."""
    with training_args.main_process_first(desc="building the dataset"):  # one process builds, the rest reuse it
        try:
            return load_splits(args.data_dir, args.dataset, args.loaded_config)
        except (OSError, datasets.exceptions.DatasetNotFoundError) as error:
            if args.data_dir is not None:
                raise
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DatasetError(f"--dataset {args.dataset}: cannot load it ({reason}); check the id and the "
                               "network, or give the raw download with --data-dir") from None


class ThroughputCallback(TrainerCallback):
    """Training images per second, timed from each epoch's start to its end (before epoch-end evaluation/saving)."""

    def __init__(self, images_per_epoch: int) -> None:
        self.images_per_epoch = images_per_epoch
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._start)

    def images_per_second(self) -> float | None:
        """Images per second over the completed epochs (all processes together), or None before any."""
        if not self.seconds:
            return None
        return self.images_per_epoch * len(self.seconds) / sum(self.seconds)


def train_and_evaluate(
    args: BaselineArguments,
    training_args: TrainingArguments,
    splits: datasets.DatasetDict,
    provenance: dict[str, Any],
    fold: int | None = None,
    command: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, list[Path]]]:
    """Fine-tune on ``splits["train"]``, select on validation, evaluate on test; write every output file.

    Returns the ``metrics.json`` record (on every process) and the files written, by kind (main process only).
    """
    set_seed(training_args.seed)
    processor = square_resize_processor(AutoImageProcessor.from_pretrained(args.model))  # saved with the model
    class_weights = parse_class_weights(args.class_weights, splits["train"]["label"])
    augmentation = Augmentation(hflip_probability=args.hflip_probability) if args.augment else None
    trainer, throughput = build_trainer(args, training_args, splits, processor, class_weights, augmentation)

    train_metrics = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint).metrics
    trainer.log_metrics("train", train_metrics)
    trainer.save_metrics("train", train_metrics)
    trainer.save_state()

    probabilities, threshold = predict_and_choose_threshold(trainer, splits, processor, args)
    fold_threshold_into_model(trainer.model, threshold)
    trainer.save_model()

    rows = prediction_rows(splits, probabilities, threshold, fold)
    summary = summarise(rows, load_metric(), args.n_bootstrap, training_args.seed)
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
        "training": {**training_facts(trainer, throughput), **train_metrics},
        "versions": library_versions(),
        "command": list(command),
        "shortcut_comparison": shortcut_comparison(args.shortcuts_report, summary["test"]["at_selected_threshold"]),
        **summary,
    }
    written: dict[str, list[Path]] = {}
    if trainer.is_world_process_zero():
        transform = transform_settings(processor, augmentation, args.mask_center)
        written = write_run_outputs(trainer, record, rows, splits["test"], transform, args)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return record, written


def predict_and_choose_threshold(
    trainer: WeightedLossTrainer, splits: datasets.DatasetDict, processor: Any, args: BaselineArguments
) -> tuple[dict[str, Any], float]:
    """Positive-class probabilities of validation and test, and the threshold the validation rule picks.

    The images go through the image processor saved with the model, as ``pipeline`` will send them.
    """
    final_transform = ProcessorTransform(processor, args.mask_center)
    probabilities = {
        name: positive_probability(trainer.predict(with_lazy_transform(splits[name], final_transform)).predictions)
        for name in ("validation", "test")
    }
    chosen = choose_threshold(splits["validation"]["label"], probabilities["validation"], args.min_sensitivity)
    return probabilities, with_rounding_margin(chosen, probabilities["validation"])


def training_facts(trainer: WeightedLossTrainer, throughput: ThroughputCallback) -> dict[str, Any]:
    """Where and how the training ran: device, processes, the best checkpoint, epochs, throughput."""
    return {
        "device": device_description(),
        "world_size": trainer.args.world_size,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_validation_auprc": trainer.state.best_metric,
        "epochs": trainer.state.epoch,
        "train_images_per_second": throughput.images_per_second(),
    }


def build_trainer(
    args: BaselineArguments,
    training_args: TrainingArguments,
    splits: datasets.DatasetDict,
    processor: Any,
    class_weights: list[float],
    augmentation: Augmentation | None,
) -> tuple[WeightedLossTrainer, ThroughputCallback]:
    """The model with a fresh two-class head, the fast transforms, the weighted loss, early stopping."""
    model = AutoModelForImageClassification.from_pretrained(
        args.model,
        num_labels=len(CLASS_NAMES),
        id2label=dict(enumerate(CLASS_NAMES)),
        label2id={name: index for index, name in enumerate(CLASS_NAMES)},
        ignore_mismatched_sizes=True,
    )
    throughput = ThroughputCallback(len(splits["train"]))
    callbacks: list[TrainerCallback] = [throughput]
    if training_args.load_best_model_at_end and training_args.eval_strategy != "no":
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = WeightedLossTrainer(
        model=model,
        args=training_args,
        train_dataset=with_lazy_transform(
            splits["train"], RadiographTransform.from_processor(processor, augmentation, args.mask_center)
        ),
        eval_dataset=with_lazy_transform(
            splits["validation"], RadiographTransform.from_processor(processor, None, args.mask_center)
        ),
        processing_class=processor,
        compute_metrics=make_compute_metrics(load_metric()),
        callbacks=callbacks,
        loss=WeightedCrossEntropy(class_weights),
    )
    return trainer, throughput


def prediction_rows(
    splits: datasets.DatasetDict, probabilities: dict[str, Any], threshold: float, fold: int | None
) -> list[dict[str, Any]]:
    """One ``predictions.csv`` row per validation and test image."""
    return [
        {
            "image_id": image_id,
            "patient_id": patient_id,
            "label": label,
            "probability": float(probability),
            "threshold": threshold,
            "split": name,
            "fold": "" if fold is None else fold,
        }
        for name in ("validation", "test")
        for image_id, patient_id, label, probability in zip(
            splits[name]["image_id"], splits[name]["patient_id"], splits[name]["label"], probabilities[name],
            strict=True,
        )
    ]


def write_run_outputs(
    trainer: WeightedLossTrainer,
    record: dict[str, Any],
    rows: list[dict[str, Any]],
    test_split: datasets.Dataset,
    transform: dict[str, Any],
    args: BaselineArguments,
) -> dict[str, list[Path]]:
    """``predictions.csv``, ``metrics.json``, ``transform.json``, the plots and the model card; returns them by kind."""
    output_dir = Path(trainer.args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(output_dir / "predictions.csv", rows)
    write_json(output_dir / "metrics.json", record)
    write_json(output_dir / "transform.json", transform)
    test_rows = [row for row in rows if row["split"] == "test"]
    thumbnails = [_thumbnail(image) for image in test_split.cast_column("image", datasets.Image(decode=False))["image"]]
    plots = [
        *plot_roc_and_pr(rows, output_dir),
        plot_confusion_matrix(rows, "test", output_dir / "confusion_matrix.png"),
        plot_training_curves(trainer.state.log_history, output_dir / "training_curves.png"),
        plot_image_grid(thumbnails, test_rows, output_dir / "test_images.png"),
    ]
    provenance = record["dataset"]
    description = (
        f"Data: {provenance['source']} (config `{provenance['config']}`"
        + ("" if record["fold"] is None else f", fold {record['fold']}")
        + f", dataset version {provenance['version']}, manifest {provenance['manifest_hash']}). "
        f"Decision threshold {record['threshold']:.4f}: {record['threshold_rule']} 95% intervals: patient bootstrap "
        f"({args.n_bootstrap} resamples) for AUROC, AUPRC and MCC; Wilson for sensitivity and specificity."
    )
    training = trainer.args
    settings = {
        "class weights": [round(weight, 4) for weight in record["class_weights"]],
        "learning rate": training.learning_rate,
        "epochs": f"{record['training']['epochs']:g} of {training.num_train_epochs:g}",
        "batch size": training.per_device_train_batch_size * training.gradient_accumulation_steps
        * training.world_size,
        "weight decay": training.weight_decay,
        "seed": training.seed,
        "mask_center": args.mask_center,
        "device": record["training"]["device"],
    }
    reference = training.hub_model_id if training.push_to_hub and training.hub_model_id else str(output_dir)
    saliency: list[str] = []
    if args.explain:  # reloads the saved model, its threshold and transform.json from the folder, as explain.py does
        maps = explain_run(output_dir, test_split, output_dir / "saliency", args.explain, n_bootstrap=args.n_bootstrap,
                           seed=training.seed, progress=False)
        saliency = saliency_markdown(maps, card_dir=output_dir)
    results = results_markdown(_summary_of(record), description, record["shortcut_comparison"], saliency)
    card = write_model_card(output_dir, record, results, settings, reference)
    model_files = [output_dir / name for name in ("config.json", "model.safetensors", "preprocessor_config.json")]
    return {
        "model": model_files,
        "results": [output_dir / "metrics.json", output_dir / "predictions.csv", output_dir / "transform.json", card],
        "plots": [path for path in plots if path is not None],
        "saliency maps": [Path(maps.grid), output_dir / "saliency" / "saliency.json"] if args.explain else [],
    }


def _summary_of(record: dict[str, Any]) -> dict[str, dict]:
    return {split: record[split] for split in ("validation", "test")}


def _thumbnail(image: Any, side: int = 160) -> Image.Image:
    return ImageOps.pad(to_rgb(open_image(image)), (side, side), color=0)  # letterboxed: equal cells in the grid


def cross_validate(
    args: BaselineArguments,
    training_args: TrainingArguments,
    full: datasets.Dataset,
    provenance: dict[str, Any],
    command: Sequence[str],
) -> tuple[dict[str, Any], dict[str, list[Path]]]:
    """Train every fold of ``full`` into ``OUTPUT_DIR/fold_K`` and pool their test predictions into ``OUTPUT_DIR``."""
    run_dirs = []
    for fold in range(number_of_folds(full)):
        fold_dir = Path(training_args.output_dir) / f"fold_{fold}"
        changes: dict[str, Any] = {"output_dir": str(fold_dir)}
        if training_args.push_to_hub:
            changes["hub_model_id"] = f"{training_args.hub_model_id or Path(training_args.output_dir).name}-fold{fold}"
        fold_args = dataclasses.replace(training_args, **changes)
        train_and_evaluate(args, fold_args, fold_splits(full, fold), provenance, fold, command)
        run_dirs.append(fold_dir)
    if training_args.process_index != 0:
        return {}, {}
    return pool_folds(
        run_dirs,
        Path(training_args.output_dir),
        n_bootstrap=args.n_bootstrap,
        seed=training_args.seed,
        shortcuts_report=args.shortcuts_report,
    )


def release_process_group() -> None:
    """Tear down the ``torch.distributed`` process group that ``Trainer`` started under torchrun, if any.

    ``Trainer`` never destroys it. Left to the interpreter's exit, gloo's threads can be destroyed while still
    joinable, which aborts the process ("terminate called without an active exception") after the work is done, and
    torchrun then reports the whole run as failed. Safe to call in a single process: it does nothing there.
    """
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

