"""keras_sparse.summary / sparsity_summary: every number checked by hand."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.conftest import REPO


def _small_model():
    """Input (6, 6, 2)
    -> SparseConv2D(4, 3x3, 50% zero)      out (4, 4, 4)
    -> KWinners2D(0.25)                    n = 64, k = 16, k_inference = round(24.0) = 24
    -> Conv2D(4, 2x2, padding="same")      out (4, 4, 4)
    -> KWinners2D(0.5, local=True)         n = 4 per location, k = 2, k_inference = 3, 16 rows
    -> Flatten -> Dropout                  (64,)
    -> SparseDense(5, 75% zero)            kernel (64, 5), 16 non-zero per unit
    -> KWinners(0.4)                       n = 5, k = 2, k_inference = 3
    -> Dense(3)
    Every kernel is set to its mask times values drawn from U(0.5, 1.5), every
    bias from U(0.5, 1.5): the non-zero counts are exact, and no two units tie."""
    inputs = keras.Input((6, 6, 2))
    x = ks.layers.SparseConv2D(4, 3, sparsity=0.5, seed=1, name="conv_a")(inputs)
    x = ks.layers.KWinners2D(0.25, k_inference_factor=1.5, name="kw_a")(x)
    x = keras.layers.Conv2D(4, 2, padding="same", name="conv_b")(x)
    x = ks.layers.KWinners2D(0.5, k_inference_factor=1.5, local=True, name="kw_b")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = ks.layers.SparseDense(5, sparsity=0.75, seed=2, name="hidden")(x)
    x = ks.layers.KWinners(0.4, k_inference_factor=1.5, name="kw_c")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs, name="small")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            mask = layer.kernel_mask if hasattr(layer, "kernel_mask") else np.ones(layer.kernel.shape, bool)
            layer.kernel.assign((mask * rng.uniform(0.5, 1.5, mask.shape)).astype("float32"))
            layer.bias.assign(rng.uniform(0.5, 1.5, layer.bias.shape).astype("float32"))
    return model


def test_summary_counts_a_small_model_by_hand():
    data = ks.sparsity_summary(_small_model())
    rows = {row["name"]: row for row in data["layers"]}
    assert list(rows) == ["conv_a", "kw_a", "conv_b", "kw_b", "flatten", "dropout", "hidden",
                          "kw_c", "logits"]  # the input layer is not listed

    # conv_a: kernel 3*3*2*4 = 72, fan_in 18, round(0.5 * 18) = 9 kept per filter -> 36;
    # 4 biases. P = 4*4 = 16 output positions; its input is the image (d = 1).
    assert rows["conv_a"]["weights"] == 72 + 4
    assert rows["conv_a"]["nonzero_weights"] == 36 + 4
    assert rows["conv_a"]["input_density"] == 1.0
    assert rows["conv_a"]["multiplies_dense"] == 16 * 72 == 1152
    assert rows["conv_a"]["multiplies_sparse_weights"] == 16 * 36 == 576
    assert rows["conv_a"]["multiplies_sparse"] == 576

    # kw_a: n = 4*4*4 = 64 values per sample, k = 16, k_inference = round(64*0.25*1.5) = 24.
    assert (rows["kw_a"]["n"], rows["kw_a"]["k"], rows["kw_a"]["k_inference"]) == (64, 16, 24)
    assert (rows["kw_a"]["active_training"], rows["kw_a"]["active_inference"]) == (16, 24)
    assert rows["kw_a"]["weights"] == 0 and rows["kw_a"]["multiplies_dense"] == 0

    # conv_b: kernel 2*2*4*4 = 64 (dense), "same" padding: P = 16, every position
    # counted with the whole kernel; input from kw_a, d = 24/64.
    assert rows["conv_b"]["weights"] == 64 + 4 and rows["conv_b"]["nonzero_weights"] == 68
    assert rows["conv_b"]["input_density"] == 24 / 64
    assert rows["conv_b"]["multiplies_dense"] == 16 * 64 == 1024
    assert rows["conv_b"]["multiplies_sparse_weights"] == 1024
    assert rows["conv_b"]["multiplies_sparse"] == 1024 * 24 / 64 == 384

    # kw_b, local: 4 channels compete at each of 16 locations; k = 2, k_inference = 3.
    assert (rows["kw_b"]["n"], rows["kw_b"]["k"], rows["kw_b"]["k_inference"]) == (4, 2, 3)
    assert (rows["kw_b"]["active_training"], rows["kw_b"]["active_inference"]) == (32, 48)

    # hidden: kernel (64, 5), round(0.25 * 64) = 16 kept per unit -> 80; input from kw_b
    # through Flatten and Dropout, d = 3/4.
    assert rows["hidden"]["weights"] == 320 + 5 and rows["hidden"]["nonzero_weights"] == 80 + 5
    assert rows["hidden"]["input_density"] == 0.75
    assert rows["hidden"]["multiplies_dense"] == 320
    assert rows["hidden"]["multiplies_sparse_weights"] == 80
    assert rows["hidden"]["multiplies_sparse"] == 60

    # kw_c: n = 5, k = round(2.0) = 2, k_inference = round(3.0) = 3; logits: 5 * 3 kernel, d = 3/5.
    assert (rows["kw_c"]["k"], rows["kw_c"]["k_inference"]) == (2, 3)
    assert rows["logits"]["multiplies_dense"] == 15
    assert rows["logits"]["multiplies_sparse"] == pytest.approx(9.0, abs=1e-12)

    total = data["total"]
    assert total["weights"] == 76 + 68 + 325 + 18 == 487
    assert total["nonzero_weights"] == 40 + 68 + 85 + 18 == 211
    assert total["multiplies_dense"] == 1152 + 1024 + 320 + 15 == 2511
    assert total["multiplies_sparse_weights"] == 576 + 1024 + 80 + 15 == 1695
    assert total["multiplies_sparse"] == pytest.approx(576 + 384 + 60 + 9)
    assert total["uncounted_layers"] == []


def test_active_inference_is_what_predict_keeps():
    model = _small_model()
    rows = {row["name"]: row for row in ks.sparsity_summary(model)["layers"]}
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in ("kw_a", "kw_b", "kw_c")])
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
    for name, y in zip(("kw_a", "kw_b", "kw_c"), probe.predict(x, verbose=0)):
        nonzero = np.count_nonzero(y.reshape(len(x), -1), axis=1)
        assert (nonzero == rows[name]["active_inference"]).all(), name


def test_summary_prints_a_table_and_returns_the_data():
    lines = []
    data = ks.summary(_small_model(), print_fn=lines.append)
    assert data == ks.sparsity_summary(_small_model())
    text = "\n".join(lines)
    assert lines[0] == 'Sparsity of model "small"'
    assert "kw_b (KWinners2D)" in text and "2/4 / 3/4 x 16 rows" in text
    total = next(line for line in lines if line.startswith("Total"))
    assert total.split()[1:] == ["487", "211", "2,511", "1,695", "1,029"]
    assert "Multiplies vs dense: sparse weights 67.50%, sparse weights and activations 40.98%" in text


def test_sequential_channels_first_and_uncounted_layers():
    model = keras.Sequential([
        keras.Input((3, 8, 8)),
        keras.layers.Conv2D(5, 3, data_format="channels_first", name="conv"),   # out (5, 6, 6)
        keras.layers.Conv2DTranspose(2, 2, data_format="channels_first", name="up"),
    ])
    data = ks.sparsity_summary(model)
    conv, up = data["layers"]
    assert conv["output_shape"] == (5, 6, 6)
    assert conv["multiplies_dense"] == 36 * 3 * 3 * 3 * 5  # P = 6*6 (channels are axis 1)
    assert up["multiplies_dense"] is None and up["weights"] == 2 * 2 * 2 * 5 + 2
    assert data["total"]["uncounted_layers"] == ["up"]
    assert data["total"]["multiplies_dense"] == 36 * 135


def test_nested_models_are_expanded_with_a_prefix():
    member = _small_model()
    inputs = keras.Input((6, 6, 2))
    outer = keras.Model(inputs, keras.layers.Softmax(name="softmax")(member(inputs)), name="outer")
    rows = ks.sparsity_summary(outer)["layers"]
    names = [row["name"] for row in rows]
    assert names[0] == f"{member.name}/conv_a" and names[-1] == "softmax"
    assert ks.sparsity_summary(outer)["total"] == ks.sparsity_summary(member)["total"]


@pytest.mark.parametrize("name, dense, sparse_weights, sparse", [
    # conv1 25*32*576 + conv2 800*64*64 + hidden 1024*700 + logits 700*10
    ("mnist_sparse_cnn2", 4_461_400, 3_959_500, 460_800 + 3_276_800 * 600 / 4608
     + 214_900 * 450 / 1024 + 7_000 * 150 / 700),
    ("mnist_dense_cnn2", 2_362_000, 2_362_000, 2_362_000),
])
def test_shipped_mnist_models(name, dense, sparse_weights, sparse):
    total = ks.sparsity_summary(keras.models.load_model(REPO / "saved_models" / f"{name}.keras"))["total"]
    assert total["multiplies_dense"] == dense
    assert total["multiplies_sparse_weights"] == sparse_weights
    assert total["multiplies_sparse"] == pytest.approx(sparse)


@pytest.mark.parametrize("bad", [None, "model", keras.layers.Dense(3)])
def test_rejects_what_is_not_a_built_model(bad):
    with pytest.raises(ValueError, match="`model` must be a built Keras model"):
        ks.sparsity_summary(bad)


def test_rejects_a_print_fn_that_is_not_callable():
    with pytest.raises(ValueError, match="`print_fn` must be callable or None. Received: print_fn=3"):
        ks.summary(_small_model(), print_fn=3)
