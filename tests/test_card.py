"""The dataset card: valid Hub metadata, and every number in it equal to the exported data."""

from __future__ import annotations

import hashlib
import io
import json
import re
import statistics
from collections import Counter
from pathlib import Path

import datasets
import pytest
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from export_support import cache_of, download_of
from huggingface_hub import DatasetCard
from PIL import Image

from covid_ct_scan_images.audit_report import Report
from covid_ct_scan_images.builder import DATASET_VERSION
from covid_ct_scan_images.card import TEMPLATE_PATHS, card_version, load_template
from covid_ct_scan_images.errors import UsageError
from covid_ct_scan_images.export import ExportResult, export_dataset
from covid_ct_scan_images.reference import reference_entries
from covid_ct_scan_images.shortcuts import ShortcutReport, format_table, interpretation
from covid_ct_scan_images.synthetic import SYNTHETIC_BANNER

CLASSES = ("negative", "positive")


def table(card: str, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose first header cell is ``first_header``."""
    lines = card.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def frame(export: ExportResult, config: str = "full", split: str = "train"):
    """The library build's rows (not the export's) as a DataFrame, with the image format read from the bytes."""
    dataset = export.builds[config].dataset[split].cast_column("image", datasets.Image(decode=False))
    data = dataset.to_pandas()
    data["format"] = [Image.open(io.BytesIO(image["bytes"])).format for image in data["image"]]
    return data


def per_class(data, column: str) -> dict[str, list[int]]:
    """{value: [negatives, positives, total, patients]} for each value of ``column`` and for ``all`` rows."""
    groups = [*((str(value), group) for value, group in data.groupby(column)), ("all", data)]
    counts = {}
    for name, group in groups:
        by_label = Counter(group["label"])
        counts[name] = [by_label[0], by_label[1], len(group), group["patient_id"].nunique()]
    return counts


def as_counts(rows: list[list[str]]) -> dict[str, list[int]]:
    return {row[0]: [int(cell) for cell in row[1:]] for row in rows}


def check_card_numbers(export: ExportResult, card: str) -> None:
    """Every computed number in ``card`` equals what the library's own build of the data says."""
    full = frame(export)
    splits = {split: frame(export, "default", split) for split in export.builds["default"].dataset}
    n_pos = int((full["label"] == 1).sum())
    n_neg = len(full) - n_pos

    # summary sentence
    summary = re.search(
        r"\*\*(\d+) images\*\* \((\d+) labelled COVID-19 positive,\s+(\d+) negative\) of \*\*(\d+)", card
    )
    assert summary is not None
    assert [int(value) for value in summary.groups()] == [len(full), n_pos, n_neg, full["patient_id"].nunique()]
    reference = list(reference_entries().values())
    assert f"holds {len(reference)} images ({sum(e.label for e in reference)} positive," in card

    # splits and folds (with patients), patients per class
    import pandas as pd

    every_split = pd.concat([data.assign(split=name) for name, data in splits.items()])
    assert as_counts(table(card, "split")) == per_class(every_split, "split")
    assert [row[0] for row in table(card, "split")] == [*splits, "all"]
    assert as_counts(table(card, "fold")) == per_class(full, "fold")
    patients = [full[full["label"] == label]["patient_id"].nunique() for label in (1, 0)]
    assert f"Patients: {patients[0]} with a positive image, {patients[1]} with a negative image." in card
    assert f"for {full['fold'].nunique()}-fold cross-validation" in card

    # resolution
    resolution = {(row[0], row[1]): row[2:] for row in table(card, "images")}
    for name, subset in [("negative", full[full["label"] == 0]), ("positive", full[full["label"] == 1]), ("all", full)]:
        for side in ("width", "height"):
            values = subset[side].tolist()
            middle = statistics.median(values)
            shown = str(int(middle)) if float(middle).is_integer() else f"{middle:.1f}"
            assert resolution[(name, side)] == [str(min(values)), shown, str(max(values))]

    # formats, modes, sources, licences
    assert as_counts(table(card, "format")) == per_class(full, "format")
    assert as_counts(table(card, "mode")) == per_class(full, "mode")
    assert as_counts(table(card, "source")) == per_class(full, "source")

    def licence(name: str) -> str:
        entry = reference_entries().get(name.lower())
        return "unknown (not in the reference list)" if entry is None else (entry.license or "none stated upstream")

    full["licence"] = full["image_id"].map(licence)
    assert as_counts(table(card, "licence (per image)")) == per_class(full, "licence")
    assert f"Small and imbalanced: {n_pos} positives among {len(full)} images." in card

    # the audit (left out files, duplicates, near-duplicates): its summary as saved next to the card
    saved = json.loads((export.out_dir / "audit_report.json").read_text(encoding="utf-8"))
    assert f"```text\n{Report.from_dict(saved).format_text(max_files=20)}\n```" in card
    assert f"equal another exported image: {int(full['sha256'].duplicated().sum())}." in card

    # manifest and version
    manifest = hashlib.sha256((export.out_dir / "splits_manifest.csv").read_bytes()).hexdigest()
    assert f"SHA-256 `{manifest}`" in card
    assert f"version {DATASET_VERSION}" in card.splitlines()[card.splitlines().index("---", 1) + 1]
    assert DatasetCard(card).data.version == DATASET_VERSION == card_version(export.out_dir / "README.md")

    # YAML: dataset_info and configs
    parsed = DatasetCard(card)
    infos = DatasetInfosDict.from_dataset_card_data(parsed.data)
    for config, build in export.builds.items():
        assert infos[config].features == build.dataset[next(iter(build.dataset))].features
        assert {name: split.num_examples for name, split in infos[config].splits.items()} == {
            name: len(split) for name, split in build.dataset.items()
        }
        shards = sorted((export.out_dir / "data" / config).glob("*.parquet"))
        assert infos[config].download_size == sum(shard.stat().st_size for shard in shards)


