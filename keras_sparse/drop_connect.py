"""DropConnect (Wan et al., 2013, *Regularization of Neural Networks using
DropConnect*): a dense layer whose weights are dropped at random, a fresh mask
every training step. The control for sparse weights: a *fixed* random mask
(`keras_sparse.sparse_weights`) against a new one each step.

`drop_connect_matmul` is the math as a pure function; `DropConnectDense` draws
the masks and owns the weights.
"""

import keras
from keras import ops

from keras_sparse._validation import ConfigErrorsAsValueError, check_float, check_int

_serializable = keras.saving.register_keras_serializable(package="keras_sparse")


def drop_connect_matmul(inputs, kernel, keep_mask, rate):
    """`inputs @ (keep_mask * kernel) / (1 - rate)`: the training pre-activation
    (without bias) of `DropConnectDense`.

    Args:
        inputs: `(..., in)`.
        kernel: `(in, units)`.
        keep_mask: boolean `(in, units)`, True for the weights kept.
        rate: the fraction of weights dropped, `0 <= rate < 1`.
    """
    kernel = ops.convert_to_tensor(kernel)
    kept = ops.where(keep_mask, kernel, ops.zeros_like(kernel))
    return ops.matmul(inputs, kept) / ops.cast(1.0 - rate, inputs.dtype)


def draw_keep_mask(shape, rate, seed):
    """A boolean mask of `shape`, each entry True (kept) with probability
    `1 - rate`, independently: `keras.random.uniform(shape, seed=seed) >= rate`."""
    return keras.random.uniform(shape, seed=seed) >= rate


@_serializable
class DropConnectDense(ConfigErrorsAsValueError, keras.layers.Layer):
    """A dense layer with DropConnect: every training step drops each weight
    with probability `rate`, with a fresh random mask.

    With kernel `W` `(in, units)`, bias `b` and keep probability
    `p = 1 - rate`:

        training:   M ~ Bernoulli(p), shape (in, units), drawn anew each call
                    y = activation(x @ (M * W) / p + b)
        inference:  y = activation(x @ W + b)          (a plain `Dense`)

    so the inference pre-activation is the expectation of the training one,
    `E[x @ (M * W) / p] = x @ W` ("inverted" scaling, as `keras.layers.Dropout`
    does). That is Wan et al.'s *mean inference* (train with `M * W`, infer
    with `p * W`) with the kernel stored as `W / p`: the same family of
    functions, but the saved kernel is the one deployed (SavedModel, TFLite:
    one `FULLY_CONNECTED`). Their second rule, a Gaussian moment-matched
    sample average of the activations, is not implemented: it is random at
    inference and costs one activation per sample drawn. One mask serves the
    whole batch (Wan et al. draw one per example, at `batch` times the memory);
    the gradient reaches the kept weights only,
    `dL/dW = (x^T @ dL/du) * M / p`, and the bias always.

    The mask's random state (a `keras.random.SeedGenerator`) is saved with
    the weights (`.keras`, `save_weights`, `BackupAndRestore`), so resumed
    training draws the masks an uninterrupted run would.

    Args:
        units: output dimension.
        rate: fraction of the weights dropped in each training step,
            `0 <= rate < 1` (0 is a plain `Dense`).
        seed: integer seed of the masks, or None (drawn from Python's RNG,
            seeded by `keras.utils.set_random_seed`).
        activation: as for `keras.layers.Dense`.
        use_bias: as for `keras.layers.Dense`.
        kernel_initializer: as for `keras.layers.Dense`.
        bias_initializer: as for `keras.layers.Dense`.
        kernel_regularizer: as for `keras.layers.Dense`.
        bias_regularizer: as for `keras.layers.Dense`.
        kernel_constraint: as for `keras.layers.Dense`.
        bias_constraint: as for `keras.layers.Dense`.

    Input shape:
        `(batch, ..., in)`.

    Output shape:
        `(batch, ..., units)`.

    Example:

    >>> import numpy as np
    >>> layer = DropConnectDense(3, rate=0.5, seed=0, kernel_initializer="ones")
    >>> np.asarray(layer(np.ones((1, 4), "float32"))).tolist()  # inference: a plain Dense
    [[4.0, 4.0, 4.0]]
    """

    def __init__(
        self,
        units,
        *,
        rate=0.5,
        seed=None,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units, 1)
        self.rate = check_float("rate", rate, 0, 1, False, True)
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                "DropConnectDense expects inputs of rank >= 2 (batch, ..., in) with a known "
                f"last dimension; received input_shape={tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1], self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_shape[-1]})

    def call(self, inputs, training=None):
        if training and self.rate > 0:
            keep = draw_keep_mask(ops.shape(self.kernel), self.rate, self.seed_generator)
            outputs = drop_connect_matmul(inputs, self.kernel, keep, self.rate)
        else:
            outputs = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    # The mask's random state is saved after the weights (Keras saves a
    # layer's seed generators with neither).

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[str(len(self.weights))] = self.seed_generator.state

    def load_own_variables(self, store):
        count = len(self.weights)
        if len(store.keys()) != count + 1:
            return super().load_own_variables(store)  # raises Keras' own count error
        for i, variable in enumerate(self.weights):
            variable.assign(store[str(i)])
        self.seed_generator.state.assign(store[str(count)])

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            rate=self.rate,
            seed=self.seed,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
            kernel_constraint=keras.constraints.serialize(self.kernel_constraint),
            bias_constraint=keras.constraints.serialize(self.bias_constraint),
        )
        return config
