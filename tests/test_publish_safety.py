"""Publishing under stress: a full disk, Ctrl-C, bad side inputs, local paths, and pushes without a repository."""

from __future__ import annotations

import json
import re
import shutil
from collections import namedtuple
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import tomllib
from bad_inputs import run_cli
from export_support import TEST_REPO, cache_of, download_of, make_messy_download

import covid_ct_scan_images
from covid_ct_scan_images.builder import CovidCTScanImages
from covid_ct_scan_images.card import version_history
from covid_ct_scan_images.errors import DatasetError, UsageError
from covid_ct_scan_images.export import ExportResult, export_dataset
from covid_ct_scan_images.hub import push_dataset
from covid_ct_scan_images.versions import DATASET_VERSION, VERSION_HISTORY

ROOT = Path(__file__).resolve().parents[1]


def leftovers(folder: Path) -> list[str]:
    """Hidden staging folders an interrupted export could leave next to its output."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_export_to_a_full_disk_is_one_message_and_leaves_nothing(
    messy_export: ExportResult,
    small_disk,
    capsys: pytest.CaptureFixture[str],
) -> None:
    disk = small_disk(64 * 1024)
    root, cache = download_of(messy_export), cache_of(messy_export)
    code, _, err = run_cli(capsys, "export", root, disk / "out", "--cache-dir", cache, "--no-shortcuts", "--quiet")
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(r"not enough space in .*: the export needs about [\d,]+ MB", err), err
    assert list(disk.iterdir()) == []


def test_disk_filling_up_while_writing_shards_is_caught_and_cleaned(
    messy_export: ExportResult,
    small_disk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The free-space check passes (it is told there is room), then the real disk fills up: no pyarrow abort."""
    disk = small_disk(64 * 1024)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("covid_ct_scan_images.atomic_files.shutil.disk_usage", lambda _: usage(1 << 40, 0, 1 << 40))
    with pytest.raises(DatasetError, match="not enough space"):
        export_dataset(
            download_of(messy_export), disk / "out", cache_dir=cache_of(messy_export), compute_shortcuts=False
        )
    assert list(disk.iterdir()) == []


def test_ctrl_c_while_writing_shards_exits_130_and_removes_the_partial_folder(
    messy_export: ExportResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    written = []
    original = datasets.Dataset.to_parquet

    def interrupted(self, *args, **kwargs):
        if written:
            raise KeyboardInterrupt
        written.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "to_parquet", interrupted)
    root, cache = download_of(messy_export), cache_of(messy_export)
    code, _, err = run_cli(capsys, "export", root, tmp_path / "out", "--cache-dir", cache, "--no-shortcuts")
    assert code == 130 and "interrupted" in err
    assert written and not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_prepare_on_a_full_disk_is_one_message(
    messy_export: ExportResult,
    small_disk,
    capsys: pytest.CaptureFixture[str],
) -> None:
    disk = small_disk(256 * 1024)
    code, _, err = run_cli(capsys, "prepare", download_of(messy_export), "--cache-dir", disk)
    assert code == 1
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert "no space left on device" in errors[0] and "MB" in errors[0] and "--cache-dir" in errors[0]
    assert not [path for path in disk.rglob("*") if path.name.endswith(".incomplete")], "incomplete build left"


