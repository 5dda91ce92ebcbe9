"""Fine-tune a ConvNeXt on COVID-19-CT SCAN IMAGES with a class-weighted loss; see baselines/README.md.

    python baselines/finetune_convnext.py --data-dir PATH --output_dir runs/convnext
    torchrun --nproc_per_node 4 baselines/finetune_convnext.py --data-dir PATH --output_dir runs/convnext
"""

from finetune import main

DEFAULT_MODEL = "facebook/convnext-tiny-224"

if __name__ == "__main__":
    main(default_model=DEFAULT_MODEL)
