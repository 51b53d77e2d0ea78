"""keras_sparse.batch_sparsity: WTA lifetime sparsity and BatchTopK against
hand-computed cases and the NumPy re-derivation (tests/numpy_reference.py),
their gradients, BatchTopK's threshold state, and bad arguments.
Backend-agnostic (re-run on JAX and PyTorch by tests/test_backends.py)."""

import numpy as np
import pytest

import keras
import keras_sparse as ks
from keras_sparse import batch_sparsity
from tests import numpy_reference as ref
from tests.conftest import to_numpy, vjp

X = np.float32([[1, 5, -1],
                [3, 2, 0],
                [2, 7, 4],
                [0, 1, 9]])
NAN = np.float32("nan")


def _ties_and_nan(shape, seed):
    """Values on a coarse grid (many ties), with a NaN and both infinities."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=shape) * 2).astype(np.float32) / 2
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 3, replace=False)] = [NAN, np.inf, -np.inf]
    return x


# LifetimeSparsity


def test_lifetime_hand_computed():
    # percent_on 0.5 of a batch of 4: each column keeps its 2 largest
    expected = np.float32([[0, 5, 0],
                           [3, 0, 0],
                           [2, 7, 4],
                           [0, 0, 9]])
    layer = ks.layers.LifetimeSparsity(0.5)
    np.testing.assert_array_equal(to_numpy(layer(X, training=True)), expected)
    np.testing.assert_array_equal(to_numpy(layer(X)), X)  # inference: identity
    np.testing.assert_array_equal(to_numpy(layer(X, training=False)), X)


def test_lifetime_keeps_ties_and_at_least_one():
    x = np.float32([[2, 0], [2, 1], [1, 3], [0, 3]])
    # percent_on 0.1 of 4 = 0.4: k = 1; ties with the largest are kept too
    np.testing.assert_array_equal(to_numpy(ks.layers.LifetimeSparsity(0.1)(x, training=True)),
                                  np.float32([[2, 0], [2, 0], [0, 3], [0, 3]]))
    np.testing.assert_array_equal(to_numpy(ks.layers.LifetimeSparsity(1.0)(x, training=True)), x)


@pytest.mark.parametrize("percent_on, batch, k", [
    (0.5, 4, 2), (0.3, 5, 2), (0.3, 4, 1), (0.625, 4, 2),  # 2.5 rounds half to even
    (0.01, 4, 1), (0.05, 64, 3), (1.0, 7, 7), (0.99, 1, 1),
])
def test_lifetime_k(percent_on, batch, k):
    assert batch_sparsity.lifetime_k(percent_on, batch) == k
    tensor_batch = keras.ops.convert_to_tensor(batch, "int32")
    assert int(to_numpy(batch_sparsity.lifetime_k(percent_on, tensor_batch))) == k


@pytest.mark.parametrize("shape, percent_on", [((8, 5), 0.25), ((6, 2, 3), 0.5), ((5, 4), 0.05), ((3, 6), 0.9)])
@pytest.mark.parametrize("seed", [0, 1])
def test_lifetime_agrees_with_numpy(shape, percent_on, seed):
    x = _ties_and_nan(shape, seed)
    got = to_numpy(ks.layers.LifetimeSparsity(percent_on)(x, training=True))
    np.testing.assert_array_equal(got, ref.lifetime_sparsity(x, percent_on))
    assert np.isnan(got).sum() == 1  # a NaN is never kept and stays NaN
    if percent_on < 0.9:  # a kept -inf only when everything is kept
        assert not (got == -np.inf).any()


def test_lifetime_gradient_is_upstream_at_kept_values():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(8, 6)) * 2).astype(np.float32) / 2 + 0.25  # ties, no zero
    upstream = rng.normal(size=x.shape).astype(np.float32)
    layer = ks.layers.LifetimeSparsity(0.25)
    grad = vjp(lambda t: layer(t, training=True), x, upstream)
    kept = ref.lifetime_sparsity(x, 0.25) != 0
    np.testing.assert_array_equal(grad, np.where(kept, upstream, 0))
    assert 12 <= kept.sum() < x.size  # 2 of 8 per unit, more with ties


# BatchTopK


def test_batch_topk_hand_computed():
    # k = 1 of a batch of 4: the 4 largest of the 12 values (9, 7, 5, 4)
    expected = np.float32([[0, 5, 0],
                           [0, 0, 0],
                           [0, 7, 4],
                           [0, 0, 9]])
    layer = ks.layers.BatchTopK(1)
    np.testing.assert_array_equal(to_numpy(layer(X, training=True)), expected)
    assert float(to_numpy(layer.threshold)) == 4.0 and int(to_numpy(layer.threshold_updates)) == 1
    # inference: x >= 4 and x > 0, per value, whatever the batch
    np.testing.assert_array_equal(to_numpy(layer(X)), expected)
    np.testing.assert_array_equal(to_numpy(layer(X[1:2])), np.zeros((1, 3), np.float32))
    np.testing.assert_array_equal(to_numpy(layer(np.float32([[4, 3.9, 100]]))), [[4, 0, 100]])
    # a second batch keeps 2 (its k * B = 1 largest): the first 1 / (1 - 0.99) batches are averaged
    layer(np.float32([[2, 1, -3]]), training=True)
    assert float(to_numpy(layer.threshold)) == 3.0 and int(to_numpy(layer.threshold_updates)) == 2


def test_batch_topk_keeps_only_positive_values():
    # k * B = 4 but only one positive value: it alone is kept
    layer = ks.layers.BatchTopK(2)
    x = np.float32([[-1, 2], [0, -3]])
    np.testing.assert_array_equal(to_numpy(layer(x, training=True)), [[0, 2], [0, 0]])
    assert float(to_numpy(layer.threshold)) == 2.0
    # nothing positive: no update
    np.testing.assert_array_equal(to_numpy(layer(-np.abs(x), training=True)), np.zeros((2, 2)))
    assert float(to_numpy(layer.threshold)) == 2.0 and int(to_numpy(layer.threshold_updates)) == 1
    # before any training step the threshold is 0: inference is a ReLU
    fresh = ks.layers.BatchTopK(1)
    np.testing.assert_array_equal(to_numpy(fresh(x)), [[0, 2], [0, 0]])


@pytest.mark.parametrize("shape, k", [((8, 5), 2), ((4, 2, 3), 1), ((3, 6), 6), ((5, 4), 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_topk_agrees_with_numpy(shape, k, seed):
    x = _ties_and_nan(shape, seed)
    layer = ks.layers.BatchTopK(k)
    expected, min_kept = ref.batch_topk(x, k)
    np.testing.assert_array_equal(to_numpy(layer(x, training=True)), expected)
    assert float(to_numpy(layer.threshold)) == min_kept
    y, m = batch_sparsity.batch_topk(x, k * shape[0])
    np.testing.assert_array_equal(to_numpy(y), expected)
    assert float(to_numpy(m)) == min_kept
    np.testing.assert_array_equal(to_numpy(layer(x)), ref.jump_relu(x, min_kept))


def test_batch_topk_threshold_after_training_steps():
    """Seven batches: the first two are averaged (momentum 0.5), then a
    moving average; a batch with nothing positive skips its update."""
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(4, 6)).astype(np.float32) for _ in range(7)]
    batches[3] = -np.abs(batches[3])
    layer = ks.layers.BatchTopK(2, momentum=0.5)
    minima = []
    for x in batches:
        layer(x, training=True)
        minima.append(ref.batch_topk(x, 2)[1])
    threshold, updates = ref.batch_topk_threshold(minima, 0.5)
    assert int(to_numpy(layer.threshold_updates)) == updates == 6
    np.testing.assert_allclose(float(to_numpy(layer.threshold)), threshold, rtol=1e-6)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_array_equal(to_numpy(layer(x)), ref.jump_relu(x, np.float32(to_numpy(layer.threshold))))


def test_batch_topk_state_in_fit():
    """`fit` (compiled on every backend) updates the threshold from each
    batch's inputs exactly as calls do; predict leaves it alone."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(2)(ks.layers.BatchTopK(2, momentum=0.6, name="topk")(inputs)))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, np.zeros((12, 2), np.float32), batch_size=4, shuffle=False, epochs=1, verbose=0)
    threshold, updates = ref.batch_topk_threshold([ref.batch_topk(x[s:s + 4], 2)[1] for s in (0, 4, 8)], 0.6)
    layer = model.get_layer("topk")
    assert int(to_numpy(layer.threshold_updates)) == updates == 3
    np.testing.assert_allclose(float(to_numpy(layer.threshold)), threshold, rtol=1e-6)
    model.predict(x, verbose=0)
    assert int(to_numpy(layer.threshold_updates)) == 3