@pytest.mark.parametrize(
    ("name", "content", "option", "expected"),
    [
        ("card.md", b"---\npretty_name: x\n---\n\xff\xfe caf\xe9\n", "--card-template", "is not UTF-8"),
        ("missing.md", None, "--card-template", "cannot read the dataset card source"),
        ("list.json", b"[1, 2]", "--shortcuts-json", "holds a JSON list, not a report"),
        ("null.json", b"null", "--shortcuts-json", "holds a JSON NoneType, not a report"),
        ("string.json", b'"a string"', "--shortcuts-json", "holds a JSON str, not a report"),
        ("broken.json", b"{not json", "--shortcuts-json", "cannot read the shortcut report"),
    ],
)
def test_bad_side_inputs_are_refused_before_the_build(
    messy_export: ExportResult,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | None,
    option: str,
    expected: str,
) -> None:
    side = tmp_path / name
    if content is not None:
        side.write_bytes(content)
    cache = tmp_path / "fresh-cache"
    code, _, err = run_cli(
        capsys, "export", download_of(messy_export), tmp_path / "out", "--cache-dir", cache, option, side
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and expected in err and str(side) in err, err
    assert not cache.exists(), "the build ran before the side input was checked"


def _strings_of_parquet(path: Path) -> str:
    """Every string a Parquet file holds: its key-value metadata, schema, and every value."""
    metadata = pq.read_metadata(path)
    parts = [str(metadata.schema), json.dumps({k.decode(): v.decode() for k, v in (metadata.metadata or {}).items()})]
    table = pq.read_table(path)
    for row in table.drop_columns(["image"]).to_pylist():
        parts.append(json.dumps(row))
    parts.extend(table.column("image").combine_chunks().field("path").to_pylist())
    return "\n".join(parts)


def test_no_local_path_in_any_exported_file(tmp_path: Path) -> None:
    """A pinned manifest outside the download, a cache, a home folder: none of their paths is in the export."""
    root = make_messy_download(tmp_path / "somewhere" / "download")
    cache = tmp_path / "caches" / "hf-cache"
    first = export_dataset(root, tmp_path / "first", cache_dir=cache, compute_shortcuts=False)
    pinned = tmp_path / "pinned-manifests" / "v1" / "splits_manifest.csv"
    pinned.parent.mkdir(parents=True)
    shutil.copyfile(first.out_dir / "splits_manifest.csv", pinned)
    export = export_dataset(
        root, tmp_path / "export", cache_dir=cache, splits_manifest=pinned, n_bootstrap=5, repo_id=TEST_REPO
    )
    secrets = {
        str(root),
        str(root.parent),
        str(cache),
        str(pinned),
        str(pinned.parent),
        str(Path.home()),
        str(tmp_path),
    }
    for name in export.files:
        path = export.out_dir / name
        text = _strings_of_parquet(path) if name.endswith(".parquet") else path.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret not in text, f"{name} contains the local path {secret}"
    report = json.loads((export.out_dir / "audit_report.json").read_text(encoding="utf-8"))
    assert report["root"].startswith("<local>/")


def test_push_dry_run_without_repo_id_and_upload_without_it(
    messy_export: ExportResult,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "push", messy_export.out_dir, "--dry-run")
    assert code == 0 and "DRY RUN" in out and "repository: none given" in out
    code, _, err = run_cli(capsys, "push", messy_export.out_dir)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--repo-id" in err


def test_export_without_repo_id_names_no_placeholder_and_cannot_be_pushed_to_a_repository(
    messy_export: ExportResult,
    tmp_path: Path,
) -> None:
    root, cache = download_of(messy_export), cache_of(messy_export)
    export = export_dataset(root, tmp_path / "out", cache_dir=cache, compute_shortcuts=False)
    assert "NAME/" not in export.card and 'load_dataset("path/to/this/folder")' in export.card
    with pytest.raises(UsageError, match="exported for another repository or none"):
        push_dataset(export.out_dir, TEST_REPO, dry_run=True)


def test_one_version_everywhere() -> None:
    """pyproject.toml, the builder, the history the card renders and the README pointer agree."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == DATASET_VERSION == VERSION_HISTORY[0][0]
    assert str(CovidCTScanImages.VERSION) == DATASET_VERSION == covid_ct_scan_images.DATASET_VERSION
    assert f"**{DATASET_VERSION}** (this version)" in version_history()
    assert "covid_ct_scan_images/versions.py" in (ROOT / "README.md").read_text(encoding="utf-8")
