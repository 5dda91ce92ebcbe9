"""The private parts of ``datasets`` the builder relies on, kept here and nowhere else.

datasets offers no public hook for either job below. What breaks without each, and the test that fails
loudly when a datasets release changes it (tests/test_datasets_internals.py):

* :class:`FilesBesideTheData` overrides ``DatasetBuilder._download_and_prepare`` and reads
  ``self._output_dir``. While ``download_and_prepare`` runs, ``_output_dir`` is the temporary
  ``*.incomplete`` folder that datasets renames into place only when every split is written, so the split
  manifest, the audit report and the input record written there appear together with the Arrow files or
  not at all. Written after ``download_and_prepare`` returns instead, an interrupted or failed build would
  leave a cache that datasets reuses without them (or with a manifest of another build).
* :func:`skip_streaming_extension` sets a module's ``_patched_for_streaming``, the mark with which
  ``datasets.streaming.extend_module_for_streaming`` recognises a module it already extended. Every builder
  construction would otherwise wrap ``open``, ``os.path`` and ``pathlib`` of the builder's module in fsspec
  functions (which imports ``scipy.io`` and more), time spent on every reload of a built dataset although
  the builder only reads local files (the download is manual). Without the mark builds stay correct, only
  slower.

Name routing (``load_dataset("covid_ct_scan_images")``) is the other use of private datasets API; it lives
in :mod:`covid_ct_scan_images.registration` with its own checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The attribute ``datasets.streaming.extend_module_for_streaming`` reads to skip a module.
STREAMING_MARK = "_patched_for_streaming"


def skip_streaming_extension(module_name: str) -> None:
    """Mark the module ``module_name`` (already imported) as extended, so that datasets leaves it as it is."""
    setattr(sys.modules[module_name], STREAMING_MARK, True)


class FilesBesideTheData:
    """Mixin for a ``datasets.DatasetBuilder``: text files written into the build folder with the data.

    Put it before the datasets base class; :meth:`files_beside_the_data` runs after every split is written and
    before datasets publishes the folder, so an exception there leaves no build behind.
    """

    def files_beside_the_data(self) -> dict[str, str]:
        """File name -> UTF-8 text to write next to the Arrow files of this build."""
        raise NotImplementedError

    def _download_and_prepare(self, dl_manager, verification_mode, **prepare_split_kwargs):
        super()._download_and_prepare(dl_manager, verification_mode, **prepare_split_kwargs)  # type: ignore[misc]
        output = Path(self._output_dir)  # type: ignore[attr-defined]
        for name, text in self.files_beside_the_data().items():
            (output / name).write_text(text, encoding="utf-8")
