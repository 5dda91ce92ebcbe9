"""Features that cannot see lung disease, read from the original image bytes.

Each image is opened once: the header gives the metadata (format, mode, size, JPEG quantisation
tables, EXIF / ICC presence, ...), then the pixels are decoded at reduced size (JPEG ``draft``)
into one small grayscale array from which the intensity statistics and the 64 x 64 border and
centre views are computed. Only these small arrays are kept, so memory stays bounded however
large the originals are.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, JpegImagePlugin

from ..cores import usable_cores
from ..filestore import ContentMemo, content_key, default_store, kind_version, open_memo
from ..imaging import to_rgb

#: Side of the grayscale working image the intensity statistics are computed on.
WORKING_SIDE = 256

#: Side of the square thumbnail the border and centre probes see.
THUMBNAIL_SIDE = 64

#: Fraction of each side covered by the central region (the lungs) in the border / centre probes.
CENTER_FRACTION = 0.6

#: Number of bins of the normalised grayscale histogram.
HISTOGRAM_BINS = 32

#: Percentiles of the grayscale values used as intensity features.
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)

#: Image modes given their own indicator feature; any other mode sets ``mode_other``.
KNOWN_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I")

#: Bits per pixel of the modes whose depth is not 8 bits per band.
_BITS_PER_PIXEL = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}

#: Pillow format names of JPEG files (``MPO``: a JPEG with extra frames, as some cameras write).
JPEG_FORMATS = frozenset({"JPEG", "MPO"})

#: Names of the metadata features, in column order.
METADATA_FEATURES: tuple[str, ...] = (
    "width",
    "height",
    "aspect_ratio",
    "file_size",
    "bytes_per_pixel",
    "is_jpeg",
    "is_png",
    "is_other_format",
    *(f"mode_{mode}" for mode in KNOWN_MODES),
    "mode_other",
    "bits_per_pixel",
    "jpeg_quality_estimate",
    "jpeg_luma_quant_mean",
    "jpeg_chroma_quant_mean",
    "jpeg_quant_tables",
    "jpeg_subsampling",
    "progressive",
    "has_exif",
    "has_icc",
    "dpi",
)

#: Names of the intensity features, in column order.
INTENSITY_FEATURES: tuple[str, ...] = (
    *(f"hist_{index:02d}" for index in range(HISTOGRAM_BINS)),
    "mean",
    "std",
    *(f"p{percentile:02d}" for percentile in PERCENTILES),
)


@dataclass(frozen=True)
class FeatureMatrices:
    """The probe inputs for a set of images, one row per image.

    ``thumbnails`` holds the 64 x 64 grayscale views scaled to [0, 1]; the border and centre
    probes see the part of them :func:`border_pixels` and :func:`center_pixels` keep.
    """

    metadata: np.ndarray
    intensity: np.ndarray
    thumbnails: np.ndarray


@lru_cache(maxsize=1)
def _reference_luma_tables() -> np.ndarray:
    """Return the IJG luminance tables Pillow writes for qualities 1..100 (row ``q - 1``)."""
    tables = []
    pixel = Image.new("L", (8, 8), 128)
    for quality in range(1, 101):
        buffer = io.BytesIO()
        pixel.save(buffer, format="JPEG", quality=quality)
        with Image.open(buffer) as encoded:
            tables.append(list(encoded.quantization[0]))
    return np.asarray(tables, dtype=np.float64)


def estimate_jpeg_quality(luma_table: Iterable[int]) -> int:
    """Return the IJG quality (1-100) whose luminance table is closest to ``luma_table``.

    Tables written by libjpeg-based encoders match one quality exactly; for others (cameras,
    Photoshop) this is the nearest standard quality by mean absolute difference.
    """
    table = np.asarray(list(luma_table), dtype=np.float64)
    errors = np.abs(_reference_luma_tables() - table).mean(axis=1)
    return int(np.argmin(errors)) + 1


def _bits_per_pixel(mode: str) -> int:
    return _BITS_PER_PIXEL.get(mode, 8 * Image.getmodebands(mode) if mode in Image.MODES else 8)


def _dpi(info: dict) -> float:
    dpi = info.get("dpi")
    if not dpi:
        return 0.0
    try:
        return float(np.mean([float(value) for value in dpi]))
    except (TypeError, ValueError):
        return 0.0


def metadata_vector(image: Image.Image, file_size: int) -> np.ndarray:
    """Return the :data:`METADATA_FEATURES` of an opened (not yet decoded) image."""
    width, height = image.size
    image_format = (image.format or "").upper()
    mode = image.mode
    is_jpeg = image_format in JPEG_FORMATS
    quantization = (getattr(image, "quantization", None) or {}) if is_jpeg else {}
    luma = quantization.get(0)
    chroma = quantization.get(1)
    values: list[float] = [
        width,
        height,
        width / height,
        file_size,
        file_size / (width * height),
        float(is_jpeg),
        float(image_format == "PNG"),
        float(not is_jpeg and image_format != "PNG"),
        *(float(mode == known) for known in KNOWN_MODES),
        float(mode not in KNOWN_MODES),
        _bits_per_pixel(mode),
        estimate_jpeg_quality(luma) if luma is not None else 0.0,
        float(np.mean(luma)) if luma is not None else 0.0,
        float(np.mean(chroma)) if chroma is not None else 0.0,
        len(quantization),
        float(JpegImagePlugin.get_sampling(image)) if is_jpeg else -1.0,
        float(bool(image.info.get("progressive") or image.info.get("progression"))),
        float(bool(image.info.get("exif"))),
        float(bool(image.info.get("icc_profile"))),
        _dpi(image.info),
    ]
    return np.asarray(values, dtype=np.float64)


def _grayscale(image: Image.Image) -> np.ndarray:
    """Decode ``image`` once at reduced size and return it upright as 8-bit grayscale (``uint8``).

    The pixels go through :func:`~covid_ct_scan_images.imaging.to_rgb`, so the probes see the same
    pixels as the models (EXIF orientation, 16-bit scaling and transparency handled the same way).
    """
    if (image.format or "").upper() in JPEG_FORMATS:
        image.draft("RGB" if image.mode == "RGB" else image.mode, (WORKING_SIDE, WORKING_SIDE))
    # A single-channel source stays one channel: its RGB form repeats the value, which Pillow's RGB -> L gives back.
    gray = to_rgb(image, keep_grayscale=True).convert("L")
    gray.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)


def intensity_vector(gray: np.ndarray) -> np.ndarray:
    """Return the :data:`INTENSITY_FEATURES` of a grayscale array with values in [0, 255].

    An 8-bit array's values are counted per level once: the histogram adds the levels of each bin (the same
    counts as ``np.histogram`` gives, several times faster), and the percentiles are those of the values laid
    out in order from the counts (the same numbers as of the array itself, without sorting it). Its mean,
    standard deviation and percentiles equal those of the same values as floats (sums of small integers are exact).
    """
    if gray.dtype == np.uint8 and 256 % HISTOGRAM_BINS == 0:
        levels = np.bincount(gray.ravel(), minlength=256)
        histogram = levels.reshape(HISTOGRAM_BINS, -1).sum(axis=1)
        percentiles = np.percentile(np.repeat(np.arange(256, dtype=np.uint8), levels), PERCENTILES)
    else:
        histogram, _ = np.histogram(gray, bins=HISTOGRAM_BINS, range=(0.0, 256.0))
        percentiles = np.percentile(gray, PERCENTILES)
    histogram = histogram / max(gray.size, 1)
    return np.concatenate([histogram, [gray.mean() / 255.0, gray.std() / 255.0], percentiles / 255.0])


def thumbnail_vector(gray: np.ndarray) -> np.ndarray:
    """Return ``gray`` resized to 64 x 64 (aspect ratio not kept), scaled to [0, 1], flattened."""
    image = Image.fromarray(gray.astype(np.uint8), mode="L")
    small = image.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float64).ravel() / 255.0


class ImageFeatureError(ValueError):
    """An image whose features could not be read; ``index`` is its position in the input."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"image {index} could not be decoded: {error}")
        self.index = index


