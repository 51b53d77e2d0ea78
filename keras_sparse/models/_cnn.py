"""Builders for the networks of Ahmad & Scheinkman (2019), as plain Keras models.

MNIST (SPEC §4, input `(28, 28, 1)` normalized as `(x/255 - 0.1307) / 0.3081`):

    [Conv2D(f, 5x5, valid) -> MaxPool2D(2x2) -> activation] x 1 or 2
    -> Flatten -> Dense(hidden) -> activation -> Dense(10) (logits)

| network      | conv filters | conv activation          | hidden (activation) | hidden weights |
|--------------|--------------|--------------------------|---------------------|----------------|
| Dense CNN-1  | 30           | ReLU                     | 1000 (ReLU)         | dense          |
| Dense CNN-2  | 30, 30       | ReLU, ReLU               | 1000 (ReLU)         | dense          |
| Sparse CNN-1 | 30           | k = 400 of 4320          | 150 (k = 50)        | 30% non-zero   |
| Sparse CNN-2 | 32, 64       | k = 400 of 4608, 300/1024| 700 (k = 100)       | 30% non-zero   |

Google Speech Commands (paper Table 2, input a `(32, 32, 1)` log-mel spectrogram):

    [Conv2D(64, 5x5) -> BatchNorm(no affine) -> MaxPool2D(2x2) -> activation] x 2
    -> Flatten -> Dense(hidden) -> BatchNorm(no affine) -> activation -> Dense(10)

with Dense CNN-2 (ReLU, hidden 1000), Sparse CNN-2 (k = 1200 of 12,544 and
200 of 1,600, hidden 1000 with k = 100 and 40% non-zero weights) and
Super-Sparse CNN-2 (hidden 1500, k = 100, 10% non-zero weights).

All k-winners layers use the paper's boost strength 1.5, `k_inference_factor`
1.5 and `duty_cycle_period` 1000; the boost decays per epoch by 0.85 (MNIST)
or 0.9 (GSC) through `keras_sparse.callbacks.UpdateBoostStrength`. k-winners
layers are given `percent_on = k / n` so that `round(n * percent_on) == k`.

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
"""

import math

import keras

from keras_sparse import layers as sparse_layers
from keras_sparse._validation import check_float, check_inference_density, check_int
from keras_sparse.callbacks import kwinners_layers
from keras_sparse.kwinners import KWinners, KWinners2d

INITIALIZERS = ("keras", "pytorch", "pytorch_dense_fan_in")

# The paper's MNIST configurations (SPEC §4) and results (mean ± sd, 10 seeds).
MNIST_NETWORKS = {
    "dense_cnn1": dict(
        title="Dense CNN-1", lr=0.01, momentum=0.9, epochs=15, first_epoch_batch=64,
        paper_accuracy=(99.14, 0.03), paper_noise_score=(74569, 3200),
    ),
    "dense_cnn2": dict(
        title="Dense CNN-2", lr=0.01, momentum=0.9, epochs=15, first_epoch_batch=64,
        paper_accuracy=(99.31, 0.06), paper_noise_score=(97040, 2853),
    ),
    "sparse_cnn1": dict(
        title="Sparse CNN-1", lr=0.01, momentum=0.0, epochs=15, first_epoch_batch=4,
        paper_accuracy=(98.41, 0.08), paper_noise_score=(100306, 1735),
    ),
    "sparse_cnn2": dict(
        title="Sparse CNN-2", lr=0.02, momentum=0.0, epochs=10, first_epoch_batch=4,
        paper_accuracy=(99.09, 0.05), paper_noise_score=(103764, 1125),
    ),
    # Ours, beyond the paper (not in its table): Sparse CNN-2 with twice the
    # conv-1 filters (same 8.7% conv-1 activity) and a 1000-unit hidden layer.
    "sparse_cnn2_wide": dict(
        title="Sparse CNN-2 wide (ours)", lr=0.02, momentum=0.0, epochs=10, first_epoch_batch=4,
        paper_accuracy=None, paper_noise_score=None,
    ),
}
MNIST_BATCH_SIZE = 64
MNIST_LR_DECAY = 0.8
MNIST_BOOST_STRENGTH_FACTOR = 0.85
GSC_BOOST_STRENGTH_FACTOR = 0.9
BOOST_STRENGTH = 1.5
K_INFERENCE_FACTOR = 1.5
DUTY_CYCLE_PERIOD = 1000


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


