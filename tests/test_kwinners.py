"""The k-winners layers: k, state updates, training vs inference, bad input, every rank."""

import math
import os

import numpy as np
import pytest

import keras
import keras_sparse as ks
from keras_sparse.callbacks import DutyCycleEntropy, UpdateBoostStrength
from tests import numpy_reference as ref
from tests.conftest import layer_reference, to_numpy, vjp


def test_k_and_k_inference_from_the_input_shape():
    layer = ks.KWinners(percent_on=0.1, k_inference_factor=1.5)
    layer.build((None, 700))
    assert (layer.n, layer.k, layer.k_inference) == (700, 70, 105)
    layer = ks.KWinners2D(percent_on=400 / 4608)
    layer.build((None, 12, 12, 32))
    assert (layer.n, layer.k, layer.k_inference) == (4608, 400, 600)
    layer = ks.KWinners2D(percent_on=0.25, local=True, data_format="channels_first")
    layer.build((None, 10, 3, 3))
    assert (layer.n, layer.k, layer.k_inference) == (10, 2, 4)  # round(2.5) = 2, round(3.75) = 4
    # k_inference is clipped to [1, n]
    layer = ks.KWinners(percent_on=0.05, k_inference_factor=0.2)
    layer.build((None, 20))
    assert (layer.k, layer.k_inference) == (1, 1)
    layer = ks.KWinners(percent_on=0.9, k_inference_factor=1.1)
    layer.build((None, 10))
    assert (layer.k, layer.k_inference) == (9, 10)


def test_state_weights_and_dtypes():
    layer = ks.KWinners2D(0.1, boost_strength=1.5)
    layer.build((None, 4, 4, 6))
    assert [w.name for w in layer.non_trainable_weights] == [
        "duty_cycles", "boost_strength", "learning_iterations"
    ]
    assert layer.trainable_weights == []
    assert layer.duty_cycles.shape == (6,) and layer.duty_cycles.dtype == "float32"
    assert float(layer.boost_strength.numpy()) == 1.5
    assert layer.learning_iterations.dtype == "int64"


FEATURE_MAP_LAYERS = {1: ks.KWinners1D, 2: ks.KWinners2D, 3: ks.KWinners3D}


def _random_layer_case(rng):
    """A random layer of any kind and rank: `KWinners` on `(batch, ..., n)`
    with 0-2 leading axes, or a 1d/2d/3d feature map, local or global, with
    either data format."""
    kind = rng.choice(["dense", "local", "global"])
    data_format = str(rng.choice(["channels_last", "channels_first"]))
    batch = int(rng.integers(1, 5))
    if kind == "dense":
        leading = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(0, 3))))
        n = channels = int(rng.integers(2, 40))
        shape = (batch, *leading, n)
    else:
        spatial_rank = int(rng.integers(1, 4))
        spatial = tuple(int(v) for v in rng.integers(1, 6 if spatial_rank < 3 else 4, size=spatial_rank))
        channels = int(rng.integers(2, 7))
        shape = (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)
        n = channels if kind == "local" else math.prod(spatial) * channels
    k = int(rng.integers(1, n))
    kwargs = dict(
        percent_on=k / n,
        k_inference_factor=float(rng.uniform(1.0, n / k)),
        boost_strength=float(rng.choice([0.0, 0.5, 1.0, 1.5, 3.0])),
        duty_cycle_period=int(rng.choice([1, 3, 10, 1000])),
        break_ties=bool(rng.random() < 0.5),
        relu=bool(rng.random() < 0.5),
    )
    if kind == "dense":
        layer = ks.KWinners(**kwargs)
    else:
        layer = FEATURE_MAP_LAYERS[spatial_rank](local=kind == "local", data_format=data_format, **kwargs)
    layer.build(shape)
    assert layer.k == k
    layer.duty_cycles.assign(rng.random(channels).astype(np.float32) * 0.5)
    layer.learning_iterations.assign(int(rng.integers(0, 5)))
    x = (rng.integers(-8, 9, size=shape) / 4).astype(np.float32)
    return layer, x


RANDOM_CASES = int(os.environ.get("KERAS_SPARSE_RANDOM_CASES", "600"))


