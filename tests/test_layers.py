"""One harness for every keras_sparse layer (larq style): config round trip,
`.keras` save/load with state, resumed training, resuming a crashed `fit`
from `BackupAndRestore`, SavedModel, TFLite; and Keras' own layer contract
(`run_layer_test`'s checks) for these and the feature and export layers
(`CONTRACT_LAYERS`): weight counts, `compute_output_shape` against the real
output, symbolic against eager shapes and dtypes, mixed precision, `fit`
with `jit_compile="auto"`.

Add a layer to `LAYERS` and every test here covers it.
"""

import inspect
import os
import re

import numpy as np
import pytest

import keras
import keras_sparse as ks
from keras_sparse.callbacks import UpdateBoostStrength
from keras_sparse.kwinners import KWinnersBase, kwinners_layers
from keras_sparse.micro import SearchKWinners
from tests.conftest import crash_at, tf_cpu_runs_nchw_conv, to_numpy
from tests.test_kwinners_variant import SampleKWinners

LAYERS = [
    pytest.param(lambda: ks.KWinners(0.2, boost_strength=1.5), (30,), id="KWinners"),
    pytest.param(lambda: ks.KWinners(0.3, break_ties=True, relu=True, gradient="straight_through"), (30,),
                 id="KWinners-ties-relu-straight-through"),
    pytest.param(lambda: ks.KWinners2D(0.15), (6, 6, 4), id="KWinners2D-global"),
    pytest.param(
        lambda: ks.KWinners2D(0.25, local=True, break_ties=True, data_format="channels_first"),
        (4, 6, 6),
        id="KWinners2D-local-channels_first",
    ),
    pytest.param(lambda: ks.KWinners(0.25, boost_strength=1.5), (10, 8), id="KWinners-sequence"),
    pytest.param(lambda: ks.KWinners1D(0.1), (12, 5), id="KWinners1D-global"),
    pytest.param(
        lambda: ks.KWinners1D(0.4, local=True, break_ties=True, data_format="channels_first"),
        (5, 12),
        id="KWinners1D-local-channels_first",
    ),
    pytest.param(lambda: ks.KWinners3D(0.1, relu=True), (3, 4, 4, 3), id="KWinners3D-global-relu"),
    # a variant defined outside the library (tests/test_kwinners_variant.py)
    pytest.param(lambda: SampleKWinners(0.2, relu=True), (5, 4), id="SampleKWinners-variant"),
    pytest.param(lambda: ks.layers.SparseDense(8, sparsity=0.6, seed=1), (30,), id="SparseDense"),
    pytest.param(lambda: ks.layers.SparseDense(8, sparsity=0.6, seed=4, block=(2, 5)), (30,), id="SparseDense-block"),
    pytest.param(lambda: ks.layers.SparseDense(8, sparsity=0.5, seed=5, block=(2, 2), pattern=(4, 8), mask="learned"),
                 (32,), id="SparseDense-learned-block-4:8"),
    pytest.param(lambda: ks.layers.SparseConv1D(5, 3, sparsity=0.5, seed=2), (10, 4), id="SparseConv1D"),
    pytest.param(lambda: ks.layers.SparseConv2D(5, 3, sparsity=0.7, seed=3), (6, 6, 4), id="SparseConv2D"),
    pytest.param(
        lambda: ks.layers.SparseConv2D(5, 3, sparsity=0.5, data_format="channels_first"),
        (4, 6, 6),
        id="SparseConv2D-channels_first",
    ),
    pytest.param(lambda: ks.layers.LifetimeSparsity(0.25), (30,), id="LifetimeSparsity"),
    pytest.param(lambda: ks.layers.BatchTopK(2, momentum=0.9), (3, 4, 2), id="BatchTopK"),
    pytest.param(lambda: ks.layers.DropConnectDense(8, rate=0.5, seed=1), (30,), id="DropConnectDense"),
    pytest.param(lambda: ks.layers.DropConnectDense(8, rate=0.3, activation="relu"), (30,), id="DropConnectDense-no-seed"),
]
# KERAS_SPARSE_HARNESS=core (the JAX run of tests/test_backends.py, where
# every shape compiles anew): one case per layer class. The option variants
# (ties, relu, data formats, local) differ in the ops, which
# tests/test_kwinners.py and tests/test_properties.py check on every backend.
if os.environ.get("KERAS_SPARSE_HARNESS") == "core":
    LAYERS = [case for case in LAYERS if case.id in {
        "KWinners", "KWinners2D-global", "KWinners1D-global", "KWinners3D-global-relu", "SampleKWinners-variant",
        "SparseDense", "SparseDense-learned-block-4:8", "SparseConv1D", "SparseConv2D", "LifetimeSparsity",
        "BatchTopK", "DropConnectDense"}]
    assert len(LAYERS) == 12, [case.id for case in LAYERS]


