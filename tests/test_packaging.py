"""The installed package is complete: a wheel carries the reference list and the dataset card's source."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_carries_the_card_source_and_the_reference_list(tmp_path: Path) -> None:
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*build, str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("covid_ct_scan_images-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        card = archive.read("covid_ct_scan_images/dataset_card.md")
    assert card == (REPO / "dataset_card.md").read_bytes()
    assert "covid_ct_scan_images/data/reference_files.csv" in names
    assert "covid_ct_scan_images/cli/__init__.py" in names
    assert not any(name.startswith(("tests/", "baselines/", "benchmarks/")) for name in names)
