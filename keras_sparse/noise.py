"""The paper's noise-robustness protocol for MNIST (SPEC §4).

For each test image (pixels in [0, 1], before normalization) and each noise
level `p` in `NOISE_LEVELS = (0.00, 0.05, ..., 0.50)`:

    m = int(784 * p)                        # e.g. p = 0.10 -> 78 pixels
    choose m DISTINCT pixel positions uniformly at random
    x01[those positions] = 0.1307 + 2 * 0.3081 = 0.7469    # the "white" value
    x = (x01 - 0.1307) / 0.3081             # then the usual normalization

The **noise score** is the number of correct classifications summed over the
11 levels (at most `11 * n_test` = 110,000 for MNIST).

Everything is vectorized (one `argpartition` of a random matrix per level) and
driven by a seed: the same seed gives the same noisy pixels on any machine.
"""

import numpy as np

from keras_sparse._validation import check_float, check_int
from keras_sparse.datasets import MNIST_MEAN, MNIST_STD, normalize

NOISE_LEVELS = tuple(round(0.05 * i, 2) for i in range(11))
NOISE_VALUE = MNIST_MEAN + 2 * MNIST_STD  # 0.7469, on [0, 1] pixels


def num_noisy_pixels(p, num_pixels=784):
    """`int(num_pixels * p)`: how many pixels the protocol sets at level `p`."""
    check_float("p", p, 0, 1)
    check_int("num_pixels", num_pixels, 1)
    return int(num_pixels * p)


def _level_seed(seed, level_index):
    # One independent, reproducible stream per (seed, level).
    return np.random.SeedSequence([int(seed), int(level_index)])


def add_noise(images01, p, seed=0, value=NOISE_VALUE):
    """Returns a copy of `images01` with `int(n * p)` distinct pixels of every
    image set to `value` (n = pixels per image).

    Args:
        images01: float array `(N, ...)` of pixels in [0, 1] (e.g. `(N, 28, 28)`
            or `(N, 28, 28, 1)`); every axis after the first is one image.
        p: noise level, `0 <= p <= 1`.
        seed: non-negative int or `numpy.random.Generator`; the same seed gives
            the same pixels.
        value: the value written into the chosen pixels (default
            `0.1307 + 2 * 0.3081`).

    Per image: draw `u ~ U(0, 1)^n` and take the indices of its `m` smallest
    entries, which is a uniformly random m-subset of the n pixels.
    """
    x = np.array(images01, dtype=np.float32, copy=True)
    if x.ndim < 2:
        raise ValueError(
            f"`images01` must have a batch axis and at least one pixel axis. "
            f"Received shape={x.shape}"
        )
    check_float("p", p, 0, 1)
    check_float("value", value)
    rng = _as_rng(seed)
    n_images = x.shape[0]
    flat = x.reshape(n_images, -1)
    m = int(flat.shape[1] * p)
    if m == 0 or n_images == 0:
        return x
    if m >= flat.shape[1]:
        flat[:] = value
        return x
    u = rng.random(flat.shape)
    idx = np.argpartition(u, m - 1, axis=1)[:, :m]
    np.put_along_axis(flat, idx, np.float32(value), axis=1)
    return flat.reshape(x.shape)


def _as_rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    check_int("seed", seed, 0)
    return np.random.default_rng(seed)


def noisy_test_sets(images01, levels=NOISE_LEVELS, seed=0):
    """Yields `(p, normalized noisy images (N, 28, 28, 1))` for every level.

    Level `i` uses the random stream `SeedSequence([seed, i])`, so each level
    is reproducible on its own and independent of the others.
    """
    check_int("seed", seed, 0)
    for i, p in enumerate(levels):
        yield p, normalize(add_noise(images01, p, seed=_level_seed(seed, i)))


def evaluate_noise(model, images01, labels, levels=NOISE_LEVELS, seed=0, batch_size=512):
    """Accuracy of `model` on the noisy test set at every level, and the noise score.

    Args:
        model: a Keras model (or any callable with `.predict`) taking normalized
            `(N, 28, 28, 1)` float32 images and returning 10 logits or
            probabilities per image.
        images01: test images in [0, 1], `(N, 28, 28)` or `(N, 28, 28, 1)`
            (use `keras_sparse.datasets.to_unit_interval` on uint8 pixels).
        labels: int labels `(N,)`.
        levels: noise levels (default the paper's 11).
        seed: noise seed (non-negative int).
        batch_size: prediction batch size.

    Returns:
        dict with `levels`, `correct` (per level), `accuracy` (per level,
        `correct / N`), `noise_score = sum(correct)`, `seed` and `num_images`.
    """
    labels = np.asarray(labels).reshape(-1)
    images01 = np.asarray(images01)
    if images01.shape[0] != labels.shape[0]:
        raise ValueError(
            f"`labels` must have one entry per image: {images01.shape[0]} images, "
            f"received labels of shape {labels.shape}"
        )
    check_int("batch_size", batch_size, 1)
    levels = tuple(levels)
    if not levels:
        raise ValueError("`levels` must contain at least one noise level in [0, 1].")
    for p in levels:
        check_float("levels[i]", p, 0, 1)
    correct = []
    for _, x in noisy_test_sets(images01, levels, seed):
        scores = model.predict(x, batch_size=batch_size, verbose=0)
        correct.append(int(np.sum(np.argmax(scores, axis=-1) == labels)))
    n = int(labels.shape[0])
    return {
        "levels": [float(p) for p in levels],
        "correct": correct,
        "accuracy": [c / n for c in correct],
        "noise_score": int(sum(correct)),
        "seed": int(seed),
        "num_images": n,
    }
