"""The dataset's version history: the one source of the dataset version and of the changelog.

``DATASET_VERSION`` (the builder's version, the export's ``version`` in the card's YAML, the push tag) is the
newest entry; the dataset card renders the whole history; pyproject.toml states the same version (a test
checks that they agree).
"""

from __future__ import annotations

#: Released versions, newest first: (version, what changed). Any change to split membership is a major bump.
VERSION_HISTORY: tuple[tuple[str, str], ...] = (
    (
        "1.0.0",
        "First release. Configs `default` (train / validation / test, stratified, grouped by patient), `full` "
        "(one split with a `fold` column for cross-validation) and `resized` (the `default` splits with every "
        "image re-encoded upright, at most 512 px; built locally from the full-resolution images, not "
        "exported); features `image`, `label`, `image_id`, `patient_id`, `source`, `width`, `height`, "
        "`sha256`, `mode`, `exif_orientation`.",
    ),
)

#: The current dataset version.
DATASET_VERSION: str = VERSION_HISTORY[0][0]

__all__ = ["DATASET_VERSION", "VERSION_HISTORY"]
