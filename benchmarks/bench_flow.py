"""What users feel: the whole flow, a rebuild after a fix, and the cold build against its peers, per core count.

Every row is a cold whole-process run (or a sequence of them) with its own empty datasets cache and its
own empty file store (``$COVID_CT_STORE``), interleaved with the others, medians of ``--repeats``:

* **flow**: ``covid-ct audit PATH``, ``prepare PATH``, ``shortcuts PATH``, ``export PATH OUT`` in turn, with the
  file store (the default) and with ``COVID_CT_STORE=off`` (every command decodes every image itself), against
  one cold ``covid-ct prepare PATH``;
* **rebuild after a fix**: after a cold ``prepare``, one of the images is replaced with new bytes and
  ``prepare`` runs again, against a cold ``load_dataset("imagefolder")``;
* **cold build**: ``covid-ct prepare`` against imagefolder and against imagefolder followed by embedding the
  bytes (``datasets.table.embed_table_storage``, what ``push_to_hub`` does): the same self-contained artifact;
* **cores**: the cold build on 1 worker core (``taskset``) and on all cores this process may use.

With ``--baseline-tree DIR`` (a checkout of another version of this repository, e.g. made with
``git worktree add``), the cold build and the flow also run with that version's library (``PYTHONPATH``),
interleaved with the others: a before/after comparison on the same machine in the same run.

    python benchmarks/bench_flow.py --workdir /tmp/covid_bench --images 1400 --repeats 2
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
from pathlib import Path

from bench_build import REFERENCE, REFERENCE_EMBEDDED
from bench_build import command as build_command
from harness import Run, Series, fresh_dir, interleave, markdown_table, quiet_environment, run_cold, venv_script
from realistic import add_input_arguments, announced_input

FLOW = ("audit", "prepare", "shortcuts", "export")
COLD = "covid-ct prepare (cold)"
COLD_OFF = "covid-ct prepare (cold, COVID_CT_STORE=off)"
ONE_CORE = "covid-ct prepare (cold, 1 core)"
FLOW_ON = "flow: audit, prepare, shortcuts, export (file store)"
FLOW_OFF = "flow: audit, prepare, shortcuts, export (COVID_CT_STORE=off)"
REBUILD = "covid-ct prepare after one image was replaced"
COLD_BASE = "covid-ct prepare (cold), baseline tree"
FLOW_BASE = "flow: audit, prepare, shortcuts, export (file store), baseline tree"


def _flow_command(step: str, data: Path, cache: Path, out: Path) -> list[str]:
    tail = [str(out)] if step == "export" else []
    cache_option = [] if step == "audit" else ["--cache-dir", str(cache)]
    return [venv_script("covid-ct"), step, str(data), *tail, *cache_option]


def _replace_one_image(root: Path) -> Path:
    """Give the first negative JPEG new bytes (a comment added), written beside it and renamed over it."""
    from PIL import Image

    target = sorted(root.rglob("*.jpeg"))[0] if any(root.rglob("*.jpeg")) else sorted(root.rglob("*.jpg"))[0]
    with Image.open(target) as image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90, comment=b"fixed")
    staging = target.with_name(".fixed-" + target.name)
    staging.write_bytes(buffer.getvalue())
    staging.replace(target)  # a new inode: the hard-linked original download keeps its bytes
    return target


def _linked_copy(data: Path, target: Path) -> Path:
    """A copy of the raw download made of hard links (instant; files replaced in it leave ``data`` alone)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(data.parent, target, copy_function=os.link)
    return target / data.name


def _sum(runs: list[Run]) -> Run:
    return Run(
        wall_s=sum(run.wall_s for run in runs),
        max_rss_mb=max(run.max_rss_mb for run in runs),
        stdout="\n".join(f"{step} {run.wall_s:.2f}" for step, run in zip(FLOW, runs, strict=True)),
    )


