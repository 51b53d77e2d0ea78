"""Masked sequences: padded positions never win, output 0, count in neither the
duty cycles nor their positions, and the mask passes on to the next layers."""

import numpy as np
import pytest

import keras
import keras_sparse as ks
from tests.conftest import to_numpy

VOCABULARY, UNITS = 20, 12


def _tokens(lengths, steps, seed=0):
    """Token ids in [1, VOCABULARY) padded with 0 after each sample's length."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCABULARY, size=(len(lengths), steps))
    tokens[np.arange(steps) >= np.asarray(lengths)[:, None]] = 0
    return tokens


def _sequence_model(make_kwinners):
    """Embedding(mask_zero) -> k-winners -> GRU; returns the model and a
    sub-model exposing the k-winners outputs (the same layers)."""
    tokens = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(VOCABULARY, UNITS, mask_zero=True)(tokens)
    sparse = make_kwinners()(embedded)
    outputs = keras.layers.GRU(5)(sparse)
    return keras.Model(tokens, outputs), keras.Model(tokens, sparse)


KWINNERS = [
    pytest.param(lambda: ks.KWinners(0.25, boost_strength=1.5, name="kw"), id="KWinners"),
    pytest.param(lambda: ks.KWinners(0.25, break_ties=True, relu=True, name="kw"), id="KWinners-ties-relu"),
]


@pytest.mark.parametrize("make_kwinners", KWINNERS)
def test_padded_batch_equals_the_batch_with_the_padding_removed(make_kwinners):
    """Three training calls on a batch padded from 6 to 9 steps give the
    k-winners outputs, duty cycles and learning iterations of the same batch
    unpadded, bit for bit, and the GRU after it (which only sees the mask
    through the k-winners layer) the same final states."""
    unpadded = _tokens([6] * 4, 6)
    padded = np.concatenate([unpadded, np.zeros((4, 3), unpadded.dtype)], axis=1)
    models = {}
    for name, tokens in (("unpadded", unpadded), ("padded", padded)):
        keras.utils.set_random_seed(0)
        model, sparse = _sequence_model(make_kwinners)
        for _ in range(3):
            outputs = to_numpy(sparse(tokens, training=True))
        models[name] = model, outputs
    (reference, want), (model, got) = models["unpadded"], models["padded"]
    np.testing.assert_array_equal(got[:, :6], want)
    np.testing.assert_array_equal(got[:, 6:], 0)
    assert (want > 0).any(axis=-1).all()  # every real step has winners
    layer, reference_layer = model.get_layer("kw"), reference.get_layer("kw")
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), reference_layer.duty_cycles.numpy())
    assert int(layer.learning_iterations.numpy()) == int(reference_layer.learning_iterations.numpy()) == 12
    assert layer.duty_cycles.numpy().sum() > 0
    np.testing.assert_allclose(to_numpy(model(padded)), to_numpy(reference(unpadded)), rtol=0, atol=1e-6)


def test_samples_of_different_lengths_compete_alone_and_weigh_each_real_step_once():
    """Lengths 5, 2, 0 and 7 of 7: every step's output is that of the sample
    unpadded; the empty sample counts in no batch; the duty cycles follow

        duty_cycles = (duty_cycles * (period - batch) + active * batch / valid) / period

    with `batch` = 3 samples and `valid` = 14 real steps."""
    lengths = [5, 2, 0, 7]
    tokens = _tokens(lengths, 7, seed=1)
    keras.utils.set_random_seed(0)
    _, sparse = _sequence_model(lambda: ks.KWinners(0.25, boost_strength=1.5, duty_cycle_period=20, name="kw"))
    layer = sparse.get_layer("kw")
    duty_before = layer.duty_cycles.numpy().astype(np.float64)
    got = to_numpy(sparse(tokens, training=True))
    duty_after_one = layer.duty_cycles.numpy().astype(np.float64)
    got = to_numpy(sparse(tokens, training=True))
    assert int(layer.learning_iterations.numpy()) == 6
    # the second call, against the formula (period = min(20, 6) = 6, batch = 3)
    active = (got > 0).sum(axis=(0, 1))
    want = (duty_after_one * (6 - 3) + active / (14 / 3)) / 6
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), want.astype(np.float32))
    assert not np.array_equal(duty_after_one, duty_before)
    for sample, length in enumerate(lengths):
        np.testing.assert_array_equal(got[sample, length:], 0)
        if length:  # the same sample alone, unpadded, with the same state
            alone = to_numpy(layer(sparse.layers[1](tokens[sample:sample + 1, :length]), training=False))
            inference = to_numpy(sparse(tokens[sample:sample + 1], training=False))
            np.testing.assert_array_equal(inference[0, :length], alone[0])


def test_masked_positions_never_win_even_when_largest():
    """Global k-winners over a (batch, steps, c) map whose padded steps hold
    the largest values: the k winners come from the real steps only, and a
    sample with fewer real values than k keeps all of its positive ones."""
    x = np.arange(1, 2 * 6 * 4 + 1, dtype=np.float32).reshape(2, 6, 4)  # later steps are larger
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0]], bool)
    layer = ks.KWinners1d(0.25, k_inference_factor=1.0)  # k = 6 of 24
    y = to_numpy(layer(x, mask=mask, training=False))
    np.testing.assert_array_equal(y[0], np.where(np.arange(24).reshape(6, 4) >= 10, x[0], 0) * mask[0, :, None])
    np.testing.assert_array_equal(y[1], np.where(mask[1, :, None], x[1], 0))  # 4 real values < k
    assert layer.duty_cycles.numpy().sum() == 0 and int(layer.learning_iterations.numpy()) == 0


def test_masked_locations_of_a_channels_first_map_output_zero_and_do_not_count():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 5, 5)).astype(np.float32) + 10.0  # all positive: every winner active
    mask = rng.random((3, 5, 5)) < 0.6
    mask[2] = False  # an empty sample
    layer = ks.KWinners2d(0.25, local=True, break_ties=True, data_format="channels_first")
    y = to_numpy(layer(x, mask=mask, training=True))
    np.testing.assert_array_equal(y.transpose(0, 2, 3, 1)[~mask], 0)
    np.testing.assert_array_equal((y != 0).sum(axis=1), mask * 1)  # k = 1 of 4 at every real location
    assert int(layer.learning_iterations.numpy()) == 2
    active = (y > 0).sum(axis=(0, 2, 3))
    want = active / (mask.sum() / 2) / 2  # period = batch = 2
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), want.astype(np.float32))
    np.testing.assert_allclose(layer.duty_cycles.numpy().sum(), 1.0, rtol=1e-6)  # one winner per location


def test_masking_layer_and_the_mask_passes_on():
    """`Masking` before and a `SimpleRNN` after: the mask reaches the RNN (its
    output on the padded batch is that of the unpadded one) and
    `compute_mask` returns it unchanged."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 8)).astype(np.float32)
    padded = np.concatenate([x, np.zeros((3, 2, 8), np.float32)], axis=1)
    inputs = keras.Input((None, 8))
    sparse = ks.KWinners(0.25)(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, keras.layers.SimpleRNN(3)(sparse))
    np.testing.assert_allclose(to_numpy(model(padded)), to_numpy(model(x)), rtol=0, atol=1e-6)
    mask = padded.any(axis=-1)
    np.testing.assert_array_equal(to_numpy(ks.KWinners(0.25).compute_mask(padded, mask)), mask)


