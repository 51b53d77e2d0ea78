"""The skeleton shared by the paper's CNNs (MNIST and speech), and its initializers.

    [Conv2D(f, 5x5, valid) -> [BatchNorm(no affine)] -> MaxPool2D(2x2) -> activation] x 1 or 2
    -> Flatten -> Dense(hidden) -> [BatchNorm(no affine)] -> activation -> Dense(classes)

The activation is ReLU (dense networks) or k-winners (sparse networks); a
sparse hidden layer is a `SparseDense` whose zero weights are fixed; batch
norm (the speech networks) is PyTorch's, without affine parameters. All
k-winners layers use the paper's boost strength 1.5 (unless a control
changes it) and `duty_cycle_period` 1000, and `percent_on = k / n` so that
`round(n * percent_on) == k`.

Initialization (`initializer=`):

- `"keras"`: Keras defaults, glorot-uniform kernels and zero biases.
- `"pytorch"`: the reference implementation's PyTorch defaults,
  kaiming-uniform with `a = sqrt(5)`, i.e.

      bound = gain * sqrt(3 / fan_in),  gain = sqrt(2 / (1 + a^2)) = sqrt(1/3)
            = 1 / sqrt(fan_in)
      kernel ~ U(-bound, bound),  bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))

  For the sparse hidden layer, `fan_in` is the true fan-in
  `round((1 - sparsity) * fan_in)` (the reference's `normalize_sparse_weights`).
- `"pytorch_dense_fan_in"`: as `"pytorch"`, but the sparse hidden layer keeps
  the dense bound `1/sqrt(fan_in)` (its surviving weights are simply masked),
  i.e. no sparse-aware rescaling; for measuring that detail.

Weight decay (`weight_decay=`, the speech networks): PyTorch's SGD
`weight_decay` adds `weight_decay * w` to every parameter's gradient before
momentum. Here each kernel and bias carries `L2(weight_decay / 2)`, whose
gradient `d/dw (weight_decay / 2) * ||w||^2 = weight_decay * w` is the same
term, coupled the same way (unlike Keras' decoupled `SGD(weight_decay=)`,
which differs once momentum is non-zero).
"""

import functools
import math

import keras

from keras_sparse import layers as sparse_layers
from keras_sparse._validation import check_bool, check_float
from keras_sparse.batch_sparsity import LifetimeSparsity
from keras_sparse.constraints import check_block, kept_per_unit
from keras_sparse.drop_connect import DropConnectDense
from keras_sparse.kwinners import GRADIENTS, KWinners, KWinners2D

INITIALIZERS = ("keras", "pytorch", "pytorch_dense_fan_in")
BOOST_STRENGTH = 1.5
K_INFERENCE_FACTOR = 1.5
DUTY_CYCLE_PERIOD = 1000
# The k-winners options of `cnn` and their defaults (the paper's).
_KWINNERS_DEFAULTS = dict(boost_strength=BOOST_STRENGTH, lifetime=False, kwinners_gradient="winners")


def _check_initializer(initializer):
    if initializer not in INITIALIZERS:
        raise ValueError(
            f"`initializer` must be one of {INITIALIZERS}. Received: initializer={initializer!r}"
        )


def _initializers(initializer, fan_in):
    """(kernel_initializer, bias_initializer) for a layer with this (true) fan-in."""
    if initializer == "keras":
        return "glorot_uniform", "zeros"
    # "pytorch" and "pytorch_dense_fan_in" (identical on dense layers).
    # VarianceScaling(1/3, fan_in, uniform): limit sqrt(3 * (1/3) / fan_in) = 1/sqrt(fan_in).
    bound = 1.0 / math.sqrt(fan_in)
    return (
        keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        keras.initializers.RandomUniform(-bound, bound),
    )


def _weight_decay(weight_decay):
    """Kernel and bias regularizers for PyTorch-style (coupled) weight decay."""
    if not weight_decay:
        return {}
    return dict(kernel_regularizer=keras.regularizers.L2(weight_decay / 2),
                bias_regularizer=keras.regularizers.L2(weight_decay / 2))


def _conv(filters, in_channels, initializer, name, weight_decay=0.0):
    kernel_init, bias_init = _initializers(initializer, 5 * 5 * in_channels)
    return keras.layers.Conv2D(
        filters, 5, padding="valid", kernel_initializer=kernel_init,
        bias_initializer=bias_init, name=name, **_weight_decay(weight_decay),
    )


