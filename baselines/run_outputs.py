"""Output files of a run: ``predictions.csv``, ``metrics.json``, the model card, provenance, the end-of-run summary."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Columns of ``predictions.csv``, in order.
PREDICTION_COLUMNS = ("image_id", "patient_id", "label", "probability", "threshold", "predicted", "split", "fold")

CONFOUND_CAVEAT = (
    "**Confounding caveat.** In this dataset every positive is an adult COVID-19 radiograph from Cohen et al.'s "
    "covid-chestxray-dataset (collected from papers and case reports, many hospitals), and almost every negative is "
    "a pediatric radiograph from Kermany et al. (one hospital in Guangzhou). Label, age, source hospital, file "
    "format and image processing all coincide, so a model can score well by recognising the source or the "
    "patient's age instead of COVID-19. These numbers do not measure diagnostic ability and the model must not be "
    "used clinically. Compare them with the shortcut probes (`covid-ct shortcuts`) and with `--mask-center`."
)


def write_predictions(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write prediction rows as CSV with :data:`PREDICTION_COLUMNS`."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=PREDICTION_COLUMNS)
        writer.writeheader()
        for row in rows:
            predicted = int(row["probability"] >= row["threshold"])
            writer.writerow({key: row.get(key, "") for key in PREDICTION_COLUMNS} | {"predicted": predicted})


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Read a ``predictions.csv`` written by :func:`write_predictions`."""
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            {
                **row,
                "label": int(row["label"]),
                "probability": float(row["probability"]),
                "threshold": float(row["threshold"]),
                "predicted": int(row["predicted"]),
                "fold": int(row["fold"]) if row["fold"] != "" else None,
            }
            for row in csv.DictReader(handle)
        ]


def _interval(result: dict, key: str) -> str:
    value, interval = result.get(key), result.get(f"{key}_ci")
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def shortcut_comparison(report_path: str | None, result: dict) -> dict[str, Any] | None:
    """The model's AUROC (from a metric ``result``) beside the best shortcut probe of a saved audit, if given."""
    if report_path is None:
        return None
    from covid_ct_scan_images.shortcuts import ShortcutReport

    report = ShortcutReport.from_json(report_path)
    best = report.best_shortcut()
    return {
        "report": report_path,
        "model_auroc": result["auroc"],
        "model_auroc_ci": result.get("auroc_ci"),
        "model_n_images": result["n"],
        "best_probe": best.name,
        "best_probe_features": best.features,
        "best_probe_auroc": best.auroc,
        "best_probe_auroc_ci": None if best.auroc_ci is None else list(best.auroc_ci),
        "probe_n_images": report.n_images,
    }


def _shortcut_markdown(comparison: dict[str, Any]) -> list[str]:
    model = {"auroc": comparison["model_auroc"], "auroc_ci": comparison["model_auroc_ci"]}
    probe = {"auroc": comparison["best_probe_auroc"], "auroc_ci": comparison["best_probe_auroc_ci"]}
    return [
        "",
        "### Against the best shortcut probe",
        "",
        "A probe that cannot see lung disease (`covid-ct shortcuts`, patient-grouped out-of-fold on "
        f"{comparison['probe_n_images']} images) beside this model ({comparison['model_n_images']} held-out "
        "images). A model that does not clearly beat the probe has shown no skill beyond the shortcut.",
        "",
        "| classifier | sees the lungs | AUROC [95% CI] |",
        "| --- | --- | --- |",
        f"| this model | yes | {_interval(model, 'auroc')} |",
        f"| best shortcut probe: {comparison['best_probe']} ({comparison['best_probe_features']}) | no | "
        f"{_interval(probe, 'auroc')} |",
    ]


