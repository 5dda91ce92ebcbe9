"""Where a cold ``covid-ct prepare`` spends its time: wall time per phase of one build, in this process.

Wraps the pipeline's steps with timers (nothing else changes) and runs the CLI once, so that a slow
build can be attributed to a step (inventory, sheet, checks, splits, writing Arrow, printing).

    python benchmarks/profile_build.py --workdir /tmp/covid_bench --images 1400
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import time
from pathlib import Path

T0 = time.perf_counter()

import datasets  # noqa: E402 (timed: the import is part of the cost)

import covid_ct_scan_images  # noqa: E402, F401
from covid_ct_scan_images import plan  # noqa: E402
from covid_ct_scan_images.cli import main as cli_main  # noqa: E402
from covid_ct_scan_images.cli import prepare as cli_prepare  # noqa: E402

IMPORTED = time.perf_counter() - T0
PHASES: list[tuple[str, float]] = [("import datasets + covid_ct_scan_images", IMPORTED)]


def _timed(owner: object, name: str, label: str) -> None:
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            PHASES.append((label, time.perf_counter() - start))

    setattr(owner, name, wrapper)


def main() -> None:
    """Command line: build once, then print the phases."""
    from harness import fresh_dir, markdown_table
    from realistic import ensure_download

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/covid_bench"))
    parser.add_argument("--images", type=int, default=1400)
    parser.add_argument("--full-decode", action="store_true")
    args = parser.parse_args()
    data = ensure_download(args.workdir, args.images)
    cache = fresh_dir(args.workdir / "caches" / "profile")
    _timed(plan, "take_inventory", "inventory (read, sha256, header, perceptual-hash decode)")
    _timed(plan, "read_sheet", "read Train.xls")
    _timed(plan, "find_problems", "checks")
    _timed(plan, "assign_splits", "splits (StratifiedGroupKFold, 20 + 5 folds)")
    _timed(datasets.GeneratorBasedBuilder, "_prepare_split", "write Arrow (read bytes again, encode, write)")
    _timed(cli_prepare, "print_prepared", "print the split table")
    start = time.perf_counter()
    argv = ["prepare", str(data), "--cache-dir", str(cache), *(["--full-decode"] if args.full_decode else [])]
    with contextlib.redirect_stdout(io.StringIO()):
        cli_main(argv)
    total = IMPORTED + time.perf_counter() - start
    merged: dict[str, float] = {}
    for label, seconds in PHASES:
        merged[label] = merged.get(label, 0.0) + seconds
    merged["other (locate, fingerprint, builder, cache rename)"] = total - sum(merged.values())
    rows = [(label, f"{seconds:.2f}", f"{100 * seconds / total:.0f} %") for label, seconds in merged.items()]
    rows.append(("total (in process, after interpreter start)", f"{total:.2f}", "100 %"))
    print(markdown_table(("phase", "s", "share"), rows))


if __name__ == "__main__":
    main()