def test_batch_topk_gradient_is_upstream_at_kept_values():
    x = np.random.default_rng(7).normal(size=(6, 5)).astype(np.float32) + 1.0  # mostly positive
    upstream = np.random.default_rng(8).normal(size=x.shape).astype(np.float32)
    layer = ks.layers.BatchTopK(2)
    grad = vjp(lambda t: layer(t, training=True), x, upstream)
    kept = ref.batch_topk(x, 2)[0] != 0
    assert kept.sum() == 12
    np.testing.assert_array_equal(grad, np.where(kept, upstream, 0))
    layer.threshold.assign(0.5)
    grad = vjp(lambda t: layer(t), x, upstream)
    np.testing.assert_array_equal(grad, np.where(x >= 0.5, upstream, 0))


# Arguments


@pytest.mark.parametrize("make, message", [
    (lambda: ks.layers.LifetimeSparsity(0), r"percent_on.*\(0, 1\].*percent_on=0"),
    (lambda: ks.layers.LifetimeSparsity(1.5), r"percent_on.*\(0, 1\].*percent_on=1.5"),
    (lambda: ks.layers.LifetimeSparsity(float("nan")), r"percent_on=nan"),
    (lambda: ks.layers.LifetimeSparsity("0.1"), r"percent_on='0.1'"),
    (lambda: ks.layers.BatchTopK(0), r"`k` must be an integer >= 1.*k=0"),
    (lambda: ks.layers.BatchTopK(2.0), r"`k` must be an integer >= 1.*k=2.0"),
    (lambda: ks.layers.BatchTopK(True), r"k=True"),
    (lambda: ks.layers.BatchTopK(2, momentum=1.0), r"momentum.*\[0, 1\).*momentum=1.0"),
    (lambda: ks.layers.BatchTopK(2, momentum=-0.1), r"momentum=-0.1"),
])
def test_bad_arguments_name_the_argument_and_range(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"k` must be in \[1, 6\].*k=7"):
        ks.layers.BatchTopK(7)(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"rank >= 2"):
        ks.layers.LifetimeSparsity(0.5).build((5,))
    with pytest.raises(ValueError, match=r"rank >= 2"):
        ks.layers.BatchTopK(1).build((None, None))
    with pytest.raises(ValueError, match="Invalid BatchTopK config.*momentum=2"):
        ks.layers.BatchTopK.from_config({**ks.layers.BatchTopK(1).get_config(), "momentum": 2})


@pytest.mark.tensorflow_only
def test_unknown_batch_size_in_a_graph():
    """In a TensorFlow graph of unknown batch size `k` is a tensor: the same outputs."""
    import tensorflow as tf

    x = _ties_and_nan((7, 5), 9)
    lifetime, topk = ks.layers.LifetimeSparsity(0.3), ks.layers.BatchTopK(2)
    graph = tf.function(lambda t: (lifetime(t, training=True), topk(t, training=True)),
                        input_signature=[tf.TensorSpec((None, 5))], autograph=False)
    got_lifetime, got_topk = graph(x)
    np.testing.assert_array_equal(got_lifetime.numpy(), ref.lifetime_sparsity(x, 0.3))
    np.testing.assert_array_equal(got_topk.numpy(), ref.batch_topk(x, 2)[0])
    assert float(topk.threshold.numpy()) == ref.batch_topk(x, 2)[1]
