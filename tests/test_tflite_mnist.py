"""A trained k-winners CNN on real MNIST: TFLite (LiteRT) against Keras predict.

k-winners is discontinuous: when two boosted values sit at the threshold a
float-level difference upstream (a different summation order in TFLite's
convolution) can swap which of them wins. Such images must be rare (<= 0.5%)
and each must be explained by such a near-tie; all others agree within 1e-5.
"""

import numpy as np

import keras
import keras_sparse as ks
from keras_sparse import datasets
from keras_sparse.callbacks import UpdateBoostStrength
from keras_sparse.kwinners import KWinnersBase


def _normalize(images):
    return datasets.normalize(datasets.to_unit_interval(images))


def _sparse_cnn():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 5),
            keras.layers.MaxPooling2D(2),
            ks.KWinners2D(200 / 2304, boost_strength=1.5, name="kw_conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(100),
            ks.KWinners(0.2, boost_strength=1.5, name="kw_dense"),
            keras.layers.Dense(10),
        ]
    )


def _near_tie(layer_input, layer, rtol=1e-5):
    """True if the k_inference-th and next boosted values of this sample are
    equal up to float rounding (so rounding upstream can swap them)."""
    x = layer_input.astype(np.float64)
    factors = np.exp(-float(layer.boost_strength.numpy()) * layer.duty_cycles.numpy().astype(np.float64))
    if isinstance(layer, ks.KWinners2D):
        boosted = np.sort((x * factors).reshape(-1))[::-1]
    else:
        boosted = np.sort(x * factors)[::-1]
    k = layer.k_inference
    if k >= boosted.size:
        return False
    gap = boosted[k - 1] - boosted[k]
    return gap <= rtol * max(abs(boosted[k - 1]), 1e-12)


def test_tflite_matches_predict_on_real_mnist(mnist, tmp_path):
    x_train, y_train = _normalize(mnist["x_train"][:600]), mnist["y_train"][:600]
    x_test = _normalize(mnist["x_test"])  # all 10,000
    model = _sparse_cnn()
    model.compile(keras.optimizers.SGD(0.02, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=3, verbose=0, callbacks=[UpdateBoostStrength()])
    assert model.evaluate(x_test, mnist["y_test"], verbose=0)[1] > 0.8  # it learned (chance: 0.1)

    path = ks.export.to_tflite(model, tmp_path / "mnist.tflite")
    assert not [op for op in ks.export.tflite_op_names(path) if op.startswith("CUSTOM")]
    lite = ks.export.run_tflite(path, x_test)
    keras_out = model.predict(x_test, verbose=0)

    differs = np.abs(lite - keras_out).max(axis=1) > 1e-5
    assert differs.mean() <= 0.005, f"{differs.sum()} of {len(x_test)} images differ"
    assert (lite.argmax(1) == keras_out.argmax(1)).mean() >= 0.995
    # every image that differs has a k-winners layer with a near-tie at its threshold
    kw_layers = [layer for layer in model.layers if isinstance(layer, KWinnersBase)]
    probe = keras.Model(model.inputs[0], [layer.input for layer in kw_layers])
    inputs = probe.predict(x_test[differs], verbose=0) if differs.any() else []
    for i in range(int(differs.sum())):
        assert any(_near_tie(inputs[j][i], layer) for j, layer in enumerate(kw_layers)), i
    print(f"TFLite vs Keras: {differs.sum()} of {len(x_test)} images differ by > 1e-5 (threshold ties)")


def test_near_tie_detector():
    layer = ks.KWinners(0.5, k_inference_factor=1.0, boost_strength=0.0)
    layer.build((None, 4))
    assert layer.k_inference == 2
    assert _near_tie(np.float32([3.0, 1.0, 1.0 + 1e-7, 0.0]), layer)
    assert not _near_tie(np.float32([3.0, 1.0, 1.1, 0.0]), layer)
