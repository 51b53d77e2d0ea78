"""A k-winners variant made the way docs/contributing.md says, outside the
library: `SampleKWinners` subclasses `KWinnersBase`, defines its geometry in
the four hooks and is registered for saving; nothing in `keras_sparse` knows
it. It joins the shared harness (`LAYERS` in tests/test_layers.py: config,
`.keras` save/load with state, resumed training, `BackupAndRestore`,
SavedModel, TFLite LiteRT and Micro, the layer contract), and here: its
outputs and state against the NumPy reference (`conftest.layer_reference`,
which reads its rows from the hooks), a `fit` step, and int8 export on
LiteRT and TFLite Micro against Keras.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

import keras_sparse as ks
from keras_sparse import ops as sparse_ops
from keras_sparse.kwinners import KWinnersBase
from tests.conftest import layer_reference, to_numpy


@keras.saving.register_keras_serializable(package="keras_sparse_tests")
class SampleKWinners(KWinnersBase):
    """A toy variant: the k winners among every value of a sample
    `(batch, ..., c)` of any rank >= 2 (`KWinners1D/2D/3D` with
    `local=False` fix the rank), duty cycles per channel (the last axis).

        n = prod(input_shape[1:]),  k = round(n * percent_on)
    """

    def _check_input_shape(self, input_shape):
        if len(input_shape) < 2 or None in input_shape[1:]:
            raise ValueError(f"SampleKWinners needs (batch, ..., c) with known dimensions; got {input_shape}")

    def _competing_units(self, input_shape):
        return math.prod(input_shape[1:])

    def _channel_axis(self):
        return -1

    def _activate(self, inputs, k, training):
        shape = tuple(inputs.shape[1:])
        duty_cycles = ops.tile(self.duty_cycles, [self.n // shape[-1]])  # channels fastest
        rows = sparse_ops.kwinners(ops.reshape(inputs, (-1, self.n)), duty_cycles, k, self.boost_strength,
                                   break_ties=self.break_ties, relu=self.relu, portable=not training,
                                   differentiable=training)
        return ops.reshape(rows, (-1, *shape))


def _data(shape, n=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


def test_outputs_and_state_follow_the_numpy_reference():
    """Training and inference outputs equal the NumPy re-derivation for rows
    of whole samples, and the training call updates the duty cycles."""
    layer = SampleKWinners(0.2, boost_strength=2.0, break_ties=True)
    x = _data((3, 4))
    layer.build(x.shape)
    assert (layer.n, layer.k, layer.k_inference) == (12, 2, 4)
    layer.duty_cycles.assign(np.linspace(0, 0.5, 4))
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), layer_reference(layer, x, 4))
    before, want = layer.duty_cycles.numpy().copy(), layer_reference(layer, x, 2)  # before the update
    y = to_numpy(layer(x, training=True))
    np.testing.assert_array_equal(y, want)
    assert (np.count_nonzero(y.reshape(len(x), -1), axis=1) == 2).all()
    assert int(layer.learning_iterations.numpy()) == len(x)
    assert not np.array_equal(layer.duty_cycles.numpy(), before)


def test_fit_step_and_keras_file_round_trip(tmp_path):
    x, y = _data((3, 4)), np.arange(16) % 3
    model = keras.Sequential([keras.Input((3, 4)), SampleKWinners(0.25), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(model.layers[0].learning_iterations.numpy()) == 16
    model.save(tmp_path / "variant.keras")
    loaded = keras.models.load_model(tmp_path / "variant.keras")
    assert type(loaded.layers[0]) is SampleKWinners
    np.testing.assert_array_equal(loaded.layers[0].duty_cycles.numpy(), model.layers[0].duty_cycles.numpy())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("target", ks.export.TARGETS)
def test_int8_export_agrees_with_keras(target, tmp_path):
    """int8 on LiteRT and TFLite Micro: the layer runs in float32 on the
    dequantized int8 input (see `keras_sparse.export`), so the int8 output is
    Keras' output on that input, quantized, within one code."""
    x = _data((3, 4), n=32)
    model = keras.Sequential([keras.Input((3, 4)), SampleKWinners(0.25, boost_strength=1.5)])
    model.layers[0].duty_cycles.assign([0.1, 0.4, 0.0, 0.2])
    path = ks.export.to_tflite(model, tmp_path / "int8.tflite", quantize="int8", representative_data=x,
                               target=target)
    if target == "micro":
        assert set(ks.export.tflite_op_names(path)) <= ks.export.MICRO_OPS
    lite = ks.export.TFLiteModel(path, runtime=ks.export.TARGET_RULES[target].runtime)
    (in_scale, in_zero), (out_scale, out_zero) = lite.input_quantization, lite.output_quantization
    dequantized = (lite.quantize_inputs(x).astype(np.float32) - in_zero) * np.float32(in_scale)
    expected = np.clip(np.round(model.predict(dequantized, verbose=0) / out_scale) + out_zero, -128, 127)
    got = lite.predict_raw(x)
    assert got.dtype == np.int8 and np.abs(got.astype(int) - expected).max() <= 1
    assert (got != out_zero).any()
