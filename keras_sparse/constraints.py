"""Sparse weights: a fixed random connectivity mask, enforced as a constraint.

`SparseWeights` is the mechanism behind `keras_sparse.layers.SparseDense`,
`SparseConv1D` and `SparseConv2D` (docs/semantics.md, "Sparse weights"), and can be used on its own
as any Keras kernel constraint.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_sparse._validation import check_float, check_int

_serializable = keras.saving.register_keras_serializable(package="keras_sparse")

# Kernel ranks with a known layout whose LAST axis indexes the output units:
# Dense `(in, out)`, Conv1D `(k, in, out)`, Conv2D `(kh, kw, in, out)`.
_SUPPORTED_RANKS = {2: "Dense", 3: "Conv1D", 4: "Conv2D"}


def check_block(block):
    """The block shape `(units, inputs)` of `block`, or `None` for single weights.

    `None`, `1`, `(1, 1)`: every weight is chosen on its own (no blocks).
    An integer `b`: `(1, b)`, one output unit by `b` consecutive inputs, the
    shape TFLite's block-sparse `FULLY_CONNECTED` kernels run (`(1, 4)` in
    float32, `(1, 16)` in int8). A pair `(r, c)`: `r` consecutive output
    units by `c` consecutive inputs.
    """
    pair = (1, block) if not isinstance(block, (tuple, list)) and block is not None else block
    if pair is None:
        return None
    if len(pair) != 2:
        raise ValueError(
            "`block` must be None, a positive integer b (the block (1, b)) or a pair "
            f"(units, inputs) of positive integers. Received: block={block!r}"
        )
    pair = tuple(check_int(f"block[{i}]", b, 1) for i, b in enumerate(pair))
    return None if pair == (1, 1) else pair


def kept_per_unit(sparsity, fan_in, block=None):
    """Number of non-zero weights each output unit keeps.

        kept = round((1 - sparsity) * fan_in / c) * c,   block = (r, c)  (c = 1 without blocks)

    a whole number of blocks, so `kept` is the nearest multiple of `c` to
    `(1 - sparsity) * fan_in` (Python's `round`: halves go to the even
    integer).
    """
    inputs_per_block = block[1] if block else 1
    return int(round((1.0 - sparsity) * (fan_in // inputs_per_block))) * inputs_per_block


def sparse_mask(shape, sparsity, seed, block=None):
    """The boolean connectivity mask of a kernel: `True` where a weight is kept.

    A pure, documented function of `(shape, sparsity, seed, block)` so that a
    saved model only needs to store the seed to rebuild the identical mask:

        fan_in = prod(shape[:-1]);  units = shape[-1];  (r, c) = block or (1, 1)
        blocks = fan_in / c  runs of c consecutive flat inputs (input channels,
                 the second-to-last axis, vary fastest, so a run is c input
                 channels at one kernel position)
        groups = units / r   runs of r consecutive output units
        kept_blocks = round((1 - sparsity) * blocks)
        keys = PCG64(seed).random_raw(groups * blocks)   # uint64, row g = group g
        group g keeps the `kept_blocks` blocks whose keys are smallest
        (stable argsort, so ties go to the lower position); each of its r
        units keeps every weight of those blocks

    so every unit keeps exactly `kept_per_unit(sparsity, fan_in, block) =
    kept_blocks * c` weights. Without blocks (`r = c = 1`) this is the mask of
    every earlier version. Only the raw output of NumPy's PCG64 bit generator
    is used (its stream is stable across NumPy versions, unlike
    `Generator.permutation`/`choice`), and the selection is done here, so a
    model saved today rebuilds the same mask with any future NumPy.

    Args:
        shape: kernel shape, rank 2, 3 or 4, output units on the last axis.
        sparsity: fraction of each unit's weights that are zero, in (0, 1).
        seed: non-negative integer.
        block: `None` or a block shape (see `check_block`); the input
            channels (`shape[-2]`) must be a multiple of `c` and the units
            (`shape[-1]`) a multiple of `r`.

    Returns:
        A NumPy `bool` array of `shape`; every `[..., u]` slice has exactly
        `kept` `True` entries.

    Raises:
        ValueError: unsupported rank, a kernel the block does not tile, or a
            unit would keep no weight at all.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) not in _SUPPORTED_RANKS:
        raise ValueError(
            "SparseWeights supports kernels of rank 2 (Dense `(in, out)`), "
            "3 (Conv1D `(k, in, out)`) or 4 (Conv2D `(kh, kw, in, out)`). "
            f"Received a kernel of rank {len(shape)} with shape {shape}."
        )
    units_per_block, inputs_per_block = block = check_block(block) or (1, 1)
    for axis, name, size in ((-2, "input channels", inputs_per_block), (-1, "units", units_per_block)):
        if shape[axis] % size:
            raise ValueError(
                f"SparseWeights(block={block}) tiles the {name} (kernel axis {axis}) by "
                f"{size}, but a kernel of shape {shape} has {shape[axis]}, not a multiple "
                f"of {size}. Change the layer's size or the block."
            )
    fan_in = math.prod(shape[:-1])
    units = shape[-1]
    blocks, groups = fan_in // inputs_per_block, units // units_per_block
    kept_blocks = int(round((1.0 - sparsity) * blocks))
    if kept_blocks < 1:
        blocked = block != (1, 1)
        raise ValueError(
            f"SparseWeights(sparsity={sparsity}{f', block={block}' if blocked else ''}) would leave "
            f"every unit of a kernel of shape {shape} (fan-in {fan_in}"
            f"{f', {blocks} blocks' if blocked else ''}) with round((1 - {sparsity}) * {blocks}) = 0 "
            f"{'blocks' if blocked else 'weights'}. Use a lower sparsity"
            f"{', a smaller block' if blocked else ''} or a larger layer."
        )
    keys = np.random.PCG64(seed).random_raw(groups * blocks).reshape(groups, blocks)
    chosen = np.argsort(keys, axis=1, kind="stable")[:, :kept_blocks]
    block_mask = np.zeros((groups, blocks), dtype=bool)
    np.put_along_axis(block_mask, chosen, True, axis=1)
    mask = block_mask.repeat(units_per_block, axis=0).repeat(inputs_per_block, axis=1)
    return np.ascontiguousarray(mask.T).reshape(shape)


