"""The shipped models (MNIST and FSDD) reproduce their JSON numbers on the real test sets."""

import json

import numpy as np
import pytest

from tests.conftest import REPO, fsdd_dir, load_example, mnist_dir

SAVED = REPO / "saved_models"
NAMES = sorted(p.stem for p in SAVED.glob("*.json"))


def test_paper_models_are_shipped():
    assert {"mnist_dense_cnn2", "mnist_sparse_cnn2", "fsdd_dense_cnn2", "fsdd_sparse_cnn2"} <= set(NAMES)


def _test_inputs(task, mnist, fsdd):
    from keras_sparse import datasets

    if task == "mnist":
        return datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:64]))
    return fsdd["test"][0][:64]


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_reproduces_json(name, mnist, fsdd):
    import keras

    import keras_sparse  # noqa: F401
    from keras_sparse.export import run_tflite

    task = name.split("_")[0]
    info = json.loads((SAVED / f"{name}.json").read_text())
    model = keras.models.load_model(SAVED / f"{name}.keras")
    input_shape = {"mnist": (None, 28, 28, 1), "fsdd": (None, 16000)}[task]
    assert model.input_shape == input_shape and model.output_shape == (None, 10)
    ship = load_example("ship_models.py")
    assert info["input"] == ship.INPUTS[task]
    data_dir = mnist_dir() if task == "mnist" else fsdd_dir()
    accuracy, noisy = ship.evaluate_saved(model, task, data_dir, info["noise_seed"])
    assert accuracy == info["test_accuracy"]
    assert noisy["noise_score"] == info["noise_score"]
    assert noisy["correct"] == info["noise_correct"]

    x = _test_inputs(task, mnist, fsdd)
    got = run_tflite(SAVED / f"{name}.tflite", x)
    expected = model.predict(x, verbose=0)
    # FSDD logits reach ~12: float32 rounding of the raw-audio path allows 1e-6 of that.
    tolerance = {"mnist": dict(atol=1e-4), "fsdd": dict(atol=1e-5, rtol=1e-6)}[task]
    np.testing.assert_allclose(got, expected, **tolerance)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
