"""Reload benchmark: a second ``load_dataset`` of a built dataset vs ``datasets.load_from_disk`` of the same Arrow data.

Builds the dataset once, saves a copy with ``DatasetDict.save_to_disk`` for the reference, then times
cold whole-process reloads, interleaved (goal: ratio <= 1.2). A separate, untimed run records
every file opened under the raw folder during a reload with an audit hook (``benchmarks/opens.py``) to
show that a cache hit never opens a raw image (it stats them and hashes ``Train.xls``).

    python benchmarks/bench_reload.py --workdir /tmp/covid_bench --images 1400 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import harness
from harness import Run, Series, run_cold
from realistic import add_input_arguments, announced_input

OURS_API = "covid_ct_scan_images.load_dataset"
OURS_HF = 'datasets.load_dataset("covid_ct_scan_images")'
REFERENCE = "import datasets; datasets.load_from_disk"

_CODE = {
    OURS_API: (
        "import sys, covid_ct_scan_images as c\n"
        "ds = c.load_dataset(sys.argv[1], cache_dir=sys.argv[2])\n"
        "print(sum(len(split) for split in ds.values()))\n"
    ),
    OURS_HF: (
        "import sys, covid_ct_scan_images, datasets\n"
        "ds = datasets.load_dataset('covid_ct_scan_images', data_dir=sys.argv[1], cache_dir=sys.argv[2])\n"
        "print(sum(len(split) for split in ds.values()))\n"
    ),
    REFERENCE: (
        "import sys, datasets\n"
        "ds = datasets.load_from_disk(sys.argv[3])\n"
        "print(sum(len(split) for split in ds.values()))\n"
    ),
}

_BUILD_AND_SAVE = (
    "import sys, covid_ct_scan_images as c\n"
    "c.load_dataset(sys.argv[1], cache_dir=sys.argv[2]).save_to_disk(sys.argv[3])\n"
)

_AUDITED_RELOAD = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.spec_from_file_location('opens', sys.argv[4])\n"
    "opens = importlib.util.module_from_spec(spec); spec.loader.exec_module(opens)\n"
    "import covid_ct_scan_images as c\n"
    "with opens.recording_opens(sys.argv[1]) as opened:\n"
    "    prepared = c.prepare(sys.argv[1], cache_dir=sys.argv[2])\n"
    "    rows = sum(len(split) for split in prepared.dataset.values())\n"
    "    prepared.dataset['train'][0]['image'].load()\n"
    "images = opens.image_paths(opened)\n"
    "print(json.dumps({'reused': prepared.reused, 'rows': rows, 'raw_images_opened': len(images),\n"
    "                  'other_raw_files_opened': sorted(set(opened) - set(images))}))\n"
)


def prepare_inputs(data: Path, workdir: Path) -> tuple[Path, Path]:
    """Build our cache once and save a ``load_from_disk`` copy of the same data; return both folders."""
    cache, saved = workdir / "reload" / "cache", workdir / "reload" / "saved"
    if not (saved / "dataset_dict.json").exists():
        harness.fresh_dir(cache)
        run_cold([sys.executable, "-c", _BUILD_AND_SAVE, str(data), str(cache), str(saved)])
    return cache, saved


def audit_reload(data: Path, cache: Path, env: dict[str, str]) -> dict:
    """One untimed reload under the ``open`` audit hook; what it opened under the raw folder."""
    opens_module = Path(__file__).resolve().parent / "opens.py"
    run = run_cold([sys.executable, "-c", _AUDITED_RELOAD, str(data), str(cache), "", str(opens_module)], env)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    """Command line; prints the machine, the table and the audit of opened files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_input_arguments(parser, repeats=5)
    args = parser.parse_args()
    data = announced_input(args)
    cache, saved = prepare_inputs(data, args.workdir)
    env = harness.quiet_environment(args.workdir / "hf-home")
    series = [Series(OURS_API), Series(OURS_HF), Series(REFERENCE)]

    def measure(item: Series, repeat: int) -> Run:
        run = run_cold([sys.executable, "-c", _CODE[item.name], str(data), str(cache), str(saved)], env)
        item.notes["rows"] = run.stdout.strip()
        return run

    harness.interleave(series, args.repeats, measure)
    base = series[-1].median_s
    rows = [
        (
            f"`{item.name}`",
            f"{item.median_s:.2f}",
            item.spread(),
            f"{item.median_rss_mb:,.0f}",
            item.notes["rows"],
            f"{item.median_s / base:.2f}x",
        )
        for item in series
    ]
    print(f"\nReload, cold whole process (imports included), median of {args.repeats} (interleaved runs):\n")
    print(harness.markdown_table(("command", "median wall s", "min-max s", "peak RSS MB", "rows", "ratio"), rows))
    audit = audit_reload(data, cache, env)
    print(f"\nfiles opened under the raw folder during a reload (audit hook on 'open'): {json.dumps(audit)}")


if __name__ == "__main__":
    main()
