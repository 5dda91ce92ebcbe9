"""Fine-tune a ViT on COVID-19-CT SCAN IMAGES with a class-weighted loss; see baselines/README.md.

    python baselines/finetune_vit.py --data-dir PATH --output_dir runs/vit
    torchrun --nproc_per_node 4 baselines/finetune_vit.py --data-dir PATH --output_dir runs/vit
"""

from finetune import main

DEFAULT_MODEL = "google/vit-base-patch16-224-in21k"

if __name__ == "__main__":
    main(default_model=DEFAULT_MODEL)
