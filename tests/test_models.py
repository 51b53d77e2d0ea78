"""The paper's networks (docs/mnist.md, docs/speech.md): layer sizes, k values, weight sparsities, training."""

import math

import keras
import numpy as np
import pytest

from keras_sparse import callbacks, datasets, models
from keras_sparse.kwinners import KWinners, KWinners2D
from keras_sparse.sparse_weights import SparseDense
from tests.conftest import trained_sparse_cnn1

# network -> (conv filters, conv (k, n) or None, hidden units, hidden k, non-zero fraction, input)
PAPER = {
    models.mnist_dense_cnn1: ([30], None, 1000, None, 1.0, (28, 28, 1)),
    models.mnist_dense_cnn2: ([30, 30], None, 1000, None, 1.0, (28, 28, 1)),
    models.mnist_sparse_cnn1: ([30], [(400, 4320)], 150, 50, 0.3, (28, 28, 1)),
    models.mnist_sparse_cnn2: ([32, 64], [(400, 4608), (300, 1024)], 700, 100, 0.3, (28, 28, 1)),
    models.gsc_dense_cnn2: ([64, 64], None, 1000, None, 1.0, (32, 32, 1)),
    models.gsc_sparse_cnn2: ([64, 64], [(1200, 12544), (200, 1600)], 1000, 100, 0.4, (32, 32, 1)),
    models.gsc_super_sparse_cnn2: ([64, 64], [(1200, 12544), (200, 1600)], 1500, 100, 0.1, (32, 32, 1)),
}


@pytest.mark.parametrize("builder", list(PAPER), ids=lambda b: b.__name__)
def test_paper_table(builder):
    filters, conv_k, hidden, hidden_k, nonzero, input_shape = PAPER[builder]
    model = builder()
    assert model.input_shape == (None,) + input_shape
    assert model.output_shape == (None, 10)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == filters
    assert all(c.kernel_size == (5, 5) and c.padding == "valid" for c in convs)
    assert all(c.kernel_constraint is None for c in convs)  # conv weights dense
    # order: conv -> [BN] -> pool -> activation
    names = [l.name for l in model.layers]
    for i in range(1, len(filters) + 1):
        act = f"conv{i}_kwinners" if conv_k else f"conv{i}_relu"
        assert names.index(f"conv{i}") < names.index(f"pool{i}") < names.index(act)
    kw2d = [l for l in model.layers if isinstance(l, KWinners2D)]
    kw = [l for l in model.layers if isinstance(l, KWinners)]
    if conv_k is None:
        assert not kw2d and not kw
    else:
        assert [(l.k, l.n) for l in kw2d] == conv_k
        assert [l.k for l in kw] == [hidden_k] and kw[0].n == hidden
        for layer in kw2d + kw:
            assert layer.k_inference == round(1.5 * layer.k)
            assert float(layer.boost_strength) == pytest.approx(1.5)
            assert layer.duty_cycle_period == 1000
            assert layer.local is False if isinstance(layer, KWinners2D) else True
        factor = 0.85 if input_shape[0] == 28 else 0.9
        assert all(l.boost_strength_factor == pytest.approx(factor) for l in kw2d + kw)
    hidden_layer = model.get_layer("hidden")
    assert hidden_layer.units == hidden
    kernel = keras.ops.convert_to_numpy(hidden_layer.kernel)
    fan_in = kernel.shape[0]
    assert isinstance(hidden_layer, SparseDense) == (nonzero < 1)
    if nonzero < 1:
        mask = hidden_layer.kernel_mask
        np.testing.assert_array_equal(mask.sum(axis=0), round(nonzero * fan_in))
        assert not np.any(kernel[~mask])  # zeros outside the mask
        # (a float32 draw can be exactly 0 by chance, so count the mask, not the kernel)
        assert (kernel[mask] != 0).mean() > 0.999
    else:
        assert hidden_layer.kernel_constraint is None
        assert (kernel != 0).mean() > 0.999
    assert model.get_layer("logits").units == 10


