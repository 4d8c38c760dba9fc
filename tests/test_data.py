import os

import numpy as np
import pytest
from PIL import Image

from kd_keras import data, input_pipeline
from kd_keras.errors import UserError
from kd_keras.synthetic import write_synthetic

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def _image(path, mode="RGB", size=(20, 16), value=120):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "P") else (value,) * len(mode)).save(path)


def _listing(root):
    return sorted((d, sorted(f)) for d, _, f in os.walk(root))


def test_class_folders_with_spaces_and_mixed_case_extensions(tmp_path):
    _image(tmp_path / "red fox" / "a.JPG")
    _image(tmp_path / "red fox" / "b.png")
    _image(tmp_path / "owl" / "c.Jpeg")
    (tmp_path / "owl" / "notes.txt").write_text("not an image")
    dataset = data.scan(tmp_path)
    assert dataset.class_names == ["owl", "red fox"]
    assert dataset.counts() == {"all": {"owl": 1, "red fox": 2}}


def test_split_folders_kaggle_flat_and_petimages_layouts(tmp_path):
    for split in ("train", "validation"):
        for name in ("cat.1.jpg", "dog.2.jpg", "dog.3.jpg"):
            _image(tmp_path / "kaggle" / split / name)
    kaggle = data.scan(tmp_path / "kaggle")
    assert kaggle.class_names == ["cats", "dogs"]  # dog = 1, as in the paper
    assert kaggle.counts()["valid"] == {"cats": 1, "dogs": 2}
    _image(tmp_path / "PetImages" / "Cat" / "1.jpg")
    _image(tmp_path / "PetImages" / "Dog" / "1.jpg")
    pets = data.scan(tmp_path / "PetImages")
    assert pets.class_names == ["Cat", "Dog"] and [label for _, label in pets.splits["all"]] == [0, 1]


@pytest.mark.parametrize("problem, message", [
    ("missing", "not found"), ("empty", "no images"), ("one_class", "one class"), ("extra_class", "lacks"),
])
def test_bad_folders_are_user_errors(tmp_path, problem, message):
    root = tmp_path / "d"
    if problem == "empty":
        root.mkdir()
    if problem == "one_class":
        _image(root / "only" / "a.jpg")
    if problem == "extra_class":
        _image(root / "train" / "a" / "1.jpg")
        _image(root / "train" / "b" / "1.jpg")
        _image(root / "valid" / "c" / "1.jpg")
    with pytest.raises(UserError, match=message):
        data.scan(root)


def test_unreadable_files_are_skipped_and_odd_modes_become_rgb(tmp_path):
    paths = []
    for mode in ("RGB", "L", "P", "RGBA", "CMYK"):
        path = str(tmp_path / f"{mode}.{'jpg' if mode in ('L', 'CMYK') else 'png'}")
        _image(path, mode)
        paths.append(path)
    gif = str(tmp_path / "anim.gif")
    Image.new("P", (10, 10), 3).save(gif, save_all=True, append_images=[Image.new("P", (10, 10), 9)])
    truncated = str(tmp_path / "truncated.jpg")
    _image(truncated, size=(64, 64))
    with open(truncated, "r+b") as f:
        f.truncate(300)
    garbage = str(tmp_path / "garbage.png")
    with open(garbage, "w") as f:
        f.write("this is not a png")
    images, kept, skipped = input_pipeline.decode_images(paths + [gif, truncated, garbage], 8, log=lambda *_: None)
    assert images.shape == (6, 8, 8, 3) and images.dtype == np.uint8
    assert list(kept) == [0, 1, 2, 3, 4, 5]
    assert [s.split(":")[0] for s in skipped] == [truncated, garbage]


def test_split_is_stratified_deterministic_and_cuts_test_from_valid(tmp_path):
    items = [(f"/x/{c}/{i}.jpg", c) for c in (0, 1) for i in range(100)]
    dataset = data.Dataset("d", ["a", "b"], {"all": items})
    first, second = data.split(dataset, seed=3), data.split(dataset, seed=3)
    assert first.splits == second.splits
    assert {s: len(v) for s, v in first.splits.items()} == {"train": 140, "valid": 30, "test": 30}
    assert sum(label for _, label in first.splits["valid"]) == 15
    assert data.split(dataset, seed=4).splits != first.splits
    two = data.Dataset("d", ["a", "b"], {"train": items[:150], "valid": items[150:] + items[:10]})
    assert set(data.split(two).splits) == {"train", "valid", "test"}


def test_train_and_test_without_valid_keeps_the_given_test(tmp_path):
    for split, n in (("train", 20), ("test", 4)):
        for c in ("apple", "banana"):
            for i in range(n):
                _image(tmp_path / "fruits" / split / c / f"{i}.jpg")
    dataset = data.split(data.scan(tmp_path / "fruits"), seed=0)
    given_test = sorted(data.scan(tmp_path / "fruits").splits["test"])
    assert sorted(dataset.splits["test"]) == given_test
    assert {s: len(v) for s, v in dataset.splits.items()} == {"train": 34, "valid": 6, "test": 8}
    assert not set(dataset.splits["valid"]) & set(given_test)


def test_flip_and_shift_draw_from_their_own_seeds():
    augment = input_pipeline.preprocessing(flip=True, shift=0.4, seed=5)
    flip, shift, _ = augment.layers
    assert flip.seed != shift.seed


def test_subsample_keeps_per_class_limits():
    items = [(f"/x/{c}/{i}.jpg", c) for c in (0, 1) for i in range(50)]
    small = data.subsample(data.Dataset("d", ["a", "b"], {"train": items}), {"train": 7})
    assert small.counts()["train"] == {"a": 7, "b": 7}


