"""Zip input: a member name that appears twice, and several processes extracting the same zip at once.

The zips are real archives of the real sample written by :mod:`zipfile`.
"""

from __future__ import annotations

import multiprocessing
import warnings
import zipfile
from pathlib import Path

from bad_inputs import NEG, run_cli

from covid_ct_scan_images.archive import extract_zip
from covid_ct_scan_images.layout import DATASET_FOLDER

N_PROCESSES = 3


def zip_real_sample(root: Path, target: Path) -> Path:
    """Zip the real sample's dataset folder as the download holds it."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, f"{DATASET_FOLDER}/{path.relative_to(root).as_posix()}")
    return target


def test_member_name_twice_with_different_bytes_is_reported_and_the_first_kept(capsys, writable_real_root, tmp_path):
    target = zip_real_sample(writable_real_root, tmp_path / "download.zip")
    images = sorted((writable_real_root / NEG).glob("IM-*.jpeg"))
    twice = f"{DATASET_FOLDER}/{NEG}/{images[0].name}"
    with warnings.catch_warnings(), zipfile.ZipFile(target, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        archive.writestr(twice, images[1].read_bytes())

    code, out, _ = run_cli(capsys, "audit", target, "--max-files", "50")

    assert code == 1
    assert "appears twice in the zip with different bytes; the first copy was extracted, this one not" in out
    assert twice in out


def _extract_after_barrier(zip_path: str, work_dir: str, barrier, results) -> None:
    barrier.wait()
    try:
        extracted = extract_zip(Path(zip_path), Path(work_dir))
        results.put(("ok", str(extracted.folder)))
    except Exception as error:  # reported to the test, which shows it
        results.put(("error", f"{type(error).__name__}: {error}"))


def test_concurrent_extractions_of_one_zip_all_succeed_and_share_one_folder(writable_real_root, tmp_path):
    target = zip_real_sample(writable_real_root, tmp_path / "download.zip")
    work = tmp_path / "work"
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(N_PROCESSES), context.Queue()
    processes = [
        context.Process(target=_extract_after_barrier, args=(str(target), str(work), barrier, results))
        for _ in range(N_PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)

    assert [status for status, _ in outcomes] == ["ok"] * N_PROCESSES, outcomes
    assert len({folder for _, folder in outcomes}) == 1
    assert [path.name for path in work.iterdir()] == [Path(outcomes[0][1]).name]  # no private folder left
    extracted = Path(outcomes[0][1]) / DATASET_FOLDER
    assert sorted(p.relative_to(extracted) for p in extracted.rglob("*") if p.is_file()) == sorted(
        p.relative_to(writable_real_root) for p in writable_real_root.rglob("*") if p.is_file()
    )
