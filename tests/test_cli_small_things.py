"""`covid-ct --version`, `python -m covid_ct_scan_images`, and `covid-ct demo` saying where its folder is."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import datasets
import pytest

import covid_ct_scan_images
from covid_ct_scan_images.cli import main as covid_ct

REPOSITORY = Path(__file__).resolve().parents[1]


def test_version_names_library_dataset_and_datasets_versions(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as stopped:
        covid_ct(["--version"])
    assert stopped.value.code == 0
    expected = (
        f"covid-ct {covid_ct_scan_images.__version__} (dataset version {covid_ct_scan_images.DATASET_VERSION}, "
        f"datasets {datasets.__version__})"
    )
    assert capsys.readouterr().out.strip() == expected


def test_python_dash_m_runs_the_command_line(tmp_path: Path):
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    version = subprocess.run(
        [sys.executable, "-m", "covid_ct_scan_images", "--version"], capture_output=True, text=True, env=environment
    )
    assert version.returncode == 0 and version.stdout.startswith("covid-ct ")
    missing = tmp_path / "no-such-download"
    usage = subprocess.run(
        [sys.executable, "-m", "covid_ct_scan_images", "audit", str(missing)],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert usage.returncode == 2
    assert f"covid-ct audit: error: {missing}: no such file or folder" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_demo_says_where_its_temporary_folder_is(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert covid_ct(["demo", "--negatives", "20", "--positives", "8", "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    (folder,) = tmp_path.glob("covid-ct-demo-*")
    assert f"The synthetic download stays in the temporary folder {folder}\n" in out
    assert f"rm -r {str(folder)!r}" in out


def test_demo_with_output_folder_does_not_call_it_temporary(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
):
    output = tmp_path / "demo"
    assert (
        covid_ct(
            ["demo", "--output", str(output), "--negatives", "20", "--positives", "8", "--cache-dir", str(cache_dir)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"synthetic raw download written to {output}" in out
    assert "temporary folder" not in out
