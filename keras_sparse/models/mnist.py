"""The paper's MNIST networks (docs/mnist.md, "The paper's protocol"), input `(28, 28, 1)` normalized as
`(x/255 - 0.1307) / 0.3081`:

    [Conv2D(f, 5x5, valid) -> MaxPool2D(2x2) -> activation] x 1 or 2
    -> Flatten -> Dense(hidden) -> activation -> Dense(10) (logits)

| network      | conv filters | conv activation          | hidden (activation) | hidden weights |
|--------------|--------------|--------------------------|---------------------|----------------|
| Dense CNN-1  | 30           | ReLU                     | 1000 (ReLU)         | dense          |
| Dense CNN-2  | 30, 30       | ReLU, ReLU               | 1000 (ReLU)         | dense          |
| Sparse CNN-1 | 30           | k = 400 of 4320          | 150 (k = 50)        | 30% non-zero   |
| Sparse CNN-2 | 32, 64       | k = 400 of 4608, 300/1024| 700 (k = 100)       | 30% non-zero   |

The boost strength decays by 0.85 per epoch (`keras_sparse.callbacks.UpdateBoostStrength`).
Initializers: see `keras_sparse.models._cnn`.
"""

from keras_sparse._validation import check_float, check_int
from keras_sparse.models._cnn import K_INFERENCE_FACTOR, cnn, network_builder

# The paper's MNIST configurations and results (mean ± sd, 10 seeds).
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
    # Ours, designed for inference speed: a quarter of Sparse CNN-2's conv
    # multiplies, the same activity per layer, k_inference_factor 1.0.
    "sparse_cnn2_small": dict(
        title="Sparse CNN-2 small (ours, for speed)", lr=0.02, momentum=0.0, epochs=10,
        first_epoch_batch=4, paper_accuracy=None, paper_noise_score=None,
    ),
    # Ours, for int8 speed: Sparse CNN-2 small whose conv k-winners compete
    # per position (among the filters), not over the whole feature map.
    "sparse_cnn2_small_local": dict(
        title="Sparse CNN-2 small, local conv k-winners (ours, for speed)", lr=0.02, momentum=0.0,
        epochs=10, first_epoch_batch=4, paper_accuracy=None, paper_noise_score=None,
    ),
}
# Ours, for int8 speed: Sparse CNN-2 small with a ReLU after conv-1 (its
# widest k-winners layer, 2,304 values, half the small network's k-winners
# time), the rest sparse and trained as Sparse CNN-2 small.
MNIST_NETWORKS["sparse_cnn2_small_relu1"] = {
    **MNIST_NETWORKS["sparse_cnn2_small"], "title": "Sparse CNN-2 small, ReLU conv-1 (ours, for speed)"}
MNIST_BATCH_SIZE = 64
MNIST_LR_DECAY = 0.8
MNIST_BOOST_STRENGTH_FACTOR = 0.85


def mnist_dense_cnn1(initializer="pytorch"):
    """MNIST Dense CNN-1: Conv(30) -> pool -> ReLU -> Dense(1000) -> ReLU -> Dense(10)."""
    return cnn("mnist_dense_cnn1", (28, 28, 1), [30], None, 1000, None, None,
               initializer, MNIST_BOOST_STRENGTH_FACTOR, False)


def mnist_dense_cnn2(initializer="pytorch"):
    """MNIST Dense CNN-2: 2 x [Conv(30) -> pool -> ReLU] -> Dense(1000) -> ReLU -> Dense(10)."""
    return cnn("mnist_dense_cnn2", (28, 28, 1), [30, 30], None, 1000, None, None,
               initializer, MNIST_BOOST_STRENGTH_FACTOR, False)


def mnist_sparse_cnn1(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=K_INFERENCE_FACTOR, hidden_block=None,
):
    """MNIST Sparse CNN-1: Conv(30) -> pool -> k-winners (400 of 4320) ->
    SparseDense(150, 30% non-zero) -> k-winners (50 of 150) -> Dense(10)."""
    return cnn("mnist_sparse_cnn1", (28, 28, 1), [30], [400], 150, 50, 0.7,
               initializer, boost_strength_factor, False, k_inference_factor,
               hidden_block=hidden_block)


def mnist_sparse_cnn2(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=K_INFERENCE_FACTOR, hidden_block=None,
):
    """MNIST Sparse CNN-2: Conv(32) -> pool -> k-winners (400 of 4608) -> Conv(64)
    -> pool -> k-winners (300 of 1024) -> SparseDense(700, 30% non-zero)
    -> k-winners (100 of 700) -> Dense(10).

    `hidden_block` (e.g. `(1, 4)`): the hidden layer's weights kept in whole
    blocks (`keras_sparse.layers.SparseDense`), beyond the paper."""
    return cnn("mnist_sparse_cnn2", (28, 28, 1), [32, 64], [400, 300], 700, 100, 0.7,
               initializer, boost_strength_factor, False, k_inference_factor,
               hidden_block=hidden_block)


