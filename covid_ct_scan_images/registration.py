"""Make ``datasets.load_dataset("covid_ct_scan_images", ...)`` resolve to this library's builder.

datasets 5.x no longer runs loading scripts, so a dataset name can only reach Python code through
``datasets.load.dataset_module_factory``. Importing this package wraps that function: for our name
it returns a ``DatasetModule`` pointing at :mod:`covid_ct_scan_images.builder`; every other name is
passed on untouched. The wrapper checks, when installed, that the function and ``DatasetModule``
still look as this code expects, and raises :class:`DatasetsCompatibilityError` with a clear
message if a datasets release changed them (no silent fallback to a Hub lookup).
"""

from __future__ import annotations

import functools
import inspect

from .builder import DATASET_NAME, DATASET_VERSION

_EXPECTED_PARAMETERS = ("path", "data_dir")


class DatasetsCompatibilityError(ImportError):
    """The installed datasets release can no longer route a dataset name to our builder."""


def register_with_datasets() -> None:
    """Route ``datasets.load_dataset("covid_ct_scan_images")`` to our builder (idempotent)."""
    import datasets
    import datasets.load as datasets_load

    factory = getattr(datasets_load, "dataset_module_factory", None)
    module_class = getattr(datasets_load, "DatasetModule", None)
    problems = []
    if factory is None or module_class is None:
        problems.append("datasets.load.dataset_module_factory or DatasetModule is gone")
    else:
        parameters = inspect.signature(factory).parameters
        problems.extend(
            f"dataset_module_factory lost its {name!r} parameter"
            for name in _EXPECTED_PARAMETERS
            if name not in parameters
        )
        fields = getattr(module_class, "__dataclass_fields__", {})
        problems.extend(
            f"DatasetModule lost its {name!r} field"
            for name in ("module_path", "hash", "builder_kwargs")
            if name not in fields
        )
    if problems:
        raise DatasetsCompatibilityError(
            f"covid_ct_scan_images cannot register {DATASET_NAME!r} with datasets {datasets.__version__}: "
            + "; ".join(problems)
            + ". Use `covid_ct_scan_images.load_dataset(data_dir=...)` instead, or install datasets>=5.2,<6."
        )
    if getattr(factory, "_covid_ct_wrapped", False):
        return

    @functools.wraps(factory)
    def dataset_module_factory(path, *args, **kwargs):
        if path != DATASET_NAME:
            return factory(path, *args, **kwargs)
        return module_class(
            module_path=f"{__package__}.builder",
            hash=DATASET_VERSION,
            builder_kwargs={"dataset_name": DATASET_NAME},
        )

    dataset_module_factory._covid_ct_wrapped = True
    datasets_load.dataset_module_factory = dataset_module_factory