def _dense(units, fan_in, initializer, name, sparsity=None, weight_decay=0.0, block=None,
           drop_connect=None):
    """Dense layer; with `sparsity`, a `SparseDense` whose zero weights are
    fixed (in whole `block`s if given); with `drop_connect`, a
    `DropConnectDense` dropping that fraction of its weights, a fresh random
    mask each training step (initialized as the dense layer)."""
    if sparsity is None:
        kernel_init, bias_init = _initializers(initializer, fan_in)
        if drop_connect is not None:
            return DropConnectDense(
                units, rate=drop_connect, kernel_initializer=kernel_init, bias_initializer=bias_init,
                name=name, **_weight_decay(weight_decay),
            )
        return keras.layers.Dense(
            units, kernel_initializer=kernel_init, bias_initializer=bias_init, name=name,
            **_weight_decay(weight_decay),
        )
    true_fan_in = max(1, kept_per_unit(sparsity, fan_in, check_block(block)))
    if initializer == "keras":
        kernel_init, bias_init = "glorot_uniform", "zeros"
    elif initializer == "pytorch_dense_fan_in":
        # RandomUniform is not a VarianceScaling: SparseDense only masks it.
        bound = 1.0 / math.sqrt(fan_in)
        kernel_init = keras.initializers.RandomUniform(-bound, bound)
        bias_init = keras.initializers.RandomUniform(-bound, bound)
    else:
        # SparseDense rescales a VarianceScaling initializer from fan_in to the
        # true fan-in itself (bound 1/sqrt(true_fan_in)); the bias uses the
        # true fan-in directly.
        kernel_init = keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")
        bias_bound = 1.0 / math.sqrt(true_fan_in)
        bias_init = keras.initializers.RandomUniform(-bias_bound, bias_bound)
    return sparse_layers.SparseDense(
        units, sparsity=sparsity, block=block, kernel_initializer=kernel_init,
        bias_initializer=bias_init, name=name, **_weight_decay(weight_decay),
    )


def network_builder(builders, network, k_inference_factor, hidden_block):
    """`builders[network]`, after the checks every task's `build_*` shares:
    `network` must be a key of `builders`; a dense network (no k-winners
    layer, dense hidden weights) ignores a valid `k_inference_factor` (None
    or > 0) and refuses a `hidden_block`; a sparse network's builder checks
    both."""
    if network not in builders:
        raise ValueError(
            f"`network` must be one of {sorted(builders)}. Received: network={network!r}"
        )
    if network.startswith("dense"):
        if k_inference_factor is not None:
            check_float("k_inference_factor", k_inference_factor, 0, None, low_open=True)
        refuse_block_for_dense(network, hidden_block)
    return builders[network]


def refuse_block_for_dense(network, hidden_block):
    """`ValueError` for a `hidden_block` given to a network with dense hidden weights."""
    if hidden_block is not None:
        raise ValueError(
            f"`hidden_block` applies to the sparse networks' hidden layer; {network!r} has a "
            f"dense one. Received: hidden_block={hidden_block!r}"
        )


