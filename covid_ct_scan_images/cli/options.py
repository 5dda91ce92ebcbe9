"""The arguments of the commands that read a raw download (``prepare``, ``audit``, ``shortcuts``, ``export``, ...).

Kept apart from the commands so that the ones that never build (``audit``, ``shortcuts``) do not import datasets.
"""

from __future__ import annotations

import argparse

from ..inventory import DEFAULT_MAX_IMAGE_PIXELS


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


#: Help of ``--cache-dir`` for the commands that build.
CACHE_DIR_HELP = "datasets cache folder (default: the datasets cache)"


def add_download_argument(parser: argparse.ArgumentParser) -> None:
    """The optional positional ``path`` of the raw download."""
    parser.add_argument("path", nargs="?", help="raw download; default $COVID_CT_DATA_DIR, then the default folder")


def add_cache_dir_option(parser: argparse.ArgumentParser, text: str = CACHE_DIR_HELP) -> None:
    """``--cache-dir``: where the Arrow cache (and an extracted .zip) goes."""
    parser.add_argument("--cache-dir", help=text)


def add_splits_manifest_option(parser: argparse.ArgumentParser) -> None:
    """``--splits-manifest``: pin the split assignment to a published manifest."""
    parser.add_argument("--splits-manifest", help="pin the split assignment to a previously published manifest CSV")


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that reads a raw download."""
    parser.add_argument("--strict", action="store_true", help="stop on any problem, not only label conflicts")
    parser.add_argument(
        "--label-source",
        choices=["check", "folder", "sheet"],
        default="check",
        help="resolve label conflicts: 'check' stops on them (default), 'folder' or 'sheet' decides",
    )
    parser.add_argument("--name-column", help="Train.xls column holding the file names (header text or 0-based index)")
    parser.add_argument("--label-column", help="Train.xls column holding the labels (header text or 0-based index)")
    parser.add_argument(
        "--full-decode",
        action="store_true",
        help="decode every image completely while checking (slower; catches corruption inside the pixel data)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=_positive_int,
        default=DEFAULT_MAX_IMAGE_PIXELS,
        help=f"refuse images larger than this many pixels (default {DEFAULT_MAX_IMAGE_PIXELS:,})",
    )


def build_options(args: argparse.Namespace) -> dict[str, object]:
    """The build options given on the command line, as keyword arguments for :func:`prepare`."""
    return {
        "strict": args.strict,
        "label_source": args.label_source,
        "name_column": args.name_column,
        "label_column": args.label_column,
        "full_decode": args.full_decode,
        "max_image_pixels": args.max_image_pixels,
    }
