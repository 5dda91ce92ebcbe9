"""File and folder names in another encoding (GBK bytes), and input paths that are not files or folders.

The names are real bytes on disk: ``os.rename`` to the GBK encoding of a Chinese name, as ``unzip`` leaves
them when the zip was made on a Chinese Windows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bad_inputs import NEG, run_cli

GBK_NAME = "阴性样本"


def rename_to_gbk(path: Path, stem: str = GBK_NAME) -> Path:
    """Rename ``path`` to ``stem`` in GBK bytes (keeping its suffix); returns the new path."""
    target = os.fsencode(path.parent) + b"/" + stem.encode("gbk") + os.fsencode(path.suffix)
    os.rename(os.fsencode(path), target)
    return Path(os.fsdecode(target))


@pytest.fixture
def gbk_named_image(writable_real_root: Path) -> Path:
    """The real sample with one negative JPEG renamed to a GBK-encoded Chinese name."""
    first = sorted((writable_real_root / NEG).glob("IM-*.jpeg"))[0]
    return rename_to_gbk(first)


def test_gbk_file_name_is_left_out_with_a_readable_name_and_prepare_succeeds(
    capsys, writable_real_root, gbk_named_image, tmp_path
):
    code, out, _ = run_cli(capsys, "prepare", writable_real_root, "--cache-dir", tmp_path / "cache")
    assert code == 0
    assert f"{NEG}/{GBK_NAME}.jpeg [GBK bytes]: file name is not UTF-8" in out
    assert "convmv -f gbk -t utf-8" in out


def test_audit_json_with_a_gbk_file_name_is_complete_utf8(capsys, writable_real_root, gbk_named_image, tmp_path):
    target = tmp_path / "audit.json"
    code, _, _ = run_cli(capsys, "audit", writable_real_root, "--json", target)
    assert code == 1
    report = json.loads(target.read_text(encoding="utf-8"))
    left_out = [name for p in report["problems"] if p["kind"] == "unusable_file" for name in p["files"]]
    assert left_out == [f"{NEG}/{GBK_NAME}.jpeg [GBK bytes]"]
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".audit.json")] == []


def test_data_folder_named_in_gbk_bytes_builds(capsys, writable_real_root, tmp_path):
    parent = rename_to_gbk(writable_real_root.parent, "数据")
    code, out, _ = run_cli(capsys, "prepare", parent, "--cache-dir", tmp_path / "cache")
    assert code == 0
    assert f"{'all':<12}{36:>10}{12:>10}{48:>10}" in out


def test_fifo_as_input_is_refused_at_once(tmp_path):
    fifo = tmp_path / "download.zip"
    os.mkfifo(fifo)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from covid_ct_scan_images.cli import main; sys.exit(main())",
            "audit",
            str(fifo),
        ],
        capture_output=True,
        text=True,
        timeout=120,  # before the fix, zipfile.is_zipfile blocked here forever on the empty pipe
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 2, result.stderr
    assert "is neither a folder nor a regular file (a pipe, socket or device)" in result.stderr
    assert "Traceback" not in result.stderr
