"""Block-sparse weights: `SparseWeights(block=...)`, the `Sparse*`
layers' `block`, and TFLite's block-sparse encoding through `to_tflite`."""

import os

import keras
import numpy as np
import pytest

from keras_sparse.constraints import SparseWeights, check_block, kept_per_unit, sparse_mask
from keras_sparse.export import TFLiteModel, has_block_sparse_weights, tflite_op_names, to_tflite
from keras_sparse.layers import SparseConv1D, SparseConv2D, SparseDense

pytestmark = pytest.mark.tensorflow_only


def assert_whole_blocks(mask, block):
    """Every (r units x c inputs) tile of the (units, fan_in) mask is all kept or all zero."""
    r, c = block
    per_unit = mask.reshape(-1, mask.shape[-1]).T  # (units, fan_in)
    tiles = per_unit.reshape(per_unit.shape[0] // r, r, per_unit.shape[1] // c, c)
    assert np.all(tiles.all(axis=(1, 3)) | ~tiles.any(axis=(1, 3)))


# --- the mask ----------------------------------------------------------------------


def test_block_mask_by_hand():
    """keys = PCG64(7).random_raw(8) as 2 units x 4 blocks of 2 inputs:
    unit 0's two smallest keys are blocks 3 and 0, unit 1's blocks 2 and 0."""
    keys = np.random.PCG64(7).random_raw(8).reshape(2, 4)
    assert np.argsort(keys[0])[:2].tolist() == [3, 0] and np.argsort(keys[1])[:2].tolist() == [2, 0]
    mask = sparse_mask((8, 2), 0.5, 7, block=(1, 2))
    assert mask.T.astype(int).tolist() == [[1, 1, 0, 0, 0, 0, 1, 1], [1, 1, 0, 0, 1, 1, 0, 0]]
    # A 2x2 block: units 0-1 share one pattern, units 2-3 another.
    assert sparse_mask((4, 4), 0.5, 3, block=(2, 2)).T.astype(int).tolist() == [
        [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]


@pytest.mark.parametrize("block", [None, 1, (1, 1)])
def test_no_block_is_the_unblocked_mask(block):
    """Every model saved before blocks existed rebuilds the identical mask."""
    np.testing.assert_array_equal(sparse_mask((30, 7), 0.6, 4, block), sparse_mask((30, 7), 0.6, 4))
    assert check_block(block) is None


@pytest.mark.parametrize("shape, block", [
    ((1024, 700), (1, 4)), ((1600, 60), (1, 16)), ((64, 12), (4, 8)),
    ((3, 16, 6), (1, 4)), ((5, 5, 32, 8), (2, 16)), ((2, 3, 8, 5), (1, 8)),
])
@pytest.mark.parametrize("sparsity", [0.3, 0.7, 0.9])
def test_exact_per_unit_counts_in_whole_blocks(shape, block, sparsity):
    """Each unit keeps round((1 - s) * fan_in / c) whole blocks of c inputs,
    the same number for every unit: 1024 inputs at 70% with 1x4 blocks keep
    round(0.3 * 256) = 77 blocks = 308 weights (307.2 unblocked rounds to 307)."""
    mask = sparse_mask(shape, sparsity, 11, block)
    fan_in = int(np.prod(shape[:-1]))
    per_unit = mask.reshape(fan_in, -1).sum(axis=0)
    expected = round((1 - sparsity) * fan_in / block[1]) * block[1]
    assert np.all(per_unit == expected) and expected == kept_per_unit(sparsity, fan_in, block)
    assert_whole_blocks(mask, block)
    if shape == (1024, 700) and sparsity == 0.7:
        assert expected == 308 and kept_per_unit(0.7, 1024) == 307


def test_conv_blocks_run_along_input_channels():
    """A Conv2D kernel (kh, kw, in, out): a block is c input channels at one position."""
    mask = sparse_mask((3, 3, 8, 4), 0.5, 2, block=(1, 4))
    runs = mask.reshape(3, 3, 2, 4, 4)  # (kh, kw, in-block, c, out)
    assert np.all(runs.all(axis=3) | ~runs.any(axis=3))


@pytest.mark.parametrize("shape, block, match", [
    ((30, 8), (1, 4), r"input channels \(kernel axis -2\) by 4, but a kernel of shape \(30, 8\) has 30"),
    ((32, 6), (4, 1), r"units \(kernel axis -1\) by 4, but a kernel of shape \(32, 6\) has 6"),
    ((3, 3, 6, 4), (1, 4), "has 6, not a multiple of 4"),
    ((16, 4), (1, 16), r"round\(\(1 - 0.9\) \* 1\) = 0 blocks"),
])
def test_kernel_the_block_does_not_tile_is_refused(shape, block, match):
    with pytest.raises(ValueError, match=match):
        sparse_mask(shape, 0.9, 0, block)


@pytest.mark.parametrize("bad, name", [
    ((0, 4), r"block\[0\]"), ((1, -4), r"block\[1\]"), ((1, 2, 3), "`block` must be None"),
    ((1, 2.5), r"block\[1\]"), ("1x4", r"block\[1\]"), ((True, 4), r"block\[0\]"), (0, r"block\[1\]"),
])
def test_bad_block_names_the_argument(bad, name):
    for make in (lambda: SparseWeights(0.5, block=bad), lambda: SparseDense(4, 0.5, block=bad),
                 lambda: SparseConv2D(4, 3, 0.5, block=bad)):
        with pytest.raises(ValueError, match=name):
            make()


def test_layer_with_a_block_that_does_not_tile_fails_at_build():
    layer = SparseDense(8, 0.5, block=(1, 3))
    with pytest.raises(ValueError, match="not a multiple of 3"):
        layer.build((None, 16))


# --- training, saving ----------------------------------------------------------------


def block_model(block=(1, 4)):
    keras.utils.set_random_seed(0)  # initial weights fixed: none is exactly 0 by chance
    inputs = keras.Input((6, 6, 8))
    h = SparseConv2D(8, 3, 0.5, seed=1, block=block, activation="relu")(inputs)
    h = SparseConv1D(8, 2, 0.5, seed=2, block=block)(keras.layers.Reshape((16, 8))(h))
    h = SparseDense(16, 0.75, seed=3, block=block, activation="relu")(keras.layers.Flatten()(h))
    return keras.Model(inputs, keras.layers.Dense(3)(h))


def sparse_layers(model):
    return [layer for layer in model.layers if hasattr(layer, "block")]


def test_blocks_hold_from_the_first_pass_through_training_and_save_load(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 6, 6, 8)).astype("float32"), rng.normal(size=(256, 3)).astype("float32")
    model = block_model()
    for layer in sparse_layers(model):  # initial kernels already sparse, in whole blocks
        assert layer.block == (1, 4) and layer.get_config()["block"] == [1, 4]
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        assert np.all(kernel[~layer.kernel_mask] == 0) and np.all(kernel[layer.kernel_mask] != 0)
        assert_whole_blocks(layer.kernel_mask, (1, 4))
    before = [keras.ops.convert_to_numpy(layer.kernel).copy() for layer in sparse_layers(model)]
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for layer, k0 in zip(sparse_layers(model), before):
        k1 = keras.ops.convert_to_numpy(layer.kernel)
        assert np.all(k1[~layer.kernel_mask] == 0.0)
        assert (k1 != k0)[layer.kernel_mask].mean() > 0.95  # the kept weights learn

    path = tmp_path / "block.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(sparse_layers(model), sparse_layers(loaded)):
        assert b.block == (1, 4)
        np.testing.assert_array_equal(b.kernel_mask, a.kernel_mask)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(b.kernel), keras.ops.convert_to_numpy(a.kernel))
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), model.predict(x[:8], verbose=0), atol=1e-6)
    loaded.fit(x, y, batch_size=16, verbose=0)  # resumed training keeps the blocks
    for layer in sparse_layers(loaded):
        assert np.all(keras.ops.convert_to_numpy(layer.kernel)[~layer.kernel_mask] == 0.0)


