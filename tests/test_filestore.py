"""The file store: results kept under the content of each file, shared by commands and processes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from covid_ct_scan_images import filestore, inventory
from covid_ct_scan_images.filestore import FileStore, default_store, kind_version
from covid_ct_scan_images.inventory import take_inventory
from covid_ct_scan_images.locate import locate
from covid_ct_scan_images.plan import BuildOptions, plan_dataset


def _inventory(root: Path):
    located = locate(root, root.parent / "work")
    return take_inventory(located.class_dirs, located.root)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Formats of the images whose perceptual hash was computed (one decode each) during a test."""
    calls: list[str] = []
    original = inventory.perceptual_hash

    def counting(image, *args, **kwargs):
        calls.append(image.format)
        return original(image, *args, **kwargs)

    monkeypatch.setattr(inventory, "perceptual_hash", counting)
    return calls


def test_second_inventory_decodes_nothing_and_gives_the_same_records(synthetic_root: Path, decodes: list[str]) -> None:
    first = _inventory(synthetic_root)
    decoded_first = len(decodes)
    second = _inventory(synthetic_root)
    assert decoded_first == len(first.usable) == 60
    assert len(decodes) == decoded_first
    assert second.files == first.files


def test_renamed_file_is_found_again_by_its_content(synthetic_root: Path, decodes: list[str]) -> None:
    before = {record.sha256: record for record in _inventory(synthetic_root).files}
    original = next(synthetic_root.rglob("*.jpg"))
    renamed = original.with_name("renamed-" + original.name)
    original.rename(renamed)
    decodes.clear()
    after = {record.path: record for record in _inventory(synthetic_root).files}
    assert decodes == []
    record = after[renamed]
    assert record.relative_path.endswith("renamed-" + original.name)
    assert (record.phash, record.width, record.height) == (
        before[record.sha256].phash,
        before[record.sha256].width,
        before[record.sha256].height,
    )


