"""Randomly initialised ViT and ConvNeXt checkpoints (model + image processor) saved like Hub checkpoints.

For machines without Hub access (tests, CI, an offline GPU) the scripts need a ``--model`` folder. The
``tiny`` preset is a few thousand parameters at 32 px, for tests and CPU smoke runs; the ``full`` preset
has the architecture of the default checkpoints (ViT-B/16 at 224 px, ConvNeXt-T at 224 px) but random
weights, to measure throughput where the pretrained weights cannot be downloaded. Neither is pretrained::

    python baselines/random_checkpoints.py runs/checkpoints --preset tiny
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    ConvNextConfig,
    ConvNextForImageClassification,
    ConvNextImageProcessor,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)

PRESETS = ("tiny", "full")


def save_random_checkpoints(folder: Path, preset: str = "tiny", image_size: int = 32, seed: int = 0) -> dict[str, Path]:
    """Save random ``vit`` and ``convnext`` checkpoints under ``folder``; return their folders by name.

    ``image_size`` applies to the ``tiny`` preset only (``full`` is 224 px like the default checkpoints).
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, not {preset!r}")
    torch.manual_seed(seed)
    folder = Path(folder)
    if preset == "tiny":
        vit_config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                               image_size=image_size, patch_size=8, num_labels=2)
        convnext_config = ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=image_size,
                                         num_labels=2)
    else:
        image_size = 224
        vit_config, convnext_config = ViTConfig(num_labels=2), ConvNextConfig(num_labels=2)  # ViT-B/16, ConvNeXt-T
    checkpoints = {"vit": folder / "vit", "convnext": folder / "convnext"}
    ViTForImageClassification(vit_config).save_pretrained(checkpoints["vit"])
    ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(checkpoints["vit"])
    ConvNextForImageClassification(convnext_config).save_pretrained(checkpoints["convnext"])
    ConvNextImageProcessor(size={"shortest_edge": image_size}).save_pretrained(checkpoints["convnext"])
    return checkpoints


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``random_checkpoints.py FOLDER [--preset tiny|full] [--image-size N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write vit/ and convnext/")
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--image-size", type=int, default=32, help="input size of the tiny preset (default 32)")
    args = parser.parse_args(argv)
    for name, path in save_random_checkpoints(args.folder, args.preset, args.image_size).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
