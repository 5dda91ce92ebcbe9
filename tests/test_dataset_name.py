"""The dataset name in datasets' name-based entry points: offline after the import, never stale without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import datasets
import datasets.inspect
import datasets.load
import pytest

import covid_ct_scan_images
from covid_ct_scan_images.builder import DATASET_NAME
from covid_ct_scan_images.cache_folders import LIBRARY_CACHE_FOLDER
from covid_ct_scan_images.registration import FACTORY_HOLDERS, _compatibility_problems


def test_installed_datasets_still_offers_what_registration_relies_on():
    # Fails loudly on a datasets release that moved dataset_module_factory, changed DatasetModule, or stopped
    # importing the factory into datasets.inspect: registration.py must then be revised.
    assert _compatibility_problems() == []


def test_no_datasets_module_keeps_an_unwrapped_dataset_module_factory():
    holders = {
        name: module.dataset_module_factory
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "datasets" and hasattr(module, "dataset_module_factory")
    }
    assert set(holders) == set(FACTORY_HOLDERS), f"datasets modules holding the factory changed: {sorted(holders)}"
    assert all(getattr(factory, "_covid_ct_wrapped", False) for factory in holders.values())


def test_registering_twice_wraps_the_factory_once():
    before = datasets.load.dataset_module_factory
    covid_ct_scan_images.register_with_datasets()
    assert datasets.load.dataset_module_factory is before
    assert datasets.inspect.dataset_module_factory is before


def test_every_name_based_entry_point_resolves_offline_after_the_import(synthetic_root: Path, cache_dir: Path):
    data_dir, cache = str(synthetic_root), str(cache_dir)
    assert datasets.get_dataset_config_names(DATASET_NAME) == ["default", "full", "resized"]
    assert datasets.get_dataset_default_config_name(DATASET_NAME) == "default"
    assert datasets.get_dataset_split_names(DATASET_NAME, data_dir=data_dir, cache_dir=cache) == [
        "train",
        "validation",
        "test",
    ]
    assert datasets.get_dataset_split_names(DATASET_NAME, "full", data_dir=data_dir, cache_dir=cache) == ["train"]
    infos = datasets.get_dataset_infos(DATASET_NAME, data_dir=data_dir, cache_dir=cache)
    assert sorted(infos) == ["default", "full", "resized"]
    assert "fold" in infos["full"].features
    builder = datasets.load_dataset_builder(DATASET_NAME, "full", data_dir=data_dir, cache_dir=cache)
    assert isinstance(builder, covid_ct_scan_images.CovidCTScanImages)
    dataset = datasets.load_dataset(DATASET_NAME, data_dir=data_dir, cache_dir=cache)
    assert dataset["train"].num_rows + dataset["validation"].num_rows + dataset["test"].num_rows == 60


def test_builds_live_in_a_cache_folder_not_named_like_the_dataset(synthetic_root: Path, cache_dir: Path):
    built = covid_ct_scan_images.prepare(synthetic_root, cache_dir=cache_dir).cache_dir
    assert built.is_relative_to(cache_dir / LIBRARY_CACHE_FOLDER)
    assert not (cache_dir / DATASET_NAME).exists()


def test_bare_name_without_the_import_fails_instead_of_returning_a_cached_build(
    synthetic_root: Path, cache_dir: Path, tmp_path: Path
):
    covid_ct_scan_images.prepare(synthetic_root, cache_dir=cache_dir)
    # run outside the repository, whose package folder `covid_ct_scan_images/` datasets would take for a dataset
    code = (
        "import datasets\n"
        f"datasets.load_dataset({DATASET_NAME!r}, data_dir={str(synthetic_root)!r}, cache_dir={str(cache_dir)!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode != 0, "a bare-name load must not succeed without the library"
    assert "Using the latest cached version" not in result.stderr
    assert f"ConnectionError: Couldn't reach '{DATASET_NAME}' on the Hub" in result.stderr


def test_other_names_pass_through_to_datasets_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # datasets looks for data files of "csv" under the working folder (a venv: minutes)
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    assert datasets.get_dataset_config_names("csv") == ["default"]
    loaded = datasets.load_dataset("csv", data_files=str(table), cache_dir=str(tmp_path / "cache"), split="train")
    assert loaded["a"] == [1, 2]


@pytest.mark.parametrize(
    "first_imports",
    [
        "import covid_ct_scan_images\nimport datasets\n",
        "import datasets\nimport covid_ct_scan_images\n",
        "import covid_ct_scan_images\nimport importlib.util\nassert importlib.util.find_spec('datasets')\n"
        "from datasets import load_dataset_builder\nimport datasets\n",
    ],
    ids=["library-first", "datasets-first", "library-then-availability-check"],
)
def test_the_name_resolves_whichever_is_imported_first(
    first_imports: str, synthetic_root: Path, cache_dir: Path, tmp_path: Path
):
    # The library imports datasets on first use only; the name must resolve whatever the order of the imports,
    # also after something (transformers does) asked importlib whether datasets is installed.
    code = first_imports + (
        f"builder = datasets.load_dataset_builder({DATASET_NAME!r}, 'full', data_dir={str(synthetic_root)!r}, "
        f"cache_dir={str(cache_dir)!r})\n"
        "print(type(builder).__module__, datasets.get_dataset_config_names('covid_ct_scan_images'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(None, 1) == ["covid_ct_scan_images.builder", "['default', 'full', 'resized']\n"]

