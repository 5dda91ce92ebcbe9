"""External validation: score a trained baseline run on another labelled chest X-ray set, at its decision threshold.

    python baselines/evaluate_external.py --model runs/vit --eval-dataset PATH/TO/FOLDER \\
        --label-map "COVID=positive,Normal=negative,Viral Pneumonia=drop"

``--eval-dataset`` is anything ``datasets.load_dataset`` reads: an image folder with one subfolder per class, an
exported Parquet folder, or a Hub id. Images go through the run's saved image processor and ``--mask-center``, and
are called positive where the probability (as in ``predictions.csv``) reaches the run's ``decision_threshold``.
Writes ``external_metrics.json`` and ``external_predictions.csv`` (default: ``RUN_DIR/external``) and prints the
in-dataset test beside the external result and the drop. See baselines/README.md ("External validation") for what
a drop means.

Exit codes: 0 done, 1 a problem with the run folder or the set (one line on stderr; ``--debug`` for the
traceback), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from command_line import ShortUsageParser, exit_with, library_progress_bars
from covid_ct_scan_images.errors import DatasetError
from covid_ct_scan_images.shortcuts import DEFAULT_BOOTSTRAP
from external_validation import comparison_table, evaluate_external, load_external_set, parse_label_map
from trained_run import load_run


@dataclass
class ExternalArguments:
    """Options of ``evaluate_external.py``."""

    model: str = field(metadata={"help": "Output folder of a finished training run (one fold's for --cv)."})
    eval_dataset: str = field(metadata={"help": "Image folder, exported folder or Hub id of the other set."})
    config: str | None = field(default=None, metadata={"help": "Config of the set (default: its default)."})
    split: str | None = field(
        default=None, metadata={"help": "Split of the set (default: test if present, else its only split)."}
    )
    label_map: str | None = field(
        default=None,
        metadata={"help": "NAME=negative|positive|drop,... (default: the labels are already negative/positive)."},
    )
    output_dir: str | None = field(default=None, metadata={"help": "Where to write (default RUN_DIR/external)."})
    n_bootstrap: int = field(default=DEFAULT_BOOTSTRAP, metadata={"help": "Bootstrap resamples."})
    seed: int = field(default=0, metadata={"help": "Bootstrap seed."})
    batch_size: int = field(default=32, metadata={"help": "Images per forward pass."})
    quiet: bool = field(default=False, metadata={"help": "No progress bars."})
    debug: bool = field(default=False, metadata={"help": "Show tracebacks."})


def parse_arguments(argv: Sequence[str] | None) -> tuple[ExternalArguments, dict[str, str]]:
    """Parse and check the command line; the arguments and the parsed label map (usage errors exit with 2)."""
    parser = ShortUsageParser(ExternalArguments, usage="--model RUN_DIR --eval-dataset PATH|ID [--label-map MAP]")
    (args,) = parser.parse_args_into_dataclasses(args=None if argv is None else list(argv))
    try:
        label_map = parse_label_map(args.label_map)
    except ValueError as error:
        parser.error(str(error))
    if args.batch_size < 1 or args.n_bootstrap < 0:
        parser.error("--batch-size must be >= 1 and --n-bootstrap >= 0")
    return args, label_map


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate a run on another set and print the comparison; 0, or exit 1 / 2 / 130 with one line."""
    args, label_map = parse_arguments(argv)
    output_dir = Path(args.output_dir) if args.output_dir else Path(args.model) / "external"
    try:
        with library_progress_bars(not args.quiet and sys.stderr.isatty()):
            run = load_run(Path(args.model))
            external = load_external_set(args.eval_dataset, args.config, args.split, label_map)
            record = evaluate_external(run, external, output_dir, args.n_bootstrap, args.seed, args.batch_size)
    except KeyboardInterrupt:
        exit_with("interrupted", 130)
    except (OSError, ValueError, DatasetError) as error:
        if args.debug:
            raise
        exit_with(error, 1)
    dropped = ", ".join(f"{name} {count}" for name, count in record["dropped"].items()) or "none"
    print(
        f"{record['source']} ({record['split']}): {record['n_images']} images ({record['n_positive']} positive), "
        f"left out by the label map: {dropped}; threshold {record['threshold']:.4f}; bootstrap over "
        f"{record['bootstrap_groups']}"
    )
    print("\n".join(comparison_table(record)))
    print(f"written: {output_dir / 'external_metrics.json'}, {output_dir / 'external_predictions.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