def test_layers_agree_with_numpy_on_random_cases():
    """Training output, state update and inference output, case by case, for
    every layer and rank (`KERAS_SPARSE_RANDOM_CASES` cases; fewer in the
    JAX and PyTorch runs of tests/test_backends.py, where every new shape
    compiles anew)."""
    rng = np.random.default_rng(1903)
    for i in range(RANDOM_CASES):
        layer, x = _random_layer_case(rng)
        duty = layer.duty_cycles.numpy()
        iterations = int(layer.learning_iterations.numpy())

        want_infer = layer_reference(layer, x, layer.k_inference)
        np.testing.assert_array_equal(to_numpy(layer(x, training=False)), want_infer, err_msg=f"case {i}")
        np.testing.assert_array_equal(layer.duty_cycles.numpy(), duty)  # inference: no update

        want = layer_reference(layer, x, layer.k)
        got = to_numpy(layer(x, training=True))
        np.testing.assert_array_equal(got, want, err_msg=f"case {i}")
        channel_axis = 1 if getattr(layer, "data_format", "") == "channels_first" else -1
        want_duty, want_iterations = ref.duty_cycle_update(
            duty, iterations, want, layer.duty_cycle_period, channel_axis
        )
        np.testing.assert_array_equal(layer.duty_cycles.numpy(), want_duty, err_msg=f"case {i}")
        assert int(layer.learning_iterations.numpy()) == want_iterations


def _dense_net(functional):
    if functional:
        inputs = keras.Input((12,))
        hidden = keras.layers.Dense(40, name="hidden")(inputs)
        sparse = ks.KWinners(0.1, boost_strength=1.5, duty_cycle_period=20, name="kw")(hidden)
        outputs = keras.layers.Dense(3)(sparse)
        return keras.Model(inputs, outputs)
    return keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(40, name="hidden"),
            ks.KWinners(0.1, boost_strength=1.5, duty_cycle_period=20, name="kw"),
            keras.layers.Dense(3),
        ]
    )


def _conv_net():
    inputs = keras.Input((6, 6, 2))
    hidden = keras.layers.Conv2D(5, 3, name="hidden")(inputs)
    sparse = ks.KWinners2D(0.2, boost_strength=1.0, duty_cycle_period=20, name="kw")(hidden)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(sparse))
    return keras.Model(inputs, outputs)


class _RecordReference(keras.callbacks.Callback):
    """Before each training step, applies docs/semantics.md's formula in NumPy to the
    k-winners layer's input for that batch (shuffle=False) and the state the
    layer holds, and keeps the expected state after the step."""

    def __init__(self, x, batch_size):
        super().__init__()
        self.x, self.batch_size, self.expected = x, batch_size, []

    def on_train_begin(self, logs=None):
        self.features = keras.Model(self.model.inputs[0], self.model.get_layer("hidden").output)

    def on_train_batch_begin(self, batch, logs=None):
        layer = self.model.get_layer("kw")
        start = (batch * self.batch_size) % len(self.x)
        x = self.features(self.x[start : start + self.batch_size]).numpy()
        duty, iterations = layer.duty_cycles.numpy(), int(layer.learning_iterations.numpy())
        if self.expected:  # the previous step's expectation must have come true
            np.testing.assert_allclose(duty, self.expected[-1][0], rtol=0, atol=1e-7)
            assert iterations == self.expected[-1][1]
        y = layer_reference(layer, x, layer.k)
        axis = -1
        self.expected.append(ref.duty_cycle_update(duty, iterations, y, layer.duty_cycle_period, axis))


@pytest.mark.parametrize("builder", ["sequential", "functional", "conv"])
def test_fit_updates_state_exactly_by_the_formula(builder):
    model = {"sequential": lambda: _dense_net(False), "functional": lambda: _dense_net(True), "conv": _conv_net}[builder]()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48,) + model.input_shape[1:]).astype(np.float32)
    y = rng.integers(0, 3, size=48)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    recorder = _RecordReference(x, 8)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    layer = model.get_layer("kw")
    assert len(recorder.expected) == 12
    np.testing.assert_allclose(layer.duty_cycles.numpy(), recorder.expected[-1][0], rtol=0, atol=1e-7)
    assert int(layer.learning_iterations.numpy()) == 96
    assert layer.duty_cycles.numpy().max() > 0


