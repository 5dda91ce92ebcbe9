"""covid_ct_scan_images: the Tianchi "COVID-19-CT SCAN IMAGES" download as a versioned HF dataset.

The images are chest radiographs, not CT. Positives (adult COVID-19 cases from Cohen et al.) and
negatives (pediatric radiographs from Kermany et al. 2018) differ by source and age, so a model
can separate them without learning the disease. Read the dataset card before using it.

Importing the package also makes ``datasets.load_dataset("covid_ct_scan_images", data_dir=...)``
resolve to this library's builder (see :mod:`covid_ct_scan_images.registration`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .api import PreparedDataset, load_dataset, prepare
from .builder import DATASET_NAME, DATASET_VERSION, CovidCTScanImages
from .layout import CLASS_NAMES
from .manifest import manifest_hash
from .registration import register_with_datasets

try:
    __version__ = version("covid_ct_scan_images")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = DATASET_VERSION

register_with_datasets()

__all__ = [
    "CLASS_NAMES",
    "DATASET_NAME",
    "DATASET_VERSION",
    "CovidCTScanImages",
    "PreparedDataset",
    "__version__",
    "load_dataset",
    "manifest_hash",
    "prepare",
    "register_with_datasets",
]
