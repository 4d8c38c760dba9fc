"""The optional ``tfds:NAME`` source: exports a TensorFlow Datasets split to a class-folder tree."""

import os
import shutil
import tempfile

from kd_keras.errors import UserError


def export_tfds(name, cache_dir):
    """Writes ``tfds`` dataset ``name`` (train split) as ``<cache_dir>/tfds-<name>/all/<class>/*.jpg``.

    ``cats_vs_dogs`` labels are cat = 0, dog = 1, kept as folders ``cats`` and ``dogs``.
    """
    root = os.path.join(cache_dir, f"tfds-{name}")
    if os.path.isdir(root):
        return root
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError("tfds sources need tensorflow-datasets: pip install tensorflow-datasets") from None
    import tensorflow as tf

    try:
        data, info = tfds.load(name, split="train", with_info=True, as_supervised=True)
    except Exception as exc:
        raise UserError(f"tfds could not load {name!r}: {str(exc).splitlines()[0][:160]}") from None
    names = info.features["label"].names
    if name == "cats_vs_dogs":
        names = ["cats", "dogs"]
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tfds-", dir=cache_dir)
    for i, (image, label) in enumerate(data):
        folder = os.path.join(staging, "all", names[int(label)])
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{i:06d}.jpg"), tf.io.encode_jpeg(image))
    try:
        os.rename(staging, root)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return root
