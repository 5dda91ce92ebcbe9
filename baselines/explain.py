"""Saliency maps of a trained baseline run and the share of its attention that lies outside the image centre.

    python baselines/explain.py --model runs/vit --data-dir PATH/TO/DOWNLOAD [--split test] [--output_dir DIR]
    python baselines/explain.py --model runs/convnext --dataset user/covid-ct-scan-images --per-image

Method (Grad-CAM for both architectures; for ViT on the tokens entering the last block, not attention rollout) and
the border share are described in ``training/saliency.py`` and baselines/README.md. The images are those of the
run's own dataset config (and fold), transformed exactly as the run evaluated them, including ``--mask-center``.
Writes ``saliency.json`` and ``saliency_grid.png`` (default: ``RUN_DIR/saliency``) and prints the summary table.

Exit codes: 0 done, 1 a problem with the run folder or the data (one line on stderr; ``--debug`` for the
traceback), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training import BaselineArguments, fold_splits, load_splits
from training.inference import load_run
from training.saliency import explain_run, summary_table

from covid_ct_scan_images.errors import DatasetError
from covid_ct_scan_images.shortcuts import CENTER_FRACTION, DEFAULT_BOOTSTRAP


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of ``explain.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="output folder of a finished training run")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", help="raw download folder, read through the library")
    source.add_argument("--dataset", help="Hub id or exported folder (datasets.load_dataset)")
    parser.add_argument("--config", choices=("default", "resized", "full"), help="dataset config (default: the run's)")
    parser.add_argument("--split", default="test", help="split to explain (default test)")
    parser.add_argument("--output_dir", "--output-dir", type=Path, help="where to write (default RUN_DIR/saliency)")
    parser.add_argument("--n-images", type=int, help="explain at most N images, half of each class (default all)")
    parser.add_argument("--per-image", action="store_true", help="also write one overlay PNG per image")
    parser.add_argument(
        "--center-fraction",
        type=float,
        default=CENTER_FRACTION,
        help=f"side fraction of the central region (default {CENTER_FRACTION}, as the shortcut probes)",
    )
    parser.add_argument("--n-bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="patient bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward/backward pass")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if not 0.0 < args.center_fraction < 1.0:
        parser.error("--center-fraction must be in (0, 1)")
    if args.n_images is not None and args.n_images < 1:
        parser.error("--n-images must be at least 1")
    if args.batch_size < 1 or args.n_bootstrap < 0:
        parser.error("--batch-size must be >= 1 and --n-bootstrap >= 0")
    return args


def load_run_split(args: argparse.Namespace, record: dict):
    """The split to explain, from the run's dataset config (and its fold for a ``--fold K`` run)."""
    fold = record.get("fold")
    config = args.config or record.get("dataset", {}).get("config", "default")
    splits = load_splits(BaselineArguments(data_dir=args.data_dir, dataset=args.dataset, config=config, fold=fold))
    if fold is not None:
        splits = fold_splits(splits["train"], fold)
    if args.split not in splits:
        raise ValueError(f"split {args.split!r} not in the dataset (it has {', '.join(splits)})")
    return splits[args.split]


def main(argv: Sequence[str] | None = None) -> int:
    """Explain a run; return the exit code."""
    args = parse_arguments(argv)
    try:
        run = load_run(args.model)
        summary = explain_run(
            args.model,
            load_run_split(args, run.record),
            args.output_dir or args.model / "saliency",
            n_images=args.n_images,
            split_name=args.split,
            center_fraction=args.center_fraction,
            n_bootstrap=args.n_bootstrap,
            seed=args.seed,
            batch_size=args.batch_size,
            per_image=args.per_image,
            progress=not args.quiet and sys.stderr.isatty(),
            run=run,
        )
    except KeyboardInterrupt:
        print("explain.py: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, DatasetError) as error:
        if args.debug:
            raise
        print(f"explain.py: error: {error}", file=sys.stderr)
        return 1
    output_dir = args.output_dir or args.model / "saliency"
    print(f"{summary.method} ({summary.model_type}), {summary.split} split, threshold {summary.threshold:.4f}")
    print("\n".join(summary_table(summary)))
    print(f"an evenly spread map scores {summary.uniform_border_share:.3f}")
    print(f"grid: {summary.grid}\nsummary: {output_dir / 'saliency.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
