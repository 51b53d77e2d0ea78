"""Sparse weights layers: `SparseDense`, `SparseConv1D`, `SparseConv2D` (docs/semantics.md).

Each is the Keras layer it subclasses plus one argument, `sparsity`: every output
unit keeps exactly `round((1 - sparsity) * fan_in)` non-zero weights, chosen at
random once, and the others are exactly zero from the first forward pass for the
life of the model. All three share one mechanism (`_SparseKernelMixin`):

1. the kernel constraint is a `keras_sparse.constraints.SparseWeights`, which
   Keras applies after every optimizer step;
2. the kernel initializer is wrapped so the initial kernel is already masked and
   its scale is computed from the true fan-in (see `SparseKernelInitializer`).

With `mask="fixed"` (the default, the paper's method) no weight is added to
the layer (the mask is rebuilt from the seed stored in the config), so
`Dense`'s fixed variable list, and with it `load_model`, is intact.

With `mask="learned"` the mask is a non-trainable boolean weight,
`kernel_mask` (as `BatchNormalization` keeps its moving statistics), saved
with the model after the layer's own weights; it starts as the fixed mask of
`(sparsity, seed, block, pattern)` and changes only through `set_mask`
(which the callbacks of `keras_sparse.callbacks` use: magnitude pruning,
RigL, SET). The constraint is then a
`keras_sparse.constraints.LearnedSparseWeights`, which reads that weight.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_sparse._validation import ConfigErrorsAsValueError, parent_arguments, stored_values
from keras_sparse.constraints import (
    LearnedSparseWeights,
    SparseWeights,
    check_mask,
    kept_per_unit,
    sparse_mask,
)

MASKS = ("fixed", "learned")

_serializable = keras.saving.register_keras_serializable(package="keras_sparse")


@_serializable
class SparseKernelInitializer(keras.initializers.Initializer):
    """Initializes a sparse kernel: the base initializer, rescaled, then masked.

        w = where(mask, base(shape) * sqrt(fan_in / kept), 0.0)
        kept = round((1 - sparsity) * fan_in),  fan_in = prod(shape[:-1])

    The rescaling applies only when `base` is a `keras.initializers.VarianceScaling`
    (which includes Keras's default `glorot_uniform`, and `he_*`, `lecun_*`):
    such an initializer draws weights of variance `scale / n`, with `n` the
    fan-in, the fan-out or their mean (its `mode`). In a sparse kernel each unit
    really has `kept` inputs, and each input reaches on average a fraction
    `kept / fan_in` of the units, so every one of those fans shrinks by the
    factor `kept / fan_in`; multiplying the draw by `sqrt(fan_in / kept)` gives
    exactly variance `scale / n_sparse`. For `mode="fan_in"` that is
    `scale / kept`: the variance of a dense layer with the true fan-in, as
    nupic.torch's `normalize_sparse_weights` does (which, unlike this, replaces
    the initializer by a Kaiming-uniform one; here the layer keeps its own).
    Other initializers (e.g. `RandomNormal(stddev=...)`, `Orthogonal`) set an
    absolute scale and are only masked.

    Args:
        base: the layer's kernel initializer.
        constraint: the layer's `SparseWeights` constraint (gives the mask).
    """

    def __init__(self, base, constraint):
        self.base = keras.initializers.get(base)
        self.constraint = constraint

    def __call__(self, shape, dtype=None):
        w = self.base(shape, dtype=dtype)
        if isinstance(self.base, keras.initializers.VarianceScaling):
            fan_in = math.prod(shape[:-1])
            kept = kept_per_unit(self.constraint.sparsity, fan_in, self.constraint.block,
                                 self.constraint.pattern)
            w = w * ops.cast(math.sqrt(fan_in / max(kept, 1)), w.dtype)
        return self.constraint(w)

    def get_config(self):
        return {
            "base": keras.initializers.serialize(self.base),
            "constraint": keras.constraints.serialize(self.constraint),
        }

    @classmethod
    def from_config(cls, config):
        return cls(
            keras.initializers.deserialize(config["base"]),
            keras.constraints.deserialize(config["constraint"]),
        )


class _SparseKernelMixin(ConfigErrorsAsValueError):
    """Turns a Keras kernel layer into a sparse-weights layer (see module doc)."""

    def _init_sparse(self, arguments):
        """The constructor body every sparse-weights layer shares.

        `arguments` are the constructor's `locals()`: the sparse ones
        (sparsity, seed, block, pattern, mask) make the kernel sparse, every
        other one goes by name to the Keras parent, the LoRA and
        quantization arguments only when set (Keras versions before them,
        >= 3.5 is supported, have no such argument)."""
        sparse = ("sparsity", "seed", "block", "mask", "pattern")
        keras_arguments = parent_arguments(arguments, *sparse)
        for name in ("lora_rank", "lora_alpha", "quantization_config"):
            if name in keras_arguments and keras_arguments[name] is None:
                del keras_arguments[name]
        super().__init__(**keras_arguments)
        self._make_sparse(**{name: arguments[name] for name in sparse})

    def _make_sparse(self, sparsity, seed, block, mask, pattern):
        # `kernel_constraint` is consumed by the parent's constructor; refuse
        # one given by the user rather than silently replacing it.
        if self.kernel_constraint is not None:
            raise ValueError(
                f"{type(self).__name__} sets its own kernel constraint "
                "(the sparse-weights mask); do not pass `kernel_constraint`. "
                f"Received: kernel_constraint={self.kernel_constraint!r}"
            )
        if mask not in MASKS:
            raise ValueError(f"`mask` must be one of {MASKS}. Received: mask={mask!r}")
        constraint = LearnedSparseWeights if mask == "learned" else SparseWeights
        self.kernel_constraint = constraint(sparsity, seed, block, pattern)
        self.kernel_initializer = SparseKernelInitializer(
            self.kernel_initializer, self.kernel_constraint
        )
        self.learned_mask = None

    def build(self, input_shape):
        super().build(input_shape)
        if self.mask == "learned":
            initial = self.kernel_constraint.mask(self._kernel.shape)
            self.learned_mask = self.add_weight(
                shape=initial.shape,
                initializer=keras.initializers.Constant(initial),
                dtype="bool",
                trainable=False,
                name="kernel_mask",
            )
            self.kernel_constraint.attach(self.learned_mask)

    @property
    def mask(self):
        """`"fixed"` or `"learned"` (the constructor's argument)."""
        return "learned" if isinstance(self.kernel_constraint, LearnedSparseWeights) else "fixed"

    @property
    def sparsity(self):
        return self.kernel_constraint.sparsity

    @property
    def seed(self):
        return self.kernel_constraint.seed

    @property
    def block(self):
        return self.kernel_constraint.block

    @property
    def pattern(self):
        return self.kernel_constraint.pattern

    @property
    def kernel_mask(self):
        """The boolean NumPy mask of the kernel (`True` = kept); layer must be built.
        With `mask="learned"`, the current value of the `kernel_mask` weight."""
        if self.mask == "learned":
            return self.kernel_constraint.current()
        return self.kernel_constraint.mask(self.kernel.shape)

    def set_mask(self, mask):
        """Sets a learned mask and zeros the kernel outside it.

            kernel = where(mask, kernel, 0)

    The mask must be legal (`keras_sparse.constraints.check_mask`: the
        kernel's shape, whole blocks, at most `n` of every `m` inputs under
        a pattern `(n, m)`); otherwise `ValueError` and nothing changes.
        Weights that enter the mask keep their value (0 after the kernel was
        masked). On JAX, a compiled training step keeps the mask it was
        compiled with: call `model.make_train_function(force=True)` after
        setting a mask between steps of `fit` (the keras_sparse callbacks
        do).

        Args:
            mask: booleans (or 0/1) of the kernel's shape.
        """
        if self.mask != "learned":
            raise ValueError(
                f"Layer '{self.name}' has mask='fixed' (a pure function of its seed); only a layer "
                "built with mask='learned' has a mask to set."
            )
        if not self.built:
            raise ValueError(f"Layer '{self.name}' must be built before its mask is set.")
        mask = check_mask(mask, tuple(self._kernel.shape), self.block, self.pattern)
        self.learned_mask.assign(mask)
        kernel = ops.convert_to_numpy(self._kernel)
        self._kernel.assign(np.where(mask, kernel, 0).astype(kernel.dtype))
        self.kernel_constraint.value = mask

    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self.built and self.mask == "learned":
            store[str(len(store.keys()))] = self.learned_mask

    def load_own_variables(self, store):
        """Loads the weights once the stored kernel is checked to fit this
        layer's mask (see `_check_kernel`; with `mask="learned"`, the
        stored mask, itself checked to be legal): a refused file changes
        nothing. A file saved by a layer of the other `mask` is refused
        with a `ValueError` that says so."""
        learned = self.mask == "learned"
        variables = self._trainable_variables + self._non_trainable_variables
        if self.built and len(store.keys()) == len(variables) + (-1 if learned else 1):
            raise ValueError(
                f"Layer '{self.name}' has mask='{self.mask}', but the weights were saved by a layer "
                f"with mask='{'fixed' if learned else 'learned'}' "
                f"({len(store.keys())} variables for this layer's {len(variables)}). Construct the "
                "layer with the `mask` it was saved with, or use `keras.models.load_model`."
            )
        if self.built and getattr(self, "quantization_mode", None) in (None, "int8", "float8"):
            values = stored_values(self, store)
            kernel = values.get(id(self.kernel))
            mask = values.get(id(self.learned_mask)) if learned else None
            if learned and mask is not None:
                mask = check_mask(mask, tuple(self._kernel.shape), self.block, self.pattern,
                                  name="stored kernel_mask")
            if kernel is not None and kernel.shape == tuple(self.kernel.shape):
                self._check_kernel(kernel, "loaded", mask)
        super().load_own_variables(store)
        if learned and self.built:
            self.learned_mask.assign(store[str(len(store.keys()) - 1)])
            self.kernel_constraint.attach(self.learned_mask)

    def set_weights(self, weights):
        """`Layer.set_weights`, refusing a kernel that does not fit this
        layer's mask (see `_check_kernel`; with `mask="learned"` the mask
        given among `weights`, itself checked to be legal) before anything
        is assigned. (`model.set_weights` and `kernel.assign` do not check:
        the next optimizer step zeroes what lies outside the mask.)"""
        learned = self.mask == "learned"
        mask = None
        if self.built and len(weights) == len(self.weights):
            if learned:
                index = next(i for i, w in enumerate(self.weights) if w is self.learned_mask)
                mask = check_mask(weights[index], tuple(self._kernel.shape), self.block, self.pattern,
                                  name="the given kernel_mask")
            index = next(i for i, w in enumerate(self.weights) if w is self.kernel)
            if tuple(np.shape(weights[index])) == tuple(self.kernel.shape):
                self._check_kernel(np.asarray(weights[index]), "given", mask)
        super().set_weights(weights)
        if learned and self.built:
            self.kernel_constraint.attach(self.learned_mask)

    def _check_kernel(self, kernel, what, mask=None):
        """Raises `ValueError` unless `kernel` was made with this layer's mask.

        With `mask="learned"`: unless `kernel` is 0 outside `mask` (the mask
        stored or given with it; the layer's own when `None`). Otherwise:

        `load_model` rebuilds the mask from the saved seed and sparsity, so it
        always agrees. `load_weights` (or `set_weights`) into a layer
        constructed anew may not:

        - a different seed (e.g. `seed=None` without
          `keras.utils.set_random_seed`), or a higher sparsity: the kernel has
          non-zero weights outside this mask, which the next step would zero;
        - the same seed with a lower sparsity: masks of one seed are nested
          (`sparse_mask` keeps the blocks of smallest keys), so the saved
          mask is this one's mask for fewer kept weights, and every non-zero
          weight lies inside it; training would revive the saved zeros.

        The second case is told apart from a kernel that merely holds exact
        zeros inside its mask (e.g. weights initialized at 0 on inputs that
        are always 0, such as MNIST's black border, get no gradient) by the
        pattern, not the count: it is refused only when every unit holds
        the same number `m < kept` of non-zeros and all of them lie inside
        the mask of the same seed keeping `m` (a random set of trained zeros
        matches that exactly with probability about `1 / C(kept, m)`). A
        kernel with no non-zero weight (e.g. zero-initialized) is accepted.
        Quantized layers (`model.quantize`): int8 and float8 kernels are
        checked as stored (a zero weight is stored as 0); int4 and the
        calibrated modes store zero weights as their zero points and are not.
        """
        kernel = np.asarray(kernel)
        if self.mask == "learned":
            mask = self.kernel_mask if mask is None else mask
            stray = int(np.count_nonzero(kernel[~mask]))
            if stray:
                raise ValueError(
                    f"Layer '{self.name}': the {what} kernel has {stray} non-zero weights "
                    "outside its learned mask (kernel_mask); a kernel and its mask are saved "
                    "and set together."
                )
            return
        how_to_fix = (
            "Construct the layer with the sparsity and seed it was saved with "
            "(see its `get_config()`), or use `keras.models.load_model`, which "
            "restores them."
        )
        stray = int(np.count_nonzero(kernel[~self.kernel_mask]))
        if stray:
            raise ValueError(
                f"Layer '{self.name}': the {what} kernel has {stray} non-zero "
                f"weights outside this layer's sparse mask (sparsity={self.sparsity}, "
                f"seed={self.seed}), so it was saved with a different mask. " + how_to_fix
            )
        fan_in = math.prod(kernel.shape[:-1])
        nonzero = np.count_nonzero(kernel.reshape(fan_in, -1), axis=0)
        kept = kept_per_unit(self.sparsity, fan_in, self.block, self.pattern)
        inputs_per_block = self.block[1] if self.block else 1
        if self.pattern is not None:  # the nested-mask case below is for unpatterned masks
            return
        m = int(nonzero[0])
        if not (0 < m < kept and m % inputs_per_block == 0 and (nonzero == m).all()):
            return
        smaller = sparse_mask(kernel.shape, 1.0 - m / fan_in, self.seed, self.block)
        if np.count_nonzero(kernel[~smaller]) == 0:
            raise ValueError(
                f"Layer '{self.name}': every unit of the {what} kernel holds exactly "
                f"{m} non-zero weights, all inside this seed's mask for {m} of {fan_in}, "
                f"where this layer's sparsity={self.sparsity} keeps {kept}: it was saved "
                f"with a higher sparsity (about {1 - m / fan_in:.3g}). " + how_to_fix
            )

    def get_config(self):
        config = super().get_config()
        # The mask is fully described by (sparsity, seed): store those, and the
        # user's initializer rather than the wrapper.
        config.pop("kernel_constraint", None)
        config["kernel_initializer"] = keras.initializers.serialize(
            self.kernel_initializer.base
        )
        config["sparsity"] = self.sparsity
        config["seed"] = self.seed
        # configs of the paper's layers (no block, pattern or learned mask) stay as they were
        if self.block is not None:
            config["block"] = list(self.block)
        if self.pattern is not None:
            config["pattern"] = list(self.pattern)
        if self.mask != "fixed":
            config["mask"] = self.mask
        return config


_SPARSE_ARGS = """sparsity: fraction of each {unit}'s weights that are zero, `0 < sparsity < 1`
            (`0 <= sparsity < 1` with `mask="learned"`: the initial mask's).
        seed: integer selecting the mask, or `None` to draw one (from NumPy's
            global RNG, seeded by `keras.utils.set_random_seed`); stored in
            the config either way.
        block: `None` (each weight chosen on its own), an integer `b` or a
            pair `(units, inputs)`: the kernel keeps whole blocks of `units`
            consecutive output {unit}s by `inputs` consecutive inputs (input
            channels at one kernel position), and each {unit} keeps
            `round((1 - sparsity) * fan_in / inputs) * inputs` weights
            (the input channels must be a multiple of `inputs`, the {unit}s
            of `units`). `block=(1, 4)` (float32) or `(1, 16)` (int8) is what
            TFLite keeps sparse and runs with its block-sparse
            `FULLY_CONNECTED` kernels (in float32, faster than dense at high
            sparsity; see docs/devices.md).
        pattern: `None` or an N:M pattern `(n, m)`: at most `n` kept weights
            in every run of `m` consecutive inputs (input channels at one
            kernel position), e.g. `(2, 4)`; the input channels must be a
            multiple of `m` and `sparsity >= 1 - n / m`. Each run keeps
            `min(n, round((1 - sparsity) * m))` weights (whole blocks with
            `block`).
        mask: `"fixed"` (default, the paper's method: the random mask of
            `(sparsity, seed, block, pattern)` for the life of the model) or
            `"learned"`: the mask starts as that one (`sparsity` may then be
            0, every weight kept) and is a non-trainable weight,
            `kernel_mask`, saved with the model, that `set_mask` and the
            callbacks `keras_sparse.callbacks.MagnitudePruning`, `RigL` and
            `SET` change (docs/learned_sparsity.md)."""

_CONV_ARGS = """strides: int or {rank}-tuple of ints, the stride of the convolution.
            `strides > 1` is incompatible with `dilation_rate > 1`.
        padding: `"valid"` (no padding) or `"same"` (pad evenly so that the
            output has the input's spatial size when `strides=1`){causal}.
        data_format: `"channels_last"` (`{last}`), `"channels_first"`
            (`{first}`) or None for `keras.config.image_data_format()`.
        dilation_rate: int or {rank}-tuple of ints, the dilation rate of the
            convolution.
        groups: a positive int, the number of groups the input channels are
            split into (each convolved with `filters / groups` filters);
            `filters` and the input channels must be multiples of it."""

_KERNEL_ARGS = """activation: activation function, or None for none (`a(x) = x`).
        use_bias: whether the layer adds a bias vector.
        kernel_initializer: initializer of the kernel (rescaled to the true
            fan-in and masked, see `SparseKernelInitializer`).
        bias_initializer: initializer of the bias vector.
        kernel_regularizer: regularizer of the kernel.
        bias_regularizer: regularizer of the bias vector.
        activity_regularizer: regularizer of the output.
        kernel_constraint: must be None: the layer's kernel constraint is its
            mask (`keras_sparse.constraints.SparseWeights`); another raises
            `ValueError`. Not stored in the config (the mask is, as
            `sparsity`, `seed`, `block`, `pattern`, `mask`).
        bias_constraint: constraint of the bias vector."""

_BASE_KWARGS = """**kwargs: base layer arguments (`name`, `dtype`, `trainable`, ...)."""


@_serializable
class SparseDense(_SparseKernelMixin, keras.layers.Dense):
    """`keras.layers.Dense` whose units each keep a fixed random subset of inputs.

    Computes `output = activation(dot(input, kernel) + bias)` as `Dense`
    does, with a kernel `(in, units)` of which each column keeps exactly
    `round((1 - sparsity) * in)` non-zero weights; the rest are exactly `0.0`
    from the first forward pass, after every optimizer step, and after
    save/load (mask rebuilt from `(seed, shape)`, see
    `keras_sparse.constraints.SparseWeights`). The initial kernel's variance
    uses the true fan-in (see `SparseKernelInitializer`).

    Args:
        units: positive int, the output dimension.
        {sparse}
        {kernel}
        lora_rank: optional rank of a LoRA update of the kernel, as for
            `Dense` (None: no LoRA).
        lora_alpha: optional LoRA scale (`lora_alpha / lora_rank`), as for
            `Dense`; None: `lora_rank`.
        quantization_config: optional Keras quantization config, as for
            `Dense`.
        {base}

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, most often
        `(batch_size, input_dim)`.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Example:

    >>> layer = SparseDense(64, sparsity=0.5, seed=0, activation="relu")
    >>> y = layer(np.ones((2, 100), "float32"))
    >>> tuple(y.shape)
    (2, 64)
    >>> int(np.count_nonzero(keras.ops.convert_to_numpy(layer.kernel)[:, 0]))
    50
    """

    def __init__(
        self,
        units,
        sparsity,
        *,
        seed=None,
        block=None,
        pattern=None,
        mask="fixed",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        **kwargs,
    ):
        self._init_sparse(locals())

    def quantize(self, mode=None, type_check=True, config=None):
        """Keras quantization (`model.quantize(mode)`), as for `Dense`.

        `Dense` refuses its subclasses; the sparse kernel quantizes like a
        dense one and keeps its zeros: int8 and int4 store
        `round(w / scale)` (plus an integer zero point for int4 blocks),
        so `w = 0` stays exactly 0, and float8 keeps the float kernel and
        its mask constraint (training keeps the zeros).
        """
        if type_check and type(self) is not SparseDense:
            raise self._not_implemented_error(self.quantize)
        super().quantize(mode, type_check=False, config=config)


SparseDense.__doc__ = SparseDense.__doc__.format(
    sparse=_SPARSE_ARGS.format(unit="unit"), kernel=_KERNEL_ARGS, base=_BASE_KWARGS)


_CONV_DOC = """`keras.layers.{parent}` whose filters each keep a fixed random subset of weights.

    Convolves the input with a kernel `{kernel}` as `{parent}` does (then adds
    the bias and applies the activation); each filter keeps exactly
    `round((1 - sparsity) * {fan_in})` non-zero weights; see `SparseDense`
    for the guarantees. Either `data_format`.

    Args:
        filters: positive int, the number of output filters.
        kernel_size: int or {rank}-tuple of ints, the size of the convolution
            window.
        {sparse}
        {conv}
        {kernel_args}
        {base}

    Input shape:
        `(batch_size, {last})` with `data_format="channels_last"`,
        `(batch_size, {first})` with `"channels_first"`.

    Output shape:
        `(batch_size, {new_last})` or `(batch_size, {new_first})`: the
        spatial sizes follow `padding`, `strides` and `dilation_rate`.

    Example:

    >>> layer = {name}(8, {example_kernel}, sparsity=0.75, seed=0, padding="same")
    >>> tuple(layer(np.ones({example_input}, "float32")).shape)
    {example_output}
    """


def _conv_doc(**fields):
    return _CONV_DOC.format(sparse=_SPARSE_ARGS.format(unit="filter"), kernel_args=_KERNEL_ARGS,
                            base=_BASE_KWARGS, **fields)


class _SparseConv(_SparseKernelMixin):
    """The constructor `SparseConv1D` and `SparseConv2D` share: every argument
    of their Keras parent, with its default (an int `strides` or
    `dilation_rate` means that value along every axis, as in Keras, so `1`
    is `Conv2D`'s `(1, 1)`), plus the sparse ones."""

    def __init__(
        self,
        filters,
        kernel_size,
        sparsity,
        *,
        seed=None,
        block=None,
        pattern=None,
        mask="fixed",
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        self._init_sparse(locals())


@_serializable
class SparseConv1D(_SparseConv, keras.layers.Conv1D):
    __doc__ = _conv_doc(
        parent="Conv1D", name="SparseConv1D", rank=1, kernel="(kernel_size, in / groups, filters)",
        fan_in="kernel_size * in / groups",
        conv=_CONV_ARGS.format(rank=1, causal=', or `"causal"` (output `t` sees inputs up to `t`)',
                               last="(batch, steps, features)", first="(batch, features, steps)"),
        last="steps, channels", first="channels, steps",
        new_last="new_steps, filters", new_first="filters, new_steps",
        example_kernel=3, example_input="(2, 10, 4)", example_output="(2, 10, 8)")


@_serializable
class SparseConv2D(_SparseConv, keras.layers.Conv2D):
    __doc__ = _conv_doc(
        parent="Conv2D", name="SparseConv2D", rank=2, kernel="(kh, kw, in / groups, filters)",
        fan_in="kh * kw * in / groups",
        conv=_CONV_ARGS.format(rank=2, causal="", last="(batch, height, width, channels)",
                               first="(batch, channels, height, width)"),
        last="height, width, channels", first="channels, height, width",
        new_last="new_height, new_width, filters", new_first="filters, new_height, new_width",
        example_kernel=3, example_input="(2, 6, 6, 4)", example_output="(2, 6, 6, 8)")
