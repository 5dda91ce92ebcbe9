"""The ``datasets`` builder: configs, features, version and citation, and the examples it writes.

The builder is declarative: finding, checking and splitting the images is
:func:`covid_ct_scan_images.plan.plan_dataset`; the builder only turns the plan into Arrow rows
(original file bytes embedded) and saves the split manifest and the check report beside them.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import datasets

from .audit_report import readable_name
from .cache_folders import library_cache_root, library_work_dir
from .datasets_internals import FilesBesideTheData, skip_streaming_extension
from .errors import DatasetError
from .fingerprint import input_fingerprint
from .freshness import RECORD_FILENAME, input_record
from .inventory import usable_cores
from .layout import CLASS_NAMES, DATASET_NAME, HOMEPAGE
from .locate import locate, resolve_data_dir
from .plan import BuildOptions, DatasetPlan, PlannedImage, images_in_row_order, plan_dataset
from .resized import RESIZED_JPEG_QUALITY, RESIZED_MAX_SIDE, ResizedImage, resized_jpeg
from .splits import SPLIT_NAMES, manifest_text
from .versions import DATASET_VERSION

Item = TypeVar("Item")
Value = TypeVar("Value")

# datasets would wrap this module's file functions for streaming on every builder construction; the builder
# only reads local files (see datasets_internals for what the mark relies on).
skip_streaming_extension(__name__)

#: Mode every config decodes its images to (``datasets.Image(mode=...)``); the stored bytes stay the files'.
#: ``ds.cast_column("image", datasets.Image(mode="L"))`` gives grayscale instead.
DECODED_IMAGE_MODE = "RGB"

#: Files saved next to the Arrow cache of every build.
MANIFEST_FILENAME = "splits_manifest.csv"
REPORT_FILENAME = "audit_report.json"

_DESCRIPTION = """\
Chest radiographs (X-ray, not CT despite the name) from the Tianchi "COVID-19-CT SCAN IMAGES"
dataset (93666): 58 COVID-19 positive images from Cohen et al.'s covid-chestxray-dataset (adults,
many hospitals and publications) and 1342 negative images, all but one from Kermany et al. 2018
(children aged 1-5, one hospital). The label coincides with source and age: a model can score
high by learning the source rather than the disease. Not for clinical use.
"""

_CITATION = """\
@misc{tianchi93666,
  title = {COVID-19-CT SCAN IMAGES},
  howpublished = {Tianchi, Alibaba Cloud, dataset 93666},
  url = {https://tianchi.aliyun.com/dataset/93666}
}
@article{cohen2020covid,
  title = {COVID-19 Image Data Collection: Prospective Predictions Are the Future},
  author = {Joseph Paul Cohen and Paul Morrison and Lan Dao and Karsten Roth and Tim Q Duong and Marzyeh Ghassemi},
  journal = {arXiv 2006.11988},
  year = {2020}
}
@article{kermany2018identifying,
  title = {Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning},
  author = {Daniel S. Kermany and Michael Goldbaum and Wenjia Cai and others},
  journal = {Cell},
  volume = {172},
  number = {5},
  pages = {1122--1131.e9},
  year = {2018},
  doi = {10.1016/j.cell.2018.02.010}
}
"""

_LICENSE = (
    "Mixed: Kermany et al. images CC BY 4.0; Cohen et al. images under per-image licences, many unstated; "
    "redistribution also subject to the Tianchi terms of use."
)


@dataclass
class CovidCTConfig(datasets.BuilderConfig, BuildOptions):
    """A config of the dataset plus the options (:class:`BuildOptions`) for reading and checking the raw download."""

    def build_options(self) -> BuildOptions:
        """The reading and checking options of this config."""
        return BuildOptions(**{name: getattr(self, name) for name in BuildOptions.__dataclass_fields__})


class CovidCTScanImages(FilesBesideTheData, datasets.GeneratorBasedBuilder):
    """COVID-19-CT SCAN IMAGES (Tianchi 93666): chest radiographs, COVID-19 positive vs negative."""

    VERSION = datasets.Version(DATASET_VERSION)
    BUILDER_CONFIG_CLASS = CovidCTConfig
    BUILDER_CONFIGS = [  # noqa: RUF012 (datasets reads this class attribute)
        CovidCTConfig(
            name="default",
            version=VERSION,
            description="train / validation / test = 70 / 15 / 15 %, stratified by label, grouped by patient",
        ),
        CovidCTConfig(
            name="full",
            version=VERSION,
            description="one train split with every image and a `fold` column (0-4) for 5-fold cross-validation",
        ),
        CovidCTConfig(
            name="resized",
            version=VERSION,
            description=(
                f"the `default` splits with REDUCED images for fast training input: each image upright, 8-bit L or "
                f"RGB (decoded as RGB like every config), longer side at most {RESIZED_MAX_SIDE} px, JPEG quality "
                f"{RESIZED_JPEG_QUALITY}; the other "
                "columns (width, height, sha256, mode, exif_orientation) describe the original file"
            ),
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"
    # Rows per Arrow record batch while writing. datasets' default for image features (100 rows, ~60 MB of
    # radiographs) allocates fresh memory for every batch, and faulting that memory in dominates the write;
    # 4-row batches (~2.4 MB) reuse the same memory. Reading is unaffected.
    DEFAULT_WRITER_BATCH_SIZE = 4

    def __init__(self, *args, data_dir: str | None = None, cache_dir: str | None = None, **kwargs):
        # Options left at their defaults are dropped, so that equal builds share one cache folder
        # (datasets derives the folder name from the keyword arguments given).
        for name, option in BuildOptions.__dataclass_fields__.items():
            if name in kwargs and kwargs[name] == option.default:
                del kwargs[name]
        raw_path = resolve_data_dir(data_dir)
        located = locate(raw_path, lambda: library_work_dir(cache_dir))
        self._input_fingerprint = input_fingerprint(located, kwargs.get("splits_manifest"), DATASET_VERSION)
        kwargs["hash"] = self._input_fingerprint
        kwargs.setdefault("dataset_name", DATASET_NAME)
        # datasets makes the cache folder's name from data_dir and needs it UTF-8: a folder named in GBK
        # bytes is keyed by its readable form (the builder reads the files through ``located``, not data_dir)
        data_dir_key = readable_name(str(raw_path.resolve()))
        super().__init__(*args, data_dir=data_dir_key, cache_dir=str(library_cache_root(cache_dir)), **kwargs)
        self.located = located
        self.plan: DatasetPlan | None = None

    def _info(self) -> datasets.DatasetInfo:
        features = {
            # Decoding applies the EXIF orientation and converts to one mode, so every row stacks into the same
            # tensor shape; the stored bytes stay the original files (see README, "Configs and columns").
            "image": datasets.Image(mode=DECODED_IMAGE_MODE),
            "label": datasets.ClassLabel(names=list(CLASS_NAMES)),
            "image_id": datasets.Value("string"),
            "patient_id": datasets.Value("string"),
            "source": datasets.Value("string"),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "sha256": datasets.Value("string"),
            "mode": datasets.Value("string"),
            "exif_orientation": datasets.Value("int32"),
        }
        if self.config.name == "full":
            features["fold"] = datasets.Value("int32")
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=datasets.Features(features),
            supervised_keys=("image", "label"),
            homepage=HOMEPAGE,
            citation=_CITATION,
            license=_LICENSE,
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        self.plan = plan_dataset(self.located, self.config.build_options())
        if self.config.name == "full":
            return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"images": self.plan.images})]
        empty = [
            split for split in SPLIT_NAMES if not any(image.assignment.split == split for image in self.plan.images)
        ]
        if empty:  # only a pinned manifest can do this: the assignment always fills every split
            raise DatasetError(
                f"{self.config.splits_manifest}: the splits manifest leaves split(s) {', '.join(empty)} without any "
                "image of the data; give the manifest of a `default` build of this download."
            )
        return [
            datasets.SplitGenerator(
                name=split,
                gen_kwargs={"images": [image for image in self.plan.images if image.assignment.split == split]},
            )
            for split in SPLIT_NAMES
        ]

    def _generate_examples(self, images: list[PlannedImage]):
        # The bytes are read a second time here (holding every image in memory would not scale) but not
        # hashed again: a file that changes after the inventory changes its size or modification time, which
        # the fingerprint check in `files_beside_the_data` catches before the build is published.
        with_fold = self.config.name == "full"
        ordered = images_in_row_order(images)
        for image, (data, stored_name) in zip(ordered, self._stored_images(ordered), strict=True):
            example = {
                "image": {"bytes": data, "path": stored_name},
                "label": image.assignment.label,
                "image_id": image.file.file_name,
                "patient_id": image.assignment.patient_id,
                "source": image.source,
                "width": image.file.width,
                "height": image.file.height,
                "sha256": image.file.sha256,
                "mode": image.file.mode,
                "exif_orientation": image.file.exif_orientation,
            }
            if with_fold:
                example["fold"] = image.assignment.fold
            yield image.file.file_name, example

    def _stored_images(self, images: list[PlannedImage]) -> Iterator[tuple[bytes, str]]:
        """(bytes, file name) to store for each image, in order: the original file, or its reduced copy."""

        def original(image: PlannedImage) -> bytes:
            data = image.file.path.read_bytes()
            if len(data) != image.file.size_bytes:
                raise DatasetError(f"{image.file.path}: the file changed while the dataset was being built; run again.")
            return data

        if self.config.name != "resized":
            # The next files are read while datasets encodes and writes this one (reading releases the GIL).
            for image, data in zip(images, _computed_ahead(original, images, workers=1, ahead=8), strict=True):
                yield data, image.file.file_name
            return

        def reduced(image: PlannedImage) -> ResizedImage:
            return resized_jpeg(original(image))

        cores = usable_cores()  # Pillow releases the GIL while it decodes
        smaller_images = _computed_ahead(reduced, images, workers=cores, ahead=4 * cores)
        for image, smaller in zip(images, smaller_images, strict=True):
            yield smaller.data, f"{Path(image.file.file_name).stem}.jpg"

    def _input_changed(self) -> bool:
        """Whether any raw file was added, removed or changed (size, mtime) since the builder was made."""
        splits_manifest = self.config.splits_manifest
        return input_fingerprint(self.located, splits_manifest, DATASET_VERSION) != self._input_fingerprint

    def files_beside_the_data(self) -> dict[str, str]:
        """The split manifest, the audit report and the input record, checked against a change of the input.

        Runs after the splits are written, inside the folder datasets has not yet renamed into place, so a raw
        file that changed during the build stops it before anything is published.
        """
        if self.plan is None:
            return {}
        if self._input_changed():
            raise DatasetError(
                f"{self.located.root}: files changed while the dataset was being built (size or modification time "
                "differs from the start of the build); run again."
            )
        return {
            MANIFEST_FILENAME: manifest_text(self.plan.assignments()),
            REPORT_FILENAME: self.plan.report.to_json(),
            RECORD_FILENAME: input_record(self.located, self.plan.file_hashes),
        }


def _computed_ahead(function: Callable[[Item], Value], items: list[Item], workers: int, ahead: int) -> Iterator[Value]:
    """``function(item)`` for each item, in order, computed on ``workers`` threads at most ``ahead`` items early.

    Bounded, unlike ``ThreadPoolExecutor.map``, which would compute (here: read every file into memory) as
    fast as it can, however far behind the consumer is.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[Value]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def saved_report(cache_dir: str | os.PathLike[str]) -> dict:
    """The check report saved next to a built dataset."""
    return json.loads((Path(cache_dir) / REPORT_FILENAME).read_text(encoding="utf-8"))