def test_new_bytes_with_same_size_and_mtime_are_inspected_again(synthetic_root: Path, decodes: list[str]) -> None:
    _inventory(synthetic_root)
    target = next(synthetic_root.rglob("*.jpg"))
    status = target.stat()
    data = bytearray(target.read_bytes())
    # One byte of the entropy-coded data changed, never into or next to a 0xFF marker prefix.
    position = next(
        index
        for index in range(len(data) // 2, len(data) - 4)
        if data[index] < 0xFE and data[index - 1] != 0xFF and data[index + 1] != 0xFF
    )
    data[position] += 1
    target.write_bytes(bytes(data))
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (status.st_size, status.st_mtime_ns)
    decodes.clear()
    records = {record.path: record for record in _inventory(synthetic_root).files}
    assert records[target].sha256 == hashlib.sha256(bytes(data)).hexdigest()
    assert decodes == ["JPEG"]  # only the changed file was decoded again


def test_library_upgrade_invalidates_every_stored_result(
    synthetic_root: Path, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _inventory(synthetic_root)
    store = default_store()
    assert store is not None
    stored = store.stored_bytes()
    monkeypatch.setattr(filestore, "library_version", lambda: "999.0.0")
    decodes.clear()
    _inventory(synthetic_root)
    assert len(decodes) == 60
    # The old entries were deleted, not kept beside the new ones.
    assert store.stored_bytes() == pytest.approx(stored, rel=0.05)


def test_policy_values_are_part_of_the_version() -> None:
    assert kind_version(phash_size=16) != kind_version(phash_size=8)
    assert kind_version(phash_size=16) == kind_version(phash_size=16)


def test_store_is_bounded_and_evicts_the_least_recently_used(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store", max_bytes=10_000)
    store.put_many("kind", "v1", {"kept": b"k" * 1000})
    for index in range(30):
        store.put_many("kind", "v1", {f"key-{index}": bytes(1000)}, used=["kept"])
    assert store.stored_bytes() <= 10_000
    remaining = store.get_many("kind", "v1")
    assert "kept" in remaining  # used all along, so never the oldest
    assert "key-0" not in remaining
    assert "key-29" in remaining


_WRITER = """
import sys
from covid_ct_scan_images.filestore import FileStore
store = FileStore(sys.argv[1])
for batch in range(40):
    store.put_many("kind", "v1", {f"{sys.argv[2]}-{batch}-{item}": b"x" * 200 for item in range(25)})
    store.get_many("kind", "v1", [f"{sys.argv[2]}-{batch}-0"])
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-W", "error::RuntimeWarning", "-c", _WRITER, str(folder), name],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    stored = FileStore(folder).get_many("kind", "v1")
    assert len(stored) == 2 * 40 * 25


def test_disabled_store_keeps_nothing_and_inventory_still_works(
    synthetic_root: Path, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(filestore.STORE_ENV, "off")
    assert default_store() is None
    _inventory(synthetic_root)
    _inventory(synthetic_root)
    assert len(decodes) == 120


def test_unusable_store_warns_once_and_results_are_computed(
    synthetic_root: Path, decodes: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store folder should be")
    monkeypatch.setenv(filestore.STORE_ENV, str(blocker))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = _inventory(synthetic_root)
    assert len(records.usable) == 60
    assert len(decodes) == 60
    assert [str(item.message) for item in caught if "file store" in str(item.message)]


def test_shortcut_features_come_back_from_the_store_unchanged(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from covid_ct_scan_images.shortcuts import features

    payloads = [path.read_bytes() for path in sorted(synthetic_root.rglob("*.*g"))][:12]
    computed = features.extract_features(payloads)

    def must_not_decode(data: bytes):
        raise AssertionError("decoded although the store holds the features")

    monkeypatch.setattr(features, "image_features", must_not_decode)
    recalled = features.extract_features(payloads)
    for name in ("metadata", "intensity", "thumbnails"):
        np.testing.assert_array_equal(getattr(recalled, name), getattr(computed, name))


def test_split_assignment_is_reused_without_recomputing(synthetic_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from covid_ct_scan_images import plan

    located = locate(synthetic_root, synthetic_root.parent / "work")
    first = plan_dataset(located, BuildOptions()).assignments()

    def must_not_assign(*args, **kwargs):
        raise AssertionError("splits assigned again although the store holds them")

    monkeypatch.setattr(plan, "assign_splits", must_not_assign)
    assert plan_dataset(located, BuildOptions()).assignments() == first


def test_shortcut_audit_is_reused_when_its_inputs_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import datasets
    from PIL import Image

    from covid_ct_scan_images.shortcuts import probes, run_shortcut_probes

    rng = np.random.default_rng(0)
    files, labels = [], []
    for index in range(20):
        buffer = io.BytesIO()
        pixels = (rng.random((48, 48)) * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(buffer, format="PNG" if index % 2 else "JPEG")
        files.append({"bytes": buffer.getvalue(), "path": None})
        labels.append(index % 2)
    dataset = datasets.Dataset.from_dict(
        {
            "image": files,
            "label": labels,
            "patient_id": [f"patient-{index}" for index in range(20)],
            "fold": [index % 5 for index in range(20)],
        },
        features=datasets.Features(
            {
                "image": datasets.Image(),
                "label": datasets.Value("int64"),
                "patient_id": datasets.Value("string"),
                "fold": datasets.Value("int32"),
            }
        ),
    )
    computed = run_shortcut_probes(dataset, n_bootstrap=20)

    def must_not_fit(*args, **kwargs):
        raise AssertionError("probes fitted again although the store holds the audit")

    monkeypatch.setattr(probes, "out_of_fold_scores", must_not_fit)
    assert run_shortcut_probes(dataset, n_bootstrap=20) == computed
    with pytest.raises(AssertionError, match="fitted again"):  # other settings are another audit
        run_shortcut_probes(dataset, n_bootstrap=21)


def test_a_store_that_sqlite_reports_locked_while_opening_waits_and_keeps_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes creating a store at once both switch it to WAL mode; SQLite refuses one at once ("database is
    # locked") rather than make it wait. The refused one must wait and retry, not give up on the store.
    set_up, refusals = filestore._set_up, []

    def refused_twice(connection) -> None:
        if len(refusals) < 2:
            refusals.append(1)
            raise sqlite3.OperationalError("database is locked")
        set_up(connection)

    monkeypatch.setattr(filestore, "_set_up", refused_twice)
    store = FileStore(tmp_path / "store")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        store.put_many("kind", "v1", {"key": b"value"})
    assert len(refusals) == 2 and store.get_many("kind", "v1") == {"key": b"value"}
