"""k-winners-take-all as pure functions (Ahmad & Scheinkman, 2019, Sec. 3).

For one sample with activations `x` (n units) and per-unit duty cycles `d`:

    boosted = x * exp(-boost_strength * d)
    winners = the k units with the largest `boosted`
    y       = x at the winners, 0 elsewhere        (boosting only chooses)
    dy/dx   = 1 at the winners, 0 elsewhere        (like ReLU)

(`straight_through` gives the same `y` the gradient `dy/dx = 1` everywhere,
the control the layers offer as `gradient="straight_through"`.)

`exp(-b * d)` ranks units exactly like the paper's `exp((k/n - d) * b)`: the two
differ by the positive factor `exp(b * k / n)`, the same for every unit.

Winners:

- `break_ties=False`: every unit with `boosted >= t` wins, `t` the k-th largest
  boosted value of the sample (ties at `t` may give more than k winners).
- `break_ties=True`: exactly k winners; among units tied at `t` the lower index
  wins (the order of `tf.math.top_k`).
- `relu=True`: additionally no unit with `boosted <= 0` wins.
- `k == 0`: no winners.

Two forms of the same values: `differentiable=True` (training) returns
`where(winner, x, 0)` with the custom gradient `where(winner, upstream, 0)`;
`differentiable=False` (the layers' inference path, exported graphs) returns
`where(boosted < t, 0, x)` (with `relu`, also 0 where `boosted <= 0`), the
fewest ops, and registers no custom gradient.

Precision: `boosted` is computed in float32 (float64 for float64 inputs)
whatever the dtype of `x`, so float16 and bfloat16 activations choose the
winners their exact values choose, not those of a rounded product. The output
keeps the dtype of `x`. Integer inputs are rejected: cast them first. A
boosted value below float32's smallest normal number (1.2e-38) may be flushed
to 0 by the hardware (TensorFlow's CPU kernels do) and then ranks as 0; the
layers bound `boost_strength` so that this needs activations below ~6e-17.

Non-finite values: a NaN unit never wins (it ranks below every number, even
`-inf`, and is left out when k exceeds the numbers of a row), so it never
counts as active and gets no gradient, but its output stays NaN, so bad data
surfaces in the loss exactly as it would through a ReLU. `+inf` and `-inf` rank
as the largest and smallest numbers; a losing `±inf` outputs 0 like any loser
(`y = where(winner, x, 0)`, not `x * mask`, which would give `inf * 0 = NaN`).

Geometry: `kwinners` picks winners along the last axis of `(batch, ..., n)`
(every leading position is a row); `kwinners1d`, `kwinners2d` and `kwinners3d`
take feature maps with channels last or first and pick per position
(`local=True`) or per sample (`local=False`).

These functions hold no state; the layers in `keras_sparse.layers` own the duty
cycles and boost strength and pass them in.
"""

import math

import keras
from keras import ops

from keras_sparse._precision import float64_context
from keras_sparse._validation import check_kwinners_args
from keras_sparse.selection import kth_largest  # noqa: F401  (public here since 0.1)


def boost_factors(duty_cycles, boost_strength):
    """`exp(-boost_strength * duty_cycles)`, rounded to float32.

    Computed in float64 (on JAX too, see `keras_sparse._precision`): float32 `exp` on CPU runs
    through SIMD packets and a scalar tail that can differ by one ulp, so two
    units with equal activation and duty cycle could get different boosted
    values depending on their position, breaking ties at random. In float64
    the product of two float32 numbers is exact and the rounded result is the
    same everywhere.
    """
    with float64_context():
        duty_cycles = ops.cast(ops.cast(duty_cycles, "float32"), "float64")
        boost_strength = ops.cast(ops.cast(boost_strength, "float32"), "float64")
        return ops.cast(ops.exp(-boost_strength * duty_cycles), "float32")


def winner_mask(boosted, k, break_ties=False, relu=False, portable=True):
    """1.0 where a unit wins along the last axis of `boosted`, else 0.0.

    See the module docstring for the rules; `portable` as in
    `keras_sparse.selection.kth_largest`.
    """
    boosted = ops.convert_to_tensor(boosted)
    _check_k(k, boosted.shape[-1])
    if k == 0:
        return ops.zeros_like(boosted)
    threshold = _threshold(boosted, k, portable, None)
    return ops.cast(_winners(boosted, threshold, k, break_ties, relu), boosted.dtype)


