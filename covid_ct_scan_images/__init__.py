"""covid_ct_scan_images: the Tianchi "COVID-19-CT SCAN IMAGES" download as a versioned HF dataset.

The images are chest radiographs, not CT. Positives (adult COVID-19 cases from Cohen et al.) and
negatives (pediatric radiographs from Kermany et al. 2018) differ by source and age, so a model
can separate them without learning the disease. Read the dataset card before using it.

Importing the package also makes ``datasets.load_dataset("covid_ct_scan_images", data_dir=...)``
resolve to this library's builder (see :mod:`covid_ct_scan_images.registration`). datasets itself is
imported on first use of a name that needs it, so the commands that never build (``covid-ct audit``,
``covid-ct shortcuts``) start without it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .layout import CLASS_NAMES, DATASET_NAME
from .registration import register_when_datasets_is_imported, register_with_datasets
from .versions import DATASET_VERSION

if TYPE_CHECKING:
    from .api import PreparedDataset, load_dataset, prepare
    from .builder import CovidCTScanImages
    from .manifest import manifest_hash

#: Public names served from the module that defines them on first use (these import datasets).
_LAZY_NAMES = {
    "CovidCTScanImages": "builder",
    "PreparedDataset": "api",
    "load_dataset": "api",
    "manifest_hash": "manifest",
    "prepare": "api",
}

try:
    __version__ = version("covid_ct_scan_images")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = DATASET_VERSION

register_when_datasets_is_imported()


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        return getattr(import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
