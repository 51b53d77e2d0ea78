"""keras_sparse.drop_connect: DropConnectDense against the NumPy formula with
the same masks, fresh masks each step, the kernel gradient, the saved mask
state, and bad arguments. Backend-agnostic (re-run on JAX and PyTorch)."""

import numpy as np
import pytest

import keras
import keras_sparse as ks
from keras_sparse.drop_connect import draw_keep_mask, drop_connect_matmul
from tests import numpy_reference as ref
from tests.conftest import to_numpy, vjp


def _layer(units=4, rate=0.5, seed=7, inputs=6, **kwargs):
    layer = ks.layers.DropConnectDense(units, rate=rate, seed=seed, bias_initializer="glorot_uniform", **kwargs)
    layer.build((None, inputs))
    return layer


def _effective_kernel(layer):
    """The kernel one training call of a layer without bias used, read off
    with identity inputs."""
    assert layer.bias is None
    return to_numpy(layer(np.eye(layer.kernel.shape[0], dtype=np.float32), training=True))


def test_training_is_the_formula_with_the_seeds_masks_and_inference_is_dense():
    layer = _layer()
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    kernel, bias = to_numpy(layer.kernel), to_numpy(layer.bias)
    seeds = keras.random.SeedGenerator(7)  # the layer's generator, replayed
    for _ in range(3):
        mask = to_numpy(draw_keep_mask((6, 4), 0.5, seeds))
        np.testing.assert_allclose(to_numpy(layer(x, training=True)),
                                   ref.drop_connect_dense(x, kernel, bias, mask, 0.5), rtol=1e-5, atol=1e-6)
    expected = x.astype(np.float64) @ kernel + bias
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-6)


def test_a_fresh_mask_each_step_keeping_1_minus_rate():
    layer = _layer(units=64, rate=0.25, inputs=64, use_bias=False)
    kernel = to_numpy(layer.kernel)
    masks = []
    for _ in range(3):
        effective = _effective_kernel(layer)
        mask = effective != 0
        np.testing.assert_allclose(effective[mask], kernel[mask] / 0.75, rtol=1e-5)
        masks.append(mask)
    for mask in masks:  # 4,096 weights: kept fraction 0.75 +- 0.007 (one sd)
        assert abs(mask.mean() - 0.75) < 0.03
    assert (masks[0] != masks[1]).mean() > 0.2 and (masks[1] != masks[2]).mean() > 0.2


def test_one_mask_for_the_whole_batch():
    layer = _layer(units=8, rate=0.5)
    x = np.random.default_rng(1).normal(size=(1, 6)).astype(np.float32)
    y = to_numpy(layer(np.repeat(x, 5, axis=0), training=True))
    np.testing.assert_array_equal(y, np.repeat(y[:1], 5, axis=0))


def test_training_mean_over_masks_is_the_inference_output():
    layer = _layer(units=3, rate=0.5, inputs=4)
    x = np.float32([[1.0, -2.0, 0.5, 3.0]])
    mean = np.mean([to_numpy(layer(x, training=True)) for _ in range(400)], axis=0)
    inference = to_numpy(layer(x))
    # each output is a sum of 4 terms w * x * (M / p), variance sum (w x)^2 (1 - p) / p
    sd = np.sqrt(((to_numpy(layer.kernel) * x.T) ** 2).sum(axis=0) / 400)
    assert (np.abs(mean - inference) < 4 * sd).all(), (mean, inference, sd)


def test_kernel_gradient_reaches_kept_weights_only():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    kernel = rng.normal(size=(6, 4)).astype(np.float32)
    upstream = rng.normal(size=(5, 4)).astype(np.float32)
    mask = rng.random((6, 4)) >= 0.3
    grad = vjp(lambda w: drop_connect_matmul(x, w, mask, 0.3), kernel, upstream)
    np.testing.assert_allclose(grad, np.where(mask, x.T @ upstream / 0.7, 0), rtol=1e-5, atol=1e-6)
    grad_x = vjp(lambda t: drop_connect_matmul(t, kernel, mask, 0.3), x, upstream)
    np.testing.assert_allclose(grad_x, upstream @ np.where(mask, kernel, 0).T / 0.7, rtol=1e-5, atol=1e-6)


def test_rate_zero_is_dense():
    layer = _layer(rate=0.0, activation="relu")
    x = np.random.default_rng(3).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_array_equal(to_numpy(layer(x, training=True)), to_numpy(layer(x)))
    assert (to_numpy(layer(x)) >= 0).all()


def test_saved_model_resumes_with_the_next_masks(tmp_path):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, ks.layers.DropConnectDense(4, rate=0.5, name="dc")(inputs))
    x = np.random.default_rng(4).normal(size=(3, 6)).astype(np.float32)
    model(x, training=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(to_numpy(loaded.get_layer("dc").seed_generator.state),
                                  to_numpy(model.get_layer("dc").seed_generator.state))
    np.testing.assert_array_equal(to_numpy(loaded(x, training=True)), to_numpy(model(x, training=True)))


@pytest.mark.parametrize("make, message", [
    (lambda: ks.layers.DropConnectDense(0), r"`units` must be an integer >= 1.*units=0"),
    (lambda: ks.layers.DropConnectDense(4.0), r"units=4.0"),
    (lambda: ks.layers.DropConnectDense(4, rate=1.0), r"`rate` must be in \[0, 1\).*rate=1.0"),
    (lambda: ks.layers.DropConnectDense(4, rate=-0.1), r"rate=-0.1"),
    (lambda: ks.layers.DropConnectDense(4, seed=-1), r"`seed` must be an integer >= 0.*seed=-1"),
    (lambda: ks.layers.DropConnectDense(4, seed=1.5), r"seed=1.5"),
])
def test_bad_arguments_name_the_argument_and_range(make, message):
    with pytest.raises(ValueError, match=message):
        make()
    with pytest.raises(ValueError, match="rank >= 2"):
        ks.layers.DropConnectDense(4).build((6,))
