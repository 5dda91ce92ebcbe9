"""The ``covid-ct`` command line: one module per subcommand, each calling the Python API.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``handler`` to a function ``(args) -> int`` returning the exit code. Errors the library
expects (:class:`~covid_ct_scan_images.errors.DatasetError`) become one clear message and
exit code 1 (usage errors: 2), and so do operating-system errors such as an unwritable cache
folder; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("prepare", "audit", "shortcuts", "demo", "export", "push")


def version_line() -> str:
    """The ``--version`` text: this library's version, the dataset version and the datasets release it runs on."""
    from importlib.metadata import version  # not ``datasets.__version__``: every command builds this parser

    from .. import __version__
    from ..versions import DATASET_VERSION

    return f"covid-ct {__version__} (dataset version {DATASET_VERSION}, datasets {version('datasets')})"


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
            "--quiet",
            action="store_true",
            help="no progress bars or notes on stderr (bars are also off when stderr is not a terminal)",
        )
    return parser


def disk_full_cause(error: BaseException) -> OSError | None:
    """The "no space left on device" error behind ``error`` (datasets wraps it in DatasetGenerationError), if any."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return error
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return None


def disk_full_message(error: OSError, data_path: str | None) -> str:
    """One line: where the disk filled up, how much space a build needs, what to do."""
    where = f" while writing {error.filename}" if error.filename else ""
    need = ""
    if data_path and Path(data_path).is_dir():
        size = sum(path.stat().st_size for path in Path(data_path).rglob("*") if path.is_file())
        need = f" (about the size of the download, {size / 1e6:,.0f} MB, per config)"
    return (
        f"no space left on device{where}: the Arrow cache needs room for the image bytes{need}; free some space "
        "or pass --cache-dir on another disk. The incomplete build was removed."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``covid-ct`` with ``argv`` and return its exit code."""
    from ..errors import DatasetError, UsageError
    from ..progress import bars_switched_off

    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    parser = build_parser(only=command)
    args = parser.parse_args(arguments)
    try:
        with bars_switched_off(args.quiet or not sys.stderr.isatty()):  # ours and datasets' own
            return int(args.handler(args))
    except DatasetError as error:
        if args.debug:
            raise
        print(f"covid-ct {args.command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 1
    except Exception as error:  # e.g. an unwritable --cache-dir or output folder, a full disk
        full = disk_full_cause(error)
        if args.debug or (full is None and not isinstance(error, OSError)):
            raise
        if full is not None:
            message = disk_full_message(full, getattr(args, "path", None))
            print(f"covid-ct {args.command}: error: {message}", file=sys.stderr)
            return 1
        assert isinstance(error, OSError)
        where = f"{error.filename}: " if error.filename else ""
        print(f"covid-ct {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"covid-ct {args.command}: interrupted", file=sys.stderr)
        return 130
