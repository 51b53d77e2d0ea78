"""docs/semantics.md re-derived in NumPy, independently of keras_sparse's code paths.

Selection by a stable descending sort (lower index first among ties, NaN after
every number), then the threshold rule; a NaN never wins and a loser outputs 0
(even `±inf`). `boosted` in float32 (float64 for float64 inputs). Duty cycles
by the update formula written out step by step, in float64 rounded once.
"""

import numpy as np


def boost_factors(duty_cycles, boost_strength):
    """exp(-b * d) for float32 b, d, rounded once to float32."""
    product = np.float64(np.float32(boost_strength)) * np.asarray(duty_cycles, np.float32).astype(np.float64)
    return np.exp(-product).astype(np.float32)


def _floats(x):
    """x as a float array: float64 stays, float16/bfloat16 stay (exact in
    float32), anything else becomes float32."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else x.astype(np.float32)


def _boosted(x, factors):
    """x * factors in float64 for float64 x, else float32 (whatever x's dtype)."""
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    return x.astype(dtype) * factors.astype(dtype)


def _winners(boosted, k, break_ties, relu):
    """Winner mask along the last axis of a 2-D float array."""
    nan = np.isnan(boosted)
    ranked = np.where(nan, -np.inf, boosted)
    mask = np.zeros(ranked.shape, bool)
    if k > 0:
        # descending, NaN after every number (even -inf), lower index first among ties
        order = np.lexsort((-ranked, nan), axis=-1)  # stable: last key is the primary one
        rows = np.arange(ranked.shape[0])[:, None]
        if break_ties:
            mask[rows, order[:, :k]] = True
        else:
            threshold = ranked[rows[:, 0], order[:, k - 1]][:, None]
            mask = ranked >= threshold
    if relu:
        mask &= ranked > 0
    return mask & ~np.isnan(boosted)  # NaN never wins


def _keep(x, mask):
    """x at the winners, 0 elsewhere (a losing ±inf too); a NaN unit stays NaN."""
    return np.where(mask | np.isnan(x), x, np.zeros((), x.dtype))


def kwinners(x, duty_cycles, k, boost_strength, break_ties=False, relu=False, mask=False):
    """The layer output for `(batch, ..., n)`, winners along the last axis of
    every row; with `mask=True` the boolean winner mask instead."""
    x = _floats(x)
    boosted = _boosted(x, boost_factors(duty_cycles, boost_strength))  # broadcast over rows
    winners = _winners(boosted.reshape(-1, x.shape[-1]), k, break_ties, relu).reshape(x.shape)
    return winners if mask else _keep(x, winners)


def kwinners_feature_map(x, duty_cycles, k, boost_strength, local=False, break_ties=False,
                         relu=False, data_format="channels_last", mask=False):
    """Any feature map `(batch, *spatial, c)` (or channels first): winners
    among the channels of each position (`local`) or all values of a sample."""
    x = _floats(x)
    if data_format == "channels_first":  # ties are broken in (*spatial, c) order
        x = np.moveaxis(x, 1, -1)
    boosted = _boosted(x, boost_factors(duty_cycles, boost_strength))  # broadcast over channels
    rows = boosted.reshape(-1, x.shape[-1]) if local else boosted.reshape(x.shape[0], np.prod(x.shape[1:]))
    winners = _winners(rows, k, break_ties, relu).reshape(x.shape)
    y = winners if mask else _keep(x, winners)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return y


kwinners1d = kwinners2d = kwinners3d = kwinners_feature_map


def duty_cycle_update(duty_cycles, learning_iterations, y, duty_cycle_period, channel_axis):
    """One training step's state update from the layer output `y`; an empty
    batch changes nothing (the formula would be 0 / 0 before any sample)."""
    batch = y.shape[0]
    if batch == 0:
        return np.float32(duty_cycles), learning_iterations
    active = (y > 0).astype(np.float64)
    other_axes = tuple(a for a in range(y.ndim) if a != channel_axis % y.ndim)
    positions = np.prod([y.shape[a] for a in other_axes[1:]], dtype=np.float64)
    count = active.sum(axis=other_axes) / positions
    learning_iterations = learning_iterations + batch
    period = np.float64(min(duty_cycle_period, learning_iterations))
    # float64, rounded once to float32 (as the layers do)
    duty = (np.float32(duty_cycles).astype(np.float64) * (period - batch) + count) / period
    return duty.astype(np.float32), learning_iterations


# Sparsity across the batch (keras_sparse.batch_sparsity) and DropConnect, by
# sorting: the kept entries are those >= the k-th of a descending sort.


def _kth_largest_kept(rows, k):
    """Boolean mask of the entries of each row >= its k-th largest (NaN as
    -inf for the ranking, never kept)."""
    ranked = np.where(np.isnan(rows), -np.inf, rows)
    kth = -np.sort(-ranked, axis=-1)[:, k - 1:k]
    return (ranked >= kth) & ~np.isnan(rows)


def lifetime_sparsity(x, percent_on):
    """WTA lifetime sparsity in training: each unit (non-batch position) keeps
    its max(1, round(percent_on * batch)) largest values over the batch."""
    x = np.asarray(x, np.float32)
    k = min(max(1, round(percent_on * x.shape[0])), x.shape[0])
    units = x.reshape(x.shape[0], -1).T
    kept = _kth_largest_kept(units, k).T.reshape(x.shape)
    return np.where(kept | np.isnan(x), x, np.float32(0))


def batch_topk(x, k):
    """BatchTopK in training: the k * batch largest values of the whole batch
    that are > 0; returns (y, the smallest kept value or inf)."""
    x = np.asarray(x, np.float32)
    kept = _kth_largest_kept(x.reshape(1, -1), k * x.shape[0]).reshape(x.shape) & (x > 0)
    return np.where(kept | np.isnan(x), x, np.float32(0)), (x[kept].min() if kept.any() else np.inf)


def batch_topk_threshold(minima, momentum):
    """The threshold after training batches whose smallest kept values are
    `minima` (inf: nothing kept, no update): an average over the first
    1 / (1 - momentum) batches, then a moving average; float64 here."""
    threshold, updates = 0.0, 0
    for m in minima:
        if np.isfinite(m):
            updates += 1
            threshold += max(1 - momentum, 1 / updates) * (float(m) - threshold)
    return threshold, updates


def jump_relu(x, threshold):
    """BatchTopK at inference: x where x >= threshold and x > 0."""
    x = np.asarray(x, np.float32)
    return np.where(((x >= threshold) & (x > 0)) | np.isnan(x), x, np.float32(0))


def drop_connect_dense(x, kernel, bias, keep_mask, rate):
    """x @ (keep_mask * kernel) / (1 - rate) + bias, in float64."""
    kept = np.where(keep_mask, kernel, 0).astype(np.float64)
    return np.asarray(x, np.float64) @ kept / (1 - rate) + bias
