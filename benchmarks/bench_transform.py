"""Training-input benchmark: the baselines' ``RadiographTransform`` vs a naive PIL + torchvision pipeline.

Per-core throughput (one process, one thread) on original full-resolution files of the realistic download:

* naive: ``PIL.Image.open(path).convert("RGB")`` then torchvision ``Resize(224)``, the usual baseline;
* baselines: ``baselines/radiograph_transforms.py``'s ``RadiographTransform.tensor`` with its training augmentation
  (JPEG draft-mode decode, grayscale kept one channel, resize to 224 x 224, random affine, brightness and
  contrast jitter, normalisation), i.e. more work than the naive pipeline, ending in a model-ready tensor;
* the same transform on the images the ``resized`` config stores (made here from the same files with
  :func:`covid_ct_scan_images.resized.resized_jpeg`, the function the config uses).

Each pipeline runs in its own fresh process, interleaved, several times; the table gives the median images/s
and the ratio (goal: >= 8x). torchvision is not a dependency of the library: run the workers with an
interpreter that has it (``--python``), e.g. a separate venv with ``torch torchvision`` and the library's deps.

    python benchmarks/bench_transform.py --workdir /tmp/covid_bench --python /tmp/tvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

NAIVE = "naive: open().convert('RGB') + torchvision Resize(224)"
BASELINES = "baselines: RadiographTransform.tensor (train augmentation)"
BASELINES_RESIZED = "baselines transform on `resized` config images"

_REPO = Path(__file__).resolve().parents[1]


def sample_files(root: Path, n_images: int) -> list[str]:
    """Every k-th image file of the download (sorted), ``n_images`` in all: a fixed, mixed sample."""
    files = sorted(str(path) for path in root.rglob("*") if path.suffix.lower() in {".png", ".jpg", ".jpeg"})
    step = max(1, len(files) // n_images)
    return files[::step][:n_images]


def resized_copies(files: list[str], folder: Path) -> list[str]:
    """The ``resized`` config's version of each file (what the builder stores), written once under ``folder``."""
    from covid_ct_scan_images.resized import resized_jpeg

    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for index, path in enumerate(files):
        target = folder / f"{index:04d}-{Path(path).stem}.jpg"
        if not target.exists():
            target.write_bytes(resized_jpeg(Path(path).read_bytes()).data)
        copies.append(str(target))
    return copies


def _pipeline(mode: str):
    """The per-image function of a pipeline (imports happen here, in the worker)."""
    import torch

    torch.set_num_threads(1)
    if mode == NAIVE:
        from PIL import Image
        from torchvision.transforms import Resize

        resize = Resize(224)
        return lambda path: resize(Image.open(path).convert("RGB"))
    # The baselines are scripts that import their siblings by name; this benchmark imports one of them.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "baselines"))
    from radiograph_transforms import Augmentation, RadiographTransform

    torch.manual_seed(0)
    transform = RadiographTransform(size=(224, 224), mean=[0.5] * 3, std=[0.5] * 3, augmentation=Augmentation())
    return transform.tensor


def worker(mode: str, files: list[str]) -> dict:
    """Time one pipeline over ``files`` in this process (after a short warm-up); images per second."""
    apply = _pipeline(mode)
    for path in files[:5]:
        apply(path)
    start = time.perf_counter()
    for path in files:
        apply(path)
    elapsed = time.perf_counter() - start
    return {"images": len(files), "seconds": elapsed, "images_per_s": len(files) / elapsed}


def main() -> None:
    """Command line: the driver (default) or one worker (``--worker MODE``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/covid_bench"))
    parser.add_argument("--data", type=Path, help="benchmark this raw folder instead of the generated one")
    parser.add_argument("--python", default=sys.executable, help="interpreter with torch + torchvision")
    parser.add_argument("--images", type=int, default=150, help="images per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.files.read_text()))))
        return

    from harness import Run, Series, interleave, machine_description, markdown_table, run_cold
    from realistic import ensure_download, folder_summary

    data = args.data or ensure_download(args.workdir, 1400)
    files = sample_files(data, args.images)
    inputs = {NAIVE: files, BASELINES: files, BASELINES_RESIZED: resized_copies(files, args.workdir / "resized-sample")}
    for index, name in enumerate(inputs):
        (args.workdir / f"transform_sample_{index}.json").write_text(json.dumps(inputs[name]))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=f"{_REPO}{os.pathsep}{_REPO}")
    print(f"machine: {machine_description()}")
    print(f"input:   {len(files)} original files sampled from {data} ({folder_summary(data)})")
    series = [Series(name) for name in inputs]

    def measure(item: Series, repeat: int) -> Run:
        files_json = args.workdir / f"transform_sample_{list(inputs).index(item.name)}.json"
        argv = [args.python, __file__, "--worker", item.name, "--files", str(files_json)]
        run = run_cold(argv, env)
        item.notes.setdefault("rates", []).append(json.loads(run.stdout.strip().splitlines()[-1])["images_per_s"])
        return run

    interleave(series, args.repeats, measure, log=False)
    rates = {item.name: sorted(item.notes["rates"])[len(item.notes["rates"]) // 2] for item in series}
    rows = [(name, f"{rate:.1f}", f"{1000 / rate:.1f}", f"{rate / rates[NAIVE]:.1f}x") for name, rate in rates.items()]
    print(f"\nTraining input, one process, one thread (per core), median of {args.repeats} runs:\n")
    print(markdown_table(("pipeline", "images/s per core", "ms per image", "ratio to naive"), rows))


if __name__ == "__main__":
    main()