def test_predict_and_evaluate_leave_state_unchanged():
    model = _conv_net()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(1).normal(size=(32, 6, 6, 2)).astype(np.float32)
    y = np.zeros(32, int)
    model.fit(x, y, batch_size=8, verbose=0)
    state = [w.numpy().copy() for w in model.get_layer("kw").non_trainable_weights]
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    model(x)
    for before, after in zip(state, model.get_layer("kw").non_trainable_weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_frozen_layer_runs_in_inference_mode():
    """As BatchNormalization: trainable=False means no state update, k_inference."""
    layer = ks.KWinners(0.2, k_inference_factor=2.0)
    x = np.arange(10, dtype=np.float32)[None]
    layer.build(x.shape)
    layer.trainable = False
    np.testing.assert_array_equal(layer(x, training=True).numpy() != 0, layer(x, training=False).numpy() != 0)
    assert (layer(x, training=True).numpy() != 0).sum() == 4
    assert int(layer.learning_iterations.numpy()) == 0


def test_boost_strength_decays_once_per_epoch():
    model = _dense_net(False)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.ones((16, 12), np.float32), np.zeros(16, int)
    history = model.fit(
        x, y, batch_size=4, epochs=3, verbose=0, callbacks=[UpdateBoostStrength(), DutyCycleEntropy()]
    )
    assert model.get_layer("kw").boost_strength.numpy() == np.float32(1.5 * 0.9**3)
    assert model.get_layer("kw").get_config()["boost_strength"] == 1.5  # the initial value
    assert len(history.history["kw_entropy"]) == 3
    assert all(0 <= v for v in history.history["kw_entropy"])


def test_entropy_metrics_by_hand():
    h = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    duty = np.float32([0.0, 0.1, 0.5, 1.0])
    np.testing.assert_allclose(ks.metrics.binary_entropy(duty), h(0.1) + h(0.5), rtol=1e-6)
    np.testing.assert_allclose(ks.metrics.max_entropy(700, 70), 700 * h(0.1), rtol=1e-6)
    # a layer using every unit evenly reaches the maximum
    np.testing.assert_allclose(
        ks.metrics.binary_entropy(np.full(700, 0.1, np.float32)), ks.metrics.max_entropy(700, 70), rtol=1e-5
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_jit_compile_matches_eager_graph(jit_compile, tmp_path):
    """Same init, data and order: XLA and the default graph give the same results."""
    results = []
    for jit in (False, jit_compile):
        keras.utils.set_random_seed(5)
        model = _conv_net()
        model.compile(
            keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
        rng = np.random.default_rng(2)
        x = rng.normal(size=(64, 6, 6, 2)).astype(np.float32)
        model.fit(x, rng.integers(0, 3, 64), batch_size=16, epochs=2, shuffle=False, verbose=0)
        results.append((model.predict(x, verbose=0), [w.numpy() for w in model.weights]))
    (pred_a, weights_a), (pred_b, weights_b) = results
    np.testing.assert_allclose(pred_a, pred_b, rtol=0, atol=1e-5)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_mixed_float16_computes_in_float16_and_keeps_state_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _conv_net()
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(3)
        x = rng.normal(size=(32, 6, 6, 2)).astype(np.float32)
        history = model.fit(x, rng.integers(0, 3, 32), batch_size=8, epochs=2, verbose=0)
        layer = model.get_layer("kw")
        assert layer.compute_dtype == "float16"
        assert layer.output.dtype == "float16"
        assert layer.duty_cycles.dtype == "float32" and layer.boost_strength.dtype == "float32"
        assert int(layer.learning_iterations.numpy()) == 64
        assert np.isfinite(history.history["loss"]).all()
        assert 0 < layer.duty_cycles.numpy().sum()
    finally:
        keras.mixed_precision.set_global_policy("float32")


BAD_ARGUMENTS = [
    ("percent_on", 0.0), ("percent_on", 1.0), ("percent_on", -0.1), ("percent_on", float("nan")),
    ("percent_on", "0.1"), ("k_inference_factor", 0.0), ("k_inference_factor", 20.0),
    ("boost_strength", -1.0), ("boost_strength", float("inf")), ("boost_strength_factor", 1.5), ("boost_strength_factor", -0.1),
    ("duty_cycle_period", 0), ("duty_cycle_period", 10.5), ("duty_cycle_period", True),
    ("break_ties", 1), ("relu", "yes"), ("gradient", "identity"), ("gradient", None),
]


@pytest.mark.parametrize("cls", [ks.KWinners, ks.KWinners2D])
@pytest.mark.parametrize("name, value", BAD_ARGUMENTS)
def test_invalid_arguments_raise_value_error_naming_them(cls, name, value):
    kwargs = {"percent_on": 0.1, name: value}
    with pytest.raises(ValueError, match=name.split(" ")[0]) as error:
        cls(**kwargs)
    assert repr(value) in str(error.value) or str(value) in str(error.value)


@pytest.mark.parametrize("layer, shape", [(ks.KWinners(0.2), (5, 30)), (ks.KWinners2D(0.15), (5, 6, 6, 4))])
def test_empty_training_batch_changes_no_state(layer, shape):
    """A batch of size 0 (e.g. the tail of a filtered dataset) leaves duty cycles and
    learning iterations as they were; before any sample the formula would be 0 / 0."""
    empty = np.zeros((0,) + shape[1:], np.float32)
    assert layer(empty, training=True).shape == empty.shape
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), 0.0)
    assert int(layer.learning_iterations.numpy()) == 0
    layer(np.random.default_rng(0).normal(size=shape).astype(np.float32), training=True)
    duty_cycles = layer.duty_cycles.numpy().copy()
    assert duty_cycles.sum() > 0
    layer(empty, training=True)
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), duty_cycles)
    assert int(layer.learning_iterations.numpy()) == 5


