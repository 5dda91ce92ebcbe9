"""Building the dataset from real files: features, bytes, caching, determinism, entry points."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import datasets
import pytest

import covid_ct_scan_images
from covid_ct_scan_images import load_dataset, prepare
from covid_ct_scan_images.errors import DatasetError, ManualDownloadError, UsageError
from covid_ct_scan_images.layout import CLASS_FOLDERS, SHEET_NAME
from covid_ct_scan_images.synthetic import make_synthetic_download, write_sheet

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _raw_files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for folder in CLASS_FOLDERS for path in (root / folder).iterdir()}


def test_default_config_features_and_embedded_original_bytes(synthetic_root, cache_dir):
    dataset = load_dataset(synthetic_root, cache_dir=cache_dir)
    assert set(dataset) == {"train", "validation", "test"}
    features = dataset["train"].features
    assert features["label"].names == ["negative", "positive"]
    assert isinstance(features["image"], datasets.Image)
    assert "fold" not in features
    originals = _raw_files(synthetic_root)
    rows = [row for split in dataset.values() for row in split.cast_column("image", datasets.Image(decode=False))]
    assert sorted(row["image_id"] for row in rows) == sorted(originals)
    for row in rows:
        assert row["image"]["bytes"] == originals[row["image_id"]]
        assert row["source"] in {"kermany", "cohen"}
    decoded = dataset["train"][0]["image"]
    assert decoded.size == (dataset["train"][0]["width"], dataset["train"][0]["height"])


def test_full_config_has_five_patient_grouped_folds(synthetic_root, cache_dir):
    full = load_dataset(synthetic_root, config="full", cache_dir=cache_dir)
    assert list(full) == ["train"] and len(full["train"]) == 60
    folds_of = defaultdict(set)
    for row in full["train"].select_columns(["patient_id", "fold"]):
        folds_of[row["patient_id"]].add(row["fold"])
    assert all(len(folds) == 1 for folds in folds_of.values())
    assert set(full["train"]["fold"]) == {0, 1, 2, 3, 4}


def test_cache_is_reused_and_rebuilt_when_a_raw_file_changes(synthetic_root, cache_dir):
    first = prepare(synthetic_root, cache_dir=cache_dir)
    assert not first.reused and first.manifest_path.exists() and first.report_path.exists()
    second = prepare(synthetic_root, cache_dir=cache_dir)
    assert second.reused and second.cache_dir == first.cache_dir
    victim = next((synthetic_root / next(iter(CLASS_FOLDERS))).iterdir())
    victim.write_bytes(victim.read_bytes() + b"\x00")
    changed = prepare(synthetic_root, cache_dir=cache_dir)
    assert not changed.reused and changed.cache_dir != first.cache_dir
    victim.unlink()
    removed = prepare(synthetic_root, cache_dir=cache_dir)
    assert not removed.reused
    assert sum(len(split) for split in removed.dataset.values()) == 59


def test_built_dataset_survives_the_raw_folder_moving(synthetic_root, cache_dir, tmp_path):
    dataset = load_dataset(synthetic_root, cache_dir=cache_dir)
    shutil.rmtree(synthetic_root)
    image = dataset["test"][0]["image"]
    image.load()
    assert image.size[0] > 0


def test_assignment_does_not_depend_on_location_or_process(tmp_path, cache_dir):
    here = make_synthetic_download(tmp_path / "a", n_negative=45, n_positive=15, max_side=300)
    there = tmp_path / "elsewhere" / "nested"
    there.mkdir(parents=True)
    moved = Path(shutil.copytree(here, there / here.name))
    local = prepare(here, cache_dir=cache_dir).manifest_path.read_text()
    assert prepare(moved, cache_dir=tmp_path / "other-cache").manifest_path.read_text() == local
    code = (
        "import sys; from covid_ct_scan_images import prepare\n"
        "sys.stdout.write(prepare(sys.argv[1], cache_dir=sys.argv[2]).manifest_path.read_text())"
    )
    env = {**ENV, "PYTHONHASHSEED": "99"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(moved), str(tmp_path / "third-cache")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == local


def test_pinned_manifest_is_followed_and_images_missing_from_it_are_reported(synthetic_root, cache_dir, tmp_path):
    built = prepare(synthetic_root, cache_dir=cache_dir)
    lines = built.manifest_path.read_text().splitlines()
    pinned = tmp_path / "pinned.csv"
    dropped = lines[1].split(",")[0]
    pinned.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    again = prepare(synthetic_root, cache_dir=cache_dir, splits_manifest=str(pinned))
    assert again.manifest_path.read_text().splitlines() == [lines[0], *lines[2:]]
    left_out = dict(again.report.left_out_files())
    assert any(name.endswith(dropped) for name in left_out)
    assert "not in the pinned splits manifest" in next(iter(left_out.values()))


def test_datasets_load_dataset_by_name_matches_the_library(synthetic_root, cache_dir):
    ours = load_dataset(synthetic_root, cache_dir=cache_dir)
    theirs = datasets.load_dataset("covid_ct_scan_images", data_dir=str(synthetic_root), cache_dir=str(cache_dir))
    assert {name: len(split) for name, split in theirs.items()} == {name: len(split) for name, split in ours.items()}
    assert theirs["train"]["image_id"] == ours["train"]["image_id"]
    assert theirs["train"].features == ours["train"].features
    full = datasets.load_dataset("covid_ct_scan_images", "full", data_dir=str(synthetic_root), cache_dir=str(cache_dir))
    assert "fold" in full["train"].features


def test_registration_fails_loudly_when_datasets_changes(monkeypatch):
    import datasets.load

    from covid_ct_scan_images.registration import DatasetsCompatibilityError, register_with_datasets

    def incompatible_factory(path, revision=None):
        raise AssertionError("never called")

    monkeypatch.setattr(datasets.load, "dataset_module_factory", incompatible_factory)
    with pytest.raises(DatasetsCompatibilityError, match="data_dir"):
        register_with_datasets()


def test_env_var_is_used_when_no_path_is_given(synthetic_root, cache_dir, monkeypatch):
    monkeypatch.setenv("COVID_CT_DATA_DIR", str(synthetic_root.parent))
    dataset = load_dataset(cache_dir=cache_dir)
    assert sum(len(split) for split in dataset.values()) == 60


def test_manual_download_message_when_nothing_is_found(cache_dir):
    with pytest.raises(ManualDownloadError) as error:
        load_dataset(cache_dir=cache_dir)
    message = str(error.value)
    assert "tianchi.aliyun.com/dataset/93666" in message
    assert "COVID_CT_DATA_DIR" in message
    assert all(folder in message for folder in CLASS_FOLDERS)


def test_missing_path_is_a_usage_error(tmp_path, cache_dir):
    with pytest.raises(UsageError, match="no such file or folder"):
        load_dataset(tmp_path / "nowhere", cache_dir=cache_dir)


def test_sheet_disagreeing_with_a_folder_stops_the_build_and_lists_it(synthetic_root, cache_dir):
    positives = sorted((synthetic_root / list(CLASS_FOLDERS)[1]).iterdir())
    rows = [(path.name, 1) for path in positives] + [
        (path.name, 0) for path in (synthetic_root / next(iter(CLASS_FOLDERS))).iterdir()
    ]
    rows[0] = (rows[0][0], 0)
    write_sheet(synthetic_root / SHEET_NAME, rows)
    with pytest.raises(DatasetError) as error:
        load_dataset(synthetic_root, cache_dir=cache_dir)
    assert positives[0].name in str(error.value)
    assert "folder: positive, sheet: negative" in str(error.value)


def test_zip_as_downloaded(synthetic_root, cache_dir, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "download"), "zip", root_dir=synthetic_root.parent)
    from_zip = prepare(archive, cache_dir=cache_dir)
    from_folder = prepare(synthetic_root, cache_dir=tmp_path / "other")
    assert from_zip.manifest_path.read_text() == from_folder.manifest_path.read_text()
    assert prepare(archive, cache_dir=cache_dir).reused


def test_real_sample(real_sample, cache_dir):
    dataset = load_dataset(real_sample, cache_dir=cache_dir)
    split_of = {name: split_name for split_name, split in dataset.items() for name in split["image_id"]}
    rows = [row for split in dataset.values() for row in split.remove_columns("image")]
    assert len(rows) == 48 and sum(row["label"] for row in rows) == 12
    for pair in [
        ("IM-0439-0001.jpeg", "IM-0439-0001-0001.jpeg"),
        ("IM-0509-0001.jpeg", "IM-0509-0001-0002.jpeg"),
        ("NORMAL2-IM-1266-0001.jpeg", "NORMAL2-IM-1266-0001-0001.jpeg"),
        ("E63574A7-4188-4C8D-8D17-9D67A18A1AFA.jpeg", "F4341CE7-73C9-45C6-99C8-8567A5484B63.jpeg"),
    ]:
        assert split_of[pair[0]] == split_of[pair[1]], pair
    sources = {row["image_id"]: row["source"] for row in rows}
    assert sources["F051E018-DAD1-4506-AD43-BE4CA29E960B.jpeg"] == "cohen"
    assert sources["IM-0189-0001.jpeg"] == "kermany"


def test_cli_prepare_prints_table_and_paths(synthetic_root, cache_dir, capsys):
    from covid_ct_scan_images.cli import main

    assert main(["prepare", str(synthetic_root), "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out
    assert "reference list: 60 of 1400 expected files found; missing 1340" in out
    for word in ("train", "validation", "test", "Arrow cache:", "split manifest:"):
        assert word in out
    assert main(["prepare", str(synthetic_root), "--cache-dir", str(cache_dir)]) == 0
    assert "reused the cache" in capsys.readouterr().out
    assert prepare(synthetic_root, cache_dir=cache_dir).reused, "the CLI and the Python API share one cache"


def test_cli_demo(tmp_path, cache_dir, capsys):
    from covid_ct_scan_images.cli import main

    assert main(["demo", "--output", str(tmp_path / "demo"), "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("*** SYNTHETIC DEMO")
    assert "positive" in out and "Arrow cache:" in out


def test_loading_script_entry(synthetic_root, cache_dir):
    result = subprocess.run(
        [sys.executable, str(REPO / "loading_script.py"), str(synthetic_root), "--cache-dir", str(cache_dir)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "split manifest:" in result.stdout
    sys.path.insert(0, str(REPO))
    try:
        import loading_script
    finally:
        sys.path.remove(str(REPO))
    assert loading_script.CovidCTScanImages is covid_ct_scan_images.CovidCTScanImages
    with pytest.raises(RuntimeError, match="no longer supported"):
        datasets.load_dataset(str(REPO / "loading_script.py"))


def test_builder_metadata():
    builder_class = covid_ct_scan_images.CovidCTScanImages
    assert builder_class.VERSION.major == 1
    assert {config.name for config in builder_class.BUILDER_CONFIGS} == {"default", "full", "resized"}


def test_cli_turns_an_unwritable_cache_folder_into_one_message(synthetic_root, tmp_path, capsys):
    from covid_ct_scan_images.cli import main

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    assert main(["prepare", str(synthetic_root), "--cache-dir", str(blocker / "cache")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("covid-ct prepare: error:") and "Traceback" not in err


def test_full_decode_changes_no_hash_and_no_split(real_sample, tmp_path):
    from covid_ct_scan_images.inventory import take_inventory
    from covid_ct_scan_images.locate import find_dataset_root

    located = find_dataset_root(real_sample)
    quick = take_inventory(located.class_dirs, located.root)
    thorough = take_inventory(located.class_dirs, located.root, full_decode=True)
    assert [image.phash for image in quick.files] == [image.phash for image in thorough.files]
    default = prepare(real_sample, cache_dir=tmp_path / "a").manifest_path.read_text()
    assert prepare(real_sample, cache_dir=tmp_path / "b", full_decode=True).manifest_path.read_text() == default
