"""The private datasets behaviour the builder relies on (covid_ct_scan_images/datasets_internals.py).

Each test fails when a datasets release changes what the builder relies on, naming what to revisit.
"""

from __future__ import annotations

import pathlib
from pathlib import Path

import datasets
import datasets.streaming
import pytest

from covid_ct_scan_images import builder as builder_module
from covid_ct_scan_images.datasets_internals import FilesBesideTheData, skip_streaming_extension

# The tiny builder below lives in this module, which datasets would otherwise patch (pathlib included).
skip_streaming_extension(__name__)


class _TinyBuilder(FilesBesideTheData, datasets.GeneratorBasedBuilder):
    """One split of two rows; records where its extra files were written."""

    fail_in_hook = False

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(features=datasets.Features({"x": datasets.Value("int32")}))

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN)]

    def _generate_examples(self):
        yield 0, {"x": 1}
        yield 1, {"x": 2}

    def files_beside_the_data(self) -> dict[str, str]:
        self.written_in = self._output_dir
        if self.fail_in_hook:
            raise RuntimeError("the input changed")
        return {"extra.txt": "written with the data"}


def test_extra_files_are_written_in_the_folder_datasets_renames_into_place(tmp_path):
    builder = _TinyBuilder(cache_dir=str(tmp_path), dataset_name="tiny")
    builder.download_and_prepare()
    published = Path(builder.cache_dir)
    assert (published / "extra.txt").read_text(encoding="utf-8") == "written with the data"
    # Written into the temporary folder, not the published one: that is what makes them atomic with the data.
    assert Path(builder.written_in) != published, (
        "datasets no longer points _output_dir at a temporary folder during the build; "
        "FilesBesideTheData would write into the published folder: revisit datasets_internals.py"
    )
    assert builder.as_dataset(split="train")["x"] == [1, 2]


def test_a_failing_extra_file_leaves_no_build_behind(tmp_path):
    builder = _TinyBuilder(cache_dir=str(tmp_path), dataset_name="tiny")
    builder.fail_in_hook = True
    with pytest.raises(RuntimeError, match="the input changed"):
        builder.download_and_prepare()
    assert not Path(builder.cache_dir).exists()
    assert not any(path.name == datasets.config.DATASET_INFO_FILENAME for path in tmp_path.rglob("*"))


def test_datasets_streaming_extension_leaves_the_builder_module_alone():
    datasets.streaming.extend_module_for_streaming(builder_module.__name__, datasets.DownloadConfig())
    assert builder_module.Path is pathlib.Path, (
        "datasets patched the builder module for streaming although it carries _patched_for_streaming: "
        "the mark changed upstream; revisit datasets_internals.skip_streaming_extension"
    )
    assert "open" not in vars(builder_module)