def test_kwinners2d_specific_arguments():
    with pytest.raises(ValueError, match="local"):
        ks.KWinners2D(0.1, local="no")
    with pytest.raises(ValueError, match="data_format"):
        ks.KWinners2D(0.1, data_format="NHWC")


@pytest.mark.parametrize(
    "layer, shape, rank",
    [
        (ks.KWinners(0.1), (None,), r"rank >= 2 \(batch, ..., units\)"),
        (ks.KWinners(0.1), (None, 4, None), "known number of units"),
        (ks.KWinners1D(0.1), (None, 5, 5, 5), r"rank 3 \(batch, steps, channels\)"),
        (ks.KWinners3D(0.1, data_format="channels_first"), (None, 5, 5, 5), r"rank 5 \(batch, channels, depth, height, width\)"),
        (ks.KWinners2D(0.1), (None, 5, 5), "rank 4"),
        (ks.KWinners2D(0.1), (None, 5, None, 3), "non-batch dimension"),
    ],
)
def test_wrong_input_shape_at_build(layer, shape, rank):
    with pytest.raises(ValueError, match=rank):
        layer.build(shape)


def test_wrong_input_shape_in_a_model():
    with pytest.raises(ValueError, match="rank 4"):
        keras.Sequential([keras.Input((28, 28)), ks.KWinners2D(0.1)])
    layer = ks.KWinners(0.1)
    layer(np.ones((2, 10), np.float32))
    with pytest.raises(ValueError, match="expected axis -1|incompatible"):
        layer(np.ones((2, 11), np.float32))


def test_nan_inputs_stay_nan_and_do_not_count_as_active():
    layer = ks.KWinners(0.4)
    x = np.float32([[np.nan, 1, 2, 3, 4], [5, 4, 3, 2, 1]])
    y = layer(x, training=True).numpy()
    np.testing.assert_array_equal(y, np.float32([[np.nan, 0, 0, 3, 4], [5, 4, 0, 0, 0]]))
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), np.float32([0.5, 0.5, 0, 0.5, 0.5]))


@pytest.mark.tensorflow_only
def test_sequences_of_any_length_update_duty_cycles_per_step():
    """`KWinners` on `(batch, time, n)` with the time axis unknown until run
    time: each step keeps its own k, and a unit's duty cycle counts its active
    steps divided by the sequence length (target `percent_on`)."""
    import tensorflow as tf

    layer = ks.KWinners(0.25, duty_cycle_period=10)
    layer.build((None, None, 8))
    step = tf.function(lambda x: layer(x, training=True),
                       input_signature=[tf.TensorSpec((None, None, 8), tf.float32)])
    rng = np.random.default_rng(6)
    duty, iterations = layer.duty_cycles.numpy(), 0
    for length in (5, 9, 1):
        x = rng.random(size=(3, length, 8)).astype(np.float32) + 0.5  # winners are active (> 0)
        y = step(x).numpy()
        want = ref.kwinners(x, duty, 2, 1.0)
        np.testing.assert_array_equal(y, want)
        duty, iterations = ref.duty_cycle_update(duty, iterations, want, 10, -1)
        np.testing.assert_array_equal(layer.duty_cycles.numpy(), duty)
        assert int(layer.learning_iterations.numpy()) == iterations
    # each step of each sequence had 2 of 8 units active: the mean duty cycle is 2/8
    np.testing.assert_allclose(duty.mean(), 0.25, rtol=1e-6)


