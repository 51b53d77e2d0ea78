"""Sparse weights (docs/semantics.md): the mask, its enforcement, saving, export."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sparse
from keras_sparse.constraints import SparseWeights, keep_masked, sparse_mask, sparse_weight_layers
from keras_sparse.export import has_block_sparse_weights, run_tflite, tflite_op_names, to_tflite
from keras_sparse.layers import SparseConv1D, SparseConv2D, SparseDense


def kept(sparsity, fan_in):
    return round((1 - sparsity) * fan_in)


def nonzero_per_unit(kernel):
    kernel = np.asarray(kernel)
    return (kernel != 0).reshape(-1, kernel.shape[-1]).sum(axis=0)


def assert_masked(layer, kernel=None):
    """Kernel is exactly 0.0 off the mask, and the mask has `kept` entries per unit."""
    kernel = np.asarray(layer.kernel if kernel is None else kernel)
    mask = layer.kernel_constraint.mask(kernel.shape)
    fan_in = math.prod(kernel.shape[:-1])
    per_unit = mask.reshape(-1, kernel.shape[-1]).sum(0)
    assert np.all(per_unit == kept(layer.kernel_constraint.sparsity, fan_in))
    assert np.all(kernel[~mask] == 0.0)
    return mask


# --- 1. per-unit counts, seeds -------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.7, 0.9, 0.95])
def test_sparse_dense_counts_from_first_forward_pass(sparsity):
    layer = SparseDense(37, sparsity)
    x = np.random.default_rng(0).normal(size=(5, 120)).astype("float32")
    y = layer(x)  # builds and runs: the kernel is already masked
    kernel = layer.kernel.numpy()
    assert kernel.shape == (120, 37)
    assert np.all(nonzero_per_unit(kernel) == kept(sparsity, 120))
    assert_masked(layer)
    np.testing.assert_allclose(y, x @ kernel + layer.bias.numpy(), atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.8])
def test_sparse_conv2d_counts(sparsity, data_format):
    layer = SparseConv2D(6, (3, 2), sparsity, data_format=data_format, padding="same")
    shape = (2, 8, 7, 5) if data_format == "channels_last" else (2, 5, 8, 7)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    y = layer(x)
    assert y.shape == ((2, 8, 7, 6) if data_format == "channels_last" else (2, 6, 8, 7))
    assert layer.kernel.shape == (3, 2, 5, 6)
    assert np.all(nonzero_per_unit(layer.kernel) == kept(sparsity, 3 * 2 * 5))
    assert_masked(layer)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("sparsity", [0.25, 0.6, 0.9])
def test_sparse_conv1d_counts(sparsity, data_format):
    layer = SparseConv1D(9, 5, sparsity, data_format=data_format)
    shape = (3, 20, 11) if data_format == "channels_last" else (3, 11, 20)
    x = np.random.default_rng(2).normal(size=shape).astype("float32")
    y = layer(x)
    assert y.shape == ((3, 16, 9) if data_format == "channels_last" else (3, 9, 16))
    assert layer.kernel.shape == (5, 11, 9)
    assert np.all(nonzero_per_unit(layer.kernel) == kept(sparsity, 5 * 11))
    assert_masked(layer)


def test_grouped_conv_uses_per_group_fan_in():
    layer = SparseConv2D(8, 3, 0.5, groups=2)
    layer(np.ones((1, 6, 6, 4), "float32"))
    assert layer.kernel.shape == (3, 3, 2, 8)
    assert np.all(nonzero_per_unit(layer.kernel) == kept(0.5, 18))


@pytest.mark.parametrize("shape", [(50, 7), (4, 13, 3), (3, 3, 16, 5)])
@pytest.mark.parametrize("sparsity", [0.5, 0.7, 0.99])
def test_constraint_counts_any_supported_rank(shape, sparsity):
    w = np.random.default_rng(3).normal(size=shape).astype("float32") + 10.0  # no zeros
    out = SparseWeights(sparsity, seed=5)(w)
    out = keras.ops.convert_to_numpy(out)
    fan_in = math.prod(shape[:-1])
    assert np.all(nonzero_per_unit(out) == max(kept(sparsity, fan_in), 0))
    mask = out != 0
    np.testing.assert_array_equal(out[mask], w[mask])  # kept weights untouched


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_constraint_is_where_bit_for_bit(dtype):
    """The constraint's bitwise AND is `where(mask, w, 0.0)` to the bit: +0.0
    outside the mask whatever the weight there (-0.0, +-inf, NaN), kept
    weights (specials included) untouched."""
    w = np.random.default_rng(8).normal(size=(3, 3, 4, 6)).astype("float32")
    w.reshape(-1)[:100] = np.resize([np.nan, -0.0, np.inf, -np.inf, -1e-30], 100)
    w = keras.ops.convert_to_numpy(keras.ops.cast(w, dtype))
    constraint = SparseWeights(0.5, seed=2)
    mask = constraint.mask(w.shape)
    expected = np.where(mask, w, np.zeros_like(w))
    for _ in range(2):  # the second call reuses the cached bits
        out = keras.ops.convert_to_numpy(constraint(keras.ops.convert_to_tensor(w)))
        assert out.dtype == w.dtype
        np.testing.assert_array_equal(out.view(f"uint{8 * w.itemsize}"), expected.view(f"uint{8 * w.itemsize}"))
    assert not np.signbit(out[~mask]).any() and np.isnan(out[mask]).any()
    with pytest.raises(ValueError, match=r"`mask` must have the kernel's shape \(3, 3, 4, 6\). "
                                         r"Received: mask of shape \(6,\)"):
        keep_masked(keras.ops.convert_to_tensor(w), mask[0, 0, 0])  # would broadcast


def test_same_seed_same_mask_different_seed_different_mask():
    shape = (3, 3, 8, 16)
    a = SparseWeights(0.7, seed=11).mask(shape)
    b = SparseWeights(0.7, seed=11).mask(shape)
    c = SparseWeights(0.7, seed=12).mask(shape)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.3  # two random 30% masks differ on ~42% of entries
    # Units differ from each other too (not one pattern repeated).
    flat = a.reshape(-1, shape[-1])
    assert len({flat[:, u].tobytes() for u in range(shape[-1])}) == shape[-1]
    # Same seed, same layer geometry -> same kernel zeros.
    l1, l2 = SparseDense(10, 0.6, seed=4), SparseDense(10, 0.6, seed=4)
    l1.build((None, 30))
    l2.build((None, 30))
    np.testing.assert_array_equal(l1.kernel.numpy() == 0, l2.kernel.numpy() == 0)


def test_seed_none_is_drawn_stored_and_reproducible():
    keras.utils.set_random_seed(123)
    s1, s2 = SparseWeights(0.5).seed, SparseWeights(0.5).seed
    keras.utils.set_random_seed(123)
    assert SparseWeights(0.5).seed == s1
    assert s1 != s2  # two layers in one model get different masks
    layer = SparseDense(4, 0.5)
    assert isinstance(layer.seed, int)
    assert layer.get_config()["seed"] == layer.seed


def test_mask_algorithm_is_pinned():
    """The mask is a documented function of (seed, shape): a saved model relies on it."""
    mask = sparse_mask((6, 2), 0.5, seed=0)
    keys = np.random.PCG64(0).random_raw(12).reshape(2, 6)
    expected = np.zeros((2, 6), bool)
    for u in range(2):
        expected[u, np.argsort(keys[u], kind="stable")[:3]] = True
    np.testing.assert_array_equal(mask, expected.T)
    # Regression pin: this exact mask must never change (it would break saved models).
    pinned = [1, 4, 8, 10, 15, 17, 25, 27, 28]  # unit u's inputs are 10 * u + i
    assert np.flatnonzero(sparse_mask((10, 3), 0.7, seed=42).T.ravel()).tolist() == pinned


def test_initializer_uses_true_fan_in():
    """VarianceScaling(fan_in) on a sparse kernel: variance scale / kept, not scale / fan_in."""
    init = keras.initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal", seed=1)
    layer = SparseDense(2000, 0.9, kernel_initializer=init)
    layer.build((None, 1000))
    k = layer.kernel.numpy()
    nonzero = k[k != 0]
    assert nonzero.size == 2000 * 100
    np.testing.assert_allclose(nonzero.std(), 1 / math.sqrt(100), rtol=0.01)
    # Default glorot_uniform: both fans shrink by kept / fan_in.
    layer = SparseDense(500, 0.75)
    layer.build((None, 400))
    k = layer.kernel.numpy()
    expected = math.sqrt(2.0 / (0.25 * 400 + 0.25 * 500))  # std of glorot on sparse fans
    np.testing.assert_allclose(k[k != 0].std(), expected, rtol=0.02)
    # An absolute-scale initializer is only masked.
    layer = SparseDense(300, 0.5, kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))
    layer.build((None, 400))
    k = layer.kernel.numpy()
    np.testing.assert_allclose(k[k != 0].std(), 0.05, rtol=0.02)
    # The config keeps the user's initializer (no double scaling on reload).
    assert layer.get_config()["kernel_initializer"]["class_name"] == "RandomNormal"


# --- 2. training with every optimizer -------------------------------------------


def small_model():
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            SparseConv2D(4, 3, 0.5, activation="tanh"),  # -> (4, 4, 4)
            keras.layers.Reshape((16, 4)),
            SparseConv1D(4, 3, 0.5, activation="tanh"),  # -> (14, 4)
            keras.layers.Flatten(),
            SparseDense(16, 0.7, activation="tanh"),
            keras.layers.Dense(3, kernel_constraint=SparseWeights(0.6)),  # plain Dense
        ]
    )


def kernel_layers(model):
    return [
        layer
        for layer in model.layers
        if isinstance(getattr(layer, "kernel_constraint", None), SparseWeights)
    ]


OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.05),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.02, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(1e-3),
    "adamw": lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.05),
    "rmsprop": lambda: keras.optimizers.RMSprop(1e-3),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_zeros_survive_1000_steps(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8000, 6, 6, 2)).astype("float32")
    y = rng.normal(size=(8000, 3)).astype("float32")
    model = small_model()
    layers = kernel_layers(model)
    assert len(layers) == 4
    before = [layer.kernel.numpy().copy() for layer in layers]
    model.compile(OPTIMIZERS[name](), "mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 1000
    for layer, k0 in zip(layers, before):
        k1 = layer.kernel.numpy()
        mask = assert_masked(layer, k1)  # every masked weight exactly 0.0
        assert np.all(np.isfinite(k1))
        changed = (k1 != k0)[mask].mean()
        assert changed >= 0.95, (name, layer.name, changed)


# --- 3. save / load / resume / export -------------------------------------------


def trained_model(steps=50):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8 * steps, 6, 6, 2)).astype("float32")
    y = rng.normal(size=(8 * steps, 3)).astype("float32")
    model = small_model()
    model.compile(keras.optimizers.AdamW(1e-2, weight_decay=0.1), "mse")
    model.fit(x, y, batch_size=8, verbose=0)
    return model, x, y


def test_keras_save_load_keeps_mask_and_training_keeps_zeros(tmp_path):
    model, x, y = trained_model()
    path = str(tmp_path / "sparse.keras")
    model.save(path)
    keras.backend.clear_session()
    loaded = keras.models.load_model(path)  # no custom_objects: registered classes
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    originals = kernel_layers(model)
    restored = kernel_layers(loaded)
    masks = []
    for a, b in zip(originals, restored):
        assert b.kernel_constraint.seed == a.kernel_constraint.seed
        mask = b.kernel_constraint.mask(b.kernel.shape)
        np.testing.assert_array_equal(mask, a.kernel_constraint.mask(a.kernel.shape))
        np.testing.assert_array_equal(b.kernel.numpy(), a.kernel.numpy())
        assert_masked(b)
        masks.append(mask)
    np.testing.assert_allclose(
        loaded.predict(x[:16], verbose=0), model.predict(x[:16], verbose=0), atol=1e-6
    )
    # Resume training (optimizer state restored): same zeros, weights keep learning.
    assert int(loaded.optimizer.iterations.numpy()) == 50
    before = [layer.kernel.numpy().copy() for layer in restored]
    loaded.fit(x, y, batch_size=8, verbose=0)
    assert int(loaded.optimizer.iterations.numpy()) == 100
    for layer, mask, k0 in zip(restored, masks, before):
        k1 = layer.kernel.numpy()
        assert np.all(k1[~mask] == 0.0)
        assert (k1 != k0)[mask].mean() >= 0.95


def test_layer_config_round_trip():
    layer = SparseConv2D(5, 3, 0.6, strides=2, data_format="channels_first", name="c")
    config = layer.get_config()
    assert config["sparsity"] == 0.6 and "kernel_constraint" not in config
    clone = SparseConv2D.from_config(config)
    layer.build((None, 4, 9, 9))
    clone.build((None, 4, 9, 9))
    np.testing.assert_array_equal(layer.kernel_mask, clone.kernel_mask)
    assert clone.strides == (2, 2) and clone.data_format == "channels_first"


def test_model_export_and_tflite_carry_the_zeros(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input((40,))
    hidden = SparseDense(30, 0.8, activation="relu")(inputs)
    outputs = SparseDense(5, 0.5)(hidden)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(256, 40)).astype("float32")
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(x, rng.normal(size=(256, 5)).astype("float32"), batch_size=16, verbose=0)
    kernels = {layer.kernel.numpy().shape: layer.kernel.numpy() for layer in model.layers[1:]}
    expected = model.predict(x[:8], verbose=0)

    # SavedModel: the exported variables hold the zeros; the serving function agrees.
    export_dir = str(tmp_path / "saved_model")
    model.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)
    exported = {tuple(v.shape): v.numpy() for v in reloaded.variables if len(v.shape) == 2}
    for shape, kernel in kernels.items():
        np.testing.assert_array_equal(exported[shape], kernel)
        assert np.all((exported[shape] == 0) == (kernel == 0))
    np.testing.assert_allclose(reloaded.serve(tf.constant(x[:8])).numpy(), expected, atol=1e-5)

    # TFLite: the constant FULLY_CONNECTED weights (out, in) are the kernels, zeros included.
    path = to_tflite(model, str(tmp_path / "model.tflite"))
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    found = 0
    for detail in interpreter.get_tensor_details():
        shape = tuple(detail["shape"])
        if len(shape) == 2 and shape[::-1] in kernels:  # weights are (out, in)
            try:
                value = interpreter.get_tensor(detail["index"])
            except ValueError:
                continue
            np.testing.assert_array_equal(value.T, kernels[shape[::-1]])
            found += 1
    assert found == 2
    assert run_tflite(path, x[:8]).shape == (8, 5)
    np.testing.assert_allclose(run_tflite(path, x[:8]), expected, atol=1e-5)


# --- 4. TFLite sparse encoding ---------------------------------------------------


def test_tflite_sparse_encoding_size_and_outputs(tmp_path):
    model = keras.Sequential([keras.Input((1600,)), SparseDense(700, 0.7)])
    x = np.random.default_rng(3).normal(size=(16, 1600)).astype("float32")
    expected = model.predict(x, verbose=0)
    dense_path = to_tflite(model, str(tmp_path / "dense.tflite"))
    sparse_path = to_tflite(model, str(tmp_path / "sparse.tflite"), sparse_encoding=True)
    dense_size, sparse_size = os.path.getsize(dense_path), os.path.getsize(sparse_path)
    # Floor: 0.3 * 1600 * 700 kept weights * (4 B value + 2 B uint16 index) ~ 0.45x.
    assert dense_size > 1600 * 700 * 4
    assert sparse_size <= 0.46 * dense_size, (sparse_size, dense_size)
    assert tflite_op_names(dense_path) == ["FULLY_CONNECTED"]
    assert tflite_op_names(sparse_path) == ["DENSIFY", "FULLY_CONNECTED"]  # builtins only
    for path in (dense_path, sparse_path):
        np.testing.assert_allclose(run_tflite(path, x), expected, atol=1e-5)
        np.testing.assert_allclose(run_tflite(path, x[:1]), expected[:1], atol=1e-5)


# --- 5. bad input ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -0.2, 1.5, float("nan"), "0.5", None, True])
def test_bad_sparsity(bad):
    for make in (
        lambda: SparseWeights(bad),
        lambda: SparseDense(4, bad),
        lambda: SparseConv1D(4, 3, bad),
        lambda: SparseConv2D(4, 3, bad),
    ):
        with pytest.raises(ValueError, match=r"sparsity.*Received: sparsity="):
            make()


@pytest.mark.parametrize("shape", [(8,), (2, 2, 2, 4, 3), ()])
def test_unsupported_kernel_rank(shape):
    with pytest.raises(ValueError, match=rf"rank 2 .*Received a kernel of rank {len(shape)}"):
        SparseWeights(0.5, seed=0)(np.ones(shape, "float32"))


def test_constraint_on_unsupported_layer_fails_at_first_step():
    model = keras.Sequential(
        [
            keras.Input((4, 4, 4, 1)),
            keras.layers.Conv3D(2, 2, kernel_constraint=SparseWeights(0.5)),
            keras.layers.Flatten(),
        ]
    )
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="rank 5"):
        model.fit(np.ones((2, 4, 4, 4, 1)), np.ones((2, 54)), verbose=0)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        SparseWeights(0.5, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        SparseDense(4, 0.5, seed=1.5)
    with pytest.raises(ValueError, match="kernel_constraint"):
        SparseDense(4, 0.5, kernel_constraint="non_neg")
    with pytest.raises(ValueError, match=r"round\(\(1 - 0.9\) \* 4\) = 0 weights"):
        SparseDense(3, 0.9).build((None, 4))


def test_public_names():
    assert keras_sparse.constraints.SparseWeights is SparseWeights
    assert keras_sparse.layers.SparseDense is SparseDense
    for cls in (SparseWeights, SparseDense, SparseConv1D, SparseConv2D):
        name = keras.saving.get_registered_name(cls)
        assert name == f"keras_sparse>{cls.__name__}"


def test_load_weights_needs_the_same_mask(tmp_path):
    def build(seed, sparsity=0.6):
        return keras.Sequential([keras.Input((20,)), SparseDense(8, sparsity, seed=seed, name="sd")])

    source = build(1)
    source.compile(keras.optimizers.Adam(1e-2), "mse")
    x = np.random.default_rng(4).normal(size=(64, 20)).astype("float32")
    source.fit(x, np.ones((64, 8), "float32"), verbose=0)
    path = str(tmp_path / "w.weights.h5")
    source.save_weights(path)
    same = build(1)
    same.load_weights(path)
    np.testing.assert_array_equal(same.layers[0].kernel.numpy(), source.layers[0].kernel.numpy())
    with pytest.raises(ValueError, match=r"outside this layer's sparse mask \(sparsity=0.6, seed=2\)"):
        build(2).load_weights(path)
    # Same seed, higher sparsity: this mask drops weights the file holds.
    with pytest.raises(ValueError, match=r"outside this layer's sparse mask \(sparsity=0.8, seed=1\)"):
        build(1, sparsity=0.8).load_weights(path)
    # Same seed, lower sparsity: this mask (12 of 20) contains the saved one
    # (8 of 20), so nothing lies outside it; the uniform deficit gives it away.
    assert sparse_mask((20, 8), 0.4, 1)[sparse_mask((20, 8), 0.6, 1)].all()
    with pytest.raises(ValueError, match="exactly 8 non-zero weights, all inside this seed.s mask for 8 of 20, where "
                                         r"this layer.s sparsity=0.4 keeps 12: .*higher sparsity \(about 0.6\)"):
        build(1, sparsity=0.4).load_weights(path)


def test_load_weights_accepts_a_zero_kernel_and_a_stray_exact_zero(tmp_path):
    """The lower-sparsity check needs every unit short by the same count: an
    all-zero kernel, or one weight that happens to be exactly 0, loads."""
    for kernel_initializer, zero_one_weight in (("zeros", False), ("glorot_uniform", True)):
        model = keras.Sequential([keras.Input((20,)), SparseDense(8, 0.6, seed=1, kernel_initializer=kernel_initializer)])
        if zero_one_weight:
            kernel = model.layers[0].kernel.numpy()
            kernel[np.argmax(kernel[:, 0] != 0), 0] = 0.0
            model.layers[0].kernel.assign(kernel)
        path = str(tmp_path / f"{kernel_initializer}.weights.h5")
        model.save_weights(path)
        clone = keras.Sequential([keras.Input((20,)), SparseDense(8, 0.6, seed=1)])
        clone.load_weights(path)
        np.testing.assert_array_equal(clone.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())


def test_zeros_survive_xla_compiled_training():
    model = small_model()
    model.compile(keras.optimizers.AdamW(1e-2, weight_decay=0.1), "mse", jit_compile=True)
    rng = np.random.default_rng(5)
    model.fit(rng.normal(size=(160, 6, 6, 2)), rng.normal(size=(160, 3)), batch_size=8, verbose=0)
    for layer in kernel_layers(model):
        assert_masked(layer)


def test_mixed_precision_policy():
    layer = SparseDense(16, 0.7, dtype="mixed_float16")
    y = layer(np.ones((2, 40), "float32"))
    assert y.dtype == "float16" and layer.kernel.dtype == "float32"
    assert np.all(nonzero_per_unit(layer.kernel) == kept(0.7, 40))


def test_to_tflite_validates_its_arguments(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="model"):
        to_tflite(None, tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="model"):
        to_tflite(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "m.tflite")  # not built
    with pytest.raises(ValueError, match="path"):
        to_tflite(model, tmp_path)  # a folder
    with pytest.raises(ValueError, match="sparse_encoding"):
        to_tflite(model, tmp_path / "m.tflite", sparse_encoding="yes")
    assert not (tmp_path / "m.tflite").exists()


def test_sparse_weight_layers_descends_into_wrappers_and_nested_models():
    inputs = keras.Input((3, 8))
    h = keras.layers.TimeDistributed(SparseDense(8, 0.5, seed=1, block=(1, 2), name="wrapped"))(inputs)
    inner = keras.Sequential([keras.Input((24,)), keras.layers.Dense(4, kernel_constraint=SparseWeights(0.5),
                                                                     name="plain")], name="inner")
    outputs = keras.layers.Dense(2, name="dense")(inner(keras.layers.Flatten()(h)))
    model = keras.Model(inputs, outputs)
    assert [layer.name for layer in sparse_weight_layers(model)] == ["wrapped", "plain"]
    assert has_block_sparse_weights(model)  # only the wrapped layer has blocks
    assert not has_block_sparse_weights(inner)
    assert sparse_weight_layers(model.get_layer("dense")) == []
    with pytest.raises(ValueError, match="`model` must be a Keras layer or model. Received: model=None"):
        sparse_weight_layers(None)
