"""Saved and set state: a model's own file always loads, state no training
could reach is refused before anything is assigned, and valid state
round-trips exactly (Hypothesis)."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras
import keras_sparse as ks
from keras_sparse.constraints import sparse_mask
from keras_sparse.layers import SparseDense

EXAMPLES = int(os.environ.get("KERAS_SPARSE_HYPOTHESIS_EXAMPLES", "60"))


def test_own_file_with_trained_exact_zeros_loads(tmp_path):
    """A one-unit layer whose weights on always-zero inputs (MNIST's black
    border) stay exactly 0: its only unit holds fewer non-zeros than the mask
    keeps, which the count-based check took for a higher sparsity."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), SparseDense(1, 0.5, seed=3, kernel_initializer="zeros",
                                                             name="sd")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.random.default_rng(0).normal(size=(64, 20)).astype(np.float32)
    x[:, :6] = 0.0  # the "border": no gradient ever reaches these weights
    model.fit(x, x[:, 10:11], verbose=0)
    kernel = model.get_layer("sd").kernel.numpy()
    mask = model.get_layer("sd").kernel_mask
    assert 0 < np.count_nonzero(kernel) < mask.sum() == 10
    model.save(tmp_path / "own.keras")
    model.save_weights(tmp_path / "own.weights.h5")
    loaded = keras.models.load_model(tmp_path / "own.keras")
    np.testing.assert_array_equal(loaded.get_layer("sd").kernel.numpy(), kernel)
    fresh = keras.Sequential([keras.Input((20,)), SparseDense(1, 0.5, seed=3)])
    fresh.load_weights(tmp_path / "own.weights.h5")
    np.testing.assert_array_equal(fresh.layers[0].kernel.numpy(), kernel)
    fresh.layers[0].set_weights(model.get_layer("sd").get_weights())


def test_set_weights_refuses_nonzeros_outside_the_mask():
    layer = SparseDense(4, 0.5, seed=1)
    layer.build((None, 10))
    before = layer.kernel.numpy()
    dense = np.ones((10, 4), np.float32)
    with pytest.raises(ValueError, match=r"given kernel has 20 non-zero weights outside this layer's "
                                         r"sparse mask \(sparsity=0.5, seed=1\)"):
        layer.set_weights([dense, np.zeros(4, np.float32)])
    np.testing.assert_array_equal(layer.kernel.numpy(), before)  # nothing assigned
    # A kernel saved with the same seed at sparsity 0.8 (2 of 10 per unit) is refused too.
    sparser = np.where(sparse_mask((10, 4), 0.8, 1), 1.0, 0.0).astype(np.float32)
    with pytest.raises(ValueError, match=r"exactly 2 non-zero weights, all inside this seed's mask for 2 of 10, "
                                         r"where this layer's sparsity=0.5 keeps 5: .*higher sparsity \(about 0.8\)"):
        layer.set_weights([sparser, np.zeros(4, np.float32)])
    inside = np.where(layer.kernel_mask, 2.0, 0.0).astype(np.float32)
    layer.set_weights([inside, np.ones(4, np.float32)])
    np.testing.assert_array_equal(layer.kernel.numpy(), inside)


def _kwinners_model():
    return keras.Sequential([keras.Input((10,)), ks.KWinners(0.3, name="kw")])


BAD_STATE = [
    ("duty_cycles", np.float32([0.1] * 9 + [np.nan]), r"in \[0, 1\] for every unit. "
                                                      r"Received: duty_cycles=\[nan\] \(at units \[9\]\)"),
    ("duty_cycles", np.float32([0.1] * 9 + [7.0]), r"duty_cycles=\[7.0\] \(at units \[9\]\)"),
    ("duty_cycles", np.float32([-0.5] + [0.1] * 9), r"duty_cycles=\[-0.5\] \(at units \[0\]\)"),
    ("boost_strength", np.float32(np.nan), r"in \[0, 50.0\]. Received: boost_strength=nan"),
    ("boost_strength", np.float32(-1.0), r"boost_strength=-1.0"),
    ("boost_strength", np.float32(1e6), r"boost_strength=1000000.0"),
    ("learning_iterations", np.int64(-5), r"an integer >= 0. Received: learning_iterations=-5"),
]


