"""MNIST for the paper's experiments, from a local copy or the usual download.

The images are returned as the paper's code sees them (docs/mnist.md, "The paper's protocol"):

    x01  = uint8_pixels / 255                 # [0, 1]
    x    = (x01 - MNIST_MEAN) / MNIST_STD     # MNIST_MEAN = 0.1307, MNIST_STD = 0.3081

`load_mnist` looks for `mnist.npz` (Keras' own format, keys `x_train`,
`y_train`, `x_test`, `y_test`) in, by priority: the `data_dir` argument, the
`KERAS_SPARSE_MNIST` environment variable; otherwise it downloads it with
`keras.datasets.mnist` (or `tensorflow_datasets` if Keras' download fails).
"""

import os

import numpy as np

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
MNIST_ENV_VAR = "KERAS_SPARSE_MNIST"  # as FSDD_ENV_VAR, SPEECH_COMMANDS_ENV_VAR
ENV_VAR = MNIST_ENV_VAR  # its name before the speech datasets


def _find_npz(data_dir):
    path = os.fspath(data_dir)
    if os.path.isdir(path):
        path = os.path.join(path, "mnist.npz")
    if not os.path.isfile(path):
        raise ValueError(
            f"`data_dir` must be a directory holding mnist.npz or the path of "
            f"mnist.npz itself. Received: data_dir={data_dir!r} (no {path})"
        )
    return path


def load_mnist(data_dir=None):
    """Returns `(x_train, y_train), (x_test, y_test)` as uint8 `(N, 28, 28)`
    images and int64 labels (60,000 train / 10,000 test).

    Args:
        data_dir: directory containing `mnist.npz` (or the file itself). If
            None, `$KERAS_SPARSE_MNIST` is used; if that is unset too, MNIST is
            downloaded through `keras.datasets.mnist` (needs internet), with
            `tensorflow_datasets` as a fallback.
    """
    if data_dir is None:
        data_dir = os.environ.get(MNIST_ENV_VAR) or None
    if data_dir is not None:
        with np.load(_find_npz(data_dir)) as data:
            arrays = [data[key] for key in ("x_train", "y_train", "x_test", "y_test")]
    else:  # pragma: no cover - needs the network
        try:
            import keras

            (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
            arrays = [xtr, ytr, xte, yte]
        except Exception:
            import tensorflow_datasets as tfds

            train, test = tfds.as_numpy(
                tfds.load("mnist", split=["train", "test"], batch_size=-1, as_supervised=True)
            )
            arrays = [train[0][..., 0], train[1], test[0][..., 0], test[1]]
    x_train, y_train, x_test, y_test = arrays
    return (
        (np.asarray(x_train, np.uint8), np.asarray(y_train, np.int64)),
        (np.asarray(x_test, np.uint8), np.asarray(y_test, np.int64)),
    )


def to_unit_interval(images):
    """uint8 `(N, 28, 28)` pixels -> float32 `(N, 28, 28)` in [0, 1] (`x / 255`)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(
            f"`images` must be uint8 pixels in [0, 255]. Received dtype={images.dtype}"
        )
    return images.astype(np.float32) / np.float32(255.0)


def normalize(images01):
    """`(x - 0.1307) / 0.3081` on [0, 1] pixels, with a trailing channel axis:
    `(N, 28, 28)` or `(N, 28, 28, 1)` -> float32 `(N, 28, 28, 1)`."""
    x = np.asarray(images01, np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(
            "`images01` must have shape (N, H, W) or (N, H, W, 1). "
            f"Received shape={x.shape}"
        )
    return (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
