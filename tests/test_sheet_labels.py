"""One unreadable label cell must not switch off the label cross-check of Train.xls.

Each test rewrites the real sample's Train.xls as a real .xls (xlwt) with five labels flipped and one
label cell broken, then runs ``covid-ct audit --strict`` in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xlwt
from bad_inputs import read_rows, run_cli

from covid_ct_scan_images.layout import SHEET_NAME
from covid_ct_scan_images.sheet import read_sheet

N_FLIPPED = 5


def write_sheet_with_cell(root: Path, rows: list[tuple[str, int]], bad_row: int, bad_cell: object) -> None:
    """Write ``rows`` as Train.xls; the label of data row ``bad_row`` (0-based) is ``bad_cell`` instead."""
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Sheet1")
    sheet.write(0, 0, "image_name")
    sheet.write(0, 1, "label")
    for index, (name, label) in enumerate(rows):
        sheet.write(index + 1, 0, name)
        if index == bad_row:
            if bad_cell is not None:
                sheet.write(index + 1, 1, bad_cell)
        else:
            sheet.write(index + 1, 1, label)
    workbook.save(str(root / SHEET_NAME))


#: (cell written, how the report shows it)
BAD_CELLS = {
    "blank": (None, "(blank)"),
    "two": (2, "2"),
    "almost_one": (1.0000001, "1.0000001"),
    "empty_formula": (xlwt.Formula('""'), "(blank)"),
}


@pytest.mark.parametrize(("bad_cell", "shown"), list(BAD_CELLS.values()), ids=list(BAD_CELLS))
def test_flipped_labels_stop_strict_audit_despite_one_unreadable_label_cell(
    capsys, writable_real_root, tmp_path, bad_cell, shown
):
    rows = read_rows(writable_real_root)
    flipped = {name for name, _ in rows[:N_FLIPPED]}
    rows = [(name, 1 - label if name in flipped else label) for name, label in rows]
    bad_row = N_FLIPPED + 3
    write_sheet_with_cell(writable_real_root, rows, bad_row, bad_cell)

    code, out, _ = run_cli(capsys, "audit", writable_real_root, "--strict", "--json", tmp_path / "audit.json")

    assert code == 1
    assert "no problems found" not in out
    report = json.loads((tmp_path / "audit.json").read_text(encoding="utf-8"))
    conflicts = [p for p in report["problems"] if p["kind"] == "label_conflict"]
    assert len(conflicts) == 1
    assert {entry.split(" (")[0].rsplit("/", 1)[-1] for entry in conflicts[0]["files"]} == flipped
    unreadable = [p for p in report["problems"] if p["kind"] == "sheet_label_unreadable"]
    assert len(unreadable) == 1
    excel_row = bad_row + 2  # header is row 1
    assert unreadable[0]["files"] == [f"row {excel_row}: {rows[bad_row][0]}: {shown}"]
    assert "sheet_label_unreadable" in out and f"row {excel_row}" in out


def test_unreadable_cell_is_reported_when_the_label_column_is_named(writable_real_root):
    rows = read_rows(writable_real_root)
    write_sheet_with_cell(writable_real_root, rows, 0, "maybe")
    names = [name for name, _ in rows]
    listing = read_sheet(writable_real_root / SHEET_NAME, names, label_column="label")
    assert listing.unreadable_labels == [(2, rows[0][0], "'maybe'")]
    assert listing.labels is not None and listing.labels[0] is None
    assert listing.labels[1:] == [label for _, label in rows[1:]]


def test_a_column_mostly_not_labels_is_not_taken_for_the_label_column(writable_real_root):
    rows = read_rows(writable_real_root)
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Sheet1")
    for index, (name, _) in enumerate(rows):
        sheet.write(index, 0, name)
        sheet.write(index, 1, 2 + index if index % 3 else 1)  # a third of the cells read as a label
    workbook.save(str(writable_real_root / SHEET_NAME))
    listing = read_sheet(writable_real_root / SHEET_NAME, [name for name, _ in rows])
    assert listing.label_column is None and listing.labels is None
