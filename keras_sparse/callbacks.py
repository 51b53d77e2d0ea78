"""Callbacks: boost-strength decay and entropy logging for k-winners layers,
the paper's per-epoch test-set evaluation, and the callbacks that change the
learned masks of sparse-weights layers during `fit` (`MagnitudePruning`,
`RigL`, `SET`; the rules are in `keras_sparse.pruning`)."""

import keras
import numpy as np

from keras_sparse import metrics, noise, pruning
from keras_sparse._validation import check_bool, check_float, check_int
from keras_sparse.constraints import candidate_scores, kept_per_run
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


def learned_mask_layers(model):
    """Every sparse-weights layer of `model` built with `mask="learned"`, in
    the order Keras tracks them (see
    `keras_sparse.constraints.sparse_weight_layers`)."""
    from keras_sparse.constraints import LearnedSparseWeights, sparse_weight_layers

    return [layer for layer in sparse_weight_layers(model)
            if isinstance(layer.kernel_constraint, LearnedSparseWeights) and layer.built]


class _MaskUpdates(keras.callbacks.Callback):
    """Calls `_update(step, layers, kernels)` (the layers' kernels as NumPy,
    read once) after every optimizer step `step` (the
    optimizer's `iterations` after it) for which `_due(step)`, and once
    before the first step when `_due(0)`.

    The step is read from the optimizer's `iterations` at the start of every
    epoch (after `BackupAndRestore` has restored it), so a resumed run
    updates the masks at the same steps as an uninterrupted one, and every
    update is a function of the step, the weights and the masks only. On
    JAX the compiled training step holds the masks as constants (see
    `keras_sparse.constraints.LearnedSparseWeights`): it is compiled again
    after every update. A kernel holding NaN or inf (training diverged)
    stops the update with a `ValueError` before any mask changes: a
    magnitude of NaN has no rank.
    """

    def on_train_begin(self, logs=None):
        layers = learned_mask_layers(self.model)
        if not layers:
            raise ValueError(
                f"{type(self).__name__} changes the masks of sparse-weights layers built with "
                "mask='learned' (e.g. `SparseDense(..., mask='learned')`, or "
                "`keras_sparse.sparsify(model, ...)`); the model has none."
            )
        self._check_layers(layers)
        self._layers = layers

    def _check_layers(self, layers):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if self._epoch_start == 0 and self._due(0):
            self._apply(0)

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch_start + batch + 1
        if self._due(step):
            self._apply(step)

    def _apply(self, step):
        model = self.model  # on JAX, brings the training state back into the variables
        kernels = [keras.ops.convert_to_numpy(layer._kernel) for layer in self._layers]
        diverged = [layer.name for layer, kernel in zip(self._layers, kernels) if not np.isfinite(kernel).all()]
        if diverged:
            raise ValueError(f"{type(self).__name__} at step {step}: the kernels of layers {diverged} hold NaN "
                             "or inf (training diverged); every mask is left as it was.")
        self._update(step, self._layers, kernels)
        if keras.backend.backend() == "jax":
            model.make_train_function(force=True)


