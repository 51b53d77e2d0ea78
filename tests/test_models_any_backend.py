"""The paper's model builders, the callbacks and the metrics on whatever backend
runs the tests (TensorFlow here; JAX and PyTorch through tests/test_backends.py)."""

import numpy as np
import pytest

import keras
import keras_sparse as ks
from tests.conftest import to_numpy

BUILDERS = ["mnist_dense_cnn2", "mnist_sparse_cnn2", "mnist_sparse_cnn1", "gsc_sparse_cnn2",
            "gsc_super_sparse_cnn2"]


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_trains_a_step_with_every_callback(name):
    model = getattr(ks.models, name)()
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8,) + model.input_shape[1:]).astype(np.float32)
    y = rng.integers(0, 10, 8)
    scorer = ks.callbacks.EpochNoiseScore([(0.0, x), (0.5, x * 0.5)], y, batch_size=4)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[
        ks.callbacks.UpdateBoostStrength(), ks.callbacks.DutyCycleEntropy(), scorer])
    assert to_numpy(model.predict(x, verbose=0)).shape == (8, 10)
    assert [record["epoch"] for record in scorer.records] == [1, 2]
    assert 0 <= history.history["noise_score"][-1] <= 16
    for layer in ks.callbacks.kwinners_layers(model):
        assert int(layer.learning_iterations.numpy()) == 16
        assert float(layer.boost_strength.numpy()) == np.float32(
            layer.initial_boost_strength * layer.boost_strength_factor**2)
        assert 0 <= history.history[f"{layer.name}_entropy"][-1] <= 1


def test_speech_waveform_model_and_metrics():
    raw = ks.models.waveform_model(ks.models.gsc_sparse_cnn2())
    clips = np.random.default_rng(1).uniform(-0.5, 0.5, size=(2, 16000)).astype(np.float32)
    assert to_numpy(raw.predict(clips, verbose=0)).shape == (2, 10)
    h = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    np.testing.assert_allclose(float(ks.metrics.binary_entropy(np.float32([0.1, 0.5]))), h(0.1) + h(0.5), rtol=1e-6)
    np.testing.assert_allclose(float(ks.metrics.max_entropy(700, 70)), 700 * h(0.1), rtol=1e-6)
