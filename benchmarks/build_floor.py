"""The least a self-contained, near-duplicate-aware build must do, timed part by part, against a budget.

`covid-ct prepare` must embed the original bytes (a self-contained cache) and group near-duplicates
by a perceptual hash, so at the very least it writes every image's bytes once, hashes them, and
decodes every image once at reduced size. This script times each of those alone, with nothing else around
them, on all the cores this process may use, and sets their sum against the budget: twice a cold
`load_dataset("imagefolder")` on the same folder (default), or with `--against embedded` one cold imagefolder
followed by embedding the bytes (`embed_table_storage`, what `push_to_hub` does: the like-for-like peer).
If the floor alone exceeds the budget, no implementation of the build can stay within it on this machine.

    python benchmarks/build_floor.py --workdir /tmp/covid_bench --images 1400
    python benchmarks/build_floor.py --workdir /tmp/covid_bench --images 1400 --against embedded
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_build import REFERENCE, REFERENCE_EMBEDDED, measure_builds
from harness import fresh_dir, markdown_table, run_cold
from PIL import Image
from realistic import add_input_arguments, announced_input

from covid_ct_scan_images.inventory import perceptual_hash, usable_cores

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _on_all_cores(function: Callable[[bytes], object], payloads: list[bytes]) -> Callable[[], object]:
    def work() -> object:
        with ThreadPoolExecutor(max_workers=usable_cores()) as pool:  # hashlib and Pillow release the GIL
            return list(pool.map(function, payloads))

    return work


def _write_all(payloads: list[bytes], target: Path) -> Callable[[], None]:
    def work() -> None:
        with open(target, "wb") as sink:
            for payload in payloads:
                sink.write(payload)
        target.unlink()

    return work


def _smallest_decode(payload: bytes) -> None:
    image = Image.open(io.BytesIO(payload))
    image.draft("L", (1, 1))  # JPEG: the smallest scale libjpeg offers (1/8); PNG: no reduced decode exists
    image.load()


def _build_phash(payload: bytes) -> str:
    return perceptual_hash(Image.open(io.BytesIO(payload)))


def main() -> None:
    """Command line; prints the machine, the input and the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_input_arguments(parser, repeats=3)
    parser.add_argument(
        "--against",
        choices=["imagefolder", "embedded"],
        default="imagefolder",
        help="budget: 2 x cold imagefolder (default) or 1 x cold imagefolder + embedding the bytes",
    )
    args = parser.parse_args()
    data = announced_input(args)
    Image.MAX_IMAGE_PIXELS = None  # the benchmark's own images; the library's limit is not under test here

    files = sorted(path for path in data.rglob("*") if path.suffix.lower() in _IMAGE_SUFFIXES)
    payloads = [path.read_bytes() for path in files]  # also puts every file in the page cache
    scratch = fresh_dir(args.workdir / "floor")
    reference, factor = (REFERENCE, 2) if args.against == "imagefolder" else (REFERENCE_EMBEDDED, 1)
    peer = measure_builds(data, args.workdir, [reference], args.repeats, log=False)[0].median_s
    budget = factor * peer
    parts = [
        (
            "start Python and `import datasets` (imagefolder pays this too)",
            statistics.median(run_cold([sys.executable, "-c", "import datasets"]).wall_s for _ in range(args.repeats)),
        ),
        ("read every file (page cache)", _median_seconds(lambda: [path.read_bytes() for path in files], args.repeats)),
        (
            "sha256 of every file, all cores",
            _median_seconds(_on_all_cores(lambda b: hashlib.sha256(b).digest(), payloads), args.repeats),
        ),
        (
            "write every file's bytes once (`open().write`, no Arrow)",
            _median_seconds(_write_all(payloads, scratch / "bytes"), args.repeats),
        ),
        (
            "decode every image at the smallest scale (JPEG 1/8), all cores",
            _median_seconds(_on_all_cores(_smallest_decode, payloads), args.repeats),
        ),
    ]
    floor = sum(seconds for _, seconds in parts)
    rows = [(name, f"{seconds:.2f}", f"{seconds / budget:.0%}") for name, seconds in parts]
    rows.append(
        (
            "**sum: the floor of any build that embeds bytes and hashes pixels**",
            f"**{floor:.2f}**",
            f"**{floor / budget:.0%}**",
        )
    )
    build_hash = _median_seconds(_on_all_cores(_build_phash, payloads), args.repeats)
    rows.append(
        (
            "(for comparison) the build's own decode + 256-bit phash, all cores",
            f"{build_hash:.2f}",
            f"{build_hash / budget:.0%}",
        )
    )
    print(
        f"\nBudget: {factor} x cold `{reference}` = {factor} x {peer:.2f} s = {budget:.2f} s; "
        f"{len(files)} images, {sum(map(len, payloads)) / 1e6:,.0f} MB; medians of {args.repeats}\n"
    )
    print(markdown_table(("part", "s", "share of budget"), rows))
    print(f"\nfloor / `{reference}` = {floor / peer:.2f}x (target: at most {factor}x)")


if __name__ == "__main__":
    main()
