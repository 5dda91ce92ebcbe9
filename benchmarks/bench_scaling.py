"""Scaling benchmark: build time and peak memory of ``covid-ct prepare`` at 350, 700, 1400 and 2800 images.

The 1400-image realistic download is subset (whole patients, hard links) or doubled with renamed copies
whose bytes differ (see ``realistic.resize_download``). At each size ours and imagefolder run cold and
interleaved, as in ``bench_build.py``. A least-squares line ``time = a + b * images`` (and the same for
memory) says whether growth is linear (goal: peak memory < 1.5 GB at 1400 images, growing no faster
than linearly).

    python benchmarks/bench_scaling.py --workdir /tmp/covid_bench --sizes 350 700 1400 2800 --repeats 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_build import OURS, REFERENCE, measure_builds
from harness import Series, machine_description, markdown_table
from realistic import ensure_download, folder_summary


def linear_fit(sizes: list[int], values: list[float]) -> tuple[float, float, float]:
    """Intercept, slope and R^2 of the least-squares line through ``(sizes, values)``."""
    x, y = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = ((y - y.mean()) ** 2).sum()
    return float(intercept), float(slope), float(1 - (residual**2).sum() / total) if total else 1.0


def main() -> None:
    """Command line; prints the machine, the table and the fits."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/covid_bench"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[350, 700, 1400, 2800])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine_description()}")
    results: dict[int, list[Series]] = {}
    for size in args.sizes:
        data = ensure_download(args.workdir, size)
        print(f"input:   {folder_summary(data)}", flush=True)
        results[size] = measure_builds(data, args.workdir, [OURS, REFERENCE], args.repeats)
    rows = []
    for size, (ours, reference) in results.items():
        rows.append(
            (
                size,
                f"{ours.median_s:.2f}",
                f"{1000 * ours.median_s / size:.1f}",
                f"{ours.median_rss_mb:,.0f}",
                f"{reference.median_s:.2f}",
                f"{reference.median_rss_mb:,.0f}",
                f"{ours.median_s / reference.median_s:.2f}x",
            )
        )
    header = (
        "images",
        "prepare s",
        "prepare ms/image",
        "prepare peak RSS MB",
        "imagefolder s",
        "imagefolder peak RSS MB",
        "ratio",
    )
    print(f"\nScaling, cold whole process, median of {args.repeats} (interleaved runs):\n")
    print(markdown_table(header, rows))
    sizes = list(results)
    for label, values, unit in (
        ("build time", [results[size][0].median_s for size in sizes], "s"),
        ("peak RSS", [results[size][0].median_rss_mb for size in sizes], "MB"),
    ):
        intercept, slope, r_squared = linear_fit(sizes, values)
        print(
            f"\n{label}: {intercept:.2f} {unit} + {1000 * slope:.2f} {unit} per 1000 images, R^2 = {r_squared:.4f}; "
            f"{sizes[-1]} vs {sizes[0]} images: {values[-1] / values[0]:.2f}x for {sizes[-1] // sizes[0]}x the images"
        )


if __name__ == "__main__":
    main()
