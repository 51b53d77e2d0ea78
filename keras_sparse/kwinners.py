"""Sparse activations: the k-winners-take-all layers (Ahmad & Scheinkman, 2019).

`KWinners` (the last axis of `(batch, ..., n)`: dense layers, sequences,
tokens) and `KWinners1D` / `KWinners2D` / `KWinners3D` (feature maps, per
position or per sample) keep the k most strongly boosted units and zero the
rest; `keras_sparse.ops` holds the math, these layers own its state. One base
class holds the state and its update; each subclass only says which axis holds
the units (channels) and how the rows compete.
"""

import math

import keras
import ml_dtypes
import numpy as np
from keras import ops

from keras_sparse import ops as sparse_ops
from keras_sparse._precision import float64_context
from keras_sparse._validation import (
    MAX_BOOST_STRENGTH,
    ConfigErrorsAsValueError,
    check_bool,
    check_float,
    check_inference_density,
    check_int,
    parent_arguments,
    stored_values,
)

_serializable = keras.saving.register_keras_serializable(package="keras_sparse")

# The training gradients of the k-winners layers (their `gradient` argument).
GRADIENTS = ("winners", "straight_through")


class KWinnersBase(ConfigErrorsAsValueError, keras.layers.Layer):
    """Base class of every k-winners layer: the state and its training-time update.

    The extension seam of the k-winners family. A new variant subclasses it
    and defines its geometry in four hooks; arguments, validation, `build`
    (`k`, `k_inference`, the state weights), `call`, the duty-cycle update,
    `get_config`, `kwinners_layers`, the callbacks and saving come with it:

    - `_check_input_shape(input_shape)`: raise `ValueError` for a rank or an
      unknown dimension the layer cannot take.
    - `_competing_units(input_shape)`: `n`, the number of units among which
      the winners of one row are chosen; then `k = round(n * percent_on)`
      and `k_inference = clip(round(n * percent_on * k_inference_factor), 1, n)`.
    - `_channel_axis()`: the axis of the units (channels), one duty cycle each;
      the duty cycles count over every other axis.
    - `_activate(inputs, k, training)`: the `k` winners of each row, boosted
      by `self.duty_cycles` and `self.boost_strength` (a `keras_sparse.ops`
      function with `portable=not training, differentiable=training`: the
      fastest kernel and the custom gradient in training, the inference
      form otherwise, with the portable kernels in graphs that may be
      exported and the fastest in Keras' own `evaluate`/`predict` graphs,
      see `keras_sparse.selection`).

    `KWinners` (rows along the last axis) and `KWinners1D/2D/3D` (feature
    maps) are its subclasses. Register a subclass with
    `keras.saving.register_keras_serializable` so saved models load it.

    Non-trainable weights, saved with the model (like `BatchNormalization`'s
    moving statistics):

    - `duty_cycles` (float32, one per unit or channel): the running fraction of
      samples (and positions) in which the unit was active (`y > 0`).
    - `boost_strength` (float32 scalar): the current `b` in
      `boosted = x * exp(-b * duty_cycles)`; starts at the constructor's
      `boost_strength` and, with the `keras_sparse.callbacks.UpdateBoostStrength`
      callback, is `boost_strength * boost_strength_factor ** epoch` during
      epoch `epoch` (0-based) of `fit`.
    - `learning_iterations` (int64; int32 on JAX without x64): number of
      training samples seen.

    Each call with `training=True` (and `trainable=True`, as for
    `BatchNormalization`) picks `k` winners and then updates, with
    `batch` the global batch size (summed over `tf.distribute` replicas):

        learning_iterations += batch
        period = min(duty_cycle_period, learning_iterations)
        duty_cycles = (duty_cycles * (period - batch) + active_count) / period

    (computed in float64, rounded once to float32: the same on every backend)
    where `active_count` counts `y > 0` per unit (channel) over the batch and
    every other position, divided by the positions of one sample (1 for
    `(batch, n)`; steps, `h*w` or `d*h*w` for feature maps; the leading axes of
    `KWinners` on `(batch, ..., n)`), so its target is `percent_on`. An empty
    batch changes nothing. Inference picks `k_inference` winners and changes
    nothing. Not thread-safe in training: two `fit`s sharing a layer at once
    read, then assign, the duty cycles and lose each other's updates.

    Masking (`supports_masking`): a Keras mask (e.g. from
    `Embedding(mask_zero=True)` or `Masking`) of shape `(batch,)` or
    `(batch, *positions)` (the leading axes of `KWinners`' input, the spatial
    axes of a feature map, without the channels) marks positions that are not
    there. A masked position never wins (its units take the lowest finite
    value of the dtype, below every real activation), outputs 0 and counts in neither the
    active counts nor the positions: with `valid` the unmasked positions of
    the batch and `batch` the samples with at least one of them,

        duty_cycles = (duty_cycles * (period - batch) + active_count * batch / valid) / period

    (each unmasked position weighs the same, as in `BatchNormalization`'s
    masked moments), which is exactly the update of the same batch with the
    padded positions removed when every sample keeps the same number. The
    mask passes on unchanged to the next layers. Rows compete alone
    (`KWinners`, `local=True`), so their outputs are those of the unpadded
    batch; with `local=False` the `k` of the full, padded sample competes
    among its unmasked values.

    Args:
        percent_on, k_inference_factor, boost_strength, boost_strength_factor,
        duty_cycle_period, break_ties, relu, gradient: as in `KWinners`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).
    """

    supports_masking = True

    def __init__(
        self,
        percent_on=0.1,
        *,
        k_inference_factor=1.5,
        boost_strength=1.0,
        boost_strength_factor=0.9,
        duty_cycle_period=1000,
        break_ties=False,
        relu=False,
        gradient="winners",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.percent_on = check_float("percent_on", percent_on, 0, 1, True, True)
        self.k_inference_factor = check_float(
            "k_inference_factor", k_inference_factor, 0, None, True
        )
        check_inference_density(self.percent_on, self.k_inference_factor, self.name)
        self.initial_boost_strength = check_float("boost_strength", boost_strength, 0, MAX_BOOST_STRENGTH)
        self.boost_strength_factor = check_float(
            "boost_strength_factor", boost_strength_factor, 0, 1
        )
        # The period meets `learning_iterations` (int32 on JAX without x64)
        # in `min(period, iterations)`: a larger one failed at the first step.
        self.duty_cycle_period = check_int("duty_cycle_period", duty_cycle_period, 1, 2**31 - 1)
        self.break_ties = check_bool("break_ties", break_ties)
        self.relu = check_bool("relu", relu)
        if gradient not in GRADIENTS:
            raise ValueError(f"`gradient` must be one of {GRADIENTS}. Received: gradient={gradient!r}")
        self.gradient = gradient

    # The geometry, defined by each subclass.

    def _check_input_shape(self, input_shape):
        """Raises `ValueError` for a rank or unknown dimension the layer cannot take."""
        raise NotImplementedError

    def _competing_units(self, input_shape):
        """Number of units among which the k winners of one row are chosen."""
        raise NotImplementedError

    def _channel_axis(self):
        """The axis of the units (channels): one duty cycle each."""
        raise NotImplementedError

    def _activate(self, inputs, k, training):
        """The layer's output: the `k` winners of each row of `inputs` (see
        the class docstring)."""
        raise NotImplementedError

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        self.n = self._competing_units(input_shape)
        self.k = round(self.n * self.percent_on)
        if self.k == 0:
            raise ValueError(
                f"Layer {self.name!r}: percent_on={self.percent_on!r} keeps "
                f"k = round({self.n} * {self.percent_on!r}) = 0 of its {self.n} competing "
                "units in training (all outputs 0, no gradient). Use percent_on > "
                f"{0.5 / self.n:.6g} (at least one winner)."
            )
        self.k_inference = min(max(round(self.n * self.percent_on * self.k_inference_factor), 1), self.n)
        channel_axis = self._channel_axis() % len(input_shape)
        channels = input_shape[channel_axis]
        self._count_axes = tuple(a for a in range(len(input_shape)) if a != channel_axis)
        state = dict(trainable=False, autocast=False, aggregation="only_first_replica")
        self.duty_cycles = self.add_weight(
            name="duty_cycles", shape=(channels,), initializer="zeros", dtype="float32", **state
        )
        self.boost_strength = self.add_weight(
            name="boost_strength",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_boost_strength),
            dtype="float32",
            **state,
        )
        self.learning_iterations = self.add_weight(
            name="learning_iterations", shape=(), initializer="zeros", dtype=_widest_int(), **state
        )
        self.input_spec = keras.layers.InputSpec(
            ndim=len(input_shape), axes={a: d for a, d in enumerate(input_shape) if a and d is not None}
        )

    def call(self, inputs, training=None, mask=None):
        if not keras.backend.is_float_dtype(inputs.dtype):
            # Like `Dense`: integer and boolean inputs compute in floating point.
            inputs = ops.cast(inputs, self.compute_dtype)
        training = bool(training) and self.trainable
        k = self.k if training else self.k_inference
        if mask is None:
            outputs = self._train_gradient(inputs, self._activate(inputs, k, training), training)
            if training:
                self._update_duty_cycles(outputs)
            return outputs
        present = self._expand_mask(mask, inputs)
        # The lowest finite value ranks below every real activation (a
        # masked value wins only where fewer than k real ones are left, and
        # outputs 0 then). Finite, not NaN or -inf: exported graphs may
        # compute `where` as `x * mask`, and NaN * 0 is NaN.
        lowest = float(ml_dtypes.finfo(keras.backend.standardize_dtype(inputs.dtype)).min)
        inputs = ops.where(present, inputs, lowest)
        outputs = self._train_gradient(inputs, self._activate(inputs, k, training), training)
        outputs = ops.where(present, outputs, ops.zeros_like(outputs))
        if training:
            self._update_duty_cycles(outputs, present)
        return outputs

    def _train_gradient(self, inputs, outputs, training):
        """`outputs`, with the identity's gradient in training when
        `gradient="straight_through"` (`keras_sparse.ops.straight_through`)."""
        if training and self.gradient == "straight_through":
            return sparse_ops.straight_through(inputs, outputs)
        return outputs

    def _mask_axes(self, rank):
        """The input axes a mask of rank `rank` covers: batch, then positions."""
        if self._channel_axis() == 1:  # channels first
            return (0,) + tuple(range(2, rank + 1))
        return tuple(range(rank))

    def _expand_mask(self, mask, inputs):
        """`mask` `(batch, *positions)` as a boolean of the input's rank, size 1
        along the axes it does not cover (the channels at least)."""
        rank = len(inputs.shape)
        if not 1 <= len(mask.shape) < rank:
            raise ValueError(
                f"Layer {self.name!r}: `mask` must have shape (batch,) or (batch, *positions) "
                f"(rank 1 to {rank - 1}, without the channels) for inputs of shape "
                f"{inputs.shape}. Received: mask of shape {mask.shape}"
            )
        axes = self._mask_axes(len(mask.shape))
        shape = ops.shape(mask)
        expanded = [1] * rank
        for source, axis in enumerate(axes):
            expanded[axis] = shape[source]
        return ops.reshape(ops.cast(mask, "bool"), expanded)

    def _update_duty_cycles(self, outputs, present=None):
        active = ops.sum(ops.cast(outputs > 0, "float32"), axis=self._count_axes)
        if present is None:
            batch = ops.cast(ops.shape(outputs)[0], "float32")
            active, batch = _sum_over_replicas(active, batch)
            valid = None
        else:
            # Masked positions are not there: `batch` counts the samples with
            # an unmasked position, `positions` is their mean number.
            shape = list(ops.shape(outputs))
            shape[self._channel_axis()] = 1
            present = ops.cast(ops.broadcast_to(present, shape), "float32")
            valid = ops.sum(present)
            batch = ops.sum(ops.max(ops.reshape(present, (ops.shape(outputs)[0], -1)), axis=1))
            active, batch, valid = _sum_over_replicas(active, batch, valid)
        iterations = self.learning_iterations + ops.cast(batch, self.learning_iterations.dtype)
        self.learning_iterations.assign(iterations)
        duty_cycles = ops.convert_to_tensor(self.duty_cycles)
        with float64_context():  # one rounding to float32, the same on every backend
            period = ops.cast(ops.minimum(iterations, self.duty_cycle_period), "float64")
            batch64 = ops.cast(batch, "float64")
            if valid is None:
                positions = ops.cast(self._positions_per_sample(outputs), "float64")
            else:
                positions = ops.maximum(ops.cast(valid, "float64"), 1.0) / ops.maximum(batch64, 1.0)
            active = ops.cast(active, "float64") / positions
            # An empty batch (over all replicas) leaves the duty cycles as they
            # are (the formula would be 0 / 0 before the first sample).
            updated = (ops.cast(duty_cycles, "float64") * (period - batch64) + active) / ops.maximum(period, 1.0)
            updated = ops.cast(updated, "float32")
        self.duty_cycles.assign(ops.where(batch > 0, updated, duty_cycles))

    def _positions_per_sample(self, outputs):
        """Values of one channel in one sample (a Python int when the shape is
        static, else an integer tensor: sequences of any length)."""
        shape = ops.shape(outputs)
        positions = 1
        for axis in self._count_axes[1:]:
            positions = positions * shape[axis]
        return positions

    def set_boost_strength_for_epoch(self, epoch):
        """Sets `boost_strength = initial * boost_strength_factor ** epoch`.

        The paper decays the boost once per epoch; setting it from the epoch
        number (rather than multiplying in place) makes a resumed `fit`, and
        any order of callbacks, give the same value. Computed in float64 and
        rounded once to float32.
        """
        epoch = check_int("epoch", epoch, 0)
        self.boost_strength.assign(self.initial_boost_strength * self.boost_strength_factor**epoch)

    def load_own_variables(self, store):
        """Loads the state once its values are checked (see `check_state`):
        a refused file changes nothing."""
        if self.built:
            values = stored_values(self, store)
            if values:
                self.check_state(*(values[id(v)] for v in self._state_variables()), what="loaded")
        super().load_own_variables(store)

    def set_weights(self, weights):
        """`Layer.set_weights`, refusing invalid state (see `check_state`)
        before anything is assigned."""
        if self.built and len(weights) == len(self.weights):
            by_variable = {id(v): w for v, w in zip(self.weights, weights)}
            self.check_state(*(by_variable[id(v)] for v in self._state_variables()), what="given")
        super().set_weights(weights)

    def _state_variables(self):
        return self.duty_cycles, self.boost_strength, self.learning_iterations

    def check_state(self, duty_cycles, boost_strength, learning_iterations, what="given"):
        """Raises `ValueError` unless the state is one training could reach:

            0 <= duty_cycles <= 1          (each a fraction of samples)
            0 <= boost_strength <= MAX_BOOST_STRENGTH
            learning_iterations >= 0

        (NaN and inf refused). A `.keras` or weights file holding anything
        else (tampered, or corrupted) would output zeros, or let every unit
        win, without an error.
        """
        def refuse(name, value, valid):
            raise ValueError(
                f"Layer '{self.name}': the {what} `{name}` must be {valid}. Received: {name}={value}"
            )

        duty_cycles = np.asarray(duty_cycles, np.float64)
        bad = ~((duty_cycles >= 0) & (duty_cycles <= 1))
        if bad.any():
            refuse("duty_cycles", f"{duty_cycles[bad][:5].tolist()} (at units "
                   f"{np.flatnonzero(bad)[:5].tolist()})", "in [0, 1] for every unit")
        boost = float(np.asarray(boost_strength))
        if not 0 <= boost <= MAX_BOOST_STRENGTH:
            refuse("boost_strength", boost, f"in [0, {MAX_BOOST_STRENGTH}]")
        iterations = np.asarray(learning_iterations).item()
        if not (iterations >= 0 and float(iterations).is_integer()):
            refuse("learning_iterations", iterations, "an integer >= 0")

    def quantize(self, mode=None, type_check=True, config=None):
        """Keras quantization (`model.quantize(mode)`): nothing to quantize.

        A k-winners layer has no kernel; its state stays float32 and it
        picks its winners on whatever its input is (the dequantized output of
        a quantized layer), so a quantized model runs it unchanged.
        """

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            percent_on=self.percent_on,
            k_inference_factor=self.k_inference_factor,
            boost_strength=self.initial_boost_strength,
            boost_strength_factor=self.boost_strength_factor,
            duty_cycle_period=self.duty_cycle_period,
            break_ties=self.break_ties,
            relu=self.relu,
            gradient=self.gradient,
        )
        return config


