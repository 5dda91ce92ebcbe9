"""The ``covid-ct`` command line: one module per subcommand, each calling the Python API.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``handler`` to a function ``(args) -> int`` returning the exit code. Errors the library
expects (:class:`~covid_ct_scan_images.errors.DatasetError`) become one clear message and
exit code 1 (usage errors: 2), and so do operating-system errors such as an unwritable cache
folder; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("prepare", "audit", "shortcuts", "demo", "export", "push")


def version_line() -> str:
    """The ``--version`` text: this library's version, the dataset version and the datasets release it runs on."""
    import datasets

    from .. import __version__
    from ..builder import DATASET_VERSION

    return f"covid-ct {__version__} (dataset version {DATASET_VERSION}, datasets {datasets.__version__})"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered (or only ``only``, when it is one).

    Registering a subcommand imports its module, and some pull in heavy libraries (``shortcuts``:
    scikit-learn and Pillow, about a second); ``main`` registers just the subcommand being run.
    """
    parser = argparse.ArgumentParser(
        prog="covid-ct",
        description="Build, check and publish the COVID-19-CT SCAN IMAGES dataset (chest radiographs, not CT).",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    parser.add_argument("--version", action="version", version=version_line())
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS if only not in SUBCOMMANDS else (only,):
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    for subparser in subparsers.choices.values():
        subparser.add_argument(
            "--quiet", action="store_true", help="no progress bars (they are also off when stderr is not a terminal)"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``covid-ct`` with ``argv`` and return its exit code."""
    import datasets

    from ..errors import DatasetError, UsageError

    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    parser = build_parser(only=command)
    args = parser.parse_args(arguments)
    bars_were_on = datasets.is_progress_bar_enabled()
    if args.quiet or not sys.stderr.isatty():
        datasets.disable_progress_bars()  # ours and datasets' own (see covid_ct_scan_images.progress)
    try:
        return int(args.handler(args))
    except DatasetError as error:
        if args.debug:
            raise
        print(f"covid-ct {args.command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 1
    except OSError as error:  # e.g. an unwritable --cache-dir or output folder
        if args.debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"covid-ct {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"covid-ct {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if bars_were_on:  # main() may be called in-process; leave the switch as it was
            datasets.enable_progress_bars()
