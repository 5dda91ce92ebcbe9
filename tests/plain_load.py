"""Load an export folder with plain ``datasets.load_dataset``, with ``covid_ct_scan_images`` made unimportable.

Run as a script (``python -I plain_load.py EXPORT_DIR RESULT_JSON``) by tests/test_export.py: it blocks every
import of ``covid_ct_scan_images``, asserts that the import really fails, loads both configs the way a Hub
user would and writes :func:`summarise` of each to RESULT_JSON. The tests call :func:`summarise` on the
library's own build and compare. This file must not import the library.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import json
import sys

PACKAGE = "covid_ct_scan_images"


class _HidePackage(importlib.abc.MetaPathFinder):
    """Make the package unimportable, whatever way it was installed (editable, wheel, source tree)."""

    def find_spec(self, name, path=None, target=None):
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            raise ModuleNotFoundError(f"{name} is hidden from this process", name=name)
        return None


def summarise(dataset_dict) -> dict:
    """Split names, sizes, features and every row (image as SHA-256 and path of its bytes) of a DatasetDict."""
    import datasets

    summary = {"splits": list(dataset_dict)}
    for split, dataset in dataset_dict.items():
        raw = dataset.cast_column("image", datasets.Image(decode=False))
        rows = []
        for row in raw:
            image = row.pop("image")
            row["image"] = {"sha256": hashlib.sha256(image["bytes"]).hexdigest(), "path": image["path"]}
            rows.append(row)
        summary[split] = {"num_rows": len(dataset), "features": dataset.features.to_dict(), "rows": rows}
    return summary


def main(export_dir: str, result_path: str) -> None:
    """Load both configs of ``export_dir`` without the library and write their summaries."""
    sys.meta_path.insert(0, _HidePackage())
    try:
        __import__(PACKAGE)
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f"{PACKAGE} is importable; the test would not prove anything")

    import datasets

    result = {
        "default": summarise(datasets.load_dataset(export_dir)),
        "full": summarise(datasets.load_dataset(export_dir, "full")),
        "label_names": datasets.load_dataset(export_dir, split="train").features["label"].names,
    }
    loaded = sorted(name for name in sys.modules if name.split(".")[0] == PACKAGE)
    if loaded:
        raise SystemExit(f"{PACKAGE} was imported after all: {loaded}")
    with open(result_path, "w", encoding="utf-8") as stream:
        json.dump(result, stream)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
