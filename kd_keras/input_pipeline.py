"""Decode once, cache, batch; augmentation as Keras layers: the input pipeline on any backend.

The paper's preprocessing: resize to 224x224 with nearest-neighbour interpolation, apply
the model's augmentation, then divide by 255. Here:

- decoded, resized uint8 images are cached once per (file list, size) under the runs
  folder and shared by every run that needs them (:func:`cached_images`);
- :class:`ArrayBatches` feeds them to ``fit`` and ``predict`` as a ``keras.utils.PyDataset``
  (NumPy only: it works on TensorFlow, JAX and PyTorch alike), shuffled per epoch with a seed;
- the augmentation and the division by 255 are Keras layers (:func:`preprocessing`) that
  the :class:`~kd_keras.distill.Distiller` runs inside its compiled training step, so on a
  GPU they run on the GPU, not in Python.

TensorFlow decodes the files where it is the backend; elsewhere Pillow does, with the same
nearest-neighbour geometry (JPEG decoders differ by a few grey levels, so the two keep
separate caches).
"""

import concurrent.futures
import hashlib
import logging
import os

import keras
import numpy as np

from kd_keras.files import replace_atomically

_log = logging.getLogger(__name__)


def _backend_is_tensorflow():
    return keras.backend.backend() == "tensorflow"


def _decode_with_tensorflow(path, size):
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.image.resize(image, (size, size), method="nearest")
    return tf.cast(image, tf.uint8)


def nearest_resize(array, size):
    """``tf.image.resize(array, (size, size), method="nearest")`` in NumPy, pixel for pixel.

    Output pixel ``i`` takes input pixel ``floor((i + 0.5) * in / out)`` (half-pixel centres).
    """
    h, w = array.shape[:2]
    rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(int), h - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(int), w - 1)
    return np.ascontiguousarray(array[rows][:, cols]).astype("uint8")


MAX_PIXELS = 40_000_000  # an image larger than this (e.g. 6,400 x 6,250) is skipped, on every decoding path


