"""External validation: score a trained baseline run on another labelled chest X-ray set, at its stored threshold.

    python baselines/evaluate_external.py --model runs/vit --eval-dataset PATH/TO/FOLDER \\
        --label-map "COVID=positive,Normal=negative,Viral Pneumonia=drop"

``--eval-dataset`` is anything ``datasets.load_dataset`` reads: an image folder with one subfolder per class, an
exported Parquet folder, or a Hub id. Writes ``external_metrics.json`` and ``external_predictions.csv`` (default:
``RUN_DIR/external``) and prints the in-dataset test beside the external result and the drop. See
baselines/README.md ("External validation") for what a drop means.

Exit codes: 0 done, 1 a problem with the run folder or the set (one line on stderr; ``--debug`` for the
traceback), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.external import comparison_table, evaluate_external, load_external_set, parse_label_map
from training.inference import load_run

from covid_ct_scan_images.errors import DatasetError
from covid_ct_scan_images.shortcuts import DEFAULT_BOOTSTRAP


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of ``evaluate_external.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="output folder of a finished training run")
    parser.add_argument("--eval-dataset", required=True, help="image folder, exported folder or Hub id")
    parser.add_argument("--config", help="config of the set (default: its default)")
    parser.add_argument("--split", help="split of the set (default: test if present, else its only split)")
    parser.add_argument(
        "--label-map", help="NAME=negative|positive|drop,... (default: labels are already negative/positive)"
    )
    parser.add_argument("--output_dir", "--output-dir", type=Path, help="where to write (default RUN_DIR/external)")
    parser.add_argument("--n-bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        args.label_map = parse_label_map(args.label_map)
    except ValueError as error:
        parser.error(str(error))
    if args.batch_size < 1 or args.n_bootstrap < 0:
        parser.error("--batch-size must be >= 1 and --n-bootstrap >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate a run on another set; return the exit code."""
    args = parse_arguments(argv)
    output_dir = args.output_dir or args.model / "external"
    try:
        run = load_run(args.model)
        external = load_external_set(args.eval_dataset, args.config, args.split, args.label_map)
        record = evaluate_external(run, external, output_dir, args.n_bootstrap, args.seed, args.batch_size)
    except KeyboardInterrupt:
        print("evaluate_external.py: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, DatasetError) as error:
        if args.debug:
            raise
        print(f"evaluate_external.py: error: {error}", file=sys.stderr)
        return 1
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
