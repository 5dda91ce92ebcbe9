"""``covid-ct push PATH --repo-id NAME/covid_ct_scan_images``: publish to the Hugging Face Hub."""

from __future__ import annotations

import argparse

from ..hub import push_dataset
from .export import add_export_options, export_options


def run(args: argparse.Namespace) -> int:
    """Export (unless PATH already is an export), then upload, or only show the upload with ``--dry-run``."""
    result = push_dataset(
        args.path, args.repo_id, public=args.public, dry_run=args.dry_run, tag=args.revision_tag, **export_options(args)
    )
    print(result.summary())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push`` subcommand."""
    parser = subparsers.add_parser(
        "push",
        help="upload to the Hugging Face Hub (private by default): an export folder, or a raw download exported first",
    )
    parser.add_argument("path", nargs="?", help="export folder, or raw download (default $COVID_CT_DATA_DIR, ...)")
    parser.add_argument(
        "--repo-id", help="dataset repository, e.g. your-name/covid_ct_scan_images (needed except with --dry-run)"
    )
    parser.add_argument("--public", action="store_true", help="create the repository public (default: private)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be uploaded; contact nothing")
    parser.add_argument("--revision-tag", help="tag for the commit (default: v<dataset version>)")
    add_export_options(parser)
    parser.set_defaults(handler=run)
