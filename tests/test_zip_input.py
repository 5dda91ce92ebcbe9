"""Zip input. Nothing is ever written outside the library's own working folder.

The zips are real archives written by :mod:`zipfile`: a member with ``..``, absolute paths, a symbolic
link (Unix mode in ``external_attr``), a member flagged as encrypted, a zip inside the zip, a member
with corrupt data, and a name stored in GBK without the UTF-8 flag, as Chinese Windows writes it.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from bad_inputs import NEG, POS, jpeg_bytes, read_rows, run_cli, write_rows

from covid_ct_scan_images import prepare
from covid_ct_scan_images.layout import DATASET_FOLDER
from covid_ct_scan_images.locate import locate

GBK_NAME = "胸片 阴性 01.jpeg"


class _GBKName(zipfile.ZipInfo):
    """A member whose name is stored in GBK with no UTF-8 flag (what Chinese Windows tools write)."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def zip_folder(root: Path, target: Path) -> zipfile.ZipFile:
    """Zip ``root`` (the dataset folder) into ``target`` as a download would hold it; left open for more."""
    archive = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            archive.write(path, f"{DATASET_FOLDER}/{path.relative_to(root).as_posix()}")
    return archive


def mark_encrypted(target: Path, member: str) -> None:
    """Set the 'encrypted' flag (bit 0) of ``member`` in its local header and its central-directory entry."""
    with zipfile.ZipFile(target) as archive:
        offset = archive.getinfo(member).header_offset
    data = bytearray(target.read_bytes())
    entry = data.index(b"PK\x01\x02")
    while True:
        name_length, extra_length, comment_length = struct.unpack("<HHH", data[entry + 28 : entry + 34])
        if struct.unpack("<I", data[entry + 42 : entry + 46])[0] == offset:
            break
        entry += 46 + name_length + extra_length + comment_length
    for flags_at in (offset + 6, entry + 8):
        data[flags_at] |= 1
    target.write_bytes(bytes(data))


