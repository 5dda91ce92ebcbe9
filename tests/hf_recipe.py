"""The transformers image-classification recipe, unchanged, on a DatasetDict with ``image`` and ``label`` columns.

:func:`run_recipe` is the recipe as the transformers documentation writes it: ``AutoImageProcessor`` on the
decoded images in a ``with_transform``, ``DefaultDataCollator``, one ``Trainer`` step of a tiny random ViT
(:func:`save_tiny_vit`, saved locally: no Hub). Run as a script (``python -I hf_recipe.py EXPORT_DIR MODEL_DIR
RESULT_JSON``) by tests/test_hf_recipe.py, it loads an export folder with plain ``datasets`` while
``covid_ct_scan_images`` cannot be imported, runs the recipe on it and writes the result. This file must not
import the library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: Side of the tiny model's input: small enough for a CPU step in a test.
IMAGE_SIDE = 32


def save_tiny_vit(model_dir: Path, label_names: list[str]) -> Path:
    """Save a randomly initialised two-class ViT and its image processor to ``model_dir``."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=IMAGE_SIDE,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
    )
    ViTForImageClassification(config).save_pretrained(model_dir)
    ViTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}).save_pretrained(model_dir)
    return model_dir


def run_recipe(dataset_dict, model_dir: Path, output_dir: Path) -> dict:
    """Preprocess with the model's processor, collate with the default collator and take one training step."""
    import torch
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageClassification,
        DefaultDataCollator,
        Trainer,
        TrainingArguments,
    )

    processor = AutoImageProcessor.from_pretrained(model_dir)

    def transform(batch):
        inputs = processor(list(batch["image"]), return_tensors="pt")
        inputs["labels"] = batch["label"]
        return inputs

    prepared = dataset_dict.with_transform(transform)
    collator = DefaultDataCollator()
    train = prepared["train"]
    whole_split = collator([train[index] for index in range(len(train))])
    model = AutoModelForImageClassification.from_pretrained(model_dir)
    arguments = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        max_steps=1,
        remove_unused_columns=False,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=train, data_collator=collator)
    loss = trainer.train().training_loss
    return {
        "pixel_values_shape": list(whole_split["pixel_values"].shape),
        "labels": whole_split["labels"].tolist(),
        "finite_loss": bool(torch.isfinite(torch.tensor(loss))),
        "image_modes": sorted({image.mode for image in dataset_dict["train"]["image"]}),
    }


def main(export_dir: str, model_dir: str, result_path: str) -> None:
    """Load ``export_dir`` with plain datasets (the library hidden), run the recipe and write its result."""
    from plain_load import PACKAGE, _HidePackage

    sys.meta_path.insert(0, _HidePackage())
    import datasets

    result = run_recipe(datasets.load_dataset(export_dir), Path(model_dir), Path(result_path).parent / "trainer")
    loaded = sorted(name for name in sys.modules if name.split(".")[0] == PACKAGE)
    if loaded:
        raise SystemExit(f"{PACKAGE} was imported after all: {loaded}")
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
