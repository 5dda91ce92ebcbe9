"""Build benchmark: ``covid-ct prepare`` (default checks) vs ``datasets.load_dataset("imagefolder")``.

Both are cold whole-process runs on the same raw folder, each with its own empty cache, interleaved;
the table gives medians, peak resident memory, what each stores, and the ratio to imagefolder
(goals: ratio <= 2, peak memory < 1.5 GB for 1400 images).

    python benchmarks/bench_build.py --workdir /tmp/covid_bench --images 1400 --repeats 3 [--full-decode]
    python benchmarks/bench_build.py --data "PATH/COVID-19-CT SCAN IMAGES_COVID_datasets"
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from harness import (
    Run,
    Series,
    fresh_dir,
    interleave,
    markdown_table,
    quiet_environment,
    run_cold,
    venv_script,
)
from realistic import add_input_arguments, announced_input

OURS = "covid-ct prepare"
OURS_FULL = "covid-ct prepare --full-decode"
REFERENCE = 'load_dataset("imagefolder")'
REFERENCE_EMBEDDED = 'load_dataset("imagefolder") + map(embed_table_storage)'

_IMAGEFOLDER_CODE = (
    "import sys, datasets; datasets.load_dataset('imagefolder', data_dir=sys.argv[1], cache_dir=sys.argv[2])"
)
# Like for like: imagefolder, then the bytes embedded in Arrow as datasets itself does before pushing to the Hub.
_IMAGEFOLDER_EMBEDDED_CODE = (
    "import sys, datasets\n"
    "from datasets.table import embed_table_storage\n"
    "ds = datasets.load_dataset('imagefolder', data_dir=sys.argv[1], cache_dir=sys.argv[2])\n"
    "ds.with_format('arrow').map(embed_table_storage, batched=True)\n"
)


def command(name: str, data: Path, cache: Path) -> list[str]:
    """The command line of a benchmarked build."""
    if name in (REFERENCE, REFERENCE_EMBEDDED):
        code = _IMAGEFOLDER_CODE if name == REFERENCE else _IMAGEFOLDER_EMBEDDED_CODE
        return [sys.executable, "-c", code, str(data), str(cache)]
    extra = ["--full-decode"] if name == OURS_FULL else []
    return [venv_script("covid-ct"), "prepare", str(data), "--cache-dir", str(cache), *extra]


def describe_arrow(cache: Path) -> str:
    """What a finished cache folder holds: Arrow size, rows with image bytes embedded and rows with paths only."""
    import pyarrow as pa

    files = sorted(cache.rglob("*.arrow"))
    rows, embedded = 0, 0
    for path in files:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
        rows += table.num_rows
        embedded += table.column("image").combine_chunks().field("bytes").is_valid().true_count
    size = sum(path.stat().st_size for path in files)
    return f"{size / 1e6:,.1f} MB Arrow: {embedded} rows with image bytes, {rows - embedded} rows with paths only"


def measure_builds(data: Path, workdir: Path, names: list[str], repeats: int, log: bool = True) -> list[Series]:
    """Interleaved cold builds of ``names`` on ``data``; each cache is described once, then deleted."""
    series = [Series(name) for name in names]
    env = quiet_environment(workdir / "hf-home")

    def measure(item: Series, repeat: int) -> Run:
        cache = fresh_dir(workdir / "caches" / f"{series.index(item)}-{repeat}")
        run = run_cold(command(item.name, data, cache), env)
        if "stored" not in item.notes:
            item.notes["stored"] = describe_arrow(cache)
        shutil.rmtree(cache, ignore_errors=True)
        return run

    interleave(series, repeats, measure, log=log)
    return series


def build_table(series: list[Series], reference: str = REFERENCE) -> str:
    """Markdown table: median, spread, peak RSS, what is stored, ratio to the reference."""
    base = next(item for item in series if item.name == reference).median_s
    rows = [
        (
            f"`{item.name}`",
            f"{item.median_s:.2f}",
            item.spread(),
            f"{item.median_rss_mb:,.0f}",
            item.notes.get("stored", ""),
            f"{item.median_s / base:.2f}x",
        )
        for item in series
    ]
    header = ("command", "median wall s", "min-max s", "peak RSS MB", "what it stores", "ratio to imagefolder")
    return markdown_table(header, rows)


def main() -> None:
    """Command line; prints the machine, the input and the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_input_arguments(parser, repeats=3)
    parser.add_argument("--full-decode", action="store_true", help="also time `covid-ct prepare --full-decode`")
    parser.add_argument(
        "--embedded-reference", action="store_true", help="also time imagefolder followed by embedding the bytes"
    )
    args = parser.parse_args()
    data = announced_input(args)
    names = [OURS, *([OURS_FULL] if args.full_decode else []), REFERENCE]
    names += [REFERENCE_EMBEDDED] if args.embedded_reference else []
    series = measure_builds(data, args.workdir, names, args.repeats)
    print(f"\nBuild, cold whole process, median of {args.repeats} (interleaved runs):\n")
    print(build_table(series))


if __name__ == "__main__":
    main()