def _search_kwinners(layer, input_shape):
    """The TFLite Micro search form of a built k-winners layer."""
    layer.build((None,) + input_shape)
    layer.duty_cycles.assign(np.linspace(0, 0.5, layer.duty_cycles.shape[0]))
    return SearchKWinners.from_layer(layer)


CONTRACT_LAYERS = LAYERS + [
    pytest.param(lambda: ks.layers.LogMelSpectrogram(sample_rate=1000, n_fft=32, hop_length=16, n_mels=4), (128,),
                 id="LogMelSpectrogram"),
    pytest.param(lambda: _search_kwinners(ks.KWinners(0.2), (30,)), (30,), id="SearchKWinners"),
    pytest.param(lambda: _search_kwinners(ks.KWinners2d(0.25, local=True), (4, 4, 6)), (4, 4, 6),
                 id="SearchKWinners-2d-local"),
]


def _model(make_layer, input_shape):
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Dense(input_shape[-1], name="pre")(inputs)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(make_layer()(hidden)))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _data(input_shape, n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n,) + input_shape).astype(np.float32), rng.integers(0, 3, n)


def _fit(model, x, y):
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[UpdateBoostStrength()])


@pytest.mark.parametrize("make_layer, input_shape", LAYERS)
def test_config_round_trip(make_layer, input_shape):
    layer = make_layer()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


@pytest.mark.parametrize("make_layer, input_shape", LAYERS)
def test_keras_file_round_trip_and_resumed_training(make_layer, input_shape, tmp_path):
    x, y = _data(input_shape)
    model = _model(make_layer, input_shape)
    _fit(model, x, y)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects needed
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # one more epoch on each: same weights, same state
    _fit(model, x, y)
    _fit(loaded, x, y)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("make_layer, input_shape", LAYERS)
def test_saved_model_serves_like_predict(make_layer, input_shape, tmp_path):
    import tensorflow as tf

    x, y = _data(input_shape)
    model = _model(make_layer, input_shape)
    _fit(model, x, y)
    model.export(tmp_path / "saved", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))  # keep it alive while serving
    served = reloaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(served, model.predict(x, verbose=0), rtol=0, atol=1e-6)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("make_layer, input_shape", LAYERS)
def test_tflite_uses_builtins_and_matches_predict(make_layer, input_shape, tmp_path):
    x, y = _data(input_shape)
    model = _model(make_layer, input_shape)
    _fit(model, x, y)
    path = ks.export.to_tflite(model, tmp_path / "model.tflite")
    ops = ks.export.tflite_op_names(path)
    assert not [op for op in ops if op.startswith("CUSTOM")], ops  # no Flex, no custom ops
    if isinstance(model.layers[2], KWinnersBase):
        assert "TOPK_V2" in ops
    got = ks.export.run_tflite(path, x)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=0, atol=1e-5)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("make_layer, input_shape", LAYERS)
