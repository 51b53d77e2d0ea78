"""The shipped models (MNIST and FSDD) reproduce their JSON numbers on the real test sets."""

import json

import numpy as np
import pytest

from tests.conftest import REPO, load_example, mnist_dir

SAVED = REPO / "saved_models"


NAMES = sorted(p.stem for p in SAVED.glob("mnist_*.json"))


def test_paper_models_are_shipped():
    assert {"mnist_dense_cnn2", "mnist_sparse_cnn2"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_reproduces_json(name, mnist):
    import keras

    import keras_sparse  # noqa: F401
    from keras_sparse.export import run_tflite
    from keras_sparse import datasets

    info = json.loads((SAVED / f"{name}.json").read_text())
    model = keras.models.load_model(SAVED / f"{name}.keras")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    ship = load_example("ship_models.py")
    accuracy, noisy = ship.evaluate_saved(model, "mnist", mnist_dir(), info["noise_seed"])
    assert accuracy == info["test_accuracy"]
    assert noisy["noise_score"] == info["noise_score"]
    assert noisy["correct"] == info["noise_correct"]

    x = datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:64]))
    got = run_tflite(SAVED / f"{name}.tflite", x)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
