"""The Hub export: layout, no local paths, reproducible bytes, and plain `datasets.load_dataset` without the library."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from bad_inputs import run_cli
from export_support import TEST_BOOTSTRAP, TEST_REPO, cache_of, download_of
from plain_load import summarise

from covid_ct_scan_images.errors import DatasetError, UsageError
from covid_ct_scan_images.export import ExportResult, export_dataset, is_export_folder
from covid_ct_scan_images.shortcuts import ShortcutReport

PLAIN_LOAD = Path(__file__).with_name("plain_load.py")

EXPECTED_FILES = [
    "README.md",
    "audit_report.json",
    "data/default/test-00000-of-00001.parquet",
    "data/default/train-00000-of-00001.parquet",
    "data/default/validation-00000-of-00001.parquet",
    "data/full/train-00000-of-00001.parquet",
    "shortcut_probes.json",
    "splits_manifest.csv",
]


def load_without_library(export_dir: Path, work: Path) -> dict:
    """Run tests/plain_load.py in a fresh isolated interpreter where the package cannot be imported."""
    result_path = work / "plain-load.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "HF_", "COVID_CT"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(work / "hf-home"))
    completed = subprocess.run(
        [sys.executable, "-I", str(PLAIN_LOAD), str(export_dir), str(result_path)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(result_path.read_text(encoding="utf-8"))


def assert_same_as_library(export: ExportResult, plain: dict) -> None:
    """Rows, features, split sizes and folds of the plain load equal the library's own builds."""
    assert plain["label_names"] == ["negative", "positive"]
    for config in ("default", "full"):
        expected = json.loads(json.dumps(summarise(export.builds[config].dataset)))
        assert plain[config]["splits"] == expected["splits"]
        for split in expected["splits"]:
            assert plain[config][split]["num_rows"] == expected[split]["num_rows"]
            assert plain[config][split]["features"] == expected[split]["features"]
            assert plain[config][split]["rows"] == expected[split]["rows"]
    assert plain["full"]["train"]["features"]["label"]["names"] == ["negative", "positive"]
    assert "fold" in plain["full"]["train"]["features"]
    assert "fold" not in plain["default"]["train"]["features"]
    folds = {row["fold"] for row in plain["full"]["train"]["rows"]}
    assert folds == set(range(5))


def test_export_folder_layout(messy_export: ExportResult) -> None:
    assert messy_export.files == EXPECTED_FILES
    assert is_export_folder(messy_export.out_dir)
    manifest = (messy_export.out_dir / "splits_manifest.csv").read_text(encoding="utf-8")
    assert manifest == messy_export.builds["default"].manifest_path.read_text(encoding="utf-8")
    assert manifest.splitlines()[0] == "image_id,label,patient_id,split,fold"
    saved = ShortcutReport.from_json(messy_export.out_dir / "shortcut_probes.json")
    assert saved.n_images == len(messy_export.builds["full"].dataset["train"])
    assert saved.n_bootstrap == TEST_BOOTSTRAP


def test_shards_embed_bytes_and_no_local_paths(messy_export: ExportResult, tmp_path: Path) -> None:
    out = messy_export.out_dir
    for shard in sorted(out.glob("data/*/*.parquet")):
        table = pq.read_table(shard)
        for row in table.select(["image", "image_id", "sha256"]).to_pylist():
            assert row["image"]["bytes"], f"{shard.name}: {row['image_id']} has no embedded bytes"
            assert row["image"]["path"] == row["image_id"]
            assert hashlib.sha256(row["image"]["bytes"]).hexdigest() == row["sha256"]
    download = messy_export.builds["default"].report.root
    local_parts = {str(Path(download).parent.parent), str(Path(download).parent), str(tmp_path.parent)}
    for name in messy_export.files:
        data = (out / name).read_bytes()
        for part in local_parts:
            assert part.encode() not in data, f"{name} contains the local folder {part}"
    report = json.loads((out / "audit_report.json").read_text(encoding="utf-8"))
    assert report["root"].startswith("<local>/")


def test_plain_load_dataset_matches_library_on_synthetic(messy_export: ExportResult, tmp_path: Path) -> None:
    assert_same_as_library(messy_export, load_without_library(messy_export.out_dir, tmp_path))


