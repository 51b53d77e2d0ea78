"""The paper's noise protocol (docs/mnist.md) and the MNIST loader."""

import numpy as np
import pytest

from keras_sparse import datasets, noise


def _images(n=50, seed=0):
    # Values never equal to the noise value, so changed pixels are exactly the noisy ones.
    rng = np.random.default_rng(seed)
    return (rng.random((n, 28, 28)) * 0.7).astype(np.float32)


def test_levels_and_counts():
    assert noise.NOISE_LEVELS == (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
    assert [noise.num_noisy_pixels(p) for p in noise.NOISE_LEVELS] == [
        0, 39, 78, 117, 156, 196, 235, 274, 313, 352, 392]
    assert noise.NOISE_VALUE == pytest.approx(0.1307 + 2 * 0.3081)


@pytest.mark.parametrize("p", noise.NOISE_LEVELS)
def test_exact_pixels_value_and_untouched(p):
    x = _images()
    y = noise.add_noise(x, p, seed=7)
    assert y.shape == x.shape and y.dtype == np.float32
    changed = (y != x).reshape(len(x), -1)
    # exactly int(784 * p) distinct pixels per image ...
    np.testing.assert_array_equal(changed.sum(1), int(784 * p))
    # ... all set to the white value, every other pixel untouched.
    np.testing.assert_array_equal(y[y != x], np.float32(0.1307 + 2 * 0.3081))
    np.testing.assert_array_equal(y[y == x], x[y == x])
    np.testing.assert_array_equal(x, _images())  # input not modified


def test_pixels_differ_between_images_and_channel_axis():
    x = _images(20)[..., None]
    y = noise.add_noise(x, 0.25, seed=1)
    assert y.shape == (20, 28, 28, 1)
    masks = (y != x).reshape(20, -1)
    assert len({m.tobytes() for m in masks}) == 20


def test_seed_reproducible():
    x = _images()
    np.testing.assert_array_equal(noise.add_noise(x, 0.3, seed=3), noise.add_noise(x, 0.3, seed=3))
    assert not np.array_equal(noise.add_noise(x, 0.3, seed=3), noise.add_noise(x, 0.3, seed=4))
    a = [xn for _, xn in noise.noisy_test_sets(x, seed=5)]
    b = [xn for _, xn in noise.noisy_test_sets(x, seed=5)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_noisy_test_sets_are_normalized():
    x = _images(5)
    for p, xn in noise.noisy_test_sets(x, seed=0):
        assert xn.shape == (5, 28, 28, 1)
        raw = noise.add_noise(x, p, seed=noise._level_seed(0, noise.NOISE_LEVELS.index(p)))
        np.testing.assert_allclose(xn[..., 0], (raw - 0.1307) / 0.3081, rtol=1e-6)


class _BrightnessModel:
    """Predicts class 1 if the image's mean normalized pixel exceeds a threshold, else 0."""

    def __init__(self, threshold):
        self.threshold = threshold

    def predict(self, x, batch_size=None, verbose=0):
        bright = x.reshape(len(x), -1).mean(1) > self.threshold
        return np.stack([~bright, bright], axis=1).astype(np.float32)


def test_noise_score_by_hand():
    # All-black images: at level p the mean normalized pixel is
    #   (m * 0.7469 + (784 - m) * 0) / 784 normalized, m = int(784 p),
    # so the model answers 1 exactly when m / 784 * 0.7469 > 0.1307 + t * 0.3081.
    x = np.zeros((30, 28, 28), np.float32)
    labels = np.array([0] * 20 + [1] * 10)
    threshold = -0.2
    model = _BrightnessModel(threshold)
    expected_correct = []
    for p in noise.NOISE_LEVELS:
        m = int(784 * p)
        mean01 = m * (0.1307 + 2 * 0.3081) / 784
        says_one = (mean01 - 0.1307) / 0.3081 > threshold
        expected_correct.append(10 if says_one else 20)
    result = noise.evaluate_noise(model, x, labels, seed=0)
    assert result["correct"] == expected_correct
    assert result["noise_score"] == sum(expected_correct)
    assert 10 in expected_correct and 20 in expected_correct  # both regimes exercised
    assert result["accuracy"] == [c / 30 for c in expected_correct]


def test_argument_errors():
    with pytest.raises(ValueError, match="p"):
        noise.add_noise(_images(2), 1.5)
    with pytest.raises(ValueError, match="seed"):
        noise.add_noise(_images(2), 0.1, seed=-1)
    with pytest.raises(ValueError, match="labels"):
        noise.evaluate_noise(_BrightnessModel(0), _images(3), [0, 1])
    with pytest.raises(ValueError, match="data_dir"):
        datasets.load_mnist("/nonexistent/dir")
    with pytest.raises(ValueError, match="images"):
        datasets.to_unit_interval(np.zeros((2, 28, 28), np.float32))


@pytest.mark.parametrize("images, problem", [
    (np.full((2, 28, 28), 200, np.uint8), "dtype=uint8"),               # raw pixels, not / 255
    (np.full((2, 28, 28), 200.0, np.float32), r"\[200.0, 200.0\]"),    # 0-255 as floats
    (datasets.normalize(np.full((2, 28, 28), 0.5, np.float32)), "before normalization"),
    (np.full((2, 28, 28), np.nan, np.float32), "NaN"),
])
def test_noise_rejects_images_outside_the_unit_interval(images, problem):
    """Pixels that are not [0, 1] would give a wrong (higher) noise score silently."""
    with pytest.raises(ValueError, match="images01") as error:
        noise.add_noise(images, 0.1)
    assert error.match(problem)
    with pytest.raises(ValueError, match="images01"):
        noise.evaluate_noise(_BrightnessModel(0), images, [0, 1])


def test_load_mnist_from_dir(mnist):
    from tests.conftest import mnist_dir

    (xtr, ytr), (xte, yte) = datasets.load_mnist(mnist_dir())
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    np.testing.assert_array_equal(yte, mnist["y_test"])
    x = datasets.normalize(datasets.to_unit_interval(xte[:100]))
    assert x.shape == (100, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x.min(), -0.1307 / 0.3081, rtol=1e-6)


# ---------------------------------------------------------------- speech noise


def _clips(n=6, samples=400, seed=0):
    return np.random.default_rng(seed).uniform(-0.9, 0.9, (n, samples)).astype(np.float32)


@pytest.mark.parametrize("a", noise.NOISE_LEVELS)
def test_audio_noise_is_the_exact_blend(a):
    x = _clips()
    seed = np.random.SeedSequence([3, 1])
    u = np.random.default_rng(seed).uniform(-1.0, 1.0, x.shape).astype(np.float32)
    y = noise.add_audio_noise(x, a, seed=np.random.SeedSequence([3, 1]))
    expected = x if a == 0 else np.float32(1 - a) * x + np.float32(a) * u
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.float32 and np.all(np.abs(y) <= 1)
    np.testing.assert_array_equal(x, _clips())  # input not modified


def test_audio_noise_seeded_and_independent_per_level():
    x = _clips()
    np.testing.assert_array_equal(noise.add_audio_noise(x, 0.3, seed=4), noise.add_audio_noise(x, 0.3, seed=4))
    assert not np.array_equal(noise.add_audio_noise(x, 0.3, seed=4), noise.add_audio_noise(x, 0.3, seed=5))
    sets = list(noise.noisy_audio_sets(x, seed=2))
    assert [a for a, _ in sets] == list(noise.NOISE_LEVELS)
    for i, (a, noisy) in enumerate(sets):
        np.testing.assert_array_equal(noisy, noise.add_audio_noise(x, a, seed=noise._level_seed(2, i)))
    # features are applied after the noise
    featured = list(noise.noisy_audio_sets(x, seed=2, features=lambda w: w.sum(1, keepdims=True)))
    for (_, noisy), (_, f) in zip(sets, featured):
        np.testing.assert_allclose(f, noisy.sum(1, keepdims=True), rtol=1e-6)


class _LoudnessModel:
    """Class 1 when a clip's mean |sample| exceeds `threshold`, else 0."""

    def __init__(self, threshold):
        self.threshold = threshold

    def predict(self, x, batch_size=None, verbose=0):
        loud = np.abs(x).mean(1) > self.threshold
        return np.stack([~loud, loud], axis=1).astype(np.float32)


def test_audio_noise_score_by_hand():
    # Silent clips: at level a the clip is a * u, with mean |a * u| ~= a / 2 (1e5 samples:
    # sd of the mean ~ 0.29 a / sqrt(1e5) < 0.001 a). With threshold 0.11 the model says
    # "loud" exactly from a = 0.25 on (mean 0.125 > 0.11 > 0.1 at a = 0.2).
    x = np.zeros((4, 100_000), np.float32)
    labels = np.array([0, 0, 0, 1])
    result = noise.evaluate_audio_noise(_LoudnessModel(0.11), x, labels, seed=0)
    expected = [3 if a < 0.25 else 1 for a in noise.NOISE_LEVELS]
    assert result["correct"] == expected
    assert result["noise_score"] == 5 * 3 + 6 * 1 == sum(expected)
    assert result["seed"] == 0 and result["num_images"] == 4


def test_audio_noise_errors():
    with pytest.raises(ValueError, match="`a`"):
        noise.add_audio_noise(_clips(), 1.5)
    with pytest.raises(ValueError, match="waveforms"):
        noise.add_audio_noise(_clips()[0], 0.1)  # no batch axis
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        noise.add_audio_noise(_clips() * 32768, 0.1)  # int16 scale, not divided
    bad = _clips()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        noise.add_audio_noise(bad, 0.1)
    with pytest.raises(ValueError, match="labels"):
        noise.evaluate_audio_noise(_LoudnessModel(0), _clips(3), [0, 1])
    with pytest.raises(ValueError, match="levels"):
        noise.evaluate_audio_noise(_LoudnessModel(0), _clips(2), [0, 1], levels=[])
    with pytest.raises(ValueError, match="levels"):
        list(noise.noisy_audio_sets(_clips(2), levels=[0.0, 2.0]))
    with pytest.raises(ValueError, match="features"):
        list(noise.noisy_audio_sets(_clips(2), features="logmel"))
    with pytest.raises(ValueError, match="labels"):
        noise.score_levels(_LoudnessModel(0), [(0.0, _clips(0))], [])
    with pytest.raises(ValueError, match="model"):
        noise.score_levels("model", [(0.0, _clips(2))], [0, 1])


# ---------------------------------------------------------------- selection rules


def _record(epoch, clean, score):
    return {"epoch": epoch, "levels": [0.0, 0.5], "accuracy": [clean, 0.1], "noise_score": score}


def test_select_epoch_rules():
    records = [_record(1, 0.90, 10), _record(2, 0.95, 12), _record(3, 0.95, 15), _record(4, 0.93, 20)]
    assert noise.select_epoch(records, "paper")["epoch"] == 2  # highest clean accuracy, first on a tie
    assert noise.select_epoch(records, "last")["epoch"] == 4
    assert noise.clean_accuracy(records[1]) == 0.95
    with pytest.raises(ValueError, match="rule"):
        noise.select_epoch(records, "best")
    with pytest.raises(ValueError, match="records"):
        noise.select_epoch([], "last")
    with pytest.raises(ValueError, match="0.0"):
        noise.select_epoch([{"epoch": 1, "levels": [0.5], "accuracy": [0.1]}], "paper")


def test_epoch_noise_score_callback_records_every_epoch(mnist):
    """The callback scores the model on fixed noisy sets after every epoch, across
    two `fit` calls, and equals `evaluate_noise` on the trained model."""
    import keras

    from keras_sparse import callbacks, models

    x01 = datasets.to_unit_interval(mnist["x_test"][:200])
    y = mnist["y_test"][:200]
    sets = list(noise.noisy_test_sets(x01, levels=(0.0, 0.2), seed=1))
    scorer = callbacks.EpochNoiseScore(sets, y, batch_size=64)
    model = models.mnist_sparse_cnn1()
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x_train = datasets.normalize(datasets.to_unit_interval(mnist["x_train"][:128]))
    history = model.fit(x_train, mnist["y_train"][:128], batch_size=32, epochs=2, verbose=0,
                        callbacks=[scorer])
    model.fit(x_train, mnist["y_train"][:128], batch_size=32, epochs=3, initial_epoch=2,
              verbose=0, callbacks=[scorer])
    assert [r["epoch"] for r in scorer.records] == [1, 2, 3]
    assert history.history["noise_score"] == [r["noise_score"] for r in scorer.records[:2]]
    assert history.history["test_accuracy"] == [r["accuracy"][0] for r in scorer.records[:2]]
    direct = noise.evaluate_noise(model, x01, y, levels=(0.0, 0.2), seed=1)
    assert scorer.records[-1]["correct"] == direct["correct"]
    with pytest.raises(ValueError, match="noisy_sets"):
        callbacks.EpochNoiseScore([], y)
    with pytest.raises(ValueError, match="labels"):  # at construction, not after an epoch
        callbacks.EpochNoiseScore(sets, y[:-1])