def test_student_shift_moves_content_and_fills_with_edge_pixels():
    image = np.zeros((1, 8, 8, 3), "float32")
    image[0, :, 0] = 50.0  # left edge column
    image[0, 3:5, 3:5] = 255.0  # a bright square
    shift = input_pipeline.preprocessing(flip=False, shift=(0.25, 0.25), seed=0)  # exactly +2 px each way
    out = 255.0 * np.asarray(shift(image, training=True))[0, ..., 0]
    bright = np.argwhere(out > 200)
    assert bright.min(axis=0).tolist() == [5, 5] and bright.max(axis=0).tolist() == [6, 6]
    np.testing.assert_allclose(out[:, :2], 50.0)  # uncovered columns repeat the left edge pixel
    np.testing.assert_allclose(out[:2, 2:], np.tile(image[0, 0, :6, 0], (2, 1)))  # uncovered rows: the top row


def test_preprocessing_augments_then_divides_by_255_and_only_divides_in_inference():
    image = np.zeros((1, 8, 8, 3), "uint8")
    image[0, :, 4:] = 200  # right half bright: a flip moves it
    layers = input_pipeline.preprocessing(flip=True, shift=0.0, seed=3)
    plain = np.asarray(layers(image, training=False))
    np.testing.assert_allclose(plain, image / 255.0, rtol=1e-6)  # validation: no augmentation, scaled
    draws = [np.asarray(layers(image, training=True))[0, 0, :, 0] for _ in range(12)]
    mirrored = image[0, 0, ::-1, 0] / 255.0
    assert all(np.allclose(d, image[0, 0, :, 0] / 255.0) or np.allclose(d, mirrored) for d in draws)
    assert any(np.allclose(d, mirrored) for d in draws) and any(np.allclose(d, plain[0, 0, :, 0]) for d in draws)


def test_array_batches_cover_every_row_once_per_epoch_in_a_new_order():
    x = np.arange(10)[:, None]
    batches = input_pipeline.ArrayBatches(x, {"label": np.arange(10) * 2}, 4, shuffle=True, seed=1)
    assert len(batches) == 3
    epochs = []
    for _ in range(2):
        rows = [batches[i] for i in range(len(batches))]
        assert all((b[1]["label"] == 2 * b[0][:, 0]).all() for b in rows)  # targets travel with their rows
        epochs.append(np.concatenate([b[0][:, 0] for b in rows]).tolist())
        batches.on_epoch_end()
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(10)) and epochs[0] != epochs[1]
    again = input_pipeline.ArrayBatches(x, None, 4, shuffle=True, seed=1)
    assert np.concatenate([again[i][0][:, 0] for i in range(3)]).tolist() == epochs[0]  # seeded
    scaled = input_pipeline.ArrayBatches(np.full((3, 2), 255, "uint8"), None, 2, scale=1 / 255)
    assert scaled[0][0].dtype == np.float32 and np.allclose(scaled[1][0], 1.0) and len(scaled[1][0]) == 1


def test_mirrored_rows_are_drawn_half_the_time_per_epoch():
    x, mirror = np.zeros((2000, 1)), np.ones((2000, 1))
    batches = input_pipeline.ArrayBatches(x, np.zeros(2000), 2000, seed=0, mirrored=mirror)
    first = batches[0][0][:, 0]
    batches.on_epoch_end()
    second = batches[0][0][:, 0]
    assert 0.45 < first.mean() < 0.55 and set(np.unique(first)) == {0.0, 1.0}
    assert (first != second).mean() > 0.4  # a new draw each epoch


def test_nearest_resize_matches_tensorflows_pixel_for_pixel():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    for h, w, size in ((239, 256, 64), (149, 150, 224), (7, 5, 32), (256, 207, 31)):
        image = rng.integers(0, 256, (h, w, 3), dtype="uint8")
        expected = tf.image.resize(image, (size, size), method="nearest").numpy().astype("uint8")
        np.testing.assert_array_equal(input_pipeline.nearest_resize(image, size), expected)


def test_synthetic_data_is_deterministic_and_nothing_is_written_into_the_source(tmp_path):
    a = write_synthetic(str(tmp_path / "a"), num_classes=3, images_per_class=20, size=16, seed=1)
    b = write_synthetic(str(tmp_path / "b"), num_classes=3, images_per_class=20, size=16, seed=1)
    before = _listing(a)
    dataset = data.scan(a)
    assert dataset.class_names == ["synthetic_0", "synthetic_1", "synthetic_2"]
    assert dataset.counts()["train"] == {"synthetic_0": 14, "synthetic_1": 14, "synthetic_2": 14}
    x, _, _, _ = input_pipeline.cached_images(dataset.splits["train"], 16, str(tmp_path / "cache"), log=lambda *_: None)
    y, _, _, _ = input_pipeline.cached_images(data.scan(b).splits["train"], 16, str(tmp_path / "cache"), log=lambda *_: None)
    np.testing.assert_array_equal(x, y)
    assert _listing(a) == before


def test_real_cats_vs_dogs_counts(shared_data):
    counts = data.scan(shared_data / "cats_vs_dogs").counts()
    assert counts == {"train": {"cats": 3800, "dogs": 3800}, "valid": {"cats": 814, "dogs": 814},
                      "test": {"cats": 815, "dogs": 815}}


def test_real_weather_and_fruits_counts(shared_data):
    assert data.scan(shared_data / "weather").counts()["valid"] == {"cloudy": 60, "rain": 43, "shine": 51, "sunrise": 72}
    assert data.scan(shared_data / "fruits").counts()["train"] == {"apple": 75, "banana": 73, "mixed": 20, "orange": 72}