@pytest.mark.parametrize("mask_shape", [(3, 4, 8), ()])
def test_a_mask_of_the_wrong_rank_is_refused(mask_shape):
    layer = ks.KWinners(0.25)
    with pytest.raises(ValueError, match=r"`mask` must have shape \(batch,\) or \(batch, \*positions\)"):
        layer(np.ones((3, 4, 8), np.float32), mask=np.ones(mask_shape, bool))


def test_the_micro_search_form_has_no_masking_and_says_so():
    """`keras_sparse.micro`'s search layer (TFLite Micro, int8 export) has no
    masking: cloning a masked model warns (Keras: the mask is destroyed), and
    an explicit mask is refused."""
    from keras_sparse import micro

    tokens = keras.Input((6,), dtype="int32")
    embedded = keras.layers.Embedding(VOCABULARY, UNITS, mask_zero=True)(tokens)
    model = keras.Model(tokens, ks.KWinners(0.25)(embedded))
    with pytest.warns(UserWarning, match="does not support masking"):
        clone = micro.with_search_kwinners(model)
    search = clone.layers[-1]
    assert isinstance(search, micro.SearchKWinners)
    with pytest.raises(ValueError, match="SearchKWinners takes no mask"):
        search(np.ones((2, 6, UNITS), np.float32), mask=np.ones((2, 6), bool))