def test_load_weights_into_an_unblocked_layer_is_refused(tmp_path):
    """The weights of a block-sparse model have non-zeros outside an unblocked mask."""
    model = block_model()
    path = tmp_path / "block.weights.h5"
    model.save_weights(path)
    with pytest.raises(ValueError, match="outside this layer's sparse mask"):
        block_model(block=None).load_weights(path)


def test_configs_without_block_are_unchanged():
    config = SparseDense(4, 0.5, seed=1).get_config()
    assert "block" not in config and SparseDense.from_config(config).block is None
    assert SparseWeights(0.5, seed=1).get_config() == {"sparsity": 0.5, "seed": 1}


def test_constraint_on_a_plain_dense_layer():
    layer = keras.layers.Dense(8, kernel_constraint=SparseWeights(0.5, seed=0, block=(1, 4)))
    layer.build((None, 16))
    masked = keras.ops.convert_to_numpy(layer.kernel_constraint(layer.kernel))
    assert np.all((masked != 0).sum(axis=0) == 8)
    assert_whole_blocks(masked != 0, (1, 4))


# --- TFLite ------------------------------------------------------------------------------


def sparse_dense_1600_700(block, sparsity=0.9):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((1600,)), SparseDense(700, sparsity, block=block)])


def test_tflite_keeps_1x4_blocks_sparse_no_densify(tmp_path):
    """A 90%-sparse 1x4 SparseDense(1600 -> 700) converts with sparse_encoding
    'auto' to FULLY_CONNECTED alone (no DENSIFY), at most 0.15x the dense file:
    160 kept values of 4 weights per unit, 4 B each, plus one index per block."""
    model = sparse_dense_1600_700((1, 4))
    assert has_block_sparse_weights(model)
    x = np.random.default_rng(1).normal(size=(8, 1600)).astype("float32")
    expected = model.predict(x, verbose=0)
    block_path = to_tflite(model, tmp_path / "block.tflite")  # auto: encoded
    dense_path = to_tflite(model, tmp_path / "dense.tflite", sparse_encoding=False)
    assert tflite_op_names(block_path) == ["FULLY_CONNECTED"]
    assert os.path.getsize(block_path) <= 0.15 * os.path.getsize(dense_path)
    for path in (block_path, dense_path):
        for resolver in ("default", "reference"):
            np.testing.assert_allclose(TFLiteModel(path, op_resolver=resolver).predict(x), expected, atol=1e-5)


