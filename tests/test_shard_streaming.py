"""Parquet shards stream to their files: no whole shard in memory, and a full disk is an ordinary error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Writes a 40 MB shard of incompressible bytes with ``write_shards`` into ``sys.argv[1]`` and prints how far the
#: Arrow memory pool grew while doing so, or the error it raised. Run in its own process: a pyarrow abort
#: (``Check failed``) would kill pytest itself, and the pool's peak is per process.
CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import datasets, pyarrow as pa
    from covid_ct_scan_images.export import write_shards

    rows = datasets.Dataset.from_dict({"b": [os.urandom(200_000) for _ in range(200)]})
    before = pa.default_memory_pool().max_memory()
    try:
        write_shards({"data/default/train-00000-of-00001.parquet": rows}, Path(sys.argv[1]), progress=False)
    except OSError as error:
        print("error", error.errno)
    else:
        print("written", pa.default_memory_pool().max_memory() - before)
    """
)


def run_child(folder: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the writer process died (exit {done.returncode}): {done.stderr[-2000:]}"
    return done.stdout.split()


def test_a_shard_streams_to_its_file_without_holding_the_shard_in_memory(tmp_path: Path) -> None:
    outcome, grown = run_child(tmp_path)
    assert outcome == "written"
    shard = tmp_path / "data/default/train-00000-of-00001.parquet"
    assert shard.stat().st_size > 40_000_000
    assert int(grown) < shard.stat().st_size / 4, f"the Arrow pool grew by {int(grown):,} bytes for one shard"


@pytest.mark.parametrize("disk_bytes", [300_000, 1_500_000, 4_000_000, 20_000_000])
def test_a_disk_filling_up_inside_a_parquet_column_is_an_oserror_not_an_abort(small_disk, disk_bytes: int) -> None:
    """At these sizes the disk fills inside a column write, where pyarrow's own file writer aborts the process."""
    assert run_child(small_disk(disk_bytes)) == ["error", "28"]
