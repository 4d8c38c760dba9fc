"""Where a dataset comes from: a ``--data-dir`` value turned into a folder of images.

- a folder (:func:`kd_keras.data.scan` reads its layout) is itself;
- ``synthetic[:CLASSES[:IMAGES_PER_CLASS]]``: the package's synthetic stripes, made once;
- a pack made by ``kd-keras pack`` (:mod:`kd_keras.pack`): checked and unpacked once;
- ``tfds:cats_vs_dogs``: exported once from ``tensorflow_datasets``, when it is installed.

What is made or unpacked goes into ``cache_dir`` (a runs folder's ``.cache``), never into a
user's dataset folder.

Examples:
    >>> from kd_keras.sources import resolve_source
    >>> folder = resolve_source("synthetic:3:20", "runs/.cache")  # 3 classes of 20 stripes, made once
    >>> folder
    'runs/.cache/synthetic-3x20'
"""

import os

from kd_keras.errors import UserError
from kd_keras.synthetic import write_synthetic


def resolve_source(spec, cache_dir):
    """Turns a ``--data-dir`` value into a readable folder (making synthetic/tfds data once)."""
    spec = os.fspath(spec)
    if spec == "synthetic" or spec.startswith("synthetic:"):
        parts = spec.split(":")[1:]
        try:
            num_classes = int(parts[0]) if parts else 2
            per_class = int(parts[1]) if len(parts) > 1 else 200
        except ValueError:
            raise UserError(f"bad synthetic spec {spec!r}; use synthetic[:CLASSES[:IMAGES_PER_CLASS]]") from None
        if num_classes < 2 or per_class < 7:
            raise UserError("synthetic data needs at least 2 classes and 7 images per class")
        root = os.path.join(cache_dir, f"synthetic-{num_classes}x{per_class}")
        return write_synthetic(root, num_classes, per_class)
    if os.path.isfile(os.path.join(spec, "pack.json")):
        from kd_keras.pack import unpack  # its checks and the tar reader load only for a pack

        return unpack(spec, cache_dir)
    if spec.startswith("tfds:"):
        from kd_keras.tfds_source import export_tfds

        return export_tfds(spec[len("tfds:"):], cache_dir)
    return spec
