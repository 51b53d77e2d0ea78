"""Argument checks shared by every public constructor.

Each check raises `ValueError` naming the argument, the value received and the
valid range, so a mistake in a notebook points at the argument to change.
"""

import numbers

import numpy as np

# Boost strengths above this are rejected. At b = 50 the weakest boost factor
# (duty cycle 1) is exp(-50) = 1.9e-22: an idle unit already beats a unit active
# in every sample unless that one is 5e21 times stronger, and every boosted
# value of an activation above 6e-17 in magnitude is still a normal float32.
# Beyond b ~ 87 the factors themselves underflow to 0, every busy unit ties at
# 0 and with `break_ties=False` the layer passes everything; products below
# float32's smallest normal number (1.2e-38) are flushed to 0 by TensorFlow's
# CPU kernels, so they would tie as well.
MAX_BOOST_STRENGTH = 50.0


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def check_int(name, value, minimum, maximum=None):
    valid = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer {valid}. Received: {name}={value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"`{name}` must be an integer {valid}. Received: {name}={value!r}")
    return int(value)


def check_float(name, value, low=None, high=None, low_open=False, high_open=False):
    """Checks `low <(=) value <(=) high`; NaN and non-numbers are always rejected."""
    interval = "{}{}, {}{}".format(
        "(" if low_open else "[",
        "-inf" if low is None else low,
        "inf" if high is None else high,
        ")" if high_open else "]",
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{name}` must be a number in {interval}. Received: {name}={value!r}"
        )
    above_low = low is None or (value > low if low_open else value >= low)
    below_high = high is None or (value < high if high_open else value <= high)
    if not (above_low and below_high):  # also False for NaN
        raise ValueError(
            f"`{name}` must be in {interval}. Received: {name}={value!r}"
        )
    return float(value)


def check_inference_density(percent_on, k_inference_factor, layer_name):
    """Raises `ValueError` unless `percent_on * k_inference_factor <= 1`
    (inference cannot keep more winners than there are units)."""
    if percent_on * k_inference_factor > 1 + 1e-12:  # (3/7) * (7/3) == 1 + 2e-16
        raise ValueError(
            "`percent_on * k_inference_factor` must be in (0, 1] (inference cannot keep "
            f"more than every unit) in layer {layer_name!r}. Received: percent_on={percent_on!r}, "
            f"k_inference_factor={k_inference_factor!r}"
        )


class ConfigErrorsAsValueError:
    """Mixin for Keras layers whose constructor validates its arguments.

    Keras' `Operation.from_config` re-raises any constructor error as a generic
    `TypeError` ("Error when deserializing class ...") with the library's own
    message at the end of a long chain. For a tampered or hand-edited config
    (a negative seed, a NaN `percent_on`) this raises the constructor's
    `ValueError` itself, naming the layer class.
    """

    @classmethod
    def from_config(cls, config):
        try:
            return super().from_config(config)
        except TypeError as error:
            if isinstance(error.__context__, ValueError):
                raise ValueError(f"Invalid {cls.__name__} config: {error.__context__}") from None
            raise


def parent_arguments(arguments, *own):
    """A constructor's `locals()` as the keyword arguments of its parent's
    constructor: every parameter but `self` and the names in `own` (the
    subclass's own arguments), with its `**kwargs` merged in. So a
    constructor that spells out its parent's arguments (an explicit
    signature, as Keras' layers have) forwards them all by name."""
    forwarded = {name: value for name, value in arguments.items()
                 if name not in ("self", "__class__", "kwargs", *own)}
    return {**forwarded, **arguments.get("kwargs", {})}


def stored_values(layer, store):
    """`{variable: NumPy value}` for the variables of `layer` in a Keras
    weights `store` (what `Layer.load_own_variables` would assign), read
    before anything is assigned so a refused file leaves the layer as it
    was. Empty when the store does not match the layer (Keras then raises
    its own error)."""
    variables = layer._trainable_variables + layer._non_trainable_variables
    if len(store.keys()) != len(variables):
        return {}
    return {id(v): np.asarray(store[f"{i}"]) for i, v in enumerate(variables)}


def check_equal_lengths(name, clips):
    """Raises `ValueError` if `clips` is a list or tuple of arrays of
    different lengths (NumPy's "inhomogeneous shape" says neither which
    argument nor what to do); returns `clips` unchanged."""
    if isinstance(clips, (list, tuple)) and clips:
        lengths = sorted({len(np.asarray(clip).reshape(-1)) if np.ndim(clip) else 0 for clip in clips})
        if len(lengths) > 1:
            raise ValueError(
                f"`{name}` must be clips of one length; received {len(clips)} clips of lengths "
                f"{lengths[0]} to {lengths[-1]}. Pad or cut each with "
                "`keras_sparse.audio.fix_length` first."
            )
    return clips


def check_kwinners_args(k, boost_strength, minimum_k=0, n=None):
    """Checks the `k` and `boost_strength` of the functional k-winners
    (`keras_sparse.ops`): `k` an integer in `[minimum_k, n]` (`n` when
    known), and a boost strength given as a number in
    `[0, MAX_BOOST_STRENGTH]` (NaN refused). A boost strength given as a
    tensor or variable (the layers' state) is not read here: the layers
    check their state when it is loaded or set. Likewise a `k` given as an
    integer scalar tensor (computed in the graph, e.g. from an unknown batch
    size) is left to the kernels."""
    if _is_integer_scalar_tensor(k):
        k = None
    elif isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"`k` must be an integer (the number of winners). Received: k={k!r}")
    high = "n" if n is None else n
    if k is not None and (k < minimum_k or (n is not None and k > n)):
        raise ValueError(f"`k` must be in [{minimum_k}, {high}] (the number of units). Received: k={k}")
    if isinstance(boost_strength, (numbers.Real, np.ndarray, np.generic)) and np.ndim(boost_strength) == 0:
        check_float("boost_strength", float(boost_strength), 0, MAX_BOOST_STRENGTH)


def _is_integer_scalar_tensor(value):
    """Whether `value` is a backend tensor (not a NumPy or Python number) of
    integer dtype and rank 0."""
    import keras

    if isinstance(value, (numbers.Number, np.ndarray, np.generic)) or not hasattr(value, "dtype"):
        return False
    try:
        dtype = keras.backend.standardize_dtype(value.dtype)
    except ValueError:
        return False
    return dtype.startswith(("int", "uint")) and len(getattr(value, "shape", ())) == 0
