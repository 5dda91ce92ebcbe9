"""``covid-ct demo``: make a synthetic raw download, build it and print the split table."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..api import prepare
from ..synthetic import make_synthetic_download
from .options import add_cache_dir_option
from .prepare import print_prepared


def run(args: argparse.Namespace) -> int:
    """Write the synthetic download, then run ``prepare`` on it."""
    temporary = args.output is None
    parent = Path(tempfile.mkdtemp(prefix="covid-ct-demo-")) if temporary else Path(args.output)
    root = make_synthetic_download(parent, n_negative=args.negatives, n_positive=args.positives, seed=args.seed)
    prepared = prepare(root, config="default", cache_dir=args.cache_dir)
    print_prepared(prepared, "default")  # starts with the synthetic-data banner
    print(f"synthetic raw download written to {root}")
    print(f"\nNext: covid-ct prepare {str(root)!r} --config full   (or point it at your real download)")
    if temporary:  # kept for the command above; nothing else removes it
        print(f"The synthetic download stays in the temporary folder {parent}")
        print(f"(delete it when done: rm -r {str(parent)!r}; the Arrow cache above is datasets' to manage)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser("demo", help="build a small SYNTHETIC download and prepare it (nothing to download)")
    parser.add_argument("--output", help="folder for the synthetic download (default: a new temporary folder)")
    add_cache_dir_option(parser)
    parser.add_argument("--negatives", type=int, default=45)
    parser.add_argument("--positives", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run)