def test_plain_load_dataset_matches_library_on_real_sample(real_sample: Path, tmp_path: Path) -> None:
    export = export_dataset(real_sample, tmp_path / "export", cache_dir=tmp_path / "hf-cache", compute_shortcuts=False)
    assert [name for name in export.files if name.endswith(".parquet")] == [
        name for name in EXPECTED_FILES if name.endswith(".parquet")
    ]
    plain = load_without_library(export.out_dir, tmp_path)
    assert_same_as_library(export, plain)
    assert sum(plain["default"][split]["num_rows"] for split in plain["default"]["splits"]) == 48
    assert sum(row["label"] for row in plain["full"]["train"]["rows"]) == 12


def test_export_is_byte_reproducible_and_overwrite_rules(messy_export: ExportResult, tmp_path: Path) -> None:
    """The same input gives the same bytes (so a re-push is a no-op); only an earlier export is overwritten."""
    root, cache = download_of(messy_export), cache_of(messy_export)
    shortcuts = messy_export.out_dir / "shortcut_probes.json"
    again = export_dataset(root, tmp_path / "again", cache_dir=cache, shortcuts_json=shortcuts, repo_id=TEST_REPO)
    assert all(build.reused for build in again.builds.values())
    assert again.files == messy_export.files
    for name in again.files:
        assert (again.out_dir / name).read_bytes() == (messy_export.out_dir / name).read_bytes(), name

    with pytest.raises(UsageError, match="not empty"):
        export_dataset(root, again.out_dir, cache_dir=cache, compute_shortcuts=False)
    replaced = export_dataset(root, again.out_dir, cache_dir=cache, compute_shortcuts=False, overwrite=True)
    assert "shortcut_probes.json" not in replaced.files
    assert not list(tmp_path.glob(".again*")), "staging or old folders left behind"

    other = tmp_path / "someone-elses-folder"
    other.mkdir()
    (other / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(UsageError, match="not an earlier export"):
        export_dataset(root, other, cache_dir=cache, compute_shortcuts=False, overwrite=True)
    assert (other / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_saved_shortcut_run_of_other_data_is_refused(messy_export: ExportResult, tmp_path: Path) -> None:
    data = json.loads((messy_export.out_dir / "shortcut_probes.json").read_text(encoding="utf-8"))
    data["n_images"] += 1
    wrong = tmp_path / "other-run.json"
    wrong.write_text(json.dumps(data), encoding="utf-8")
    root, cache = download_of(messy_export), cache_of(messy_export)
    with pytest.raises(DatasetError, match="computed on other data"):
        export_dataset(root, tmp_path / "out", cache_dir=cache, shortcuts_json=wrong)
    assert not (tmp_path / "out").exists()


def test_cli_export(messy_export: ExportResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, cache = download_of(messy_export), cache_of(messy_export)
    shortcuts = messy_export.out_dir / "shortcut_probes.json"
    code, out, _ = run_cli(
        capsys, "export", root, tmp_path / "out", "--cache-dir", cache, "--shortcuts-json", shortcuts, "--quiet"
    )
    assert code == 0
    assert "SYNTHETIC" in out
    for name in EXPECTED_FILES:
        assert name in out
    code, _, err = run_cli(capsys, "export", root, tmp_path / "out", "--cache-dir", cache, "--no-shortcuts")
    assert code == 2
    assert "not empty" in err


def test_large_splits_are_sharded(messy_export: ExportResult, tmp_path: Path) -> None:
    """A split larger than the shard size is cut into `split-0000i-of-0000n` shards that still load as one split."""
    root, cache = download_of(messy_export), cache_of(messy_export)
    shortcuts = messy_export.out_dir / "shortcut_probes.json"
    export = export_dataset(
        root, tmp_path / "out", cache_dir=cache, shortcuts_json=shortcuts, max_shard_bytes=40_000, repo_id=TEST_REPO
    )
    shards = [name for name in export.files if name.startswith("data/full/")]
    assert len(shards) > 1
    assert shards == [f"data/full/train-{index:05d}-of-{len(shards):05d}.parquet" for index in range(len(shards))]
    loaded = datasets.load_dataset(str(export.out_dir), "full", cache_dir=str(tmp_path / "load-cache"))
    assert loaded["train"]["image_id"] == messy_export.builds["full"].dataset["train"]["image_id"]
    assert export.card.split("\n---\n", 1)[1] == messy_export.card.split("\n---\n", 1)[1]