class MagnitudePruning(_MaskUpdates):
    """Gradual magnitude pruning (Zhu & Gupta, 2017) of every layer with
    `mask="learned"`.

    At optimizer steps `t = begin_step, begin_step + frequency, ...` below
    `end_step`, and at `end_step` itself, each layer's mask becomes
    `keras_sparse.pruning.magnitude_mask(kernel, mask, s(t))`: it keeps the
    `round((1 - s(t)) * candidates)` largest-magnitude weights (or blocks)
    of the layer among those it keeps, with

        p = (t - begin_step) / (end_step - begin_step)
        s(t) = final_sparsity + (initial_sparsity - final_sparsity) * (1 - p) ** 3

    and the kernel is zeroed outside it. Under an N:M pattern `(n, m)` every
    run of `m` inputs keeps `min(n, round((1 - s(t)) * m))` instead. With
    `global_=True` the weights of all layers are ranked together and the
    model keeps `round((1 - s(t)) * N)` of its `N` masked weights. After
    `end_step` the masks stay as they are. A step `t` is the optimizer's
    `iterations` after the step (an update at `t = 0` happens before the
    first step).

    Args:
        final_sparsity: the target, in [0, 1).
        begin_step: first update step, an integer >= 0.
        end_step: last update step, > begin_step.
        frequency: steps between updates, >= 1.
        initial_sparsity: `s(begin_step)`, in [0, final_sparsity].
        global_: rank the weights of all layers together (layers without
            block or pattern only).
    """

    def __init__(self, final_sparsity, begin_step, end_step, frequency=100, initial_sparsity=0.0,
                 global_=False):
        super().__init__()
        self.final_sparsity = check_float("final_sparsity", final_sparsity, 0, 1, False, True)
        self.begin_step = check_int("begin_step", begin_step, 0)
        self.end_step = check_int("end_step", end_step, self.begin_step + 1)
        self.frequency = check_int("frequency", frequency, 1)
        self.initial_sparsity = check_float("initial_sparsity", initial_sparsity, 0, self.final_sparsity)
        self.global_ = check_bool("global_", global_)

    def sparsity_at(self, step):
        """`s(step)`, the schedule's sparsity."""
        return pruning.polynomial_sparsity(step, self.final_sparsity, self.begin_step, self.end_step,
                                           self.initial_sparsity)

    def _due(self, step):
        return self.begin_step <= step <= self.end_step and (
            (step - self.begin_step) % self.frequency == 0 or step == self.end_step)

    def _check_layers(self, layers):
        if self.global_:
            patterned = [layer.name for layer in layers if layer.block or layer.pattern]
            if patterned:
                raise ValueError(f"MagnitudePruning(global_=True) ranks single weights; layers {patterned} "
                                 "have a block or pattern. Use global_=False.")
        for layer in layers:  # the final masks must be possible (checked before any step)
            if layer.pattern is not None:
                c = layer.block[1] if layer.block else 1
                if kept_per_run(self.final_sparsity, layer.block, layer.pattern) < c:
                    raise ValueError(
                        f"`final_sparsity`={self.final_sparsity} would leave no weight in a run of "
                        f"{layer.pattern[1]} inputs of layer '{layer.name}' (pattern={layer.pattern}).")

    def _update(self, step, layers, kernels):
        sparsity = self.sparsity_at(step)
        if self.global_:
            masks = pruning.global_magnitude_masks(kernels, [l.kernel_mask for l in layers], sparsity)
        else:
            masks = [pruning.magnitude_mask(k, l.kernel_mask, sparsity, l.block, l.pattern)
                     for l, k in zip(layers, kernels)]
        for layer, mask in zip(layers, masks):
            layer.set_mask(mask)


class _DropAndGrow(_MaskUpdates):
    """Drop-and-grow updates at steps `t = update_every, 2 * update_every, ...`
    below `end_step` (`None`: no end); see `keras_sparse.pruning.drop_and_grow`."""

    def __init__(self, update_every, drop_fraction, end_step):
        super().__init__()
        self.update_every = check_int("update_every", update_every, 1)
        self.drop_fraction = check_float("drop_fraction", drop_fraction, 0, 1)
        self.end_step = None if end_step is None else check_int("end_step", end_step, 1)

    def _due(self, step):
        return step > 0 and step % self.update_every == 0 and (self.end_step is None or step < self.end_step)

    def _update(self, step, layers, kernels):
        fraction = self.drop_fraction_at(step)
        scores = self._grow_scores(step, layers)  # (RigL's dense gradients leave the kernels as they are)
        for layer, kernel, grow in zip(layers, kernels, scores):
            mask, kernel = pruning.drop_and_grow(kernel, layer.kernel_mask, fraction, grow,
                                                 layer.block, layer.pattern)
            layer._kernel.assign(kernel)
            layer.set_mask(mask)