def test_card_is_valid_hub_metadata(messy_export: ExportResult) -> None:
    card = DatasetCard((messy_export.out_dir / "README.md").read_text(encoding="utf-8"))
    data = card.data
    assert data.pretty_name and "not CT" in data.pretty_name
    assert data.license == "other"
    assert data.license_name and data.license_details and "CC BY 4.0" in data.license_details
    assert data.task_categories == ["image-classification"]
    assert {"medical", "chest-x-ray", "covid-19"} <= set(data.tags)
    assert data.size_categories == ["n<1K"]
    configs = MetadataConfigs.from_dataset_card_data(data)
    assert configs == {
        "default": {
            "data_files": [
                {"split": "train", "path": "data/default/train-*.parquet"},
                {"split": "validation", "path": "data/default/validation-*.parquet"},
                {"split": "test", "path": "data/default/test-*.parquet"},
            ]
        },
        "full": {"data_files": [{"split": "train", "path": "data/full/train-*.parquet"}]},
    }
    infos = DatasetInfosDict.from_dataset_card_data(data)
    assert infos["full"].features["label"].names == list(CLASSES)
    assert "fold" in infos["full"].features and "fold" not in infos["default"].features
    # The template sections of a Hugging Face dataset card, written for this dataset.
    for heading in (
        "## Dataset Summary",
        "## Uses",
        "### Direct Use",
        "### Out-of-Scope Use",
        "## Dataset Structure",
        "## Dataset Creation",
        "### Source Data",
        "## Bias, Risks, and Limitations",
        "## Citation",
        "## Version history",
        "## Licences",
    ):
        assert f"\n{heading}\n" in card.text, heading
    for fact in (
        "chest radiographs (X-ray), not CT",
        "Not for clinical use",
        "Guangzhou",
        "DeGrave et al. 2021",
        "Maguolo & Nanni 2021",
        "Roberts et al. 2021",
        "2006.11988",
        "10.1016/j.cell.2018.02.010",
        "tianchi.aliyun.com/dataset/93666",
        "StratifiedGroupKFold",
    ):
        assert fact in card.text, fact