def test_kwinners_on_sequences_trains_in_a_model():
    """After Conv1D and in a token model, both ways of sparsifying a sequence."""
    inputs = keras.Input((None, 4))
    hidden = keras.layers.Conv1D(16, 3, padding="same")(inputs)
    per_step = ks.KWinners(0.25, name="per_step")(hidden)  # units along the last axis
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(per_step))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(7)
    model.fit(rng.normal(size=(32, 10, 4)), rng.integers(0, 2, 32), batch_size=8, verbose=0)
    layer = model.get_layer("per_step")
    assert int(layer.learning_iterations.numpy()) == 32
    assert 3.0 < layer.duty_cycles.numpy().sum() <= 4.0 + 1e-5  # k = 4 winners per step, most > 0
    y = keras.Model(inputs, per_step)(rng.normal(size=(2, 7, 4)).astype(np.float32), training=False).numpy()
    assert ((y != 0).sum(axis=-1) == layer.k_inference).all()  # 6 per step at inference


def _wrapped_and_nested():
    """KWinners inside `TimeDistributed`, inside a nested model, and plain."""
    inputs = keras.Input((3, 8))
    h = keras.layers.TimeDistributed(ks.KWinners(0.25, name="kw_wrapped"), name="td")(inputs)
    inner = keras.Sequential([keras.Input((3, 8)), keras.layers.Dense(16), ks.KWinners(0.25, name="kw_nested")],
                             name="inner")
    h = keras.layers.Flatten()(inner(keras.layers.Dense(8)(h)))
    outputs = keras.layers.Dense(3)(ks.KWinners(0.5, name="kw_plain")(keras.layers.Dense(10)(h)))
    return keras.Model(inputs, outputs)


def test_kwinners_layers_descends_into_wrappers_and_nested_models():
    model = _wrapped_and_nested()
    found = ks.kwinners.kwinners_layers(model)
    assert [layer.name for layer in found] == ["kw_wrapped", "kw_nested", "kw_plain"]
    assert ks.callbacks.kwinners_layers is ks.kwinners.kwinners_layers
    assert ks.kwinners.kwinners_layers(model.get_layer("td")) == [found[0]]
    assert ks.kwinners.kwinners_layers(found[2]) == [found[2]]
    assert ks.kwinners.kwinners_layers(keras.layers.Dense(3)) == []
    with pytest.raises(ValueError, match="`model` must be a Keras layer or model. Received: model='net'"):
        ks.kwinners.kwinners_layers("net")


def test_update_boost_strength_reaches_wrapped_and_nested_layers():
    model = _wrapped_and_nested()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.ones((8, 3, 8), np.float32), np.zeros(8, int), epochs=2, verbose=0,
              callbacks=[UpdateBoostStrength()])
    for layer in ks.kwinners.kwinners_layers(model):
        assert layer.boost_strength.numpy() == np.float32(1.0 * 0.9**2), layer.name
        assert int(layer.learning_iterations.numpy()) > 0, layer.name  # trained through the wrapper


