"""``covid-ct export PATH OUT``: write the folder that goes to the Hub (Parquet shards, card, manifest)."""

from __future__ import annotations

import argparse
import sys

from ..export import export_dataset
from ..synthetic import SYNTHETIC_BANNER
from .options import (
    add_build_options,
    add_cache_dir_option,
    add_download_argument,
    add_splits_manifest_option,
    build_options,
)


def add_export_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``export`` and ``push`` (which exports a raw download first)."""
    add_cache_dir_option(parser)
    add_splits_manifest_option(parser)
    parser.add_argument(
        "--shortcuts-json",
        help="reuse a saved `covid-ct shortcuts` run (JSON) for the card's shortcut table instead of computing it",
    )
    parser.add_argument(
        "--no-shortcuts",
        action="store_true",
        help="do not compute the shortcut probes; the card then says they were not computed",
    )
    parser.add_argument("--card-template", help="dataset card source (default: dataset_card.md of the repository)")
    add_build_options(parser)


def export_options(args: argparse.Namespace) -> dict[str, object]:
    """The export options given on the command line, as keyword arguments for :func:`export_dataset`."""
    return {
        "cache_dir": args.cache_dir,
        "splits_manifest": args.splits_manifest,
        "shortcuts_json": args.shortcuts_json,
        "compute_shortcuts": not args.no_shortcuts,
        "card_template": args.card_template,
        "progress": not args.quiet and sys.stderr.isatty(),
        "note": None if args.quiet else lambda line: print(f"covid-ct {args.command}: {line}", file=sys.stderr),
        **build_options(args),
    }


def run(args: argparse.Namespace) -> int:
    """Export and list the files written."""
    result = export_dataset(args.path, args.out, overwrite=args.overwrite, repo_id=args.repo_id, **export_options(args))
    if result.builds["default"].report.synthetic:
        print(SYNTHETIC_BANNER)
    print(f"exported to {result.out_dir}:")
    for name in result.files:
        print(f"  {name}  ({(result.out_dir / name).stat().st_size:,} bytes)")
    print(f"check it without this library: datasets.load_dataset({str(result.out_dir)!r})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser("export", help="write the Hub folder: Parquet shards, dataset card, split manifest")
    add_download_argument(parser)
    parser.add_argument("out", help="output folder (new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier export")
    parser.add_argument("--repo-id", help="Hub repository the card's loading example names (NAME/covid_ct_scan_images)")
    add_export_options(parser)
    parser.set_defaults(handler=run)
