"""Train.xls column detection on real .xls files written with xlwt."""

from __future__ import annotations

from pathlib import Path

import pytest
import xlwt

from covid_ct_scan_images.errors import DatasetError
from covid_ct_scan_images.sheet import parse_label, read_sheet

NAMES = ["IM-0115-0001.jpeg", "IM-0117-0001.jpeg", "01E392EE-69F9-4E33-BFCE-E5C968654078.jpeg"]


def _write_xls(path: Path, rows: list[list[object]]) -> Path:
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Sheet1")
    for row_index, row in enumerate(rows):
        for column_index, value in enumerate(row):
            sheet.write(row_index, column_index, value)
    workbook.save(str(path))
    return path


@pytest.mark.parametrize(
    ("rows", "name_column", "label_column"),
    [
        (
            [["image_name", "label"], *[[n, label] for n, label in zip(NAMES, [0, 0, 1], strict=True)]],
            "image_name",
            "label",
        ),
        ([[n, label] for n, label in zip(NAMES, [0.0, 0.0, 1.0], strict=True)], "column 0", "column 1"),
        (
            [
                ["id", "file", "result"],
                *[[i, n, t] for i, n, t in zip([7, 8, 9], NAMES, ["阴性", "阴性", "阳性"], strict=True)],
            ],
            "file",
            "result",
        ),
        (
            [
                ["label", "image"],
                *[[t, n] for n, t in zip(NAMES, ["COVID-19 negative", "negative", "COVID-19 positive"], strict=True)],
            ],
            "image",
            "label",
        ),
    ],
)
def test_name_and_label_columns_are_detected(tmp_path, rows, name_column, label_column):
    listing = read_sheet(_write_xls(tmp_path / "Train.xls", rows), NAMES)
    assert listing.names == NAMES
    assert listing.labels == [0, 0, 1]
    assert (listing.name_column, listing.label_column) == (name_column, label_column)


def test_sheet_without_labels_lists_names_only(tmp_path):
    listing = read_sheet(_write_xls(tmp_path / "Train.xls", [["name"], *[[n] for n in NAMES]]), NAMES)
    assert listing.names == NAMES and listing.labels is None and listing.label_column is None


def test_explicit_columns_override_detection(tmp_path):
    rows = [["a", "b", "c"], *[[n, 1, 0] for n in NAMES]]
    listing = read_sheet(_write_xls(tmp_path / "Train.xls", rows), NAMES, name_column="a", label_column="2")
    assert listing.labels == [0, 0, 0]


def test_unknown_column_is_a_clear_error(tmp_path):
    path = _write_xls(tmp_path / "Train.xls", [["image_name", "label"], *[[n, 0] for n in NAMES]])
    with pytest.raises(DatasetError, match="column 'filename' not found"):
        read_sheet(path, NAMES, name_column="filename")


@pytest.mark.parametrize(
    ("cell", "label"),
    [
        (0, 0),
        (1, 1),
        (1.0, 1),
        ("0", 0),
        ("1.0", 1),
        ("Positive", 1),
        ("negative", 0),
        ("阳性", 1),
        ("阴性", 0),
        ("COVID-19 positive", 1),
        ("maybe", None),
        (2, None),
    ],
)
def test_label_cells(cell, label):
    assert parse_label(cell) == label