def results_markdown(
    summary: dict[str, dict[str, dict]],
    description: str,
    comparison: dict[str, Any] | None = None,
    saliency: Sequence[str] = (),
) -> str:
    """A Markdown results table (one row per split, at the chosen threshold), the shortcut comparison and beside it
    ``saliency``, the lines of where the model looks (``saliency.saliency_markdown``, with ``--explain``).

    ``metrics.json`` also holds every metric at 0.5 on the unshifted probabilities; the card leaves them out
    because the saved model's own 0.5 is the chosen threshold.
    """
    lines = [
        "## Results on COVID-19-CT SCAN IMAGES (chest radiographs)",
        "",
        description,
        "",
        "| split | threshold | n (pos) | AUROC [95% CI] | AUPRC [95% CI] (chance) | sensitivity [CI] | "
        "specificity [CI] | bal. acc. | MCC [CI] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, by_threshold in summary.items():
        result = by_threshold["at_selected_threshold"]
        threshold = result["threshold"]
        shown = f"{threshold:.4f}" if isinstance(threshold, float) else "per fold"
        balanced = "n/a" if result["balanced_accuracy"] is None else f"{result['balanced_accuracy']:.3f}"
        chance = "n/a" if result["auprc_chance"] is None else f"{result['auprc_chance']:.3f}"
        lines.append(
            f"| {split} | {shown} | {result['n']} ({result['n_positive']}) | {_interval(result, 'auroc')} | "
            f"{_interval(result, 'auprc')} ({chance}) | {_interval(result, 'sensitivity')} | "
            f"{_interval(result, 'specificity')} | {balanced} | {_interval(result, 'mcc')} |"
        )
    if comparison is not None:
        lines += _shortcut_markdown(comparison)
    return "\n".join([*lines, *saliency, ""])


def library_versions() -> dict[str, str | None]:
    """Versions of Python and of every library the result depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in (
        "covid_ct_scan_images",
        "torch",
        "transformers",
        "accelerate",
        "datasets",
        "evaluate",
        "scikit-learn",
        "numpy",
        "pillow",
        "matplotlib",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description() -> str:
    """The accelerator the run used, in words."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON (non-finite numbers become null)."""
    path.write_text(json.dumps(_json_ready(record), indent=2) + "\n", encoding="utf-8")


def hub_repo_id(name: str | None) -> str | None:
    """``name`` if it is a Hub repository id and not a local path, else None (metadata must not name local paths)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or Path(name).exists() or name.count("/") != 1:
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def write_model_card(
    output_dir: Path, record: dict[str, Any], results: str, training_settings: dict[str, Any], model_reference: str
) -> Path:
    """Write ``README.md``: valid Hub metadata, how to use the saved model, the results of ``metrics.json``.

    ``model_reference`` is what a user passes to ``pipeline`` (the Hub id when pushed, else the run folder).

    ``base_model`` and ``datasets`` are set only when they are Hub ids (a local path would render as a broken
    link); the numbers come from ``results`` (:func:`results_markdown` of the same summary as ``metrics.json``).
    """
    from huggingface_hub import ModelCard, ModelCardData

    base_model = hub_repo_id(record["model"])
    dataset = hub_repo_id(record["dataset"]["source"]) if record["dataset"]["loaded_with"] != (
        "covid_ct_scan_images.load_dataset") else None
    metadata = ModelCardData(
        license="other",
        license_name="mixed-licences-of-the-training-images",
        library_name="transformers",
        pipeline_tag="image-classification",
        base_model=base_model,
        datasets=[dataset] if dataset else None,
        tags=["image-classification", "chest-x-ray", "covid-19", "shortcut-learning", "not-for-clinical-use"],
        metrics=["roc_auc", "average_precision", "recall", "matthews_correlation"],
    )
    threshold = record["threshold"]
    offset = math.log(threshold / (1 - threshold))
    mask = record["mask_center"]
    origin = f"[`{base_model}`](https://huggingface.co/{base_model})" if base_model else f"`{record['model']}`"
    masked = (
        f"\n\n**The model saw its input with the central {mask:.0%} of height and width set to black** "
        "(`--mask-center`); blank the same region before calling it, or its decisions will not match the reported "
        "ones (`transform.json` holds the setting)." if mask else ""
    )
    settings = ", ".join(f"{key} {value}" for key, value in training_settings.items())
    body = f"""
# {output_dir.name}

A binary chest-radiograph classifier (`negative` / `positive` for COVID-19) fine-tuned from {origin} on
COVID-19-CT SCAN IMAGES. It is a baseline for studying **shortcut learning**: in this dataset the label coincides
with the patients' age and the images' source, so its scores measure the dataset, not diagnostic ability.

{CONFOUND_CAVEAT}

## How to use

```python
from transformers import pipeline

classifier = pipeline("image-classification", model="{model_reference}")
classifier("radiograph.png")[0]["label"]  # "positive" or "negative": the decision at the chosen threshold
```

The decision threshold chosen on validation ({threshold:.4f} on the probability of `predictions.csv`) is built
into the saved classifier: its positive logit's bias is lowered by log(t / (1 - t)) = {offset:.4f}, so the
saved model's scores are shifted and its 0.5, the argmax that `pipeline` reports, is that threshold.
`config.json` keeps `decision_threshold` and `decision_logit_offset`. Images are read as 8-bit RGB, upright, as
`covid_ct_scan_images` decodes them (16-bit files scaled by their range, transparency on black).{masked}

{results}
## Training

{settings}. Outputs beside the weights: `metrics.json` (every number above, with the 0.5 row of the unshifted
probabilities and the run's provenance), `predictions.csv` (one row per validation and test image),
`transform.json` (input size, normalisation, mask), the curves and the confusion matrix.

## Intended use and limitations

For research on dataset bias and shortcut learning, and as a reference point for methods that try to avoid it.
**Not for clinical use** or any decision about a person. The positives are adults and the negatives (all but one)
children aged one to five from one hospital; a model that tells them apart may only recognise age or source.
Compare with the shortcut probes (`covid-ct shortcuts`) and with a `--mask-center` run.

## Licence

The weights derive from the training images, whose licences are mixed: Kermany et al. (the negatives) is CC BY 4.0;
the Cohen et al. positives carry the licence of the article each came from, often none stated. Check the dataset
card's licence section before any use beyond research.
"""
    path = output_dir / "README.md"
    ModelCard(f"---\n{metadata.to_yaml()}\n---\n{body}").save(path)
    return path


def with_interval(result: dict, key: str, digits: int = 3) -> str:
    """``result[key]`` with its 95% interval, ``0.912 [0.850, 0.960]``; ``n/a`` when it is undefined."""
    value, interval = result.get(key), result.get(f"{key}_ci")
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" + (f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else "")


def end_of_run_summary(record: dict[str, Any], split: str, written: dict[str, Sequence[Path]]) -> str:
    """A few lines for the terminal: held-out AUROC/AUPRC with intervals, the threshold and what it gives, files."""
    result = record[split]["at_selected_threshold"]
    threshold = result["threshold"]
    shown = f"{threshold:.4f}" if isinstance(threshold, float) else "each fold's own"
    lines = [
        f"{split} ({result['n']} images, {result['n_positive']} positive): AUROC {with_interval(result, 'auroc')}, "
        f"AUPRC {with_interval(result, 'auprc')} (chance {result['auprc_chance']:.3f}), 95% intervals",
        f"threshold {shown} (chosen on validation): sensitivity {with_interval(result, 'sensitivity')}, "
        f"specificity {with_interval(result, 'specificity')}",
    ]
    comparison = record.get("shortcut_comparison")
    if comparison:
        probe = {"auroc": comparison["best_probe_auroc"], "auroc_ci": comparison["best_probe_auroc_ci"]}
        lines.append(
            f"best shortcut probe (never sees the lungs): {comparison['best_probe']}, AUROC "
            f"{with_interval(probe, 'auroc')}; a model that does not beat it has shown no skill beyond the shortcut"
        )
    else:
        lines.append("shortcut probes: not compared (pass --shortcuts-report from `covid-ct shortcuts --json`)")
    for what, paths in written.items():
        if paths:
            folder = Path(paths[0]).parent
            lines.append(f"{what}: {folder}/ " + ", ".join(Path(path).name for path in paths))
    return "\n".join(lines)