@pytest.mark.parametrize("name, value, message", BAD_STATE, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_STATE)])
def test_invalid_saved_state_is_refused_on_load(name, value, message, tmp_path):
    """A file holding state no training reaches loaded and then output zeros
    or let every unit win; now `load_model`, `load_weights` and `set_weights`
    refuse it, naming the layer, and leave the target as it was."""
    model = _kwinners_model()
    getattr(model.get_layer("kw"), name).assign(value)  # bypasses the checks, as a tampered file would
    model.save(tmp_path / "bad.keras")
    model.save_weights(tmp_path / "bad.weights.h5")
    loaded = f"Layer 'kw': the loaded `{name}` must be .*{message}"
    with pytest.raises(ValueError, match=loaded):
        keras.models.load_model(tmp_path / "bad.keras")
    target = _kwinners_model()
    with pytest.raises(ValueError, match=loaded):
        target.load_weights(tmp_path / "bad.weights.h5")
    with pytest.raises(ValueError, match=f"Layer 'kw': the given `{name}` must be .*{message}"):
        target.get_layer("kw").set_weights(model.get_layer("kw").get_weights())
    state = target.get_layer("kw")
    assert state.boost_strength.numpy() == 1.0 and state.learning_iterations.numpy() == 0
    np.testing.assert_array_equal(state.duty_cycles.numpy(), 0.0)


VALID_STATE = st.tuples(
    st.lists(st.floats(0, 1, width=32), min_size=6, max_size=6),
    st.floats(0, ks.kwinners.MAX_BOOST_STRENGTH, width=32),
    st.integers(0, 2**62),
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(VALID_STATE, st.sampled_from(["KWinners", "KWinners2d"]))
def test_random_valid_state_round_trips_exactly(state, cls):
    duty_cycles, boost, iterations = state
    layer = getattr(ks, cls)(0.5)
    layer.build((None, 6) if cls == "KWinners" else (None, 2, 2, 6))
    for variable, value in zip((layer.duty_cycles, layer.boost_strength, layer.learning_iterations), state):
        variable.assign(value)
    store = {}
    layer.save_own_variables(store)
    clone = getattr(ks, cls)(0.5)
    clone.build((None, 6) if cls == "KWinners" else (None, 2, 2, 6))
    clone.load_own_variables(store)
    np.testing.assert_array_equal(clone.duty_cycles.numpy(), np.float32(duty_cycles))
    assert clone.boost_strength.numpy() == np.float32(boost)
    assert clone.learning_iterations.numpy() == iterations


INVALID = st.one_of(
    st.tuples(st.just(0), st.sampled_from([np.nan, np.inf, -np.inf]) | st.floats(1.0001, 1e30) | st.floats(-1e30, -1e-6)),
    st.tuples(st.just(1), st.sampled_from([np.nan, np.inf, -np.inf]) | st.floats(50.001, 1e30) | st.floats(-1e30, -1e-6)),
    st.tuples(st.just(2), st.integers(-(2**62), -1)),
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(INVALID, st.integers(0, 5))
def test_random_invalid_state_is_refused_on_load(invalid, unit):
    which, value = invalid
    layer = ks.KWinners(0.5)
    layer.build((None, 6))
    store = {}
    layer.save_own_variables(store)
    store = {key: np.array(value) for key, value in store.items()}
    if which == 0:
        store["0"][unit] = value
    else:
        store[str(which)] = np.asarray(value, store[str(which)].dtype)
    with pytest.raises(ValueError, match="Layer '.*': the loaded `(duty_cycles|boost_strength|learning_iterations)`"):
        layer.load_own_variables(store)
    assert layer.boost_strength.numpy() == 1.0 and layer.learning_iterations.numpy() == 0