def test_tflite_micro_file_runs_in_tflite_micro_like_predict(make_layer, input_shape, tmp_path):
    """target='micro': only TFLite Micro ops (k-winners by threshold search),
    and its interpreter (one sample per invocation) reproduces `predict`
    (float32); so does LiteRT on the same file with the whole batch at once
    (the batch stays dynamic)."""
    x, y = _data(input_shape, n=32)
    inputs = keras.Input(input_shape)  # no Dense on rank > 2 (its shape ops need REDUCE_PROD)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(make_layer()(inputs))))
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    _fit(model, x, y)
    path = ks.export.to_tflite(model, tmp_path / "model.tflite", target="micro")
    assert set(ks.export.tflite_op_names(path)) <= ks.export.MICRO_OPS
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(ks.export.run_tflite(path, x, runtime="micro"), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ks.export.run_tflite(path, x), expected, rtol=0, atol=1e-5)


# The callbacks' order is Keras' own logic, the same on every backend: JAX and
# PyTorch (tests/test_backends.py) check one order, TensorFlow both.
CALLBACK_ORDERS = [True, False] if keras.backend.backend() == "tensorflow" else [False]


@pytest.mark.parametrize("boost_first", CALLBACK_ORDERS,
                         ids=["boost-then-backup", "backup-then-boost"][-len(CALLBACK_ORDERS):])
