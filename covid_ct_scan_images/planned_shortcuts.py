"""The shortcut report of a planned download: the ``full`` config's rows, scored without building it.

``covid-ct shortcuts`` needs no Arrow cache: the plan (:mod:`covid_ct_scan_images.plan`) already holds every
image of the ``full`` config with its label, patient, fold and the hash of its bytes, and the file store holds
the features the audit's decode computed under that hash. The report equals
:func:`~covid_ct_scan_images.shortcuts.run_shortcut_probes` of the built config (same rows, same order), so a
report found one way is found the other way too.
"""

from __future__ import annotations

import numpy as np

from .filestore import store_folder
from .plan import DatasetPlan, images_in_row_order
from .progress import progress
from .shortcuts.features import ImageFeatureError, extract_file_features
from .shortcuts.probes import (
    ProbeInputs,
    ProbeSettings,
    check_targets,
    remembered_report,
    shortcut_report,
    undecodable,
)
from .shortcuts.report import ShortcutReport


def shortcut_report_of_plan(plan: DatasetPlan, settings: ProbeSettings | None = None) -> ShortcutReport:
    """The report ``run_shortcut_probes`` gives for the ``full`` config of ``plan``, without building it.

    Each image's features come from the file store under the hash the inventory took of its bytes; only the
    images the store lacks are read and decoded.
    """
    settings = settings or ProbeSettings()
    return shortcut_report(_plan_inputs(plan, settings), settings)


def remembered_report_of_plan(plan: DatasetPlan, settings: ProbeSettings | None = None) -> ShortcutReport | None:
    """The report the file store holds for the ``full`` config of ``plan`` and ``settings``, or ``None``.

    Features come as in :func:`shortcut_report_of_plan` (no image bytes read for those the store holds); no probe
    is fitted. With the store off nothing can be remembered, so nothing is read.
    """
    if store_folder() is None:
        return None
    settings = settings or ProbeSettings()
    return remembered_report(_plan_inputs(plan, settings), settings)


def _plan_inputs(plan: DatasetPlan, settings: ProbeSettings) -> ProbeInputs:
    """The probes' checked inputs for the ``full`` config of ``plan``: its rows, in its order."""
    images = images_in_row_order(plan.images)
    labels = np.asarray([image.assignment.label for image in images], dtype=np.int64)
    folds = np.asarray([image.assignment.fold for image in images], dtype=np.int64)
    check_targets(labels, folds, settings.center_fraction)
    try:
        matrices = extract_file_features(
            progress([(image.file.path, image.file.sha256) for image in images], "shortcut features", unit="file")
        )
    except ImageFeatureError as error:
        raise undecodable(images[error.index].file.file_name, error) from error
    return ProbeInputs(matrices, labels, folds, [image.assignment.patient_id for image in images])
