"""Decode once, cache, augment, batch: the tf.data input pipeline.

The paper's preprocessing: resize to 224x224 with nearest-neighbour interpolation, apply
the model's augmentation, then divide by 255. Decoded, resized uint8 images are cached
once per (file list, size) under the runs folder and shared by every run that needs them.
"""

import hashlib
import os
import sys

import numpy as np
import tensorflow as tf

import keras

AUTOTUNE = tf.data.AUTOTUNE


def _decode_with_tensorflow(path, size):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.image.resize(image, (size, size), method="nearest")
    return tf.cast(image, tf.uint8)


def _decode_with_pillow(path, size):
    """Fallback for what TensorFlow cannot read (CMYK JPEGs, odd PNGs); raises if Pillow can't."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        rgb = image.convert("RGB")
    array = np.asarray(rgb)
    return _decode_array(array, size)


def _decode_array(array, size):
    return tf.image.resize(array, (size, size), method="nearest").numpy().astype("uint8")


def decode_images(paths, size, label="images", log=print):
    """Decodes and resizes every file, in parallel, printing a line per 1,024 images.

    Returns:
        ``(images, kept, skipped)``: a uint8 array ``(n_kept, size, size, 3)``, the indices of
        the files decoded, and ``"path: reason"`` for each file skipped.
    """
    n = len(paths)
    images = np.zeros((n, size, size, 3), "uint8")
    ok = np.zeros(n, bool)
    indexed = tf.data.Dataset.from_tensor_slices((tf.range(n), tf.constant(paths or [""], tf.string)[:n]))
    decoded = indexed.map(lambda i, p: (i, _decode_with_tensorflow(p, size)), num_parallel_calls=AUTOTUNE)
    decoded = decoded.ignore_errors().batch(256).prefetch(AUTOTUNE)
    done = 0
    for index, batch in decoded:
        images[index.numpy()] = batch.numpy()
        ok[index.numpy()] = True
        done += len(index)
        if done // 1024 != (done - len(index)) // 1024 or done == n:
            log(f"decoding {label}: {done}/{n}")
    skipped = []
    for i in np.flatnonzero(~ok):
        try:
            images[i] = _decode_with_pillow(paths[i], size)
            ok[i] = True
        except Exception as exc:  # unreadable, truncated or not an image
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            skipped.append(f"{paths[i]}: {reason[:100]}")
    kept = np.flatnonzero(ok)
    return images[kept], kept, skipped


def _cache_key(paths, size):
    digest = hashlib.sha1(str(size).encode())
    for path in paths:
        stat = os.stat(path) if os.path.exists(path) else None
        digest.update(f"{os.path.abspath(path)}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    return digest.hexdigest()[:20]


def cached_images(items, size, cache_dir, label="images", log=print):
    """``(images, labels, kept_items, skipped)`` for ``(path, label)`` items, decoded once.

    The arrays live in ``cache_dir`` (one ``.npz`` per file list and size) so the teacher,
    every student and every generation decode the images only once.
    """
    paths = [path for path, _ in items]
    os.makedirs(cache_dir, exist_ok=True)
    cache_file = os.path.join(cache_dir, f"images-{_cache_key(paths, size)}.npz")
    if os.path.exists(cache_file):
        with np.load(cache_file, allow_pickle=False) as blob:
            images, kept, skipped = blob["images"], blob["kept"], list(blob["skipped"])
        log(f"decoding {label}: {len(kept)}/{len(paths)} (cached)")
    else:
        images, kept, skipped = decode_images(paths, size, label, log)
        tmp = cache_file + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, images=images, kept=kept, skipped=np.array(skipped, dtype=str))
        os.replace(tmp, cache_file)
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable file(s) in {label}: "
              + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""), file=sys.stderr)
    labels = np.array([items[i][1] for i in kept], "int32")
    return images, labels, [items[i] for i in kept], skipped


def augmentation(flip=True, shift=0.0, seed=None):
    """The paper's augmentation as Keras layers, or None when there is none.

    ``shift`` works as the old ``ImageDataGenerator(width_shift_range=shift,
    height_shift_range=shift, fill_mode="nearest")``: a random translation of up to
    ``shift`` of the width and height, uncovered pixels filled with the nearest edge pixel.
    A ``(low, high)`` pair gives the range directly.

    Args:
        flip: random horizontal flips (teacher and students).
        shift: the students' 0.4.
        seed: seed of the flips; the shifts take a seed derived from it.
    """
    stages = []
    if flip:
        stages.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if shift:
        factor = tuple(shift) if isinstance(shift, (tuple, list)) else (-shift, shift)
        # Its own seed: with the flip's, the first batch's flips would equal its shifts' signs.
        stages.append(keras.layers.RandomTranslation(
            factor, factor, fill_mode="nearest", interpolation="bilinear",
            seed=None if seed is None else seed + 7919))
    return keras.Sequential(stages, name="augmentation") if stages else None


def pipeline(images, targets, batch_size, augment=None, shuffle=False, seed=0):
    """A batched ``tf.data.Dataset`` of ``(images / 255, targets)``.

    Args:
        images: uint8 array ``(n, h, w, 3)``.
        targets: an array, or a dict of arrays (e.g. ``{"label": ..., "teacher": ...}``).
        batch_size: images per batch.
        augment: a model from :func:`augmentation`, applied before the division by 255.
        shuffle: reshuffle every epoch (seeded).
    """
    dataset = tf.data.Dataset.from_tensor_slices((images, targets))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = augment(x, training=True)
        return x / 255.0, y

    return dataset.map(prepare, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def predict_images(model, images, batch_size=64, verbose=0):
    """``model.predict`` on uint8 images, scaled by the same pipeline as in training."""
    dataset = pipeline(images, np.zeros(len(images), "float32"), batch_size).map(lambda x, y: x)
    return model.predict(dataset, verbose=verbose)