def _batch_norm(name):
    """PyTorch's `BatchNorm(affine=False)` as the reference ran it: no scale or
    offset, `eps = 1e-5`, and running statistics updated as
    `running = 0.9 * running + 0.1 * batch` (PyTorch momentum 0.1 is Keras'
    `momentum=0.9`; Keras' defaults are 0.99 and 1e-3). One difference stays:
    Keras feeds the running variance the batch's biased variance, PyTorch
    the unbiased one (`m / (m - 1)` larger, m values per statistic: 1.07x for
    the hidden layer at batch 16, < 1.0002x for the convolutions)."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, scale=False,
                                           name=name)


def _kwinners(x, k, n, name, kwinners, lifetime, local=None):
    """`x` through a k-winners layer keeping `k` of `n` (`KWinners2D` with
    `local` given, else `KWinners`; `kwinners`: its other arguments), and
    with `lifetime` a `LifetimeSparsity` at the same `k / n`."""
    layer = KWinners if local is None else functools.partial(KWinners2D, local=local)
    x = layer(percent_on=k / n, duty_cycle_period=DUTY_CYCLE_PERIOD, name=name, **kwinners)(x)
    if lifetime:
        x = LifetimeSparsity(percent_on=k / n, name=f"{name}_lifetime")(x)
    return x


def cnn(
    name, input_shape, conv_filters, conv_k, hidden_units, hidden_k, hidden_sparsity,
    initializer, boost_strength_factor, batch_norm, k_inference_factor=K_INFERENCE_FACTOR,
    num_classes=10, weight_decay=0.0, hidden_block=None, conv_local=False, *,
    boost_strength=BOOST_STRENGTH, kwinners_gradient="winners", lifetime=False, dropout=0.0,
    hidden_drop_connect=None,
):
    """Shared skeleton: (conv -> [BN] -> pool -> act)* -> flatten -> hidden -> [BN] -> act
    -> [Dropout] -> logits.

    `conv_k` / `hidden_k` are None for ReLU (an entry of `conv_k` None: that
    conv layer alone), else the k of each k-winners layer: of the whole
    feature map, or with `conv_local=True` of the filters at each position (`KWinners2D(local=True)`); `hidden_sparsity`
    is None for a dense hidden layer, else its weights are fixed zeros, in
    whole `hidden_block`s if given (see `keras_sparse.layers.SparseDense`).

    The options the controls vary (`keras_sparse.models.controls`; the
    defaults are the paper's networks):

    - `boost_strength`: every k-winners layer's initial boost strength (0: no boosting).
    - `kwinners_gradient`: their training gradient, `"winners"` or
      `"straight_through"` (`keras_sparse.kwinners.KWinners`).
    - `lifetime`: each k-winners layer followed by a `LifetimeSparsity`
      keeping, per unit, its top `k / n` of the batch (WTA lifetime
      sparsity; the identity at inference).
    - `dropout`: a `Dropout(dropout)` after the hidden activation (0: none).
    - `hidden_drop_connect`: the hidden layer a `DropConnectDense` dropping
      this fraction of weights, a fresh mask each step, instead of a dense
      or fixed-sparse one (needs `hidden_sparsity=None`)."""
    _check_initializer(initializer)
    check_float("weight_decay", weight_decay, 0, None)
    check_float("dropout", dropout, 0, 1, high_open=True)
    check_bool("lifetime", lifetime)
    if kwinners_gradient not in GRADIENTS:
        raise ValueError(f"`kwinners_gradient` must be one of {GRADIENTS}. "
                         f"Received: kwinners_gradient={kwinners_gradient!r}")
    given = dict(boost_strength=boost_strength, lifetime=lifetime, kwinners_gradient=kwinners_gradient)
    changed = {key: value for key, value in given.items() if value != _KWINNERS_DEFAULTS[key]}
    if conv_k is None and hidden_k is None and changed:
        raise ValueError(f"{changed} change k-winners layers; network {name!r} has none (conv_k and "
                         "hidden_k are None).")
    if hidden_drop_connect is not None:
        check_float("hidden_drop_connect", hidden_drop_connect, 0, 1, high_open=True)
        if hidden_sparsity is not None:
            raise ValueError("`hidden_drop_connect` replaces the fixed sparse hidden weights: give "
                             f"`hidden_sparsity=None`. Received: hidden_sparsity={hidden_sparsity!r}, "
                             f"hidden_drop_connect={hidden_drop_connect!r}")
    kwinners = dict(k_inference_factor=k_inference_factor, boost_strength=boost_strength,
                    boost_strength_factor=boost_strength_factor, gradient=kwinners_gradient)
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    h, w, channels = input_shape
    for i, filters in enumerate(conv_filters, start=1):
        x = _conv(filters, channels, initializer, f"conv{i}", weight_decay)(x)
        if batch_norm:
            x = _batch_norm(f"conv{i}_bn")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
        h, w, channels = (h - 4) // 2, (w - 4) // 2, filters
        if conv_k is None or conv_k[i - 1] is None:
            x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
        else:
            x = _kwinners(x, conv_k[i - 1], channels if conv_local else h * w * channels,
                          f"conv{i}_kwinners", kwinners, lifetime, local=conv_local)
    x = keras.layers.Flatten(name="flatten")(x)
    if hidden_sparsity is None:
        refuse_block_for_dense(name, hidden_block)
    x = _dense(hidden_units, h * w * channels, initializer, "hidden", hidden_sparsity,
               weight_decay, hidden_block, hidden_drop_connect)(x)
    if batch_norm:
        x = _batch_norm("hidden_bn")(x)
    if hidden_k is None:
        x = keras.layers.ReLU(name="hidden_relu")(x)
    else:
        x = _kwinners(x, hidden_k, hidden_units, "hidden_kwinners", kwinners, lifetime)
    if dropout:
        x = keras.layers.Dropout(dropout, name="hidden_dropout")(x)
    kernel_init, bias_init = _initializers(initializer, hidden_units)
    outputs = keras.layers.Dense(
        num_classes, kernel_initializer=kernel_init, bias_initializer=bias_init, name="logits",
        **_weight_decay(weight_decay),
    )(x)
    return keras.Model(inputs, outputs, name=name)

