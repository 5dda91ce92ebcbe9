"""Saliency maps of a trained baseline run and the share of its attention that lies outside the image centre.

    python baselines/explain.py --model runs/vit --data-dir PATH/TO/DOWNLOAD [--split test] [--output_dir DIR]
    python baselines/explain.py --model runs/convnext --dataset user/covid-ct-scan-images --per-image

Method (Grad-CAM for both architectures; for ViT on the tokens entering the last block, not attention rollout) and
the border share are described in ``saliency.py`` and baselines/README.md. The images are those of the run's own
dataset config (and fold), transformed as its reported predictions were (the saved image processor and the run's
``--mask-center``), and each image's probability and decision are those of its ``predictions.csv``. Writes
``saliency.json`` and ``saliency_grid.png`` (default: ``RUN_DIR/saliency``) and prints the summary table.

Exit codes: 0 done, 1 a problem with the run folder or the data (one line on stderr; ``--debug`` for the
traceback), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import datasets

from command_line import ShortUsageParser, exit_with, library_progress_bars
from covid_ct_scan_images.errors import DatasetError, UsageError
from covid_ct_scan_images.shortcuts import CENTER_FRACTION, DEFAULT_BOOTSTRAP
from data_loading import fold_splits, load_splits
from saliency import explain_run, summary_table
from trained_run import load_run


@dataclass
class ExplainArguments:
    """Options of ``explain.py``."""

    model: str = field(metadata={"help": "Output folder of a finished training run (one fold's for --cv)."})
    data_dir: str | None = field(default=None, metadata={"help": "Raw download folder, read through the library."})
    dataset: str | None = field(default=None, metadata={"help": "Hub id or exported folder (datasets.load_dataset)."})
    config: Literal["default", "full", "resized"] | None = field(
        default=None, metadata={"help": "Dataset config (default: the run's)."}
    )
    split: str = field(default="test", metadata={"help": "Split to explain."})
    output_dir: str | None = field(default=None, metadata={"help": "Where to write (default RUN_DIR/saliency)."})
    n_images: int | None = field(
        default=None, metadata={"help": "Explain at most N images, half of each class (default all)."}
    )
    per_image: bool = field(default=False, metadata={"help": "Also write one overlay PNG per image."})
    center_fraction: float = field(
        default=CENTER_FRACTION,
        metadata={"help": f"Side fraction of the central region (default {CENTER_FRACTION}, as the shortcut probes)."},
    )
    n_bootstrap: int = field(default=DEFAULT_BOOTSTRAP, metadata={"help": "Patient bootstrap resamples."})
    seed: int = field(default=0, metadata={"help": "Bootstrap seed."})
    batch_size: int = field(default=16, metadata={"help": "Images per forward/backward pass."})
    quiet: bool = field(default=False, metadata={"help": "No progress bar."})
    debug: bool = field(default=False, metadata={"help": "Show tracebacks."})


def parse_arguments(argv: Sequence[str] | None) -> ExplainArguments:
    """Parse and check the command line of ``explain.py`` (usage errors exit with 2)."""
    parser = ShortUsageParser(ExplainArguments, usage="--model RUN_DIR --data-dir DIR | --dataset ID [options]")
    (args,) = parser.parse_args_into_dataclasses(args=None if argv is None else list(argv))
    if (args.data_dir is None) == (args.dataset is None):
        parser.error("give exactly one of --data-dir (raw download) or --dataset (Hub id or exported folder)")
    if not 0.0 < args.center_fraction < 1.0:
        parser.error("--center-fraction must be in (0, 1)")
    if args.n_images is not None and args.n_images < 1:
        parser.error("--n-images must be at least 1")
    if args.batch_size < 1 or args.n_bootstrap < 0:
        parser.error("--batch-size must be >= 1 and --n-bootstrap >= 0")
    return args


def load_run_split(args: ExplainArguments, record: dict) -> datasets.Dataset:
    """The split to explain, from the run's dataset config (and its fold for a ``--fold K`` run)."""
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such folder; give the folder of the raw Tianchi download")
    fold = record.get("fold")
    splits = load_splits(args.data_dir, args.dataset, args.config or record["dataset"]["config"])
    if fold is not None:
        splits = fold_splits(splits["train"], fold)
    if args.split not in splits:
        raise ValueError(f"split {args.split!r} not in the dataset (it has {', '.join(splits)}); choose with --split")
    return splits[args.split]


def main(argv: Sequence[str] | None = None) -> int:
    """Explain a run: write the maps' summary and grid, print the table; 0, or exit 1 / 2 / 130 with one line."""
    args = parse_arguments(argv)
    output_dir = Path(args.output_dir) if args.output_dir else Path(args.model) / "saliency"
    show_progress = not args.quiet and sys.stderr.isatty()
    try:
        with library_progress_bars(show_progress):
            run = load_run(Path(args.model))
            summary = explain_run(
                run.run_dir,
                load_run_split(args, run.record),
                output_dir,
                n_images=args.n_images,
                split_name=args.split,
                center_fraction=args.center_fraction,
                n_bootstrap=args.n_bootstrap,
                seed=args.seed,
                batch_size=args.batch_size,
                per_image=args.per_image,
                progress=show_progress,
                run=run,
            )
    except KeyboardInterrupt:
        exit_with("interrupted", 130)
    except (OSError, ValueError, DatasetError) as error:
        if args.debug:
            raise
        exit_with(error, 2 if isinstance(error, UsageError) else 1)
    print(f"{summary.method} ({summary.model_type}), {summary.split} split, threshold {summary.threshold:.4f}")
    print("\n".join(summary_table(summary)))
    print(f"an evenly spread map scores {summary.uniform_border_share:.3f}")
    print(f"grid: {summary.grid}\nsummary: {output_dir / 'saliency.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