class RigL(_DropAndGrow):
    """RigL (Evci et al., 2020, "Rigging the Lottery"): every `update_every`
    steps until `end_step`, each layer with `mask="learned"` drops, in every
    unit (or run of `m` inputs under an N:M pattern), the fraction `f(t)` of
    its kept weights of smallest magnitude and grows as many where the
    magnitude of the *dense* gradient is largest; grown weights start at 0
    and every unit keeps its number of weights (`keras_sparse.pruning.drop_and_grow`),
    with the cosine-annealed fraction

        f(t) = drop_fraction / 2 * (1 + cos(pi * t / end_step))

    The dense gradient is computed here, with the backend's autodiff
    (TensorFlow, JAX and PyTorch; `keras_sparse.pruning.dense_gradients`), on
    one batch of `data`: update number `j = t / update_every` (1, 2, ...)
    uses the samples `[(j - 1) * batch_size, j * batch_size)` modulo
    `len(x)`, so a resumed run uses the same batches.

    Args:
        update_every: steps between updates (RigL's Delta T), >= 1.
        drop_fraction: `f(0)`, in [0, 1].
        end_step: the step from which the masks stay as they are, >= 1.
        data: `(x, y)` NumPy arrays, e.g. a slice of the training set.
        batch_size: samples per gradient, >= 1 (default: all of `x`).
    """

    def __init__(self, update_every=100, drop_fraction=0.3, *, end_step, data, batch_size=None):
        super().__init__(update_every, drop_fraction, end_step)
        if not isinstance(data, (tuple, list)) or len(data) != 2 or len(data[0]) != len(data[1]) or not len(data[0]):
            raise ValueError("`data` must be a pair (x, y) of arrays of the same non-zero length. "
                             f"Received: data of type {type(data).__name__}")
        self.data = (np.asarray(data[0]), np.asarray(data[1]))
        if np.issubdtype(self.data[0].dtype, np.floating) and not np.isfinite(self.data[0]).all():
            raise ValueError("`data` x must be finite: a NaN or inf input makes the dense gradient, "
                             "hence every grow score, NaN.")
        self.batch_size = len(self.data[0]) if batch_size is None else check_int("batch_size", batch_size, 1)

    def drop_fraction_at(self, step):
        return pruning.cosine_drop_fraction(step, self.drop_fraction, self.end_step)

    def _grow_scores(self, step, layers):
        x, y = self.data
        start = ((step // self.update_every - 1) * self.batch_size) % len(x)
        index = (start + np.arange(min(self.batch_size, len(x)))) % len(x)
        grads = pruning.dense_gradients(self.model, [l._kernel for l in layers], x[index], y[index])
        return [candidate_scores(np.abs(g), l.block, l.pattern) for l, g in zip(layers, grads)]


class SET(_DropAndGrow):
    """SET (Mocanu et al., 2018, Sparse Evolutionary Training): as `RigL`
    with a constant `drop_fraction` and random regrowth: the grow scores are
    raw PCG64 draws seeded by `(seed, step, layer index)`
    (`keras_sparse.pruning.random_scores`).

    Args:
        update_every: steps between updates, >= 1.
        drop_fraction: fraction of each unit's kept weights replaced, in [0, 1].
        end_step: the step from which the masks stay as they are (`None`: never).
        seed: integer >= 0.
    """

    def __init__(self, update_every=100, drop_fraction=0.3, *, end_step=None, seed=0):
        super().__init__(update_every, drop_fraction, end_step)
        self.seed = check_int("seed", seed, 0)

    def drop_fraction_at(self, step):
        return self.drop_fraction

    def _grow_scores(self, step, layers):
        return [pruning.random_scores(tuple(l._kernel.shape), self.seed, step, i, l.block, l.pattern)
                for i, l in enumerate(layers)]