def _check_k(k, n):
    if not 0 <= k <= n:
        raise ValueError(f"`k` must be in [0, {n}] (the number of units). Received: k={k}")


def _threshold(boosted, k, portable, kernel, finite=False):
    """The k-th largest boosted value of each row, NaN ranked below every
    number (so it never displaces one; it fills in only when k exceeds the
    numbers of a row, and then `-inf` is the threshold). `finite=True`
    promises no NaN (e.g. values dequantized from int8) and skips that step."""
    ranked = boosted if finite else ops.where(boosted == boosted, boosted, float("-inf"))
    return kth_largest(ranked, k, portable=portable, kernel=kernel)


def _winners(boosted, threshold, k, break_ties, relu):
    """The winner rule (boolean; `threshold` the k-th largest): `boosted >=
    threshold`, or with `break_ties` the lowest-index k of them; with `relu`
    also `boosted > 0`. NaN compares false, so it never wins. Counts are
    float32 (exact up to 2^24 units per row): TFLite Micro runs them."""
    if break_ties:
        above = boosted > threshold
        tied = ops.cast(boosted == threshold, "float32")
        room = float(k) - ops.sum(ops.cast(above, "float32"), axis=-1, keepdims=True)
        tied_before = ops.cumsum(tied, axis=-1) - tied
        winners = ops.logical_or(above, ops.logical_and(tied > 0, tied_before < room))
    else:
        winners = boosted >= threshold
    if relu:
        winners = ops.logical_and(winners, boosted > 0)
    return winners


def _losers(boosted, threshold, k, break_ties, relu):
    """The numbers that do not win (NaN is neither): where the output is 0.
    Without `break_ties` one comparison, `boosted < threshold` (NaN compares
    false), the cheapest exact form of the rule for inference graphs."""
    if break_ties:
        return ops.logical_and(boosted == boosted, ops.logical_not(_winners(boosted, threshold, k, True, relu)))
    losers = boosted < threshold
    if relu:
        losers = ops.logical_or(losers, boosted <= 0)
    return losers


def _selection_dtype(dtype):
    """The dtype `boosted` is computed in: float64 for float64, else float32."""
    return "float64" if keras.backend.standardize_dtype(dtype) == "float64" else "float32"


def _floating_input(x, function):
    x = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(x.dtype):
        raise ValueError(
            f"`{function}` expects floating-point activations `x`; received dtype "
            f"{keras.backend.standardize_dtype(x.dtype)}. Cast them first, e.g. "
            "`keras.ops.cast(x, 'float32')` (the layers do this for you)."
        )
    return x


def _boost_factors_for(duty_cycles, boost_strength, units, function):
    """`boost_factors`, after checking there is one duty cycle per unit (channel)."""
    duty_cycles = ops.convert_to_tensor(duty_cycles)
    if tuple(duty_cycles.shape) != (units,):
        raise ValueError(
            f"`{function}` needs one duty cycle per unit (channel): `duty_cycles` of shape "
            f"({units},). Received: duty_cycles of shape {tuple(duty_cycles.shape)}"
        )
    return boost_factors(duty_cycles, boost_strength)


