"""examples/topk_autoencoder.py: the model's construction, its measures by
hand, and a tiny end-to-end run on real MNIST."""

import json

import numpy as np
import pytest

import keras
import keras_sparse as ks
from tests.conftest import REPO, load_example, mnist_dir, vjp

sae = load_example("topk_autoencoder.py")


def test_autoencoder_starts_tied_with_unit_norm_decoder_rows():
    model = sae.build_autoencoder(20, latents=12, k=3, boost_strength=10.0, duty_cycle_period=50, seed=1)
    encoder, decoder = model.get_layer("encoder").kernel.numpy(), model.get_layer("decoder").kernel.numpy()
    np.testing.assert_array_equal(encoder, decoder.T)
    np.testing.assert_allclose(np.linalg.norm(decoder, axis=1), 1.0, rtol=1e-6)
    topk = model.get_layer("topk")
    assert (topk.n, topk.k, topk.k_inference, topk.relu) == (12, 3, 3, True)
    assert float(topk.boost_strength.numpy()) == 10.0 and topk.boost_strength_factor == 1.0
    codes = sae.codes_model(model)(np.random.default_rng(0).normal(size=(5, 20)).astype(np.float32)).numpy()
    assert ((codes > 0).sum(axis=1) <= 3).all()


def test_boost_past_the_layers_bound_is_set_and_an_underflowed_latent_cannot_win():
    model = sae.build_autoencoder(20, latents=12, k=3, boost_strength=500.0, duty_cycle_period=50, seed=1)
    topk = model.get_layer("topk")
    assert float(topk.boost_strength.numpy()) == 500.0 and topk.initial_boost_strength == 50.0
    # duty cycle 0.2 > 87 / 500: exp(-100) is 0 in float32, so latent 0 sits out whatever its value
    topk.duty_cycles.assign(np.float32([0.2] + [0.01] * 11))
    pre = np.float32([[100.0] + [1.0, 2.0, 3.0, 4.0, 0, 0, 0, 0, 0, 0, 0]])
    expected = np.zeros_like(pre)
    expected[0, 2:5] = pre[0, 2:5]  # the 3 largest of the others, each boosted by exp(-5)
    np.testing.assert_array_equal(topk(pre, training=False).numpy(), expected)


def test_batch_topk_autoencoder_keeps_k_per_sample_on_average_and_thresholds_at_inference():
    model = sae.build_autoencoder(20, latents=12, k=3, boost_strength=0.0, duty_cycle_period=50, seed=1,
                                  latent="batchtopk")
    topk = model.get_layer("topk")
    assert isinstance(topk, ks.layers.BatchTopK) and topk.k == 3
    x = np.random.default_rng(0).normal(size=(5, 20)).astype(np.float32)
    codes = sae.codes_model(model)
    assert ((codes(x, training=True).numpy() > 0).sum()) == 15  # 3 * 5 of the batch, (almost surely) all > 0
    threshold = float(topk.threshold.numpy())
    pre = model.get_layer("encoder")(x).numpy()
    assert threshold == np.sort(pre.ravel())[-15]
    np.testing.assert_array_equal(codes(x, training=False).numpy(), np.where(pre >= threshold, pre, 0))


def test_lifetime_latent_keeps_each_latents_top_of_the_batch_in_training_and_k_per_sample_after():
    model = sae.build_autoencoder(4, latents=4, k=2, boost_strength=0.0, duty_cycle_period=50, seed=1,
                                  latent="lifetime")
    layer = model.get_layer("topk")
    assert isinstance(layer, sae.LifetimeTopK) and layer.lifetime.percent_on == 0.5
    pre = np.float32([[3, -1, 0.5, 2], [1, 4, -2, 0.2], [-1, 2, 1, 5], [2, 0.1, 3, -3]])
    # training: round(0.5 * 4) = 2 per column of relu(pre); inference: the 2 largest per row
    np.testing.assert_array_equal(layer(pre, training=True).numpy(),
                                  [[3, 0, 0, 2], [0, 4, 0, 0], [0, 2, 1, 5], [2, 0, 3, 0]])
    np.testing.assert_array_equal(layer(pre, training=False).numpy(),
                                  [[3, 0, 0, 2], [1, 4, 0, 0], [0, 2, 0, 5], [2, 0, 3, 0]])

    # the training form on batches of 2 keeps each latent's largest of the pair: x - codes leaves
    # [0, -1, 0, 0], [1, 0, -2, 0.2], [-1, 0, 1, 0], [0, 0.1, 0, -3]: 17.05 of sum x^2 = 88.3
    model.get_layer("encoder").set_weights([np.eye(4, dtype="float32"), np.zeros(4, "float32")])
    model.get_layer("decoder").set_weights([np.eye(4, dtype="float32"), np.zeros(4, "float32")])
    assert sae.training_form_nmse(model, pre, 2) == pytest.approx(17.05 / 88.3, rel=1e-6)