def test_pytorch_initializer_bounds():
    model = models.mnist_sparse_cnn2(initializer="pytorch")
    conv2 = model.get_layer("conv2")
    bound = 1 / math.sqrt(5 * 5 * 32)
    for w in (conv2.kernel, conv2.bias):
        w = keras.ops.convert_to_numpy(w)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    hidden = model.get_layer("hidden")
    kernel = keras.ops.convert_to_numpy(hidden.kernel)
    true_bound = 1 / math.sqrt(round(0.3 * 1024))  # sparse-aware fan-in
    nz = kernel[kernel != 0]
    assert np.abs(nz).max() <= true_bound * 1.0001 and np.abs(nz).max() > 0.95 * true_bound
    assert np.abs(keras.ops.convert_to_numpy(hidden.bias)).max() <= true_bound
    keras_init = models.mnist_dense_cnn2(initializer="keras")
    assert not np.any(keras.ops.convert_to_numpy(keras_init.get_layer("conv1").bias))


def test_argument_errors():
    with pytest.raises(ValueError, match="initializer"):
        models.mnist_dense_cnn2(initializer="torch")
    with pytest.raises(ValueError, match="network"):
        models.build_mnist("lenet")
    with pytest.raises(ValueError, match="conv_k"):
        models.mnist_sparse_cnn(conv_filters=(32, 64), conv_k=(400,))
    with pytest.raises(ValueError, match="hidden_k"):
        models.mnist_sparse_cnn(hidden_k=0)