def test_int8_keeps_1x16_blocks_sparse(tmp_path):
    """int8 with sparse encoding: FULLY_CONNECTED alone for 1x16 blocks, and
    the int8 outputs of the dense-encoded int8 file (it was an empty model
    before the sparsify pass moved after quantization)."""
    model = sparse_dense_1600_700((1, 16))
    data = np.random.default_rng(2).normal(size=(64, 1600)).astype("float32")
    sparse = to_tflite(model, tmp_path / "sparse.tflite", quantize="int8", representative_data=data)
    dense = to_tflite(model, tmp_path / "dense.tflite", quantize="int8", representative_data=data,
                      sparse_encoding=False)
    assert tflite_op_names(sparse) == tflite_op_names(dense) == ["FULLY_CONNECTED"]
    assert os.path.getsize(sparse) <= 0.2 * os.path.getsize(dense)
    codes = [TFLiteModel(path).predict_raw(data[:16]).astype(int) for path in (sparse, dense)]
    # Two kernels (ruy's 1x16 block-sparse, XNNPACK's dense) round the requantized
    # sums their own way: measured 17 of 11,200 outputs one code apart.
    assert np.abs(codes[0] - codes[1]).max() <= 1 and (codes[0] == codes[1]).mean() >= 0.99
    scale = TFLiteModel(sparse).output_quantization[0]
    np.testing.assert_allclose(TFLiteModel(sparse).predict(data[:16]), model.predict(data[:16], verbose=0),
                               atol=8 * scale)


def test_sparse_encoding_auto_and_refusals(tmp_path):
    unstructured, blocks4 = sparse_dense_1600_700(None, 0.7), sparse_dense_1600_700((1, 4))
    data = np.random.default_rng(3).normal(size=(16, 1600)).astype("float32")
    assert not has_block_sparse_weights(unstructured)
    assert tflite_op_names(to_tflite(unstructured, tmp_path / "u.tflite")) == ["FULLY_CONNECTED"]  # auto: dense
    # auto falls back to dense kernels where encoding would be unusable:
    assert tflite_op_names(to_tflite(blocks4, tmp_path / "d.tflite", quantize="dynamic")) == ["FULLY_CONNECTED"]
    assert tflite_op_names(to_tflite(blocks4, tmp_path / "i.tflite", quantize="int8",
                                     representative_data=data)) == ["FULLY_CONNECTED"]
    refused = [
        (dict(quantize="dynamic", sparse_encoding=True), "block-sparse dynamic-range"),
        (dict(target="micro", sparse_encoding=True), "TFLite Micro has no sparse tensors"),
        (dict(quantize="int8", representative_data=data, sparse_encoding=True), "1x16 blocks"),
        (dict(sparse_encoding="yes"), "True, False or 'auto'"),
    ]
    for kwargs, match in refused:
        with pytest.raises(ValueError, match=match):
            to_tflite(blocks4, tmp_path / "refused.tflite", **kwargs)
        assert not (tmp_path / "refused.tflite").exists()
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]
