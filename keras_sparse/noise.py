"""The paper's noise-robustness protocols (docs/mnist.md and docs/speech.md), MNIST and speech, and the
per-epoch records its numbers were selected from.

MNIST: for each test image (pixels in [0, 1], before normalization) and each
noise level `p` in `NOISE_LEVELS = (0.00, 0.05, ..., 0.50)`:

    m = int(784 * p)                        # e.g. p = 0.10 -> 78 pixels
    choose m DISTINCT pixel positions uniformly at random
    x01[those positions] = 0.1307 + 2 * 0.3081 = 0.7469    # the "white" value
    x = (x01 - 0.1307) / 0.3081             # then the usual normalization

Speech: for each test clip (samples in [-1, 1], after the length fix, before
the features) and each level `a` in the same `NOISE_LEVELS`:

    x' = (1 - a) * x + a * u,   u ~ U(-1, 1) per sample

The **noise score** is the number of correct classifications summed over the
11 levels (at most `11 * n_test`, e.g. 110,000 for MNIST).

Everything is vectorized and driven by a seed: level `i` uses the random
stream `SeedSequence([seed, i])`, so the same seed gives the same noise on any
machine, and each level is reproducible on its own.
"""

import keras
import numpy as np

from keras_sparse._validation import check_equal_lengths, check_float, check_int
from keras_sparse.datasets import MNIST_MEAN, MNIST_STD, predict_inputs

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
            Integer pixels (uint8 0-255), normalized images or NaN raise
            `ValueError`: they would give a wrong noise score without a sign.
        p: noise level, `0 <= p <= 1`.
        seed: non-negative int or `numpy.random.Generator`; the same seed gives
            the same pixels.
        value: the value written into the chosen pixels (default
            `0.1307 + 2 * 0.3081`).

    Per image: draw `u ~ U(0, 1)^n` and take the indices of its `m` smallest
    entries, which is a uniformly random m-subset of the n pixels.
    """
    raw = np.asarray(images01)
    if not np.issubdtype(raw.dtype, np.floating):
        raise ValueError(
            "`images01` must be floating-point pixels in [0, 1] (use "
            f"keras_sparse.datasets.to_unit_interval on uint8 pixels). Received dtype={raw.dtype}"
        )
    x = np.array(raw, dtype=np.float32, copy=True)
    if x.ndim < 2:
        raise ValueError(
            f"`images01` must have a batch axis and at least one pixel axis. "
            f"Received shape={x.shape}"
        )
    if x.size and not (np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1):
        raise ValueError(
            "`images01` must be pixels in [0, 1], before normalization (the protocol writes "
            f"the white value {NOISE_VALUE:.4f} and normalizes itself). Received {_describe(x)}"
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


def _describe(x):
    """`values in [min, max]` of the finite entries, and whether NaN/inf occur."""
    finite = x[np.isfinite(x)]
    text = f"values in [{finite.min()}, {finite.max()}]" if finite.size else "no finite values"
    return text + ("" if finite.size == x.size else " with NaN/inf")


def _as_rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    check_int("seed", seed, 0)
    return np.random.default_rng(seed)


def add_audio_noise(waveforms, a, seed=0):
    """Returns `(1 - a) * waveforms + a * u`, `u ~ U(-1, 1)` drawn per sample.

    Args:
        waveforms: float array `(N, samples)` in [-1, 1] (after the length fix).
        a: noise level, `0 <= a <= 1`; 0 returns an exact copy.
        seed: non-negative int, `numpy.random.SeedSequence` or `Generator`.

    Raises `ValueError` for NaN/inf samples or samples outside [-1, 1] (int16
    PCM not divided by 32768, say), which would give a wrong noise score.
    """
    x = np.array(check_equal_lengths("waveforms", waveforms), dtype=np.float32, copy=True)
    if x.ndim != 2:
        raise ValueError(f"`waveforms` must have shape (N, samples). Received shape={x.shape}")
    check_float("a", a, 0, 1)
    if not np.all(np.isfinite(x)) or np.any(np.abs(x) > 1):
        raise ValueError(
            "`waveforms` must be finite samples in [-1, 1] (e.g. int16 PCM / 32768). "
            f"Received {_describe(x)}"
        )
    if a == 0:
        return x
    u = _as_rng(seed).uniform(-1.0, 1.0, size=x.shape).astype(np.float32)
    return (np.float32(1 - a) * x + np.float32(a) * u).astype(np.float32)


def noisy_test_sets(images01, levels=NOISE_LEVELS, seed=0):
    """Yields `(p, normalized noisy images (N, 28, 28, 1))` for every MNIST level
    (`keras_sparse.tasks.get("mnist").noisy_sets`)."""
    return _task("mnist").noisy_sets(images01, levels, seed)


def noisy_audio_sets(waveforms, levels=NOISE_LEVELS, seed=0, features=None):
    """Yields `(a, noisy clips)` for every speech level, passed through
    `features` (e.g. `keras_sparse.audio.log_mel_spectrogram`) when given
    (`keras_sparse.tasks.get("fsdd").noisy_sets`)."""
    return _task("fsdd").noisy_sets(waveforms, levels, seed, features)


def _task(name):
    from keras_sparse import tasks  # tasks build on this module

    return tasks.get(name)


def check_labels(labels):
    """Class labels as a 1-D int64 array: integers (or integer-valued
    floats) `>= 0`, at least one. Anything else (fractions, strings, NaN,
    negative values) raises `ValueError`: compared with an argmax they
    would silently score 0."""
    labels = np.asarray(labels)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"`labels` must be integer class indices. Received labels of dtype {labels.dtype}: "
                         f"{labels.reshape(-1)[:5].tolist()}")
    labels = labels.reshape(-1)
    if labels.size == 0:
        raise ValueError("`labels` must hold at least one label (an empty test set has no accuracy).")
    with np.errstate(invalid="ignore"):
        bad = ~((labels >= 0) & (labels < 2**62) & (np.floor(labels) == labels))
    if bad.any():
        raise ValueError(f"`labels` must be integer class indices >= 0. Received: {labels[bad][:5].tolist()} "
                         f"at positions {np.flatnonzero(bad)[:5].tolist()}")
    return labels.astype(np.int64)


def _class_scores(scores, labels, level):
    """`scores` as a `(N, classes)` float array, checked against `labels`."""
    if isinstance(scores, (list, tuple, dict)):
        raise ValueError(
            f"`model` must have one output of class scores; it returned {len(scores)} outputs. "
            "Score one of them, e.g. `keras.Model(model.inputs, model.outputs[0])`."
        )
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(
            "`model` must return class scores of shape (N, classes) with classes >= 2. "
            f"Received scores of shape {scores.shape} at level {level}."
        )
    if labels.max() >= scores.shape[1]:
        raise ValueError(f"`labels` must be < the model's {scores.shape[1]} classes. "
                         f"Received a label {int(labels.max())}.")
    return scores


def score_levels(model, noisy_sets, labels, batch_size=512):
    """Accuracy of `model` at every level of `noisy_sets`, and the noise score.

        correct = count(argmax(scores) == label  and  no NaN in scores)

    A sample whose scores hold a NaN counts as wrong (NumPy's argmax would
    report the NaN's class). The model must have one output of class scores
    `(N, classes)`; labels must be class indices in `[0, classes)`
    (`check_labels`); otherwise `ValueError`.

    Args:
        model: a Keras model (or anything with `.predict`) returning class
            scores (logits or probabilities) for the inputs of `noisy_sets`.
        noisy_sets: iterable of `(level, model inputs)`, e.g. the output of
            `noisy_test_sets` / `noisy_audio_sets`, or a list of them kept to
            score a model after every epoch.
        labels: int labels `(N,)`, one per input.

    Returns:
        dict with `levels`, `correct` (per level), `accuracy` (per level,
        `correct / N`), `noise_score = sum(correct)` and `num_images`.
    """
    labels = check_labels(labels)
    check_int("batch_size", batch_size, 1)
    if not callable(getattr(model, "predict", None)):
        raise ValueError(f"`model` must have a `predict` method (a Keras model). Received: model={model!r}")
    levels, correct = [], []
    for level, inputs in noisy_sets:
        if len(inputs) != len(labels):
            raise ValueError(
                f"`labels` must have one entry per input: {len(inputs)} inputs at level "
                f"{level}, received labels of shape {labels.shape}"
            )
        scores = _class_scores(_predict(model, inputs, batch_size), labels, level)
        right = (np.argmax(scores, axis=-1) == labels) & ~np.isnan(scores).any(axis=-1)
        levels.append(float(level))
        correct.append(int(np.sum(right)))
    n = int(labels.shape[0])
    return {
        "levels": levels,
        "correct": correct,
        "accuracy": [c / n for c in correct],
        "noise_score": int(sum(correct)),
        "num_images": n,
    }


def check_levels(levels):
    """`levels` as a non-empty tuple of noise levels in [0, 1]; else `ValueError`."""
    levels = tuple(levels)
    if not levels:
        raise ValueError("`levels` must contain at least one noise level in [0, 1].")
    for p in levels:
        check_float("levels[i]", p, 0, 1)
    return levels


def _predict(model, inputs, batch_size):
    """`model.predict` of `inputs`; a Keras model gets them through
    `predict_inputs` (the same batches, without the TensorFlow backend's wait
    after each pass)."""
    if isinstance(model, keras.Model):
        return model.predict(**predict_inputs(inputs, batch_size=batch_size), verbose=0)
    return model.predict(inputs, batch_size=batch_size, verbose=0)


def evaluate_noise(model, task=None, *args, **kwargs):
    """Accuracy of `model` on a task's noisy test set at every level, and the noise score.

    Two forms:

    - `evaluate_noise(model, task, inputs=None, labels=None, levels=None, seed=0,
      batch_size=512, features=None, data_dir=None)`, `task` a
      `keras_sparse.tasks.Task` or its name (`"mnist"`, `"fsdd"`, ...): the
      task's noise protocol (`Task.corrupt`, then `Task.prepare`, then
      `features` when given) on `inputs` and `labels`, the clean test set as
      the protocol takes it (MNIST pixels in [0, 1], waveforms in [-1, 1]),
      by default the task's whole test set from `data_dir`; at the task's
      levels unless `levels`.
    - `evaluate_noise(model, images01, labels, levels=NOISE_LEVELS, seed=0,
      batch_size=512)`: MNIST, as `evaluate_noise(model, "mnist", images01, labels, ...)`.

    Args:
        model: a Keras model (or anything with `.predict`) taking the task's
            model inputs (MNIST: normalized `(N, 28, 28, 1)` images; audio:
            `(N, 16000)` waveforms, or spectrograms with `features`) and
            returning class logits or probabilities.
        seed: noise seed (non-negative int): level `i` uses `SeedSequence([seed, i])`.
        batch_size: prediction batch size.

    Returns:
        `score_levels`' dict, plus `seed`.
    """
    from keras_sparse import tasks

    if isinstance(task, (str, tasks.Task)):
        return _evaluate_task(model, tasks.get(task), *args, **kwargs)
    if task is None:
        if "images01" not in kwargs:
            raise ValueError("`task` must be a keras_sparse.tasks.Task or one of "
                             f"{sorted(tasks.TASKS)} (or MNIST images01). Received: task=None")
        task = kwargs.pop("images01")
    return _evaluate_mnist(model, task, *args, **kwargs)


def _evaluate_task(model, task, inputs=None, labels=None, levels=None, seed=0, batch_size=512,
                   features=None, data_dir=None):
    from keras_sparse import tasks

    if (inputs is None) != (labels is None):
        raise ValueError("`inputs` and `labels` must be given together (or neither: the task's "
                         f"test set). Received inputs={type(inputs).__name__}, labels={type(labels).__name__}")
    if inputs is None:
        inputs, labels = task.load(data_dir)["test"]
    return tasks.evaluate(model, task, inputs, labels, levels, seed, batch_size, features)


def _evaluate_mnist(model, images01, labels, levels=NOISE_LEVELS, seed=0, batch_size=512):
    return _evaluate_task(model, _task("mnist"), images01, labels, levels, seed, batch_size)


def evaluate_audio_noise(model, waveforms, labels, levels=NOISE_LEVELS, seed=0, batch_size=512,
                         features=None):
    """Speech: `evaluate_noise(model, "fsdd", waveforms, labels, levels, seed, batch_size, features)`.

    Args:
        model: a Keras model taking raw `(N, 16000)` waveforms (e.g.
            `keras_sparse.models.waveform_model`), or spectrograms if
            `features` is given.
        waveforms: test clips `(N, 16000)` float32 in [-1, 1].
        labels: int labels `(N,)`.
        levels, seed, batch_size: as `evaluate_noise`.
        features: optional function from waveforms to the model's input
            (`keras_sparse.audio.log_mel_spectrogram`), applied after the noise.
    """
    return _evaluate_task(model, _task("fsdd"), waveforms, labels, levels, seed, batch_size, features)


def clean_accuracy(result):
    """The accuracy at level 0.0, the clean test set, of a `score_levels` result."""
    if 0.0 not in result["levels"]:
        raise ValueError(f"`result` must include the clean level 0.0. Received levels={result['levels']}")
    return result["accuracy"][result["levels"].index(0.0)]


SELECTION_RULES = ("paper", "last")


def select_epoch(records, rule):
    """The epoch a reproduction reports, from per-epoch `score_levels` records
    (each with an `epoch` key), by `rule`:

    - `"paper"`: the epoch with the highest clean test accuracy (level 0), as
      the paper's code picked every seed's row. Optimistic: the test set
      chooses the epoch. On a tie the first such epoch wins (ours: the reference's
      tie-break is not known).
    - `"last"`: the last epoch, the honest number.
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"`rule` must be one of {SELECTION_RULES}. Received: rule={rule!r}")
    records = list(records)
    if not records:
        raise ValueError("`records` must hold at least one epoch's evaluation.")
    if rule == "last":
        return records[-1]
    return records[int(np.argmax([clean_accuracy(r) for r in records]))]
