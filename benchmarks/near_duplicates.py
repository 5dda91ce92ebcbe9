"""Measure perceptual-hash distances on the real sample to choose the near-duplicate threshold.

Two populations are compared, for each hash size:

* **different pictures**: every pair of distinct files in the real sample (pediatric radiographs of
  different children look alike; one pair is a follow-up film of the same patient);
* **the same picture**: each real image against copies of itself re-encoded as JPEG (quality 75),
  saved as PNG, resized to half size, and cropped by 1 %, 2 % and 5 % on every side.

The hash is computed exactly as the inventory computes it
(:func:`covid_ct_scan_images.inventory.perceptual_hash`). Run::

    python benchmarks/near_duplicates.py [PATH_TO_REAL_SAMPLE] [--hash-sizes 8 16]
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import statistics
from collections.abc import Callable
from pathlib import Path

import imagehash
from PIL import Image

from covid_ct_scan_images.checks import NEAR_DUPLICATE_MAX_DISTANCE
from covid_ct_scan_images.inventory import PHASH_SIZE, perceptual_hash

DEFAULT_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_sample"


def _encoded(image: Image.Image, image_format: str, **params: object) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _crop(fraction: float) -> Callable[[Image.Image], Image.Image]:
    def crop(image: Image.Image) -> Image.Image:
        dx, dy = int(image.width * fraction), int(image.height * fraction)
        return _encoded(image.crop((dx, dy, image.width - dx, image.height - dy)), "JPEG", quality=90)

    return crop


#: Edits that leave "the same picture": name -> function of a decoded grayscale image.
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg q75": lambda image: _encoded(image, "JPEG", quality=75),
    "png copy": lambda image: _encoded(image, "PNG"),
    "half size": lambda image: _encoded(image.resize((image.width // 2, image.height // 2)), "JPEG", quality=90),
    "crop 1%": _crop(0.01),
    "crop 2%": _crop(0.02),
    "crop 5%": _crop(0.05),
}


def image_files(sample: Path) -> list[Path]:
    """Every image file under ``sample``, sorted."""
    return sorted(path for path in sample.rglob("*") if path.suffix.lower() in {".jpg", ".jpeg", ".png"})


def distance(first: str, second: str) -> int:
    """Hamming distance between two hex perceptual hashes."""
    return int(imagehash.hex_to_hash(first) - imagehash.hex_to_hash(second))


def measure(files: list[Path], hash_size: int) -> tuple[list[tuple[int, str, str]], dict[str, list[int]]]:
    """Pairwise distances between distinct files, and each file's distance to its edited copies."""
    hashes = {}
    edited: dict[str, list[int]] = {name: [] for name in TRANSFORMS}
    for path in files:
        with Image.open(path) as image:
            hashes[path.name] = perceptual_hash(image, hash_size)
        with Image.open(path) as image:
            gray = image.convert("L")
        for name, transform in TRANSFORMS.items():
            edited[name].append(distance(hashes[path.name], perceptual_hash(transform(gray), hash_size)))
    pairs = sorted((distance(hashes[a], hashes[b]), a, b) for a, b in itertools.combinations(sorted(hashes), 2))
    return pairs, edited


def expected_pairs_within(distances: list[int], threshold: int, n_images: int) -> float:
    """Expected different-picture pairs at most ``threshold`` apart among ``n_images`` (normal approximation)."""
    mean, spread = statistics.fmean(distances), statistics.pstdev(distances)
    tail = 0.5 * math.erfc(-((threshold + 0.5 - mean) / spread) / math.sqrt(2))
    return tail * n_images * (n_images - 1) / 2


def main() -> None:
    """Print the distance tables for each hash size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sample", nargs="?", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--hash-sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--closest", type=int, default=6, help="closest different-picture pairs to list")
    args = parser.parse_args()
    files = image_files(args.sample)
    print(f"{len(files)} images in {args.sample}")
    for hash_size in args.hash_sizes:
        pairs, edited = measure(files, hash_size)
        bits = hash_size * hash_size
        print(f"\n## hash_size {hash_size} ({bits}-bit hash)")
        print(f"different pictures: {len(pairs)} pairs, min {pairs[0][0]}, closest:")
        for value, first, second in pairs[: args.closest]:
            print(f"  {value:>4}  {first}  {second}")
        print("same picture, edited copy (max / mean over the images):")
        for name, values in edited.items():
            print(f"  {name:<10} max {max(values):>3}  mean {sum(values) / len(values):5.1f}")
        if hash_size != PHASH_SIZE:
            continue
        threshold = NEAR_DUPLICATE_MAX_DISTANCE
        print(f"at the library's threshold ({threshold} of {bits} bits):")
        for name, values in edited.items():
            print(f"  {name:<10} {sum(value <= threshold for value in values)} of {len(values)} copies caught")
        caught = [(value, a, b) for value, a, b in pairs if value <= threshold]
        print(f"  different pictures within it: {len(caught)} {[f'{a} {b}' for _, a, b in caught]}")
        kermany_names = ("IM-", "NORMAL2-IM-")
        kermany = [value for value, a, b in pairs if a.startswith(kermany_names) and b.startswith(kermany_names)]
        print(
            f"  Kermany pairs: mean {statistics.fmean(kermany):.1f}, sd {statistics.pstdev(kermany):.1f}; expected "
            f"pairs within the threshold among 1342 negatives (normal tail): "
            f"{expected_pairs_within(kermany, threshold, 1342):.2g}"
        )


if __name__ == "__main__":
    main()
