"""Keras quantization (`model.quantize(mode)`) of models with sparse layers:
`SparseDense` quantizes like `Dense` in every mode and keeps its zeros, the
k-winners layers run unchanged on the quantized values, `.keras` round trip."""

import warnings

import numpy as np
import pytest

import keras
import keras_sparse as ks
from tests.conftest import to_numpy

FAN_IN = 32


def _model():
    inputs = keras.Input((FAN_IN,))
    hidden = ks.layers.SparseDense(16, sparsity=0.7, seed=1, use_bias=False, name="sparse")(inputs)
    hidden = ks.KWinners(0.25, name="kw")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(hidden))
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _effective_kernel(layer):
    """The kernel a quantized layer applies: its outputs on one-hot inputs
    (no bias; a one-hot row quantizes exactly in every mode)."""
    return to_numpy(layer(np.eye(FAN_IN, dtype=np.float32)))


# Largest error of one weight: int8 half a step of max|w|/127 per unit; int4
# (one block of 32 <= 128 inputs, with a zero point) half a step of range/15;
# float8 e4m3: 3 mantissa bits (relative 2^-4), 2^-10 below its normal range.
def _tolerance(mode, kernel):
    if mode == "int8":
        return np.abs(kernel).max(axis=0) / 127 / 2 * 1.001
    if mode == "int4":
        return (kernel.max(axis=0) - kernel.min(axis=0)) / 15 / 2 * 1.001
    return np.abs(kernel) * 2.0**-4 + 2.0**-10


@pytest.mark.parametrize("mode", ["int8", "int4", "float8"])
def test_sparse_dense_quantizes_keeps_its_zeros_and_round_trips(mode, tmp_path):
    x = np.random.default_rng(0).normal(size=(32, FAN_IN)).astype(np.float32)
    model = _model()
    layer = model.get_layer("sparse")
    kernel, mask = layer.kernel.numpy(), layer.kernel_mask
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.quantize(mode)
    unquantized = [str(w.message) for w in caught if "does not have a `quantize`" in str(w.message)]
    assert not [m for m in unquantized if "SparseDense" in m or "KWinners" in m], unquantized
    assert layer.quantization_mode == mode and model.get_layer("head").quantization_mode == mode
    effective = _effective_kernel(layer)
    np.testing.assert_array_equal(effective[~mask], 0)  # exactly 0 outside the mask
    assert (effective[mask] != 0).mean() > 0.9
    assert (np.abs(effective - kernel) <= _tolerance(mode, kernel)).all()
    # .keras round trip: same mode, same outputs, same zeros
    outputs = to_numpy(model(x))
    model.save(tmp_path / "quantized.keras")
    loaded = keras.models.load_model(tmp_path / "quantized.keras")
    assert loaded.get_layer("sparse").quantization_mode == mode
    np.testing.assert_array_equal(to_numpy(loaded(x)), outputs)
    np.testing.assert_array_equal(_effective_kernel(loaded.get_layer("sparse")), effective)


def test_float8_training_keeps_the_zeros():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(64, FAN_IN)).astype(np.float32), rng.integers(0, 3, 64)
    model = _model()
    model.quantize("float8")
    layer = model.get_layer("sparse")
    before = layer.kernel.numpy()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    after = layer.kernel.numpy()
    np.testing.assert_array_equal(after[~layer.kernel_mask], 0)
    assert (after[layer.kernel_mask] != before[layer.kernel_mask]).mean() > 0.5
    assert int(model.get_layer("kw").learning_iterations.numpy()) == 128


def test_a_subclass_is_not_quantized_unchecked():
    """As `Dense` does for its subclasses: `quantize` refuses them (Keras warns
    and leaves them float) unless called with `type_check=False`."""

    class Subclass(ks.layers.SparseDense):
        pass

    layer = Subclass(4, sparsity=0.5, seed=0)
    layer.build((None, 8))
    with pytest.raises(NotImplementedError):
        layer.quantize("int8")
    layer.quantize("int8", type_check=False)
    assert layer.quantization_mode == "int8"


def test_shipped_mnist_sparse_cnn2_keeps_its_accuracy_in_int8(mnist):
    """`model.quantize("int8")` on the shipped Sparse CNN-2 (hidden
    `SparseDense` and output `Dense` quantized): on 2,000 real test images the
    accuracy stays within 0.3 points of float32 and the classes of at least
    99.5% of the images are unchanged (docs/devices.md has the full test set
    and the noise scores)."""
    from keras_sparse import datasets
    from tests.conftest import REPO

    x = datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:2000]))
    labels = mnist["y_test"][:2000]
    model = keras.models.load_model(REPO / "saved_models" / "mnist_sparse_cnn2.keras")
    float_classes = model.predict(x, batch_size=500, verbose=0).argmax(1)
    model.quantize("int8")
    assert model.get_layer(index=-1).quantization_mode == "int8"
    assert [layer.quantization_mode for layer in model.layers if isinstance(layer, ks.layers.SparseDense)] == ["int8"]
    int8_classes = model.predict(x, batch_size=500, verbose=0).argmax(1)
    assert abs((int8_classes == labels).mean() - (float_classes == labels).mean()) <= 0.003
    assert (int8_classes == float_classes).mean() >= 0.995
    assert (float_classes == labels).mean() > 0.98


@pytest.mark.tensorflow_only
def test_a_keras_quantized_model_is_refused_by_to_tflite_with_no_file(tmp_path):
    """Keras' int8 matmul has no TFLite builtin (plain `Dense` alike): a clear
    `ValueError`, no file; `to_tflite(quantize="int8")` is the path (devices.md)."""
    x = np.random.default_rng(0).normal(size=(16, 12)).astype("float32")
    model = keras.Sequential([keras.Input((12,)), ks.SparseDense(8, sparsity=0.5, seed=1), keras.layers.Dense(3)])
    model.predict(x, verbose=0)
    model.quantize("int8")
    with pytest.raises(ValueError, match="cannot be converted to TFLite builtin ops"):
        ks.export.to_tflite(model, tmp_path / "model.tflite")
    assert list(tmp_path.iterdir()) == []