def test_dead_fraction_and_normalized_mse_by_hand():
    # a fake encoder whose output is its input: latents 1 and 3 are never > 0
    identity = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
    x = np.float32([[1, 0, 2, -1], [0, -3, 0.5, 0]])
    assert sae.dead_fraction(identity, x, batch_size=1) == 0.5
    # x_hat = x: error 0; x_hat = 0: error = sum x^2, normalized 1
    assert sae.normalized_mse(identity, x) == 0.0
    zero = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 0.0)])
    assert sae.normalized_mse(zero, x, batch_size=1) == 1.0


def test_why_dead_by_hand():
    # 4 latents, k = 1, no boost; pre = x @ W: rows [2, 0, -2, 1], [0, 3, 0, 1.5], [1, 2, -1, 1.5]
    model = sae.build_autoencoder(2, 4, 1, 0.0, 1000, 0)
    model.get_layer("encoder").set_weights([np.float32([[1, 0, -1, 0.5], [0, 1, 0, 0.5]]), np.zeros(4, "float32")])
    x = np.float32([[2, 0], [0, 3], [1, 2]])
    # winners: latents 0, 1, 1; dead: 2 (max pre 0) and 3 (max pre 1.5); k-th largest per row: 2, 3, 2
    dead = ~sae.alive_latents(sae.codes_model(model), x)
    np.testing.assert_array_equal(dead, [False, False, True, True])
    assert sae.why_dead(model, x, 1, dead, batch_size=2) == {
        "dead_with_positive_pre": 0.5, "dead_max_pre_median": 0.75, "kth_pre_median": 2.0}
    model.get_layer("encoder").set_weights([np.float32([[1, 0, 0, 0], [0, 1, 0, 0]]), np.float32([0, 0, 5, 9])])
    # bias 9 on latent 3: it wins every row; 0, 1 and 2 are dead though positive (max pre 2, 3, 5)
    dead = ~sae.alive_latents(sae.codes_model(model), x)
    np.testing.assert_array_equal(dead, [True, True, True, False])
    assert sae.why_dead(model, x, 1, dead) == {
        "dead_with_positive_pre": 1.0, "dead_max_pre_median": 3.0, "kth_pre_median": 9.0}
    identity = sae.build_autoencoder(2, 2, 1, 0.0, 1000, 0)
    identity.get_layer("encoder").set_weights([np.eye(2, dtype="float32"), np.zeros(2, "float32")])
    dead = ~sae.alive_latents(sae.codes_model(identity), np.eye(2, dtype="float32"))
    assert not dead.any()  # each latent wins once
    assert sae.why_dead(identity, np.eye(2, dtype="float32"), 1, dead) == {
        "dead_with_positive_pre": None, "dead_max_pre_median": None, "kth_pre_median": 1.0}


def test_end_to_end_tiny_run(tmp_path):
    out = tmp_path / "sae"
    runs = sae.main(["--data-dir", str(mnist_dir()), "--train-samples", "512", "--latents", "64",
                     "--k", "4", "--boost", "0", "10", "--aux-k", "0", "16", "--aux-dead-after", "128",
                     "--batch-topk", "--lifetime", "--epochs", "1", "--batch-size", "64", "--eval-every", "4",
                     "--out", str(out)])
    saved = json.loads((out.parent / "sae.json").read_text())
    assert saved["runs"] == json.loads(json.dumps(runs)) and saved["seed"] == 0
    assert saved["command"].startswith("python examples/topk_autoencoder.py --data-dir")
    assert [(r["latent"], r["boost_strength"], r["aux_k"]) for r in runs] == [
        ("topk", 0.0, 0), ("topk", 0.0, 16), ("topk", 10.0, 0), ("topk", 10.0, 16),
        ("batchtopk", None, 0), ("batchtopk", None, 16), ("lifetime", None, 0), ("lifetime", None, 16)]
    assert all((r["latents"], r["k"]) == (64, 4) for r in runs)
    assert [(r["aux_alpha"], r["aux_dead_after"]) for r in runs[:2]] == [(None, None), (1 / 32, 128)]
    for r in runs[4:]:  # BatchTopK (a learned positive threshold) and lifetime: no duty cycles
        assert (r["threshold"] > 0) if r["latent"] == "batchtopk" else "threshold" not in r
        assert ("normalized_mse_training_form" in r) == (r["latent"] == "lifetime")
        assert r["entropy_ratio"] is None and r["normalized_mse_boost_off"] == r["normalized_mse"]
    for r in runs:
        assert r["steps"] == 8  # 512 / 64
        assert [step for step, _ in r["dead_curve"]] == [0, 4, 8, 8]
        assert 0 <= r["dead_fraction"] <= 1 and r["dead_curve"][-1][1] == r["dead_fraction"]
        assert 0 < r["normalized_mse"] < 1.5 and (r["entropy_ratio"] is None or 0 < r["entropy_ratio"] <= 1)
        assert (r["dead_with_positive_pre"] is None) == (r["dead_fraction"] == 0) and r["kth_pre_median"] > 0
    assert runs[0]["normalized_mse_boost_off"] == runs[0]["normalized_mse"]  # plain TopK: nothing to switch off
    assert (out.parent / "sae.png").read_bytes()[:4] == b"\x89PNG"


