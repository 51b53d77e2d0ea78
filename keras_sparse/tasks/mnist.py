"""MNIST (docs/mnist.md): the paper's Table 1 task.

- Data: `keras_sparse.datasets.load_mnist` (`mnist.npz`), pixels `x / 255` in [0, 1].
- Input: the networks see `(x01 - 0.1307) / 0.3081`, `(28, 28, 1)`.
- Noise: at level `p`, `int(784 p)` distinct pixels set to `0.1307 + 2 * 0.3081`
  before the normalization (`keras_sparse.noise.add_noise`).
- Networks: `keras_sparse.models.MNIST_NETWORKS`; SGD, batch 64 (the sparse
  networks' first epoch at batch 4), `lr * 0.8 ** epoch`, no weight decay.
"""

from keras_sparse import datasets, models, noise
from keras_sparse.tasks._task import Task


def load(data_dir=None):
    """MNIST's splits, pixels in [0, 1] (`to_unit_interval`)."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir)
    return {"train": (datasets.to_unit_interval(x_train), y_train),
            "test": (datasets.to_unit_interval(x_test), y_test)}


def corrupt(images01, level, rng):
    """`keras_sparse.noise.add_noise(images01, level, seed=rng)`: the pixel protocol."""
    return noise.add_noise(images01, level, seed=rng)


def build(network, initializer="pytorch", k_inference_factor=None, hidden_block=None, weight_decay=0.0):
    """`keras_sparse.models.build_mnist`; the MNIST networks have no weight decay."""
    if weight_decay:
        raise ValueError("`weight_decay` must be 0: the MNIST networks train without it. "
                         f"Received: weight_decay={weight_decay!r}")
    return models.build_mnist(network, initializer, k_inference_factor, hidden_block)


MNIST = Task(
    name="mnist",
    title="MNIST",
    loader=load,
    data_env_var=datasets.MNIST_ENV_VAR,
    input_name="images01",
    input_shape=(28, 28, 1),
    input_description="float32 (28, 28, 1), (x/255 - 0.1307) / 0.3081",
    prepare=datasets.normalize,
    corrupt=corrupt,
    noise_description="noise level (fraction of pixels set to white)",
    networks=models.MNIST_NETWORKS,
    builder=build,
    training=dict(batch_size=models.MNIST_BATCH_SIZE, lr_decay=models.MNIST_LR_DECAY, weight_decay=0.0),
)
