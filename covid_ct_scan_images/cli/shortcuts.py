"""``covid-ct shortcuts PATH``: how well models that cannot see the lungs predict the label."""

from __future__ import annotations

import argparse

from ..cache_folders import library_work_dir
from ..errors import UsageError
from ..locate import locate, resolve_data_dir
from ..plan import BuildOptions, plan_dataset
from ..planned_shortcuts import shortcut_report_of_plan
from ..shortcuts import (
    CENTER_FRACTION,
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    ProbeSettings,
    format_summary,
    format_table,
    interpretation,
)
from ..synthetic import SYNTHETIC_BANNER
from .options import add_build_options, add_cache_dir_option, add_download_argument, build_options


def run(args: argparse.Namespace) -> int:
    """Plan the ``full`` config (nothing is built), run the probes, print the table and write the JSON."""
    if args.n_bootstrap < 0:
        raise UsageError(f"--n-bootstrap must be 0 or more, got {args.n_bootstrap}")
    if not 0.0 < args.center_fraction < 1.0:
        raise UsageError(f"--center-fraction must be between 0 and 1, got {args.center_fraction}")
    located = locate(resolve_data_dir(args.path), lambda: library_work_dir(args.cache_dir))
    plan = plan_dataset(located, BuildOptions(**build_options(args)))
    report = shortcut_report_of_plan(plan, ProbeSettings(args.n_bootstrap, args.seed, args.center_fraction))
    if plan.report.synthetic:
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
    add_download_argument(parser)
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
    add_cache_dir_option(
        parser,
        text="datasets cache folder a .zip download is extracted under (default: the datasets cache); nothing is built",
    )
    add_build_options(parser)
    parser.set_defaults(handler=run)