@pytest.mark.parametrize("make_layer, input_shape", LAYERS)
def test_resume_from_backup_equals_an_uninterrupted_run(make_layer, input_shape, boost_first, tmp_path):
    """A `fit` killed mid-epoch and resumed by `BackupAndRestore` ends with the
    bit-identical weights, state (duty cycles, boost strength, learning
    iterations) and optimizer variables of an uninterrupted run, in either
    order of the callbacks."""
    x, y = _data(input_shape)

    def run(backup_dir, crash=None):
        keras.utils.set_random_seed(0)  # a fresh process: same build, same seed=None masks
        model = _model(make_layer, input_shape)
        callbacks = [UpdateBoostStrength(), keras.callbacks.BackupAndRestore(str(backup_dir))]
        if not boost_first:
            callbacks.reverse()
        model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0,
                  callbacks=callbacks + ([crash] if crash else []))
        return model

    uninterrupted = run(tmp_path / "a")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path / "b", crash=crash_at(epoch=2, batch=1))
    resumed = run(tmp_path / "b")
    for a, b in zip(uninterrupted.weights + uninterrupted.optimizer.variables,
                    resumed.weights + resumed.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for layer in kwinners_layers(resumed):  # 4 epochs done
        assert layer.boost_strength.numpy() == np.float32(layer.initial_boost_strength * 0.9**4)
        assert int(layer.learning_iterations.numpy()) == 4 * len(x)


# Every layer of `keras_sparse.layers` with example arguments: all of its
# optional arguments away from their defaults where the config depends on it.
SIGNATURE_ARGS = {
    "KWinners": dict(percent_on=0.2),
    "KWinners1D": dict(percent_on=0.2),
    "KWinners2D": dict(percent_on=0.2),
    "KWinners3D": dict(percent_on=0.2),
    "SparseDense": dict(units=4, sparsity=0.5, seed=1, block=(1, 2), pattern=(2, 4), mask="learned"),
    "SparseConv1D": dict(filters=4, kernel_size=2, sparsity=0.5, seed=1, block=(1, 2), pattern=(2, 4),
                         mask="learned"),
    "SparseConv2D": dict(filters=4, kernel_size=2, sparsity=0.5, seed=1, block=(1, 2), pattern=(2, 4),
                         mask="learned"),
    "LogMelSpectrogram": dict(),
    "LifetimeSparsity": dict(percent_on=0.2),
    "BatchTopK": dict(k=3, momentum=0.9),
    "DropConnectDense": dict(units=4, rate=0.3, seed=1),
}
# Arguments that may be passed by position: the required ones and these.
POSITIONAL_OPTIONAL = {"percent_on"}


def _public_layers():
    classes = {cls for cls in vars(ks.layers).values()
               if isinstance(cls, type) and issubclass(cls, keras.layers.Layer) and cls is not KWinnersBase}
    return sorted(classes, key=lambda cls: cls.__name__)


def test_every_layer_is_in_the_signature_table_and_common_ones_at_top_level():
    assert sorted(cls.__name__ for cls in _public_layers()) == sorted(SIGNATURE_ARGS)
    for name in ["KWinners", "KWinners1D", "KWinners2D", "KWinners3D", "SparseDense", "SparseConv1D", "SparseConv2D"]:
        assert getattr(ks, name) is getattr(ks.layers, name)
    # The former names of the feature-map layers, kept as aliases.
    assert (ks.KWinners1d, ks.KWinners2d, ks.KWinners3d) == (ks.KWinners1D, ks.KWinners2D, ks.KWinners3D)
    assert ks.layers.KWinners2d is ks.kwinners.KWinners2d is ks.KWinners2D


@pytest.mark.parametrize("cls", _public_layers(), ids=lambda cls: cls.__name__)
def test_layer_kwargs(cls):
    """Signature parity (larq's `test_layer_kwargs`): every `__init__` argument
    is documented under Args, optional ones keyword-only (that they are the
    config's keys: `test_constructor_parameters_are_the_config_keys`)."""
    parameters = [p for name, p in inspect.signature(cls.__init__).parameters.items()
                  if name != "self" and p.kind is not p.VAR_KEYWORD]
    assert {p.name for p in parameters} == set(SIGNATURE_ARGS[cls.__name__]) | {
        p.name for p in parameters if p.default is not p.empty}
    layer = cls(**SIGNATURE_ARGS[cls.__name__])
    config = layer.get_config()
    documented = set(re.findall(r"^    (\w+):", inspect.getdoc(cls), re.M))  # the Args entries
    for p in parameters:
        assert p.name in documented, f"{cls.__name__}'s docstring does not document `{p.name}` under Args"
        if p.default is not p.empty and p.name not in POSITIONAL_OPTIONAL:
            assert p.kind is p.KEYWORD_ONLY, f"{cls.__name__}: `{p.name}` should be keyword-only"
    assert type(layer).from_config(config).get_config() == config


# Base-layer arguments (`keras.layers.Layer.__init__`: name, dtype, trainable,
# autocast, activity_regularizer): taken by **kwargs or spelled out, stored
# by Keras or not; left out of the parity below.
BASE_LAYER_ARGS = set(inspect.signature(keras.layers.Layer.__init__).parameters) - {"self", "kwargs"}
# Arguments a config leaves out at their default value: Keras' Dense stores
# its LoRA arguments only when set; the sparse-weights layers store `block`,
# `pattern` and `mask` only when set (so the paper's layers' configs, and
# saved models, stay as they were).
OMITTED_AT_DEFAULT = {"lora_rank", "lora_alpha", "block", "pattern", "mask"}
# Arguments that are not stored: a sparse-weights layer's `kernel_constraint`
# must be None (its mask is the constraint, stored as sparsity, seed, ...).
NOT_STORED = {"kernel_constraint"}
SPARSE_WEIGHT_LAYERS = {ks.layers.SparseDense: keras.layers.Dense, ks.layers.SparseConv1D: keras.layers.Conv1D,
                        ks.layers.SparseConv2D: keras.layers.Conv2D}


def _init_parameters(cls):
    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind is not p.VAR_KEYWORD}


@pytest.mark.parametrize("cls", _public_layers(), ids=lambda cls: cls.__name__)
def test_constructor_parameters_are_the_config_keys(cls):
    """The constructor's parameters are exactly the keys of `get_config()`
    (base-layer keys aside; the rules above for the keys left out), so the
    signature, the docs (`test_layer_kwargs`) and the config cannot drift."""
    parameters = _init_parameters(cls)
    layer = cls(**SIGNATURE_ARGS[cls.__name__])
    config = layer.get_config()
    at_default = {name for name in OMITTED_AT_DEFAULT & set(parameters)
                  if SIGNATURE_ARGS[cls.__name__].get(name, parameters[name].default) == parameters[name].default}
    not_stored = NOT_STORED if cls in SPARSE_WEIGHT_LAYERS else set()
    assert set(config) - BASE_LAYER_ARGS == set(parameters) - BASE_LAYER_ARGS - at_default - not_stored