def _conv(filters, in_channels, initializer, name):
    kernel_init, bias_init = _initializers(initializer, 5 * 5 * in_channels)
    return keras.layers.Conv2D(
        filters, 5, padding="valid", kernel_initializer=kernel_init,
        bias_initializer=bias_init, name=name,
    )


def _dense(units, fan_in, initializer, name, sparsity=None):
    """Dense layer; with `sparsity`, a `SparseDense` whose zero weights are fixed."""
    if sparsity is None:
        kernel_init, bias_init = _initializers(initializer, fan_in)
        return keras.layers.Dense(
            units, kernel_initializer=kernel_init, bias_initializer=bias_init, name=name
        )
    true_fan_in = max(1, round((1 - sparsity) * fan_in))
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
        units, sparsity=sparsity, kernel_initializer=kernel_init,
        bias_initializer=bias_init, name=name,
    )


def _kwinners2d(k, n, boost_strength_factor, k_inference_factor, name):
    return KWinners2d(
        percent_on=k / n, k_inference_factor=k_inference_factor,
        boost_strength=BOOST_STRENGTH, boost_strength_factor=boost_strength_factor,
        duty_cycle_period=DUTY_CYCLE_PERIOD, local=False, name=name,
    )


def _kwinners(k, n, boost_strength_factor, k_inference_factor, name):
    return KWinners(
        percent_on=k / n, k_inference_factor=k_inference_factor,
        boost_strength=BOOST_STRENGTH, boost_strength_factor=boost_strength_factor,
        duty_cycle_period=DUTY_CYCLE_PERIOD, name=name,
    )


