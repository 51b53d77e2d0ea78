"""Entropy of duty cycles: how evenly a k-winners layer uses its units.

The paper (Sec. 3) boosts units so that every unit is active about `k/n` of
the time, which maximizes the layer's entropy. With `H(p) = -p ln p - (1 - p)
ln(1 - p)` (nats, `H(0) = H(1) = 0`):

    binary_entropy(duty_cycles) = sum_i H(duty_cycles[i])
    max_entropy(n, k)           = n * H(k / n)

and `binary_entropy / max_entropy` is 1 for perfectly even use.
"""

from keras import ops


def _entropy(p):
    p = ops.clip(ops.cast(p, "float32"), 0.0, 1.0)
    q = 1.0 - p
    # where() keeps 0 * log(0) from becoming NaN: H(0) = H(1) = 0.
    p_log_p = ops.where(p > 0, p * ops.log(ops.where(p > 0, p, 1.0)), 0.0)
    q_log_q = ops.where(q > 0, q * ops.log(ops.where(q > 0, q, 1.0)), 0.0)
    return -(p_log_p + q_log_q)


def binary_entropy(duty_cycles):
    """Sum over units of the binary entropy (nats) of each unit's duty cycle."""
    return ops.sum(_entropy(duty_cycles))


def max_entropy(n, k):
    """`n * H(k / n)`: the entropy of n units each active a fraction k/n of the time."""
    return n * _entropy(k / n)