def image_features(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the metadata, intensity and thumbnail vectors of one image file's bytes.

    Pillow's decompression-bomb warning is silenced: the dataset builder already refused images
    over the user's pixel limit.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            metadata = metadata_vector(image, len(data))
            gray = _grayscale(image)
    return metadata, intensity_vector(gray), thumbnail_vector(gray)


#: Images decoded together: their features are looked up in the file store, and the misses decoded in parallel.
_CHUNK = 64

#: Kind of the stored features in the file store.
FEATURES_KIND = "shortcut_features"

#: The result of one image's features: metadata, intensity and thumbnail vectors.
FeatureRow = tuple[np.ndarray, np.ndarray, np.ndarray]

_T = TypeVar("_T")


def _features_version() -> str:
    """Version of the stored features: every value that shapes them."""
    return kind_version(
        working_side=WORKING_SIDE,
        thumbnail_side=THUMBNAIL_SIDE,
        metadata=METADATA_FEATURES,
        intensity=INTENSITY_FEATURES,
    )


def features_memo() -> ContentMemo:
    """Where features computed outside :func:`extract_features` are saved for it (nothing is loaded)."""
    return open_memo(FEATURES_KIND, _features_version(), keys=())


def learn_features(memo: ContentMemo, sha256: str, row: FeatureRow) -> None:
    """Keep ``row``, the features of the file whose bytes have ``sha256``, for :func:`extract_features`."""
    memo.learn(content_key(sha256), _pack(row))


def features_beside(
    image: Image.Image, data: bytes, decode: Callable[[Image.Image], _T]
) -> tuple[_T, FeatureRow | None]:
    """Run ``decode`` on the opened, not yet loaded ``image`` of ``data`` and compute its features in the same pass.

    ``decode`` is the inspection's reduced decode (the perceptual hash). Where that decode loads the pixels the
    features would see (grayscale JPEG drafted to the same size, or a PNG, always loaded whole), the features reuse
    it; otherwise (colour JPEG: the hash drafts it to grayscale) the bytes in memory are decoded again at reduced
    size. Either way the features equal :func:`image_features` of ``data``. They are ``None`` when they cannot be
    computed (the caller's result does not depend on them; :func:`extract_features` reports the image later).
    """
    try:
        metadata = metadata_vector(image, len(data))  # before ``decode``: drafting changes the size
    except Exception:  # the inspection decides what is wrong with a file, not its features
        metadata = None
    same_pixels = (image.format or "").upper() not in JPEG_FORMATS or image.mode == "L"
    result = decode(image)
    if metadata is None:
        return result, None
    try:
        if same_pixels:
            gray = _grayscale(image)  # the draft is a no-op on the loaded image: the decode above is reused
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as fresh:
                    gray = _grayscale(fresh)
        return result, (metadata, intensity_vector(gray), thumbnail_vector(gray))
    except Exception:
        return result, None


def _pack(row: tuple[np.ndarray, np.ndarray, np.ndarray]) -> bytes:
    """Stored form of one image's features; the thumbnail is exact as 8-bit (its values are k / 255)."""
    metadata, intensity, thumbnail = row
    return metadata.tobytes() + intensity.tobytes() + np.rint(thumbnail * 255.0).astype(np.uint8).tobytes()


def _unpack(stored: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    split = 8 * len(METADATA_FEATURES), 8 * (len(METADATA_FEATURES) + len(INTENSITY_FEATURES))
    metadata = np.frombuffer(stored[: split[0]], dtype=np.float64)
    intensity = np.frombuffer(stored[split[0] : split[1]], dtype=np.float64)
    thumbnail = np.frombuffer(stored[split[1] :], dtype=np.uint8).astype(np.float64) / 255.0
    return metadata, intensity, thumbnail


def extract_features(images: Iterable[bytes]) -> FeatureMatrices:
    """Decode each image once and stack its metadata, intensity and thumbnail vectors.

    Images whose bytes were seen before (any name, any command) are taken from the file store
    (:mod:`covid_ct_scan_images.filestore`); the others are decoded on all cores, a chunk at a time.
    The key is the hash of the bytes themselves, never a column that claims to describe them.
    Raises :class:`ImageFeatureError` (with the image's position) for a file that cannot be decoded.
    """

    def hashed(data: bytes) -> tuple[str, Callable[[], bytes]]:
        return hashlib.sha256(data).hexdigest(), lambda: data

    return _stacked_features(images, hashed)


def extract_file_features(files: Iterable[tuple[Path, str]]) -> FeatureMatrices:
    """:func:`extract_features` of files given as (path, SHA-256 of their bytes), reading only those not in the store.

    The hashes are the inventory's, taken from the same bytes in this run; a file that is decoded is hashed again
    and refused if its bytes changed since (its features would otherwise be stored under another file's hash).
    """

    def read(item: tuple[Path, str]) -> tuple[str, Callable[[], bytes]]:
        path, sha256 = item

        def data() -> bytes:
            content = path.read_bytes()
            if hashlib.sha256(content).hexdigest() != sha256:
                raise OSError(f"{path}: the file changed since it was checked; run again")
            return content

        return sha256, data

    return _stacked_features(files, read)


def _stacked_features(
    images: Iterable[_T], identify: Callable[[_T], tuple[str, Callable[[], bytes]]]
) -> FeatureMatrices:
    """The features of each image, stacked: ``identify`` gives an image's SHA-256 and how to get its bytes.

    ``identify`` runs on the worker threads (hashing and reading release the interpreter lock); the bytes are
    asked for only for images the store does not hold.
    """
    store, version = default_store(), _features_version()
    learned: dict[str, bytes] = {}
    recalled: list[str] = []
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def compute(item: tuple[int, Callable[[], bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index, data = item
        try:
            return image_features(data())
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise ImageFeatureError(index, error) from error

    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:  # Pillow releases the GIL while it decodes
        numbered = enumerate(images)
        while chunk := list(islice(numbered, _CHUNK)):
            identified = list(pool.map(identify, [image for _, image in chunk]))
            keys = [content_key(sha256) for sha256, _ in identified]
            known = {} if store is None else store.get_many(FEATURES_KIND, version, keys)
            recalled.extend(key for key in keys if key in known)
            missing = [
                ((index, data), key)
                for (index, _), (_, data), key in zip(chunk, identified, keys, strict=True)
                if key not in known
            ]
            decoded = pool.map(compute, [item for item, _ in missing])
            computed = dict(zip([key for _, key in missing], decoded, strict=True))
            learned.update((key, _pack(row)) for key, row in computed.items())
            rows.extend(computed[key] if key in computed else _unpack(known[key]) for key in keys)
    if store is not None:
        store.put_many(FEATURES_KIND, version, learned, used=recalled)
    if not rows:
        raise ValueError("no images to extract features from")
    return FeatureMatrices(*(np.vstack(column) for column in zip(*rows, strict=True)))


def center_mask(side: int = THUMBNAIL_SIDE, fraction: float = CENTER_FRACTION) -> np.ndarray:
    """Return a flattened boolean mask of the central ``fraction`` of a ``side`` x ``side`` square."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"center fraction must be between 0 and 1, got {fraction}")
    margin = round(side * (1.0 - fraction) / 2.0)
    mask = np.zeros((side, side), dtype=bool)
    mask[margin : side - margin, margin : side - margin] = True
    return mask.ravel()


def border_pixels(thumbnails: np.ndarray, fraction: float = CENTER_FRACTION) -> np.ndarray:
    """Return the thumbnails' pixels outside the central region (the border-only probe's input), one row each."""
    return thumbnails[:, ~center_mask(fraction=fraction)]


def center_pixels(thumbnails: np.ndarray, fraction: float = CENTER_FRACTION) -> np.ndarray:
    """Return the thumbnails' pixels inside the central region (the centre-only probe's input), one row each."""
    return thumbnails[:, center_mask(fraction=fraction)]
