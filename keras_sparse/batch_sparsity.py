"""Sparsity across the batch: WTA lifetime sparsity and BatchTopK.

k-winners (`keras_sparse.kwinners`) chooses winners within each sample. The two
layers here choose them across the samples of a training batch instead, and
so enforce that units are active in some samples and not others without
duty-cycle state:

- `LifetimeSparsity` (Makhzani & Frey, 2015, *Winner-Take-All Autoencoders*):
  each unit keeps its largest activations across the batch.
- `BatchTopK` (Bussmann, Leask & Nanda, 2024, *BatchTopK Sparse
  Autoencoders*): the largest `k * batch` activations of the whole batch,
  whichever samples and units they belong to; inference thresholds each value
  at a running estimate of the training threshold.

`lifetime_sparsity`, `batch_topk` and `jump_relu` are the math as pure
functions; the layers add the batch-size arithmetic and `BatchTopK`'s state.
Selection is by the k-th largest value (`keras_sparse.selection.kth_largest`):
every value tied with it is kept too, a NaN is never selected and stays NaN in
the output, a non-selected `±inf` outputs 0, and the gradient is the upstream
gradient at the kept values, 0 elsewhere.
"""

import math

import keras
from keras import ops

from keras_sparse._validation import ConfigErrorsAsValueError, check_float, check_int
from keras_sparse.selection import kth_largest

_serializable = keras.saving.register_keras_serializable(package="keras_sparse")


def _keep_top(values, k, portable):
    """`values` (float, `(rows, n)`) at the entries >= the k-th largest of their
    row (NaN ranked below -inf, never kept; it stays NaN), 0 elsewhere; and the
    boolean mask of the kept entries."""
    ranked = ops.where(ops.isnan(values), float("-inf"), values)
    threshold = ops.stop_gradient(kth_largest(ranked, k, portable=portable))
    kept = ranked >= threshold
    kept = ops.logical_and(kept, ops.logical_not(ops.isnan(values)))
    outputs = ops.where(ops.logical_or(kept, ops.isnan(values)), values, ops.zeros_like(values))
    return outputs, kept


def lifetime_sparsity(x, k, portable=True):
    """Each unit keeps its `k` largest activations across the batch.

    For `x` of shape `(batch, ...)`, every position `j` of the non-batch axes
    is a unit, and

        t_j     = k-th largest of x[:, j]          (over the batch)
        y[b, j] = x[b, j]  if x[b, j] >= t_j  else 0
        dy/dx   = 1 where kept, 0 elsewhere

    Ties with `t_j` are kept (a unit may keep more than `k`); NaN is never
    kept and stays NaN; a non-kept `±inf` outputs 0.

    Args:
        x: float tensor `(batch, ...)`, rank >= 2.
        k: integer (or scalar integer tensor) in `[1, batch]`.
        portable: as for `keras_sparse.selection.kth_largest` (True: a graph
            that may be exported).
    """
    shape = ops.shape(x)
    by_unit = ops.transpose(ops.reshape(x, (shape[0], -1)))  # (units, batch)
    outputs, _ = _keep_top(by_unit, k, portable)
    return ops.reshape(ops.transpose(outputs), shape)


def batch_topk(x, k_total, portable=True):
    """The `k_total` largest positive values of the whole batch; and the
    smallest value kept.

    For `x` of shape `(batch, ...)`, all `batch * units` values compete:

        t        = k_total-th largest of x (all values, flattened)
        y        = x  where x >= t and x > 0,  else 0
        dy/dx    = 1 where kept, 0 elsewhere
        min_kept = min(y where kept), +inf if nothing is kept

    i.e. TopK over `relu(x)` across the batch (Bussmann et al. apply a ReLU
    first). Ties with `t` are kept; NaN is never kept and stays NaN.

    Args:
        x: float tensor `(batch, ...)`.
        k_total: integer (or scalar integer tensor) in `[1, x.size]`:
            `k * batch` for `k` active values per sample on average.
        portable: as for `keras_sparse.selection.kth_largest`.

    Returns:
        `(y, min_kept)`, `min_kept` a float32 scalar.
    """
    shape = ops.shape(x)
    outputs, kept = _keep_top(ops.reshape(x, (1, -1)), k_total, portable)
    positive = ops.logical_and(kept, outputs > 0)
    outputs = ops.where(ops.logical_or(positive, ops.isnan(outputs)), outputs, ops.zeros_like(outputs))
    min_kept = ops.min(ops.where(positive, ops.cast(outputs, "float32"), float("inf")), initial=float("inf"))
    return ops.reshape(outputs, shape), min_kept


