"""Every kind of bad input gets a clear, specific outcome; nothing is lost silently.

Each test builds its bad input from real bytes (JPEG/PNG encoded by Pillow, .xls written by xlwt,
.xlsx by openpyxl) on a copy of a small synthetic download, runs ``covid-ct`` in-process and checks
the outcome and the message. Zip input is in ``test_zip_input.py``, the interrupted build in
``test_interrupted_build.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import (
    NEG,
    POS,
    bomb_jpeg,
    bomb_png,
    encoded,
    first_file,
    jpeg_bytes,
    png_bytes,
    read_rows,
    run_cli,
    smooth_image,
    write_rows,
)
from PIL import Image

from covid_ct_scan_images import inventory, prepare
from covid_ct_scan_images.checks import NEAR_DUPLICATE_MAX_DISTANCE
from covid_ct_scan_images.layout import CLASS_FOLDERS, DATASET_FOLDER, SHEET_NAME
from covid_ct_scan_images.locate import locate
from covid_ct_scan_images.plan import BuildOptions, check_download

#: Size of the valid synthetic download each test breaks (the ``root`` fixture of conftest.py).
N_NEG, N_POS = 30, 10
ALL_ROW = f"{'all':<12}{N_NEG:>10}{N_POS:>10}{N_NEG + N_POS:>10}"


def add_image(root: Path, folder: str, name: str, data: bytes, label: int | None = None) -> Path:
    """Write ``data`` as ``folder/name``; with ``label``, also give it a row in the sheet."""
    path = root / folder / name
    path.write_bytes(data)
    if label is not None:
        write_rows(root, [*read_rows(root), (name, label)])
    return path


def audit(capsys, path: Path, *options: str) -> tuple[int, str]:
    """``covid-ct audit PATH OPTIONS``: (exit code, stdout + stderr)."""
    code, out, err = run_cli(capsys, "audit", path, *options)
    return code, out + err


def build(capsys, root: Path, tmp_path: Path, *options: str) -> tuple[int, str]:
    """``covid-ct prepare`` into a cache under ``tmp_path``: (exit code, stdout + stderr)."""
    code, out, err = run_cli(capsys, "prepare", root, "--cache-dir", tmp_path / "cache", *options)
    return code, out + err


def assert_stops(capsys, root: Path, tmp_path: Path, kind: str, *expected: str) -> None:
    """``audit`` exits 1 with a ``[stop] kind`` problem and ``prepare`` stops; both say every ``expected`` text."""
    code, text = audit(capsys, root)
    assert code == 1 and f"[stop] {kind}" in text, text
    assert all(part in text for part in expected), text
    code, text = build(capsys, root, tmp_path)
    assert code == 1 and "the build stopped" in text, text
    assert all(part in text for part in expected), text


# Where the download is ----------------------------------------------------------------------------


def test_path_that_does_not_exist_is_a_usage_error(capsys, tmp_path):
    code, text = audit(capsys, tmp_path / "nowhere")
    assert code == 2
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in text
    assert all(folder in text for folder in CLASS_FOLDERS)


def test_a_file_that_is_not_a_zip_is_a_usage_error_naming_the_expected_folder(capsys, tmp_path):
    not_zip = tmp_path / "IM-0001-0001.jpeg"
    not_zip.write_bytes(jpeg_bytes())
    code, text = audit(capsys, not_zip)
    assert code == 2
    assert f"{not_zip}: is a file but not a zip archive. Expected the dataset folder {DATASET_FOLDER!r}" in text


def test_a_file_named_zip_that_is_not_one_is_reported_as_a_corrupt_download(capsys, tmp_path):
    broken = tmp_path / "download.zip"
    broken.write_bytes(b"PK\x03\x04" + jpeg_bytes())  # an unfinished download: no central directory
    code, text = audit(capsys, broken)
    assert code == 1
    assert f"{broken}: is named .zip but is not a readable zip archive (an unfinished or corrupt download?)" in text


def test_folder_with_neither_class_folder_says_what_was_expected_and_found(capsys, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "IM-0001-0001.jpeg").write_bytes(jpeg_bytes())
    (tmp_path / "readme.txt").write_text("hello", encoding="utf-8")
    code, text = audit(capsys, tmp_path)
    assert code == 1
    assert "found neither class folder" in text
    assert all(repr(folder) in text for folder in CLASS_FOLDERS)
    assert "Found: images/, readme.txt" in text


def test_one_missing_class_folder_stops_naming_it(capsys, root, tmp_path):
    shutil.rmtree(root / NEG)
    assert_stops(
        capsys, root, tmp_path, "class_missing", f"no {NEG!r} folder (negative images) next to {POS!r} in {root}"
    )


# Folder names -------------------------------------------------------------------------------------


def test_renamed_and_nested_folders_are_found_with_a_note(capsys, root, tmp_path):
    (root / NEG).rename(root / "covid-19-ct scan images neg samples datasets")
    (root / POS).rename(root / "COVID 19 CT SCAN IMAGES POS SAMPLES DATASETS")
    nested = tmp_path / "unzipped" / DATASET_FOLDER
    nested.parent.mkdir()
    shutil.move(root, nested / DATASET_FOLDER)  # the zip extracted into a folder of the same name
    code, text = audit(capsys, tmp_path / "unzipped")
    assert code == 0, text
    assert f"dataset root found at {nested / DATASET_FOLDER}" in text
    assert f"class folder 'covid-19-ct scan images neg samples datasets' used as {NEG!r}" in text
    assert f"class folder 'COVID 19 CT SCAN IMAGES POS SAMPLES DATASETS' used as {POS!r}" in text
    assert f"negative kept {N_NEG}, positive kept {N_POS}" in text


# The sheet is missing -----------------------------------------------------------------------------


def test_missing_sheet_builds_from_folders_with_a_warning_and_strict_stops(capsys, root, tmp_path):
    (root / SHEET_NAME).unlink()
    code, text = audit(capsys, root)
    assert code == 1
    assert "[warning] sheet_missing" in text and "no Train.xls found; labels come from the class folders" in text
    code, text = build(capsys, root, tmp_path)
    assert code == 0, text
    assert "warning [sheet_missing]" in text
    assert ALL_ROW in text
    code, text = build(capsys, root, tmp_path, "--strict")
    assert code == 1
    assert "the build stopped: 1 problem(s) must be fixed first (--strict)" in text
    assert "no Train.xls found" in text


# The sheet cannot be read -------------------------------------------------------------------------


def _two_sheets(path: Path, rows: list[tuple[str, int]]) -> None:
    import xlwt

    workbook = xlwt.Workbook()
    for title in ("Sheet1", "Sheet2"):
        sheet = workbook.add_sheet(title)
        for index, (name, label) in enumerate(rows):
            sheet.write(index, 0, name)
            sheet.write(index, 1, label)
    workbook.save(str(path))


def _empty_sheet(path: Path, rows: list[tuple[str, int]]) -> None:
    import xlwt

    workbook = xlwt.Workbook()
    workbook.add_sheet("Sheet1")
    workbook.save(str(path))


def _csv(path: Path, rows: list[tuple[str, int]]) -> None:
    path.write_text("image_name,label\n" + "".join(f"{name},{label}\n" for name, label in rows), encoding="utf-8")


def _truncated(path: Path, rows: list[tuple[str, int]]) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _ole_garbage(path: Path, rows: list[tuple[str, int]]) -> None:
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(4096))


def _zero_bytes(path: Path, rows: list[tuple[str, int]]) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_truncated, "the workbook is corrupt or unreadable"),
        (_ole_garbage, "the workbook is corrupt or unreadable"),
        (_zero_bytes, "is empty, not an Excel .xls workbook"),
        (_csv, "is text (CSV or similar), not an Excel .xls workbook"),
        (_empty_sheet, "the workbook has no data (every sheet is empty)"),
        (_two_sheets, "the workbook has 2 sheets with data ('Sheet1', 'Sheet2')"),
    ],
    ids=["truncated", "corrupt", "zero-bytes", "csv-renamed", "empty-sheet", "several-sheets"],
)
def test_unreadable_sheet_stops_with_a_message_naming_it(capsys, root, tmp_path, breakage, expected):
    sheet = root / SHEET_NAME
    breakage(sheet, read_rows(root))
    assert_stops(capsys, root, tmp_path, "sheet_unreadable", f"{sheet}: {expected}")


def test_xlsx_renamed_to_xls_is_read_as_xlsx_and_said_so(capsys, root):
    import openpyxl

    rows = read_rows(root)
    workbook = openpyxl.Workbook()
    workbook.active.append(["image_name", "label"])
    for name, label in rows:
        workbook.active.append([name, label])
    workbook.save(root / SHEET_NAME)
    code, text = audit(capsys, root)
    assert code == 0, text
    assert "Train.xls is an .xlsx workbook with an .xls name; read it as .xlsx" in text
    assert f"negative kept {N_NEG}, positive kept {N_POS}" in text


def test_unknown_column_override_names_the_sheet(capsys, root, tmp_path):
    sheet = root / SHEET_NAME
    expected = f"{sheet}: column 'filename' not found; the sheet has columns ['image_name', 'label']"
    code, text = audit(capsys, root, "--name-column", "filename")
    assert code == 1 and expected in text


def test_sheet_saved_as_xlsx_under_its_own_name_is_found(capsys, root):
    import openpyxl

    workbook = openpyxl.Workbook()
    for row in [("image_name", "label"), *read_rows(root)]:
        workbook.active.append(list(row))
    (root / SHEET_NAME).unlink()
    workbook.save(root / "Train.xlsx")
    code, text = audit(capsys, root)
    assert code == 0, text
    assert "sheet 'Train.xlsx' used as 'Train.xls'" in text


# Sheet rows and files that do not match -----------------------------------------------------------


def test_sheet_rows_without_files_and_files_without_rows_are_listed(capsys, root, tmp_path):
    rows = read_rows(root)
    unlisted = rows[0][0]
    write_rows(root, [*rows[1:], ("IM-9999-0001.jpeg", 0)])
    code, text = audit(capsys, root)
    assert code == 1
    assert "[warning] listed_but_missing" in text and "listed in Train.xls but no such image file" in text
    assert "      IM-9999-0001.jpeg" in text
    assert "image file has no row in Train.xls; kept with its folder label" in text
    assert f"/{unlisted}\n" in text
    code, text = build(capsys, root, tmp_path)
    assert code == 0, text
    assert ALL_ROW in text  # the unlisted file is kept
    code, text = build(capsys, root, tmp_path, "--strict")
    assert code == 1 and "not_in_sheet" in text and unlisted in text


# Label conflicts ----------------------------------------------------------------------------------


def test_sheet_and_folder_disagreeing_stops_and_label_source_decides(capsys, root, tmp_path):
    rows = read_rows(root)
    flipped = next(name for name, label in rows if label == 0)
    write_rows(root, [(name, 1 if name == flipped else label) for name, label in rows])
    assert_stops(
        capsys,
        root,
        tmp_path,
        "label_conflict",
        "Train.xls and the class folder disagree on the label",
        f"{NEG}/{flipped} (folder: negative, sheet: positive)",
        "--label-source folder|sheet",
    )
    for source, label in (("sheet", 1), ("folder", 0)):
        prepared = prepare(root, cache_dir=tmp_path / f"cache-{source}", label_source=source)
        labels = {
            image_id: value
            for split in prepared.dataset.values()
            for image_id, value in zip(split["image_id"], split["label"], strict=True)
        }
        assert labels[flipped] == label
        assert any(problem.kind == "label_conflict" for problem in prepared.report.by_severity("warning"))


def test_same_name_in_both_class_folders_stops_and_lists_both(capsys, root, tmp_path):
    negative = first_file(root / NEG)
    twin = add_image(root, POS, negative.name.upper(), jpeg_bytes(seed=61))  # different bytes, same name
    code, text = audit(capsys, root)
    assert code == 1
    assert "the same file name is in both class folders" in text
    assert f"{NEG}/{negative.name}" in text and f"{POS}/{twin.name}" in text
    prepared = prepare(root, cache_dir=tmp_path / "cache", label_source="sheet")
    assert prepared.report.counts["left out"] == 1
    assert prepared.report.left_out_files() == [
        (f"{POS}/{twin.name}", "copy in the class folder the sheet disagrees with")
    ]


# Duplicates and near-duplicates -------------------------------------------------------------------


def test_identical_bytes_in_one_class_are_kept_once_and_listed(capsys, root):
    original = first_file(root / NEG)
    shutil.copyfile(original, root / NEG / "IM-9100-0001.jpeg")
    code, text = audit(capsys, root)
    assert code == 1
    assert "[left_out] duplicate_bytes" in text
    assert f"identical bytes to {NEG}/{original.name} (kept once)\n      {NEG}/IM-9100-0001.jpeg" in text
    assert f"negative kept {N_NEG}" in text


def test_identical_bytes_in_both_classes_are_a_label_conflict(capsys, root):
    original = first_file(root / NEG)
    shutil.copyfile(original, root / POS / "copied-to-positive.jpeg")
    code, text = audit(capsys, root)
    assert code == 1
    assert "[stop] label_conflict" in text and "identical bytes in both class folders" in text
    assert f"{NEG}/{original.name}" in text and f"{POS}/copied-to-positive.jpeg" in text


def test_near_duplicates_are_reported_and_kept_in_the_same_split(capsys, root, tmp_path):
    originals = sorted((root / NEG).glob("*.jp*g"))[:3]
    copies = []
    for number, original in enumerate(originals):
        with Image.open(original) as image:
            smaller = image.convert("L").resize((image.width * 3 // 4, image.height * 3 // 4))
        copies.append(
            add_image(root, NEG, f"NORMAL2-IM-98{number}0-0001.jpeg", encoded(smaller, "JPEG", quality=70), 0)
        )
    code, text = audit(capsys, root)
    assert code == 0, text  # notes only
    for original, copy in zip(originals, copies, strict=True):
        assert f"{NEG}/{original.name}\n      {NEG}/{copy.name}" in text
    assert text.count("kept in the same split") == 3
    prepared = prepare(root, cache_dir=tmp_path / "cache")
    split_of = {image_id: name for name, split in prepared.dataset.items() for image_id in split["image_id"]}
    for original, copy in zip(originals, copies, strict=True):
        assert split_of[original.name] == split_of[copy.name]


def test_distinct_pictures_are_not_near_duplicates(root):
    checked = check_download(locate(root, root.parent / "work"), BuildOptions())
    assert not [problem for problem in checked.report.problems if problem.kind == "near_duplicate"]


def test_near_duplicate_threshold_on_the_real_sample_links_only_the_follow_up_film(real_sample, tmp_path):
    """Different children 2 bits apart in a 64-bit hash are not linked; the same patient's follow-up film is."""
    checked = check_download(locate(real_sample, tmp_path), BuildOptions())
    pairs = [
        sorted(Path(name).name[:8] for name in problem.files)
        for problem in checked.report.problems
        if problem.kind == "near_duplicate"
    ]
    assert pairs == [["E63574A7", "F4341CE7"]]
    assert NEAR_DUPLICATE_MAX_DISTANCE < 64