def _keep_winners(x, factors, k, break_ties, relu, portable, differentiable=True, kernel=None,
                  finite=False):
    """`where(winner, x, 0)` (NaN stays NaN) along the last axis, the rows'
    threshold by `kth_largest(..., portable, kernel)`.

    Both forms compute the output as `where(loser, 0, x)`, one comparison
    and one select after the threshold (without `break_ties`, `loser` is
    `boosted < t`: NaN compares false and passes through as itself).
    `differentiable=True` (training) adds the custom gradient
    `where(winner, upstream, 0)` (`ops.custom_gradient`): it keeps the
    boolean winner mask, nothing recomputed, no float mask materialized, and
    a NaN or infinite `upstream` at a loser gives 0, not `NaN` (`inf * 0`).
    `differentiable=False` (inference) registers no custom gradient (its
    autodiff gradient passes `upstream` at winners and NaN positions);
    `finite=True` promises `x` holds no NaN (an int8 model's dequantized
    values) and saves the step that ranks NaN last.
    """
    _check_k(k, x.shape[-1])
    dtype = _selection_dtype(x.dtype)
    factors = ops.cast(factors, dtype)
    zero = ops.cast(0, x.dtype)
    if not differentiable:
        boosted = ops.cast(x, dtype) * factors
        if k == 0:
            return ops.where(boosted == boosted, zero, x)
        threshold = _threshold(boosted, k, portable, kernel, finite)
        return ops.where(_losers(boosted, threshold, k, break_ties, relu), zero, x)

    @ops.custom_gradient
    def keep(x):
        boosted = ops.cast(x, dtype) * factors
        if k == 0:
            winners = ops.zeros_like(boosted, dtype="bool")
            y = ops.where(boosted == boosted, zero, x)
        else:
            threshold = _threshold(boosted, k, portable, kernel)
            winners = _winners(boosted, threshold, k, break_ties, relu)
            if break_ties:  # the winners are computed already: no second rule
                losers = ops.logical_not(ops.logical_or(winners, boosted != boosted))
            else:
                losers = _losers(boosted, threshold, k, break_ties, relu)
            y = ops.where(losers, zero, x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.where(winners, upstream, ops.cast(0, upstream.dtype))

        return y, grad

    return keep(x)


def straight_through(x, y):
    """`y`'s values with the identity's gradient with respect to `x`:

        value = y                 (exactly: `0 + y`)
        d/dx  = 1 where x is finite, 0 where it is NaN or ±inf

    computed as `f - stop_gradient(f) + stop_gradient(y)` with
    `f = where(isfinite(x), x, 0)`: no custom gradient (the same graph on
    every backend), and no arithmetic on a non-finite `x`. Used on a
    k-winners output it is the straight-through estimator (Bengio et al.,
    2013): the forward pass keeps the winners, the backward pass reaches
    every unit as if the layer were the identity. (An infinite winner's
    gradient is 0 here; the winners-only gradient passes it.)

    Args:
        x: the floating-point input whose gradient is taken.
        y: a tensor of `x`'s shape and dtype (e.g. `kwinners(x, ...)`).
    """
    x = ops.convert_to_tensor(x)
    y = ops.convert_to_tensor(y)
    if tuple(x.shape) != tuple(y.shape) or x.dtype != y.dtype:
        raise ValueError("`straight_through` needs x and y of one shape and dtype. Received: x of shape "
                         f"{x.shape} and dtype {x.dtype}, y of shape {y.shape} and dtype {y.dtype}")
    finite = ops.where(ops.isfinite(x), x, ops.zeros_like(x))
    return finite - ops.stop_gradient(finite) + ops.stop_gradient(y)


def kwinners(x, duty_cycles, k, boost_strength, break_ties=False, relu=False, *, portable=True,
             differentiable=True):
    """k-winners-take-all along the last axis of `x` `(batch, ..., n)`.

    Every row `x[b, ..., :]` (a sample of a dense layer, a time step of a
    sequence, a token) keeps its own k winners among its `n` units; the duty
    cycles are per unit, shared by every row.

    Args:
        x: floating-point activations, shape `(batch, n)` or `(batch, ..., n)`.
        duty_cycles: shape `(n,)`, each unit's recent fraction of active rows.
        k: number of winners per row, `0 <= k <= n`.
        boost_strength: `b >= 0` in `boosted = x * exp(-b * duty_cycles)`.
        break_ties: if True, exactly `k` winners per row.
        relu: if True, units with `boosted <= 0` never win.
        portable: see `keras_sparse.selection.kth_largest`; results are
            identical either way.
        differentiable: True: the gradient is `where(winner, upstream, 0)`
            (a custom gradient). False: the inference form, the same values from
            fewer ops and no custom gradient (what the layers run with
            `training=False`, and what exported graphs hold).

    Returns:
        `x` at the winners and 0 elsewhere, same shape and dtype as `x`.
    """
    check_kwinners_args(k, boost_strength)
    x = _floating_input(x, "kwinners")
    if len(x.shape) < 2 or x.shape[-1] is None:
        raise ValueError(
            f"`kwinners` expects x of rank >= 2 (batch, ..., n) with a known last "
            f"dimension n; got shape {x.shape}."
        )
    factors = _boost_factors_for(duty_cycles, boost_strength, x.shape[-1], "kwinners")
    if len(x.shape) == 2:
        return _keep_winners(x, factors, k, break_ties, relu, portable, differentiable)
    rows = ops.reshape(x, (-1, x.shape[-1]))
    return ops.reshape(_keep_winners(rows, factors, k, break_ties, relu, portable, differentiable),
                       ops.shape(x))


def _kwinners_feature_map(x, spatial_rank, duty_cycles, k, boost_strength, local, break_ties,
                          relu, data_format, portable, differentiable, function):
    """`kwinners1d` / `kwinners2d` / `kwinners3d` for `spatial_rank` 1, 2, 3."""
    check_kwinners_args(k, boost_strength)
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    x = _floating_input(x, function)
    rank = spatial_rank + 2
    if len(x.shape) != rank:
        raise ValueError(f"`{function}` expects x of rank {rank}; got shape {x.shape}.")
    if data_format == "channels_first":  # to channels last; ties are broken in that order
        x = ops.transpose(x, (0, *range(2, rank), 1))
    dims = x.shape[1:]
    if None in dims:
        raise ValueError(f"`{function}` needs every non-batch dimension known; got shape {x.shape}.")
    channels, positions = dims[-1], math.prod(dims[:-1])
    factors = _boost_factors_for(duty_cycles, boost_strength, channels, function)
    if local:  # one row of c channels per position
        rows = ops.reshape(x, (-1, channels))
    else:  # one row of positions * c values per sample, channels fastest
        rows = ops.reshape(x, (-1, positions * channels))
        factors = ops.tile(factors, [positions])
    y = ops.reshape(_keep_winners(rows, factors, k, break_ties, relu, portable, differentiable),
                    ops.shape(x))
    if data_format == "channels_first":
        y = ops.transpose(y, (0, rank - 1, *range(1, rank - 1)))
    return y


def kwinners1d(x, duty_cycles, k, boost_strength, local=False, break_ties=False, relu=False,
               data_format="channels_last", *, portable=True, differentiable=True):
    """k-winners-take-all over a sequence of feature vectors.

    `x` is `(batch, steps, c)` (`"channels_last"`) or `(batch, c, steps)`
    (`"channels_first"`); duty cycles per channel, shape `(c,)`.
    `local=True`: the k winners are chosen among the `c` channels of each
    step. `local=False`: among all `steps * c` values of a sample. Other
    arguments (`portable`, `differentiable`) and the result as in `kwinners`.
    """
    return _kwinners_feature_map(x, 1, duty_cycles, k, boost_strength, local, break_ties, relu,
                                 data_format, portable, differentiable, "kwinners1d")


def kwinners2d(x, duty_cycles, k, boost_strength, local=False, break_ties=False, relu=False,
               data_format="channels_last", *, portable=True, differentiable=True):
    """k-winners-take-all over convolutional activations.

    `x` is `(batch, h, w, c)` (`"channels_last"`) or `(batch, c, h, w)`
    (`"channels_first"`); duty cycles per channel, shape `(c,)`.
    `local=True`: the k winners are chosen among the `c` channels at each
    location. `local=False`: among all `h*w*c` values of a sample (ties broken
    in `(h, w, c)` order). Other arguments (`portable`, `differentiable`) and the result as in `kwinners`.
    """
    return _kwinners_feature_map(x, 2, duty_cycles, k, boost_strength, local, break_ties, relu,
                                 data_format, portable, differentiable, "kwinners2d")


def kwinners3d(x, duty_cycles, k, boost_strength, local=False, break_ties=False, relu=False,
               data_format="channels_last", *, portable=True, differentiable=True):
    """k-winners-take-all over volumetric activations.

    `x` is `(batch, d, h, w, c)` (`"channels_last"`) or `(batch, c, d, h, w)`
    (`"channels_first"`); duty cycles per channel, shape `(c,)`.
    `local=True`: the k winners are chosen among the `c` channels of each
    voxel. `local=False`: among all `d*h*w*c` values of a sample. Other
    arguments (`portable`, `differentiable`) and the result as in `kwinners`.
    """
    return _kwinners_feature_map(x, 3, duty_cycles, k, boost_strength, local, break_ties, relu,
                                 data_format, portable, differentiable, "kwinners3d")
