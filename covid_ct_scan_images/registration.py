"""Make the name ``"covid_ct_scan_images"`` resolve to this library's builder in every datasets entry point.

datasets 5.x no longer runs loading scripts, so a dataset name can only reach Python code through
``datasets.load.dataset_module_factory``. :func:`register_with_datasets` (run once both
``covid_ct_scan_images`` and datasets are imported) wraps that function: for our name it returns a
``DatasetModule`` pointing at :mod:`covid_ct_scan_images.builder`; every other name is passed on untouched.

This module and :mod:`covid_ct_scan_images.datasets_internals` (the builder's two) are the only ones that touch
datasets internals. What this one relies on, and what breaks without it:

* ``datasets.load.dataset_module_factory`` and ``datasets.load.DatasetModule`` (fields ``module_path``,
  ``hash``, ``builder_kwargs``): ``load_dataset`` and ``load_dataset_builder`` look the factory up in
  ``datasets.load`` at call time. Without the wrapper the name goes to the Hub.
* ``datasets.inspect`` imported the factory by name (``from .load import dataset_module_factory``), so it
  holds its own reference, which is replaced too. Without that, ``get_dataset_config_names`` and
  ``get_dataset_default_config_name`` go to the Hub even after the import. (``get_dataset_split_names``,
  ``get_dataset_infos`` and ``get_dataset_config_info`` go through ``load_dataset_builder``.)

``import covid_ct_scan_images`` does not import datasets (over a second, for the commands that never build):
when datasets is not imported yet, :func:`register_when_datasets_is_imported` puts a finder in ``sys.meta_path``
(Python's public import hook) that registers as soon as datasets' own import has run.

The checks run at registration and raise :class:`DatasetsCompatibilityError` with a clear message if a
datasets release changed any of this (no silent fallback to a Hub lookup); tests/test_dataset_name.py
fails loudly on such a release too.
"""

from __future__ import annotations

import functools
import importlib.abc
import inspect
import sys

from .layout import DATASET_NAME
from .versions import DATASET_VERSION

#: Parameters of ``dataset_module_factory`` the wrapper passes on by name.
_EXPECTED_PARAMETERS = ("path", "data_dir")

#: Fields of ``DatasetModule`` the wrapper fills in.
_EXPECTED_MODULE_FIELDS = ("module_path", "hash", "builder_kwargs")

#: Modules of datasets that hold a reference to ``dataset_module_factory`` and are given the wrapper.
FACTORY_HOLDERS = ("datasets.load", "datasets.inspect")


class DatasetsCompatibilityError(ImportError):
    """The installed datasets release can no longer route a dataset name to our builder."""


def _compatibility_problems() -> list[str]:
    """What this module relies on and the installed datasets no longer has (empty when all is there)."""
    import importlib

    import datasets.load as datasets_load

    problems = []
    factory = getattr(datasets_load, "dataset_module_factory", None)
    module_class = getattr(datasets_load, "DatasetModule", None)
    if factory is None or module_class is None:
        return ["datasets.load.dataset_module_factory or DatasetModule is gone"]
    parameters = inspect.signature(factory).parameters
    problems.extend(
        f"dataset_module_factory lost its {name!r} parameter" for name in _EXPECTED_PARAMETERS if name not in parameters
    )
    fields = getattr(module_class, "__dataclass_fields__", {})
    problems.extend(f"DatasetModule lost its {name!r} field" for name in _EXPECTED_MODULE_FIELDS if name not in fields)
    for holder in FACTORY_HOLDERS[1:]:
        if not hasattr(importlib.import_module(holder), "dataset_module_factory"):
            problems.append(f"{holder} no longer imports dataset_module_factory (check how it resolves names)")
    return problems


def register_with_datasets() -> None:
    """Route the name ``"covid_ct_scan_images"`` to our builder in ``datasets`` (idempotent).

    Afterwards ``load_dataset``, ``load_dataset_builder``, ``get_dataset_config_names``,
    ``get_dataset_default_config_name``, ``get_dataset_split_names``, ``get_dataset_config_info`` and
    ``get_dataset_infos`` resolve the name offline. Raises :class:`DatasetsCompatibilityError` when the
    installed datasets release no longer offers what this relies on.
    """
    import importlib

    import datasets
    import datasets.load as datasets_load

    problems = _compatibility_problems()
    if problems:
        raise DatasetsCompatibilityError(
            f"covid_ct_scan_images cannot register {DATASET_NAME!r} with datasets {datasets.__version__}: "
            + "; ".join(problems)
            + ". Use `covid_ct_scan_images.load_dataset(data_dir=...)` instead, or install datasets>=5.2,<6."
        )
    wrapped = datasets_load.dataset_module_factory
    if not getattr(wrapped, "_covid_ct_wrapped", False):
        wrapped = _wrap(wrapped, datasets_load.DatasetModule)
    for holder in FACTORY_HOLDERS:
        importlib.import_module(holder).dataset_module_factory = wrapped


def _wrap(factory, module_class):
    """``factory`` answering our name with a ``module_class`` for :mod:`covid_ct_scan_images.builder`."""

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
    return dataset_module_factory


class _RegisterAfterDatasetsLoads(importlib.abc.MetaPathFinder):
    """Finds ``datasets`` with the other finders and registers us once its import has run.

    It stays in ``sys.meta_path`` until ``datasets`` is imported: ``importlib.util.find_spec("datasets")``
    (transformers asks it to see whether datasets is installed) finds a spec without importing anything.
    """

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != "datasets":
            return None
        for finder in [finder for finder in sys.meta_path if finder is not self]:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def exec_module(module) -> None:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            load(module)
            register_with_datasets()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def register_when_datasets_is_imported() -> None:
    """:func:`register_with_datasets` now if ``datasets`` is imported, else as soon as it is.

    ``import covid_ct_scan_images`` calls this, so the commands that never touch datasets (``covid-ct audit``,
    ``covid-ct shortcuts``) do not pay for importing it (pyarrow, pandas: over a second), and the name still
    resolves in every datasets entry point whatever the order of the two imports.
    """
    if "datasets" in sys.modules:
        register_with_datasets()
    elif not any(isinstance(finder, _RegisterAfterDatasetsLoads) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterDatasetsLoads())