def _cnn(
    name, input_shape, conv_filters, conv_k, hidden_units, hidden_k, hidden_sparsity,
    initializer, boost_strength_factor, batch_norm, k_inference_factor=K_INFERENCE_FACTOR,
    num_classes=10,
):
    """Shared skeleton: (conv -> [BN] -> pool -> act)* -> flatten -> hidden -> [BN] -> act -> logits."""
    _check_initializer(initializer)
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    h, w, channels = input_shape
    for i, filters in enumerate(conv_filters, start=1):
        x = _conv(filters, channels, initializer, f"conv{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(center=False, scale=False, name=f"conv{i}_bn")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
        h, w, channels = (h - 4) // 2, (w - 4) // 2, filters
        if conv_k is None:
            x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
        else:
            x = _kwinners2d(conv_k[i - 1], h * w * channels, boost_strength_factor,
                            k_inference_factor, f"conv{i}_kwinners")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _dense(hidden_units, h * w * channels, initializer, "hidden", hidden_sparsity)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(center=False, scale=False, name="hidden_bn")(x)
    if hidden_k is None:
        x = keras.layers.ReLU(name="hidden_relu")(x)
    else:
        x = _kwinners(hidden_k, hidden_units, boost_strength_factor, k_inference_factor,
                      "hidden_kwinners")(x)
    kernel_init, bias_init = _initializers(initializer, hidden_units)
    outputs = keras.layers.Dense(
        num_classes, kernel_initializer=kernel_init, bias_initializer=bias_init, name="logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def mnist_dense_cnn1(initializer="pytorch"):
    """MNIST Dense CNN-1: Conv(30) -> pool -> ReLU -> Dense(1000) -> ReLU -> Dense(10)."""
    return _cnn("mnist_dense_cnn1", (28, 28, 1), [30], None, 1000, None, None,
                initializer, MNIST_BOOST_STRENGTH_FACTOR, False)


def mnist_dense_cnn2(initializer="pytorch"):
    """MNIST Dense CNN-2: 2 x [Conv(30) -> pool -> ReLU] -> Dense(1000) -> ReLU -> Dense(10)."""
    return _cnn("mnist_dense_cnn2", (28, 28, 1), [30, 30], None, 1000, None, None,
                initializer, MNIST_BOOST_STRENGTH_FACTOR, False)


def mnist_sparse_cnn1(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=K_INFERENCE_FACTOR,
):
    """MNIST Sparse CNN-1: Conv(30) -> pool -> k-winners (400 of 4320) ->
    SparseDense(150, 30% non-zero) -> k-winners (50 of 150) -> Dense(10)."""
    return _cnn("mnist_sparse_cnn1", (28, 28, 1), [30], [400], 150, 50, 0.7,
                initializer, boost_strength_factor, False, k_inference_factor)


def mnist_sparse_cnn2(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=K_INFERENCE_FACTOR,
):
    """MNIST Sparse CNN-2: Conv(32) -> pool -> k-winners (400 of 4608) -> Conv(64)
    -> pool -> k-winners (300 of 1024) -> SparseDense(700, 30% non-zero)
    -> k-winners (100 of 700) -> Dense(10)."""
    return _cnn("mnist_sparse_cnn2", (28, 28, 1), [32, 64], [400, 300], 700, 100, 0.7,
                initializer, boost_strength_factor, False, k_inference_factor)


def mnist_sparse_cnn(
    conv_filters=(32, 64), conv_k=(400, 300), hidden_units=700, hidden_k=100,
    hidden_sparsity=0.7, initializer="pytorch",
    boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR, k_inference_factor=K_INFERENCE_FACTOR,
    name="mnist_sparse_cnn",
):
    """A custom MNIST sparse CNN with the paper's layer order (for exploring
    beyond the paper's configurations)."""
    conv_filters = [check_int("conv_filters[i]", f, 1) for f in conv_filters]
    conv_k = [check_int("conv_k[i]", k, 1) for k in conv_k]
    if len(conv_k) != len(conv_filters) or not 1 <= len(conv_filters) <= 2:
        raise ValueError(
            "`conv_filters` and `conv_k` must have the same length, 1 or 2. "
            f"Received: conv_filters={conv_filters}, conv_k={conv_k}"
        )
    check_int("hidden_units", hidden_units, 1)
    check_int("hidden_k", hidden_k, 1)
    return _cnn(name, (28, 28, 1), conv_filters, conv_k, hidden_units, hidden_k,
                hidden_sparsity, initializer, boost_strength_factor, False, k_inference_factor)


def gsc_dense_cnn2(initializer="pytorch"):
    """GSC Dense CNN-2 (input (32, 32, 1)): 2 x [Conv(64) -> BN -> pool -> ReLU]
    -> Dense(1000) -> BN -> ReLU -> Dense(10)."""
    return _cnn("gsc_dense_cnn2", (32, 32, 1), [64, 64], None, 1000, None, None,
                initializer, GSC_BOOST_STRENGTH_FACTOR, True)


def gsc_sparse_cnn2(initializer="pytorch"):
    """GSC Sparse CNN-2: k = 1200 of 12,544 and 200 of 1,600 after the convs;
    SparseDense(1000, 40% non-zero) -> BN -> k-winners (100 of 1000) -> Dense(10)."""
    return _cnn("gsc_sparse_cnn2", (32, 32, 1), [64, 64], [1200, 200], 1000, 100, 0.6,
                initializer, GSC_BOOST_STRENGTH_FACTOR, True)


def gsc_super_sparse_cnn2(initializer="pytorch"):
    """GSC Super-Sparse CNN-2: as Sparse CNN-2 with SparseDense(1500, 10% non-zero)
    -> BN -> k-winners (100 of 1500)."""
    return _cnn("gsc_super_sparse_cnn2", (32, 32, 1), [64, 64], [1200, 200], 1500, 100, 0.9,
                initializer, GSC_BOOST_STRENGTH_FACTOR, True)


def mnist_sparse_cnn2_wide(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=K_INFERENCE_FACTOR,
):
    """Beyond the paper: Conv(64) -> pool -> k-winners (800 of 9216) -> Conv(64)
    -> pool -> k-winners (300 of 1024) -> SparseDense(1000, 30% non-zero)
    -> k-winners (100 of 1000) -> Dense(10)."""
    return _cnn("mnist_sparse_cnn2_wide", (28, 28, 1), [64, 64], [800, 300], 1000, 100, 0.7,
                initializer, boost_strength_factor, False, k_inference_factor)


BUILDERS = {
    "dense_cnn1": mnist_dense_cnn1,
    "dense_cnn2": mnist_dense_cnn2,
    "sparse_cnn1": mnist_sparse_cnn1,
    "sparse_cnn2": mnist_sparse_cnn2,
    "sparse_cnn2_wide": mnist_sparse_cnn2_wide,
}


def with_k_inference_factor(model, k_inference_factor):
    """A copy of `model` whose k-winners layers keep more (or fewer) winners at inference.

    Every `KWinners` / `KWinners2d` layer of the copy has

        k_inference = clip(round(n * percent_on * k_inference_factor), 1, n)

    and everything else (architecture, weights, duty cycles, boost strength,
    learning iterations, training-time `k`) equal to `model`'s. Use it to
    re-evaluate a trained model at another inference density without
    retraining: training never uses `k_inference`, so a model trained with any
    factor is the same model at every factor until `predict` / `evaluate`.

    Args:
        model: a built Functional or Sequential Keras model.
        k_inference_factor: `> 0`, with `percent_on * k_inference_factor <= 1`
            for every k-winners layer (else `ValueError` naming the layer).

    Returns:
        A new, uncompiled model.
    """
    check_float("k_inference_factor", k_inference_factor, 0, None, low_open=True)
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"`model` must be a built Keras model. Received: model={model!r}")
    for layer in kwinners_layers(model):  # before cloning, which would hide the layer's error
        check_inference_density(layer.percent_on, k_inference_factor, layer.name)

    def clone_layer(layer):
        config = layer.get_config()
        if isinstance(layer, (KWinners, KWinners2d)):
            config["k_inference_factor"] = k_inference_factor
        return type(layer).from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    except ValueError as error:
        raise ValueError(
            "`model` must be a Functional or Sequential model (a subclassed model cannot be "
            f"cloned layer by layer). Received: model={model!r}"
        ) from error
    copy.set_weights(model.get_weights())
    return copy


def ensemble(members, from_logits=True, name="ensemble"):
    """One Keras model that averages the class probabilities of `members`:

        p(y | x) = (1/M) * sum_m softmax(f_m(x))     (from_logits=True)
        p(y | x) = (1/M) * sum_m f_m(x)              (from_logits=False)

    The ensemble calls the members' own layers (no copies: training the
    ensemble trains the members); each member is wrapped as
    `"{name}_member_{m}"`, so members built by the same builder (same model
    name) can be combined. The result saves as `.keras`, exports to
    SavedModel / TFLite, and works with `with_k_inference_factor`.

    Args:
        members: two or more distinct built Keras models with one input and
            one output each, of equal shapes.
        from_logits: whether members output logits (the builders here do) or
            probabilities.
        name: name of the ensemble model.

    Returns:
        A Functional model from the members' input to `(batch, classes)`
        probabilities.
    """
    if not isinstance(from_logits, bool):
        raise ValueError(f"`from_logits` must be True or False. Received: from_logits={from_logits!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
    members = list(members) if isinstance(members, (list, tuple)) else members
    if not isinstance(members, list) or len(members) < 2:
        raise ValueError(
            f"`members` must be a list of at least 2 Keras models. Received: members={members!r}"
        )
    for i, member in enumerate(members):
        if not isinstance(member, keras.Model) or not member.built:
            raise ValueError(
                f"`members[{i}]` must be a built Keras model. Received: members[{i}]={member!r}"
            )
        if len(member.inputs) != 1 or len(member.outputs) != 1:
            raise ValueError(
                f"`members[{i}]` must have one input and one output; it has "
                f"{len(member.inputs)} and {len(member.outputs)}."
            )
        if any(member is other for other in members[:i]):
            raise ValueError(f"`members` must be distinct models; members[{i}] repeats an earlier one.")
        if member.input_shape != members[0].input_shape or member.output_shape != members[0].output_shape:
            raise ValueError(
                "`members` must have equal input and output shapes: members[0] maps "
                f"{members[0].input_shape} -> {members[0].output_shape}, members[{i}] maps "
                f"{member.input_shape} -> {member.output_shape}."
            )
    inputs = keras.Input(members[0].input_shape[1:], name=f"{name}_input")
    probabilities = []
    for i, member in enumerate(members):
        member_input = keras.Input(member.input_shape[1:])
        wrapped = keras.Model(member_input, member(member_input), name=f"{name}_member_{i}")
        y = wrapped(inputs)
        probabilities.append(keras.layers.Softmax(name=f"{name}_softmax_{i}")(y) if from_logits else y)
    outputs = keras.layers.Average(name=f"{name}_average")(probabilities)
    return keras.Model(inputs, outputs, name=name)


def build_mnist(network, initializer="pytorch", k_inference_factor=K_INFERENCE_FACTOR):
    """Builds the MNIST network named `network` (a key of `MNIST_NETWORKS`).

    `k_inference_factor` sets the inference density of the sparse networks'
    k-winners layers (the dense networks have none and ignore it)."""
    if network not in BUILDERS:
        raise ValueError(
            f"`network` must be one of {sorted(BUILDERS)}. Received: network={network!r}"
        )
    if network.startswith("sparse"):
        return BUILDERS[network](initializer=initializer, k_inference_factor=k_inference_factor)
    check_float("k_inference_factor", k_inference_factor, 0, None, low_open=True)
    return BUILDERS[network](initializer=initializer)
