"""``--splits-manifest`` is validated: every bad manifest is refused with one message naming its rows.

The manifests start from the real split of the real sample (``plan_dataset`` on a copy of it) and are
then broken the ways a hand-edited or re-saved CSV breaks; ``covid-ct prepare`` runs in-process.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from bad_inputs import run_cli

from covid_ct_scan_images.locate import locate
from covid_ct_scan_images.plan import BuildOptions, plan_dataset
from covid_ct_scan_images.splits import manifest_text


@pytest.fixture
def real_manifest_rows(writable_real_root: Path, tmp_path: Path) -> list[list[str]]:
    """The rows (header first) of the manifest the real sample's own build writes."""
    plan = plan_dataset(locate(writable_real_root, tmp_path / "work"), BuildOptions())
    return list(csv.reader(io.StringIO(manifest_text(plan.assignments()))))


def write_manifest(path: Path, rows: list[list[str]], delimiter: str = ",", bom: bool = False) -> Path:
    """Write ``rows`` as a CSV file (optionally ``;``-separated or with a UTF-8 byte-order mark)."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")
    return path


def prepare_with(capsys, root: Path, manifest: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    code, out, err = run_cli(
        capsys, "prepare", root, "--splits-manifest", manifest, "--cache-dir", tmp_path / "cache", *extra
    )
    return code, out + err


def with_split(rows: list[list[str]], split: str) -> list[list[str]]:
    return [rows[0], *([*row[:3], split, row[4]] for row in rows[1:])]


def test_short_row_is_refused_naming_its_line(capsys, writable_real_root, real_manifest_rows, tmp_path):
    rows = [*real_manifest_rows[:5], real_manifest_rows[5][:3], *real_manifest_rows[6:]]
    code, text = prepare_with(capsys, writable_real_root, write_manifest(tmp_path / "m.csv", rows), tmp_path)
    assert code == 1
    assert "1 malformed row(s)" in text and "line 6: missing or empty split, fold" in text


def test_manifest_with_every_row_in_train_is_refused_naming_the_empty_splits(
    capsys, writable_real_root, real_manifest_rows, tmp_path
):
    manifest = write_manifest(tmp_path / "m.csv", with_split(real_manifest_rows, "train"))
    code, text = prepare_with(capsys, writable_real_root, manifest, tmp_path)
    assert code == 1
    assert "leaves split(s) validation, test without any image" in text


def test_header_only_manifest_is_refused(capsys, writable_real_root, real_manifest_rows, tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", real_manifest_rows[:1])
    code, text = prepare_with(capsys, writable_real_root, manifest, tmp_path)
    assert code == 1 and "has a header but no rows" in text


def test_ids_in_another_letter_case_are_refused_saying_so(capsys, writable_real_root, real_manifest_rows, tmp_path):
    rows = [real_manifest_rows[0], *([row[0].upper(), *row[1:]] for row in real_manifest_rows[1:])]
    code, text = prepare_with(capsys, writable_real_root, write_manifest(tmp_path / "m.csv", rows), tmp_path)
    assert code == 1
    assert "differ from the file names only in letter case" in text


def test_field_over_the_csv_size_limit_is_refused_naming_the_line(
    capsys, writable_real_root, real_manifest_rows, tmp_path
):
    rows = [*real_manifest_rows[:3], ["x" * (csv.field_size_limit() + 1), "0", "p", "train", "0"]]
    code, text = prepare_with(capsys, writable_real_root, write_manifest(tmp_path / "m.csv", rows), tmp_path)
    assert code == 1 and "malformed splits manifest at line 4" in text and "field larger than field limit" in text


def test_one_patient_in_two_splits_is_refused_naming_the_patient(
    capsys, writable_real_root, real_manifest_rows, tmp_path
):
    rows = [list(row) for row in real_manifest_rows]
    first, second = rows[1], rows[2]
    second[2] = first[2]
    second[3] = "test" if first[3] != "test" else "train"
    second[4] = first[4]
    code, text = prepare_with(capsys, writable_real_root, write_manifest(tmp_path / "m.csv", rows), tmp_path)
    assert code == 1
    assert f"patient {first[2]} in splits" in text and "leaks them" in text


def test_same_image_twice_with_different_splits_is_refused_naming_both_lines(
    capsys, writable_real_root, real_manifest_rows, tmp_path
):
    row = real_manifest_rows[1]
    other = "test" if row[3] != "test" else "train"
    rows = [*real_manifest_rows, [*row[:3], other, row[4]]]
    code, text = prepare_with(capsys, writable_real_root, write_manifest(tmp_path / "m.csv", rows), tmp_path)
    assert code == 1
    assert f"{row[0]} (line 2: {row[3]} fold {row[4]}; line {len(rows)}: {other} fold {row[4]})" in text


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [(4, "99", "fold 99 is out of range (-1 to 4)"), (3, "holdout", "unknown split 'holdout'"), (1, "2", "label 2")],
    ids=["fold_99", "unknown_split", "label_2"],
)
def test_out_of_range_values_are_refused_naming_the_line(
    capsys, writable_real_root, real_manifest_rows, tmp_path, column, value, reason
):
    rows = [list(row) for row in real_manifest_rows]
    rows[7][column] = value
    code, text = prepare_with(capsys, writable_real_root, write_manifest(tmp_path / "m.csv", rows), tmp_path)
    assert code == 1 and f"line 8: {reason}" in text


def test_missing_manifest_file_is_a_usage_error(capsys, writable_real_root, tmp_path):
    code, text = prepare_with(capsys, writable_real_root, tmp_path / "nowhere.csv", tmp_path)
    assert code == 2 and "no such file" in text


def test_bom_and_semicolons_from_a_spreadsheet_resave_are_read_as_the_same_manifest(
    capsys, writable_real_root, real_manifest_rows, tmp_path
):
    manifest = write_manifest(tmp_path / "m.csv", real_manifest_rows, delimiter=";", bom=True)
    code, text = prepare_with(capsys, writable_real_root, manifest, tmp_path)
    assert code == 0, text
    written = next((tmp_path / "cache").rglob("splits_manifest.csv")).read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(written))) == real_manifest_rows