def main() -> None:
    """Command line; prints the machine, the input and the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_input_arguments(parser, repeats=2)
    parser.add_argument("--skip-store-off-build", action="store_true", help="leave out the cold build without store")
    parser.add_argument(
        "--skip-store-off-flow-and-one-core",
        action="store_true",
        help="leave out the flow without the store and the 1-core build (the slowest rows)",
    )
    parser.add_argument("--baseline-tree", type=Path, help="also run the build and the flow with this checkout")
    args = parser.parse_args()
    data = announced_input(args)
    quick = args.skip_store_off_flow_and_one_core
    names = [COLD, *([] if args.skip_store_off_build else [COLD_OFF]), *([] if quick else [ONE_CORE]), FLOW_ON]
    names += [*([] if quick else [FLOW_OFF]), *([COLD_BASE, FLOW_BASE] if args.baseline_tree else [])]
    names += [REFERENCE, REFERENCE_EMBEDDED]
    series = [Series(name) for name in names]
    rebuild = Series(REBUILD)
    flows = [name for name in (FLOW_OFF, FLOW_ON, FLOW_BASE) if name in names]
    steps: dict[str, dict[str, list[float]]] = {name: {} for name in flows}

    def measure(item: Series, repeat: int) -> Run:
        work = fresh_dir(args.workdir / "flow" / f"{names.index(item.name)}-{repeat}")
        env = quiet_environment(work / "hf-home")
        env["COVID_CT_STORE"] = "off" if item.name in (COLD_OFF, FLOW_OFF) else str(work / "store")
        if item.name in (COLD_BASE, FLOW_BASE):
            env["PYTHONPATH"] = str(args.baseline_tree.resolve())
        cache = work / "cache"
        try:
            if item.name in (REFERENCE, REFERENCE_EMBEDDED):
                return run_cold(build_command(item.name, data, cache), env)
            if item.name in flows:
                runs = [run_cold(_flow_command(step, data, cache, work / "out"), env) for step in FLOW]
                for step, run in zip(FLOW, runs, strict=True):
                    steps[item.name].setdefault(step, []).append(run.wall_s)
                return _sum(runs)
            raw = _linked_copy(data, work / "raw")
            argv = [venv_script("covid-ct"), "prepare", str(raw), "--cache-dir", str(cache)]
            if item.name == ONE_CORE:
                return run_cold(["taskset", "-c", str(min(os.sched_getaffinity(0))), *argv], env)
            run = run_cold(argv, env)
            if item.name == COLD:
                _replace_one_image(raw)
                rebuild.runs.append(run_cold(argv, env))
                print(f"  [{repeat + 1}] {REBUILD}: {rebuild.runs[-1].wall_s:.2f} s", flush=True)
            return run
        finally:
            shutil.rmtree(work, ignore_errors=True)

    interleave(series, args.repeats, measure)
    by_name = {item.name: item for item in series}
    cold, imagefolder = by_name[COLD].median_s, by_name[REFERENCE].median_s
    embedded = by_name[REFERENCE_EMBEDDED].median_s
    print(f"\nFlow and builds, cold whole processes, median of {args.repeats} (interleaved runs):\n")
    rows = [
        (
            f"`{item.name}`",
            f"{item.median_s:.2f}",
            item.spread(),
            f"{item.median_rss_mb:,.0f}",
            f"{item.median_s / cold:.2f}x",
            f"{item.median_s / imagefolder:.2f}x",
            f"{item.median_s / embedded:.2f}x",
        )
        for item in [*series, rebuild]
    ]
    header = ("command", "median wall s", "min-max s", "peak RSS MB", "/ cold prepare", "/ imagefolder", "/ embedded")
    print(markdown_table(header, rows))
    print("\nFlow, per command (median s):\n")
    step_rows = [(step, *(f"{statistics.median(steps[flow][step]):.2f}" for flow in flows)) for step in FLOW]
    print(markdown_table(("command", *flows), step_rows))
    cores = len(os.sched_getaffinity(0))
    lines = [f"flow (file store) / cold prepare: {by_name[FLOW_ON].median_s / cold:.2f}x (at most 2x wanted)"]
    if FLOW_OFF in by_name:
        lines.append(f"flow without the store / cold prepare: {by_name[FLOW_OFF].median_s / cold:.2f}x")
    if FLOW_BASE in by_name:
        base_cold = by_name[COLD_BASE].median_s
        lines.append(
            f"baseline tree: flow / its cold prepare {by_name[FLOW_BASE].median_s / base_cold:.2f}x; "
            f"cold prepare / imagefolder + embedding {base_cold / embedded:.2f}x"
        )
    lines.append(f"rebuild after a fix / imagefolder: {rebuild.median_s / imagefolder:.2f}x (at most 2x wanted)")
    lines.append(
        f"cold prepare / imagefolder + embedding: {cold / embedded:.2f}x (at most 1.0x wanted); "
        f"/ imagefolder: {cold / imagefolder:.2f}x"
    )
    if ONE_CORE in by_name:
        lines.append(
            f"cold prepare on 1 core: {by_name[ONE_CORE].median_s:.2f} s; on all {cores} cores: {cold:.2f} s "
            f"(1 core / all cores = {by_name[ONE_CORE].median_s / cold:.2f})"
        )
    print("\n" + "\n".join(lines), file=sys.stdout)


if __name__ == "__main__":
    main()
