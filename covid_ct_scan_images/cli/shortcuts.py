"""``covid-ct shortcuts PATH``: how well models that cannot see the lungs predict the label."""

from __future__ import annotations

import argparse

from ..api import prepare
from ..errors import UsageError
from ..shortcuts import (
    CENTER_FRACTION,
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    format_summary,
    format_table,
    interpretation,
    run_shortcut_probes,
)
from ..synthetic import SYNTHETIC_BANNER
from .prepare import add_build_options, build_options


def run(args: argparse.Namespace) -> int:
    """Build (or reuse) the ``full`` config, run the probes, print the table and write the JSON."""
    if args.n_bootstrap < 0:
        raise UsageError(f"--n-bootstrap must be 0 or more, got {args.n_bootstrap}")
    if not 0.0 < args.center_fraction < 1.0:
        raise UsageError(f"--center-fraction must be between 0 and 1, got {args.center_fraction}")
    prepared = prepare(args.path, config="full", cache_dir=args.cache_dir, **build_options(args))
    report = run_shortcut_probes(
        prepared.dataset, n_bootstrap=args.n_bootstrap, seed=args.seed, center_fraction=args.center_fraction
    )
    if prepared.report.synthetic:
        print(SYNTHETIC_BANNER)
    print(format_table(report))
    print()
    print(format_summary(report))
    print(interpretation(report))
    if args.json:
        report.to_json(args.json)
        print(f"JSON written to {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``shortcuts`` subcommand."""
    parser = subparsers.add_parser(
        "shortcuts",
        help="measure how much of the label models that cannot see the lungs predict (metadata, intensity, border)",
    )
    parser.add_argument("path", nargs="?", help="raw download; default $COVID_CT_DATA_DIR, then the default folder")
    parser.add_argument("--json", metavar="FILE", help="also write the table, counts and interpretation as JSON")
    parser.add_argument(
        "--n-bootstrap",
        type=int,
        metavar="N",
        default=DEFAULT_BOOTSTRAP,
        help=f"patient-level bootstrap resamples for the 95%% intervals (default {DEFAULT_BOOTSTRAP}; 0: none)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        default=DEFAULT_SEED,
        help=f"seed of the bootstrap and models (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--center-fraction",
        type=float,
        metavar="F",
        default=CENTER_FRACTION,
        help=f"share of each side treated as the lungs by the border/centre probes (default {CENTER_FRACTION})",
    )
    parser.add_argument("--cache-dir", help="datasets cache folder (default: the datasets cache)")
    add_build_options(parser)
    parser.set_defaults(handler=run)
