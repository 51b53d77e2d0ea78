"""Callbacks: boost-strength decay and entropy logging for k-winners layers,
and the paper's per-epoch test-set evaluation."""

import keras

from keras_sparse import metrics, noise
from keras_sparse._validation import check_int
from keras_sparse.kwinners import kwinners_layers  # noqa: F401  (also public here, as before)


class UpdateBoostStrength(keras.callbacks.Callback):
    """The paper's per-epoch boost decay, set from the epoch number of `fit`.

    In every k-winners layer of the model:

        during epoch e (0-based):  boost_strength = initial * factor ** e
        after it:                  boost_strength = initial * factor ** (e + 1)

    with `initial` and `factor` the layer's `boost_strength` and
    `boost_strength_factor` arguments. The value depends on the epoch number
    alone, never on the value before, so a run resumed by `BackupAndRestore`
    (or by `fit(initial_epoch=...)` on a reloaded checkpoint) equals an
    uninterrupted one, whatever the order of the callbacks. As with
    `keras.callbacks.LearningRateScheduler`, the epoch number is `fit`'s: to
    continue a schedule across `fit` calls pass `initial_epoch` (a second
    `fit(epochs=1)` starts again at epoch 0).

    The decayed value is set after the epoch's last training batch, when
    `fit` knows its number of batches (`params["steps"]`), so validation,
    and every callback's `on_epoch_end` (a `ModelCheckpoint`, an
    `EpochNoiseScore`), whatever the order of the callbacks, sees the value
    the live model holds after the epoch: decay, then test, as the paper's
    code did. For a dataset of unknown length it is set in this callback's
    `on_epoch_end`; list it first then.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._set(epoch)

    def on_train_batch_end(self, batch, logs=None):
        steps = self.params.get("steps") if self.params else None
        if steps and batch + 1 >= steps:
            self._set(self._epoch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._set(epoch + 1)

    def _set(self, epoch):
        for layer in kwinners_layers(self.model):
            layer.set_boost_strength_for_epoch(epoch)


class DutyCycleEntropy(keras.callbacks.Callback):
    """Logs, after every epoch, each k-winners layer's duty-cycle entropy
    relative to its maximum, as `"<layer name>_entropy"`:

        binary_entropy(duty_cycles) / max_entropy(m, m * k / n)

    with `m` duty cycles (units, or channels for feature maps) and `k` winners
    among `n` competing units, so that `k / n` is each duty cycle's target.
    When `k = n` (every unit always wins) the maximum is 0 and it logs 1.0.

    The values go into the epoch's `logs`, so `History` and a `TensorBoard`
    callback listed after this one record them.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for layer in kwinners_layers(self.model):
            m = layer.duty_cycles.shape[0]
            maximum = float(metrics.max_entropy(m, m * layer.k / layer.n))
            entropy = float(metrics.binary_entropy(layer.duty_cycles))
            # k = n: every unit always wins, the maximum is 0 (not 0 / 0 = NaN).
            logs[f"{layer.name}_entropy"] = entropy / maximum if maximum > 0 else 1.0


class EpochNoiseScore(keras.callbacks.Callback):
    """Scores the model after every epoch on fixed noisy test sets, as the
    paper's code did (it evaluated the test set after every epoch and kept,
    per seed, the epoch of highest test accuracy; `keras_sparse.noise.select_epoch`).

    Each epoch appends `keras_sparse.noise.score_levels(model, noisy_sets,
    labels)` with its 1-based `epoch` to `self.records`, and logs
    `test_accuracy` (the clean level 0.0 when present) and `noise_score`.
    One instance may serve several `fit` calls (e.g. a first epoch at another
    batch size): the records carry on.

    Args:
        noisy_sets: `(level, model inputs)` pairs, e.g.
            `list(keras_sparse.noise.noisy_test_sets(images01, seed=0))`;
            kept in memory, so every epoch sees the same noise.
        labels: int labels `(N,)`.
        batch_size: prediction batch size.
    """

    def __init__(self, noisy_sets, labels, batch_size=512):
        super().__init__()
        self.noisy_sets = list(noisy_sets)
        if not self.noisy_sets:
            raise ValueError("`noisy_sets` must hold at least one (level, inputs) pair.")
        self.labels = noise.check_labels(labels)
        for level, inputs in self.noisy_sets:
            if len(inputs) != len(self.labels):
                raise ValueError(f"`labels` must have one entry per input: {len(inputs)} inputs at "
                                 f"level {level}, received {len(self.labels)} labels.")
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.records = []

    def on_epoch_end(self, epoch, logs=None):
        record = noise.score_levels(self.model, self.noisy_sets, self.labels, self.batch_size)
        record["epoch"] = epoch + 1
        self.records.append(record)
        if logs is not None:
            if 0.0 in record["levels"]:
                logs["test_accuracy"] = noise.clean_accuracy(record)
            logs["noise_score"] = record["noise_score"]