@pytest.mark.parametrize("name", sorted(models.BUILDERS))
def test_short_fit_on_real_mnist(mnist, name):
    x = datasets.normalize(datasets.to_unit_interval(mnist["x_train"][:320]))
    y = mnist["y_train"][:320]
    model = models.build_mnist(name)
    cfg = models.MNIST_NETWORKS[name]
    model.compile(
        optimizer=keras.optimizers.SGD(cfg["lr"], momentum=cfg["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0,
                        callbacks=[callbacks.UpdateBoostStrength()])
    loss = history.history["loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    out = model.predict(x[:8], verbose=0)
    assert out.shape == (8, 10) and np.isfinite(out).all()


def test_sparse_cnn2_small_local_competes_per_position():
    """Sparse CNN-2 small with local conv k-winners: each position keeps its
    own k of the filters (2 of 16, 9 of 32), the hidden layer 36 of 256; the
    layers and weights are otherwise Sparse CNN-2 small's."""
    model, small = models.mnist_sparse_cnn2_small_local(), models.mnist_sparse_cnn2_small()
    assert [(layer.k, layer.n, layer.k_inference) for layer in callbacks.kwinners_layers(model)] == [
        (2, 16, 2), (9, 32, 9), (36, 256, 36)]
    assert [layer.local for layer in callbacks.kwinners_layers(model)[:2]] == [True, True]
    assert [layer.name for layer in model.layers] == [layer.name for layer in small.layers]
    assert [w.shape for w in model.weights] == [w.shape for w in small.weights]
    x = np.random.default_rng(0).normal(size=(3, 28, 28, 1)).astype("float32")
    for name, k in (("conv1_kwinners", 2), ("conv2_kwinners", 9)):
        maps = keras.Model(model.inputs, model.get_layer(name).output).predict(x, verbose=0)
        assert (np.count_nonzero(maps, axis=-1) == k).all(), name  # no ties in random inputs


@pytest.mark.parametrize("builder, kwinners", [
    (models.mnist_sparse_cnn2_small_relu1, [(150, 512, 150), (36, 256, 36)]),
    (models.gsc_sparse_cnn2_small_relu1, [(100, 800, 100), (100, 1000, 100)]),
    (models.gsc_sparse_cnn2_small, [(600, 6272, 600), (100, 800, 100), (100, 1000, 100)]),
])
def test_speed_networks_layers_and_sparsity(builder, kwinners):
    """The networks designed for speed: their k-winners layers at
    k_inference_factor 1.0; conv-1 a ReLU where it has no k-winners (negatives
    to 0, positives kept); the hidden weights fixed sparse."""
    model = builder()
    assert [(layer.k, layer.n, layer.k_inference) for layer in callbacks.kwinners_layers(model)] == kwinners
    names = [layer.name for layer in model.layers]
    assert ("conv1_kwinners" in names) == (len(kwinners) == 3) == ("conv1_relu" not in names)
    if "conv1_relu" in names:
        x = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype("float32")
        relu = model.get_layer("conv1_relu")
        before = keras.Model(model.inputs, relu.input).predict(x, verbose=0)
        after = keras.Model(model.inputs, relu.output).predict(x, verbose=0)
        np.testing.assert_array_equal(after, np.maximum(before, 0))
        assert 0 < (before < 0).mean() < 1
    density = (model.get_layer("hidden").kernel.numpy() != 0).mean()
    assert abs(density - (0.3 if "mnist" in model.name else 0.4)) < 0.05


def test_builders_take_k_inference_factor():
    model = models.build_mnist("sparse_cnn2", k_inference_factor=1.0)
    kw = callbacks.kwinners_layers(model)
    assert [l.k_inference for l in kw] == [l.k for l in kw] == [400, 300, 100]
    model = models.mnist_sparse_cnn1(k_inference_factor=2.0)
    assert [l.k_inference for l in callbacks.kwinners_layers(model)] == [800, 100]
    with pytest.raises(ValueError, match="k_inference_factor"):
        models.build_mnist("sparse_cnn2", k_inference_factor=4.0)  # 0.29 * 4 > 1
    with pytest.raises(ValueError, match="k_inference_factor"):
        models.build_mnist("dense_cnn2", k_inference_factor=0.0)


@pytest.mark.parametrize("build, network, own", [
    (models.build_mnist, "sparse_cnn2", 1.5), (models.build_mnist, "sparse_cnn2_small", 1.0),
    (models.build_mnist, "sparse_cnn2_small_relu1", 1.0), (models.build_speech, "sparse_cnn2", 1.5),
    (models.build_speech, "sparse_cnn2_small", 1.0)])
def test_build_by_name_keeps_the_networks_own_k_inference_factor(build, network, own):
    """No `k_inference_factor`: the network's own function's default (the
    paper's 1.5, the speed networks' 1.0); given, it wins."""
    assert {l.k_inference_factor for l in callbacks.kwinners_layers(build(network))} == {own}
    assert {l.k_inference_factor for l in callbacks.kwinners_layers(build(network, k_inference_factor=1.25))} == {1.25}


def test_with_k_inference_factor_keeps_weights_and_state(mnist, tmp_path):
    model, x = trained_sparse_cnn1(mnist)
    same = models.with_k_inference_factor(model, 1.5)
    np.testing.assert_array_equal(same.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(model.get_weights(), same.get_weights()):
        np.testing.assert_array_equal(a, b)  # duty cycles, boost, iterations included

    dense_as_trained = models.with_k_inference_factor(model, 1.0)
    assert [l.k_inference for l in callbacks.kwinners_layers(dense_as_trained)] == [400, 50]
    assert [l.k_inference for l in callbacks.kwinners_layers(model)] == [600, 75]  # untouched
    # At factor 1 inference keeps exactly the training-time winners: predicting
    # equals a forward pass in training mode (minus its state update, which a
    # copy can absorb).
    probe = models.with_k_inference_factor(model, 1.0)
    expected = keras.ops.convert_to_numpy(probe(x, training=True))
    np.testing.assert_allclose(dense_as_trained.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    changed = dense_as_trained.predict(x, verbose=0)
    assert np.abs(changed - model.predict(x, verbose=0)).max() > 1e-3

    # The copy saves and reloads with its own factor.
    path = tmp_path / "kif1.keras"
    dense_as_trained.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), changed)


def test_with_k_inference_factor_sequential():
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(40), KWinners(0.1)])
    copy = models.with_k_inference_factor(model, 2.0)
    assert isinstance(copy, keras.Sequential)
    assert copy.layers[-1].k_inference == 8 and model.layers[-1].k_inference == 6
    x = np.random.default_rng(0).normal(size=(16, 20)).astype("float32")
    y = copy.predict(x, verbose=0)
    np.testing.assert_array_equal((y != 0).sum(1), 8)


def test_with_k_inference_factor_errors(mnist):
    model = models.mnist_sparse_cnn2()
    with pytest.raises(ValueError, match=r"conv2_kwinners.*k_inference_factor=4\.0"):
        models.with_k_inference_factor(model, 4.0)
    with pytest.raises(ValueError, match="k_inference_factor"):
        models.with_k_inference_factor(model, 0)
    with pytest.raises(ValueError, match="k_inference_factor"):
        models.with_k_inference_factor(model, float("nan"))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.kwinners = KWinners(0.1)

        def call(self, x):
            return self.kwinners(x)

    subclassed = Subclassed()
    subclassed(np.zeros((1, 20), "float32"))
    with pytest.raises(ValueError, match="Functional or Sequential"):
        models.with_k_inference_factor(subclassed, 1.0)
    with pytest.raises(ValueError, match="built Keras model"):
        models.with_k_inference_factor("model.keras", 1.0)


def test_ensemble_averages_member_probabilities(mnist, tmp_path):
    trained, x = trained_sparse_cnn1(mnist)
    fresh = models.mnist_sparse_cnn1()  # same model name as `trained`
    ensemble = models.ensemble([trained, fresh])
    assert ensemble.input_shape == (None, 28, 28, 1) and ensemble.output_shape == (None, 10)

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    expected = (softmax(trained.predict(x, verbose=0)) + softmax(fresh.predict(x, verbose=0))) / 2
    got = ensemble.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-6)

    # The members' own layers: four k-winners layers, whose inference density
    # with_k_inference_factor changes in the (nested) copy.
    assert [l.k_inference for l in callbacks.kwinners_layers(ensemble)] == [75, 600] * 2
    at_one = models.with_k_inference_factor(ensemble, 1.0)
    assert [l.k_inference for l in callbacks.kwinners_layers(at_one)] == [50, 400] * 2
    expected_at_one = (softmax(models.with_k_inference_factor(trained, 1.0).predict(x, verbose=0))
                       + softmax(models.with_k_inference_factor(fresh, 1.0).predict(x, verbose=0))) / 2
    np.testing.assert_allclose(at_one.predict(x, verbose=0), expected_at_one, rtol=1e-5, atol=1e-7)

    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path).predict(x, verbose=0), got)

    probabilities = [keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
                     for _ in range(3)]
    z = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(
        models.ensemble(probabilities, from_logits=False).predict(z, verbose=0),
        np.mean([m.predict(z, verbose=0) for m in probabilities], 0), rtol=1e-6)