@_serializable
class SparseWeights(keras.constraints.Constraint):
    """Keeps a fixed random subset of each output unit's weights; zeros the rest.

    Every output unit (the last axis of the kernel: a column of a Dense kernel
    `(in, out)`, an output filter of a Conv1D `(k, in, out)` or Conv2D
    `(kh, kw, in, out)` kernel) keeps exactly

        kept = round((1 - sparsity) * fan_in),   fan_in = prod(kernel.shape[:-1])

    non-zero weights at positions chosen at random once, and the constraint
    returns `where(mask, w, 0.0)`: the other weights are exactly `0.0`.

    With `block=(r, c)` the mask is made of whole blocks of `r` consecutive
    units by `c` consecutive input channels (`block=(1, 4)`: each unit keeps
    runs of 4 inputs, what TFLite keeps sparse and runs with its
    block-sparse `FULLY_CONNECTED` kernel); each unit then keeps
    `round((1 - sparsity) * fan_in / c) * c` weights, the nearest whole number
    of blocks, and a kernel whose input channels are not a multiple of `c`
    (or units of `r`) is refused with a `ValueError` when the mask is built.
    Keras applies a variable's constraint after every optimizer step (after the
    gradient update and any decoupled weight decay), so the zeros survive SGD,
    momentum, Adam, AdamW, RMSprop...

    The mask is a deterministic function of `(seed, kernel shape)` (see
    `sparse_mask`), not a variable: with `seed=None` a concrete seed is drawn
    here from NumPy's global RNG (so `keras.utils.set_random_seed` makes it
    reproducible) and stored in `get_config`, so `keras.models.load_model`
    rebuilds the identical mask; the saved kernel itself also holds the zeros.
    Keeping it out of the layer's variables also keeps `Dense`'s fixed
    variable list (and so `load_model`) intact.

    Used directly, e.g. `Dense(64, kernel_constraint=SparseWeights(0.7))`, the
    kernel is masked only from the first optimizer step on; the layers
    `keras_sparse.layers.SparseDense`/`SparseConv1D`/`SparseConv2D` also mask
    (and rescale) the initial kernel, so they are sparse from the first
    forward pass.

    Not for kernels whose last axis is not the output unit (e.g.
    `Conv2DTranspose`, whose kernel is `(kh, kw, out, in)`).

    Args:
        sparsity: fraction of each unit's weights that are zero, `0 < sparsity < 1`.
        seed: non-negative integer selecting the mask, or `None` to draw one.
        block: `None` (each weight on its own), an integer `b` (blocks
            `(1, b)`) or a pair `(units, inputs)`; see `sparse_mask`.

    Example:

    >>> layer = keras.layers.Dense(64, kernel_constraint=SparseWeights(0.7, seed=1))
    """

    def __init__(self, sparsity, seed=None, block=None):
        self.sparsity = check_float("sparsity", sparsity, 0, 1, True, True)
        self.block = check_block(block)
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        self.seed = check_int("seed", seed, 0)
        self._masks = {}

    def mask(self, shape):
        """The boolean NumPy mask for a kernel of `shape` (cached per shape)."""
        shape = tuple(int(d) for d in shape)
        if shape not in self._masks:
            self._masks[shape] = sparse_mask(shape, self.sparsity, self.seed, self.block)
        return self._masks[shape]

    def __call__(self, w):
        w = ops.convert_to_tensor(w)  # Keras hands over the Variable itself
        mask = self.mask(w.shape)
        return ops.where(mask, w, ops.zeros_like(w))

    def get_config(self):
        config = {"sparsity": self.sparsity, "seed": self.seed}
        if self.block is not None:  # configs without blocks stay as they were
            config["block"] = list(self.block)
        return config


def sparse_weight_layers(model):
    """Every layer in `model` whose `kernel_constraint` is a `SparseWeights`
    (`SparseDense`, `SparseConv1D/2D`, or any Keras layer given one), in the
    order Keras tracks them, each once. Descends into nested models and into
    every layer that holds sublayers (wrappers such as `TimeDistributed`), as
    `keras_sparse.kwinners.kwinners_layers` does; `model` itself is included
    when it is one.

    Args:
        model: a Keras layer or model.

    Returns:
        A list of layers (empty if there is none).
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(f"`model` must be a Keras layer or model. Received: model={model!r}")
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(getattr(layer, "kernel_constraint", None), SparseWeights)
    ]
