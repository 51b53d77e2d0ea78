"""Learned masks: the rules that choose them (docs/learned_sparsity.md).

Pure NumPy functions of a kernel and its mask, shared by the callbacks of
`keras_sparse.callbacks` (`MagnitudePruning`, `RigL`, `SET`) and by
`keras_sparse.sparsify`, plus `dense_gradients`, the one function here that
needs a backend's autodiff. Every mask is chosen among the *candidates* of
`keras_sparse.constraints.mask_layout` (single weights, or whole blocks
`(r, c)`), grouped in *rows* (the candidates of a unit, or of one run of `m`
inputs under an N:M pattern); a candidate's magnitude is the sum of `|w|`
over it. Ties are broken by position (stable sorts: the lower flat position
is kept first), so every rule is a deterministic function of its inputs,
the same on every backend.
"""

import math

import keras
import numpy as np

from keras_sparse._validation import check_float
from keras_sparse.constraints import (
    candidate_scores,
    expand_candidates,
    kept_per_run,
    mask_layout,
)


def polynomial_sparsity(step, final_sparsity, begin_step, end_step, initial_sparsity=0.0, power=3):
    """Zhu & Gupta's (2017) gradual pruning schedule at optimizer step `step`:

        p = clip((step - begin_step) / (end_step - begin_step), 0, 1)
        s = final_sparsity + (initial_sparsity - final_sparsity) * (1 - p) ** power

    `power = 3` is their cubic schedule: pruning is fast at first and slows
    down as the target is approached.
    """
    p = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - p) ** power


def cosine_drop_fraction(step, drop_fraction, end_step):
    """RigL's (Evci et al., 2020) annealed drop fraction at step `step`:

        f = drop_fraction / 2 * (1 + cos(pi * min(step, end_step) / end_step))

    from `drop_fraction` at step 0 down to 0 at `end_step`.
    """
    return drop_fraction / 2.0 * (1.0 + math.cos(math.pi * min(step, end_step) / end_step))


def _ranks(keys):
    """Each entry's 0-based rank within its row, by ascending `keys` (stable)."""
    order = np.argsort(keys, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(keys.shape[1])[None, :].repeat(keys.shape[0], 0), axis=1)
    return ranks


def magnitude_mask(kernel, mask, sparsity, block=None, pattern=None):
    """The mask that keeps the largest-magnitude candidates of `mask`.

    Without a pattern, over the whole layer (as tfmot's `prune_low_magnitude`):

        kept = round((1 - sparsity) * candidates)  candidates of the largest
        sum |w| over the candidate, among those `mask` keeps

    With a pattern `(n, m)`, in every run of `m` inputs: its
    `min(kept_per_run(sparsity, block, pattern) / c, kept now)` largest. A
    candidate outside `mask` is never kept (pruning only removes), so
    `kept` is at most the number `mask` keeps.

    Args:
        kernel: the kernel (NumPy).
        mask: its current mask (booleans of the kernel's shape).
        sparsity: the target, in [0, 1).
        block, pattern: the layer's (see `keras_sparse.constraints`).

    Returns:
        The new boolean mask, of the kernel's shape.
    """
    shape = np.shape(kernel)
    scores = candidate_scores(np.abs(kernel), block, pattern)
    active = candidate_scores(np.asarray(mask, dtype=np.int64), block, pattern) > 0
    keys = np.where(active, -scores, np.inf)  # smallest key = largest magnitude
    if pattern is None:
        flat = keys.reshape(1, -1)
        kept = min(int(round((1.0 - sparsity) * flat.size)), int(active.sum()))
        chosen = (_ranks(flat) < kept).reshape(keys.shape)
    else:
        c = mask_layout(shape, block, pattern)[3]
        kept = np.minimum(kept_per_run(sparsity, block, pattern) // c, active.sum(axis=1))
        chosen = _ranks(keys) < kept[:, None]
    return expand_candidates(chosen, shape, block, pattern)


def global_magnitude_masks(kernels, masks, sparsity):
    """Magnitude pruning across layers (`MagnitudePruning(global_=True)`):
    the `round((1 - sparsity) * N)` weights of largest `|w|` among those the
    masks keep, `N` the total number of weights of all `kernels` (single
    weights only: layers with blocks or patterns are pruned per layer).
    Ties go to the earlier layer, then the lower position."""
    flat = np.concatenate([np.where(np.asarray(m, bool), -np.abs(k), np.inf).reshape(-1)
                           for k, m in zip(kernels, masks)])
    kept = min(int(round((1.0 - sparsity) * flat.size)), int(np.isfinite(flat).sum()))
    chosen = _ranks(flat[None, :])[0] < kept
    out, start = [], 0
    for k in kernels:
        out.append(chosen[start:start + np.size(k)].reshape(np.shape(k)))
        start += np.size(k)
    return out


def drop_and_grow(kernel, mask, drop_fraction, grow_scores, block=None, pattern=None):
    """One update of dynamic sparse training (RigL, SET), row by row.

    In every row (a unit's candidates, or one run of `m` inputs under an N:M
    pattern) keeping `k` candidates:

        d = round(drop_fraction * k)
        drop the d kept candidates of smallest sum |w|
        grow the d candidates of largest `grow_scores` among those not kept
             after the drop (a candidate just dropped may be grown again)
        kernel = where(kept after the drop, kernel, 0)

    so every row keeps exactly `k` candidates (the layer's density, per unit
    and per run, is unchanged) and every grown weight starts at 0.

    Args:
        kernel: the kernel (NumPy).
        mask: its current mask (booleans).
        drop_fraction: in [0, 1].
        grow_scores: `(rows, candidates)` scores of `mask_layout`; RigL's
            is `candidate_scores(abs(dense gradient))`, SET's random.
        block, pattern: the layer's.

    Returns:
        `(new mask, new kernel)`.
    """
    shape = np.shape(kernel)
    scores = candidate_scores(np.abs(kernel), block, pattern)
    active = candidate_scores(np.asarray(mask, dtype=np.int64), block, pattern) > 0
    dropped_count = np.rint(drop_fraction * active.sum(axis=1)).astype(np.int64)[:, None]
    dropped = _ranks(np.where(active, scores, np.inf)) < dropped_count
    survivors = active & ~dropped
    grown = _ranks(np.where(survivors, np.inf, -np.asarray(grow_scores, dtype=np.float64))) < dropped_count
    new_mask = expand_candidates(survivors | grown, shape, block, pattern)
    new_kernel = np.where(expand_candidates(survivors, shape, block, pattern), kernel, 0).astype(kernel.dtype)
    return new_mask, new_kernel


def random_scores(shape, seed, step, index, block=None, pattern=None):
    """SET's grow scores for layer `index` at `step`: raw draws of NumPy's
    PCG64 seeded with the `SeedSequence` of `(seed, step, index)`, one per
    candidate: the same on every backend and in a resumed run."""
    rows, per_row, _, _ = mask_layout(shape, block, pattern)
    keys = np.random.PCG64([seed, step, index]).random_raw(rows * per_row)
    return keys.reshape(rows, per_row).astype(np.float64)


def erk_densities(shapes, sparsity):
    """Erdős–Rényi-kernel densities (Evci et al., 2020) for a global `sparsity`.

    Layer `l` with kernel shape `(k_1, ..., k_d)` (e.g. `(kh, kw, in, out)`)
    and `N_l = prod(k_i)` weights gets

        density_l = eps * sum(k_i) / prod(k_i)

    with `eps` chosen so that `sum(density_l * N_l) = (1 - sparsity) *
    sum(N_l)`; while the largest density exceeds 1, the layers of largest
    `sum(k_i) / prod(k_i)` are made dense (density 1) and `eps` is solved
    again over the others. Small layers are thus kept denser than large ones.

    Returns:
        A list of densities in (0, 1].
    """
    sparsity = check_float("sparsity", sparsity, 0, 1, False, True)
    sizes = [math.prod(s) for s in shapes]
    raw = [sum(s) / math.prod(s) for s in shapes]
    dense = set()
    while True:
        budget = (1.0 - sparsity) * sum(sizes) - sum(sizes[i] for i in dense)
        divisor = sum(raw[i] * sizes[i] for i in range(len(shapes)) if i not in dense)
        if divisor == 0:
            return [1.0] * len(shapes)
        eps = budget / divisor
        free = [i for i in range(len(shapes)) if i not in dense]
        largest = max(raw[i] for i in free)
        if eps * largest <= 1.0:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]
        dense.update(i for i in free if raw[i] == largest)