def test_ensemble_errors():
    a, b = models.mnist_sparse_cnn1(), models.mnist_dense_cnn1()
    with pytest.raises(ValueError, match="at least 2"):
        models.ensemble([a])
    with pytest.raises(ValueError, match="at least 2"):
        models.ensemble(a)
    with pytest.raises(ValueError, match="distinct"):
        models.ensemble([a, a])
    with pytest.raises(ValueError, match=r"members\[1\]` must be a built"):
        models.ensemble([a, "b.keras"])
    with pytest.raises(ValueError, match=r"equal input and output shapes.*\(None, 32, 32, 1\)"):
        models.ensemble([a, models.gsc_dense_cnn2()])
    with pytest.raises(ValueError, match="from_logits.*'yes'"):
        models.ensemble([a, b], from_logits="yes")
    with pytest.raises(ValueError, match="name"):
        models.ensemble([a, b], name="")
    two_outputs = keras.Model(a.inputs, [a.outputs[0], a.outputs[0]])
    with pytest.raises(ValueError, match=r"members\[1\]` must have one input and one output"):
        models.ensemble([b, two_outputs])
    assert models.ensemble([a, b]).output_shape == (None, 10)


# ---------------------------------------------------------------- speech networks


def test_speech_weight_decay_is_pytorch_style():
    """Every kernel and bias carries L2(wd / 2): the loss gains (wd / 2) * sum ||w||^2,
    whose gradient wd * w is PyTorch SGD's coupled `weight_decay` term."""
    import tensorflow as tf

    model = models.gsc_sparse_cnn2(weight_decay=0.01)
    params = [v for layer in model.layers for v in layer.trainable_weights]
    assert len(params) == 8  # conv1, conv2, hidden, logits: kernel + bias (BN has no affine)
    expected = 0.005 * sum(float(np.sum(np.square(v.numpy()))) for v in params)
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)
    with tf.GradientTape() as tape:
        reg = tf.add_n(model.losses)
    grads = tape.gradient(reg, [v.value for v in params])
    for v, g in zip(params, grads):
        np.testing.assert_allclose(g.numpy(), 0.01 * v.numpy(), rtol=1e-5, atol=1e-12)
    assert models.gsc_dense_cnn2(weight_decay=0.0).losses == []


