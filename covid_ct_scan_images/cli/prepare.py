"""``covid-ct prepare PATH``: build the dataset (or reuse its cache) and print the split table."""

from __future__ import annotations

import argparse

from ..api import PreparedDataset, prepare
from ..layout import CLASS_NAMES
from ..synthetic import SYNTHETIC_BANNER
from .options import (
    add_build_options,
    add_cache_dir_option,
    add_download_argument,
    add_splits_manifest_option,
    build_options,
)


def split_table(prepared: PreparedDataset) -> str:
    """Images per split and class, with totals, as a text table."""
    header = f"{'split':<12}" + "".join(f"{name:>10}" for name in CLASS_NAMES) + f"{'total':>10}{'patients':>10}"
    lines = [header, "-" * len(header)]
    totals = [0] * len(CLASS_NAMES)
    for split_name, split in prepared.dataset.items():
        labels = split["label"]
        counts = [labels.count(label) for label in range(len(CLASS_NAMES))]
        totals = [total + count for total, count in zip(totals, counts, strict=True)]
        patients = len(set(split["patient_id"]))
        lines.append(
            f"{split_name:<12}" + "".join(f"{count:>10}" for count in counts) + f"{sum(counts):>10}{patients:>10}"
        )
    lines.append(f"{'all':<12}" + "".join(f"{count:>10}" for count in totals) + f"{sum(totals):>10}")
    return "\n".join(lines)


def print_prepared(prepared: PreparedDataset, config: str) -> None:
    """Print the outcome of a build: banner, notes on what was left out, the table and the paths."""
    report = prepared.report
    if report.synthetic:
        print(SYNTHETIC_BANNER)
    print(f"config {config!r}: " + ("reused the cache (input unchanged)" if prepared.reused else "built"))
    if prepared.rebuilt_for:
        shown = ", ".join(prepared.rebuilt_for[:5]) + (" ..." if len(prepared.rebuilt_for) > 5 else "")
        print(f"rebuilt: {len(prepared.rebuilt_for)} file(s) have other bytes than the cache was built from: {shown}")
    left_out = report.left_out_files()
    if left_out:
        print(f"left out {len(left_out)} file(s) (also listed in {prepared.report_path}):")
        for name, reason in left_out:
            print(f"  {name}: {reason}")
    warnings = report.by_severity("warning")
    for problem in warnings:
        print(f"warning [{problem.kind}]: {problem.message} ({len(problem.files)} file(s))")
    print(report_reference_line(prepared))
    print(split_table(prepared))
    print(f"Arrow cache:     {prepared.cache_dir}")
    print(f"split manifest:  {prepared.manifest_path}")
    print(f"check report:    {prepared.report_path}")


def report_reference_line(prepared: PreparedDataset) -> str:
    """The one-line comparison with the reference list of 1400 expected files."""
    from ..reference import compare_with_reference

    names = [name for split in prepared.dataset.values() for name in split["image_id"]]
    return compare_with_reference(names).summary()


def run(args: argparse.Namespace) -> int:
    """Build the requested config and print the result."""
    prepared = prepare(
        args.path,
        config=args.config,
        cache_dir=args.cache_dir,
        splits_manifest=args.splits_manifest,
        verify=args.verify,
        **build_options(args),
    )
    print_prepared(prepared, args.config)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` subcommand."""
    parser = subparsers.add_parser("prepare", help="build the dataset from the raw download (folder, parent or .zip)")
    add_download_argument(parser)
    parser.add_argument(
        "--config",
        choices=["default", "full", "resized"],
        default="default",
        help="default: 70/15/15 splits; full: one split with a fold column; resized: default splits, images <= 512 px",
    )
    add_cache_dir_option(parser)
    add_splits_manifest_option(parser)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-hash every raw file before reusing a cache (files with a changed ctime are always re-hashed); "
        "use it after replacing files on a network or FUSE mount",
    )
    add_build_options(parser)
    parser.set_defaults(handler=run)
