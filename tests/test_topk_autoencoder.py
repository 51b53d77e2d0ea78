"""examples/topk_autoencoder.py: the model's construction, its measures by
hand, and a tiny end-to-end run on real MNIST."""

import json

import numpy as np

import keras
from tests.conftest import load_example, mnist_dir

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


def test_dead_fraction_and_normalized_mse_by_hand():
    # a fake encoder whose output is its input: latents 1 and 3 are never > 0
    identity = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
    x = np.float32([[1, 0, 2, -1], [0, -3, 0.5, 0]])
    assert sae.dead_fraction(identity, x, batch_size=1) == 0.5
    # x_hat = x: error 0; x_hat = 0: error = sum x^2, normalized 1
    assert sae.normalized_mse(identity, x) == 0.0
    zero = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 0.0)])
    assert sae.normalized_mse(zero, x, batch_size=1) == 1.0


def test_end_to_end_tiny_run(tmp_path):
    out = tmp_path / "sae"
    runs = sae.main(["--data-dir", str(mnist_dir()), "--train-samples", "512", "--latents", "64",
                     "--k", "4", "--boost", "0", "10", "--epochs", "1", "--batch-size", "64",
                     "--eval-every", "4", "--out", str(out)])
    saved = json.loads((out.parent / "sae.json").read_text())
    assert saved["runs"] == json.loads(json.dumps(runs)) and saved["seed"] == 0
    assert saved["command"].startswith("python examples/topk_autoencoder.py --data-dir")
    assert [(r["latents"], r["k"], r["boost_strength"]) for r in runs] == [(64, 4, 0.0), (64, 4, 10.0)]
    for r in runs:
        assert r["steps"] == 8  # 512 / 64
        assert [step for step, _ in r["dead_curve"]] == [0, 4, 8, 8]
        assert 0 <= r["dead_fraction"] <= 1 and r["dead_curve"][-1][1] == r["dead_fraction"]
        assert 0 < r["normalized_mse"] < 1.5 and 0 < r["entropy_ratio"] <= 1
    assert runs[0]["normalized_mse_boost_off"] == runs[0]["normalized_mse"]  # plain TopK: nothing to switch off
    assert (out.parent / "sae.png").read_bytes()[:4] == b"\x89PNG"
