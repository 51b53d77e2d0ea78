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
# The signed integer of each float type's width, for `keep_masked`'s bitwise AND.
_SAME_WIDTH_INT = {"float16": "int16", "bfloat16": "int16", "float32": "int32", "float64": "int64"}


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


def check_pattern(pattern, block=None):
    """The N:M pattern `(n, m)` of `pattern`, or `None` for no pattern.

    `(n, m)`: every run of `m` consecutive inputs of a unit (input channels at
    one kernel position, as for blocks) holds at most `n` kept weights,
    `1 <= n < m` (e.g. `(2, 4)`, the 2:4 pattern of sparse tensor cores).
    With a block `(r, c)`, `n` and `m` must be multiples of `c` (a run holds
    whole blocks).
    """
    if pattern is None:
        return None
    if not isinstance(pattern, (tuple, list)) or len(pattern) != 2:
        raise ValueError(
            "`pattern` must be None or a pair (n, m) of integers with 1 <= n < m (at most n "
            f"kept weights in every m consecutive inputs). Received: pattern={pattern!r}"
        )
    n = check_int("pattern[0]", pattern[0], 1)
    m = check_int("pattern[1]", pattern[1], n + 1)
    inputs_per_block = block[1] if block else 1
    if n % inputs_per_block or m % inputs_per_block:
        raise ValueError(
            f"`pattern` must count whole blocks: with block={block}, n and m must be multiples of "
            f"{inputs_per_block}. Received: pattern={pattern!r}"
        )
    return n, m


