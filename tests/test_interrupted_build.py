"""A build killed part-way leaves nothing a reader takes as complete; the next run rebuilds.

``covid-ct prepare`` runs in a child process that is killed with SIGKILL (no clean-up code runs) while it
is writing Arrow rows. To make "while it is writing" a wide, reliable window, the child's builder sleeps
a little before each example; everything else is the real command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import pytest

from covid_ct_scan_images import prepare
from covid_ct_scan_images.builder import CovidCTScanImages
from covid_ct_scan_images.synthetic import make_synthetic_download

_SLOW_PREPARE = textwrap.dedent(
    """
    import sys, time
    from covid_ct_scan_images.builder import CovidCTScanImages
    generate = CovidCTScanImages._generate_examples
    def slowly(self, images):
        for example in generate(self, images):
            time.sleep(0.05)
            yield example
    CovidCTScanImages._generate_examples = slowly
    from covid_ct_scan_images.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _partial_arrow_files(cache: Path) -> list[Path]:
    return [path for path in cache.rglob("*.arrow") if any(part.endswith(".incomplete") for part in path.parts)]


def test_killed_build_is_never_read_as_complete_and_the_next_run_rebuilds(tmp_path):
    root = make_synthetic_download(tmp_path / "download", n_negative=60, n_positive=20, max_side=300)
    cache = tmp_path / "cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_PREPARE, "prepare", str(root), "--cache-dir", str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 120
    try:
        while not _partial_arrow_files(cache):
            if child.poll() is not None:
                pytest.fail(f"the build ended before it could be interrupted:\n{child.stdout.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("the build did not start writing within 120 s")
            time.sleep(0.05)
        time.sleep(0.3)  # some rows written, far from all (80 rows at 0.05 s each)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    assert _partial_arrow_files(cache), "the kill should leave a half-written .incomplete folder behind"
    finished = [path for path in cache.rglob(datasets.config.DATASET_INFO_FILENAME) if ".incomplete" not in str(path)]
    assert finished == [], "a killed build must not leave a folder that looks complete"

    reader = CovidCTScanImages(config_name="default", data_dir=str(root), cache_dir=str(cache))
    with pytest.raises(FileNotFoundError):
        reader.as_dataset()  # reading without building finds no dataset, not a partial one

    prepared = prepare(root, cache_dir=cache)
    assert not prepared.reused
    assert sum(split.num_rows for split in prepared.dataset.values()) == 80
    assert prepared.report_path.exists() and prepared.manifest_path.exists()
    assert not _partial_arrow_files(cache)
    again = prepare(root, cache_dir=cache)
    assert again.reused and sum(split.num_rows for split in again.dataset.values()) == 80
