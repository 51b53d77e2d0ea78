"""Sparse weights: a fixed random connectivity mask, enforced as a constraint.

`SparseWeights` is the mechanism behind `keras_sparse.layers.SparseDense`,
`SparseConv1D` and `SparseConv2D` (SPEC section 2), and can be used on its own
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


def kept_per_unit(sparsity, fan_in):
    """Number of non-zero weights each output unit keeps.

        kept = round((1 - sparsity) * fan_in)

    (Python's `round`: halves go to the even integer.)
    """
    return int(round((1.0 - sparsity) * fan_in))


def sparse_mask(shape, sparsity, seed):
    """The boolean connectivity mask of a kernel: `True` where a weight is kept.

    A pure, documented function of `(shape, sparsity, seed)` so that a saved
    model only needs to store the seed to rebuild the identical mask:

        fan_in = prod(shape[:-1]);  units = shape[-1]
        kept   = round((1 - sparsity) * fan_in)
        keys   = PCG64(seed).random_raw(units * fan_in)   # uint64, row u = unit u
        unit u keeps the `kept` flat input positions whose keys are smallest
        (stable argsort, so ties go to the lower position)

    Only the raw output of NumPy's PCG64 bit generator is used (its stream is
    stable across NumPy versions, unlike `Generator.permutation`/`choice`,
    which NumPy may change), and the selection is done here, so a model saved
    today rebuilds the same mask with any future NumPy.

    Args:
        shape: kernel shape, rank 2, 3 or 4, output units on the last axis.
        sparsity: fraction of each unit's weights that are zero, in (0, 1).
        seed: non-negative integer.

    Returns:
        A NumPy `bool` array of `shape`; every `[..., u]` slice has exactly
        `kept` `True` entries.

    Raises:
        ValueError: unsupported rank, or a unit would keep no weight at all.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) not in _SUPPORTED_RANKS:
        raise ValueError(
            "SparseWeights supports kernels of rank 2 (Dense `(in, out)`), "
            "3 (Conv1D `(k, in, out)`) or 4 (Conv2D `(kh, kw, in, out)`). "
            f"Received a kernel of rank {len(shape)} with shape {shape}."
        )
    fan_in = math.prod(shape[:-1])
    units = shape[-1]
    kept = kept_per_unit(sparsity, fan_in)
    if kept < 1:
        raise ValueError(
            f"SparseWeights(sparsity={sparsity}) would leave every unit of a "
            f"kernel of shape {shape} (fan-in {fan_in}) with "
            f"round((1 - {sparsity}) * {fan_in}) = 0 weights. Use a lower "
            "sparsity or a larger layer."
        )
    keys = np.random.PCG64(seed).random_raw(units * fan_in).reshape(units, fan_in)
    chosen = np.argsort(keys, axis=1, kind="stable")[:, :kept]
    mask = np.zeros((units, fan_in), dtype=bool)
    np.put_along_axis(mask, chosen, True, axis=1)
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

    Example:

    >>> layer = keras.layers.Dense(64, kernel_constraint=SparseWeights(0.7, seed=1))
    """

    def __init__(self, sparsity, seed=None):
        self.sparsity = check_float("sparsity", sparsity, 0, 1, True, True)
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        self.seed = check_int("seed", seed, 0)
        self._masks = {}

    def mask(self, shape):
        """The boolean NumPy mask for a kernel of `shape` (cached per shape)."""
        shape = tuple(int(d) for d in shape)
        if shape not in self._masks:
            self._masks[shape] = sparse_mask(shape, self.sparsity, self.seed)
        return self._masks[shape]

    def __call__(self, w):
        w = ops.convert_to_tensor(w)  # Keras hands over the Variable itself
        mask = self.mask(w.shape)
        return ops.where(mask, w, ops.zeros_like(w))

    def get_config(self):
        return {"sparsity": self.sparsity, "seed": self.seed}