def kept_per_unit(sparsity, fan_in, block=None, pattern=None):
    """Number of non-zero weights each output unit keeps.

        kept = round((1 - sparsity) * fan_in / c) * c,   block = (r, c)  (c = 1 without blocks)

    a whole number of blocks, so `kept` is the nearest multiple of `c` to
    `(1 - sparsity) * fan_in` (Python's `round`: halves go to the even
    integer). With a pattern `(n, m)` every run of `m` inputs keeps
    `kept_per_run(sparsity, block, pattern)` weights and
    `kept = kept_per_run * fan_in / m`.
    """
    inputs_per_block = block[1] if block else 1
    if pattern is not None:
        return kept_per_run(sparsity, block, pattern) * (fan_in // pattern[1])
    return int(round((1.0 - sparsity) * (fan_in // inputs_per_block))) * inputs_per_block


def kept_per_run(sparsity, block, pattern):
    """Weights kept in each run of `m` inputs under the pattern `(n, m)`:

        kept_run = min(n, round((1 - sparsity) * m / c) * c)

    (whole blocks of `c` inputs; `c = 1` without blocks): the sparsity's
    share of the run, never more than the pattern's `n`.
    """
    inputs_per_block = block[1] if block else 1
    n, m = pattern
    return min(n, int(round((1.0 - sparsity) * (m // inputs_per_block))) * inputs_per_block)


def mask_layout(shape, block=None, pattern=None):
    """How a kernel's mask is chosen: `(rows, candidates, r, c)`.

    Every mask of this library is chosen among *candidates* (blocks of `r`
    consecutive units by `c` consecutive inputs; single weights when there is
    no block) grouped in *rows*: a row is the candidates of `r` units (the
    whole fan-in), or, with a pattern `(n, m)`, the `m / c` candidates of one
    run of `m` consecutive inputs of those units. The flat fan-in runs over
    `shape[:-1]` with the input channels (`shape[-2]`) fastest, so a run of
    inputs is input channels at one kernel position. Checks that the block
    and pattern tile the kernel.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) not in _SUPPORTED_RANKS:
        raise ValueError(
            "SparseWeights supports kernels of rank 2 (Dense `(in, out)`), "
            "3 (Conv1D `(k, in, out)`) or 4 (Conv2D `(kh, kw, in, out)`). "
            f"Received a kernel of rank {len(shape)} with shape {shape}."
        )
    units_per_block, inputs_per_block = block = check_block(block) or (1, 1)
    checks = [(-2, "input channels", inputs_per_block, f"SparseWeights(block={block})"),
              (-1, "units", units_per_block, f"SparseWeights(block={block})")]
    if pattern is not None:
        checks.append((-2, "input channels", pattern[1], f"pattern={tuple(pattern)}"))
    for axis, name, size, what in checks:
        if shape[axis] % size:
            raise ValueError(
                f"{what} tiles the {name} (kernel axis {axis}) by "
                f"{size}, but a kernel of shape {shape} has {shape[axis]}, not a multiple "
                f"of {size}. Change the layer's size or the "
                f"{'pattern' if what.startswith('pattern') else 'block'}."
            )
    fan_in = math.prod(shape[:-1])
    blocks, groups = fan_in // inputs_per_block, shape[-1] // units_per_block
    per_row = blocks if pattern is None else pattern[1] // inputs_per_block
    return groups * (blocks // per_row), per_row, units_per_block, inputs_per_block


def candidate_scores(values, block=None, pattern=None):
    """`values` (kernel-shaped) summed over each candidate of `mask_layout`:
    an array `(rows, candidates)`; e.g. `candidate_scores(abs(kernel))` is
    each block's L1 norm (each weight's magnitude without blocks)."""
    values = np.asarray(values)
    rows, per_row, r, c = mask_layout(values.shape, block, pattern)
    fan_in, units = math.prod(values.shape[:-1]), values.shape[-1]
    grouped = values.reshape(fan_in, units).T.reshape(units // r, r, fan_in // c, c)
    return grouped.sum(axis=(1, 3)).reshape(rows, per_row)


def expand_candidates(chosen, shape, block=None, pattern=None):
    """The kernel-shaped boolean mask keeping the candidates `chosen`
    (`(rows, candidates)` booleans), the inverse of `candidate_scores`."""
    shape = tuple(int(d) for d in shape)
    rows, per_row, r, c = mask_layout(shape, block, pattern)
    fan_in, units = math.prod(shape[:-1]), shape[-1]
    block_mask = np.asarray(chosen, dtype=bool).reshape(units // r, fan_in // c)
    mask = block_mask.repeat(r, axis=0).repeat(c, axis=1)
    return np.ascontiguousarray(mask.T).reshape(shape)


def keep_smallest(keys, kept):
    """Booleans `(rows, candidates)`: each row keeps its `kept` smallest
    `keys` (stable order: ties go to the lower position)."""
    keys = np.asarray(keys)
    chosen = np.argsort(keys, axis=1, kind="stable")[:, :kept]
    out = np.zeros(keys.shape, dtype=bool)
    np.put_along_axis(out, chosen, True, axis=1)
    return out


def sparse_mask(shape, sparsity, seed, block=None, pattern=None):
    """The boolean connectivity mask of a kernel: `True` where a weight is kept.

    A pure, documented function of `(shape, sparsity, seed, block, pattern)`
    so that a saved model only needs to store the seed to rebuild the
    identical mask:

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
    kept_blocks * c` weights. With a pattern `(n, m)` the same keys are cut
    into runs of `m / c` consecutive blocks and every run keeps its
    `kept_per_run(sparsity, block, pattern) / c` smallest keys. Without
    blocks or pattern (`r = c = 1`) this is the mask of every earlier
    version. Only the raw output of NumPy's PCG64 bit generator is used (its
    stream is stable across NumPy versions, unlike
    `Generator.permutation`/`choice`), and the selection is done here, so a
    model saved today rebuilds the same mask with any future NumPy.

    Args:
        shape: kernel shape, rank 2, 3 or 4, output units on the last axis.
        sparsity: fraction of each unit's weights that are zero, in [0, 1).
        seed: non-negative integer.
        block: `None` or a block shape (see `check_block`); the input
            channels (`shape[-2]`) must be a multiple of `c` and the units
            (`shape[-1]`) a multiple of `r`.
        pattern: `None` or an N:M pattern (see `check_pattern`); the input
            channels must be a multiple of `m`.

    Returns:
        A NumPy `bool` array of `shape`; every `[..., u]` slice has exactly
        `kept` `True` entries.

    Raises:
        ValueError: unsupported rank, a kernel the block or pattern does not
            tile, or a unit would keep no weight at all.
    """
    shape = tuple(int(d) for d in shape)
    block = check_block(block)
    rows, per_row, _, inputs_per_block = mask_layout(shape, block, pattern)
    fan_in = math.prod(shape[:-1])
    blocks = fan_in // inputs_per_block
    if pattern is None:
        kept = int(round((1.0 - sparsity) * blocks))
    else:
        kept = kept_per_run(sparsity, block, pattern) // inputs_per_block
    if kept < 1:
        blocked = block is not None
        what = f"{per_row} blocks" if blocked else f"{per_row} weights"
        raise ValueError(
            f"SparseWeights(sparsity={sparsity}{f', block={block}' if blocked else ''}"
            f"{f', pattern={tuple(pattern)}' if pattern else ''}) would leave "
            f"every unit of a kernel of shape {shape} (fan-in {fan_in}"
            f"{f', {blocks} blocks' if blocked else ''}) with "
            f"{'no weight in a run of ' + what if pattern else f'round((1 - {sparsity}) * {blocks}) = 0'} "
            f"{'' if pattern else ('blocks' if blocked else 'weights')}. Use a lower sparsity"
            f"{', a smaller block' if blocked else ''} or a larger layer."
        )
    keys = np.random.PCG64(seed).random_raw(rows * per_row).reshape(rows, per_row)
    return expand_candidates(keep_smallest(keys, kept), shape, block, pattern)


def check_mask(mask, shape, block=None, pattern=None, name="mask"):
    """Raises `ValueError` unless `mask` is a legal mask for a kernel of
    `shape`: booleans (or 0/1) of that shape, made of whole blocks, and at
    most `n` kept weights in every run of `m` inputs under a pattern
    `(n, m)`. Returns it as a NumPy `bool` array."""
    mask = np.asarray(mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"`{name}` must have the kernel's shape {tuple(shape)}. "
                         f"Received: {name} of shape {tuple(mask.shape)}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"`{name}` must hold booleans (or 0 and 1); it holds other values.")
        mask = mask.astype(bool)
    counts = candidate_scores(mask.astype(np.int64), block, pattern)
    _, _, r, c = mask_layout(shape, block, pattern)
    if not np.isin(counts, (0, r * c)).all():
        raise ValueError(f"`{name}` must keep whole blocks of {r} units by {c} inputs "
                         f"(block={block}); some block is partly kept.")
    if pattern is not None and (counts.sum(axis=1) > pattern[0] * r).any():
        raise ValueError(f"`{name}` keeps more than {pattern[0]} of some run of {pattern[1]} "
                         f"consecutive inputs (pattern={tuple(pattern)}).")
    return mask


def mask_bits(mask, dtype):
    """The NumPy integers `keep_masked` ANDs a `dtype` kernel with: every bit
    set (-1) where `mask` is True, 0 elsewhere; None for a dtype without a
    same-width integer (`keep_masked` then selects)."""
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype not in _SAME_WIDTH_INT:
        return None
    return np.where(np.asarray(mask, dtype=bool), -1, 0).astype(_SAME_WIDTH_INT[dtype])


def keep_masked(w, mask, bits=None):
    """`where(mask, w, 0.0)`, bit for bit: `w` where `mask` is True, `+0.0`
    elsewhere (whatever `w` holds there: -0.0, inf and NaN included).

    Computed as one bitwise AND of `w`'s bits with `bits = mask_bits(mask,
    w.dtype)` (all ones where kept, all zeros elsewhere; pass it to skip
    rebuilding it), so one elementwise pass over the kernel instead of
    `where`'s two (`zeros_like`, then the select): on TensorFlow 0.76-0.79x
    the time of `where` on the paper's hidden kernels, 0.82-0.88x the time
    of a whole SGD step (`benchmarks/bench_constraints.py`). Other dtypes,
    and a `mask` that is a tensor (a learned mask's variable), take `where`.
    """
    for name, value in (("mask", mask), ("bits", bits)):
        if value is not None and tuple(value.shape) != tuple(w.shape):
            raise ValueError(f"`{name}` must have the kernel's shape {tuple(w.shape)}. "
                             f"Received: {name} of shape {tuple(value.shape)}")
    dtype = keras.backend.standardize_dtype(w.dtype)
    if bits is None and isinstance(mask, np.ndarray):
        bits = mask_bits(mask, dtype)
    if bits is None:
        return ops.where(mask, w, ops.zeros_like(w))
    integers = _SAME_WIDTH_INT[dtype]
    return ops.view(ops.bitwise_and(ops.view(w, integers), ops.convert_to_tensor(bits)), dtype)


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

    _min_sparsity_open = True  # a fixed mask of sparsity 0 would be no mask

    def __init__(self, sparsity, seed=None, block=None, pattern=None):
        self.sparsity = check_float("sparsity", sparsity, 0, 1, self._min_sparsity_open, True)
        self.block = check_block(block)
        self.pattern = check_pattern(pattern, self.block)
        if self.pattern is not None:
            n, m = self.pattern
            if self.sparsity < 1 - n / m - 1e-12:
                raise ValueError(
                    f"`sparsity` must be at least 1 - n / m = {1 - n / m:g} with pattern={self.pattern} "
                    f"(at most {n} of every {m} weights are kept). Received: sparsity={sparsity!r}"
                )
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        self.seed = check_int("seed", seed, 0)
        self._masks = {}
        self._mask_bits = {}

    def mask(self, shape):
        """The boolean NumPy mask for a kernel of `shape` (cached per shape)."""
        shape = tuple(int(d) for d in shape)
        if shape not in self._masks:
            self._masks[shape] = sparse_mask(shape, self.sparsity, self.seed, self.block, self.pattern)
        return self._masks[shape]

    def __call__(self, w):
        w = ops.convert_to_tensor(w)  # Keras hands over the Variable itself
        key = (tuple(int(d) for d in w.shape), keras.backend.standardize_dtype(w.dtype))
        if key not in self._mask_bits:
            self._mask_bits[key] = mask_bits(self.mask(key[0]), key[1])
        return keep_masked(w, self.mask(key[0]), self._mask_bits[key])

    def get_config(self):
        config = {"sparsity": self.sparsity, "seed": self.seed}
        if self.block is not None:  # configs without blocks stay as they were
            config["block"] = list(self.block)
        if self.pattern is not None:
            config["pattern"] = list(self.pattern)
        return config


@_serializable
class LearnedSparseWeights(SparseWeights):
    """The constraint of a layer with `mask="learned"`: keeps the weights
    where the layer's mask *variable* is `True`, zeros the rest.

    Until `attach` gives it the variable (the layer does so in `build`), the
    mask is `sparse_mask(shape, sparsity, seed, block, pattern)`, the
    variable's initial value (`sparsity = 0` allowed: every weight kept).
    Keras applies it after every optimizer step, like `SparseWeights`; the
    callbacks of `keras_sparse.callbacks` change the variable between steps.

    On TensorFlow and PyTorch the step reads the variable itself. JAX's
    optimizer step is a pure function of the trainable and optimizer
    variables only (it cannot read a non-trainable variable), so there the
    step uses a copy of the mask taken when the mask was last set through
    the layer (`set_mask`, `set_weights`, loading), compiled into the step
    as a constant; after changing it during `fit`, the step must be
    compiled again (`model.make_train_function(force=True)`), which the
    keras_sparse callbacks do.
    """

    _min_sparsity_open = False

    def __init__(self, sparsity, seed=None, block=None, pattern=None):
        super().__init__(sparsity, seed, block, pattern)
        self.variable = None
        self.value = None  # the NumPy copy (the step's mask on JAX)

    def attach(self, variable):
        self.variable = variable
        self.value = ops.convert_to_numpy(variable).astype(bool)

    def current(self):
        """The mask now, as NumPy booleans (needs `attach`)."""
        return ops.convert_to_numpy(self.variable).astype(bool)

    def __call__(self, w):
        w = ops.convert_to_tensor(w)
        if self.variable is None:
            mask = self.mask(w.shape)
        elif keras.backend.backend() == "jax":
            mask = self.value
        else:
            mask = ops.convert_to_tensor(self.variable)
        return keep_masked(w, mask)


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