@pytest.fixture
def evil_zip(root: Path, tmp_path: Path) -> Path:
    """A zip of the download with every hostile kind of member added."""
    outside = tmp_path / "outside"
    target = tmp_path / "download.zip"
    with zip_folder(root, target) as archive:
        archive.writestr("../escaped.jpeg", jpeg_bytes(seed=1))
        archive.writestr(f"{DATASET_FOLDER}/{NEG}/../../../escaped-deeper.jpeg", jpeg_bytes(seed=2))
        archive.writestr(f"{outside}/absolute.jpeg", jpeg_bytes(seed=3))
        archive.writestr("C:\\Windows\\absolute.jpeg", jpeg_bytes(seed=4))
        link = zipfile.ZipInfo(f"{DATASET_FOLDER}/{NEG}/IM-9700-0001.jpeg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr(f"{DATASET_FOLDER}/{POS}/secret.jpeg", jpeg_bytes(seed=5))
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("IM-9701-0001.jpeg", jpeg_bytes(seed=6))
        archive.writestr(f"{DATASET_FOLDER}/inner.zip", inner.getvalue())
    mark_encrypted(target, f"{DATASET_FOLDER}/{POS}/secret.jpeg")
    return target


SKIPPED = {
    "../escaped.jpeg": "path with '..' in the zip (would be written outside the extraction folder); skipped",
    f"{DATASET_FOLDER}/{NEG}/../../../escaped-deeper.jpeg": "path with '..' in the zip",
    "C:\\Windows\\absolute.jpeg": "absolute path in the zip (would be written outside the extraction folder)",
    f"{DATASET_FOLDER}/{NEG}/IM-9700-0001.jpeg": "symbolic link in the zip; skipped",
    f"{DATASET_FOLDER}/{POS}/secret.jpeg": "encrypted (password-protected) zip member; skipped",
    f"{DATASET_FOLDER}/inner.zip": "zip inside the zip; not extracted: extract it yourself and pass the folder",
}


def test_a_clean_zip_is_extracted_and_builds(capsys, root, tmp_path):
    target = tmp_path / "download.zip"
    with zip_folder(root, target) as archive:
        archive.writestr(f"__MACOSX/{DATASET_FOLDER}/{NEG}/._IM-0001-0001.jpeg", b"\x00\x05\x16\x07")
    code, out, _ = run_cli(capsys, "audit", target)
    assert code == 0, out
    assert f"extracted {target} to " in out and "negative kept 30, positive kept 10" in out
    prepared = prepare(target, cache_dir=tmp_path / "cache")
    assert sum(split.num_rows for split in prepared.dataset.values()) == 40


def test_hostile_zip_members_are_skipped_listed_and_never_written_outside(capsys, evil_zip, tmp_path):
    code, out, _ = run_cli(capsys, "audit", evil_zip)
    assert code == 1
    assert "[left_out] zip_member_skipped" in out
    for member, reason in SKIPPED.items():
        assert reason in out
        assert member in out
    assert f"{tmp_path}/outside/absolute.jpeg\n" in out

    work_dir = tmp_path / "work"
    located = locate(evil_zip, work_dir)
    written = [path for path in tmp_path.rglob("*") if "escaped" in path.name or path.name == "absolute.jpeg"]
    assert written == []
    assert not (tmp_path / "outside").exists()
    extracted = [path for path in work_dir.rglob("*")]
    assert not [path for path in extracted if path.is_symlink()]
    assert all(path.resolve().is_relative_to(work_dir.resolve()) for path in extracted)
    assert len(located.skipped_members) == 7

    prepared = prepare(evil_zip, cache_dir=tmp_path / "cache")  # default policy: skipped members are left out
    assert {name for name, _ in prepared.report.left_out_files()} >= set(SKIPPED)
    code, _, err = run_cli(capsys, "prepare", evil_zip, "--cache-dir", tmp_path / "cache", "--strict")
    assert code == 1 and "zip_member_skipped" in err


def test_gbk_zip_member_name_without_utf8_flag_is_decoded(capsys, root, tmp_path):
    write_rows(root, [*read_rows(root), (GBK_NAME, 0)])
    target = tmp_path / "download.zip"
    with zip_folder(root, target) as archive:
        archive.writestr(_GBKName(f"{DATASET_FOLDER}/{NEG}/{GBK_NAME}"), jpeg_bytes(seed=11))
    with zipfile.ZipFile(target) as archive:
        raw = next(
            info for info in archive.infolist() if info.filename.endswith(".jpeg") and not info.filename.isascii()
        )
        assert not raw.flag_bits & 0x800 and GBK_NAME not in raw.filename  # zipfile alone shows mojibake
    code, out, _ = run_cli(capsys, "audit", target)
    assert code == 0, out
    assert f"zip member name decoded from a legacy encoding: {DATASET_FOLDER}/{NEG}/{GBK_NAME}" in out
    prepared = prepare(target, cache_dir=tmp_path / "cache", config="full")
    assert GBK_NAME in prepared.dataset["train"]["image_id"]


def test_corrupt_zip_member_is_skipped_not_fatal(capsys, root, tmp_path):
    target = tmp_path / "download.zip"
    payload = jpeg_bytes(seed=12)
    with zip_folder(root, target) as archive:
        archive.writestr(f"{DATASET_FOLDER}/{NEG}/IM-9800-0001.jpeg", payload, compress_type=zipfile.ZIP_STORED)
    data = bytearray(target.read_bytes())
    start = data.index(payload)
    data[start + 100 : start + 110] = bytes(10)  # the stored CRC no longer matches
    target.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "audit", target)
    assert code == 1
    assert "corrupt or unsupported in the zip (Bad CRC-32 for file" in out
    assert f"{DATASET_FOLDER}/{NEG}/IM-9800-0001.jpeg" in out


def test_zip_bomb_member_is_not_extracted(capsys, root, tmp_path):
    target = tmp_path / "download.zip"
    with zip_folder(root, target) as archive:
        archive.writestr(f"{DATASET_FOLDER}/{NEG}/IM-9900-0001.jpeg", bytes(100 * 1024 * 1024))
    assert target.stat().st_size < 2 * 1024 * 1024
    work_dir = tmp_path / "work"
    located = locate(target, work_dir)
    assert not list(work_dir.rglob("IM-9900-0001.jpeg"))
    ((member, reason),) = located.skipped_members
    assert member.endswith("IM-9900-0001.jpeg")
    assert "to 104,857,600 bytes (a zip bomb?); not extracted" in reason


def test_a_zip_holding_only_a_zip_says_so(capsys, root, tmp_path):
    inner = tmp_path / "inner.zip"
    zip_folder(root, inner).close()
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(inner, "COVID-19-CT SCAN IMAGES.zip")
    code, _, err = run_cli(capsys, "audit", outer)
    assert code == 1
    assert f"{outer}: members of the zip were not extracted: COVID-19-CT SCAN IMAGES.zip: zip inside the zip" in err
    assert "found neither class folder" in err