def _pixels(path):
    """Width x height from the file's header (nothing decoded); 0 when Pillow cannot tell."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - the decoders report what is wrong with the file
        return 0


def _to_rgb(image):
    """A Pillow image as RGB uint8; 16-bit greyscale keeps its high byte, as TensorFlow's decoder."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        high = (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8).astype("uint8")
        return np.repeat(high[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def decode_file(path, size):
    """One image file as a ``(size, size, 3)`` uint8 array, with Pillow; raises if it cannot be read.

    Images over :data:`MAX_PIXELS` are refused from their header, before they are decoded.
    """
    from PIL import Image

    with Image.open(path) as image:
        if image.width * image.height > MAX_PIXELS:
            raise ValueError(f"{image.width} x {image.height} pixels, over the limit of {MAX_PIXELS:,}")
        image.load()
        rgb = _to_rgb(image)
    return nearest_resize(rgb, size)


def _decode_all_with_tensorflow(paths, size, images, ok, progress):
    import tensorflow as tf

    n = len(paths)
    indexed = tf.data.Dataset.from_tensor_slices((tf.range(n), tf.constant(paths or [""], tf.string)[:n]))
    decoded = indexed.map(lambda i, p: (i, _decode_with_tensorflow(p, size)), num_parallel_calls=tf.data.AUTOTUNE)
    for index, batch in decoded.ignore_errors().batch(256).prefetch(tf.data.AUTOTUNE):
        images[index.numpy()] = batch.numpy()
        ok[index.numpy()] = True
        progress(len(index))


def _decode_all_with_pillow(paths, size, images, ok, progress):
    def one(i):
        try:
            images[i] = decode_file(paths[i], size)
            ok[i] = True
        except Exception:  # noqa: BLE001 - retried below, where the reason is recorded
            pass

    workers = min(16, os.cpu_count() or 1)  # Pillow releases the GIL while it decodes
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(paths), 256):
            list(pool.map(one, range(start, min(start + 256, len(paths)))))
            progress(min(256, len(paths) - start))


def decode_images(paths, size, label="images", log=None):
    """Decodes and resizes every file, in parallel, printing a line per 1,024 images.

    Returns:
        ``(images, kept, skipped)``: a uint8 array ``(n_kept, size, size, 3)``, the indices of
        the files decoded, and ``"path: reason"`` for each file skipped.
    """
    log = log or _log.info
    n = len(paths)
    images = np.zeros((n, size, size, 3), "uint8")
    ok = np.zeros(n, bool)
    done = [0]

    def progress(count):
        before, done[0] = done[0], done[0] + count
        if done[0] // 1024 != before // 1024 or done[0] == n:
            log(f"decoding {label}: {done[0]}/{n}")

    if _backend_is_tensorflow():  # TensorFlow decodes whatever it is given: oversized files are left to
        # decode_file below, which refuses them from their header
        from kd_keras.quiet import native_stderr_silenced

        with native_stderr_silenced():  # libjpeg's "Premature end of JPEG file": the file is retried below
            _decode_all_with_tensorflow([p if _pixels(p) <= MAX_PIXELS else "" for p in paths], size, images, ok,
                                        progress)
    else:
        _decode_all_with_pillow(paths, size, images, ok, progress)
    skipped = []
    for i in np.flatnonzero(~ok):  # what TensorFlow cannot read (CMYK JPEGs, WebP), or nobody can
        try:
            images[i] = decode_file(paths[i], size)
            ok[i] = True
        except Exception as exc:  # unreadable, truncated or not an image
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            skipped.append(f"{paths[i]}: {reason[:100]}")
    kept = np.flatnonzero(ok)
    return images[kept], kept, skipped


def _cache_key(paths, size):
    # TensorFlow's keys are those of earlier versions, so their caches stay valid.
    digest = hashlib.sha1(str(size).encode() + (b"" if _backend_is_tensorflow() else b"|pillow"))
    for path in paths:
        stat = os.stat(path) if os.path.exists(path) else None
        digest.update(f"{os.path.abspath(path)}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    return digest.hexdigest()[:20]


def cached_images(items, size, cache_dir, label="images", log=None):
    """``(images, labels, kept_items, skipped)`` for ``(path, label)`` items, decoded once.

    The arrays live in ``cache_dir`` (one ``.npz`` per file list and size) so the teacher,
    every student and every generation decode the images only once.
    """
    log = log or _log.info
    paths = [path for path, _ in items]
    os.makedirs(cache_dir, exist_ok=True)
    cache_file = os.path.join(cache_dir, f"images-{_cache_key(paths, size)}.npz")
    cached = None
    if os.path.exists(cache_file):
        try:
            with np.load(cache_file, allow_pickle=False) as blob:
                cached = blob["images"], blob["kept"], list(blob["skipped"])
            if cached[0].shape[1:] != (size, size, 3) or len(cached[0]) != len(cached[1]):
                raise ValueError(f"arrays of shape {cached[0].shape} and {cached[1].shape}")
        except Exception as exc:  # noqa: BLE001 - truncated, empty or foreign: decoded again
            _log.warning(f"{cache_file} is damaged ({type(exc).__name__}); decoding {label} again")
            cached = None
    if cached is not None:
        images, kept, skipped = cached
        log(f"decoding {label}: {len(kept)}/{len(paths)} (cached)")
    else:
        images, kept, skipped = decode_images(paths, size, label, log)
        replace_atomically(cache_file, lambda tmp: np.savez(tmp, images=images, kept=kept,
                                                            skipped=np.array(skipped, dtype=str)), suffix=".tmp.npz")
    if skipped:
        _log.warning(f"skipped {len(skipped)} unreadable file(s) in {label}: "
                     + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
    labels = np.array([items[i][1] for i in kept], "int32")
    return images, labels, [items[i] for i in kept], skipped


def preprocessing(flip=True, shift=0.0, seed=None):
    """The paper's augmentation, then the division by 255, as Keras layers.

    The random layers act only in training (``training=True``); the division always. So
    the same layers serve the training step (augmented) and validation (not augmented).

    ``shift`` works as the old ``ImageDataGenerator(width_shift_range=shift,
    height_shift_range=shift, fill_mode="nearest")``: a random translation of up to
    ``shift`` of the width and height, uncovered pixels filled with the nearest edge pixel.
    A ``(low, high)`` pair gives the range directly.

    Args:
        flip: random horizontal flips (teacher and students).
        shift: the students' 0.4.
        seed: seed of the flips; the shifts take a seed derived from it.

    Examples:
        >>> layers = preprocessing(flip=True, shift=0.4, seed=1)
        >>> images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype="uint8")
        >>> out = keras.ops.convert_to_numpy(layers(images, training=True))  # flipped, shifted, in [0, 1]
        >>> out.shape, bool(out.min() >= 0.0 and out.max() <= 1.0)
        ((2, 32, 32, 3), True)
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
    stages.append(keras.layers.Rescaling(1.0 / 255.0))
    return keras.Sequential(stages, name="preprocessing")


class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays for ``fit``, ``evaluate`` and ``predict``, on any backend.

    Args:
        inputs: an array ``(n, ...)``, e.g. uint8 images from :func:`cached_images`.
        targets: an array, a dict of arrays (``{"label": ..., "teacher": ...}``) or None
            (batches of inputs alone, for ``predict``).
        batch_size: rows per batch; the last batch may be smaller.
        shuffle: a new order every epoch, drawn from ``seed`` and the epoch's number.
        seed: seeds the order and the ``mirrored`` choices.
        scale: multiplies the inputs (``1 / 255`` for a model that takes [0, 1] images);
            None hands them on as they are (uint8 images for :func:`preprocessing`).
        mirrored: an array like ``inputs``; each epoch, each row comes from it with
            probability 1/2 (the teacher's cached features of flipped images).

    Examples:
        >>> images = np.zeros((40, 8, 8, 3), "uint8")
        >>> train = ArrayBatches(images, {"label": np.zeros(40), "teacher": np.full(40, 0.9)}, 32, shuffle=True)
        >>> len(train), train[1][0].shape  # 2 batches a epoch, the last of 8 images
        (2, (8, 8, 8, 3))
    """

    def __init__(self, inputs, targets=None, batch_size=32, shuffle=False, seed=0, scale=None, mirrored=None):
        super().__init__()
        self.inputs, self.targets, self.mirrored = inputs, targets, mirrored
        self.batch_size, self.shuffle, self.seed, self.scale = int(batch_size), shuffle, int(seed), scale
        self.epoch = 0
        self._draw()

    def _draw(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.inputs)
        self.order = rng.permutation(n) if self.shuffle else np.arange(n)
        self.flips = rng.random(n) < 0.5 if self.mirrored is not None else None

    def __len__(self):
        return -(-len(self.inputs) // self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.inputs[rows]
        if self.mirrored is not None:
            x = np.where(self.flips[rows].reshape((-1,) + (1,) * (x.ndim - 1)), self.mirrored[rows], x)
        if self.scale is not None:
            x = x.astype("float32") * np.float32(self.scale)
        if self.targets is None:
            return (x,)
        if isinstance(self.targets, dict):
            return x, {k: v[rows] for k, v in self.targets.items()}
        return x, self.targets[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self._draw()


def predict_images(model, images, batch_size=64, verbose=0):
    """``model.predict`` on uint8 images, divided by 255 as in training."""
    return model.predict(ArrayBatches(images, None, batch_size, scale=1.0 / 255.0), verbose=verbose)


class _AlwaysTraining(keras.layers.Layer):
    """Calls ``layer`` in training mode, also inside ``predict``."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs, training=True)

    def compute_output_shape(self, input_shape):
        return input_shape


def augmented_predictor(model, layers):
    """A model that applies ``layers`` (:func:`preprocessing`) in training mode, then ``model``.

    Its ``predict`` on uint8 images gives a new draw of the training augmentation each call,
    compiled like any prediction (on the GPU where there is one).
    """
    predictor = keras.Sequential([_AlwaysTraining(layers), model])
    predictor.build((None,) + tuple(model.input_shape[1:]))
    return predictor
