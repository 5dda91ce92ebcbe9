"""``covid-ct audit PATH``: check a raw download without building anything and print the report.

Exit code 0 when there is nothing to fix (notes do not count), 1 when there are problems,
2 for usage errors (bad arguments, a path that does not exist).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..atomic_files import write_atomically
from ..errors import UsageError
from ..plan import BuildOptions, audit
from .options import add_build_options, add_download_argument, build_options


def run(args: argparse.Namespace) -> int:
    """Audit the download, print the summary (and write JSON when asked); exit 1 when there are problems."""
    if args.json is not None and Path(args.json).is_dir():
        raise UsageError(f"--json {args.json}: is a folder; give a file name such as audit.json")
    checked = audit(args.path, BuildOptions(**build_options(args)))
    report = checked.report
    print(report.format_text(max_files=args.max_files))
    if args.json is not None:
        try:
            write_atomically(Path(args.json), report.to_json() + "\n")
        except OSError as error:
            raise UsageError(f"--json {args.json}: cannot write it ({error.strerror or error})") from error
        print(f"JSON report written to {args.json}")
    blocking = report.blocking(args.strict)
    if blocking:
        print(f"{len(blocking)} problem(s) would stop `covid-ct prepare`" + (" --strict" if args.strict else ""))
    return 1 if report.has_problems else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audit`` subcommand."""
    parser = subparsers.add_parser(
        "audit", help="check a raw download (folder, parent or .zip) without building; exit 1 when problems"
    )
    add_download_argument(parser)
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument(
        "--max-files", type=int, default=20, metavar="N", help="files listed per problem in the text summary"
    )
    add_build_options(parser)
    parser.set_defaults(handler=run)