# Unusable files -----------------------------------------------------------------------------------


def test_unusable_files_are_left_out_with_the_reason(capsys, root, tmp_path):
    truncated_jpeg = jpeg_bytes(seed=81)
    truncated_png = png_bytes(seed=82)
    bad = {
        "IM-9201-0001.jpeg": (b"", "empty file (0 bytes)"),
        "IM-9202-0001.jpeg": (truncated_jpeg[: len(truncated_jpeg) * 2 // 3], "truncated or corrupt JPEG data"),
        "IM-9203-0001.png": (truncated_png[: len(truncated_png) // 2], "truncated or corrupt PNG data"),
        "IM-9204-0001.jpg": (b"<!DOCTYPE html><html><body>Login required</body></html>", "text or HTML, not an image"),
        "IM-9205-0001.jpeg": (encoded(smooth_image(), "BMP"), "unsupported image format BMP (expected JPEG or PNG)"),
        "IM-9206-0001.jpeg": (b"\xff\xd8\xff\xe0" + os.urandom(2000), "not an image Pillow can read"),
        "IM-9207-0001.tif": (encoded(smooth_image(), "TIFF"), "extension '.tif' is not .png/.jpg/.jpeg"),
    }
    for name, (data, _) in bad.items():
        add_image(root, NEG, name, data)
    code, text = audit(capsys, root)
    assert code == 1
    for name, (_, reason) in bad.items():
        assert f"{reason}" in text
        assert text.index(f"{NEG}/{name}") > text.index(reason)
    code, text = build(capsys, root, tmp_path)
    assert code == 0, text
    assert f"left out {len(bad)} file(s)" in text
    for name, (_, reason) in bad.items():
        assert f"{NEG}/{name}: {reason}" in text
    assert ALL_ROW in text


def test_png_named_jpg_is_kept_with_a_note(capsys, root):
    jpeg = first_file(root / NEG)
    jpeg.write_bytes(png_bytes(seed=83))
    code, text = audit(capsys, root)
    assert code == 0, text
    assert f"PNG data with a .jpeg extension\n      {NEG}/{jpeg.name}" in text
    assert f"negative kept {N_NEG}" in text


# Decompression bombs ------------------------------------------------------------------------------


@pytest.mark.parametrize("make_bomb", [bomb_png, bomb_jpeg], ids=["png", "jpeg"])
def test_decompression_bomb_is_refused_without_allocating_pixels(tmp_path, make_bomb):
    suffix = ".png" if make_bomb is bomb_png else ".jpeg"
    bomb = tmp_path / f"bomb{suffix}"
    bomb.write_bytes(make_bomb())
    assert bomb.stat().st_size < 10_000
    script = textwrap.dedent(
        f"""
        import resource
        from pathlib import Path
        from covid_ct_scan_images.inventory import inspect_file
        record = inspect_file(Path({str(bomb)!r}), Path({str(tmp_path)!r}), 0)
        print(record.problem)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    problem, peak_mib = result.stdout.strip().splitlines()
    assert problem.startswith("declares 2,500,000,000 pixels, more than the limit of 50,000,000 pixels; refused unread")
    assert "--max-image-pixels" in problem
    assert int(peak_mib) < 1000  # the pixels alone would take 2,400 MiB


def test_pixel_limit_can_be_raised(capsys, root):
    big = add_image(root, NEG, "IM-9300-0001.png", encoded(Image.new("L", (9000, 6000), 40), "PNG"), 0)
    code, text = audit(capsys, root)
    assert code == 1
    assert "declares 9000 x 6000 pixels, more than the limit of 50,000,000 pixels" in text and big.name in text
    code, text = audit(capsys, root, "--max-image-pixels", "60000000")
    assert code == 0, text
    assert f"negative kept {N_NEG + 1}" in text


# Litter beside the images -------------------------------------------------------------------------


def test_litter_is_ignored_and_counted_never_an_image(capsys, root):
    image = first_file(root / NEG)
    (root / NEG / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (root / POS / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(100))
    (root / POS / "desktop.ini").write_text("[.ShellClassInfo]\n", encoding="utf-8")
    (root / NEG / f"._{image.name}").write_bytes(b"\x00\x05\x16\x07" + bytes(100))
    (root / NEG / "__MACOSX").mkdir()
    (root / NEG / "__MACOSX" / image.name).write_bytes(image.read_bytes())
    (root / NEG / ".hidden.jpeg").write_bytes(image.read_bytes())
    (root / POS / "empty").mkdir()
    code, text = audit(capsys, root)
    assert code == 0, text
    assert (
        f"files {N_NEG + N_POS}, negative files {N_NEG}, positive files {N_POS}, negative kept {N_NEG}, "
        f"positive kept {N_POS}, left out 0, ignored 7"
    ) in text
    assert (
        "ignored: 1 empty folder, 1 hidden file, 1 macOS archive metadata (__MACOSX), 1 macOS resource fork (._*), 1 "
        "operating-system file (.DS_Store), 1 operating-system file (Thumbs.db), 1 operating-system file (desktop.ini)"
    ) in text


# Unusual image content ----------------------------------------------------------------------------


def _exif_rotated_jpeg() -> bytes:
    image = smooth_image((300, 200), "RGB", seed=124)
    exif = image.getexif()
    exif[0x0112] = 6
    return encoded(image, "JPEG", exif=exif.tobytes())


def test_unusual_image_content_is_kept_unchanged_with_mode_and_orientation(capsys, root, tmp_path):
    sixteen_bit = Image.fromarray((np.random.default_rng(12).random((260, 300)) * 4095).astype(np.uint16))
    unusual = {
        "IM-9400-0001.png": (encoded(sixteen_bit, "PNG"), {"I;16", "I"}, 1),
        "IM-9401-0001.png": (encoded(smooth_image(mode="RGB", seed=121).convert("P"), "PNG"), {"P"}, 1),
        "IM-9402-0001.jpeg": (encoded(smooth_image(mode="CMYK", seed=122), "JPEG"), {"CMYK"}, 1),
        "IM-9403-0001.png": (png_bytes(mode="RGBA", seed=123), {"RGBA"}, 1),
        "IM-9404-0001.jpeg": (_exif_rotated_jpeg(), {"RGB"}, 6),
    }
    for name, (data, _, _) in unusual.items():
        add_image(root, NEG, name, data, 0)
    code, text = audit(capsys, root)
    assert code == 0, text
    prepared = prepare(root, cache_dir=tmp_path / "cache", config="full")
    import datasets

    rows = {
        row["image_id"]: row for row in prepared.dataset["train"].cast_column("image", datasets.Image(decode=False))
    }
    for name, (data, modes, orientation) in unusual.items():
        row = rows[name]
        assert row["image"]["bytes"] == data
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        assert row["mode"] in modes
        assert row["exif_orientation"] == orientation


# File names ---------------------------------------------------------------------------------------


def test_names_with_spaces_chinese_and_upper_case_extensions_are_kept(capsys, root, tmp_path):
    names = ["IM 9500 0001 copy.JPG", "胸部X光 阴性.JPEG", "NORMAL2-IM-9501-0001.PNG", "阳性 病例 1.jpg"]
    add_image(root, NEG, names[0], jpeg_bytes(seed=140), 0)
    add_image(root, NEG, names[1], jpeg_bytes(seed=141), 0)
    add_image(root, NEG, names[2], png_bytes(seed=142), 0)
    add_image(root, POS, names[3], jpeg_bytes(mode="RGB", seed=143), 1)
    code, text = audit(capsys, root)
    assert code == 0, text
    assert f"negative kept {N_NEG + 3}, positive kept {N_POS + 1}" in text
    prepared = prepare(root, cache_dir=tmp_path / "cache", config="full")
    assert set(names) <= set(prepared.dataset["train"]["image_id"])


# Files that cannot be read ------------------------------------------------------------------------

#: Runs ``covid-ct audit`` and ``prepare`` in a child process. When the child is root it first drops the two
#: capabilities that let root read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so that a chmod 000 file
#: is really unreadable to it, as it is to any other user: the same EACCES from the same open() call.
_UNPRIVILEGED_CLI = textwrap.dedent(
    """
    import ctypes, os, sys
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class Data(ctypes.Structure):
            _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]
        header, data = Header(0x20080522, 0), (Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            sys.exit(77)
        for item in data:
            item.effective &= ~0b110
            item.permitted &= ~0b110
        if libc.capset(ctypes.byref(header), data) != 0:
            sys.exit(77)
    from covid_ct_scan_images.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_permission_denied_is_listed_as_unreadable_not_a_crash(root, tmp_path):
    """A chmod 000 file and folder, read by a process without root's override (see ``_UNPRIVILEGED_CLI``)."""
    locked = sorted((root / NEG).glob("*.jp*g"))[0]
    locked.chmod(0)
    (root / NEG / "more").mkdir()
    (root / NEG / "more" / "IM-9650-0001.jpeg").write_bytes(jpeg_bytes(seed=150))
    (root / NEG / "more").chmod(0)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    runs = {}
    for command in (["audit", str(root)], ["prepare", str(root), "--cache-dir", str(tmp_path / "cache")]):
        result = subprocess.run(
            [sys.executable, "-c", _UNPRIVILEGED_CLI, *command], capture_output=True, text=True, env=env, timeout=300
        )
        if result.returncode == 77:
            pytest.skip("cannot drop root's file-access capabilities here (capset unavailable)")
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        runs[command[0]] = result
    assert runs["audit"].returncode == 1
    audit_out = runs["audit"].stdout
    assert f"unreadable: Permission denied\n      {NEG}/{locked.name}" in audit_out
    assert f"folder cannot be listed (Permission denied); its files are not seen\n      {NEG}/more/" in audit_out
    assert runs["prepare"].returncode == 0, runs["prepare"].stderr
    assert f"{NEG}/{locked.name}: unreadable: Permission denied" in runs["prepare"].stdout
    assert f"{NEG}/more/: folder cannot be listed" in runs["prepare"].stdout


def test_a_decoder_failing_unexpectedly_is_listed_not_a_crash(capsys, root, monkeypatch):
    victim = add_image(root, NEG, "IM-9660-0001.jpeg", jpeg_bytes(size=(333, 277), seed=160), 0)
    real_hash = inventory.perceptual_hash

    def failing(image, *args):
        if image.size == (333, 277):
            raise RuntimeError("decoder exploded")
        return real_hash(image, *args)

    monkeypatch.setattr(inventory, "perceptual_hash", failing)
    code, text = audit(capsys, root)
    assert code == 1
    assert f"could not be inspected (RuntimeError: decoder exploded)\n      {NEG}/{victim.name}" in text


def test_dangling_link_and_fifo_named_like_images_are_listed_not_read(capsys, root):
    (root / NEG / "IM-9600-0001.jpeg").symlink_to(root / "gone.jpeg")
    os.mkfifo(root / NEG / "IM-9601-0001.jpeg")  # reading it would block forever
    code, text = audit(capsys, root)
    assert code == 1
    assert f"unreadable: No such file or directory\n      {NEG}/IM-9600-0001.jpeg" in text
    assert f"not a regular file (a pipe, socket or device); not read\n      {NEG}/IM-9601-0001.jpeg" in text
