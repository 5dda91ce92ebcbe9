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
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation import load_metric, summarise
from plots import plot_confusion_matrix, plot_roc_and_pr
from run_outputs import (
    CONFOUND_CAVEAT,
    end_of_run_summary,
    library_versions,
    read_predictions,
    results_markdown,
    shortcut_comparison,
    write_json,
    write_predictions,
)

#: Name of the pooled section in ``metrics.json`` (and of the split in the pooled ``predictions.csv``).
POOLED_SPLIT = "out_of_fold"


def read_fold_runs(run_dirs: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``metrics.json`` of each run and their test rows relabelled :data:`POOLED_SPLIT`.

    Raises ``ValueError`` if two runs share a fold or an image.
    """
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    folds: dict[int | None, Path] = {}
    for run_dir in map(Path, run_dirs):
        run = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        if run["fold"] in folds:
            raise ValueError(f"fold {run['fold']} appears twice: {folds[run['fold']]} and {run_dir}")
        folds[run["fold"]] = run_dir
        runs.append(run)
        rows += [
            {**row, "split": POOLED_SPLIT} for row in read_predictions(run_dir / "predictions.csv")
            if row["split"] == "test"
        ]
    image_ids = [row["image_id"] for row in rows]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("an image appears in the test rows of more than one run; are these folds of one dataset?")
    return runs, rows


def pooled_record(
    runs: list[dict[str, Any]], run_dirs: Sequence[Path], summary: dict, shortcuts_report: str | None
) -> dict[str, Any]:
    """The pooled ``metrics.json`` record: the runs' settings per fold beside the pooled metrics."""
    first = runs[0]
    by_fold = {str(run["fold"]): run for run in runs}
    return {
        "model": first["model"],
        "pooled_from": [str(path) for path in run_dirs],
        "folds": [run["fold"] for run in runs],
        "threshold": {fold: run["threshold"] for fold, run in by_fold.items()},
        "threshold_rule": "per fold: " + first["threshold_rule"],
        "class_weights": {fold: run["class_weights"] for fold, run in by_fold.items()},
        "class_weights_rule": first["class_weights_rule"],
        "seed": first["seed"],
        "mask_center": first["mask_center"],
        "dataset": {
            key: first["dataset"][key] for key in ("source", "loaded_with", "config", "version", "manifest_hash")
        },
        "fold_test_auroc": {fold: run["test"]["at_selected_threshold"]["auroc"] for fold, run in by_fold.items()},
        "training": {
            "device": first["training"]["device"],
            "train_images_per_second": {
                fold: run["training"].get("train_images_per_second") for fold, run in by_fold.items()
            },
        },
        "versions": library_versions(),
        "shortcut_comparison": shortcut_comparison(shortcuts_report, summary[POOLED_SPLIT]["at_selected_threshold"]),
        **summary,
    }


def pool_folds(
    run_dirs: Sequence[Path],
    output_dir: Path,
    n_bootstrap: int = 1000,
    seed: int = 0,
    shortcuts_report: str | None = None,
) -> tuple[dict[str, Any], dict[str, list[Path]]]:
    """Merge the test predictions of ``run_dirs`` (one per fold), compute pooled metrics and write the outputs.

    ``shortcuts_report`` (JSON of ``covid-ct shortcuts --json``) adds the best probe's AUROC beside ours.
    Returns the pooled ``metrics.json`` record and the files written, by kind.
    """
    runs, rows = read_fold_runs(run_dirs)
    summary = summarise(rows, load_metric(), n_bootstrap, seed)
    record = pooled_record(runs, run_dirs, summary, shortcuts_report)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(output_dir / "predictions.csv", rows)
    write_json(output_dir / "metrics.json", record)
    plots = [*plot_roc_and_pr(rows, output_dir), plot_confusion_matrix(rows, POOLED_SPLIT,
                                                                      output_dir / "confusion_matrix.png")]
    first = runs[0]
    description = (
        f"Out-of-fold predictions of {len(runs)} cross-validation runs of `{first['model']}` on "
        f"{first['dataset']['source']} (config `{first['dataset']['config']}`, manifest "
        f"{first['dataset']['manifest_hash']}), pooled; each image is scored by the model that did not train on "
        f"it and judged at its own fold's threshold ({record['threshold_rule']}). 95% intervals: patient bootstrap "
        f"({n_bootstrap} resamples) for AUROC, AUPRC and MCC; Wilson for sensitivity and specificity."
    )
    card = output_dir / "README.md"
    card.write_text(f"{CONFOUND_CAVEAT}\n\n{results_markdown(summary, description, record['shortcut_comparison'])}",
                    encoding="utf-8")
    results = [output_dir / "metrics.json", output_dir / "predictions.csv", card]
    return record, {"fold runs": [Path(path) for path in run_dirs], "results": results, "plots": plots}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``pool_folds.py RUN_DIR [RUN_DIR ...] --output-dir DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="output folders of the fold runs")
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write the pooled results")
    parser.add_argument("--n-bootstrap", type=int, default=1000, help="patient bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--shortcuts-report", help="JSON of `covid-ct shortcuts --json` to compare against")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.run_dirs if not (path / "metrics.json").is_file()]
    if missing:
        parser.error(f"no metrics.json in {', '.join(missing)}; give the output folders of finished fold runs")
    try:
        record, written = pool_folds(args.run_dirs, args.output_dir, n_bootstrap=args.n_bootstrap, seed=args.seed,
                                     shortcuts_report=args.shortcuts_report)
    except ValueError as error:
        parser.error(str(error))
    print(end_of_run_summary(record, POOLED_SPLIT, written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
