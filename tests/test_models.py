import keras
import numpy as np
import pytest

from kd_keras import layers, models
from kd_keras.errors import UserError

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_resnet18_has_the_papers_parameter_count():
    assert _trainable(models.resnet18((224, 224, 3), num_outputs=1)) == 11_177_025


def test_resnet18_works_at_small_sizes_and_outputs_probabilities():
    model = models.resnet18((32, 32, 3))
    out = model.predict(np.random.rand(2, 32, 32, 3).astype("float32"), verbose=0)
    assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))


def test_teacher_has_the_papers_layer_table_and_shares_its_head():
    model = models.teacher(weights=None, input_shape=(32, 32, 3))
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["InputLayer", "Functional", "Dropout", "Dense", "Activation"]
    assert models.teacher_backbone(model).output.shape == (None, 2048)
    assert not models.teacher_backbone(model).trainable
    head = models.teacher_head(model)
    assert head.get_layer("head_dense") is model.get_layer("head_dense")
    assert _trainable(model) == 2049


def test_teacher_fine_tune_unfreezes_the_backbone():
    model = models.teacher(weights=None, freeze_backbone=False, input_shape=(32, 32, 3))
    assert _trainable(model) > 23_000_000


def test_missing_weights_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="weights file not found"):
        models.backbone("ResNet50", weights=tmp_path / "nope.h5", input_shape=(32, 32, 3))


def test_weights_file_of_another_architecture_is_a_user_error(tmp_path):
    path = tmp_path / "mobilenet.weights.h5"
    models.backbone("MobileNetV2", weights=None, input_shape=(32, 32, 3)).save_weights(path)
    with pytest.raises(UserError, match="does not fit ResNet50"):
        models.backbone("ResNet50", weights=path, input_shape=(32, 32, 3))


def test_local_weights_file_is_loaded(tmp_path):
    source = models.backbone("ResNet50", weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50.weights.h5"
    source.save_weights(path)
    loaded = models.backbone("ResNet50", weights=path, input_shape=(32, 32, 3))
    np.testing.assert_array_equal(loaded.weights[0].numpy(), source.weights[0].numpy())


def test_unknown_backbone_is_a_user_error():
    with pytest.raises(UserError, match="unknown backbone"):
        models.backbone("ResNet999")


@pytest.mark.parametrize("head, shape", [("softmax", (3, 4)), ("cosine", (3, 4)), ("lsoftmax", (3, 4, 2))])
def test_classifier_heads_have_the_shapes_their_losses_expect(head, shape):
    layer = models.classifier_head(head, 4)
    assert tuple(layer(np.ones((3, 8), "float32")).shape) == shape
    if head == "lsoftmax":
        assert layers.lsoftmax_logits(layer(np.ones((3, 8), "float32"))).shape == (3, 4)


def test_saved_model_with_a_cosine_head_loads_once_the_layers_are_imported(tmp_path):
    import subprocess
    import sys

    model = keras.Sequential([keras.Input((8,)), models.cosine_head(3)])
    path = str(tmp_path / "cosine.keras")
    model.save(path)
    script = ("import sys, keras, kd_keras, kd_keras.layers; m = keras.models.load_model(sys.argv[1]); "
              "print(type(m.layers[-1]).__name__, kd_keras.distill.Distiller.__name__)")
    finished = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.split() == ["CosineDense", "Distiller"]
