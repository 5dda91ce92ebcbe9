"""Pool the out-of-fold predictions of cross-validation runs into one set of metrics.

Each fold can run as its own job (``finetune_vit.py --fold K --output_dir runs/vit/fold_K``); afterwards::

    python baselines/pool_folds.py runs/vit/fold_* --output-dir runs/vit

merges the test rows (each fold's held-out images) of their ``predictions.csv``. Every image keeps the
decision threshold its own fold chose on its validation split, so the pooled thresholded metrics use no
information from the images they score. Writes ``metrics.json``, ``predictions.csv``, the curves, the
confusion matrix and a ``README.md`` with the results table into ``--output-dir``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from training import POOLED_SPLIT, pool_folds


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``pool_folds.py RUN_DIR [RUN_DIR ...] --output-dir DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="output folders of the fold runs")
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write the pooled results")
    parser.add_argument("--n-bootstrap", type=int, default=1000, help="patient bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--shortcuts-report", help="JSON of `covid-ct shortcuts --json` to compare against")
    args = parser.parse_args(argv)
    record = pool_folds(args.run_dirs, args.output_dir, n_bootstrap=args.n_bootstrap, seed=args.seed,
                        shortcuts_report=args.shortcuts_report)
    result = record[POOLED_SPLIT]["at_selected_threshold"]
    print(f"pooled {result['n']} out-of-fold predictions: AUROC {result['auroc']}, AUPRC {result['auprc']} "
          f"(chance {result['auprc_chance']}), written to {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
