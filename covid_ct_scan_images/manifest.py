"""The split manifest of a built dataset, read back from its columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .splits import Assignment, manifest_sha256

if TYPE_CHECKING:
    import datasets


def manifest_rows(dataset: datasets.DatasetDict) -> list[Assignment]:
    """Manifest rows of a ``default`` or ``full`` build (the other column filled from the other config is absent).

    For a ``default`` build ``fold`` is -1; for a ``full`` build ``split`` is ``"train"``.
    """
    rows = []
    for split_name, split in dataset.items():
        columns = split.select_columns(
            [c for c in ("image_id", "label", "patient_id", "fold") if c in split.column_names]
        )
        for record in columns.to_list():
            rows.append(
                Assignment(
                    record["image_id"],
                    int(record["label"]),
                    record["patient_id"],
                    split_name,
                    int(record.get("fold", -1)),
                )
            )
    return rows


def manifest_hash(dataset: datasets.DatasetDict) -> str:
    """SHA-256 identifying the split assignment of a built dataset (recorded with every result)."""
    return manifest_sha256(manifest_rows(dataset))