def jump_relu(x, threshold):
    """`BatchTopK`'s inference: `y = x where x >= threshold and x > 0, else 0`
    (a JumpReLU at `threshold`; a plain ReLU for `threshold <= 0`). NaN stays
    NaN; the gradient is 1 where kept, 0 elsewhere."""
    threshold = ops.cast(threshold, x.dtype)
    # comparisons only (TFLite builtins); NaN compares False, so it passes
    dropped = ops.logical_or(x < threshold, x <= 0)
    return ops.where(dropped, ops.zeros_like(x), x)


def lifetime_k(percent_on, batch):
    """Activations each unit keeps in a batch of `batch`:
    `max(1, round(percent_on * batch))`, at most `batch` (Python's `round`,
    half to even; a Python int when `batch` is one, else an int32 tensor)."""
    if isinstance(batch, int):
        return min(max(1, round(percent_on * batch)), batch)
    rounded = ops.cast(ops.round(ops.cast(batch, "float64") * percent_on), "int32")
    return ops.minimum(ops.maximum(rounded, 1), ops.cast(batch, "int32"))


def _check_rank(layer, input_shape):
    if len(input_shape) < 2 or None in input_shape[1:]:
        raise ValueError(
            f"{type(layer).__name__} expects inputs of rank >= 2 (batch, ...) with every "
            f"non-batch dimension known; received input_shape={tuple(input_shape)}"
        )


def _as_float(layer, inputs):
    if not keras.backend.is_float_dtype(inputs.dtype):  # as `Dense` does
        inputs = ops.cast(inputs, layer.compute_dtype)
    return inputs