def test_boost_given_no_value_runs_only_the_other_latent_layers(tmp_path):
    runs = sae.main(["--data-dir", str(mnist_dir()), "--train-samples", "128", "--latents", "16", "--k", "2",
                     "--boost", "--lifetime", "--epochs", "1", "--batch-size", "64", "--out", str(tmp_path / "s")])
    assert [(r["latent"], r["boost_strength"], r["steps"]) for r in runs] == [("lifetime", None, 2)]
    with pytest.raises(SystemExit):  # no latent layer left to train
        sae.parse_args(["--boost"])


def test_features_from_a_classifier_are_its_penultimate_activations():
    images = ks.datasets.load_mnist(mnist_dir())[1][0][:6]
    np.testing.assert_array_equal(sae.inputs(images), ks.datasets.to_unit_interval(images).reshape(6, 784))
    classifier = keras.models.load_model(REPO / "saved_models" / "mnist_dense_cnn2.keras")
    rows = sae.inputs(images, REPO / "saved_models" / "mnist_dense_cnn2.keras")
    hidden = keras.Model(classifier.input, classifier.get_layer("hidden_relu").output)
    np.testing.assert_allclose(rows, hidden(ks.datasets.normalize(ks.datasets.to_unit_interval(images))).numpy(),
                               rtol=1e-6, atol=1e-6)
    assert rows.shape == (6, 1000) and rows.min() == 0.0
    # the logits are the last layer's output of these rows
    logits = classifier.get_layer("logits")(rows).numpy()
    np.testing.assert_allclose(logits, classifier(ks.datasets.normalize(ks.datasets.to_unit_interval(images))).numpy(),
                               rtol=1e-5, atol=1e-5)


def _auxk_reference(x, pre, x_hat, dead, kernel, k_aux):
    """AuxK by sorting, in float64: each sample's k_aux largest positive
    pre-activations among the dead latents reconstruct x - x_hat."""
    if not dead.any():
        return 0.0, np.zeros_like(pre, bool)
    candidates = np.where(dead, pre, -np.inf)
    kth = -np.sort(-candidates, axis=1)[:, min(k_aux, pre.shape[1]) - 1:][:, :1]
    chosen = (candidates >= kth) & (candidates > 0)
    z_aux = np.where(chosen, pre, 0).astype(np.float64)
    return float(np.mean((x - x_hat - z_aux @ kernel) ** 2)), chosen