def mnist_sparse_cnn(
    conv_filters=(32, 64), conv_k=(400, 300), hidden_units=700, hidden_k=100,
    hidden_sparsity=0.7, initializer="pytorch",
    boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR, k_inference_factor=K_INFERENCE_FACTOR,
    name="mnist_sparse_cnn", hidden_block=None,
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
    return cnn(name, (28, 28, 1), conv_filters, conv_k, hidden_units, hidden_k,
               hidden_sparsity, initializer, boost_strength_factor, False, k_inference_factor,
               hidden_block=hidden_block)


def mnist_sparse_cnn2_wide(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=K_INFERENCE_FACTOR, hidden_block=None,
):
    """Beyond the paper: Conv(64) -> pool -> k-winners (800 of 9216) -> Conv(64)
    -> pool -> k-winners (300 of 1024) -> SparseDense(1000, 30% non-zero)
    -> k-winners (100 of 1000) -> Dense(10)."""
    return cnn("mnist_sparse_cnn2_wide", (28, 28, 1), [64, 64], [800, 300], 1000, 100, 0.7,
               initializer, boost_strength_factor, False, k_inference_factor,
               hidden_block=hidden_block)


def mnist_sparse_cnn2_small(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=1.0, hidden_block=None,
):
    """Beyond the paper, for inference speed: Conv(16) -> pool -> k-winners
    (200 of 2304, Sparse CNN-2's 8.7%) -> Conv(32) -> pool -> k-winners (150
    of 512, its 29%) -> SparseDense(256, 30% non-zero) -> k-winners (36 of
    256, its 14%) -> Dense(10); `k_inference_factor` 1.0 by default (every
    k-winners layer keeps its training k at inference)."""
    return cnn("mnist_sparse_cnn2_small", (28, 28, 1), [16, 32], [200, 150], 256, 36, 0.7,
               initializer, boost_strength_factor, False, k_inference_factor,
               hidden_block=hidden_block)


def mnist_sparse_cnn2_small_local(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=1.0, hidden_block=None,
):
    """Beyond the paper, for int8 inference speed: Sparse CNN-2 small with
    local conv k-winners, each position keeping its own winners among the
    filters: Conv(16) -> pool -> k-winners (2 of 16 per position, 12.5%) ->
    Conv(32) -> pool -> k-winners (9 of 32 per position, 28%) ->
    SparseDense(256, 30% non-zero) -> k-winners (36 of 256) -> Dense(10);
    `k_inference_factor` 1.0 by default. Rows of 16 and 32 values instead of
    2,304 and 512: no wide top-k at inference."""
    return cnn("mnist_sparse_cnn2_small_local", (28, 28, 1), [16, 32], [2, 9], 256, 36, 0.7,
               initializer, boost_strength_factor, False, k_inference_factor,
               hidden_block=hidden_block, conv_local=True)


def mnist_sparse_cnn2_small_relu1(
    initializer="pytorch", boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR,
    k_inference_factor=1.0, hidden_block=None,
):
    """Beyond the paper, for int8 inference speed: Sparse CNN-2 small with a
    ReLU after conv-1: Conv(16) -> pool -> ReLU -> Conv(32) -> pool ->
    k-winners (150 of 512) -> SparseDense(256, 30% non-zero) -> k-winners
    (36 of 256) -> Dense(10); `k_inference_factor` 1.0 by default. The ReLU
    fuses into the convolution in TFLite, where conv-1's k-winners (2,304
    values) cost more than the convolution itself."""
    return cnn("mnist_sparse_cnn2_small_relu1", (28, 28, 1), [16, 32], [None, 150], 256, 36, 0.7,
               initializer, boost_strength_factor, False, k_inference_factor,
               hidden_block=hidden_block)


BUILDERS = {
    "dense_cnn1": mnist_dense_cnn1,
    "dense_cnn2": mnist_dense_cnn2,
    "sparse_cnn1": mnist_sparse_cnn1,
    "sparse_cnn2": mnist_sparse_cnn2,
    "sparse_cnn2_wide": mnist_sparse_cnn2_wide,
    "sparse_cnn2_small": mnist_sparse_cnn2_small,
    "sparse_cnn2_small_local": mnist_sparse_cnn2_small_local,
    "sparse_cnn2_small_relu1": mnist_sparse_cnn2_small_relu1,
}


def build_mnist(network, initializer="pytorch", k_inference_factor=None, hidden_block=None):
    """Builds the MNIST network named `network` (a key of `MNIST_NETWORKS`).

    `k_inference_factor` sets the inference density of the sparse networks'
    k-winners layers (the dense networks have none and ignore it); None is
    the network's own default, that of its `mnist_*` function (1.5, the
    paper's, for the paper's networks; 1.0 for the speed networks);
    `hidden_block` keeps the sparse networks' hidden weights in whole blocks
    (a `ValueError` for the dense networks)."""
    builder = network_builder(BUILDERS, network, k_inference_factor, hidden_block)
    if network.startswith("dense"):
        return builder(initializer=initializer)
    own_default = {} if k_inference_factor is None else dict(k_inference_factor=k_inference_factor)
    return builder(initializer=initializer, hidden_block=hidden_block, **own_default)