@_serializable
class LifetimeSparsity(ConfigErrorsAsValueError, keras.layers.Layer):
    """WTA lifetime sparsity (Makhzani & Frey, 2015): in training, each unit
    keeps its top `percent_on` fraction of activations across the batch.

    On `(batch, ...)` every position of the non-batch axes is a unit. In a
    training call with batch size `B`:

        k       = min(max(1, round(percent_on * B)), B)
        y[:, j] = x[:, j] at its k largest values over the batch, 0 elsewhere

    (see `lifetime_sparsity`: ties kept, gradient 1 where kept). Inference is
    the identity, as in the paper, whose trained encoder is used with the
    sparsity constraint off: a unit's activation on one sample cannot depend
    on the other samples of an inference batch. Put it after a ReLU (the
    paper's FC-WTA autoencoder does) so that inference passes non-negative
    values. The layer has no state. The selection is per replica under
    `tf.distribute` (each replica's batch).

    Args:
        percent_on: fraction of the batch in which each unit stays active,
            `0 < percent_on <= 1` (1 is the identity).

    Input shape:
        `(batch, ...)`, any rank >= 2.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [3.0, 2.0], [2.0, 4.0], [0.5, 1.0]], "float32")
    >>> np.asarray(LifetimeSparsity(percent_on=0.25)(x, training=True)).tolist()
    [[0.0, 5.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, percent_on=0.05, **kwargs):
        super().__init__(**kwargs)
        self.percent_on = check_float("percent_on", percent_on, 0, 1, True, False)

    def build(self, input_shape):
        _check_rank(self, input_shape)

    def call(self, inputs, training=None):
        inputs = _as_float(self, inputs)
        if not training:
            return inputs
        batch = ops.shape(inputs)[0]
        if isinstance(batch, int) and batch == 0:  # an empty batch: nothing to select
            return inputs
        return lifetime_sparsity(inputs, lifetime_k(self.percent_on, batch), portable=False)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "percent_on": self.percent_on}


@_serializable
class BatchTopK(ConfigErrorsAsValueError, keras.layers.Layer):
    """BatchTopK (Bussmann et al., 2024): in training, the `k * batch` largest
    positive values of the whole batch; at inference, the values above a
    learned threshold.

    On `(batch, ...)` all non-batch positions are units (`n` of them).
    Training, with batch size `B` (see `batch_topk`):

        t = (k * B)-th largest of the B * n values
        y = x where x >= t and x > 0, else 0       (k active per sample on average)

    Inference (and `trainable=False`, as `BatchNormalization`), per value
    (see `jump_relu`):

        y = x where x >= threshold and x > 0, else 0

    State (non-trainable weights, saved with the model like
    `BatchNormalization`'s moving statistics): `threshold` (float32 scalar,
    starts at 0: inference is a ReLU before training) and `threshold_updates`
    (integer, batches that updated it). Each training batch with a kept
    positive value updates them with `m`, the smallest value it kept (the
    paper's statistic, the minimum positive activation of the batch's top
    `k * B`):

        threshold_updates += 1
        w = max(1 - momentum, 1 / threshold_updates)
        threshold = threshold + w * (m - threshold)

    so the threshold is the plain average of `m` over the first
    `1 / (1 - momentum)` batches (Bussmann et al. average it over batches;
    no bias towards the initial 0) and an exponential moving average with
    `momentum` after. A batch that keeps nothing positive changes nothing.
    The selection is per replica under `tf.distribute`.

    Args:
        k: active values per sample on average, an integer in `[1, n]`
            (checked at build).
        momentum: of the threshold's moving average, `0 <= momentum < 1`.

    Input shape:
        `(batch, ...)`, any rank >= 2, the non-batch dimensions known.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> layer = BatchTopK(k=1)
    >>> x = np.array([[1.0, 5.0], [3.0, 2.0]], "float32")
    >>> np.asarray(layer(x, training=True)).tolist(), float(layer.threshold.numpy())
    ([[0.0, 5.0], [3.0, 0.0]], 3.0)
    """

    def __init__(self, k, *, momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.k = check_int("k", k, 1)
        self.momentum = check_float("momentum", momentum, 0, 1, False, True)

    def build(self, input_shape):
        _check_rank(self, input_shape)
        self.n = math.prod(input_shape[1:])
        if self.k > self.n:
            raise ValueError(
                f"`k` must be in [1, {self.n}] (the units of one sample of input_shape="
                f"{tuple(input_shape)}) in layer {self.name!r}. Received: k={self.k}"
            )
        state = dict(trainable=False, autocast=False, aggregation="only_first_replica")
        self.threshold = self.add_weight(name="threshold", shape=(), initializer="zeros", dtype="float32", **state)
        self.threshold_updates = self.add_weight(
            name="threshold_updates", shape=(), initializer="zeros", dtype="int32", **state
        )

    def call(self, inputs, training=None):
        inputs = _as_float(self, inputs)
        if not (training and self.trainable):
            return jump_relu(inputs, self.threshold)
        batch = ops.shape(inputs)[0]
        if isinstance(batch, int) and batch == 0:  # an empty batch: nothing to select
            return inputs
        outputs, min_kept = batch_topk(inputs, self.k * batch, portable=False)
        self._update_threshold(min_kept)
        return outputs

    def _update_threshold(self, min_kept):
        found = ops.isfinite(min_kept)
        updates = self.threshold_updates + ops.cast(found, "int32")
        weight = ops.maximum(1.0 - self.momentum, 1.0 / ops.cast(ops.maximum(updates, 1), "float32"))
        threshold = ops.convert_to_tensor(self.threshold)
        moved = threshold + ops.cast(weight, "float32") * (ops.where(found, min_kept, 0.0) - threshold)
        self.threshold.assign(ops.where(found, moved, threshold))
        self.threshold_updates.assign(updates)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "k": self.k, "momentum": self.momentum}
