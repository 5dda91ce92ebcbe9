"""Saliency-map benchmark: Grad-CAM maps per second against plain inference, for tiny and full-size random models.

Models are built locally from their configs (random weights, no download): the tiny test configs, ViT-B/16 and
ConvNeXt-T at 224 px. Inputs are random tensors, so decoding is left out and the table isolates the model cost.
For each model it times, interleaved, inference (forward, no gradients) and the batched Grad-CAM of
``baselines/saliency.py`` (forward + one backward pass per batch), and reports images per second and the
ratio maps / inference, which a busy machine changes less than the absolute rates.

    python benchmarks/bench_saliency.py --repeats 3 --batch-size 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import ConvNextConfig, ConvNextForImageClassification, ViTConfig, ViTForImageClassification

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "baselines"))

from harness import machine_description, markdown_table

from saliency import gradcam

#: Name -> (model factory, input side).
MODELS: dict[str, tuple[Callable[[], torch.nn.Module], int]] = {
    "tiny ConvNeXt (test config)": (
        lambda: ConvNextForImageClassification(
            ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=64, num_labels=2)
        ),
        64,
    ),
    "tiny ViT (test config)": (
        lambda: ViTForImageClassification(
            ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                      image_size=64, patch_size=8, num_labels=2)
        ),
        64,
    ),
    "ConvNeXt-T": (lambda: ConvNextForImageClassification(ConvNextConfig(num_labels=2)), 224),
    "ViT-B/16": (lambda: ViTForImageClassification(ViTConfig(num_labels=2)), 224),
}


def images_per_second(step: Callable[[], object], n_images: int, repeats: int) -> float:
    """Median images per second of ``step`` (one batch of ``n_images``) over ``repeats`` calls, after a warm-up."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return n_images / statistics.median(times)


def main() -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    rows = []
    for name in args.models:
        factory, side = MODELS[name]
        model = factory().to(device).eval()
        pixels = torch.randn(args.batch_size, 3, side, side, device=device)

        def infer(model=model, pixels=pixels) -> None:
            with torch.inference_mode():
                model(pixel_values=pixels)
            if device.type == "cuda":
                torch.cuda.synchronize()

        def explain(model=model, pixels=pixels) -> None:
            gradcam(model, pixels)
            if device.type == "cuda":
                torch.cuda.synchronize()

        inference = images_per_second(infer, args.batch_size, args.repeats)
        maps = images_per_second(explain, args.batch_size, args.repeats)
        rows.append([name, f"{side} px", args.batch_size, f"{inference:.1f}", f"{maps:.1f}", f"{inference / maps:.2f}"])
        print(f"{name}: inference {inference:.1f} images/s, Grad-CAM maps {maps:.1f} images/s", file=sys.stderr)
    print(f"machine: {machine_description()}; device {device}; torch threads {args.threads}")
    print(
        markdown_table(
            ["model (random weights)", "input", "batch", "inference images/s", "maps images/s", "map cost / inference"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
