"""`keras_sparse.datasets.fit_inputs` / `predict_inputs`: Keras' own batches for
arrays, bit for bit, with the `tf.data` autotuner (whose thread stalls
iterator teardown) off."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sparse.datasets import fit_inputs, predict_inputs
from keras_sparse.layers import KWinners, SparseDense


def small_model():
    return keras.Sequential([
        keras.Input((12,)),
        SparseDense(16, sparsity=0.5, seed=1),
        KWinners(percent_on=0.25, name="kw"),
        keras.layers.Dense(3),
    ])


def trained(inputs, seed=7):
    keras.utils.set_random_seed(seed)
    model = small_model()
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(**inputs, epochs=3, verbose=0)
    return model, [str(w.message) for w in caught]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(70, 12)).astype("float32"), rng.integers(0, 3, 70), rng.random(70).astype("float32")


@pytest.mark.parametrize("shuffle", [False, True, "batch"])
def test_training_is_bit_identical_to_passing_the_arrays(data, shuffle):
    x, y, weights = data
    expected, _ = trained(dict(x=x, y=y, sample_weight=weights, batch_size=16, shuffle=shuffle))
    got, messages = trained(fit_inputs(x, y, sample_weight=weights, batch_size=16, shuffle=shuffle))
    for a, b in zip(expected.get_weights(), got.get_weights()):
        np.testing.assert_array_equal(a, b)  # kernels, biases and the duty cycles
    assert not np.array_equal(expected.get_weights()[0], small_model().get_weights()[0])  # it trained
    # Keras warns neither that `shuffle` is ignored nor that the input ran out.
    assert not [m for m in messages if "shuffle" in m or "ran out of data" in m], messages


def test_shuffle_permutes_and_false_keeps_the_order(data):
    x, y, _ = data
    keras.utils.set_random_seed(3)
    dataset = fit_inputs(x, y, batch_size=70)["x"]
    first, second = (next(iter(dataset))[1].numpy() for _ in range(2))
    assert not np.array_equal(first, y) and sorted(first) == sorted(y)
    # Keras' own pipeline under `set_random_seed` (documented in the module):
    # every pass over it repeats one order.
    np.testing.assert_array_equal(first, second)
    ordered = fit_inputs(x, y, batch_size=70, shuffle=False)["x"]
    np.testing.assert_array_equal(next(iter(ordered))[1], y)


def test_predict_and_evaluate_match_the_arrays(data):
    x, y, _ = data
    model, _ = trained(fit_inputs(x, y, batch_size=16))
    np.testing.assert_array_equal(model.predict(**predict_inputs(x, batch_size=32), verbose=0),
                                  model.predict(x, batch_size=32, verbose=0))
    assert model.evaluate(**predict_inputs(x, y, batch_size=32), verbose=0) == model.evaluate(
        x, y, batch_size=32, verbose=0)


def test_tensorflow_dataset_has_autotune_off_and_its_batch_count(data):
    x, y, _ = data
    dataset = predict_inputs(x, y, batch_size=16)["x"]
    assert isinstance(dataset, tf.data.Dataset)
    assert dataset.options().autotune.enabled is False
    assert int(dataset.cardinality()) == 5  # ceil(70 / 16): the last batch partial
    batches = list(dataset)
    assert [len(batch[0]) for batch in batches] == [16, 16, 16, 16, 6]
    np.testing.assert_array_equal(np.concatenate([batch[0] for batch in batches]), x)
    np.testing.assert_array_equal(np.concatenate([batch[1] for batch in batches]), y)


def test_multi_input_dict(data):
    x, y, _ = data
    batches = list(predict_inputs({"a": x, "b": x[:, :2]}, y, batch_size=64)["x"])
    assert [tuple(batch[0]["b"].shape) for batch in batches] == [(64, 2), (6, 2)]


def test_other_backends_get_the_arrays(data, monkeypatch):
    x, y, weights = data
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    assert fit_inputs(x, y, sample_weight=weights, batch_size=8, shuffle=False) == dict(
        x=x, y=y, sample_weight=weights, batch_size=8, shuffle=False)
    assert predict_inputs(x, batch_size=8) == {"x": x, "batch_size": 8}  # what `predict` takes
    assert predict_inputs(x, y, batch_size=8) == {"x": x, "y": y, "batch_size": 8}


def test_a_keras_without_the_array_adapter_gets_the_arrays(data, monkeypatch):
    from keras_sparse.datasets import arrays

    x, y, _ = data
    monkeypatch.setattr(arrays, "_array_data_adapter", lambda: None)
    assert fit_inputs(x, y, batch_size=8) == dict(x=x, y=y, sample_weight=None, batch_size=8, shuffle=True)
    assert predict_inputs(x, batch_size=8) == {"x": x, "batch_size": 8}


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=2.0), "batch_size"),
    (dict(shuffle="yes"), "shuffle"),
    (dict(shuffle=None), "shuffle"),
])
def test_bad_arguments(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_inputs(data[0], data[1], **kwargs)


@pytest.mark.parametrize("x", [np.zeros((0, 12)), np.float32(1.0), [np.zeros((4, 2)), np.zeros((5, 2))]])
def test_bad_inputs(x):
    with pytest.raises(ValueError, match="sample counts"):
        predict_inputs(x, batch_size=4)
