"""Helpers for the export, card and push tests (the ``messy_export`` fixture itself is in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bad_inputs import read_rows, write_rows

from covid_ct_scan_images.cache_folders import LIBRARY_CACHE_FOLDER
from covid_ct_scan_images.export import ExportResult
from covid_ct_scan_images.layout import folder_for_label
from covid_ct_scan_images.synthetic import make_synthetic_download

#: Bootstrap resamples for the shortcut probes in tests (enough for intervals, fast).
TEST_BOOTSTRAP = 20

#: The Hub repository the shared export is made for (its card's loading example names it).
TEST_REPO = "someone/covid_ct_scan_images"


def make_messy_download(parent: Path) -> Path:
    """A synthetic download (20 negatives, 8 positives) plus one byte-identical copy and one broken file."""
    root = make_synthetic_download(parent, n_negative=20, n_positive=8, max_side=400)
    negatives = root / folder_for_label(0)
    first = sorted(negatives.glob("*.jpeg"))[0]
    rows = read_rows(root)
    shutil.copyfile(first, negatives / f"zz-copy-of-{first.name}")
    (negatives / "IM-9002-0001.jpeg").write_text("<html><body>502 Bad Gateway</body></html>", encoding="utf-8")
    write_rows(root, [*rows, (f"zz-copy-of-{first.name}", 0), ("IM-9002-0001.jpeg", 0)])
    return root


def cache_of(export: ExportResult) -> Path:
    """The datasets cache folder an export was built in (``<cache>/<library folder>/<name>/<config>/...``)."""
    built = export.builds["default"].cache_dir
    return next(folder.parent for folder in built.parents if folder.name == LIBRARY_CACHE_FOLDER)


def download_of(export: ExportResult) -> Path:
    """The raw download root an export was built from."""
    return Path(export.builds["default"].report.root)

