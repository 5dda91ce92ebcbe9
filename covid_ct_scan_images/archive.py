"""Extract the downloaded ``.zip`` safely into the library's own working folder.

Nothing is ever written outside that folder: members with absolute paths or ``..`` parts
(zip-slip), symbolic links, encrypted members, zips inside the zip and members that would expand
more than a hundredfold to over 64 MiB (zip bombs) are skipped and listed; a corrupt member is skipped too.
File names stored without the UTF-8 flag (as Chinese Windows writes them, in GBK) are decoded.
A name that appears twice with different bytes keeps its first copy; the second is listed.
Extraction goes to a temporary folder private to the process, renamed into place at the end, so an
interrupted extraction is never mistaken for a complete one, and of processes extracting the same
zip at once the first to finish wins and the others reuse its folder.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import DatasetError

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1

#: A member that expands more than this many times over, to more than ``_BOMB_MIN_BYTES``, is not extracted.
#: Images barely compress (about 1:1) and a spreadsheet about 1:10; zip bombs reach 1:1000 and more.
_BOMB_RATIO = 100
_BOMB_MIN_BYTES = 64 * 1024 * 1024

#: File in an extraction folder listing the members that were not extracted (tab-separated name, reason).
_SKIPPED_FILE = ".skipped.tsv"


@dataclass
class ExtractedZip:
    """Where a zip was extracted, what was skipped (member name, reason) and other notes."""

    folder: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """Return the member's real name, decoding GBK names that zipfile read as cp437."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for encoding in ("utf-8", "gbk"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unsafe_reason(name: str, info: zipfile.ZipInfo) -> str | None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (posix.parts and posix.parts[0].endswith(":")):
        return "absolute path in the zip (would be written outside the extraction folder); skipped"
    if ".." in posix.parts:
        return "path with '..' in the zip (would be written outside the extraction folder); skipped"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link in the zip; skipped (links could point outside the extraction folder)"
    if info.flag_bits & _ENCRYPTED_FLAG:
        return "encrypted (password-protected) zip member; skipped: extract it yourself and pass the folder"
    if posix.suffix.lower() == ".zip":
        return "zip inside the zip; not extracted: extract it yourself and pass the folder"
    if info.file_size > _BOMB_MIN_BYTES and info.file_size > _BOMB_RATIO * max(info.compress_size, 1):
        return (
            f"would expand from {info.compress_size:,} to {info.file_size:,} bytes (a zip bomb?); not extracted: "
            "extract it yourself if it is genuine"
        )
    return None


def _archive_key(path: Path) -> str:
    status = path.stat()
    identity = f"{path.resolve()}|{status.st_size}|{status.st_mtime_ns}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]


def _reuse(target: Path, note: str) -> ExtractedZip:
    """An earlier (complete: it was renamed into place) extraction, with the members it skipped."""
    skipped = []
    report_file = target / _SKIPPED_FILE
    if report_file.exists():
        for line in report_file.read_text(encoding="utf-8").splitlines():
            name, reason = line.split("\t", 1)
            skipped.append((name, reason))
    return ExtractedZip(folder=target, skipped=skipped, notes=[f"{note} {target}"])


def extract_zip(path: Path, work_dir: Path) -> ExtractedZip:
    """Extract ``path`` under ``work_dir`` (reused when the same zip was extracted before)."""
    target = work_dir / f"{path.stem}-{_archive_key(path)}"
    if target.is_dir():
        return _reuse(target, "reused earlier extraction")
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=work_dir))
    except OSError as error:
        raise DatasetError(
            f"{work_dir}: cannot create the extraction folder ({error.strerror or error}); "
            "make it writable or pass another --cache-dir."
        ) from error
    extracted = ExtractedZip(folder=target)
    try:
        with zipfile.ZipFile(path) as archive:
            _extract_members(archive, staging, extracted)
        (staging / _SKIPPED_FILE).write_text(
            "".join(f"{name}\t{reason}\n" for name, reason in extracted.skipped), encoding="utf-8"
        )
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            # another process extracted the same zip at the same time and finished first: use its folder
            return _reuse(target, "extracted at the same time by another process; using")
    except (zipfile.BadZipFile, RuntimeError, EOFError) as error:
        raise DatasetError(
            f"{path}: cannot extract the zip archive ({error}). Re-download it or extract it yourself."
        ) from error
    except OSError as error:
        raise DatasetError(
            f"{path}: cannot extract into {work_dir} ({error.strerror or error}); free some space there, "
            "or pass another --cache-dir (or extract the zip yourself and pass the folder)."
        ) from error
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return extracted


def _extract_members(archive: zipfile.ZipFile, staging: Path, extracted: ExtractedZip) -> None:
    """Extract every safe member of ``archive`` into ``staging``; record the others in ``extracted.skipped``."""
    first_copy: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = decode_member_name(info)
        if name != info.filename:
            extracted.notes.append(f"zip member name decoded from a legacy encoding: {name}")
        reason = _unsafe_reason(name, info)
        if reason is not None:
            extracted.skipped.append((name, reason))
            continue
        destination = (staging / name.replace("\\", "/")).resolve()
        if not destination.is_relative_to(staging.resolve()):
            extracted.skipped.append((name, "resolves outside the extraction folder; skipped"))
            continue
        if info.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        earlier = first_copy.get(destination.as_posix())
        if earlier is not None:
            if (earlier.CRC, earlier.file_size) == (info.CRC, info.file_size):
                extracted.notes.append(f"zip member {name} appears twice with the same bytes; extracted once")
            else:
                extracted.skipped.append(
                    (name, "appears twice in the zip with different bytes; the first copy was extracted, this one not")
                )
            continue
        first_copy[destination.as_posix()] = info
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
            destination.unlink(missing_ok=True)
            extracted.skipped.append((name, f"corrupt or unsupported in the zip ({error}); skipped"))