def test_speech_batch_norm_is_pytorchs():
    """BatchNorm(affine=False) with PyTorch's defaults: eps 1e-5, running stats
    0.9 * running + 0.1 * batch."""
    model = models.gsc_dense_cnn2()
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert [l.name for l in norms] == ["conv1_bn", "conv2_bn", "hidden_bn"]
    for layer in norms:
        assert (layer.momentum, layer.epsilon, layer.center, layer.scale) == (0.9, 1e-5, False, False)
    x = np.random.default_rng(0).normal(3.0, 2.0, (8, 1000)).astype(np.float32)
    hidden_bn = norms[-1]
    hidden_bn(x, training=True)
    np.testing.assert_allclose(hidden_bn.moving_mean.numpy(), 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(hidden_bn.moving_variance.numpy(), 0.9 + 0.1 * x.var(0), rtol=1e-4)


def test_speech_dropout_control_is_dense_cnn2_with_one_dropout():
    keras.utils.set_random_seed(0)
    dense = models.gsc_dense_cnn2()
    keras.utils.set_random_seed(0)
    control = models.build_speech("dense_cnn2_dropout")
    assert control.name == "gsc_dense_cnn2_dropout"
    names = [layer.name for layer in control.layers]
    assert [name for name in names if name != "hidden_dropout"] == [layer.name for layer in dense.layers]
    assert names.index("hidden_relu") + 1 == names.index("hidden_dropout") == names.index("logits") - 1
    assert control.get_layer("hidden_dropout").rate == 0.5
    for layer in dense.layers:
        assert layer.get_config() == control.get_layer(layer.name).get_config(), layer.name
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 1)).astype(np.float32)
    control.set_weights(dense.get_weights())
    np.testing.assert_allclose(control(x).numpy(), dense(x).numpy(), rtol=1e-6)  # identity at inference
    assert models.SPEECH_NETWORKS["dense_cnn2_dropout"] == {
        **models.SPEECH_NETWORKS["dense_cnn2"], "title": "Dense CNN-2 with dropout 0.5",
        "paper_accuracy": (95.69, 0.48), "paper_noise_score": (7681, 368)}  # the paper's Table 2


