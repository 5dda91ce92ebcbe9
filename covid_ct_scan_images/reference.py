"""The reference list of the 1400 files the download is expected to hold.

``data/reference_files.csv`` is a copy of a list of facts (file name, label, source, patient id,
view, finding, licence) derived from public metadata; see the dataset card for how. It gives the
patient of every Cohen et al. image, which the file names do not carry.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class ReferenceEntry:
    """One row of the reference list."""

    file_name: str
    label: int
    source: str
    patient_id: str
    view: str
    finding: str
    license: str


@lru_cache(maxsize=1)
def reference_entries() -> dict[str, ReferenceEntry]:
    """Return the reference list keyed by lower-cased file name."""
    text = resources.files(__package__).joinpath("data/reference_files.csv").read_text(encoding="utf-8")
    entries = {}
    for row in csv.DictReader(text.splitlines()):
        entry = ReferenceEntry(
            file_name=row["file_name"],
            label=int(row["label"]),
            source=row["source"],
            patient_id=row["patient_id"],
            view=row["view"],
            finding=row["finding"],
            license=row["license"],
        )
        entries[entry.file_name.lower()] = entry
    return entries


@dataclass(frozen=True)
class ReferenceComparison:
    """How the files found compare with the reference list."""

    matched: int
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    def summary(self) -> str:
        """One line for the user: how many match, which are missing, which are extra."""

        def listed(names: tuple[str, ...]) -> str:
            shown = ", ".join(names[:5])
            more = f", ... (+{len(names) - 5} more)" if len(names) > 5 else ""
            return f"{len(names)}" + (f" ({shown}{more})" if names else "")

        total = len(reference_entries())
        return (
            f"reference list: {self.matched} of {total} expected files found; "
            f"missing {listed(self.missing)}; extra {listed(self.extra)}"
        )


def compare_with_reference(file_names: list[str]) -> ReferenceComparison:
    """Compare ``file_names`` (case-insensitively) with the reference list."""
    expected = reference_entries()
    found = {name.lower(): name for name in file_names}
    missing = tuple(sorted(entry.file_name for key, entry in expected.items() if key not in found))
    extra = tuple(sorted(name for key, name in found.items() if key not in expected))
    return ReferenceComparison(matched=len(found) - len(extra), missing=missing, extra=extra)
