"""The shared recipe behind ``finetune_vit.py`` and ``finetune_convnext.py``, and ``pool_folds.py``'s pooling.

The recipe: parse arguments, load the splits through the library (or ``datasets.load_dataset``), weight the classes
from the training split, decode and augment images lazily, fine-tune with ``Trainer`` and a class-weighted
cross-entropy, pick the decision threshold on validation, and write ``metrics.json``, ``predictions.csv``, plots and
a model card. One module per job:

* :mod:`.arguments`: the scripts' options, the ``TrainingArguments`` defaults and the class-weight rule;
* :mod:`.data`: loading the splits, cross-validation folds and the data's provenance;
* :mod:`.transforms`: decoding, augmenting, masking and normalising images;
* :mod:`.loss`: the class-weighted cross-entropy and the ``Trainer`` subclass that normalises it;
* :mod:`.callbacks`: the training-throughput callback;
* :mod:`.evaluation`: the metric module, the validation threshold rule and per-split metrics;
* :mod:`.outputs`: ``predictions.csv``, ``metrics.json``, plots, the results Markdown and library versions;
* :mod:`.run`: one training run, pooling cross-validation folds, and :func:`main`.

The scripts stay thin: each calls :func:`main` with its default checkpoint. Every public name is re-exported here,
so ``import training`` (with ``baselines/`` on ``sys.path``) and ``import baselines.training`` both give the recipe.
"""

from .arguments import BaselineArguments, parse_arguments, parse_class_weights, runtime_defaults
from .callbacks import ThroughputCallback
from .data import dataset_provenance, fold_splits, load_splits, number_of_folds, published_version
from .evaluation import (
    METRIC_DIR,
    THRESHOLD_RULE,
    choose_threshold,
    load_metric,
    make_compute_metrics,
    positive_probability,
    summarise,
)
from .loss import WeightedCrossEntropy, WeightedLossTrainer
from .outputs import (
    CONFOUND_CAVEAT,
    PREDICTION_COLUMNS,
    device_description,
    library_versions,
    plot_results,
    read_predictions,
    results_markdown,
    shortcut_comparison,
    write_json,
    write_predictions,
)
from .run import POOLED_SPLIT, main, pool_folds, release_process_group, train_and_evaluate
from .transforms import Augmentation, RadiographTransform, open_image, processor_size, with_lazy_transform

__all__ = [
    "CONFOUND_CAVEAT",
    "METRIC_DIR",
    "POOLED_SPLIT",
    "PREDICTION_COLUMNS",
    "THRESHOLD_RULE",
    "Augmentation",
    "BaselineArguments",
    "RadiographTransform",
    "ThroughputCallback",
    "WeightedCrossEntropy",
    "WeightedLossTrainer",
    "choose_threshold",
    "dataset_provenance",
    "device_description",
    "fold_splits",
    "library_versions",
    "load_metric",
    "load_splits",
    "main",
    "make_compute_metrics",
    "number_of_folds",
    "open_image",
    "parse_arguments",
    "parse_class_weights",
    "plot_results",
    "pool_folds",
    "positive_probability",
    "processor_size",
    "published_version",
    "read_predictions",
    "release_process_group",
    "results_markdown",
    "runtime_defaults",
    "shortcut_comparison",
    "summarise",
    "train_and_evaluate",
    "with_lazy_transform",
    "write_json",
    "write_predictions",
]
