"""Images a realistic user may hand over: 16-bit greyscale, and one far too large to decode."""

import keras
import numpy as np
import pytest
from PIL import Image

from kd_keras import input_pipeline

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def _ramp16(path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    return ramp


def test_a_16_bit_greyscale_png_keeps_its_high_byte_in_pillow(tmp_path):
    ramp = _ramp16(tmp_path / "ramp16.png")
    decoded = input_pipeline.decode_file(str(tmp_path / "ramp16.png"), 64)
    expected = (ramp >> 8).astype("uint8")  # the 16-bit value's high byte, in every channel
    np.testing.assert_array_equal(decoded, np.repeat(expected[..., None], 3, axis=-1))
    assert decoded.max() == 255 and decoded.min() == 0 and len(np.unique(decoded)) == 256  # not all white


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares with TensorFlow's decoder")
def test_the_pillow_and_tensorflow_decoders_agree_on_16_bit_png(tmp_path):
    _ramp16(tmp_path / "ramp16.png")
    ours = input_pipeline.decode_file(str(tmp_path / "ramp16.png"), 64)
    theirs = input_pipeline._decode_with_tensorflow(str(tmp_path / "ramp16.png"), 64).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_an_image_over_the_pixel_limit_is_skipped_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setattr(input_pipeline, "MAX_PIXELS", 100 * 100)
    Image.fromarray(np.zeros((101, 100, 3), "uint8")).save(tmp_path / "big.png")
    Image.fromarray(np.full((100, 100, 3), 7, "uint8")).save(tmp_path / "ok.png")
    with pytest.raises(ValueError, match="over the limit"):
        input_pipeline.decode_file(str(tmp_path / "big.png"), 8)
    images, kept, skipped = input_pipeline.decode_images([str(tmp_path / "big.png"), str(tmp_path / "ok.png")], 8,
                                                         log=lambda *_: None)
    assert list(kept) == [1] and images.shape == (1, 8, 8, 3) and int(images.max()) == 7
    assert len(skipped) == 1 and "big.png" in skipped[0] and "over the limit" in skipped[0]


def test_a_keras_zip_bomb_is_refused_before_it_is_loaded(tmp_path):
    import zipfile

    from kd_keras import user_models
    from kd_keras.errors import UserError

    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", bytes(64 * 2**20))  # 64 MiB of zeros in about 64 KiB
    assert bomb.stat().st_size < 2**20
    with pytest.raises(UserError, match="would unpack"):
        user_models.load_model_file(str(bomb), "--teacher-model")
    (tmp_path / "cut.keras").write_bytes(bomb.read_bytes()[:100])
    with pytest.raises(UserError, match="not a readable .keras file"):
        user_models.load_model_file(str(tmp_path / "cut.keras"), "--teacher-model")


def test_a_model_wrapping_a_saved_model_is_named_as_such(tmp_path):
    # Safe mode refuses a TFSMLayer; the message used to call it a Lambda layer.
    import json
    import zipfile

    import keras

    from kd_keras import user_models
    from kd_keras.errors import UserError

    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, 8, 8, 3], "dtype": "float32", "name": "image"}},
              {"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": "TFSMLayer",
               "config": {"filepath": str(tmp_path / "saved"), "call_endpoint": "serve", "name": "wrapped"}}]
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
              "config": {"name": "wrapper", "layers": layers}}
    with zipfile.ZipFile(tmp_path / "wrapper.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
    with pytest.raises(UserError, match="wraps an external SavedModel") as info:
        user_models.load_model_file(str(tmp_path / "wrapper.keras"), "--teacher-model")
    assert "Lambda" not in str(info.value)


def test_a_backbone_below_its_smallest_input_says_so_not_offline():
    from kd_keras import backbones
    from kd_keras.errors import UserError

    with pytest.raises(UserError, match=r"InceptionV3 at 32 px: Input size must be at least 75x75") as info:
        backbones.keras_application("InceptionV3", "none", (32, 32, 3))
    assert "offline" not in str(info.value)