_KWinnersBase = KWinnersBase  # the name before it became public


def _widest_int():
    """int64, except on JAX without `jax_enable_x64` (int32 there; Keras would
    truncate int64 with a warning): 2.1e9 training samples before it wraps."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            return "int32"
    return "int64"


def _sum_over_replicas(active, *scalars):
    """Sums the active counts and the scalars (batch size, unmasked positions)
    over `tf.distribute` replicas, so every replica updates its duty cycles
    with the global batch (one all-reduce); returns them unchanged on a
    single device."""
    if keras.backend.backend() != "tensorflow":
        return (active, *scalars)
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return (active, *scalars)
    totals = context.all_reduce(
        tf.distribute.ReduceOp.SUM, ops.concatenate([active, ops.stack(scalars)], 0)
    )
    return (totals[: -len(scalars)], *(totals[i - len(scalars)] for i in range(len(scalars))))


_COMMON_ARGS = """percent_on: fraction of units that win in training, `0 < percent_on < 1`,
            large enough that `k >= 1` (checked at build).
        k_inference_factor: inference keeps `k_inference_factor` times more
            winners; `0 < percent_on * k_inference_factor <= 1`.
        boost_strength: initial boost strength, in `[0, 50]` (0 disables
            boosting; see `MAX_BOOST_STRENGTH` for the bound).
        boost_strength_factor: per-epoch decay of the boost strength, in
            `[0, 1]`; applied by `UpdateBoostStrength`.
        duty_cycle_period: horizon of the duty-cycle running average, in
            samples, an integer in `[1, 2**31 - 1]`.
        break_ties: if True, exactly k winners (lower index wins a tie); if
            False, every unit tied with the k-th largest also wins.
        relu: if True, units with `boosted <= 0` never win (a ReLU before the
            k-winners).
        gradient: the training gradient: `"winners"` (the paper's: the
            upstream gradient at the winners, 0 elsewhere) or
            `"straight_through"` (the upstream gradient at every finite
            input, as if the layer were the identity, 0 at NaN and ±inf;
            a control, see `keras_sparse.ops.straight_through`). The
            outputs and the state update are the same either way."""


@_serializable
class KWinners(KWinnersBase):
    """k-winners-take-all with boosting along the last axis of `(batch, ..., n)`.

    Keeps, in every row `x[b, ..., :]` (a sample of a dense layer `(batch, n)`,
    a time step of a sequence `(batch, time, n)`, a token), the `k` units with
    the largest boosted activation `x * exp(-boost_strength * duty_cycles)`
    and zeroes the others; the kept units pass their *unboosted* value, and
    the gradient flows through them only (see `keras_sparse.ops.kwinners`).
    Duty cycles are per unit, counted over every leading position. `n` is read
    from the input shape (the leading axes may be of unknown length):

        k           = round(n * percent_on)                       (training)
        k_inference = clip(round(n * percent_on * k_inference_factor), 1, n)

    `round` is Python's (half to even), as in the paper's code. Integer and
    boolean inputs are cast to the layer's compute dtype (as `Dense` does); NaN
    and `±inf` behave as in `keras_sparse.ops`. Used as the latent layer of an
    autoencoder it is a TopK sparse autoencoder whose boosting revives dead
    latents (`examples/topk_autoencoder.py`).

    Args:
        {common}

    Input shape:
        `(batch, ..., n)`, rank >= 2, `n` known.

    Output shape:
        Same as the input; `k` (training) or `k_inference` (inference) non-zero
        values per row, more only where values tie at the threshold.

    Example:

    >>> import numpy as np
    >>> layer = KWinners(percent_on=0.5, k_inference_factor=1.0)
    >>> np.asarray(layer(np.array([[0.3, -1.0, 2.0, 0.5]], "float32"))).tolist()
    [[0.0, 0.0, 2.0, 0.5]]

    State and its update: see the base class docstring.
    """

    def _check_input_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                "KWinners expects inputs of rank >= 2 (batch, ..., units) with a known "
                f"number of units; received input_shape={input_shape}"
            )

    def _competing_units(self, input_shape):
        return input_shape[-1]

    def _channel_axis(self):
        return -1

    def _activate(self, inputs, k, training):
        return sparse_ops.kwinners(
            inputs,
            self.duty_cycles,
            k,
            self.boost_strength,
            break_ties=self.break_ties,
            relu=self.relu,
            portable=not training,
            differentiable=training,
        )


KWinners.__doc__ = KWinners.__doc__.format(common=_COMMON_ARGS)


class _KWinnersFeatureMap(KWinnersBase):
    """k-winners over a feature map with one spatial axis per name in
    `spatial_names`, channels last or first; the subclasses only name the
    axes and the op."""

    spatial_names = None

    def __init__(
        self,
        percent_on=0.1,
        *,
        k_inference_factor=1.5,
        boost_strength=1.0,
        boost_strength_factor=0.9,
        duty_cycle_period=1000,
        local=False,
        break_ties=False,
        relu=False,
        gradient="winners",
        data_format=None,
        **kwargs,
    ):
        super().__init__(**parent_arguments(locals(), "local", "data_format"))
        self.local = check_bool("local", local)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(
                "`data_format` must be 'channels_last', 'channels_first' or None. "
                f"Received: data_format={data_format!r}"
            )
        self.data_format = data_format or keras.config.image_data_format()

    def _layout(self):
        if self.data_format == "channels_last":
            return f"(batch, {', '.join(self.spatial_names)}, channels)"
        return f"(batch, channels, {', '.join(self.spatial_names)})"

    def _check_input_shape(self, input_shape):
        rank = len(self.spatial_names) + 2
        if len(input_shape) != rank:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank {rank} {self._layout()}; "
                f"received input_shape={input_shape}"
            )
        if None in input_shape[1:]:
            raise ValueError(
                f"{type(self).__name__} needs every non-batch dimension known at build "
                f"time; received input_shape={input_shape}"
            )

    def _competing_units(self, input_shape):
        if self.local:
            return input_shape[self._channel_axis()]
        return math.prod(input_shape[1:])

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def _activate(self, inputs, k, training):
        return self.op(
            inputs,
            self.duty_cycles,
            k,
            self.boost_strength,
            local=self.local,
            break_ties=self.break_ties,
            relu=self.relu,
            data_format=self.data_format,
            portable=not training,
            differentiable=training,
        )

    def get_config(self):
        config = super().get_config()
        config.update(local=self.local, data_format=self.data_format)
        return config


_FEATURE_MAP_DOC = """k-winners-take-all with boosting over {what}.

    Input `(batch, {axes}, c)` (`channels_last`) or `(batch, c, {axes})`
    (`channels_first`); duty cycles are per channel.

    - `local=False`: the k winners are chosen among all `{size}*c` values of a
      sample, `k = round({size}*c * percent_on)`.
    - `local=True`: the k winners are chosen among the `c` channels at each
      {position}, `k = round(c * percent_on)`.

    `k_inference`, boosting, ties and `relu` as in `KWinners`. The duty cycle
    of a channel counts its active values over batch, {positions}, divided
    by `{size}` (so its target is `percent_on`). See `keras_sparse.ops.{op}`.

    Args:
        {common}
        local: choose winners per {position} (True) or per sample (False).
        data_format: `"channels_last"`, `"channels_first"` or None for
            `keras.config.image_data_format()`.

    Input shape:
        `(batch, {axes}, c)` or `(batch, c, {axes})`, every non-batch
        dimension known.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> x = np.arange({example_size}, dtype="float32").reshape({example_shape})
    >>> y = {name}(percent_on=0.25, k_inference_factor=1.0)(x)
    >>> int(np.count_nonzero(y)), float(np.max(y))
    ({example_winners}, {example_max})
    """


@_serializable
class KWinners1D(_KWinnersFeatureMap):
    spatial_names = ("steps",)
    op = staticmethod(sparse_ops.kwinners1d)
    __doc__ = _FEATURE_MAP_DOC.format(
        what="sequences of feature vectors (e.g. after `Conv1D`)", axes="steps", size="steps",
        position="step", positions="steps", op="kwinners1d", common=_COMMON_ARGS,
        name="KWinners1D", example_size=8, example_shape="(1, 4, 2)", example_winners=2, example_max=7.0)


@_serializable
class KWinners2D(_KWinnersFeatureMap):
    spatial_names = ("height", "width")
    op = staticmethod(sparse_ops.kwinners2d)
    __doc__ = _FEATURE_MAP_DOC.format(
        what="convolutional activations", axes="h, w", size="h*w",
        position="location", positions="height and width", op="kwinners2d", common=_COMMON_ARGS,
        name="KWinners2D", example_size=16, example_shape="(1, 2, 2, 4)", example_winners=4, example_max=15.0)


@_serializable
class KWinners3D(_KWinnersFeatureMap):
    spatial_names = ("depth", "height", "width")
    op = staticmethod(sparse_ops.kwinners3d)
    __doc__ = _FEATURE_MAP_DOC.format(
        what="volumetric activations (e.g. after `Conv3D`)", axes="d, h, w", size="d*h*w",
        position="voxel", positions="depth, height and width", op="kwinners3d", common=_COMMON_ARGS,
        name="KWinners3D", example_size=16, example_shape="(1, 2, 2, 2, 2)", example_winners=4, example_max=15.0)


# The names before Keras' spelling (`Conv2D`): still importable, and saved
# models whose configs name `keras_sparse>KWinners2d` still load.
KWinners1d, KWinners2d, KWinners3d = KWinners1D, KWinners2D, KWinners3D
keras.saving.get_custom_objects().update({
    "keras_sparse>KWinners1d": KWinners1D,
    "keras_sparse>KWinners2d": KWinners2D,
    "keras_sparse>KWinners3d": KWinners3D,
})


def kwinners_layers(model):
    """Every k-winners layer (`KWinners`, `KWinners1D/2D/3D`, any subclass of
    the base) in `model`, in the order Keras tracks them, each once.

    Descends into nested models and into every layer that holds sublayers:
    wrappers (`TimeDistributed`, `Bidirectional`) and custom layers alike.
    `model` itself is included when it is a k-winners layer. Callbacks,
    the exporter and `keras_sparse.models.with_k_inference_factor` all find
    their layers here.

    Args:
        model: a Keras layer or model.

    Returns:
        A list of k-winners layers (empty if there is none).
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(f"`model` must be a Keras layer or model. Received: model={model!r}")
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, KWinnersBase)
    ]