def test_build_speech_configs_and_errors():
    assert set(models.SPEECH_NETWORKS) == set(models.SPEECH_BUILDERS) == {
        "dense_cnn2", "dense_cnn2_dropout", "sparse_cnn2", "super_sparse_cnn2", "sparse_cnn2_small",
        "sparse_cnn2_small_relu1"}
    cfg = models.SPEECH_NETWORKS["sparse_cnn2"]
    assert (cfg["lr"], cfg["lr_decay"], cfg["momentum"], cfg["batch_size"], cfg["epochs"]) == (
        0.01, 0.9, 0.0, 16, 30)
    assert models.SPEECH_NETWORKS["super_sparse_cnn2"]["epochs"] == 25
    dense = models.SPEECH_NETWORKS["dense_cnn2"]
    assert (dense["lr_decay"], dense["momentum"], dense["batch_size"], dense["epochs"]) == (0.8, 0.9, 64, 20)
    model = models.build_speech("super_sparse_cnn2", k_inference_factor=1.0)
    kwinners = [l for l in model.layers if isinstance(l, (KWinners, KWinners2D))]
    assert [l.k_inference_factor for l in kwinners] == [1.0, 1.0, 1.0]
    assert all(l.boost_strength_factor == 0.9 for l in kwinners)
    with pytest.raises(ValueError, match="network"):
        models.build_speech("sparse_cnn3")
    with pytest.raises(ValueError, match="k_inference_factor"):
        models.build_speech("dense_cnn2", k_inference_factor=0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        models.build_speech("sparse_cnn2", weight_decay=-0.1)


def test_waveform_model_puts_the_features_inside(tmp_path):
    from keras_sparse import audio

    spectrogram_model = models.gsc_sparse_cnn2()
    spectrogram_model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "mse")
    raw = models.waveform_model(spectrogram_model)
    inner = raw.layers[-1]
    assert not inner.compiled and inner.layers[1] is spectrogram_model.layers[1]  # same layers, no optimizer
    assert raw.input_shape == (None, 16000) and raw.output_shape == (None, 10)
    clips = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 16000)).astype(np.float32)
    expected = spectrogram_model.predict(np.asarray(audio.log_mel_spectrogram(clips)), verbose=0)
    np.testing.assert_allclose(raw.predict(clips, verbose=0), expected, rtol=1e-5, atol=1e-5)
    raw.save(tmp_path / "raw.keras")
    reloaded = keras.models.load_model(tmp_path / "raw.keras")
    np.testing.assert_array_equal(reloaded.predict(clips, verbose=0), raw.predict(clips, verbose=0))
    pair = models.ensemble([raw, models.waveform_model(models.gsc_dense_cnn2())])
    assert pair.output_shape == (None, 10) and pair.predict(clips, verbose=0).shape == (4, 10)
    with pytest.raises(ValueError, match="spectrogram_model"):
        models.waveform_model(models.mnist_dense_cnn2())
    with pytest.raises(ValueError, match="spectrogram_model"):
        models.waveform_model("model")
    with pytest.raises(ValueError, match="name"):
        models.waveform_model(spectrogram_model, name="")


@pytest.mark.parametrize("build, network, fan_in, kept", [
    (models.build_mnist, "sparse_cnn2", 1024, round(0.3 * 1024 / 4) * 4),  # 308: 77 blocks of 4
    (models.build_speech, "super_sparse_cnn2", 1600, round(0.1 * 1600 / 16) * 16),  # 160: 10 blocks
])
def test_builders_take_a_hidden_block(build, network, fan_in, kept):
    """`hidden_block` reaches the hidden SparseDense (whole 1x4 blocks, exact
    per-unit counts, bias bound from the kept count); dense networks refuse it."""
    model = build(network, hidden_block=(1, 4) if network == "sparse_cnn2" else (1, 16))
    hidden = model.get_layer("hidden")
    block = (1, 4) if network == "sparse_cnn2" else (1, 16)
    assert isinstance(hidden, SparseDense) and hidden.block == block
    kernel, mask = keras.ops.convert_to_numpy(hidden.kernel), hidden.kernel_mask
    assert kernel.shape[0] == fan_in and np.all(kernel[~mask] == 0) and np.all(mask.sum(axis=0) == kept)
    runs = mask.T.reshape(kernel.shape[1], fan_in // block[1], block[1])
    assert np.all(runs.all(axis=-1) | ~runs.any(axis=-1))
    assert np.abs(keras.ops.convert_to_numpy(hidden.bias)).max() <= 1 / math.sqrt(kept)
    dense = "dense_cnn2"
    with pytest.raises(ValueError, match=r"`hidden_block` applies to the sparse networks' hidden layer"):
        build(dense, hidden_block=block)