@pytest.mark.parametrize("cls", list(SPARSE_WEIGHT_LAYERS), ids=lambda cls: cls.__name__)
def test_sparse_weight_layers_take_every_keras_argument_with_its_default(cls):
    """A sparse-weights layer takes every argument of its Keras parent, by
    name and with the same default (plus its own: sparsity, seed, block,
    pattern, mask), and forwards it: a layer built with non-default Keras
    arguments has the parent's config for them."""
    ours, theirs = _init_parameters(cls), _init_parameters(SPARSE_WEIGHT_LAYERS[cls])
    assert set(ours) - set(theirs) == {"sparsity", "seed", "block", "pattern", "mask"}
    for name, parameter in theirs.items():
        # Both convolutions share one constructor: an int stride or dilation
        # rate means that value along every axis, as in Keras (`1` is `(1, 1)`).
        default = ours[name].default
        if isinstance(parameter.default, tuple) and isinstance(default, int):
            default = (default,) * len(parameter.default)
        assert default == parameter.default, name
        assert ours[name].kind in (parameter.kind, parameter.KEYWORD_ONLY), name
    keras_args = dict(activation="relu", use_bias=False, kernel_initializer="he_normal", bias_initializer="ones",
                      kernel_regularizer="l2", bias_regularizer="l1", activity_regularizer="l1",
                      bias_constraint="non_neg", name="layer", dtype="float64", trainable=False)
    if cls is ks.layers.SparseDense:
        required, sparse = dict(units=4), dict(lora_rank=2, lora_alpha=3)
    else:
        required = dict(filters=4, kernel_size=3)
        sparse = dict(strides=2, padding="same", data_format="channels_first", dilation_rate=1, groups=2)
    for given in [dict(name="layer"), dict(keras_args, **sparse)]:  # the defaults, then others
        ours_config = cls(**required, sparsity=0.5, seed=1, **given).get_config()
        theirs_config = SPARSE_WEIGHT_LAYERS[cls](**required, **given).get_config()
        for key, value in theirs_config.items():
            if key not in NOT_STORED:
                assert ours_config[key] == value, key


def _weight_counts(layer):
    """(trainable, non-trainable) weights each kind of layer must have."""
    if isinstance(layer, KWinnersBase):
        return 0, 3  # duty_cycles, boost_strength, learning_iterations
    if isinstance(layer, (ks.layers.SparseDense, ks.layers.SparseConv1D, ks.layers.SparseConv2D)):
        # kernel, bias; a fixed mask is the constraint's, a learned one a weight (kernel_mask)
        return 2, int(layer.mask == "learned")
    if isinstance(layer, ks.layers.DropConnectDense):
        return 2, 0  # kernel, bias (the masks' seed state is a variable, not a weight)
    if isinstance(layer, ks.layers.BatchTopK):
        return 0, 2  # threshold, threshold_updates
    return 0, 0  # LifetimeSparsity, LogMelSpectrogram, SearchKWinners: constants only


