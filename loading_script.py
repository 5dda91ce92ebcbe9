"""Single-file entry for the COVID-19-CT SCAN IMAGES dataset (Tianchi 93666; chest radiographs, not CT).

* ``python loading_script.py PATH`` builds the dataset, exactly like ``covid-ct prepare PATH``.
* ``from loading_script import CovidCTScanImages`` gives the ``datasets`` builder class.

datasets 5.x no longer runs loading scripts, so ``datasets.load_dataset("loading_script.py")``
raises; use ``import covid_ct_scan_images`` and ``datasets.load_dataset("covid_ct_scan_images",
data_dir=PATH)`` instead. All logic lives in the ``covid_ct_scan_images`` package.
"""

from __future__ import annotations

import sys

from covid_ct_scan_images import CovidCTScanImages
from covid_ct_scan_images.cli import main

__all__ = ["CovidCTScanImages"]

if __name__ == "__main__":
    sys.exit(main(["prepare", *sys.argv[1:]]))