def test_every_number_in_the_card_matches_the_data(messy_export: ExportResult) -> None:
    card = (messy_export.out_dir / "README.md").read_text(encoding="utf-8")
    assert messy_export.card == card
    check_card_numbers(messy_export, card)
    # the messy download really exercised the audit sections
    assert "left out 2, ignored 0" in card
    assert "[left_out] unusable_file, 1 file(s):" in card and "[left_out] duplicate_bytes, 1 file(s):" in card


def test_card_of_the_real_sample(real_sample: Path, tmp_path: Path) -> None:
    export = export_dataset(real_sample, tmp_path / "export", cache_dir=tmp_path / "hf-cache", compute_shortcuts=False)
    card = export.card
    check_card_numbers(export, card)
    assert "SYNTHETIC" not in card
    assert "**Shortcut probes: not computed for this export**" in card
    assert "| probe |" not in card
    assert 'load_dataset("path/to/this/folder")' in card and "NAME/" not in card


def test_shortcut_table_and_sentence_come_from_the_run(messy_export: ExportResult) -> None:
    card = messy_export.card
    run = ShortcutReport.from_json(messy_export.out_dir / "shortcut_probes.json")
    assert format_table(run, markdown=True) in card
    assert interpretation(run) in card
    assert "not computed" not in card
    assert f"> `{SYNTHETIC_BANNER}`" in card


def test_template_holds_no_hand_typed_data_numbers() -> None:
    """Numbers about the data come from placeholders; the source only has method constants and citations."""
    text = load_template()
    body = text.split("```bibtex")[0]  # the citation block is bibliographic
    body = re.sub(r"\$\{\w+\}", "", body)
    body = re.sub(r"(doi:|arXiv |dataset |Cell |Intelligence\* |Fusion\* )[\w./()-]+", "", body)
    body = re.sub(r"`[^`]*`", "", body)  # file names and code
    allowed = {
        "19",  # COVID-19
        "2", "32", "256",  # list numbering, int32, SHA-256
        "2018", "2020", "2021",  # publication years
        "1", "5",  # "aged 1 to 5" (Kermany et al. 2018)
        "20", "3", "15", "70",  # the split method: 20 folds of 5 %, 3 folds, 70 / 15 / 15 %
        "4.0",  # CC BY 4.0
        "8", "16",  # bit depths: decoded as 8-bit RGB, Pillow clips 16-bit files
        "93666",  # Tianchi dataset id
        "610", "619", "76", "7", "199", "217",  # journal pages and volumes of the references
    }  # fmt: skip
    numbers = set(re.findall(r"\d+(?:\.\d+)?", body))
    assert numbers <= allowed, f"numbers typed into dataset_card.md: {sorted(numbers - allowed)}"


def test_template_is_found_in_the_source_tree() -> None:
    assert TEMPLATE_PATHS[0].name == "dataset_card.md" and TEMPLATE_PATHS[0].is_file()


def test_unknown_placeholder_and_missing_template_are_clear_errors(
    messy_export: ExportResult,
    tmp_path: Path,
) -> None:
    template = tmp_path / "card.md"
    template.write_text("---\npretty_name: x\n---\n# x ${no_such_value}\n", encoding="utf-8")
    with pytest.raises(UsageError, match="placeholder"):
        export_dataset(
            download_of(messy_export),
            tmp_path / "out",
            cache_dir=cache_of(messy_export),
            compute_shortcuts=False,
            card_template=template,
        )
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match=re.escape("dataset_card.md")):
        load_template(tmp_path / "missing.md")


def test_the_number_check_catches_a_wrong_number(messy_export: ExportResult) -> None:
    """The comparison above is not vacuous: one count changed in a table or the summary fails it."""
    card = messy_export.card
    train = next(line for line in card.splitlines() if line.startswith("| train |"))
    cells = train.split("|")
    cells[2] = f" {int(cells[2]) + 1} "
    for wrong in (card.replace(train, "|".join(cells)), re.sub(r"\*\*(\d+) images\*\*", "**999 images**", card)):
        with pytest.raises(AssertionError):
            check_card_numbers(messy_export, wrong)