@pytest.mark.parametrize("make_layer, input_shape", CONTRACT_LAYERS)
def test_weights_and_shapes_symbolic_and_eager(make_layer, input_shape):
    """`run_layer_test`'s structural checks: weight counts (and `trainable =
    False` freezing them all), `compute_output_shape` and the symbolic
    output (shape, dtype) against the eager output."""
    layer = make_layer()
    symbolic = layer(keras.Input(input_shape))
    x, _ = _data(input_shape, n=4)
    eager = layer(x)
    trainable, non_trainable = _weight_counts(layer)
    assert (len(layer.trainable_weights), len(layer.non_trainable_weights)) == (trainable, non_trainable)
    assert len(layer.weights) == trainable + non_trainable
    assert tuple(symbolic.shape) == (None,) + tuple(eager.shape[1:])
    assert keras.backend.standardize_dtype(symbolic.dtype) == keras.backend.standardize_dtype(eager.dtype)
    assert tuple(layer.compute_output_shape((None,) + input_shape)) == tuple(symbolic.shape)
    assert tuple(layer.compute_output_shape((4,) + input_shape)) == tuple(eager.shape)
    layer.trainable = False
    assert not layer.trainable_weights and len(layer.non_trainable_weights) == trainable + non_trainable


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("make_layer, input_shape", CONTRACT_LAYERS)
def test_mixed_precision(make_layer, input_shape, policy):
    """Under a mixed policy the layer computes in float16/bfloat16 (the
    log-mel features stay float32) and keeps its weights and state in
    float32 or integers. k-winners layers choose the winners the float32
    layer chooses on the same rounded inputs, and pass those values exactly;
    layers with kernels agree with float32 to the rounding of the policy."""
    x, _ = _data(input_shape, n=4)
    reference = make_layer()
    reference(x)
    compute_dtype = policy.split("_")[1]
    if (keras.backend.backend() == "tensorflow" and getattr(reference, "data_format", None) == "channels_first"
            and reference.trainable_weights and not tf_cpu_runs_nchw_conv(compute_dtype)):
        pytest.skip(f"TensorFlow on this CPU has no {compute_dtype} NCHW Conv2D (keras.layers.Conv2D fails alike)")
    # The same layer (its sparse mask's seed too) under the mixed policy.
    layer = type(reference).from_config({**reference.get_config(), "dtype": policy})
    layer.build((None,) + input_shape)
    layer.set_weights(reference.get_weights())
    rounded = to_numpy(keras.ops.cast(keras.ops.cast(x, compute_dtype), "float32"))
    # Layers that select in training run their training path (winners, state).
    selecting = isinstance(layer, (KWinnersBase, ks.layers.LifetimeSparsity, ks.layers.BatchTopK))
    out = layer(x, training=True) if selecting else layer(x)
    feature_layer = isinstance(layer, ks.layers.LogMelSpectrogram)
    assert keras.backend.standardize_dtype(out.dtype) == ("float32" if feature_layer else compute_dtype)
    assert {keras.backend.standardize_dtype(w.dtype) for w in layer.weights} <= {"float32", "int32", "int64", "bool"}
    got = to_numpy(keras.ops.cast(out, "float32"))
    if selecting:
        want = to_numpy(reference(rounded, training=True))
    if isinstance(layer, KWinnersBase):
        assert int(layer.learning_iterations.numpy()) == 4  # the training call updated the state
        np.testing.assert_array_equal(layer.duty_cycles.numpy(), reference.duty_cycles.numpy())
    elif not selecting:
        want = to_numpy(reference(x if feature_layer else rounded))
    if layer.trainable_weights:  # a kernel in float16/bfloat16: 3 and 8 significant bits
        tolerance = {"float16": 3e-3, "bfloat16": 3e-2}[compute_dtype] * np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)
    elif feature_layer:
        np.testing.assert_array_equal(got, want)
    else:  # winners chosen on the exact values and passed through
        np.testing.assert_array_equal(got, to_numpy(keras.ops.cast(keras.ops.cast(want, compute_dtype), "float32")))
        assert (got != 0).any() and (got == 0).any()


@pytest.mark.parametrize("make_layer, input_shape", CONTRACT_LAYERS)
def test_fit_with_jit_compile_auto(make_layer, input_shape):
    """One epoch of `fit` with Keras' default `jit_compile="auto"` (XLA on
    JAX, and on TensorFlow where it pays): finite loss, every trainable
    weight moves, k-winners state counts the samples."""
    x, y = _data(input_shape, n=16)
    layer = make_layer()
    model = keras.Sequential([keras.Input(input_shape), layer, keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile="auto")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for weight, old in zip(model.trainable_weights, before, strict=True):
        assert not np.array_equal(weight.numpy(), old), weight.path
    if isinstance(layer, KWinnersBase):
        assert int(layer.learning_iterations.numpy()) == 16
        assert layer.duty_cycles.numpy().sum() > 0