def dense_gradients(model, kernels, x, y):
    """The gradient of the model's loss on `(x, y)` with respect to each of
    `kernels` (its variables), as NumPy: the *dense* gradient, non-zero
    outside the masks too (the forward pass uses the kernel as stored, 0
    outside the mask, so no mask stops it).

    The loss is the compiled loss (`model.loss`, one loss for one output),
    averaged over the batch, of `model(x, training=True)`; with the
    backend's own autodiff (TensorFlow's `GradientTape`, `jax.grad` over
    `model.stateless_call`, PyTorch's `autograd.grad`). Every
    non-trainable variable (k-winners duty cycles, batch-norm statistics,
    seed states, the masks) is restored afterwards, so the pass leaves the
    model as it was.
    """
    loss_fn = keras.losses.get(model.loss) if isinstance(model.loss, str) else model.loss
    if loss_fn is None or isinstance(loss_fn, (list, tuple, dict)) or not callable(loss_fn):
        raise ValueError(
            "RigL needs a model compiled with one loss for one output (`model.compile(loss=...)`). "
            f"Received: model.loss={model.loss!r}"
        )
    ops = keras.ops
    x = ops.convert_to_tensor(x)
    y = ops.convert_to_tensor(y)
    state = [(v, ops.convert_to_numpy(v)) for v in model.non_trainable_variables]
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            trainable = model.trainable_variables
            positions = [next(i for i, v in enumerate(trainable) if v is k) for k in kernels]
            values = [v.value for v in trainable]
            non_trainable = [v.value for v in model.non_trainable_variables]

            def loss_of(chosen):
                current = list(values)
                for i, value in zip(positions, chosen):
                    current[i] = value
                y_pred, _ = model.stateless_call(current, non_trainable, x, training=True)
                return ops.mean(loss_fn(y, y_pred))

            grads = jax.grad(loss_of)([values[i] for i in positions])
        elif backend == "torch":
            import torch

            with torch.enable_grad():
                loss = ops.mean(loss_fn(y, model(x, training=True)))
                grads = torch.autograd.grad(loss, [k.value for k in kernels], allow_unused=True)
        elif backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = ops.mean(loss_fn(y, model(x, training=True)))
            grads = tape.gradient(loss, list(kernels))
        else:
            raise ValueError(f"dense_gradients supports TensorFlow, JAX and PyTorch; backend is {backend}.")
    finally:
        for variable, value in state:
            variable.assign(value)
    return [np.zeros(k.shape, np.float32) if g is None else np.asarray(ops.convert_to_numpy(g), np.float32)
            for k, g in zip(kernels, grads)]