def test_with_k_inference_factor_reaches_wrapped_and_nested_layers():
    model = _wrapped_and_nested()
    x = np.random.default_rng(0).normal(size=(4, 3, 8)).astype(np.float32)
    copy = ks.models.with_k_inference_factor(model, 1.0)
    assert [layer.k_inference for layer in ks.kwinners.kwinners_layers(model)] == [3, 6, 8]
    assert [layer.k_inference for layer in ks.kwinners.kwinners_layers(copy)] == [2, 4, 5]
    assert all(layer.get_config()["k_inference_factor"] == 1.0 for layer in ks.kwinners.kwinners_layers(copy))
    with pytest.raises(ValueError, match="kw_plain"):
        ks.models.with_k_inference_factor(model, 2.5)  # 0.5 * 2.5 > 1 in the last layer only
    # Back at the original factor the copy computes the model's function.
    again = ks.models.with_k_inference_factor(model, 1.5)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_search_form_reaches_wrapped_and_nested_layers():
    model = _wrapped_and_nested()
    x = np.random.default_rng(1).normal(size=(4, 3, 8)).astype(np.float32)
    from keras_sparse import micro

    search = micro.with_search_kwinners(model)
    assert ks.kwinners.kwinners_layers(search) == []
    assert sum(isinstance(layer, micro.SearchKWinners)
               for layer in search._flatten_layers(include_self=False, recursive=True)) == 3
    np.testing.assert_allclose(search.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


class _UnitsFirst(ks.kwinners.KWinnersBase):
    """A toy variant through the public seam: units on axis 1 of `(batch, n, steps)`,
    each step competing on its own (what `KWinners` does on the transpose)."""

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(f"expects (batch, units, steps); received input_shape={input_shape}")

    def _competing_units(self, input_shape):
        return input_shape[1]

    def _channel_axis(self):
        return 1

    def _activate(self, inputs, k, training):
        rows = keras.ops.transpose(inputs, (0, 2, 1))
        winners = ks.ops.kwinners(rows, self.duty_cycles, k, self.boost_strength, portable=not training,
                                  differentiable=training)
        return keras.ops.transpose(winners, (0, 2, 1))


def test_a_variant_defined_by_the_four_hooks_is_a_full_kwinners_layer():
    assert ks.kwinners._KWinnersBase is ks.kwinners.KWinnersBase  # the old private name still imports
    x = np.random.default_rng(2).normal(size=(6, 10, 4)).astype(np.float32)
    variant, reference = _UnitsFirst(0.3, name="variant"), ks.KWinners(0.3, name="reference")
    for _ in range(3):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variant(x, training=True)),
                                      keras.ops.convert_to_numpy(reference(x.transpose(0, 2, 1), training=True))
                                      .transpose(0, 2, 1))
    np.testing.assert_array_equal(variant.duty_cycles.numpy(), reference.duty_cycles.numpy())
    assert (variant.k, variant.k_inference, variant.n) == (3, 4, 10)
    assert int(variant.learning_iterations.numpy()) == 18
    model = keras.Sequential([keras.Input((10, 4)), variant])
    assert ks.kwinners.kwinners_layers(model) == [variant]
    with pytest.raises(ValueError, match="percent_on"):
        _UnitsFirst(1.5)


@pytest.mark.parametrize("layer, shape", [
    (lambda **kw: ks.KWinners(0.25, **kw), (4, 8)),
    (lambda **kw: ks.KWinners2D(0.2, **kw), (3, 4, 4, 5)),
])
def test_straight_through_gradient_trains_like_winners_but_passes_every_gradient(layer, shape):
    """`gradient="straight_through"`: the same outputs and duty cycles as the
    paper's gradient, the upstream gradient at every unit instead of the
    winners only (at masked positions 0); inference unchanged."""
    x = np.random.default_rng(7).normal(size=shape).astype(np.float32)
    upstream = np.random.default_rng(8).normal(size=shape).astype(np.float32)
    winners, straight = layer(), layer(gradient="straight_through")
    outputs = [to_numpy(kw(x, training=True)) for kw in (winners, straight)]
    np.testing.assert_array_equal(outputs[1], outputs[0])
    np.testing.assert_array_equal(to_numpy(straight.duty_cycles), to_numpy(winners.duty_cycles))
    # fresh layers (duty cycles 0, as in the calls above): the same winners
    fresh = (layer(), layer(gradient="straight_through"))
    grads = [vjp(lambda t, kw=kw: kw(t, training=True), x, upstream) for kw in fresh]
    np.testing.assert_array_equal(grads[0], np.where(outputs[0] != 0, upstream, 0))
    np.testing.assert_array_equal(grads[1], upstream)
    np.testing.assert_array_equal(to_numpy(straight(x)), to_numpy(winners(x)))
    assert straight.get_config()["gradient"] == "straight_through"
    assert winners.get_config()["gradient"] == "winners"
    if len(shape) == 2:  # a Keras mask: masked rows get no gradient
        mask = np.array([True, False, True, True])
        masked = layer(gradient="straight_through")
        grad = vjp(lambda t: masked(t, training=True, mask=mask), x, upstream)
        np.testing.assert_array_equal(grad, np.where(mask[:, None], upstream, 0))
