"""Mistakes that crashed with a raw `TypeError`, a NaN or a stray file now
get a `ValueError` naming the argument, or a documented result; and exports
that no longer leak."""

import gc
import os

import numpy as np
import pytest

import keras
import keras_sparse as ks
from keras_sparse.callbacks import DutyCycleEntropy
from keras_sparse.export import to_tflite

X = np.float32([[0.5, 3.0, 1.0, 2.0, -1.0, 4.0]])
DUTY = np.zeros(6, np.float32)


@pytest.mark.parametrize("k, message", [
    (2.5, r"`k` must be an integer \(the number of winners\). Received: k=2.5"),
    (True, r"`k` must be an integer \(the number of winners\). Received: k=True"),
    (7, r"`k` must be in \[0, 6\] \(the number of units\). Received: k=7"),
    (-1, r"`k` must be in \[0, n\] \(the number of units\). Received: k=-1"),
])
def test_ops_validate_k(k, message):
    """The radix kernel returned NaN for an out-of-range k, `k=2.5` raised a raw `TypeError`."""
    with pytest.raises(ValueError, match=message):
        ks.ops.kwinners(X, DUTY, k, 1.0)
    with pytest.raises(ValueError, match=message.split("Received")[0]):
        ks.ops.kwinners2d(X.reshape(1, 1, 1, 6), DUTY, k, 1.0)


def test_kth_largest_validates_k():
    with pytest.raises(ValueError, match=r"`k` must be in \[1, 6\] \(the number of units\). Received: k=0"):
        ks.ops.kth_largest(X, 0)
    with pytest.raises(ValueError, match=r"Received: k=7"):
        ks.ops.kth_largest(X, 7)
    with pytest.raises(ValueError, match=r"`k` must be an integer"):
        ks.ops.kth_largest(X, 2.0)
    np.testing.assert_array_equal(ks.ops.kth_largest(X, 2), [[3.0]])


@pytest.mark.parametrize("boost", [float("nan"), -0.5, 51.0, np.float32("inf")])
def test_ops_validate_a_numeric_boost_strength(boost):
    with pytest.raises(ValueError, match=r"`boost_strength` must be in \[0, 50.0\]. Received: boost_strength="):
        ks.ops.kwinners(X, DUTY, 2, boost)
    np.testing.assert_array_equal(ks.ops.kwinners(X, DUTY, 2, np.float32(50.0)), [[0, 3, 0, 0, 0, 4]])


def test_duty_cycle_period_is_bounded():
    """`duty_cycle_period >= 2**63` was accepted, then failed at the first step."""
    for bad in (2**63, 2**31):
        with pytest.raises(ValueError, match=r"`duty_cycle_period` must be an integer in \[1, 2147483647\]. "
                                             rf"Received: duty_cycle_period={bad}"):
            ks.KWinners(0.1, duty_cycle_period=bad)
    layer = ks.KWinners(0.5, duty_cycle_period=2**31 - 1)
    layer(np.float32([[1, 2, 3, 4], [4, 3, 2, 1]]), training=True)  # k = 2: units 2, 3 then 0, 1
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), 0.5)
    assert int(layer.learning_iterations.numpy()) == 2


def test_duty_cycle_entropy_when_every_unit_wins():
    """k = n (3 units, percent_on 0.9 -> k = 3): the maximum entropy is 0 and
    the ratio was 0 / 0 = NaN; it logs 1.0."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), ks.KWinners(0.9, k_inference_factor=1.0, name="kw")])
    assert model.get_layer("kw").k == model.get_layer("kw").n == 3
    model.compile("sgd", "mse")
    history = model.fit(np.ones((4, 4)), np.ones((4, 3)), verbose=0, callbacks=[DutyCycleEntropy()])
    assert history.history["kw_entropy"] == [1.0]


def test_to_tflite_refuses_a_folder_path_and_leaves_no_file(tmp_path):
    """`to_tflite(model, "dir/new/")` converted, then left a `.partial` file."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"`path` must be the path of the .tflite file to write"):
        to_tflite(model, f"{tmp_path}/new/")
    assert list(tmp_path.iterdir()) == []


def test_sparsity_summary_with_an_unknown_time_axis():
    inputs = keras.Input((None, 8))
    x = ks.layers.SparseDense(10, 0.5, seed=0, name="sd")(inputs)
    model = keras.Model(inputs, ks.KWinners(0.2, name="kw")(x))
    data = ks.sparsity.sparsity_summary(model)
    sd, kw = data["layers"]
    assert sd["output_shape"] == (None, 10) and sd["weights"] == 90 and sd["multiplies_dense"] is None
    assert (kw["k"], kw["k_inference"], kw["n"], kw["active_training"]) == (2, 3, 10, None)
    assert data["total"]["uncounted_layers"] == ["sd"]
    lines = []
    ks.sparsity.summary(model, print_fn=lines.append)
    assert any("2/10 / 3/10 x ? rows" in line for line in lines)


def test_sparsity_summary_refuses_a_subclassed_model():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4)

        def call(self, x):
            return self.dense(x)

    model = Net()
    model(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"needs every layer's output shape; layer 'dense.*' has none "
                                         r"\(a subclassed model"):
        ks.sparsity.sparsity_summary(model)


def test_to_tflite_refuses_training_true_hard_wired():
    """A k-winners layer called with `training=True` in the graph failed the
    float conversion with a dump of MLIR."""
    inputs = keras.Input((8,))
    x = ks.KWinners(0.3, name="kw")(keras.layers.Dense(6)(inputs), training=True)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match=r"Layer 'kw' is called with training=True in the model's graph"):
        to_tflite(model, "unused.tflite")


def _resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.tensorflow_only
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc (Linux)")
def test_exports_grow_the_process_no_more_than_a_relu_models(tmp_path):
    """6 `to_tflite` exports and 6 `TFLiteModel`s of a k-winners model grow
    the process by no more than the same loop on its ReLU twin, plus 8 MB
    (the inference path registers no custom gradient per trace: before, each
    export of a tiny model kept ~4 MB, 24 MB over this loop)."""
    def grown(activation):
        model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16), activation, keras.layers.Dense(3)])
        model.predict(np.zeros((4, 12), "float32"), verbose=0)
        path = tmp_path / "model.tflite"
        for _ in range(2):  # warm-up: the converter's and interpreters' one-time allocations
            ks.export.TFLiteModel(ks.export.to_tflite(model, path))
        gc.collect()
        start = _resident_mb()
        for _ in range(6):
            ks.export.TFLiteModel(ks.export.to_tflite(model, path))
        gc.collect()
        return _resident_mb() - start

    relu = grown(keras.layers.ReLU())
    kwinners = grown(ks.KWinners(0.25))
    # The ReLU loop may even shrink the process (the allocator returning pages
    # that earlier tests in this worker used): the bound is its growth or 0.
    assert kwinners <= max(relu, 0.0) + 8, (kwinners, relu)
