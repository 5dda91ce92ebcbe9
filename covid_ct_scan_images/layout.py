"""The one place that knows the raw download's names: folders, sheet, classes.

Every other module imports these constants instead of spelling the names again.
"""

from __future__ import annotations

#: Name the dataset is known by (``datasets.load_dataset("covid_ct_scan_images")``).
DATASET_NAME = "covid_ct_scan_images"

#: Name of the dataset root folder inside the Tianchi download.
DATASET_FOLDER = "COVID-19-CT SCAN IMAGES_COVID_datasets"

#: Label names in ``ClassLabel`` order: index 0 is negative, 1 is positive.
CLASS_NAMES: tuple[str, str] = ("negative", "positive")

#: Class folder name -> label index.
CLASS_FOLDERS: dict[str, int] = {
    "COVID-19-CT SCAN IMAGES_Neg_Samples_datasets": 0,
    "COVID-19-CT SCAN IMAGES_Pos_Samples_datasets": 1,
}

#: The sheet that lists the image names (its columns are not documented upstream).
SHEET_NAME = "Train.xls"

#: File extensions (lower case) that are treated as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})

#: Where the dataset is downloaded by hand (it needs a login, so the library never fetches it).
HOMEPAGE = "https://tianchi.aliyun.com/dataset/93666"


def folder_for_label(label: int) -> str:
    """Return the class folder name that holds images of ``label``."""
    for folder, folder_label in CLASS_FOLDERS.items():
        if folder_label == label:
            return folder
    raise ValueError(f"unknown label {label!r}; expected one of {sorted(CLASS_FOLDERS.values())}")
