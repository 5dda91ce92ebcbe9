"""A cache is reused only while it matches the raw bytes and the library that built it.

On a copy of the real sample: one JPEG is rewritten with other bytes of the same size and given back
its modification time (what ``cp -p``, ``rsync -a`` and ``unzip`` leave), and the library's policy
values and version change as an upgrade would change them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from bad_inputs import NEG, run_cli

from covid_ct_scan_images import fingerprint, prepare
from covid_ct_scan_images.freshness import RECORD_FILENAME


def rewrite_same_size_and_mtime(path: Path) -> bytes:
    """Change one byte inside the JPEG's compressed data; keep size, atime and mtime. Returns the new bytes."""
    status = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = (data[middle] + 1) % 256 or 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert path.stat().st_size == status.st_size and path.stat().st_mtime_ns == status.st_mtime_ns
    return bytes(data)


@pytest.fixture
def built(writable_real_root: Path, cache_dir: Path):
    """The real sample's ``default`` build (so the next prepare can reuse it) and the file that will change."""
    first = prepare(writable_real_root, cache_dir=cache_dir)
    target = sorted((writable_real_root / NEG).glob("IM-*.jpeg"))[0]
    return first, target


def sha256_in_dataset(prepared, name: str) -> str:
    for split in prepared.dataset.values():
        rows = split.select_columns(["image_id", "sha256"]).to_list()
        for row in rows:
            if row["image_id"] == name:
                return row["sha256"]
    raise AssertionError(f"{name} not in the dataset")


def test_file_rewritten_with_same_size_and_mtime_is_caught_and_rebuilt(capsys, writable_real_root, cache_dir, built):
    first, target = built

    new_bytes = rewrite_same_size_and_mtime(target)

    code, out, _ = run_cli(capsys, "prepare", writable_real_root, "--cache-dir", cache_dir)

    assert code == 0
    assert "config 'default': built" in out
    assert f"rebuilt: 1 file(s) have other bytes than the cache was built from: {NEG}/{target.name}" in out
    again = prepare(writable_real_root, cache_dir=cache_dir)
    assert again.reused and again.cache_dir == first.cache_dir
    assert sha256_in_dataset(again, target.name) == hashlib.sha256(new_bytes).hexdigest()


def test_verify_rehashes_every_file_when_ctime_cannot_be_trusted(writable_real_root, cache_dir, built):
    first, target = built
    rewrite_same_size_and_mtime(target)
    # a file system whose ctime does not move (some network and FUSE mounts): the record shows today's ctime
    record_path = first.cache_dir / RECORD_FILENAME
    record = json.loads(record_path.read_text(encoding="utf-8"))
    relative = f"{NEG}/{target.name}"
    record[relative][2] = target.stat().st_ctime_ns
    record_path.write_text(json.dumps(record), encoding="utf-8")

    assert prepare(writable_real_root, cache_dir=cache_dir).reused  # the cheap check cannot see it
    verified = prepare(writable_real_root, cache_dir=cache_dir, verify=True)
    assert not verified.reused and verified.rebuilt_for == [relative]


def test_unchanged_input_is_reused_under_verify(writable_real_root, cache_dir, built):
    assert prepare(writable_real_root, cache_dir=cache_dir, verify=True).reused


@pytest.mark.parametrize(
    ("name", "value"),
    [("NEAR_DUPLICATE_MAX_DISTANCE", 30), ("version", lambda _package: "99.0.0")],
    ids=["near_duplicate_threshold", "library_version"],
)
def test_library_upgrade_changing_the_policy_does_not_reuse_the_old_cache(
    monkeypatch, writable_real_root, cache_dir, built, name, value
):
    first, _ = built
    monkeypatch.setattr(fingerprint, name, value)
    upgraded = prepare(writable_real_root, cache_dir=cache_dir)
    assert not upgraded.reused and upgraded.cache_dir != first.cache_dir