def test_auxk_loss_by_hand():
    x = np.float32([[1, 0, 2], [0, 1, 0]])
    x_hat = np.float32([[0.5, 0, 1], [0, 0, 0]])  # residual e = [[.5, 0, 1], [0, 1, 0]]
    pre = np.float32([[3, 2, -1, 0.5], [1, -2, 4, 0.25]])
    kernel = np.float32([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
    dead = np.array([False, True, True, True])
    # k_aux = 1 among latents 1-3: sample 0 takes latent 1 (2), sample 1 latent 2 (4)
    # e_hat = [[0, 2, 0], [0, 0, 4]]; e - e_hat = [[.5, -2, 1], [0, 1, -4]]
    loss = float(sae.auxk_loss(x, pre, x_hat, dead, kernel, 1))
    assert loss == np.float32((0.25 + 4 + 1 + 0 + 1 + 16) / 6)
    # k_aux = 2: latent 3 joins in sample 0 (0.5 > -1) and in sample 1 (0.25 > -2)
    expected, chosen = _auxk_reference(x, pre, x_hat, dead, kernel, 2)
    np.testing.assert_array_equal(chosen, [[False, True, False, True], [False, False, True, True]])
    np.testing.assert_allclose(float(sae.auxk_loss(x, pre, x_hat, dead, kernel, 2)), expected, rtol=1e-6)
    assert float(sae.auxk_loss(x, pre, x_hat, np.zeros(4, bool), kernel, 2)) == 0.0  # nothing dead


def test_auxk_gradient_reaches_the_chosen_dead_latents_only():
    rng = np.random.default_rng(0)
    x, x_hat = rng.normal(size=(2, 2, 5)).astype(np.float32)
    pre = rng.normal(size=(2, 6)).astype(np.float32)
    kernel = rng.normal(size=(6, 5)).astype(np.float32)
    dead = np.array([True, False, True, True, False, True])
    _, chosen = _auxk_reference(x, pre, x_hat, dead, kernel, 2)
    grad = vjp(lambda p: sae.auxk_loss(x, p, x_hat, dead, kernel, 2), pre, np.float32(1.0))
    # d/dz_aux of mean((e - z_aux W)^2) = -2 (e - z_aux W) W^T / size
    z_aux = np.where(chosen, pre, 0)
    expected = np.where(chosen, -2 * (x - x_hat - z_aux @ kernel) @ kernel.T / x.size, 0)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
    assert (grad[~chosen] == 0).all() and (grad[chosen] != 0).all()


def test_auxk_layer_counts_samples_and_adds_the_loss_in_training():
    model = sae.build_autoencoder(8, latents=6, k=1, boost_strength=0.0, duty_cycle_period=50, seed=1,
                                  aux_k=2, aux_alpha=0.5, aux_dead_after=4)
    auxk, topk = model.get_layer("auxk"), model.get_layer("topk")
    x = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    codes = sae.codes_model(model)(x, training=False).numpy()
    active = (codes > 0).any(axis=0)
    assert 0 < active.sum() < 6
    model(x, training=True)
    np.testing.assert_array_equal(auxk.samples_since_active.numpy(), np.where(active, 0, 3))
    assert float(model.losses[0]) == 0.0  # 3 < 4 samples: nothing dead yet
    pre = model.get_layer("encoder")(x).numpy()
    x_hat = model(x, training=False).numpy()  # no boosting: training picks the same winners
    expected, _ = _auxk_reference(x, pre, x_hat, ~active, model.get_layer("decoder").kernel.numpy(), 2)
    assert expected > 0
    model(x, training=True)  # the same winners: the others are dead after 6 samples
    np.testing.assert_array_equal(auxk.samples_since_active.numpy(), np.where(active, 0, 6))
    np.testing.assert_allclose(float(model.losses[0]), 0.5 * expected, rtol=1e-5)
    model(x, training=False)
    np.testing.assert_array_equal(auxk.samples_since_active.numpy(), np.where(active, 0, 6))
    assert int(topk.learning_iterations.numpy()) == 6


def test_orthogonal_decoder_gradient_loses_its_parallel_component_only():
    """`--decoder-gradient orthogonal`: the decoder kernel's gradient, row by
    row, minus its projection on the row (`g - (g . u) u`); the outputs are
    the plain decoder's."""
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(6, 5)).astype(np.float32) * 3.0
    upstream = rng.normal(size=(6, 5)).astype(np.float32)
    grad = vjp(sae.without_parallel_gradient, kernel, upstream)
    unit = kernel / np.linalg.norm(kernel, axis=1, keepdims=True)
    np.testing.assert_allclose(grad, upstream - (upstream * unit).sum(1, keepdims=True) * unit, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((grad * unit).sum(1), 0.0, atol=1e-5)

    plain = sae.build_autoencoder(20, latents=12, k=3, boost_strength=0.0, duty_cycle_period=50, seed=1)
    orthogonal = sae.build_autoencoder(20, latents=12, k=3, boost_strength=0.0, duty_cycle_period=50, seed=1,
                                       orthogonal=True)
    assert orthogonal.get_layer("decoder").orthogonal and not plain.get_layer("decoder").orthogonal
    x = rng.normal(size=(4, 20)).astype(np.float32)
    np.testing.assert_allclose(orthogonal(x).numpy(), plain(x).numpy(), rtol=1e-6, atol=1e-6)


def test_orthogonal_decoder_projects_the_auxk_gradient_too():
    """With `orthogonal=True` the AuxK loss reads the decoder through
    `decoding_kernel()`, so its gradient on every decoder row is orthogonal to the row."""
    import tensorflow as tf

    model = sae.build_autoencoder(8, latents=6, k=1, boost_strength=0.0, duty_cycle_period=50, seed=1,
                                  aux_k=2, aux_alpha=1.0, aux_dead_after=0, orthogonal=True)
    kernel = model.get_layer("decoder").kernel
    x = np.random.default_rng(3).normal(size=(5, 8)).astype(np.float32)
    with tf.GradientTape() as tape:
        model(x, training=True)
        (aux,) = model.losses
    grad = tape.gradient(aux, kernel.value).numpy()
    assert float(aux) > 0 and np.abs(grad).max() > 0
    rows = kernel.numpy()
    np.testing.assert_allclose((grad * rows).sum(1), 0.0, atol=1e-6)
