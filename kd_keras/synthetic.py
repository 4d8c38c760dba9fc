"""A deterministic, learnable synthetic image dataset: the offline default for demos and CI.

Each class is a family of noisy stripe patterns with its own orientation and tint, so a
small CNN learns it in a few epochs and shifts or flips do not destroy the signal. The
images are written once as PNG files under a cache folder and then read like any
folder dataset, so the synthetic data goes through exactly the same code as real data.
"""

import os
import shutil
import tempfile

import numpy as np

SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}


def synthetic_image(label, num_classes, rng, size=64):
    """One uint8 RGB image of class ``label``: stripes at the class's angle, tinted, with noise."""
    angle = np.pi * label / num_classes + rng.normal(0, 0.12)
    frequency = rng.uniform(0.15, 0.35)
    yy, xx = np.mgrid[0:size, 0:size]
    phase = rng.uniform(0, 2 * np.pi)
    stripes = np.sin(frequency * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
    tint = np.roll(np.array([1.0, 0.6, 0.3]), label % 3)
    image = 128 + 60 * stripes[..., None] * tint + rng.normal(0, 40, (size, size, 3))
    return np.clip(image, 0, 255).astype("uint8")


def write_synthetic(root, num_classes=2, images_per_class=200, size=64, seed=0):
    """Writes ``root/{train,valid,test}/synthetic_<k>/<i>.png`` once; returns ``root``.

    Args:
        root: target folder; if it already holds the dataset it is reused.
        num_classes: 2 for the distillation demo, more for the loss study.
        images_per_class: split 70/15/15 into train/valid/test.
        size: image side in pixels.
        seed: the whole dataset is a function of the arguments.
    """
    from PIL import Image

    if os.path.isdir(root):
        return root
    os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".synthetic-", dir=os.path.dirname(os.path.abspath(root)))
    rng = np.random.default_rng(seed)
    counts = {split: int(round(images_per_class * f)) for split, f in SPLIT_FRACTIONS.items()}
    counts["train"] = images_per_class - counts["valid"] - counts["test"]
    for split, count in counts.items():
        for label in range(num_classes):
            folder = os.path.join(staging, split, f"synthetic_{label}")
            os.makedirs(folder)
            for i in range(count):
                image = synthetic_image(label, num_classes, rng, size)
                Image.fromarray(image).save(os.path.join(folder, f"{i:05d}.png"))
    try:
        os.rename(staging, root)
    except OSError:  # another process won the race; use its copy
        shutil.rmtree(staging, ignore_errors=True)
    return root
