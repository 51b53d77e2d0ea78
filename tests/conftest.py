import functools
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow runs channels-first (NCHW) convolutions on a CPU only through
# oneDNN, which it turns on by default only on CPUs with AVX-512 extensions:
# on here, so the channels_first cases run on every x86 CPU (set before
# TensorFlow is imported; subprocesses and notebook kernels inherit it).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
if os.environ.get("KERAS_SPARSE_BLOCK_TENSORFLOW") == "1":
    # tests/test_backends.py runs the backend-agnostic tests on JAX and PyTorch
    # with TensorFlow unimportable: nothing but export may need it there.
    sys.modules["tensorflow"] = None

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def _dataset_dir(env_var, name):
    return pathlib.Path(os.environ.get(env_var, REPO.parent / "shared" / "datasets" / name))


@functools.cache
def tf_cpu_runs_nchw_conv(dtype):
    """Whether TensorFlow on this machine runs a channels-first (NCHW) Conv2D in
    `dtype` (oneDNN has no float16 one, and bfloat16 only on CPUs with AVX-512
    BF16): what decides which channels_first cases can run here."""
    import tensorflow as tf

    try:
        tf.nn.conv2d(tf.ones((1, 1, 3, 3), dtype), tf.ones((2, 2, 1, 1), dtype), 1, "VALID", data_format="NCHW")
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        return False
    return True


def mnist_dir():
    """Real MNIST: $KERAS_SPARSE_MNIST, else ../shared/datasets/mnist beside the repo."""
    from keras_sparse import datasets

    return _dataset_dir(datasets.MNIST_ENV_VAR, "mnist")


def fsdd_dir():
    """Real FSDD: $KERAS_SPARSE_FSDD, else ../shared/datasets/fsdd beside the repo."""
    from keras_sparse import datasets

    return _dataset_dir(datasets.FSDD_ENV_VAR, "fsdd")


def speech_commands_dir():
    """Real Speech Commands clips (`<word>/<clip>.wav`): $KERAS_SPARSE_SPEECH_COMMANDS,
    else ../shared/datasets/speech_commands_sample beside the repo."""
    from keras_sparse import datasets

    return _dataset_dir(datasets.SPEECH_COMMANDS_ENV_VAR, "speech_commands_sample")


@pytest.fixture(scope="session")
def mnist():
    path = mnist_dir() / "mnist.npz"
    if not path.exists():
        pytest.fail(f"real MNIST not found at {path}; set KERAS_SPARSE_MNIST")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def fsdd():
    """FSDD's official split at 16 kHz (`keras_sparse.datasets.load_fsdd`), loaded once."""
    from keras_sparse import datasets

    if not fsdd_dir().is_dir():
        pytest.fail(f"real FSDD not found at {fsdd_dir()}; set KERAS_SPARSE_FSDD")
    return datasets.load_fsdd(fsdd_dir())


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    import gc

    import keras

    keras.backend.clear_session()  # its gc.collect() frees the last test's models
    # ... and scans every tracked object alive: ~0.75 s a test once TensorFlow
    # and a few hundred tests' caches are loaded (a quarter of the suite's time).
    # Moving the survivors to the permanent generation makes the next
    # collection scan only what the next test creates.
    gc.freeze()
    keras.utils.set_random_seed(0)
    yield


def load_example(relative_path):
    """A script under `examples/` imported as a module (examples are not a package;
    their sibling modules, e.g. `experiment_report`, are found as when run)."""
    import importlib.util
    import sys

    path = REPO / "examples" / relative_path
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained_sparse_cnn1(mnist, samples=256, seed=0):
    """Sparse CNN-1 after one epoch on `samples` real MNIST training images
    (SGD 0.01, batch 32, boost decay): non-trivial weights and k-winners state.
    Returns `(model, the normalized training images)`."""
    import keras

    from keras_sparse import callbacks, datasets, models

    keras.utils.set_random_seed(seed)
    x = datasets.normalize(datasets.to_unit_interval(mnist["x_train"][:samples]))
    model = models.mnist_sparse_cnn1()
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, mnist["y_train"][:samples], batch_size=32, epochs=1, verbose=0,
              callbacks=[callbacks.UpdateBoostStrength()])
    return model, x


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow_only: needs the TensorFlow backend (SavedModel, TFLite, tf.distribute)")


def pytest_collection_modifyitems(config, items):
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow only; backend is {keras.backend.backend()}")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


def crash_at(epoch, batch):
    """A callback that raises `RuntimeError` at the end of `batch` of `epoch`
    (0-based), as a killed worker would stop mid-epoch."""
    import keras

    class Crash(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch_index, logs=None):
            if (self.epoch, batch_index) == (epoch, batch):
                raise RuntimeError("simulated crash")

    return Crash()


def to_numpy(x):
    """A layer's or op's output as NumPy, on any backend."""
    import keras

    return keras.ops.convert_to_numpy(x)


def layer_reference(layer, x, k):
    """The NumPy re-derivation's output for a built k-winners `layer` on `x`
    with `k` winners, from the layer's current duty cycles and boost strength
    (integer inputs as the layers compute them, in float32).

    Any subclass of `KWinnersBase` whose rows are the channels at each
    position or the whole sample: the geometry is read from its hooks
    (`layer.n`, the competing units, against the channels; `_channel_axis`),
    as the exporter reads it (`keras_sparse.micro.row_layout`)."""
    from tests import numpy_reference as ref

    x = x.astype(np.float32) if x.dtype.kind in "iub" else x
    duty, boost = layer.duty_cycles.numpy(), float(layer.boost_strength.numpy())
    channels_first = layer._channel_axis() % x.ndim == 1 and x.ndim > 2
    local = layer.n == len(duty)
    assert local or layer.n == np.prod(x.shape[1:]), f"rows of {type(layer).__name__} not channels or samples"
    return ref.kwinners_feature_map(x, duty, k, boost, local=local, break_ties=layer.break_ties, relu=layer.relu,
                                    data_format="channels_first" if channels_first else "channels_last")


def vjp(fn, x, upstream):
    """The gradient of `sum(upstream * fn(x))` with respect to `x` (NumPy
    float32 arrays), on any backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = fn(x)
        return tape.gradient(y, x, output_gradients=tf.constant(upstream)).numpy()
    if backend == "jax":
        import jax

        _, pullback = jax.vjp(fn, jax.numpy.asarray(x))
        return np.asarray(pullback(jax.numpy.asarray(upstream))[0])
    import torch

    x = torch.tensor(x, requires_grad=True)
    fn(x).backward(torch.tensor(upstream))
    return x.grad.numpy()
