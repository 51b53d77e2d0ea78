import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def mnist_dir():
    """Real MNIST: $KERAS_SPARSE_MNIST, else ../shared/datasets/mnist beside the repo."""
    return pathlib.Path(
        os.environ.get("KERAS_SPARSE_MNIST", REPO.parent / "shared" / "datasets" / "mnist")
    )


@pytest.fixture(scope="session")
def mnist():
    path = mnist_dir() / "mnist.npz"
    if not path.exists():
        pytest.fail(f"real MNIST not found at {path}; set KERAS_SPARSE_MNIST")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    import keras

    keras.backend.clear_session()
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
