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

from training import (
    library_versions,
    load_metric,
    plot_results,
    read_predictions,
    results_markdown,
    shortcut_comparison,
    summarise,
    write_json,
    write_predictions,
)

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
        "dataset": {key: first["dataset"][key] for key in ("source", "loaded_with", "config", "version",
                                                         "manifest_hash")},
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
