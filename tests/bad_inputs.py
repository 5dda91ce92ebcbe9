"""Real bad input for the tests: image bytes encoded by Pillow, sheets written by xlwt/openpyxl, broken copies.

Also a script that makes a deliberately broken copy of a raw download showing many cases at once::

    python tests/bad_inputs.py SOURCE TARGET     # e.g. SOURCE = ../shared/data/real_sample
    covid-ct audit TARGET
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from covid_ct_scan_images.layout import SHEET_NAME, folder_for_label
from covid_ct_scan_images.locate import find_dataset_root
from covid_ct_scan_images.synthetic import write_sheet

NEG = folder_for_label(0)
POS = folder_for_label(1)


def smooth_image(size: tuple[int, int] = (320, 280), mode: str = "L", seed: int = 0) -> Image.Image:
    """A smooth random picture (coarse noise upsampled) in ``mode``: distinct per seed, like a real photo."""
    coarse = (np.random.default_rng(seed).random((16, 16)) * 255).astype(np.uint8)
    gray = Image.fromarray(coarse, mode="L").resize(size, Image.Resampling.BILINEAR)
    return gray if mode == "L" else gray.convert(mode)


def encoded(image: Image.Image, image_format: str, **params: object) -> bytes:
    """``image`` encoded by Pillow as ``image_format``."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


def jpeg_bytes(size: tuple[int, int] = (320, 280), mode: str = "L", seed: int = 0, **params: object) -> bytes:
    """A real JPEG file."""
    return encoded(smooth_image(size, mode, seed), "JPEG", **params)


def png_bytes(size: tuple[int, int] = (320, 280), mode: str = "L", seed: int = 0) -> bytes:
    """A real PNG file."""
    return encoded(smooth_image(size, mode, seed), "PNG")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose header declares ``width`` x ``height`` gray pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    one_row = zlib.compress(b"\x00" * (width + 1), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", one_row) + _png_chunk(b"IEND", b"")


def bomb_jpeg(width: int = 50_000, height: int = 50_000) -> bytes:
    """A small real JPEG whose frame header (SOF0) is patched to declare ``width`` x ``height`` pixels."""
    data = bytearray(jpeg_bytes((64, 64)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def read_rows(root: Path) -> list[tuple[str, int]]:
    """The (image_name, label) rows of ``root``'s Train.xls (the layout the synthetic and real sheets share)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas announces the xlrd engine's deprecation
        frame = pd.read_excel(root / SHEET_NAME, engine="xlrd")
    return [(str(name), int(label)) for name, label in zip(frame["image_name"], frame["label"], strict=True)]


def write_rows(root: Path, rows: list[tuple[str, int]]) -> None:
    """Replace ``root``'s Train.xls with a real .xls holding ``rows``."""
    write_sheet(root / SHEET_NAME, rows)


def first_file(folder: Path, suffix: str = ".jpeg") -> Path:
    """The first file (sorted) in ``folder`` with ``suffix``."""
    return sorted(path for path in folder.iterdir() if path.suffix.lower() == suffix)[0]


def make_broken_copy(source: Path, target: Path) -> Path:
    """Copy the raw download at ``source`` to ``target`` and break the copy in many ways at once.

    Returns the copy's dataset root. The breakages: the negative class folder renamed in lower case and one
    level of extra nesting; a sheet row without a file and a file without a row; a sheet label that
    contradicts the folder, and one file name in both class folders; identical bytes twice in one class, and a
    re-encoded near-duplicate; an empty file, a truncated JPEG, an HTML page saved as .jpg, a PNG named .jpg;
    a decompression bomb; .DS_Store, Thumbs.db, ._ resource forks, __MACOSX and an empty folder; Chinese
    characters, spaces and an upper-case extension; a file with permissions 000 (reported as unreadable only
    when not running as root).
    """
    root = find_dataset_root(source).root
    copy_root = target / root.name / root.name  # the zip extracted into a folder of the same name
    shutil.copytree(root, copy_root)
    neg, pos = copy_root / NEG, copy_root / POS
    rows = read_rows(copy_root)
    negatives = sorted(path for path in neg.iterdir() if path.suffix.lower() in {".jpeg", ".jpg"})
    # identical bytes twice in one class; a near-duplicate (re-encoded at quality 75) with no sheet row
    shutil.copyfile(negatives[0], neg / f"copy of {negatives[0].name}")
    rows.append((f"copy of {negatives[0].name}", 0))
    with Image.open(negatives[1]) as image:
        (neg / "IM-9001-0001.jpeg").write_bytes(encoded(image.convert("L"), "JPEG", quality=75))
    # a sheet row without a file
    rows.append(("IM-9999-0001.jpeg", 0))
    # the sheet contradicts the folder; one name in both class folders
    rows = [(name, 1 if name == negatives[2].name else label) for name, label in rows]
    shutil.copyfile(negatives[3], pos / negatives[3].name)
    # unusable files, and a PNG named .jpg (kept, with a note)
    (neg / "IM-9002-0001.jpeg").write_bytes(b"")
    data = negatives[4].read_bytes()
    negatives[4].write_bytes(data[: len(data) // 2])
    (pos / "download-error.jpg").write_text("<html><body>502 Bad Gateway</body></html>", encoding="utf-8")
    (neg / "IM-9003-0001.jpg").write_bytes(png_bytes(seed=93))
    # a decompression bomb
    (neg / "IM-9004-0001.png").write_bytes(bomb_png())
    # litter from other systems
    (neg / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (pos / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (neg / f"._{negatives[5].name}").write_bytes(b"\x00\x05\x16\x07")
    (neg / "__MACOSX").mkdir()
    (neg / "__MACOSX" / f"._{negatives[5].name}").write_bytes(b"\x00\x05\x16\x07")
    (pos / "empty folder").mkdir()
    # Chinese characters, spaces and an upper-case extension
    chinese = "胸片 阴性 01.JPG"
    (neg / chinese).write_bytes(jpeg_bytes(seed=14))
    rows.append((chinese, 0))
    # permission denied (root reads it anyway)
    os.chmod(negatives[6], 0)
    write_rows(copy_root, rows)
    # a class folder renamed by hand
    neg.rename(copy_root / "Covid19 CT Scan Images Neg Samples Datasets")
    return copy_root


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``covid-ct ARGV`` in-process; return (exit code, stdout, stderr), checking no traceback leaked."""
    from covid_ct_scan_images.cli import main as cli_main

    code = cli_main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    return code, out, err


def main(argv: list[str] | None = None) -> int:
    """Make a broken copy: ``python tests/bad_inputs.py SOURCE TARGET``."""
    parser = argparse.ArgumentParser(description="Make a deliberately broken copy of a raw download.")
    parser.add_argument("source", type=Path, help="a raw download (folder or parent folder)")
    parser.add_argument("target", type=Path, help="a new folder to create")
    args = parser.parse_args(argv)
    if args.target.exists():
        parser.error(f"{args.target} exists; give a new folder")
    root = make_broken_copy(args.source, args.target)
    print(f"broken copy at {root}; now run: covid-ct audit {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
