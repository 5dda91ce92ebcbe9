"""Patient of each image, and the groups that must stay together in one split.

* Files in the reference list get its patient (Cohen images: Cohen et al.'s ``patientid``).
* Other Kermany-style names carry the patient in the name: ``IM-0115-0001.jpeg`` and
  ``IM-0115-0002.jpeg`` are patient ``kermany-IM-0115``; ``NORMAL2-IM-0587-0001.jpeg`` is
  ``kermany-NORMAL2-IM-0587`` (a separate numbering).
* Anything else is its own patient, ``file-<name>``.

Split groups join patients that must not be separated (near-duplicate images of different
patient ids), with a union-find over the links.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .reference import reference_entries

_KERMANY_NAME = re.compile(r"^((?:NORMAL2-)?IM-\d+)-\d+", re.IGNORECASE)


def source_of(file_name: str) -> str:
    """``kermany`` or ``cohen`` from the reference list or the name pattern, else ``unknown``."""
    entry = reference_entries().get(file_name.lower())
    if entry is not None:
        return entry.source
    return "kermany" if _KERMANY_NAME.match(file_name) else "unknown"


def patient_of(file_name: str) -> str:
    """The patient id of an image, derived from its file name (see the module docstring)."""
    entry = reference_entries().get(file_name.lower())
    if entry is not None:
        return entry.patient_id
    match = _KERMANY_NAME.match(file_name)
    if match:
        return f"kermany-{match.group(1).upper()}"
    return f"file-{file_name}"


def split_groups(patients: list[str], links: Iterable[tuple[int, int]] = ()) -> list[str]:
    """Group key per image: its patient, with linked images' patients merged.

    ``links`` are pairs of indices into ``patients`` that must share a split. The key of a merged
    group is its smallest patient id, so it does not depend on the order of the input.
    """
    parent = {patient: patient for patient in patients}

    def find(patient: str) -> str:
        while parent[patient] != patient:
            parent[patient] = parent[parent[patient]]
            patient = parent[patient]
        return patient

    for first, second in links:
        root_a, root_b = find(patients[first]), find(patients[second])
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    return [find(patient) for patient in patients]
